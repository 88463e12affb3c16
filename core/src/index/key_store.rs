//! Business keys an index remembers for a window (`XPROCESS ... KEY`).
//!
//! A record is what is left of one applied business key: the 128-bit xxh3 of
//! the key, a 32-bit fingerprint of the payload that determined the effect,
//! the time its window ends (whole seconds, rounded up: a key is never
//! forgotten early) and the entry that applied it (for the CONFLICT error).
//! That is 31 bytes, stored with no per-record overhead: the records live in
//! sorted runs (structure of arrays: the keys, then the rest), like the
//! levels of a log-structured merge tree.
//!
//! - New records go into a small sorted *head* (binary insertion).
//! - A full head becomes a run; the newest runs merge while the older is not
//!   twice the size of the newer (a binary counter: O(log n) runs), up to
//!   [`RUN_MAX`] records (so no merge copies more than a few MB at once).
//!   Merges drop records whose window has passed.
//! - A run whose every window has passed is dropped whole, on every write.
//!   Records arrive in time order, so runs cover consecutive stretches of
//!   time and expire one after another: memory follows the traffic of the
//!   last window, plus at most one run's stretch.
//! - Lookups ignore records whose window has passed, so which expired
//!   records are still physically there never changes an answer.
//!
//! Everything is a pure function of the inserts and the explicit times given
//! with them: a replica replaying the same inserts builds the same store.
//! After a reload the runs may be laid out differently, but the *live*
//! records (window not passed at the store's last write time) are the same,
//! and they alone are saved, digested and compared.

use crate::id::StreamId;
use std::collections::BTreeMap;

/// Records in the head before it becomes a run.
pub const HEAD_MAX: usize = 64;
/// The largest run a merge makes.
pub const RUN_MAX: usize = 1 << 16;

/// One remembered business key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// xxh3-128 of the business key.
    pub key: u128,
    /// The payload fingerprint (the low 32 bits of an xxh3-64).
    pub fp: u32,
    /// Unix seconds at which the window ends (the key is live before it).
    pub expires: u32,
    /// The entry that applied the key.
    pub id: StreamId,
}

impl KeyRecord {
    /// A record's size in RDB payloads and `XPROCESS.PATCH`: the key (16
    /// bytes), fingerprint and expiry (4 each), the entry's ms and seq (8
    /// each), little-endian.
    pub const BYTES: usize = 16 + 4 + 4 + 8 + 8;

    /// Append the record's bytes to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key.to_le_bytes());
        out.extend_from_slice(&self.fp.to_le_bytes());
        out.extend_from_slice(&self.expires.to_le_bytes());
        out.extend_from_slice(&self.id.ms.to_le_bytes());
        out.extend_from_slice(&self.id.seq.to_le_bytes());
    }

    /// The record written by `write`; `None` unless `b` is exactly its size.
    pub fn read(b: &[u8]) -> Option<KeyRecord> {
        if b.len() != Self::BYTES {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        Some(KeyRecord {
            key: u128::from_le_bytes(b[..16].try_into().ok()?),
            fp: u32::from_le_bytes(b[16..20].try_into().ok()?),
            expires: u32::from_le_bytes(b[20..24].try_into().ok()?),
            id: StreamId {
                ms: u64_at(24),
                seq: u64_at(32),
            },
        })
    }
}

/// A record without its key: fingerprint, expiry, packed entry ID.
type Meta = [u8; 15];

/// Entry IDs pack into 7 bytes when `ms < 2^42` (until the year 2109) and
/// `seq < 2^14 - 1`; others keep this marker and sit in `overflow`.
const ID_OVERFLOW: u64 = (1 << 56) - 1;
const MS_BITS: u32 = 42;
const SEQ_LIMIT: u64 = (1 << 14) - 1;

fn pack(rec: &KeyRecord) -> (Meta, bool) {
    let fits = rec.id.ms < 1 << MS_BITS && rec.id.seq < SEQ_LIMIT;
    let id = match fits {
        true => rec.id.ms | rec.id.seq << MS_BITS,
        false => ID_OVERFLOW,
    };
    let mut meta = [0; 15];
    meta[..4].copy_from_slice(&rec.fp.to_le_bytes());
    meta[4..8].copy_from_slice(&rec.expires.to_le_bytes());
    meta[8..].copy_from_slice(&id.to_le_bytes()[..7]);
    (meta, !fits)
}

fn expires_of(meta: &Meta) -> u32 {
    u32::from_le_bytes([meta[4], meta[5], meta[6], meta[7]])
}

