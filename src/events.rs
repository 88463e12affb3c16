//! Server and keyspace events the module listens to: they keep the entry
//! cache honest (see `entry_cache`); and a command filter that sees CONFIG
//! RESETSTAT, which has no event of its own, to reset `INFO xprocess`.

use crate::block;
use crate::entry_cache;
use crate::stats;
use redis_module::{raw, Context, RedisString, Status};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};

/// Event classes that can remove or replace a stream's entries.
const KEYSPACE_EVENTS: c_int = raw::REDISMODULE_NOTIFY_GENERIC
    | raw::REDISMODULE_NOTIFY_STREAM
    | raw::REDISMODULE_NOTIFY_EXPIRED
    | raw::REDISMODULE_NOTIFY_EVICTED;

/// Events after which a READ blocked on the key can never be served: its
/// stream or group is gone (for Redis 7.0, see `block`).
const GONE: [&str; 6] = [
    "del",
    "expired",
    "evicted",
    "rename_from",
    "move_from",
    "xgroup-destroy",
];

/// Server events after which no cached entry can be trusted.
const SERVER_EVENTS: [u64; 3] = [
    raw::REDISMODULE_EVENT_FLUSHDB,
    raw::REDISMODULE_EVENT_SWAPDB,
    raw::REDISMODULE_EVENT_LOADING,
];

pub fn subscribe(ctx: &Context) -> Status {
    // SAFETY: plain API calls at load time, with 'static callbacks.
    unsafe {
        let keyspace = raw::RedisModule_SubscribeToKeyspaceEvents.unwrap()(
            ctx.ctx,
            KEYSPACE_EVENTS,
            Some(on_keyspace_event),
        );
        if keyspace != raw::REDISMODULE_OK as c_int {
            return Status::Err;
        }
        let filter = raw::RedisModule_RegisterCommandFilter.unwrap()(
            ctx.ctx,
            Some(on_command),
            raw::REDISMODULE_CMDFILTER_NOSELF as c_int,
        );
        if filter.is_null() {
            return Status::Err;
        }
        for id in SERVER_EVENTS {
            let event = raw::RedisModuleEvent { id, dataver: 1 };
            raw::RedisModule_SubscribeToServerEvent.unwrap()(ctx.ctx, event, Some(on_server_event));
        }
    }
    Status::Ok
}

extern "C" fn on_keyspace_event(
    ctx: *mut raw::RedisModuleCtx,
    _type: c_int,
    event: *const c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    // SAFETY: Redis passes a valid context, a C string and a key string.
    let (db, event) = unsafe {
        (
            raw::RedisModule_GetSelectedDb.unwrap()(ctx),
            CStr::from_ptr(event).to_str().unwrap_or(""),
        )
    };
    let key = RedisString::string_as_slice(key);
    entry_cache::on_keyspace_event(db, event, key);
    if block::any_waiting() && GONE.contains(&event) {
        block::wake_deleted(ctx, db, key);
    }
    raw::REDISMODULE_OK as c_int
}

extern "C" fn on_server_event(
    _ctx: *mut raw::RedisModuleCtx,
    event: raw::RedisModuleEvent,
    _subevent: u64,
    _data: *mut c_void,
) {
    entry_cache::clear();
    if event.id == raw::REDISMODULE_EVENT_FLUSHDB && block::any_waiting() {
        block::wake_all();
    }
}

/// Runs before every command: cheap unless it is CONFIG RESETSTAT.
extern "C" fn on_command(filter: *mut raw::RedisModuleCommandFilterCtx) {
    // SAFETY: Redis passes a live filter context; arguments are read only.
    let arg = |pos| unsafe {
        RedisString::string_as_slice(raw::RedisModule_CommandFilterArgGet.unwrap()(filter, pos))
    };
    let argc = unsafe { raw::RedisModule_CommandFilterArgsCount.unwrap()(filter) };
    if argc == 2
        && arg(0).eq_ignore_ascii_case(b"config")
        && arg(1).eq_ignore_ascii_case(b"resetstat")
    {
        stats::reset();
    }
}
