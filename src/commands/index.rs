//! The commands of the dedupe stores (an index, or a Set where it makes
//! sense), and the internal XPROCESS.PATCH that replays index changes.

use crate::redis::call::Redis;
use crate::redis::clock::now_ms;
use crate::redis::replicate::replicate;
use crate::redis::reply;
use crate::store::{DedupeKey, Holds};
use crate::stream::reader;
use redis_module::{CallReply, Context, ContextFlags};
use std::ffi::CString;
use xprocess_core::business_key::key_hash;
use xprocess_core::errors::{self, ErrorKind, Fixed, ReplyError};
use xprocess_core::id::StreamId;
use xprocess_core::index::key_store::KeyStore;
use xprocess_core::index::patch;
use xprocess_core::index::ranges::{Index, Touched};
use xprocess_core::request::StoreKind;

pub const NO_SUCH_KEY: Fixed = Fixed::new(ErrorKind::Err, "ERR no such key");
pub const PATCH_INTERNAL: Fixed = Fixed::new(
    ErrorKind::Err,
    "ERR XPROCESS.PATCH is internal: only a primary's replication stream and AOF loading may call it",
);

fn parse_ids(args: &[&[u8]]) -> Result<Vec<StreamId>, ReplyError> {
    args.iter()
        .map(|a| StreamId::parse(a).ok_or_else(|| errors::BAD_STREAM_ID.into()))
        .collect()
}

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
    let ids = parse_ids(ids)?;
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

