//! Module configuration: `xprocess.*`, settable as loadmodule arguments, in
//! redis.conf and with CONFIG SET / CONFIG GET.

use std::sync::atomic::{AtomicI64, Ordering};

/// `xprocess.default-ttl`: dedupe-set expiry in ms when a call gives no TTL;
/// 0 means the dedupe set never expires.
pub static DEFAULT_TTL: AtomicI64 = AtomicI64::new(0);

pub fn default_ttl_ms() -> u64 {
    DEFAULT_TTL.load(Ordering::Relaxed).max(0) as u64
}
