//! Keyspace events: raised, and followed.

use redis_module::{raw, Context, NotifyEvent, RedisString};
use std::cell::Cell;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

/// Raise `event` of `class` on `key`, `times` times (one per change, as
/// the native commands do).
pub fn notify(ctx: &Context, class: NotifyEvent, event: &CStr, key: &[u8], times: usize) {
    if times == 0 {
        return;
    }
    let key = RedisString::create_from_slice(ctx.ctx, key);
    notify_raw(ctx.ctx, class, event, key.inner, times);
}

/// `notify` for a key name that is already a module string.
pub(crate) fn notify_raw(
    ctx: *mut raw::RedisModuleCtx,
    class: NotifyEvent,
    event: &CStr,
    key: *mut raw::RedisModuleString,
    times: usize,
) {
    for _ in 0..times {
        // SAFETY: a live context, an event name and a live key name; Redis
        // copies what it keeps.
        unsafe {
            raw::RedisModule_NotifyKeyspaceEvent.unwrap()(ctx, class.bits(), event.as_ptr(), key)
        };
    }
}

thread_local! {
    static STREAM_EVENT: Cell<Option<StreamEvent>> = const { Cell::new(None) };
}

/// What `on_stream_event` calls: the event's name (`xadd`, ...) and key.
pub type StreamEvent = fn(&Context, &[u8], &[u8]);

/// Call `f` on every keyspace event of a stream key from now on (once
/// subscribed, the first `f` stays). A subscription makes every keyspace
/// event of every command check our type mask, so it is taken only when
/// first needed, never at load.
pub fn on_stream_event(ctx: &Context, f: StreamEvent) {
    if STREAM_EVENT.replace(Some(f)).is_some() {
        return;
    }
    // SAFETY: a live context; the callback is 'static.
    unsafe {
        raw::RedisModule_SubscribeToKeyspaceEvents.unwrap()(
            ctx.ctx,
            raw::REDISMODULE_NOTIFY_STREAM as c_int,
            Some(stream_event),
        )
    };
}

extern "C" fn stream_event(
    ctx: *mut raw::RedisModuleCtx,
    _type: c_int,
    event: *const c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    if let Some(f) = STREAM_EVENT.get() {
        // SAFETY: Redis passes a NUL-terminated event name and a live key.
        let event = unsafe { CStr::from_ptr(event) }.to_bytes();
        f(&Context::new(ctx), event, RedisString::string_as_slice(key));
    }
    0
}
