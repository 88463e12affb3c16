//! An in-process store, for unit tests of the processing logic.

use crate::errors::ReplyError;
use crate::fast_map::{FastMap, FastSet};
use crate::id::StreamId;
use crate::store::DedupeStore;

#[derive(Default)]
pub struct MemoryStore {
    pub committed: FastSet<StreamId>,
    pending: FastSet<StreamId>,
    /// Business keys: fingerprint and entry (no window: tests need none).
    pub keys: FastMap<u128, (u32, StreamId)>,
    pub conflicts: u64,
}

impl DedupeStore for MemoryStore {
    fn contains(&mut self, id: StreamId) -> Result<bool, ReplyError> {
        Ok(self.committed.contains(&id) || self.pending.contains(&id))
    }

    fn insert(&mut self, id: StreamId) {
        self.pending.insert(id);
    }

    fn commit(&mut self) -> Result<(), ReplyError> {
        self.committed.extend(self.pending.drain());
        Ok(())
    }

    fn key(&mut self, key: u128) -> Option<(u32, StreamId)> {
        self.keys.get(&key).copied()
    }

    fn record_key(&mut self, key: u128, fp: u32, id: StreamId) {
        self.keys.insert(key, (fp, id));
    }

    fn conflict(&mut self) {
        self.conflicts += 1;
    }
}
