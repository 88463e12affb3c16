//! xprocess: exactly-once effects for Redis Streams.
//!
//! One command, XPROCESS, checks a dedupe set keyed by entry ID, applies
//! Redis-native effects templated from the entry's fields, records the ID and
//! XACKs, atomically. Layout: `parse` (argv -> request), `template`, `plan`
//! (validate an entry's effects before any runs), `process` (the per-entry
//! loop), `dedupe` (stores), `execute` (the Redis backend), `replication`
//! (the write path), `reply`, `keys`, `config`, `errors`.

pub mod cluster;
pub mod command_info;
pub mod config;
pub mod dedupe;
pub mod entry_cache;
pub mod errors;
pub mod events;
pub mod execute;
pub mod fingerprint;
pub mod hash_writes;
pub mod info_fields;
pub mod keys;
pub mod numbers;
pub mod parse;
pub mod plan;
pub mod process;
pub mod replication;
pub mod reply;
pub mod stats;
pub mod stream_reader;
pub mod template;

use redis_module::configuration::ConfigurationFlags;
use redis_module::{raw, redis_module, Context, RedisString, Status};
use std::ffi::CString;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// XPROCESS key group [CONSUMER consumer] [DEDUPE dedupe-key] [TTL milliseconds]
///          effect [effect ...] IDS numids id [id ...]
fn xprocess(ctx: &Context, argv: &[&[u8]]) {
    if ctx.is_keys_position_request() {
        return report_keys(ctx, argv);
    }
    match parse::parse(argv).and_then(|req| execute::run(ctx, &req)) {
        Ok(outcomes) => reply::outcomes(ctx, &outcomes),
        Err(e) => reply::error(ctx, &e),
    }
}

/// getkeys-api: the stream, the DEDUPE key and every effect target.
fn report_keys(ctx: &Context, argv: &[&[u8]]) {
    let positions = match parse::parse(argv) {
        Ok(req) => req.key_positions,
        Err(_) => vec![1], // the call will fail; route it by its stream
    };
    for pos in positions {
        ctx.key_at_pos(pos as i32);
    }
}

/// Redis' entry point for XPROCESS. A panic must not unwind into Redis (it
/// would abort the server): it is logged and answered with an error.
extern "C" fn xprocess_command(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    let context = Context::new(ctx);
    let args: Vec<&[u8]> = (0..argc as usize)
        .map(|i| RedisString::string_as_slice(unsafe { *argv.add(i) }))
        .collect();
    if catch_unwind(AssertUnwindSafe(|| xprocess(&context, &args))).is_err() {
        reply::error(&context, &errors::INTERNAL.into());
    }
    raw::Status::Ok as c_int
}

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
    if events::subscribe(ctx) == Status::Err {
        ctx.log_warning("xprocess: could not subscribe to keyspace and server events");
        return Status::Err;
    }
    register_command(ctx)
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
    if !command_info::set(ctx, &name) {
        ctx.log_warning("xprocess: failed to set the arity and docs of XPROCESS");
        return Status::Err;
    }
    // ACL categories are a Redis 7.2 API: optional, so the module loads on 7.0.
    // SAFETY: the API table is written once, at load, before this runs.
    if let Some(set_categories) = unsafe { raw::RedisModule_SetCommandACLCategories } {
        let command = unsafe { raw::RedisModule_GetCommand.unwrap()(ctx.ctx, name.as_ptr()) };
        let categories = CString::new("write stream").unwrap();
        if unsafe { set_categories(command, categories.as_ptr()) } != 0 {
            ctx.log_warning("xprocess: could not set ACL categories of XPROCESS");
        }
    }
    Status::Ok
}

// Inside Redis, Rust allocates through Redis (so INFO memory and maxmemory see
// it). Unit tests and fuzz targets run without Redis: the system allocator.
#[cfg(not(any(test, fuzzing)))]
macro_rules! allocator {
    () => {
        redis_module::alloc::RedisAlloc
    };
}

#[cfg(any(test, fuzzing))]
macro_rules! allocator {
    () => {
        std::alloc::System
    };
}

redis_module! {
    name: "xprocess",
    version: 1,
    allocator: (allocator!(), allocator!()),
    data_types: [],
    init: init,
    configurations: [
        i64: [
            ["default-ttl", &config::DEFAULT_TTL, 0, 0, parse::MAX_TTL, ConfigurationFlags::DEFAULT, None],
            ["max-ids", &config::MAX_IDS, config::DEFAULT_MAX_IDS, 1, 10_000_000, ConfigurationFlags::DEFAULT, None],
        ],
        string: [],
        bool: [],
        enum: [],
        module_args_as_configuration: true,
    ]
}
