//! What `COMMAND INFO` / `COMMAND DOCS` say about XPROCESS (Redis 7.0+):
//! arity, summary, the argument tree (redis-cli's hints) and key specs.
//!
//! Effects put keys at positions no key spec can describe, so the specs are
//! documentation (the stream, DEDUPE, then an "unknown" spec for effect keys)
//! and Redis takes the actual keys from the getkeys-api (`report_keys`).
//! Redis copies everything passed here, so the tables live on the stack.

use redis_module::{raw, Context};
use std::ffi::CStr;
use std::mem::size_of;
use std::ptr;

/// `XPROCESS key group CONSUMER consumer SADD key member READ`: 8 at the least.
pub const ARITY: i32 = -8;

const SUMMARY: &CStr = c"Applies effects of stream entries exactly once: dedupe by entry ID, apply, record and XACK, atomically";
const COMPLEXITY: &CStr =
    c"O(N*E) where N is the number of IDs (or of entries READ takes) and E the number of effects";
const SINCE: &CStr = c"0.1.0";

static VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: size_of::<raw::RedisModuleCommandArg>(),
};

/// Key spec indexes, referenced by key arguments.
const SPEC_STREAM: i32 = 0;
const SPEC_DEDUPE: i32 = 1;
const SPEC_DEAD_LETTER: i32 = 2;
const SPEC_EFFECTS: i32 = 3;

type ArgType = raw::RedisModuleCommandArgType;
const STRING: ArgType = raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING;
const INTEGER: ArgType = raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER;
const KEY: ArgType = raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY;
const TOKEN: ArgType = raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN;
const ONEOF: ArgType = raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF;
const BLOCK: ArgType = raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK;

const OPTIONAL: i32 = raw::REDISMODULE_CMD_ARG_OPTIONAL as i32;
const MULTIPLE: i32 = raw::REDISMODULE_CMD_ARG_MULTIPLE as i32;

