//! A parsed XPROCESS call: what to process, how to dedupe, which effects.
//! Everything borrows from argv.

use crate::condition::Condition;
use crate::id::StreamId;
use crate::template::Arg;

/// The largest TTL: now + TTL must not overflow Redis' 64-bit expiry time
/// (PEXPIRE refuses that), and half the range is still 146 million years.
pub const MAX_TTL: i64 = i64::MAX / 2;

/// The longest business-key window: ten years (a key's window ends in whole
/// Unix seconds held in 32 bits, which last until 2106).
pub const MAX_WINDOW: i64 = 10 * 365 * 24 * 3600 * 1000;

/// XADD trimming: `MAXLEN [~|=] count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trim {
    pub approx: bool,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XAddBody<'a> {
    Fields(Vec<(Arg<'a>, Arg<'a>)>),
    /// Copy every field/value pair of the source entry.
    Entry,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<'a> {
    HIncrBy {
        key: Arg<'a>,
        field: Arg<'a>,
        incr: Arg<'a>,
    },
    HIncrByFloat {
        key: Arg<'a>,
        field: Arg<'a>,
        incr: Arg<'a>,
    },
    SAdd {
        key: Arg<'a>,
        member: Arg<'a>,
    },
    XAdd {
        key: Arg<'a>,
        trim: Option<Trim>,
        body: XAddBody<'a>,
    },
}

impl<'a> Effect<'a> {
    pub fn key(&self) -> &Arg<'a> {
        match self {
            Effect::HIncrBy { key, .. }
            | Effect::HIncrByFloat { key, .. }
            | Effect::SAdd { key, .. }
            | Effect::XAdd { key, .. } => key,
        }
    }
}

/// The kind of dedupe store (`STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Our data type: ranges of processed IDs (the default for a new key).
    Index,
    /// A plain Redis Set of IDs.
    Set,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub stream: &'a [u8],
    pub group: &'a [u8],
    pub consumer: Option<&'a [u8]>,
    pub dedupe: Option<&'a [u8]>,
    /// `None`: whatever the key holds, an index when it is missing.
    pub store: Option<StoreKind>,
    /// Milliseconds; `None` means "use the module default".
    pub ttl: Option<u64>,
    /// `KEY`: dedupe by business key too.
    pub business_key: Option<BusinessKey<'a>>,
    /// `DEADLETTER`: where poison entries go.
    pub dead_letter: Option<DeadLetter<'a>>,
    /// `DELETE [ACKED]`: delete each entry once it is done.
    pub delete: Option<Delete>,
    pub effects: Vec<Effect<'a>>,
    /// `WHEN`: the conditions of each effect (same index; effects past its
    /// end have none), all must hold.
    pub when: Vec<Vec<Condition<'a>>>,
    /// `IDS`: the entries to process (empty with READ).
    pub ids: Vec<StreamId>,
    /// `READ`: take the entries from the group instead.
    pub read: Option<Read>,
    /// argv positions of every key, in order (for getkeys and ACLs).
    pub key_positions: Vec<usize>,
}

/// `DELETE [ACKED]`: which done entries leave the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delete {
    /// Every entry this call is done with (applied, duplicate, dead-lettered).
    All,
    /// Only those no other group of the stream still needs.
    Acked,
}

/// `DEADLETTER key AFTER deliveries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    pub key: &'a [u8],
    /// Dead-letter a failing entry once it was delivered this many times.
    pub after: u64,
}

/// `READ [COUNT count] [CLAIM min-idle-ms] [BLOCK ms]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Read {
    /// `None`: the default ([`DEFAULT_READ_COUNT`]); capped by `xprocess.max-ids`.
    pub count: Option<usize>,
    /// Take over entries pending for at least this many ms first.
    pub claim: Option<u64>,
    /// Wait up to this many ms for new entries (0: forever).
    pub block: Option<u64>,
}

/// READ's COUNT when none is given.
pub const DEFAULT_READ_COUNT: usize = 100;

/// `KEY template [WINDOW ms] [FINGERPRINT ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessKey<'a> {
    pub template: Arg<'a>,
    /// Milliseconds; `None` means the module default (`xprocess.key-window`).
    pub window: Option<u64>,
    pub fingerprint: FingerprintOf<'a>,
}

/// What a business key's payload fingerprint covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FingerprintOf<'a> {
    /// The fields the call's effect templates read (the default).
    Read,
    /// These fields.
    Fields(Vec<&'a [u8]>),
    /// Every field/value pair of the entry.
    Entry,
}
