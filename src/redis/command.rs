//! Commands as data: each command file declares a [`Command`] (its name,
//! entry point, flags, ACL categories, arity and what COMMAND DOCS says), and
//! [`register`] hands it to Redis. The C entry point of a handler comes
//! from [`entry_point!`], which also keeps a panic from unwinding into Redis.

use redis_module::{raw, Context, RedisString, Status};
use std::ffi::CStr;
use std::mem::size_of;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use xprocess_core::errors::{self, ReplyError};

/// A command handler: the whole argv (name included) as byte slices.
pub type Handler = fn(&Context, &[&[u8]]) -> Result<(), ReplyError>;

/// A command's C entry point, as `RedisModule_CreateCommand` takes it.
pub type EntryPoint =
    extern "C" fn(*mut raw::RedisModuleCtx, *mut *mut raw::RedisModuleString, c_int) -> c_int;

/// One command of the module.
pub struct Command {
    pub name: &'static CStr,
    pub entry: EntryPoint,
    /// Command flags, as `RedisModule_CreateCommand` takes them.
    pub flags: &'static CStr,
    /// ACL categories beyond the flags' own (Redis 7.2+: left out on 7.0).
    pub acl: &'static CStr,
    pub arity: i32,
    pub docs: Docs,
}

/// What COMMAND DOCS and COMMAND INFO say beyond the arity.
pub struct Docs {
    pub summary: &'static CStr,
    pub complexity: &'static CStr,
    pub since: &'static CStr,
    pub key_specs: &'static [KeySpec],
    pub args: &'static [Arg],
}

/// A key spec: where a key is found, and what the command does to it.
pub struct KeySpec {
    pub notes: &'static CStr,
    pub flags: u32,
    pub begin: Begin,
    /// The key's position is unknown: reported through the getkeys-api.
    pub unknown: bool,
}

/// Where the search for a key spec's key begins.
pub enum Begin {
    /// At this argv position.
    Index(i32),
    /// After this token, searched from this position on.
    Keyword(&'static CStr, i32),
    Unknown,
}

/// Key spec flags (see the module API's `REDISMODULE_CMD_KEY_*`).
pub mod key {
    use redis_module::raw;
    pub const RO: u32 = raw::REDISMODULE_CMD_KEY_RO;
    pub const RW: u32 = raw::REDISMODULE_CMD_KEY_RW;
    pub const ACCESS: u32 = raw::REDISMODULE_CMD_KEY_ACCESS;
    pub const INSERT: u32 = raw::REDISMODULE_CMD_KEY_INSERT;
    pub const UPDATE: u32 = raw::REDISMODULE_CMD_KEY_UPDATE;
    pub const DELETE: u32 = raw::REDISMODULE_CMD_KEY_DELETE;
    pub const INCOMPLETE: u32 = raw::REDISMODULE_CMD_KEY_INCOMPLETE;
}

/// One argument of the syntax tree (redis-cli's hints, COMMAND DOCS).
pub struct Arg {
    pub name: &'static CStr,
    pub kind: ArgKind,
    pub token: Option<&'static CStr>,
    pub optional: bool,
    pub multiple: bool,
    /// The key spec (index in `Docs::key_specs`) of a key argument.
    pub key_spec: Option<i32>,
    /// The arguments of a `OneOf` or a `Block`.
    pub sub: &'static [Arg],
}

pub enum ArgKind {
    String,
    Integer,
    Double,
    Key,
    Token,
    OneOf,
    Block,
}

impl Arg {
    pub const fn new(name: &'static CStr, kind: ArgKind) -> Arg {
        Arg {
            name,
            kind,
            token: None,
            optional: false,
            multiple: false,
            key_spec: None,
            sub: &[],
        }
    }

    pub const fn token(mut self, token: &'static CStr) -> Arg {
        self.token = Some(token);
        self
    }

    pub const fn optional(mut self) -> Arg {
        self.optional = true;
        self
    }

    pub const fn multiple(mut self) -> Arg {
        self.multiple = true;
        self
    }

    pub const fn key(mut self, spec: i32) -> Arg {
        self.key_spec = Some(spec);
        self
    }

