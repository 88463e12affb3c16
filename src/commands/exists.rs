//! XPROCESS.EXISTS: was an entry (or a business key) processed?

use crate::redis::call::Redis;
use crate::redis::clock::now_secs;
use crate::redis::command::{entry_point, key, Arg, ArgKind, Begin, Command, Docs, KeySpec};
use crate::redis::reply;
use crate::store::{DedupeKey, Holds};
use redis_module::{CallReply, Context};
use xprocess_core::business_key::key_hash;
use xprocess_core::errors::{self, ReplyError};
use xprocess_core::id::StreamId;
use xprocess_core::parse::stream_ids;
use xprocess_core::request::StoreKind;

entry_point!(entry, exists);

pub const COMMAND: Command = Command {
    name: c"xprocess.exists",
    entry,
    flags: c"readonly fast",
    acl: c"read",
    arity: -3,
    docs: Docs {
        summary: c"Tells for each entry ID whether it was processed through a dedupe store (index or Set), or with KEY for each business key whether it was applied within its window",
        complexity: c"O(N log R) for N IDs and R ranges of an index; O(N log K) for N business keys of K",
        since: c"0.2.0",
        key_specs: &[KeySpec {
            notes: c"the dedupe key",
            flags: key::RO | key::ACCESS,
            begin: Begin::Index(1),
            unknown: false,
        }],
        args: &[
            Arg::new(c"dedupe-key", ArgKind::Key).key(0),
            Arg::new(c"what", ArgKind::OneOf).sub(&[
                Arg::new(c"id", ArgKind::String).multiple(),
                Arg::new(c"keys", ArgKind::Block)
                    .token(c"KEY")
                    .sub(&[Arg::new(c"business-key", ArgKind::String).multiple()]),
            ]),
        ],
    },
};

/// XPROCESS.EXISTS dedupe-key id [id ...]
/// XPROCESS.EXISTS dedupe-key KEY business-key [business-key ...]
///
/// `1` for each ID processed through the store, `0` otherwise (a missing key
/// has processed nothing); with KEY, `1` for each business key applied
/// within its window.
pub fn exists(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    let [_, key, ids @ ..] = argv else {
        return Err(errors::SYNTAX.into());
    };
    if let [token, keys @ ..] = ids {
        if token.eq_ignore_ascii_case(b"KEY") {
            return exists_keys(ctx, key, keys);
        }
    }
    let ids = stream_ids(ids)?;
    let mut open = DedupeKey::open(ctx, key, false);
    let flags: Vec<i64> = match open.holds() {
        Holds::Missing => vec![0; ids.len()],
        Holds::Store(StoreKind::Index) => {
            let index = open.index().ok_or(errors::INTERNAL)?;
            ids.iter()
                .map(|id| i64::from(index.contains(*id)))
                .collect()
        }
        Holds::Store(StoreKind::Set) => {
            drop(open);
            set_members(ctx, key, &ids)?
        }
        Holds::Other => return Err(errors::WRONGTYPE.into()),
    };
    reply::integers(ctx, &flags);
    Ok(())
}

fn exists_keys(ctx: &Context, key: &[u8], names: &[&[u8]]) -> Result<(), ReplyError> {
    if names.is_empty() {
        return Err(errors::SYNTAX.into());
    }
    let mut open = DedupeKey::open(ctx, key, false);
    let flags: Vec<i64> = match open.holds() {
        Holds::Missing | Holds::Store(StoreKind::Set) => vec![0; names.len()],
        Holds::Store(StoreKind::Index) => {
            let index = open.index().ok_or(errors::INTERNAL)?;
            let now = now_secs();
            names
                .iter()
                .map(|n| i64::from(index.keys.get(key_hash(n), now).is_some()))
                .collect()
        }
        Holds::Other => return Err(errors::WRONGTYPE.into()),
    };
    reply::integers(ctx, &flags);
    Ok(())
}

fn set_members(ctx: &Context, key: &[u8], ids: &[StreamId]) -> Result<Vec<i64>, ReplyError> {
    match Redis::new(ctx).with_ids(false, "SMISMEMBER", &[key], ids)? {
        CallReply::Array(flags) => Ok(flags
            .iter()
            .map(|f| match f {
                Ok(CallReply::I64(n)) => n.to_i64(),
                _ => 0,
            })
            .collect()),
        _ => Err(errors::INTERNAL.into()),
    }
}
