//! Keyspace events.

use redis_module::{raw, Context, NotifyEvent, RedisString};
use std::ffi::CStr;

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
