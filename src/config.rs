//! Module configuration: `xprocess.*`, settable as loadmodule arguments, in
//! redis.conf and with CONFIG SET / CONFIG GET.

use std::sync::atomic::{AtomicI64, Ordering};

/// `xprocess.default-ttl`: dedupe-set expiry in ms when a call gives no TTL;
/// 0 means the dedupe set never expires.
pub static DEFAULT_TTL: AtomicI64 = AtomicI64::new(0);

pub fn default_ttl_ms() -> u64 {
    DEFAULT_TTL.load(Ordering::Relaxed).max(0) as u64
}

/// `xprocess.max-ids`: the largest `numids` a call may give. A call runs
/// atomically and blocks the server while it runs, so this bounds that time.
pub static MAX_IDS: AtomicI64 = AtomicI64::new(DEFAULT_MAX_IDS);
pub const DEFAULT_MAX_IDS: i64 = 10_000;

pub fn max_ids() -> usize {
    MAX_IDS.load(Ordering::Relaxed).max(1) as usize
}

/// `xprocess.key-window`: how long a business key (`KEY`) is remembered
/// after it was applied, in ms, when a call gives no WINDOW.
pub static KEY_WINDOW: AtomicI64 = AtomicI64::new(DEFAULT_KEY_WINDOW);
pub const DEFAULT_KEY_WINDOW: i64 = 24 * 3600 * 1000;

pub fn key_window_ms() -> u64 {
    KEY_WINDOW.load(Ordering::Relaxed).max(1) as u64
}

/// `xprocess.processor-budget-us`: how long standing processors may hold
/// the server per turn of its event loop, in microseconds (another client's
/// command waits about two turns at most).
pub static PROCESSOR_BUDGET_US: AtomicI64 = AtomicI64::new(DEFAULT_PROCESSOR_BUDGET_US);
pub const DEFAULT_PROCESSOR_BUDGET_US: i64 = 1000;

pub fn processor_budget() -> std::time::Duration {
    std::time::Duration::from_micros(PROCESSOR_BUDGET_US.load(Ordering::Relaxed).max(1) as u64)
}
