//! The server's clock.

use redis_module::raw;

/// The server's clock in Unix ms (cached per command by Redis, so every
/// read within one call agrees).
pub fn now_ms() -> u64 {
    // SAFETY: a plain clock read.
    unsafe { raw::RedisModule_Milliseconds.unwrap()() as u64 }
}

/// The server's clock in Unix seconds (the business keys' unit).
pub fn now_secs() -> u32 {
    u32::try_from(now_ms() / 1000).unwrap_or(u32::MAX)
}
