//! Counters since the module loaded, shown by `INFO xprocess`.
//!
//! `redis_calls` counts RedisModule_Call invocations: the test suite checks
//! it per call and per entry against the design (a regression guard that is
//! not a timing test).

use redis_module::raw;
use std::cell::Cell;
use std::ffi::CString;
use std::ptr;

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    pub calls: u64,
    pub entries: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub errors: u64,
    pub fenced: u64,
    pub redis_calls: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Effects applied, per kind.
    pub hincrby: u64,
    pub hincrbyfloat: u64,
    pub sadd: u64,
    pub xadd: u64,
}

thread_local! {
    // Redis runs module commands on its main thread only.
    static STATS: Cell<Stats> = Cell::new(Stats::default());
}

/// Change the counters.
pub fn update(f: impl FnOnce(&mut Stats)) {
    STATS.with(|cell| {
        let mut stats = cell.get();
        f(&mut stats);
        cell.set(stats);
    });
}

pub fn get() -> Stats {
    STATS.with(Cell::get)
}

/// Zero every counter (CONFIG RESETSTAT).
pub fn reset() {
    STATS.with(|cell| cell.set(Stats::default()));
}

impl Stats {
    fn fields(&self) -> [(&'static str, u64); 13] {
        [
            ("calls", self.calls),
            ("entries", self.entries),
            ("applied", self.applied),
            ("duplicates", self.duplicates),
            ("errors", self.errors),
            ("fenced", self.fenced),
            ("redis_calls", self.redis_calls),
            ("entry_cache_hits", self.cache_hits),
            ("entry_cache_misses", self.cache_misses),
            ("effects_hincrby", self.hincrby),
            ("effects_hincrbyfloat", self.hincrbyfloat),
            ("effects_sadd", self.sadd),
            ("effects_xadd", self.xadd),
        ]
    }
}

/// The module's default INFO section, `# xprocess`, fields `xprocess_*`.
pub(crate) fn info(ctx: *mut raw::RedisModuleInfoCtx) {
    // SAFETY: called by Redis with a live INFO context.
    unsafe {
        raw::RedisModule_InfoAddSection.unwrap()(ctx, ptr::null_mut());
        for (name, value) in get().fields() {
            let name = CString::new(name).unwrap_or_default();
            raw::RedisModule_InfoAddFieldULongLong.unwrap()(ctx, name.as_ptr().cast_mut(), value);
        }
    }
}
