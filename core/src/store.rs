//! What a dedupe store does, whatever keeps the records.

use crate::errors::ReplyError;
use crate::id::StreamId;

/// A store answers "was this ID processed?" and records newly processed IDs.
/// Records are written by the end of the call (`commit`), in the same atomic
/// command as the effects and the XACK.
pub trait DedupeStore {
    /// Whether `id` was processed, by an earlier call or earlier in this one.
    fn contains(&mut self, id: StreamId) -> Result<bool, ReplyError>;
    /// Remember `id` as processed (written by `commit`).
    fn insert(&mut self, id: StreamId);
    /// Write what `insert` buffered.
    fn commit(&mut self) -> Result<(), ReplyError>;
    /// A hint that `ids` are about to be looked up: a store may do it in bulk.
    fn prefetch(&mut self, _ids: &[StreamId]) {}
    /// The last ID recorded below `id` (not processed yet), if recording
    /// `id` will count the stream's entries between the two: the index does,
    /// to tell a range that goes on from one with a hole before it.
    fn recorded_below(&mut self, _id: StreamId) -> Option<StreamId> {
        None
    }
    /// The payload fingerprint and the entry of the live record of business
    /// key `key` (its xxh3-128), by an earlier call or earlier in this one.
    /// Stores without business keys (a Set: KEY is refused) have none.
    fn key(&mut self, _key: u128) -> Option<(u32, StreamId)> {
        None
    }
    /// Remember business key `key` as applied by entry `id` with payload
    /// fingerprint `fp` (written by `commit`).
    fn record_key(&mut self, _key: u128, _fp: u32, _id: StreamId) {}
    /// Count a conflict: a key came back with another payload.
    fn conflict(&mut self) {}
}