/// One argument; `subargs` must outlive the `set_info` call.
fn arg(name: &'static CStr, type_: ArgType) -> raw::RedisModuleCommandArg {
    raw::RedisModuleCommandArg {
        name: name.as_ptr(),
        type_,
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

/// The zeroed entry that ends an argument array.
fn end() -> raw::RedisModuleCommandArg {
    raw::RedisModuleCommandArg {
        name: ptr::null(),
        ..arg(c"", STRING)
    }
}

trait ArgExt {
    fn token(self, token: &'static CStr) -> Self;
    fn flags(self, flags: i32) -> Self;
    fn key(self, spec: i32) -> Self;
    fn sub(self, subargs: &mut [raw::RedisModuleCommandArg]) -> Self;
}

impl ArgExt for raw::RedisModuleCommandArg {
    fn token(mut self, token: &'static CStr) -> Self {
        self.token = token.as_ptr();
        self
    }
    fn flags(mut self, flags: i32) -> Self {
        self.flags = flags;
        self
    }
    fn key(mut self, spec: i32) -> Self {
        self.key_spec_index = spec;
        self
    }
    fn sub(mut self, subargs: &mut [raw::RedisModuleCommandArg]) -> Self {
        self.subargs = subargs.as_mut_ptr();
        self
    }
}

fn key_spec(
    notes: &'static CStr,
    flags: u32,
    bs_type: raw::RedisModuleKeySpecBeginSearchType,
    bs: raw::RedisModuleCommandKeySpec__bindgen_ty_1,
    fk_type: raw::RedisModuleKeySpecFindKeysType,
) -> raw::RedisModuleCommandKeySpec {
    raw::RedisModuleCommandKeySpec {
        notes: notes.as_ptr(),
        flags: u64::from(flags),
        begin_search_type: bs_type,
        bs,
        find_keys_type: fk_type,
        fk: raw::RedisModuleCommandKeySpec__bindgen_ty_2 {
            range: raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        },
    }
}

fn key_specs() -> [raw::RedisModuleCommandKeySpec; 5] {
    use raw::{
        RedisModuleCommandKeySpec__bindgen_ty_1 as Bs,
        RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 as Index,
        RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_2 as Keyword,
    };
    let rw = raw::REDISMODULE_CMD_KEY_RW;
    let range = raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE;
    let unknown_fk = raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_UNKNOWN;
    let index = |pos| Bs {
        index: Index { pos },
    };
    let mut zero = key_spec(c"", 0, 0, index(0), 0);
    zero.notes = ptr::null();
    [
        key_spec(
            c"the source stream: entries read, acknowledged in the group",
            rw | raw::REDISMODULE_CMD_KEY_ACCESS | raw::REDISMODULE_CMD_KEY_UPDATE,
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX,
            index(1),
            range,
        ),
        key_spec(
            c"the dedupe store (index or Set), when DEDUPE is given (else derived in the stream's slot)",
            rw | raw::REDISMODULE_CMD_KEY_ACCESS
                | raw::REDISMODULE_CMD_KEY_INSERT
                | raw::REDISMODULE_CMD_KEY_INCOMPLETE,
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_KEYWORD,
            Bs {
                keyword: Keyword {
                    keyword: c"DEDUPE".as_ptr(),
                    startfrom: 3,
                },
            },
            range,
        ),
        key_spec(
            c"the dead-letter stream, when DEADLETTER is given",
            rw | raw::REDISMODULE_CMD_KEY_INSERT | raw::REDISMODULE_CMD_KEY_INCOMPLETE,
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_KEYWORD,
            Bs {
                keyword: Keyword {
                    keyword: c"DEADLETTER".as_ptr(),
                    startfrom: 3,
                },
            },
            range,
        ),
        key_spec(
            c"the key of every effect, reported through the getkeys-api",
            rw | raw::REDISMODULE_CMD_KEY_UPDATE | raw::REDISMODULE_CMD_KEY_INCOMPLETE,
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_UNKNOWN,
            index(0),
            unknown_fk,
        ),
        zero,
    ]
}

/// Set arity, docs, arguments and key specs of the command `name`; false
/// when the server refuses them.
pub fn set(ctx: &Context, name: &CStr) -> bool {
    let command = unsafe { raw::RedisModule_GetCommand.unwrap()(ctx.ctx, name.as_ptr()) };
    if command.is_null() {
        return false;
    }
    // SAFETY: the API table is written once, at load, before this runs.
    let Some(set_info) = (unsafe { raw::RedisModule_SetCommandInfo }) else {
        return false;
    };
    // Leaves first: each level points into the arrays below it.
    let mut hincrby_args = [
        arg(c"key", KEY).key(SPEC_EFFECTS),
        arg(c"field", STRING),
        arg(c"increment", STRING),
        end(),
    ];
    let mut hincrbyfloat_args = hincrby_args;
    let mut sadd_args = [
        arg(c"key", KEY).key(SPEC_EFFECTS),
        arg(c"member", STRING),
        end(),
    ];
    let mut strategy = [
        arg(c"approximately", TOKEN).token(c"~"),
        arg(c"equal", TOKEN).token(c"="),
        end(),
    ];
    let mut trim = [
        arg(c"strategy", ONEOF).flags(OPTIONAL).sub(&mut strategy),
        arg(c"count", INTEGER),
        end(),
    ];
    let mut pair = [arg(c"field", STRING), arg(c"value", STRING), end()];
    let mut fields = [
        arg(c"numpairs", INTEGER),
        arg(c"data", BLOCK).flags(MULTIPLE).sub(&mut pair),
        end(),
    ];
    let mut body = [
        arg(c"fields", BLOCK).token(c"FIELDS").sub(&mut fields),
        arg(c"entry", TOKEN).token(c"ENTRY"),
        end(),
    ];
    let mut xadd_args = [
        arg(c"key", KEY).key(SPEC_EFFECTS),
        arg(c"trim", BLOCK)
            .token(c"MAXLEN")
            .flags(OPTIONAL)
            .sub(&mut trim),
        arg(c"body", ONEOF).sub(&mut body),
        end(),
    ];
    let mut effects = [
        arg(c"hincrby", BLOCK)
            .token(c"HINCRBY")
            .sub(&mut hincrby_args),
        arg(c"hincrbyfloat", BLOCK)
            .token(c"HINCRBYFLOAT")
            .sub(&mut hincrbyfloat_args),
        arg(c"sadd", BLOCK).token(c"SADD").sub(&mut sadd_args),
        arg(c"xadd", BLOCK).token(c"XADD").sub(&mut xadd_args),
        end(),
    ];
    let mut store = [
        arg(c"index", TOKEN).token(c"INDEX"),
        arg(c"set", TOKEN).token(c"SET"),
        end(),
    ];
    let mut ids = [
        arg(c"numids", INTEGER),
        arg(c"id", STRING).flags(MULTIPLE),
        end(),
    ];
    let mut read = [
        arg(c"count", INTEGER).token(c"COUNT").flags(OPTIONAL),
        arg(c"min-idle-time", INTEGER)
            .token(c"CLAIM")
            .flags(OPTIONAL),
        arg(c"milliseconds", INTEGER)
            .token(c"BLOCK")
            .flags(OPTIONAL),
        end(),
    ];
    let mut source = [
        arg(c"ids", BLOCK).token(c"IDS").sub(&mut ids),
        arg(c"read", BLOCK).token(c"READ").sub(&mut read),
        end(),
    ];
    let mut dead_letter = [
        arg(c"dead-letter-key", KEY).key(SPEC_DEAD_LETTER),
        arg(c"deliveries", INTEGER).token(c"AFTER"),
        end(),
    ];
    let mut fingerprint_fields = [
        arg(c"numfields", INTEGER),
        arg(c"field", STRING).flags(MULTIPLE),
        end(),
    ];
    let mut fingerprint = [
        arg(c"fields", BLOCK).sub(&mut fingerprint_fields),
        arg(c"entry", TOKEN).token(c"ENTRY"),
        end(),
    ];
    let mut business_key = [
        arg(c"template", STRING),
        arg(c"milliseconds", INTEGER)
            .token(c"WINDOW")
            .flags(OPTIONAL),
        arg(c"fingerprint", ONEOF)
            .token(c"FINGERPRINT")
            .flags(OPTIONAL)
            .sub(&mut fingerprint),
        end(),
    ];
    let mut args = [
        arg(c"key", KEY).key(SPEC_STREAM),
        arg(c"group", STRING),
        arg(c"consumer", STRING).token(c"CONSUMER").flags(OPTIONAL),
        arg(c"dedupe-key", KEY)
            .token(c"DEDUPE")
            .flags(OPTIONAL)
            .key(SPEC_DEDUPE),
        arg(c"store", ONEOF)
            .token(c"STORE")
            .flags(OPTIONAL)
            .sub(&mut store),
        arg(c"milliseconds", INTEGER).token(c"TTL").flags(OPTIONAL),
        arg(c"business-key", BLOCK)
            .token(c"KEY")
            .flags(OPTIONAL)
            .sub(&mut business_key),
        arg(c"dead-letter", BLOCK)
            .token(c"DEADLETTER")
            .flags(OPTIONAL)
            .sub(&mut dead_letter),
        arg(c"effect", ONEOF).flags(MULTIPLE).sub(&mut effects),
        arg(c"source", ONEOF).sub(&mut source),
        end(),
    ];
    let mut specs = key_specs();
    let info = raw::RedisModuleCommandInfo {
        version: &VERSION,
        summary: SUMMARY.as_ptr(),
        complexity: COMPLEXITY.as_ptr(),
        since: SINCE.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: ARITY,
        key_specs: specs.as_mut_ptr(),
        args: args.as_mut_ptr(),
    };
    unsafe { set_info(command, &info as *const _ as *mut _) == raw::REDISMODULE_OK as i32 }
}

/// What COMMAND DOCS says about one command of the dedupe stores.
struct StoreDoc {
    summary: &'static CStr,
    complexity: &'static CStr,
    key_notes: &'static CStr,
    key_flags: u32,
    /// Takes `id [id ...]` after the key.
    ids: bool,
}

fn store_doc(name: &CStr) -> Option<StoreDoc> {
    let ro = raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS;
    let rw = raw::REDISMODULE_CMD_KEY_RW;
    Some(match name.to_bytes() {
        b"xprocess.exists" => StoreDoc {
            summary: c"Tells for each entry ID whether it was processed through a dedupe store (index or Set), or with KEY for each business key whether it was applied within its window",
            complexity: c"O(N log R) for N IDs and R ranges of an index; O(N log K) for N business keys of K",
            key_notes: c"the dedupe key",
            key_flags: ro,
            ids: true,
        },
        b"xprocess.forget" => StoreDoc {
            summary: c"Makes processed entry IDs processable again; replies how many were processed",
            complexity: c"O(N (log R + R)) for N IDs and R ranges of an index",
            key_notes: c"the dedupe key",
            key_flags: rw | raw::REDISMODULE_CMD_KEY_DELETE,
            ids: true,
        },
        b"xprocess.info" => StoreDoc {
            summary: c"Describes a dedupe store: kind, stream, ranges, holes, lowest unprocessed ID, records, memory, business keys",
            complexity: c"O(1)",
            key_notes: c"the dedupe key",
            key_flags: ro,
            ids: false,
        },
        b"xprocess.patch" => StoreDoc {
            summary: c"Internal: replays a change of a dedupe index (sent by primaries and written to the AOF; refused from clients)",
            complexity: c"O(R) for R ranges",
            key_notes: c"the dedupe index",
            key_flags: rw | raw::REDISMODULE_CMD_KEY_UPDATE,
            ids: false,
        },
        _ => return None,
    })
}

/// Set arity, docs, arguments and key spec of a dedupe-store command.
pub fn set_store_command(ctx: &Context, name: &CStr, arity: i32) -> bool {
    let Some(doc) = store_doc(name) else {
        return false;
    };
    let command = unsafe { raw::RedisModule_GetCommand.unwrap()(ctx.ctx, name.as_ptr()) };
    if command.is_null() {
        return false;
    }
    // SAFETY: the API table is written once, at load, before this runs.
    let Some(set_info) = (unsafe { raw::RedisModule_SetCommandInfo }) else {
        return false;
    };
    let index = |pos| raw::RedisModuleCommandKeySpec__bindgen_ty_1 {
        index: raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 { pos },
    };
    let mut zero = key_spec(c"", 0, 0, index(0), 0);
    zero.notes = ptr::null();
    let mut specs = [
        key_spec(
            doc.key_notes,
            doc.key_flags,
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX,
            index(1),
            raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE,
        ),
        zero,
    ];
    let mut business_keys = [arg(c"business-key", STRING).flags(MULTIPLE), end()];
    let mut ids_or_keys = [
        arg(c"id", STRING).flags(MULTIPLE),
        arg(c"keys", BLOCK).token(c"KEY").sub(&mut business_keys),
        end(),
    ];
    let mut args = [
        arg(c"dedupe-key", KEY).key(0),
        if name.to_bytes() == b"xprocess.exists" {
            arg(c"what", ONEOF).sub(&mut ids_or_keys)
        } else if doc.ids {
            arg(c"id", STRING).flags(MULTIPLE)
        } else if arity < 0 {
            arg(c"arguments", STRING).flags(MULTIPLE)
        } else {
            end()
        },
        end(),
    ];
    let info = raw::RedisModuleCommandInfo {
        version: &VERSION,
        summary: doc.summary.as_ptr(),
        complexity: doc.complexity.as_ptr(),
        since: c"0.2.0".as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity,
        key_specs: specs.as_mut_ptr(),
        args: args.as_mut_ptr(),
    };
    unsafe { set_info(command, &info as *const _ as *mut _) == raw::REDISMODULE_OK as i32 }
}