/// A sorted run: `keys[i]` goes with `meta[i]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Run {
    keys: Vec<u128>,
    meta: Vec<Meta>,
    /// The latest expiry in the run (it can be dropped whole after it).
    max_expires: u32,
}

impl Run {
    const EMPTY: Run = Run {
        keys: Vec::new(),
        meta: Vec::new(),
        max_expires: 0,
    };

    fn with_capacity(n: usize) -> Run {
        Run {
            keys: Vec::with_capacity(n),
            meta: Vec::with_capacity(n),
            max_expires: 0,
        }
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn push(&mut self, key: u128, meta: Meta) {
        self.keys.push(key);
        self.meta.push(meta);
        self.max_expires = self.max_expires.max(expires_of(&meta));
    }

    fn shrink(&mut self) {
        self.keys.shrink_to_fit();
        self.meta.shrink_to_fit();
    }

    fn memory(&self) -> usize {
        self.keys.capacity() * 16 + self.meta.capacity() * 15
    }

    /// The position of `key`: interpolation steps on the keys' top bits
    /// (they are uniform hashes), then a binary search.
    fn find(&self, key: u128) -> Option<usize> {
        let keys = &self.keys;
        let (mut lo, mut hi) = (0, keys.len());
        for _ in 0..3 {
            if hi - lo <= 16 {
                break;
            }
            if key < keys[lo] || key > keys[hi - 1] {
                return None;
            }
            let (a, b, x) = (keys[lo] >> 64, keys[hi - 1] >> 64, key >> 64);
            let span = (b - a).max(1);
            let offset = (x - a).min(span) * (hi - 1 - lo) as u128 / span;
            let guess = lo + offset as usize;
            match keys[guess].cmp(&key) {
                std::cmp::Ordering::Equal => return Some(guess),
                std::cmp::Ordering::Less => lo = guess + 1,
                std::cmp::Ordering::Greater => hi = guess,
            }
        }
        keys[lo..hi].binary_search(&key).ok().map(|i| lo + i)
    }
}

/// The business keys one call recorded, in replayable form: explicit times
/// and counter values, so every server builds the same store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPatch {
    /// The primary's time of the call (Unix seconds).
    pub now: u32,
    /// The call's window (ms), for XPROCESS.INFO.
    pub window: u64,
    /// The conflicts counter (a replica keeps the larger of its own and this).
    pub conflicts: u64,
    /// Added to the expired counter (an AOF rewrite carries the count so far).
    pub expired_add: u64,
    pub records: Vec<KeyRecord>,
}

impl KeyPatch {
    /// Whether the patch can be applied: no record's window ends before the
    /// time it was written at.
    pub fn check(&self) -> Result<(), &'static str> {
        match self.records.iter().any(|r| r.expires <= self.now) {
            true => Err("a business key expires before it was written"),
            false => Ok(()),
        }
    }
}

/// The key store of one index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyStore {
    /// Immutable runs, oldest first.
    runs: Vec<Run>,
    head: Run,
    /// Entry IDs that do not pack, by (key, expires).
    overflow: BTreeMap<(u128, u32), StreamId>,
    /// The latest write time given (Unix seconds): records with `expires`
    /// at or before it are gone, whether or not still stored.
    pub now: u32,
    /// The window (ms) of the latest call that recorded a key.
    pub window: u64,
    /// Records dropped because their window had passed.
    pub expired: u64,
    /// Entries refused because their key came back with another payload
    /// (a statistic: a conflict writes nothing).
    pub conflicts: u64,
}

/// The key store of an index, allocated on first write: an index that never
/// saw `KEY` holds only a null pointer. Reads of a missing store see an
/// empty one.
#[derive(Clone, Debug, Default)]
pub struct Keys(Option<Box<KeyStore>>);

static NO_KEYS: KeyStore = KeyStore::EMPTY;

impl std::ops::Deref for Keys {
    type Target = KeyStore;
    fn deref(&self) -> &KeyStore {
        self.0.as_deref().unwrap_or(&NO_KEYS)
    }
}

impl std::ops::DerefMut for Keys {
    fn deref_mut(&mut self) -> &mut KeyStore {
        self.0.get_or_insert_with(Box::default)
    }
}

impl PartialEq for Keys {
    fn eq(&self, other: &Keys) -> bool {
        **self == **other
    }
}

impl Eq for Keys {}

impl From<KeyStore> for Keys {
    fn from(store: KeyStore) -> Keys {
        Keys(Some(Box::new(store)))
    }
}

