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

/// Field/value pairs: `FIELDS numpairs field value ...` or `ENTRY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pairs<'a> {
    Fields(Vec<(Arg<'a>, Arg<'a>)>),
    /// Every field/value pair of the source entry.
    Entry,
}

/// An argument of FCALL: a template, or `$@entry`, every field/value
/// pair of the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FcallArg<'a> {
    Arg(Arg<'a>),
    Entry,
}

/// `NX` or `XX`: only when the key (or member) is missing, or exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exists {
    Nx,
    Xx,
}

/// `GT` or `LT`: only when the new score is greater, or less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beats {
    Gt,
    Lt,
}

/// Which end of a list LPUSH and RPUSH add to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

/// An effect as written in the call; each is the native command of the
/// same name with the same semantics.
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
    /// `HSET key (FIELDS numpairs field value ... | ENTRY)`.
    HSet {
        key: Arg<'a>,
        pairs: Pairs<'a>,
    },
    HSetNx {
        key: Arg<'a>,
        field: Arg<'a>,
        value: Arg<'a>,
    },
    HDel {
        key: Arg<'a>,
        field: Arg<'a>,
    },
    /// `SET key value [NX | XX] [PX milliseconds]`.
    Set {
        key: Arg<'a>,
        value: Arg<'a>,
        exists: Option<Exists>,
        px: Option<Arg<'a>>,
    },
    IncrBy {
        key: Arg<'a>,
        incr: Arg<'a>,
    },
    IncrByFloat {
        key: Arg<'a>,
        incr: Arg<'a>,
    },
    Del {
        key: Arg<'a>,
    },
    SAdd {
        key: Arg<'a>,
        member: Arg<'a>,
    },
    SRem {
        key: Arg<'a>,
        member: Arg<'a>,
    },
    /// `ZADD key [NX | XX] [GT | LT] score member`.
    ZAdd {
        key: Arg<'a>,
        exists: Option<Exists>,
        beats: Option<Beats>,
        score: Arg<'a>,
        member: Arg<'a>,
    },
    ZIncrBy {
        key: Arg<'a>,
        incr: Arg<'a>,
        member: Arg<'a>,
    },
    ZRem {
        key: Arg<'a>,
        member: Arg<'a>,
    },
    PfAdd {
        key: Arg<'a>,
        element: Arg<'a>,
    },
    /// LPUSH or RPUSH.
    Push {
        end: End,
        key: Arg<'a>,
        value: Arg<'a>,
    },
    PExpire {
        key: Arg<'a>,
        ms: Arg<'a>,
    },
    XAdd {
        key: Arg<'a>,
        trim: Option<Trim>,
        pairs: Pairs<'a>,
    },
    /// `PUBLISH channel message`: the one effect without a key.
    Publish {
        channel: Arg<'a>,
        message: Arg<'a>,
    },
    /// `FCALL function numkeys key ... numargs arg ...`: a Redis Function,
    /// the call's only effect.
    FCall {
        function: &'a [u8],
        keys: Vec<Arg<'a>>,
        args: Vec<FcallArg<'a>>,
    },
}

impl<'a> Effect<'a> {
    /// The keys the effect writes: one, none for PUBLISH, FCALL's.
    pub fn keys(&self) -> &[Arg<'a>] {
        match self {
            Effect::Publish { .. } => &[],
            Effect::FCall { keys, .. } => keys,
            _ => self.key().map(std::slice::from_ref).unwrap_or_default(),
        }
    }

    /// The key of a one-key effect.
    pub fn key(&self) -> Option<&Arg<'a>> {
        match self {
            Effect::HIncrBy { key, .. }
            | Effect::HIncrByFloat { key, .. }
            | Effect::HSet { key, .. }
            | Effect::HSetNx { key, .. }
            | Effect::HDel { key, .. }
            | Effect::Set { key, .. }
            | Effect::IncrBy { key, .. }
            | Effect::IncrByFloat { key, .. }
            | Effect::Del { key }
            | Effect::SAdd { key, .. }
            | Effect::SRem { key, .. }
            | Effect::ZAdd { key, .. }
            | Effect::ZIncrBy { key, .. }
            | Effect::ZRem { key, .. }
            | Effect::PfAdd { key, .. }
            | Effect::Push { key, .. }
            | Effect::PExpire { key, .. }
            | Effect::XAdd { key, .. } => Some(key),
            Effect::Publish { .. } | Effect::FCall { .. } => None,
        }
    }

    /// Whether the effect may remove a key whatever it holds, or a member
    /// of a set (or, a function, do anything), so that it may never target
    /// the stream, the dedupe key or the dead-letter key (that would undo
    /// what makes processing exact).
    pub fn removes(&self) -> bool {
        matches!(
            self,
            Effect::Set { .. }
                | Effect::Del { .. }
                | Effect::PExpire { .. }
                | Effect::SRem { .. }
                | Effect::FCall { .. }
        )
    }

    /// Every argument besides the key, in order (the templates it reads);
    /// `None` when it copies the whole entry.
    pub fn args(&self) -> Option<Vec<&Arg<'a>>> {
        Some(match self {
            Effect::HIncrBy { field, incr, .. } | Effect::HIncrByFloat { field, incr, .. } => {
                vec![field, incr]
            }
            Effect::HSetNx { field, value, .. } => vec![field, value],
            Effect::HDel { field: one, .. }
            | Effect::IncrBy { incr: one, .. }
            | Effect::IncrByFloat { incr: one, .. }
            | Effect::SAdd { member: one, .. }
            | Effect::SRem { member: one, .. }
            | Effect::ZRem { member: one, .. }
            | Effect::PfAdd { element: one, .. }
            | Effect::Push { value: one, .. }
            | Effect::PExpire { ms: one, .. } => vec![one],
            Effect::Set { value, px, .. } => std::iter::once(value).chain(px).collect(),
            Effect::Del { .. } => Vec::new(),
            Effect::ZAdd { score, member, .. } => vec![score, member],
            Effect::ZIncrBy { incr, member, .. } => vec![incr, member],
            Effect::Publish { channel, message } => vec![channel, message],
            Effect::FCall { args, .. } => args
                .iter()
                .map(|arg| match arg {
                    FcallArg::Arg(arg) => Some(arg),
                    FcallArg::Entry => None,
                })
                .collect::<Option<_>>()?,
            Effect::HSet { pairs, .. } | Effect::XAdd { pairs, .. } => match pairs {
                Pairs::Entry => return None,
                Pairs::Fields(pairs) => pairs.iter().flat_map(|(f, v)| [f, v]).collect(),
            },
        })
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

/// `READ [COUNT count] [CLAIM min-idle-ms] [BLOCK ms] [REPLY COUNTS]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Read {
    /// `None`: the default ([`DEFAULT_READ_COUNT`]); capped by `xprocess.max-ids`.
    pub count: Option<usize>,
    /// Take over entries pending for at least this many ms first.
    pub claim: Option<u64>,
    /// Wait up to this many ms for new entries (0: forever).
    pub block: Option<u64>,
    /// `REPLY COUNTS`: how many entries had each outcome, and the failed
    /// ones with their errors, instead of a pair per entry.
    pub counts: bool,
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
