//! An in-process store, for unit tests of the processing logic.

use super::DedupeStore;
use crate::errors::ReplyError;
use crate::fingerprint::FastSet;
use crate::parse::StreamId;

#[derive(Default)]
pub struct MemoryStore {
    pub committed: FastSet<StreamId>,
    pending: FastSet<StreamId>,
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
}
