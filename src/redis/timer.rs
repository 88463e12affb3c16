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

/// Run `f` on the next turn of the event loop, from a timer's callback,
/// unless `pending` says it is already due. A 0 ms timer set there fires a
/// millisecond later (Redis rounds the next period of its module timers up
/// to 1 ms), which would leave the server idle half the time between two
/// turns of a busy processor: the turn is asked for through the event
/// loop's one-shot queue instead (its pipe wakes the next turn at once),
/// whose callback sets the timer, due in that same turn.
pub fn next_turn(pending: &'static Pending, f: fn(&Context)) {
    // SAFETY: the API table is written once, at load.
    let Some(add) = (unsafe { raw::RedisModule_EventLoopAddOneShot }) else {
        return after_detached(0, pending, f);
    };
    if MODULE.get().is_null() || pending.with(|p| p.replace(true)) {
        return;
    }
    let data = Box::into_raw(Box::new(Timer { f, pending })).cast::<c_void>();
    // SAFETY: `one_shot` takes back the box exactly once.
    unsafe { add(Some(one_shot), data) };
}

extern "C" fn one_shot(data: *mut c_void) {
    // SAFETY: the module's context (set before any one-shot is asked for);
    // `fire` takes back the box `next_turn` made.
    unsafe { raw::RedisModule_CreateTimer.unwrap()(MODULE.get(), 0, Some(fire), data) };
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