    pub const fn sub(mut self, sub: &'static [Arg]) -> Arg {
        self.sub = sub;
        self
    }
}

/// Run a handler for Redis: an error becomes the reply, and a panic must
/// not unwind into Redis (it would abort the server): the panic hook logs
/// it and the client gets an error.
pub fn run_handler(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    handler: Handler,
) -> c_int {
    let context = Context::new(ctx);
    let args = args(argv, argc);
    match catch_unwind(AssertUnwindSafe(|| handler(&context, &args))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => super::reply::error(&context, &e),
        Err(_) => super::reply::error(&context, &errors::INTERNAL.into()),
    }
    raw::Status::Ok as c_int
}

/// A command's arguments as byte slices.
fn args<'a>(argv: *mut *mut raw::RedisModuleString, argc: c_int) -> Vec<&'a [u8]> {
    (0..argc as usize)
        // SAFETY: Redis passes argc live strings, alive for the callback.
        .map(|i| RedisString::string_as_slice(unsafe { *argv.add(i) }))
        .collect()
}

/// `entry_point!(name, handler)`: the C entry point `name` of a [`Handler`].
macro_rules! entry_point {
    ($name:ident, $handler:path) => {
        extern "C" fn $name(
            ctx: *mut redis_module::raw::RedisModuleCtx,
            argv: *mut *mut redis_module::raw::RedisModuleString,
            argc: std::os::raw::c_int,
        ) -> std::os::raw::c_int {
            $crate::redis::command::run_handler(ctx, argv, argc, $handler)
        }
    };
}
pub(crate) use entry_point;

/// Create `command` in Redis, with its ACL categories and docs.
pub fn register(ctx: &Context, command: &Command) -> Status {
    let name = command.name.to_string_lossy();
    // SAFETY: a live context at load; Redis copies the name and flags.
    let created = unsafe {
        raw::RedisModule_CreateCommand.unwrap()(
            ctx.ctx,
            command.name.as_ptr(),
            Some(command.entry),
            command.flags.as_ptr(),
            1,
            1,
            1,
        )
    };
    if created == raw::Status::Err as c_int || !set_docs(ctx, command) {
        ctx.log_warning(&format!("xprocess: failed to create the {name} command"));
        return Status::Err;
    }
    if !set_acl_categories(ctx, command) {
        ctx.log_warning(&format!("xprocess: could not set ACL categories of {name}"));
    }
    Status::Ok
}

/// ACL categories are a Redis 7.2 API: optional, so the module loads on 7.0.
fn set_acl_categories(ctx: &Context, command: &Command) -> bool {
    // SAFETY: the API table is written once, at load, before this runs.
    let Some(set_categories) = (unsafe { raw::RedisModule_SetCommandACLCategories }) else {
        return true;
    };
    // SAFETY: a live context; the command was just created.
    let handle = unsafe { raw::RedisModule_GetCommand.unwrap()(ctx.ctx, command.name.as_ptr()) };
    // SAFETY: a live command handle; Redis copies the categories.
    !handle.is_null() && unsafe { set_categories(handle, command.acl.as_ptr()) } == 0
}

static VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: size_of::<raw::RedisModuleCommandArg>(),
};

/// Arity, docs, arguments and key specs; false when the server refuses them.
fn set_docs(ctx: &Context, command: &Command) -> bool {
    // SAFETY: a live context; the command was just created.
    let handle = unsafe { raw::RedisModule_GetCommand.unwrap()(ctx.ctx, command.name.as_ptr()) };
    // SAFETY: the API table is written once, at load, before this runs.
    let Some(set_info) = (unsafe { raw::RedisModule_SetCommandInfo }) else {
        return false;
    };
    if handle.is_null() {
        return false;
    }
    let docs = &command.docs;
    let mut tree = ArgTree::default();
    let args = tree.add(docs.args);
    let mut specs: Vec<raw::RedisModuleCommandKeySpec> =
        docs.key_specs.iter().map(raw_key_spec).collect();
    specs.push(zeroed_key_spec());
    let info = raw::RedisModuleCommandInfo {
        version: &VERSION,
        summary: docs.summary.as_ptr(),
        complexity: docs.complexity.as_ptr(),
        since: docs.since.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: command.arity,
        key_specs: specs.as_mut_ptr(),
        args: tree.levels[args].as_mut_ptr(),
    };
    // SAFETY: every pointer in `info` lives until this returns (the tree's
    // levels never move once built); Redis copies all of it.
    unsafe { set_info(handle, &info as *const _ as *mut _) == raw::REDISMODULE_OK as i32 }
}