impl Keys {
    /// Bytes held, for MEMORY USAGE (nothing until the first key).
    pub fn memory(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |s| std::mem::size_of::<KeyStore>() + s.memory())
    }
}

impl KeyStore {
    const EMPTY: KeyStore = KeyStore {
        runs: Vec::new(),
        head: Run::EMPTY,
        overflow: BTreeMap::new(),
        now: 0,
        window: 0,
        expired: 0,
        conflicts: 0,
    };

    /// The live record of `key` at `now` (Unix seconds), if any.
    pub fn get(&self, key: u128, now: u32) -> Option<KeyRecord> {
        let now = now.max(self.now);
        let runs = std::iter::once(&self.head).chain(self.runs.iter().rev());
        for run in runs {
            if let Some(i) = run.find(key) {
                if expires_of(&run.meta[i]) > now {
                    return Some(self.record(key, &run.meta[i]));
                }
            }
        }
        None
    }

    fn record(&self, key: u128, meta: &Meta) -> KeyRecord {
        let mut id = [0; 8];
        id[..7].copy_from_slice(&meta[8..]);
        let packed = u64::from_le_bytes(id);
        let expires = expires_of(meta);
        let id = match packed {
            ID_OVERFLOW => self
                .overflow
                .get(&(key, expires))
                .copied()
                .unwrap_or(StreamId::MAX),
            _ => StreamId {
                ms: packed & ((1 << MS_BITS) - 1),
                seq: packed >> MS_BITS,
            },
        };
        KeyRecord {
            key,
            fp: u32::from_le_bytes([meta[0], meta[1], meta[2], meta[3]]),
            expires,
            id,
        }
    }

    /// Remember `rec`, written at `now` (Unix seconds). The caller checked
    /// that the key has no live record.
    pub fn insert(&mut self, rec: KeyRecord, now: u32) {
        self.now = self.now.max(now);
        let (meta, overflows) = pack(&rec);
        let at = self.head.keys.partition_point(|k| *k < rec.key);
        if self.head.keys.get(at) == Some(&rec.key) {
            // An expired record of the same key: the new one replaces it.
            let old = self.head.meta[at];
            self.forget_overflow(rec.key, &old);
            self.head.meta[at] = meta;
            self.expired += 1;
        } else {
            self.head.keys.insert(at, rec.key);
            self.head.meta.insert(at, meta);
        }
        if overflows {
            self.overflow.insert((rec.key, rec.expires), rec.id);
        }
        self.head.max_expires = self.head.max_expires.max(rec.expires);
        if self.head.len() >= HEAD_MAX {
            self.flush();
        }
        self.drop_expired_runs();
    }

    /// The head becomes a run; the newest runs merge.
    fn flush(&mut self) {
        let mut head = std::mem::take(&mut self.head);
        head.shrink();
        self.runs.push(head);
        while let [.., older, newer] = self.runs.as_slice() {
            if older.len() >= 2 * newer.len() || older.len() + newer.len() > RUN_MAX {
                break;
            }
            let newer = self.runs.pop().unwrap();
            let older = self.runs.pop().unwrap();
            let merged = self.merge(older, newer);
            self.runs.push(merged);
        }
    }

