//! Error replies, worded in Redis' own style: the first word is the error code.
//!
//! Whole-call errors abort the command before anything is written; per-entry
//! errors fill that entry's slot in the reply array and leave it untouched.

use std::borrow::Cow;
use std::fmt;

/// What kind of error a reply is: its code (the first word of the line),
/// so callers classify errors without reading their text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `ERR`: the request, or the data it met, is wrong.
    Err,
    WrongType,
    NoGroup,
    NoPerm,
    /// The entry is pending for another consumer (`CONSUMER` fencing).
    NotOwner,
    /// A business key came back with another payload.
    Conflict,
    TryAgain,
    CrossSlot,
    /// An error of the server's own that we pass on (OOM, BUSYGROUP, ...).
    Server,
}

impl ErrorKind {
    /// The kind of an error line the server replied, by its code word.
    pub fn of_line(line: &str) -> ErrorKind {
        match line.split(' ').next().unwrap_or_default() {
            "ERR" => ErrorKind::Err,
            "WRONGTYPE" => ErrorKind::WrongType,
            "NOGROUP" => ErrorKind::NoGroup,
            "NOPERM" => ErrorKind::NoPerm,
            "TRYAGAIN" => ErrorKind::TryAgain,
            "CROSSSLOT" => ErrorKind::CrossSlot,
            _ => ErrorKind::Server,
        }
    }
}

/// An error reply known at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    pub kind: ErrorKind,
    pub text: &'static str,
}

impl Fixed {
    pub const fn new(kind: ErrorKind, text: &'static str) -> Fixed {
        Fixed { kind, text }
    }

    const fn err(text: &'static str) -> Fixed {
        Fixed::new(ErrorKind::Err, text)
    }
}

// ---- whole-call errors -------------------------------------------------------

pub const SYNTAX: Fixed = Fixed::err("ERR syntax error");
pub const NO_EFFECT: Fixed =
    Fixed::err("ERR syntax error, XPROCESS needs at least one effect before IDS");
pub const NO_IDS: Fixed =
    Fixed::err("ERR syntax error, XPROCESS needs IDS numids id [id ...] or READ after the effects");
pub const DEFINITION_NO_EFFECT: Fixed =
    Fixed::err("ERR syntax error, a definition needs at least one effect");
pub const NOT_IN_DEFINITION: Fixed = Fixed::err("ERR syntax error, CONSUMER, STORE and TTL are not part of a definition (give CONSUMER when calling or starting it)");
pub const IDS_IN_DEFINITION: Fixed = Fixed::err(
    "ERR syntax error, IDS and READ are not part of a definition (give them when calling it)",
);
pub const NO_DEFINITION: Fixed = Fixed::err("ERR no effect given and the group has no definition, give effects or define them with XPROCESS.DEFINE");
pub const NOT_DEFINED: Fixed =
    Fixed::err("ERR the group has no definition, define it first with XPROCESS.DEFINE");
pub const DEFINED: Fixed = Fixed::err("ERR the group has a definition, call XPROCESS key group [CONSUMER consumer] IDS|READ without effects, or XPROCESS.UNDEFINE it first");
pub const READ_NEEDS_CONSUMER: Fixed =
    Fixed::err("ERR syntax error, READ needs CONSUMER consumer (the entries are read for it)");
pub const BAD_COUNT: Fixed = Fixed::err("ERR COUNT must be a positive integer");
pub const BAD_MIN_IDLE: Fixed =
    Fixed::err("ERR invalid CLAIM min-idle-time, must be a non-negative integer of milliseconds");
pub const BAD_TIMEOUT: Fixed = Fixed::err("ERR timeout is not an integer or out of range");
pub const NEGATIVE_TIMEOUT: Fixed = Fixed::err("ERR timeout is negative");
pub const BAD_AFTER: Fixed =
    Fixed::err("ERR DEADLETTER AFTER must be a positive integer of deliveries");
pub const DEAD_LETTER_KEY: Fixed =
    Fixed::err("ERR the dead-letter key must not be the stream or the dedupe key");
