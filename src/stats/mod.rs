//! Counters since the module loaded, shown by `INFO xprocess`. They only
//! grow (CONFIG RESETSTAT leaves them: seeing it would take a command filter
//! run before every command of every client); take rates from
//! differences, as with any monotonic counter.
//!
//! `redis_calls` counts RedisModule_Call invocations: the test suite checks
//! it per call and per entry against the design (a regression guard that is
//! not a timing test).

mod fields;
pub mod processors;

use serde::Serialize;
use std::cell::Cell;

/// Field names become `INFO xprocess` fields (`xprocess_<name>`) through
/// serde, in this order.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub calls: u64,
    pub entries: u64,
    pub applied: u64,
    /// Entries recorded and acked with no effect: no effect's WHEN held.
    pub no_effect: u64,
    pub duplicates: u64,
    pub errors: u64,
    pub fenced: u64,
    /// Entries refused with CONFLICT (business key, another payload).
    pub conflicts: u64,
    /// Entries moved to a dead-letter stream (DEADLETTER).
    pub dead_lettered: u64,
    /// Entries READ took: new ones, and idle ones claimed (CLAIM).
    pub read_new: u64,
    pub read_claimed: u64,
    /// New entries READ kept out of the PEL (read straight from the stream).
    pub read_outside_pel: u64,
    /// READ calls that blocked (BLOCK), and those waiting now.
    pub blocked: u64,
    pub blocked_clients: u64,
    pub redis_calls: u64,
    pub entry_cache_hits: u64,
    pub entry_cache_misses: u64,
    /// Times the dedupe index had to walk the stream to count the entries
    /// between two IDs (no cached window of entries could tell).
    pub gap_scans: u64,
    /// Small hashes copied whole by a call that reads many of their fields.
    pub hash_copies: u64,
    /// Effects applied, per kind.
    pub effects_hincrby: u64,
    pub effects_hincrbyfloat: u64,
    pub effects_hset: u64,
    pub effects_hsetnx: u64,
    pub effects_hdel: u64,
    pub effects_set: u64,
    pub effects_incrby: u64,
    pub effects_incrbyfloat: u64,
    pub effects_del: u64,
    pub effects_sadd: u64,
    pub effects_srem: u64,
    pub effects_zadd: u64,
    pub effects_zincrby: u64,
    pub effects_zrem: u64,
    pub effects_pfadd: u64,
    pub effects_lpush: u64,
    pub effects_rpush: u64,
    pub effects_pexpire: u64,
    pub effects_publish: u64,
    pub effects_xadd: u64,
    /// Function calls made (FCALL), and those that raised an error.
    pub effects_fcall: u64,
    pub fcall_errors: u64,
    /// Standing processors: batches run, entries taken, entries that failed
    /// and batches that failed whole, and processors that stopped by
    /// themselves (their group or stream was deleted).
    pub processor_batches: u64,
    pub processor_entries: u64,
    pub processor_errors: u64,
    pub processor_stops: u64,
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

/// The fields of `INFO xprocess` (`xprocess_<name>`), in declaration order.
pub fn info_fields() -> Vec<(&'static str, u64)> {
    fields::fields(&get())
}
