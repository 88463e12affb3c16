//! What planning may ask of the keyspace: a read-only view, implemented by
//! the module for the server (and in memory by the tests).

use crate::errors::ReplyError;
use crate::id::StreamId;
use crate::numbers::parse_i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Missing,
    String,
    List,
    Hash,
    Set,
    ZSet,
    Stream,
    /// A value of a module's data type.
    Other,
}

/// The start of a string value and its whole length: enough to tell a
/// number or a HyperLogLog without copying a large value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringHead {
    pub head: Vec<u8>,
    pub len: usize,
}

impl StringHead {
    /// The whole value, when `head` is all of it.
    pub fn whole(&self) -> Option<&[u8]> {
        (self.head.len() == self.len).then_some(&self.head)
    }
}

/// Read-only view of the keyspace that planning needs. The reads with a
/// default are those only some effects make; in-memory test states may
/// leave them out.
pub trait State {
    fn kind(&self, key: &[u8]) -> KeyKind;
    /// The value of a hash field; `None` when the key or field is missing.
    fn hash_field(&self, key: &[u8], field: &[u8]) -> Option<Vec<u8>>;
    /// A hash field's value as an integer, as HINCRBY reads it: `None` when
    /// the key or field is missing, `Some(None)` when it is not an integer.
    /// A server can answer this one without copying the value.
    fn hash_int(&self, key: &[u8], field: &[u8]) -> Option<Option<i64>> {
        self.hash_field(key, field).map(|v| parse_i64(&v))
    }
    /// The last ID generated in an existing stream (XINFO's last-generated-id).
    fn stream_last_id(&self, key: &[u8]) -> StreamId;
    /// At most the first `limit` bytes of a string key's value; `None` when
    /// the key is missing or not a string.
    fn string(&self, _key: &[u8], _limit: usize) -> Option<StringHead> {
        None
    }
    /// A sorted-set member's score; `None` when the key or member is missing.
    fn zscore(&self, _key: &[u8], _member: &[u8]) -> Option<f64> {
        None
    }
    /// How many fields, members or elements a key holds (`None`: not known,
    /// and planning then takes a key HDEL, SREM or ZREM shrank for still
    /// there).
    fn len(&self, _key: &[u8]) -> Option<usize> {
        None
    }
    /// Whether a set holds `member`.
    fn is_member(&self, _key: &[u8], _member: &[u8]) -> bool {
        false
    }
    /// The server's clock in Unix ms, as the call's commands see it.
    fn now_ms(&self) -> i64 {
        0
    }
    /// Whether this call may write `key` (or, with `write` false, read it),
    /// a key an entry's template made (literal keys were checked for the
    /// whole call): in a cluster it must hash to the stream's slot, and the
    /// caller's ACL must allow it.
    fn check_key(&self, _key: &[u8], _id: &str, _write: bool) -> Result<(), ReplyError> {
        Ok(())
    }
    /// Whether the caller's ACL lets it publish to `channel`, a channel an
    /// entry's template made.
    fn check_channel(&self, _channel: &[u8], _id: &str) -> Result<(), ReplyError> {
        Ok(())
    }
}