pub const BAD_NUMIDS: Fixed = Fixed::err("ERR numids must be a positive integer");
pub const NUMIDS_MISMATCH: Fixed = Fixed::err("ERR numids does not match the number of IDs given");
pub const BAD_NUMKEYS: Fixed = Fixed::err(
    "ERR FCALL numkeys must be a non-negative integer no greater than the arguments given",
);
pub const BAD_NUMARGS: Fixed = Fixed::err(
    "ERR FCALL numargs must be a non-negative integer no greater than the arguments given",
);
pub const FCALL_NOT_ALONE: Fixed =
    Fixed::err("ERR syntax error, FCALL must be the call's only effect");
pub const FCALL_IN_SCRIPT: Fixed =
    Fixed::err("ERR XPROCESS with an FCALL effect cannot run inside a script or a function");
pub const BAD_NUMPAIRS: Fixed = Fixed::err("ERR numpairs must be a positive integer");
pub const NUMPAIRS_MISMATCH: Fixed =
    Fixed::err("ERR numpairs does not match the field/value pairs given");
pub const BAD_MAXLEN: Fixed = Fixed::err("ERR The MAXLEN argument must be a non-negative integer");
pub const BAD_STREAM_ID: Fixed =
    Fixed::err("ERR Invalid stream ID specified as stream command argument");
pub const BAD_CONDITION: Fixed = Fixed::err(
    "ERR syntax error, WHEN needs $field (= | != | < | <= | > | >=) value, $field (EXISTS | MISSING) or KEY key (EXISTS | MISSING)",
);
pub const BAD_CONDITION_NUMBER: Fixed =
    Fixed::err("ERR WHEN compares with <, <=, > or >= against a number");
pub const WHEN_WITHOUT_EFFECT: Fixed =
    Fixed::err("ERR syntax error, WHEN must be followed by an effect");
pub const UNCLOSED_TEMPLATE: Fixed =
    Fixed::err("ERR unclosed template, ${ needs a } (use $$ for a literal $)");
pub const EMPTY_TEMPLATE: Fixed = Fixed::err("ERR empty template ${}, name a field");
pub const UNKNOWN_METADATA: Fixed = Fixed::err(
    "ERR unknown entry metadata template, only @id, @ms, @seq, @date and @hour are supported (use $$ for a literal $)",
);
pub const NEED_DEDUPE: Fixed = Fixed::err("ERR cannot derive a dedupe key from an empty key name or one with '}' but no hash tag, use DEDUPE");
pub const TRYAGAIN: Fixed = Fixed::new(ErrorKind::TryAgain, "TRYAGAIN Multiple keys request during rehashing of slot (the stream's dedupe key is not on this node)");
pub const TRYAGAIN_UNROUTED: Fixed = Fixed::new(ErrorKind::TryAgain, "TRYAGAIN Multiple keys request during rehashing of slot (a key of the group's definition is not on this node)");
pub const SLOT_MOVING: Fixed = Fixed::new(
    ErrorKind::TryAgain,
    "TRYAGAIN the stream's slot moved to another node while the call waited, retry it there",
);
pub const ZADD_NX_XX: Fixed =
    Fixed::err("ERR XX and NX options at the same time are not compatible");
pub const ZADD_GT_LT_NX: Fixed =
    Fixed::err("ERR GT, LT, and/or NX options at the same time are not compatible");
pub const REMOVES_OWN_KEY: Fixed = Fixed::err("ERR SET, DEL, PEXPIRE, SREM and FCALL may not target the stream, the dedupe key or the dead-letter key");
pub const NOPERM_KEY: Fixed = Fixed::new(
    ErrorKind::NoPerm,
    "NOPERM this user has no permissions to access one of the keys used as arguments",
);
pub const NOPERM_CHANNEL: Fixed = Fixed::new(
    ErrorKind::NoPerm,
    "NOPERM this user has no permissions to access one of the channels used as arguments",
);
pub const WRONGTYPE: Fixed = Fixed::new(
    ErrorKind::WrongType,
    "WRONGTYPE Operation against a key holding the wrong kind of value",
);
pub const INTERNAL: Fixed = Fixed::err("ERR xprocess internal error, see the server log");
pub const INDEX_UNWRITABLE: Fixed = Fixed::err("ERR the dedupe index could not be written");
pub const BAD_STORE: Fixed = Fixed::err("ERR STORE must be INDEX or SET");
pub const BAD_NUMFIELDS: Fixed = Fixed::err("ERR FINGERPRINT numfields must be a positive integer");
pub const KEY_ON_SET: Fixed = Fixed::err("ERR KEY needs a dedupe index, a Set dedupe store cannot remember business keys (use STORE INDEX)");
pub const TTL_ON_INDEX: Fixed = Fixed::err("ERR TTL applies to a Set dedupe store only, an index never needs to expire (use STORE SET for a Set)");

