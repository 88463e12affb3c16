//! Error replies, worded in Redis' own style: the first word is the error code.
//!
//! Whole-call errors abort the command before anything is written; per-entry
//! errors fill that entry's slot in the reply array and leave it untouched.

use std::fmt;

// ---- whole-call errors -------------------------------------------------------

pub const SYNTAX: &str = "ERR syntax error";
pub const NO_EFFECT: &str = "ERR syntax error, XPROCESS needs at least one effect before IDS";
pub const NO_IDS: &str =
    "ERR syntax error, XPROCESS needs IDS numids id [id ...] or READ after the effects";
pub const READ_NEEDS_CONSUMER: &str =
    "ERR syntax error, READ needs CONSUMER consumer (the entries are read for it)";
pub const BAD_COUNT: &str = "ERR COUNT must be a positive integer";
pub const BAD_MIN_IDLE: &str =
    "ERR invalid CLAIM min-idle-time, must be a non-negative integer of milliseconds";
pub const BAD_TIMEOUT: &str = "ERR timeout is not an integer or out of range";
pub const NEGATIVE_TIMEOUT: &str = "ERR timeout is negative";
pub const BAD_AFTER: &str = "ERR DEADLETTER AFTER must be a positive integer of deliveries";
pub const DEAD_LETTER_KEY: &str =
    "ERR the dead-letter key must not be the stream or the dedupe key";
pub const BAD_NUMIDS: &str = "ERR numids must be a positive integer";
pub const NUMIDS_MISMATCH: &str = "ERR numids does not match the number of IDs given";
pub const BAD_NUMPAIRS: &str = "ERR numpairs must be a positive integer";
pub const NUMPAIRS_MISMATCH: &str = "ERR numpairs does not match the field/value pairs given";
pub const BAD_TTL: &str =
    "ERR invalid TTL, must be an integer of milliseconds from 0 to 4611686018427387903";
pub const BAD_MAXLEN: &str = "ERR The MAXLEN argument must be a non-negative integer";
pub const BAD_STREAM_ID: &str = "ERR Invalid stream ID specified as stream command argument";
pub const UNKNOWN_METADATA: &str =
    "ERR unknown entry metadata template, only $@id is supported (use $$ for a literal $)";
pub const NEED_DEDUPE: &str =
    "ERR cannot derive a dedupe key from an empty key name or one with '}' but no hash tag, use DEDUPE";
pub const TRYAGAIN: &str =
    "TRYAGAIN Multiple keys request during rehashing of slot (the stream's dedupe key is not on this node)";
pub const SLOT_MOVING: &str =
    "TRYAGAIN the stream's slot moved to another node while the call waited, retry it there";
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const INTERNAL: &str = "ERR xprocess internal error, see the server log";
pub const INDEX_UNWRITABLE: &str = "ERR the dedupe index could not be written";
pub const BAD_STORE: &str = "ERR STORE must be INDEX or SET";
pub const BAD_WINDOW: &str =
    "ERR invalid WINDOW, must be an integer of milliseconds from 1 to 315360000000 (ten years)";
pub const BAD_NUMFIELDS: &str = "ERR FINGERPRINT numfields must be a positive integer";
pub const KEY_ON_SET: &str =
    "ERR KEY needs a dedupe index, a Set dedupe store cannot remember business keys (use STORE INDEX)";
pub const TTL_ON_INDEX: &str =
    "ERR TTL applies to a Set dedupe store only, an index never needs to expire (use STORE SET for a Set)";

// ---- per-entry errors --------------------------------------------------------

pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const FLOAT_NAN_OR_INF: &str = "ERR value is NaN or Infinity";
pub const HASH_NOT_INTEGER: &str = "ERR hash value is not an integer";
pub const HASH_NOT_FLOAT: &str = "ERR hash value is not a float";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const NAN_OR_INF: &str = "ERR increment would produce NaN or Infinity";
pub const STREAM_EXHAUSTED: &str =
    "ERR The stream has exhausted the last possible ID, unable to add more items";

/// An error reply whose text is built at run time (names a key, field or ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyError(String);

impl ReplyError {
    pub fn new(msg: impl Into<String>) -> Self {
        ReplyError(msg.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn too_many_ids(max: usize) -> Self {
        Self::new(format!(
            "ERR numids exceeds xprocess.max-ids ({max}), split the IDs over several calls or raise it with CONFIG SET"
        ))
    }

    pub fn nogroup(key: &[u8], group: &[u8]) -> Self {
        Self::new(format!(
            "NOGROUP No such key '{}' or consumer group '{}'",
            printable(key),
            printable(group)
        ))
    }

    pub fn noperm_dedupe(key: &[u8]) -> Self {
        Self::new(format!(
            "NOPERM this user has no permissions to write the dedupe key '{}'",
            printable(key)
        ))
    }

    pub fn index_of_other_stream(key: &[u8], owner: &[u8], stream: &[u8]) -> Self {
        Self::new(format!(
            "ERR the dedupe index '{}' belongs to stream '{}', not to '{}'",
            printable(key),
            printable(owner),
            printable(stream)
        ))
    }

    pub fn entry_not_found(id: &str) -> Self {
        Self::new(format!("ERR entry {id} not found in the stream"))
    }

    pub fn conflict(id: &str, key: &[u8], other: impl fmt::Display) -> Self {
        Self::new(format!(
            "CONFLICT entry {id} has business key '{}' already applied by entry {other} with a different payload",
            printable(key)
        ))
    }

    pub fn missing_field(id: &str, field: &[u8]) -> Self {
        Self::new(format!(
            "ERR entry {id} has no field '{}'",
            printable(field)
        ))
    }

    pub fn not_owner(id: &str, consumer: &[u8], owner: Option<&[u8]>) -> Self {
        let why = match owner {
            Some(o) => format!("is pending for consumer '{}'", printable(o)),
            None => "is not pending in the group".to_string(),
        };
        Self::new(format!(
            "NOTOWNER entry {id} {why}, not for consumer '{}'",
            printable(consumer)
        ))
    }
}

impl From<&str> for ReplyError {
    fn from(s: &str) -> Self {
        ReplyError::new(s)
    }
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// User bytes quoted inside an error line: a RESP error must stay one line,
/// so control bytes and invalid UTF-8 are escaped.
pub fn printable(bytes: &[u8]) -> String {
    const MAX: usize = 128;
    let shown = &bytes[..bytes.len().min(MAX)];
    let mut out: String = String::from_utf8_lossy(shown)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if bytes.len() > MAX {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_control_bytes_and_truncates() {
        assert_eq!(printable(b"a\r\nb"), "a??b");
        let long = vec![b'x'; 200];
        assert_eq!(printable(&long).len(), 131);
    }

    #[test]
    fn not_owner_names_both_consumers() {
        let e = ReplyError::not_owner("1-1", b"alice", Some(b"bob"));
        assert_eq!(
            e.as_str(),
            "NOTOWNER entry 1-1 is pending for consumer 'bob', not for consumer 'alice'"
        );
    }
}
