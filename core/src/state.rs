//! What planning may ask of the keyspace: a read-only view, implemented by
//! the module for the server (and in memory by the tests).

use crate::errors::ReplyError;
use crate::id::StreamId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Missing,
    Hash,
    Set,
    Stream,
    Other,
}

/// Read-only view of the keyspace that planning needs.
pub trait State {
    fn kind(&self, key: &[u8]) -> KeyKind;
    /// The value of a hash field; `None` when the key or field is missing.
    fn hash_field(&self, key: &[u8], field: &[u8]) -> Option<Vec<u8>>;
    /// The last ID generated in an existing stream (XINFO's last-generated-id).
    fn stream_last_id(&self, key: &[u8]) -> StreamId;
    /// Whether this call may write `key` (or, with `write` false, read it),
    /// a key an entry's template made (literal keys were checked for the
    /// whole call): in a cluster it must hash to the stream's slot, and the
    /// caller's ACL must allow it.
    fn check_key(&self, _key: &[u8], _id: &str, _write: bool) -> Result<(), ReplyError> {
        Ok(())
    }
}
