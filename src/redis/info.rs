//! The module's INFO section (`INFO xprocess`): one callback, registered at
//! load, that writes the fields a function of the module gives.

use redis_module::{raw, Context};
use std::ffi::CString;
use std::os::raw::c_int;
use std::ptr;
use std::sync::OnceLock;

/// The section's fields, as (name, value); names get the `xprocess_` prefix.
pub type Fields = fn() -> Vec<(&'static str, u64)>;

static FIELDS: OnceLock<Fields> = OnceLock::new();

/// Make `fields` the module's INFO section (replacing the default callback
/// of `redis_module!`: a module has one).
pub fn register(ctx: &Context, fields: Fields) {
    let _ = FIELDS.set(fields);
    // SAFETY: a live context at load; the callback is 'static.
    unsafe { raw::RedisModule_RegisterInfoFunc.unwrap()(ctx.ctx, Some(section)) };
}

extern "C" fn section(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    let Some(fields) = FIELDS.get() else {
        return;
    };
    // SAFETY: called by Redis with a live INFO context; names are copied.
    unsafe {
        raw::RedisModule_InfoAddSection.unwrap()(ctx, ptr::null_mut());
        for (name, value) in fields() {
            let name = CString::new(name).unwrap_or_default();
            raw::RedisModule_InfoAddFieldULongLong.unwrap()(ctx, name.as_ptr().cast_mut(), value);
        }
    }
}

/// Loaders check `RedisModule_IsIOError` instead of aborting on a short read.
pub fn handle_io_errors(ctx: &Context) {
    // SAFETY: a live context at load.
    unsafe {
        raw::RedisModule_SetModuleOptions.unwrap()(
            ctx.ctx,
            raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS as c_int,
        )
    };
}
