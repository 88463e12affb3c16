//! Module timers: run a function later on the main thread, at most one
//! pending per `Pending` flag (a timer is an event-loop wakeup; one is
//! enough, whoever asks).

use redis_module::{raw, Context};
use std::cell::Cell;
use std::os::raw::{c_longlong, c_void};
use std::thread::LocalKey;

/// A flag that is set while a timer of its owner is pending.
pub type Pending = LocalKey<Cell<bool>>;

/// The function and flag of one pending timer.
struct Timer {
    f: fn(&Context),
    pending: &'static Pending,
}

/// Run `f` in `ms` milliseconds (0: on the next turn of the event loop),
/// unless `pending` says one is already set.
pub fn after(ctx: &Context, ms: u64, pending: &'static Pending, f: fn(&Context)) {
    set(ctx.ctx, ms, pending, f);
}

fn set(ctx: *mut raw::RedisModuleCtx, ms: u64, pending: &'static Pending, f: fn(&Context)) {
    if pending.with(|p| p.replace(true)) {
        return;
    }
    let data = Box::into_raw(Box::new(Timer { f, pending })).cast::<c_void>();
    // SAFETY: a live context (only its module is used); `fire` takes back
    // the box exactly once.
    unsafe { raw::RedisModule_CreateTimer.unwrap()(ctx, ms as c_longlong, Some(fire), data) };
}

thread_local! {
    /// A context of the module, for timers set where Redis gives none (a
    /// value being loaded); made at load, never freed.
    static MODULE: Cell<*mut raw::RedisModuleCtx> = const { Cell::new(std::ptr::null_mut()) };
}

/// Keep a context of the module for `after_detached` (at load).
pub fn init(ctx: &Context) {
    // SAFETY: a live context at load; the detached context lives as long as
    // the module.
    MODULE.set(unsafe { raw::RedisModule_GetDetachedThreadSafeContext.unwrap()(ctx.ctx) });
}

/// `after`, where no context is at hand (main thread only). Nothing
/// happens before `init`.
pub fn after_detached(ms: u64, pending: &'static Pending, f: fn(&Context)) {
    let ctx = MODULE.get();
    if !ctx.is_null() {
        set(ctx, ms, pending, f);
    }
}

extern "C" fn fire(ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    // SAFETY: `data` is the box `after` made, given to this one timer.
    let timer = unsafe { Box::from_raw(data.cast::<Timer>()) };
    timer.pending.with(|p| p.set(false));
    (timer.f)(&Context::new(ctx));
}