// ---- per-entry errors --------------------------------------------------------

pub const NOT_A_NUMBER: Fixed = Fixed::err("ERR value is not a number");
pub const NOT_INTEGER: Fixed = Fixed::err("ERR value is not an integer or out of range");
pub const NOT_FLOAT: Fixed = Fixed::err("ERR value is not a valid float");
pub const FLOAT_NAN_OR_INF: Fixed = Fixed::err("ERR value is NaN or Infinity");
pub const HASH_NOT_INTEGER: Fixed = Fixed::err("ERR hash value is not an integer");
pub const HASH_NOT_FLOAT: Fixed = Fixed::err("ERR hash value is not a float");
pub const OVERFLOW: Fixed = Fixed::err("ERR increment or decrement would overflow");
pub const NAN_OR_INF: Fixed = Fixed::err("ERR increment would produce NaN or Infinity");
pub const NAN_SCORE: Fixed = Fixed::err("ERR resulting score is not a number (NaN)");
pub const NOT_HLL: Fixed = Fixed::new(
    ErrorKind::WrongType,
    "WRONGTYPE Key is not a valid HyperLogLog string value.",
);
pub const HLL_CORRUPT: Fixed = Fixed::err("INVALIDOBJ Corrupted HLL object detected");
pub const SET_BAD_EXPIRE: Fixed = Fixed::err("ERR invalid expire time in 'set' command");
pub const PEXPIRE_BAD_EXPIRE: Fixed = Fixed::err("ERR invalid expire time in 'pexpire' command");
pub const STREAM_EXHAUSTED: Fixed =
    Fixed::err("ERR The stream has exhausted the last possible ID, unable to add more items");

/// An error reply: its kind and its whole line (`CODE message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyError {
    kind: ErrorKind,
    line: Cow<'static, str>,
}

impl ReplyError {
    pub fn new(kind: ErrorKind, line: impl Into<Cow<'static, str>>) -> Self {
        ReplyError {
            kind,
            line: line.into(),
        }
    }

    /// An `ERR` reply.
    pub fn err(line: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Err, line)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn as_str(&self) -> &str {
        &self.line
    }

    pub fn bad_ttl(max: i64) -> Self {
        Self::err(format!(
            "ERR invalid TTL, must be an integer of milliseconds from 0 to {max}"
        ))
    }

    pub fn bad_window(max: i64) -> Self {
        Self::err(format!(
            "ERR invalid WINDOW, must be an integer of milliseconds from 1 to {max} (ten years)"
        ))
    }

    pub fn too_many_ids(max: usize) -> Self {
        Self::new(ErrorKind::Err, format!(
            "ERR numids exceeds xprocess.max-ids ({max}), split the IDs over several calls or raise it with CONFIG SET"
        ))
    }

    pub fn nogroup(key: &[u8], group: &[u8]) -> Self {
        Self::new(
            ErrorKind::NoGroup,
            format!(
                "NOGROUP No such key '{}' or consumer group '{}'",
                printable(key),
                printable(group)
            ),
        )
    }

    pub fn noperm_dedupe(key: &[u8]) -> Self {
        Self::new(
            ErrorKind::NoPerm,
            format!(
                "NOPERM this user has no permissions to write the dedupe key '{}'",
                printable(key)
            ),
        )
    }

    pub fn definition_key_type(key: &[u8]) -> Self {
        Self::new(
            ErrorKind::WrongType,
            format!(
                "WRONGTYPE the group's dedupe key '{}' holds a Set or another type, a definition is kept in a dedupe index",
                printable(key)
            ),
        )
    }

