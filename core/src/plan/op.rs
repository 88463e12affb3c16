//! What planning produces: validated writes, passed to Redis verbatim.

use crate::request::Trim;
use std::borrow::Cow;
use std::ffi::CStr;

/// Bytes of an effect: borrowed from argv or the entry, or made by a template.
pub type Bytes<'r> = Cow<'r, [u8]>;

/// One validated write.
#[derive(Debug, Clone, PartialEq)]
pub enum Op<'r> {
    /// Planning computes the result, so the server may defer the write.
    HIncrBy {
        key: Bytes<'r>,
        field: Bytes<'r>,
        incr: Bytes<'r>,
        /// The field's value afterwards.
        result: i64,
    },
    /// XADD with an ID Redis generates (`*`).
    XAdd {
        key: Bytes<'r>,
        trim: Option<Trim>,
        pairs: Vec<(Bytes<'r>, Bytes<'r>)>,
    },
    /// Any other effect: `cmd` with `args` (the key, or PUBLISH's channel,
    /// first), exactly as a client would send it.
    Native { cmd: Native, args: Vec<Bytes<'r>> },
}

/// The commands an [`Op::Native`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Native {
    HIncrByFloat,
    HSet,
    HSetNx,
    HDel,
    Set,
    IncrBy,
    IncrByFloat,
    Del,
    SAdd,
    SRem,
    ZAdd,
    ZIncrBy,
    ZRem,
    PfAdd,
    LPush,
    RPush,
    PExpire,
    Publish,
    /// A Redis Function: the one write whose errors planning cannot foresee.
    FCall,
}

/// What a native write does to a key's hash fields, for a server that
/// caches them during a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// Nothing of a hash.
    Nothing,
    /// The hash fields at argument positions 1, 3, 5, ... (every field of
    /// HSET's pairs; the one field of the others).
    Fields,
    /// The whole key, whatever it holds (it may be replaced or removed).
    Key,
}

impl Native {
    /// The command's name, as RedisModule_Call takes it.
    pub fn name(self) -> &'static CStr {
        match self {
            Native::HIncrByFloat => c"HINCRBYFLOAT",
            Native::HSet => c"HSET",
            Native::HSetNx => c"HSETNX",
            Native::HDel => c"HDEL",
            Native::Set => c"SET",
            Native::IncrBy => c"INCRBY",
            Native::IncrByFloat => c"INCRBYFLOAT",
            Native::Del => c"DEL",
            Native::SAdd => c"SADD",
            Native::SRem => c"SREM",
            Native::ZAdd => c"ZADD",
            Native::ZIncrBy => c"ZINCRBY",
            Native::ZRem => c"ZREM",
            Native::PfAdd => c"PFADD",
            Native::LPush => c"LPUSH",
            Native::RPush => c"RPUSH",
            Native::PExpire => c"PEXPIRE",
            Native::Publish => c"PUBLISH",
            Native::FCall => c"FCALL",
        }
    }

    pub fn touches(self) -> Touch {
        match self {
            Native::HIncrByFloat | Native::HSet | Native::HSetNx | Native::HDel => Touch::Fields,
            Native::Set | Native::Del | Native::PExpire => Touch::Key,
            _ => Touch::Nothing,
        }
    }
}

impl Op<'_> {
    /// Whether planning checked everything that could make the write fail
    /// (all but a function's own errors).
    pub fn validated(&self) -> bool {
        !matches!(
            self,
            Op::Native {
                cmd: Native::FCall,
                ..
            }
        )
    }

    /// The key the op writes; `None` for PUBLISH.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Op::HIncrBy { key, .. } | Op::XAdd { key, .. } => Some(key),
            Op::Native {
                cmd: Native::Publish,
                ..
            } => None,
            Op::Native { args, .. } => args.first().map(|k| &**k),
        }
    }
}
