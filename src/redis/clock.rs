//! The server's clock.

use redis_module::raw;

/// The server's clock in Unix ms (cached per command by Redis, so every
/// read within one call agrees).
pub fn now_ms() -> u64 {
    // SAFETY: a plain clock read.
    unsafe { raw::RedisModule_Milliseconds.unwrap()() as u64 }
}