/// The server's clock in Unix seconds (the key store's unit).
fn now_secs() -> u32 {
    u32::try_from(now_ms() / 1000).unwrap_or(u32::MAX)
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

/// XPROCESS.FORGET dedupe-key id [id ...]
///
/// Make the IDs processable again; replies how many of them were processed.
pub fn forget(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    let [_, key, ids @ ..] = argv else {
        return Err(errors::SYNTAX.into());
    };
    let ids = parse_ids(ids)?;
    let mut open = DedupeKey::open(ctx, key, true);
    let forgotten = match open.holds() {
        Holds::Missing => 0,
        Holds::Store(StoreKind::Index) => {
            let index = open.index().ok_or(errors::INTERNAL)?;
            forget_in_index(ctx, key, index, &ids)
        }
        Holds::Store(StoreKind::Set) => {
            drop(open);
            match Redis::new(ctx).with_ids(true, "SREM", &[key], &ids)? {
                CallReply::I64(n) => n.to_i64(),
                _ => return Err(errors::INTERNAL.into()),
            }
        }
        Holds::Other => return Err(errors::WRONGTYPE.into()),
    };
    reply::integer(ctx, forgotten);
    Ok(())
}

fn forget_in_index(ctx: &Context, key: &[u8], index: &mut Index, ids: &[StreamId]) -> i64 {
    let mut touched = Touched::default();
    let mut forgotten = 0;
    for &id in ids {
        let in_stream = reader::contains(ctx, &index.stream, id);
        if index.forget(id, in_stream, &mut touched) {
            forgotten += 1;
        }
    }
    index.shrink_if_sparse();
    if let Some(p) = index.patch(&touched) {
        let change = patch::Change {
            ranges: Some(p),
            keys: None,
        };
        replicate(ctx, key, &index.stream, &change);
    }
    forgotten
}

/// XPROCESS.INFO dedupe-key
///
/// What the store holds, as a map (a flat field/value array in RESP2).
pub fn info(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    let [_, key] = argv else {
        return Err(errors::SYNTAX.into());
    };
    let mut open = DedupeKey::open(ctx, key, false);
    let fields = match open.holds() {
        Holds::Missing => return Err(NO_SUCH_KEY.into()),
        Holds::Store(StoreKind::Index) => index_info(ctx, open.index().ok_or(errors::INTERNAL)?),
        Holds::Store(StoreKind::Set) => {
            drop(open);
            set_info(ctx, key)?
        }
        Holds::Other => return Err(errors::WRONGTYPE.into()),
    };
    reply_map(ctx, &fields);
    Ok(())
}

enum Value {
    Text(Vec<u8>),
    Int(i64),
    Nil,
}

fn index_info(ctx: &Context, index: &Index) -> Vec<(&'static str, Value)> {
    let lowest = lowest_unprocessed(ctx, index);
    let mut fields = vec![
        ("kind", Value::Text(b"index".to_vec())),
        ("stream", Value::Text(index.stream.clone())),
        ("ranges", Value::Int(index.ranges().len() as i64)),
        ("holes", Value::Int(index.holes() as i64)),
        (
            "lowest-unprocessed-id",
            lowest.map_or(Value::Nil, |id| Value::Text(id.text().as_bytes().to_vec())),
        ),
        ("recorded", Value::Int(index.recorded as i64)),
        ("left-unprocessed", Value::Int(index.lost as i64)),
        ("memory", Value::Int(index.memory() as i64)),
    ];
    fields.extend(key_info(&index.keys));
    fields
}

/// The business keys: how many are remembered, for how long, the oldest
/// one's age (from its window's end and the latest window), and counters.
fn key_info(keys: &KeyStore) -> Vec<(&'static str, Value)> {
    let now = now_secs();
    let oldest_age = keys.first_expiry(now).map(|expires| {
        let applied_ms = (u64::from(expires) * 1000).saturating_sub(keys.window);
        Value::Int(now_ms().saturating_sub(applied_ms) as i64)
    });
    vec![
        ("keys", Value::Int(keys.live_count(now) as i64)),
        ("key-window", Value::Int(keys.window as i64)),
        ("oldest-key-age", oldest_age.unwrap_or(Value::Nil)),
        ("keys-expired", Value::Int(keys.expired as i64)),
        ("conflicts", Value::Int(keys.conflicts as i64)),
    ]
}

/// The first entry of the stream above the first range that no range
/// covers (a gap may have emptied without being merged yet).
fn lowest_unprocessed(ctx: &Context, index: &Index) -> Option<StreamId> {
    let ranges = index.ranges();
    let mut after = ranges.first()?.end;
    loop {
        let id = reader::first_after(ctx, &index.stream, after)?;
        let p = ranges.partition_point(|r| r.start <= id);
        match ranges.get(p.wrapping_sub(1)) {
            Some(r) if p > 0 && r.end >= id => after = r.end,
            _ => return Some(id),
        }
    }
}

fn set_info(ctx: &Context, key: &[u8]) -> Result<Vec<(&'static str, Value)>, ReplyError> {
    let redis = Redis::new(ctx);
    let int = |reply: CallReply| match reply {
        CallReply::I64(n) => Value::Int(n.to_i64()),
        _ => Value::Nil,
    };
    Ok(vec![
        ("kind", Value::Text(b"set".to_vec())),
        ("ids", int(redis.read("SCARD", &[key])?)),
        ("ttl", int(redis.read("PTTL", &[key])?)),
        ("memory", int(redis.read("MEMORY", &[b"USAGE", key])?)),
    ])
}

fn reply_map(ctx: &Context, fields: &[(&str, Value)]) {
    reply::map(ctx, fields.len());
    for (name, value) in fields {
        reply::simple(ctx, &CString::new(*name).unwrap_or_default());
        match value {
            Value::Text(t) => reply::bytes(ctx, t),
            Value::Int(n) => reply::integer(ctx, *n),
            Value::Nil => reply::null(ctx),
        }
    }
}

/// XPROCESS.PATCH key stream recorded lost lo hi [start end gap ...]
///
/// Internal (see `patch`): refused unless it comes from the primary or the
/// AOF. Replicated as it is, so a replica's own AOF and replicas get it too.
pub fn apply_patch(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    let allowed = ContextFlags::REPLICATED | ContextFlags::LOADING;
    if !ctx.get_flags().intersects(allowed) {
        return Err(PATCH_INTERNAL.into());
    }
    let parsed = patch::parse(&argv[1..]).map_err(ReplyError::err)?;
    let mut open = DedupeKey::open(ctx, parsed.key, true);
    match open.holds() {
        Holds::Missing => {
            if !open.create_index(parsed.stream) {
                return Err(errors::INTERNAL.into());
            }
        }
        Holds::Store(StoreKind::Index) => {}
        _ => return Err(errors::WRONGTYPE.into()),
    }
    let index = open.index().ok_or(errors::INTERNAL)?;
    if index.stream != parsed.stream {
        return Err(ReplyError::index_of_other_stream(
            parsed.key,
            &index.stream,
            parsed.stream,
        ));
    }
    if let Err(why) = patch::apply(index, &parsed.change) {
        ctx.log_warning(&format!("xprocess: XPROCESS.PATCH refused: {why}"));
        return Err(ReplyError::err(format!(
            "ERR XPROCESS.PATCH refused: {why}"
        )));
    }
    ctx.replicate_verbatim();
    reply::ok(ctx);
    Ok(())
}