    pub fn index_of_other_stream(key: &[u8], owner: &[u8], stream: &[u8]) -> Self {
        Self::new(
            ErrorKind::Err,
            format!(
                "ERR the dedupe index '{}' belongs to stream '{}', not to '{}'",
                printable(key),
                printable(owner),
                printable(stream)
            ),
        )
    }

    pub fn entry_not_found(id: &str) -> Self {
        Self::new(
            ErrorKind::Err,
            format!("ERR entry {id} not found in the stream"),
        )
    }

    pub fn conflict(id: &str, key: &[u8], other: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Conflict, format!(
            "CONFLICT entry {id} has business key '{}' already applied by entry {other} with a different payload",
            printable(key)
        ))
    }

    /// A templated effect key that names the stream, the dedupe key or the
    /// dead-letter key.
    pub fn reserved_key(id: &str, key: &[u8]) -> Self {
        Self::err(format!(
            "ERR entry {id} makes the effect key '{}', which is the stream, the dedupe key or the dead-letter key",
            printable(key)
        ))
    }

    /// A templated effect key outside the stream's cluster slot.
    pub fn cross_slot(id: &str, key: &[u8]) -> Self {
        Self::new(
            ErrorKind::CrossSlot,
            format!(
                "CROSSSLOT entry {id} makes the effect key '{}', which does not hash to the stream's slot",
                printable(key)
            ),
        )
    }

    /// A templated key missing here while the stream's slot migrates: it
    /// may be on the other node already.
    pub fn slot_migrating(id: &str, key: &[u8]) -> Self {
        Self::new(
            ErrorKind::TryAgain,
            format!(
                "TRYAGAIN entry {id} makes the key '{}', which is not on this node while the stream's slot migrates",
                printable(key)
            ),
        )
    }

    /// A templated effect key the caller's ACL does not let it write.
    pub fn noperm_key(id: &str, key: &[u8]) -> Self {
        Self::new(
            ErrorKind::NoPerm,
            format!(
                "NOPERM entry {id} makes the effect key '{}', which this user has no permissions to write",
                printable(key)
            ),
        )
    }

    /// A condition's templated key the caller's ACL does not let it read.
    pub fn noperm_read(id: &str, key: &[u8]) -> Self {
        Self::new(
            ErrorKind::NoPerm,
            format!(
                "NOPERM entry {id} makes the condition key '{}', which this user has no permissions to read",
                printable(key)
            ),
        )
    }

    /// A channel the caller's ACL does not let it publish to.
    pub fn noperm_channel(id: &str, channel: &[u8]) -> Self {
        Self::new(
            ErrorKind::NoPerm,
            format!(
                "NOPERM entry {id} publishes to the channel '{}', which this user has no permissions to access",
                printable(channel)
            ),
        )
    }

    pub fn missing_field(id: &str, field: &[u8]) -> Self {
        Self::new(
            ErrorKind::Err,
            format!("ERR entry {id} has no field '{}'", printable(field)),
        )
    }

    pub fn not_owner(id: &str, consumer: &[u8], owner: Option<&[u8]>) -> Self {
        let why = match owner {
            Some(o) => format!("is pending for consumer '{}'", printable(o)),
            None => "is not pending in the group".to_string(),
        };
        Self::new(
            ErrorKind::NotOwner,
            format!(
                "NOTOWNER entry {id} {why}, not for consumer '{}'",
                printable(consumer)
            ),
        )
    }
}

impl From<Fixed> for ReplyError {
    fn from(e: Fixed) -> Self {
        ReplyError::new(e.kind, e.text)
    }
}

impl PartialEq<Fixed> for String {
    fn eq(&self, other: &Fixed) -> bool {
        self == other.text
    }
}

impl PartialEq<Fixed> for &str {
    fn eq(&self, other: &Fixed) -> bool {
        *self == other.text
    }
}

impl PartialEq<Fixed> for ReplyError {
    fn eq(&self, other: &Fixed) -> bool {
        self.kind == other.kind && self.line == other.text
    }
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
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
