//! xprocess: exactly-once effects for Redis Streams.
//!
//! XPROCESS checks a dedupe store keyed by entry ID, applies Redis-native
//! effects templated from the entry's fields, records the ID and XACKs,
//! atomically. What a call does is decided in the pure core
//! (`xprocess_core`); this crate is the module around it, laid out in
//! ARCHITECTURE.md. It subscribes to no event and filters no command: it
//! costs the commands that never call it nothing.

pub mod commands;
pub mod config;
pub mod index;
pub mod info_fields;
pub mod redis;
pub mod server;
pub mod stats;
pub mod store;
pub mod stream;

use index::data_type::INDEX_TYPE;
use redis_module::configuration::ConfigurationFlags;
use redis_module::{raw, redis_module, Context, RedisString, Status};
use std::ffi::CString;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use xprocess_core::errors::{self, ReplyError};

type Handler = fn(&Context, &[&[u8]]) -> Result<(), ReplyError>;

/// Run a command handler for Redis: an error becomes the reply, and a panic
/// must not unwind into Redis (it would abort the server): it is logged and
/// answered with an error.
fn run_handler(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    handler: Handler,
) -> c_int {
    let context = Context::new(ctx);
    let args = args(argv, argc);
    match catch_unwind(AssertUnwindSafe(|| handler(&context, &args))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => redis::reply::error(&context, &e),
        Err(_) => redis::reply::error(&context, &errors::INTERNAL.into()),
    }
    raw::Status::Ok as c_int
}

/// A command's arguments as byte slices.
pub(crate) fn args<'a>(argv: *mut *mut raw::RedisModuleString, argc: c_int) -> Vec<&'a [u8]> {
    (0..argc as usize)
        // SAFETY: Redis passes argc live strings, alive for the callback.
        .map(|i| RedisString::string_as_slice(unsafe { *argv.add(i) }))
        .collect()
}

/// The C entry point of a [`Handler`].
macro_rules! entry_point {
    ($name:ident, $handler:path) => {
        extern "C" fn $name(
            ctx: *mut raw::RedisModuleCtx,
            argv: *mut *mut raw::RedisModuleString,
            argc: c_int,
        ) -> c_int {
            run_handler(ctx, argv, argc, $handler)
        }
    };
}

entry_point!(xprocess_command, commands::xprocess::xprocess);
entry_point!(exists_command, commands::index::exists);
entry_point!(forget_command, commands::index::forget);
entry_point!(info_command, commands::index::info);
entry_point!(patch_command, commands::index::apply_patch);

/// `INFO xprocess`.
extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    stats::info(ctx);
}

fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    std::panic::set_hook(Box::new(|info| {
        redis_module::logging::log_warning(format!("xprocess: panic: {info}"));
    }));
    // Replaces the macro's default INFO callback (a module has one).
    unsafe { raw::RedisModule_RegisterInfoFunc.unwrap()(ctx.ctx, Some(info)) };
    // Loaders check RedisModule_IsIOError instead of aborting on a short read.
    unsafe {
        raw::RedisModule_SetModuleOptions.unwrap()(
            ctx.ctx,
            raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS as c_int,
        )
    };
    if register_command(ctx) == Status::Err {
        return Status::Err;
    }
    register_store_commands(ctx)
}

/// A command of the dedupe stores: (name, handler, flags, arity, ACL categories).
type StoreCommand = (
    &'static str,
    extern "C" fn(*mut raw::RedisModuleCtx, *mut *mut raw::RedisModuleString, c_int) -> c_int,
    &'static str,
    i32,
    &'static str,
);

const STORE_COMMANDS: [StoreCommand; 4] = [
    (
        "xprocess.exists",
        exists_command,
        "readonly fast",
        -3,
        "read",
    ),
    (
        "xprocess.forget",
        forget_command,
        "write deny-oom",
        -3,
        "write",
    ),
    ("xprocess.info", info_command, "readonly", 2, "read"),
    (
        "xprocess.patch",
        patch_command,
        "write deny-oom",
        4,
        "write",
    ),
];

fn register_store_commands(ctx: &Context) -> Status {
    for (name, handler, flags, arity, categories) in STORE_COMMANDS {
        let cname = CString::new(name).unwrap();
        let cflags = CString::new(flags).unwrap();
        let created = unsafe {
            raw::RedisModule_CreateCommand.unwrap()(
                ctx.ctx,
                cname.as_ptr(),
                Some(handler),
                cflags.as_ptr(),
                1,
                1,
                1,
            )
        };
        if created == raw::Status::Err as c_int
            || !redis::command_info::set_store_command(ctx, &cname, arity)
        {
            ctx.log_warning(&format!("xprocess: failed to create the {name} command"));
            return Status::Err;
        }
        set_acl_categories(ctx, &cname, categories);
    }
    Status::Ok
}

/// ACL categories are a Redis 7.2 API: optional, so the module loads on 7.0.
fn set_acl_categories(ctx: &Context, name: &CString, categories: &str) {
    // SAFETY: the API table is written once, at load, before this runs.
    if let Some(set_categories) = unsafe { raw::RedisModule_SetCommandACLCategories } {
        let command = unsafe { raw::RedisModule_GetCommand.unwrap()(ctx.ctx, name.as_ptr()) };
        let categories = CString::new(categories).unwrap();
        if unsafe { set_categories(command, categories.as_ptr()) } != 0 {
            ctx.log_warning(&format!(
                "xprocess: could not set ACL categories of {}",
                name.to_string_lossy()
            ));
        }
    }
}

/// Registered by hand rather than with `redis_module!`'s `commands` so the
/// handler is panic-safe and key positions come from the getkeys-api.
fn register_command(ctx: &Context) -> Status {
    let name = CString::new("xprocess").unwrap();
    let flags = CString::new("write deny-oom getkeys-api").unwrap();
    let created = unsafe {
        raw::RedisModule_CreateCommand.unwrap()(
            ctx.ctx,
            name.as_ptr(),
            Some(xprocess_command),
            flags.as_ptr(),
            1,
            1,
            1,
        )
    };
    if created == raw::Status::Err as c_int {
        ctx.log_warning("xprocess: failed to create the XPROCESS command");
        return Status::Err;
    }
    if !redis::command_info::set(ctx, &name) {
        ctx.log_warning("xprocess: failed to set the arity and docs of XPROCESS");
        return Status::Err;
    }
    set_acl_categories(ctx, &name, "write stream");
    Status::Ok
}

// Inside Redis, Rust allocates through Redis (so INFO memory and maxmemory see
// it). Unit tests run without Redis: the system allocator.
#[cfg(not(test))]
macro_rules! allocator {
    () => {
        redis_module::alloc::RedisAlloc
    };
}

#[cfg(test)]
macro_rules! allocator {
    () => {
        std::alloc::System
    };
}

redis_module! {
    name: "xprocess",
    version: 1,
    allocator: (allocator!(), allocator!()),
    data_types: [INDEX_TYPE],
    init: init,
    configurations: [
        i64: [
            ["default-ttl", &config::DEFAULT_TTL, 0, 0, xprocess_core::request::MAX_TTL, ConfigurationFlags::DEFAULT, None],
            ["max-ids", &config::MAX_IDS, config::DEFAULT_MAX_IDS, 1, 10_000_000, ConfigurationFlags::DEFAULT, None],
            ["key-window", &config::KEY_WINDOW, config::DEFAULT_KEY_WINDOW, 1, xprocess_core::request::MAX_WINDOW, ConfigurationFlags::DEFAULT, None],
        ],
        string: [],
        bool: [],
        enum: [],
        module_args_as_configuration: true,
    ]
}
