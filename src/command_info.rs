//! What `COMMAND INFO` / `COMMAND DOCS` say about XPROCESS (Redis 7.0+).
//!
//! Keys are reported through the getkeys-api (effects put keys at variable
//! positions that key specs cannot describe), so only arity and docs are set.

use redis_module::{raw, Context};
use std::ffi::CStr;
use std::mem::size_of;
use std::ptr;

/// `XPROCESS key group SADD key member IDS numids id`: 9 at the least.
pub const ARITY: i32 = -9;

const SUMMARY: &CStr = c"Applies effects of stream entries exactly once: dedupe by entry ID, apply, record and XACK, atomically";
const COMPLEXITY: &CStr = c"O(N*E) where N is the number of IDs and E the number of effects";
const SINCE: &CStr = c"0.1.0";

static VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: size_of::<raw::RedisModuleCommandArg>(),
};

/// Set arity and docs of the command `name`; false when the server refuses.
pub fn set(ctx: &Context, name: &CStr) -> bool {
    let command = unsafe { raw::RedisModule_GetCommand.unwrap()(ctx.ctx, name.as_ptr()) };
    if command.is_null() {
        return false;
    }
    // SAFETY: the API table is written once, at load, before this runs.
    let Some(set_info) = (unsafe { raw::RedisModule_SetCommandInfo }) else {
        return false;
    };
    let info = raw::RedisModuleCommandInfo {
        version: &VERSION,
        summary: SUMMARY.as_ptr(),
        complexity: COMPLEXITY.as_ptr(),
        since: SINCE.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: ARITY,
        key_specs: ptr::null_mut(),
        args: ptr::null_mut(),
    };
    unsafe { set_info(command, &info as *const _ as *mut _) == raw::REDISMODULE_OK as i32 }
}
