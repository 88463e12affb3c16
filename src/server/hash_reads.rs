//! Hash field values read by one call's planning.
//!
//! Planning reads the value of every field an HINCRBY or HINCRBYFLOAT
//! touches. A small hash is a listpack (up to `hash-max-listpack-entries`
//! fields, 128 by default), where one HashGet is a walk over the whole
//! listpack: a call that reads k fields of an n-field hash compares k·n
//! entries. So once a call has looked up [`COPY_AFTER`] fields of one hash of
//! at most [`COPY_MAX`] fields, and at least [`COPY_AHEAD`] entries of the
//! call are still to come, it copies the whole hash in one walk
//! (RedisModule_ScanKey) and answers its other reads of that hash from the
//! copy. A copy costs about as much as 36 lookups of a 100-field hash
//! (callgrind: two strings per field from ScanKey, two vectors and a map
//! insert here), hence the entries still to come. A hash with more fields is
//! a hashtable, where a lookup costs the same whatever the size: it is never
//! copied.
//!
//! The copy lives for one call. Writes made during the call outside the
//! deferred HINCRBY results (HINCRBYFLOAT, HSET, HDEL... go straight to
//! Redis) must [`HashReads::forget`] the field, and those that replace or
//! remove the key [`HashReads::forget_key`], or a later read would see the
//! old value.

use crate::redis::hash::{FieldValues, Hash};
use crate::stats;
use redis_module::Context;
use xprocess_core::fast_map::FastMap;
use xprocess_core::numbers::parse_i64;
use xxhash_rust::xxh3::xxh3_64;

/// Lookups of one hash in one call before it is copied.
pub const COPY_AFTER: u32 = 8;
/// The largest hash (in fields) that is copied.
pub const COPY_MAX: usize = 128;
/// Entries of the call still to come for a copy to pay off.
pub const COPY_AHEAD: usize = 48;

enum KeyReads {
    /// Looked up this many times, not copied.
    Counting(u32),
    /// The whole hash, field -> value; `None` for a field written since the
    /// copy (read it from Redis).
    Copied(FieldValues),
}

#[derive(Default)]
pub struct HashReads {
    keys: FastMap<Vec<u8>, KeyReads>,
    /// The xxh3 of the first key looked up, counted without an entry in
    /// `keys`: a call that reads one field allocates nothing here. (A
    /// collision only makes a copy come one lookup early.)
    first: Option<u64>,
    /// Entries of the call after the current one (see `Backend::entries_after`).
    pub entries_after: usize,
}

impl HashReads {
    /// The value of `field` in the hash at `key`, `None` when the key or the
    /// field is missing.
    pub fn get(&mut self, ctx: &Context, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
        self.read(ctx, key, field, <[u8]>::to_vec)
    }

    /// The value of `field` as an integer (`Some(None)`: not one), read
    /// without copying it.
    pub fn get_int(&mut self, ctx: &Context, key: &[u8], field: &[u8]) -> Option<Option<i64>> {
        self.read(ctx, key, field, parse_i64)
    }

    /// `f` of the value of `field` in the hash at `key`.
    fn read<T>(
        &mut self,
        ctx: &Context,
        key: &[u8],
        field: &[u8],
        f: impl Fn(&[u8]) -> T,
    ) -> Option<T> {
        if let Some(KeyReads::Copied(all)) = self.keys.get(key) {
            match all.get(field) {
                Some(Some(value)) => return Some(f(value)),
                None => return None,
                Some(None) => return Hash::open(ctx, key)?.get(ctx, field).map(|v| f(&v)),
            }
        }
        let hash = Hash::open(ctx, key)?;
        if self.entries_after < COPY_AHEAD {
            // Too late in the call for a copy to pay.
            return hash.get(ctx, field).map(|v| f(&v));
        }
        let count = self.count(key);
        if count >= COPY_AFTER && hash.fields() <= COPY_MAX {
            let all = hash.copy();
            let value = all.get(field).and_then(|v| v.as_deref()).map(&f);
            self.keys.insert(key.to_vec(), KeyReads::Copied(all));
            stats::update(|s| s.hash_copies += 1);
            return value;
        }
        hash.get(ctx, field).map(|v| f(&v))
    }

    /// Count one more lookup of `key`; the lookups so far.
    fn count(&mut self, key: &[u8]) -> u32 {
        if let Some(KeyReads::Counting(n)) = self.keys.get_mut(key) {
            *n += 1;
            return *n;
        }
        let print = xxh3_64(key);
        let count = match self.first {
            None => {
                self.first = Some(print);
                return 1;
            }
            Some(first) if first == print => 2,
            Some(_) => 1,
        };
        self.keys.insert(key.to_vec(), KeyReads::Counting(count));
        count
    }

    /// `key` was replaced or removed: forget its copy.
    pub fn forget_key(&mut self, key: &[u8]) {
        if let Some(KeyReads::Copied(_)) = self.keys.get(key) {
            self.keys.remove(key);
        }
    }

    /// `field` of `key` was written behind the copy's back: read it from
    /// Redis from now on.
    pub fn forget(&mut self, key: &[u8], field: &[u8]) {
        if let Some(KeyReads::Copied(all)) = self.keys.get_mut(key) {
            all.insert(field.to_vec(), None);
        }
    }
}