    /// Merge two runs, dropping records whose window has passed; where a
    /// key is in both, the later expiry wins.
    fn merge(&mut self, a: Run, b: Run) -> Run {
        let mut out = Run::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let take_a = j == b.len() || (i < a.len() && a.keys[i] <= b.keys[j]);
            let (key, mut meta) = match take_a {
                true => (a.keys[i], a.meta[i]),
                false => (b.keys[j], b.meta[j]),
            };
            if take_a {
                i += 1;
            } else {
                j += 1;
            }
            if take_a && j < b.len() && b.keys[j] == key {
                // The same key in both runs: keep the later window.
                let other = b.meta[j];
                j += 1;
                let (keep, lose) = match expires_of(&other) > expires_of(&meta) {
                    true => (other, meta),
                    false => (meta, other),
                };
                self.forget_overflow(key, &lose);
                self.expired += 1;
                meta = keep;
            }
            if expires_of(&meta) <= self.now {
                self.forget_overflow(key, &meta);
                self.expired += 1;
                continue;
            }
            out.push(key, meta);
        }
        out.shrink();
        out
    }

    /// Drop every run (and the head) whose windows have all passed.
    fn drop_expired_runs(&mut self) {
        let mut i = 0;
        while i < self.runs.len() {
            match self.runs[i].max_expires <= self.now {
                true => {
                    let run = self.runs.remove(i);
                    self.count_dropped(&run);
                }
                false => i += 1,
            }
        }
        if self.head.len() > 0 && self.head.max_expires <= self.now {
            let head = std::mem::take(&mut self.head);
            self.count_dropped(&head);
        }
    }

    fn count_dropped(&mut self, run: &Run) {
        self.expired += run.len() as u64;
        for (key, meta) in run.keys.iter().zip(&run.meta) {
            self.forget_overflow(*key, meta);
        }
    }

    fn forget_overflow(&mut self, key: u128, meta: &Meta) {
        if meta[8..] == ID_OVERFLOW.to_le_bytes()[..7] {
            self.overflow.remove(&(key, expires_of(meta)));
        }
    }

    /// Replay the keys one call recorded (on a replica, or from the AOF),
    /// once [`KeyPatch::check`] accepted them.
    pub fn apply(&mut self, patch: &KeyPatch) {
        for rec in &patch.records {
            self.insert(*rec, patch.now);
        }
        self.now = self.now.max(patch.now);
        self.window = patch.window;
        self.conflicts = self.conflicts.max(patch.conflicts);
        self.expired = self.expired.saturating_add(patch.expired_add);
        self.drop_expired_runs();
    }

    /// Live records at `now` (one pass, no sort).
    pub fn live_count(&self, now: u32) -> usize {
        let now = now.max(self.now);
        std::iter::once(&self.head)
            .chain(&self.runs)
            .map(|run| run.meta.iter().filter(|m| expires_of(m) > now).count())
            .sum()
    }

    /// The earliest window end among live records at `now`.
    pub fn first_expiry(&self, now: u32) -> Option<u32> {
        let now = now.max(self.now);
        std::iter::once(&self.head)
            .chain(&self.runs)
            .flat_map(|run| run.meta.iter().map(expires_of))
            .filter(|e| *e > now)
            .min()
    }

    /// Records stored, live or not.
    pub fn stored(&self) -> usize {
        self.head.len() + self.runs.iter().map(Run::len).sum::<usize>()
    }

    /// The live records (window not passed at `self.now`), sorted by key:
    /// what is saved, rewritten into the AOF and digested.
    pub fn live(&self) -> Vec<KeyRecord> {
        let mut all: Vec<KeyRecord> = std::iter::once(&self.head)
            .chain(&self.runs)
            .flat_map(|run| run.keys.iter().zip(&run.meta))
            .filter(|(_, meta)| expires_of(meta) > self.now)
            .map(|(key, meta)| self.record(*key, meta))
            .collect();
        all.sort_unstable_by_key(|r| (r.key, std::cmp::Reverse(r.expires)));
        all.dedup_by_key(|r| r.key);
        all
    }

    /// A store holding `records` (sorted by key, keys unique: checked).
    pub fn from_live(
        records: &[KeyRecord],
        now: u32,
        window: u64,
        expired: u64,
        conflicts: u64,
    ) -> Result<KeyStore, &'static str> {
        if records.windows(2).any(|w| w[0].key >= w[1].key) {
            return Err("business keys not sorted");
        }
        // Only live records are ever saved.
        if records.iter().any(|r| r.expires <= now) {
            return Err("a business key expired before the store's time");
        }
        let mut store = KeyStore {
            now,
            window,
            expired,
            conflicts,
            ..KeyStore::default()
        };
        for chunk in records.chunks(RUN_MAX) {
            let mut run = Run::with_capacity(chunk.len());
            for rec in chunk {
                let (meta, overflows) = pack(rec);
                if overflows {
                    store.overflow.insert((rec.key, rec.expires), rec.id);
                }
                run.push(rec.key, meta);
            }
            run.shrink();
            if run.len() > 0 {
                store.runs.push(run);
            }
        }
        Ok(store)
    }

    /// Bytes held, for MEMORY USAGE.
    pub fn memory(&self) -> usize {
        let runs: usize = self.runs.iter().map(Run::memory).sum();
        runs + self.head.memory()
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + self.overflow.len() * 48 // (key, expires) -> id and the tree's share
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: u128, expires: u32, ms: u64) -> KeyRecord {
        KeyRecord {
            key,
            fp: key as u32 ^ 0x5a5a,
            expires,
            id: StreamId { ms, seq: 1 },
        }
    }

    /// Uniform-looking keys from a counter.
    fn key(n: u64) -> u128 {
        xxhash_rust::xxh3::xxh3_128(&n.to_le_bytes())
    }

    #[test]
    fn remembers_keys_until_their_window_ends() {
        let mut s = KeyStore::default();
        s.insert(rec(key(1), 110, 5), 100);
        assert_eq!(s.get(key(1), 109).map(|r| r.id.ms), Some(5));
        assert_eq!(s.get(key(1), 110), None, "gone when the window ends");
        assert_eq!(s.get(key(2), 100), None);
    }

    #[test]
    fn finds_every_key_across_runs_and_merges() {
        let mut s = KeyStore::default();
        let n = 20_000;
        for i in 0..n {
            s.insert(rec(key(i), 1_000_000, i), 10);
        }
        assert!(s.runs.len() <= 16, "{} runs", s.runs.len());
        for i in 0..n {
            let r = s.get(key(i), 10).unwrap_or_else(|| panic!("key {i}"));
            assert_eq!((r.id.ms, r.fp), (i, key(i) as u32 ^ 0x5a5a));
        }
        for i in n..n + 1000 {
            assert_eq!(s.get(key(i), 10), None);
        }
        assert_eq!(s.live().len(), n as usize);
    }

    #[test]
    fn memory_stays_under_32_bytes_per_key() {
        let mut s = KeyStore::default();
        let n = 200_000;
        for i in 0..n {
            s.insert(rec(key(i), u32::MAX, i), 10);
        }
        let per_key = s.memory() as f64 / n as f64;
        assert!(per_key <= 32.0, "{per_key} bytes per key");
        assert!(
            per_key >= 31.0,
            "{per_key}: the accounting misses something"
        );
    }

    #[test]
    fn expired_runs_go_and_memory_follows_traffic() {
        let mut s = KeyStore::default();
        // 10,000 keys a "second" for 20 seconds, each kept 5 seconds.
        for t in 0..20u32 {
            for i in 0..10_000u64 {
                let n = u64::from(t) * 10_000 + i;
                s.insert(rec(key(n), 100 + t + 5, n), 100 + t);
            }
        }
        // Live: keys written at t = 15..19; stored: at most about a run's
        // stretch more; every other key was dropped as expired.
        assert_eq!(s.live().len(), 50_000);
        assert!(s.stored() <= 50_000 + 2 * RUN_MAX, "{} stored", s.stored());
        assert_eq!(s.stored() as u64 + s.expired, 200_000);
        assert_eq!(s.get(key(0), 119), None);
        assert!(s.get(key(199_999), 119).is_some());
    }

    #[test]
    fn a_key_applied_again_after_its_window_has_one_live_record() {
        let mut s = KeyStore::default();
        for i in 0..200u64 {
            s.insert(rec(key(i), 50, i), 10);
        }
        s.insert(rec(key(7), 90, 1000), 60);
        assert_eq!(s.get(key(7), 60).map(|r| r.id.ms), Some(1000));
        assert_eq!(s.live().len(), 1);
    }

    #[test]
    fn ids_that_do_not_pack_survive() {
        let mut s = KeyStore::default();
        let big = StreamId {
            ms: u64::MAX,
            seq: 99_999,
        };
        let mut r = rec(key(1), 500, 0);
        r.id = big;
        s.insert(r, 10);
        for i in 2..300 {
            s.insert(rec(key(i), 500, i), 10);
        }
        assert_eq!(s.get(key(1), 10).map(|r| r.id), Some(big));
        let copy = KeyStore::from_live(&s.live(), s.now, 0, 0, 0).unwrap();
        assert_eq!(copy.get(key(1), 10).map(|r| r.id), Some(big));
        assert_eq!(copy.live(), s.live());
    }

    #[test]
    fn the_same_inserts_build_the_same_store() {
        let build = || {
            let mut s = KeyStore::default();
            for i in 0..5_000u64 {
                let t = 100 + (i / 500) as u32;
                if s.get(key(i % 3_000), t).is_none() {
                    s.insert(rec(key(i % 3_000), t + 3, i), t);
                }
            }
            s
        };
        assert_eq!(build(), build());
        let s = build();
        let reloaded = KeyStore::from_live(&s.live(), s.now, 0, s.expired, 0).unwrap();
        assert_eq!(reloaded.live(), s.live());
    }

    #[test]
    fn from_live_refuses_unsorted_or_repeated_keys() {
        let a = rec(key(1), 10, 1);
        let b = rec(key(2), 10, 2);
        let (lo, hi) = if a.key < b.key { (a, b) } else { (b, a) };
        assert!(KeyStore::from_live(&[lo, hi], 0, 0, 0, 0).is_ok());
        assert!(KeyStore::from_live(&[hi, lo], 0, 0, 0, 0).is_err());
        assert!(KeyStore::from_live(&[lo, lo], 0, 0, 0, 0).is_err());
    }
}