/// The raw argument arrays of one command, each ended by a zeroed entry.
/// A level is built after the levels it points into, and the vectors are
/// never resized after their pointers are taken.
#[derive(Default)]
struct ArgTree {
    levels: Vec<Vec<raw::RedisModuleCommandArg>>,
}

impl ArgTree {
    /// Add `args` (and, first, their sub-arguments); the level's index.
    fn add(&mut self, args: &[Arg]) -> usize {
        let mut level: Vec<raw::RedisModuleCommandArg> = Vec::with_capacity(args.len() + 1);
        for arg in args {
            let subargs = match arg.sub.is_empty() {
                true => ptr::null_mut(),
                false => {
                    let sub = self.add(arg.sub);
                    self.levels[sub].as_mut_ptr()
                }
            };
            level.push(raw_arg(arg, subargs));
        }
        level.push(zeroed_arg());
        self.levels.push(level);
        self.levels.len() - 1
    }
}

fn raw_arg(arg: &Arg, subargs: *mut raw::RedisModuleCommandArg) -> raw::RedisModuleCommandArg {
    let mut flags = 0;
    if arg.optional {
        flags |= raw::REDISMODULE_CMD_ARG_OPTIONAL as i32;
    }
    if arg.multiple {
        flags |= raw::REDISMODULE_CMD_ARG_MULTIPLE as i32;
    }
    raw::RedisModuleCommandArg {
        name: arg.name.as_ptr(),
        type_: match arg.kind {
            ArgKind::String => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
            ArgKind::Integer => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
            ArgKind::Double => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_DOUBLE,
            ArgKind::Key => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
            ArgKind::Token => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
            ArgKind::OneOf => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
            ArgKind::Block => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
        },
        key_spec_index: arg.key_spec.unwrap_or(-1),
        token: arg.token.map_or(ptr::null(), CStr::as_ptr),
        summary: ptr::null(),
        since: ptr::null(),
        flags,
        deprecated_since: ptr::null(),
        subargs,
        display_text: ptr::null(),
    }
}

/// The entry that ends an argument array.
fn zeroed_arg() -> raw::RedisModuleCommandArg {
    raw::RedisModuleCommandArg {
        name: ptr::null(),
        type_: 0,
        key_spec_index: -1,
        token: ptr::null(),
        summary: ptr::null(),
        since: ptr::null(),
        flags: 0,
        deprecated_since: ptr::null(),
        subargs: ptr::null_mut(),
        display_text: ptr::null(),
    }
}

fn raw_key_spec(spec: &KeySpec) -> raw::RedisModuleCommandKeySpec {
    use raw::RedisModuleCommandKeySpec__bindgen_ty_1 as Bs;
    use raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 as Index;
    use raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_2 as Keyword;
    let (begin_search_type, bs) = match spec.begin {
        Begin::Index(pos) => (
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX,
            Bs {
                index: Index { pos },
            },
        ),
        Begin::Keyword(keyword, startfrom) => (
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_KEYWORD,
            Bs {
                keyword: Keyword {
                    keyword: keyword.as_ptr(),
                    startfrom,
                },
            },
        ),
        Begin::Unknown => (
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_UNKNOWN,
            Bs {
                index: Index { pos: 0 },
            },
        ),
    };
    raw::RedisModuleCommandKeySpec {
        notes: spec.notes.as_ptr(),
        flags: u64::from(spec.flags),
        begin_search_type,
        bs,
        find_keys_type: match spec.unknown {
            true => raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_UNKNOWN,
            false => raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE,
        },
        fk: raw::RedisModuleCommandKeySpec__bindgen_ty_2 {
            range: raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        },
    }
}

/// The entry that ends the key specs.
fn zeroed_key_spec() -> raw::RedisModuleCommandKeySpec {
    let mut spec = raw_key_spec(&KeySpec {
        notes: c"",
        flags: 0,
        begin: Begin::Index(0),
        unknown: false,
    });
    spec.notes = ptr::null();
    spec.begin_search_type = 0;
    spec.find_keys_type = 0;
    spec
}
