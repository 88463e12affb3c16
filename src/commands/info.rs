//! XPROCESS.INFO: what a dedupe store holds.

use crate::processor::status;
use crate::redis::call::Redis;
use crate::redis::clock::{now_ms, now_secs};
use crate::redis::command::{entry_point, key, Arg, ArgKind, Begin, Command, Docs, KeySpec};
use crate::redis::key::selected_db;
use crate::redis::reply::{self, Value};
use crate::store::{DedupeKey, Holds};
use crate::stream::reader;
use redis_module::{CallReply, Context};
use xprocess_core::definition::Definition;
use xprocess_core::errors::{self, ErrorKind, Fixed, ReplyError};
use xprocess_core::id::StreamId;
use xprocess_core::index::key_store::KeyStore;
use xprocess_core::index::ranges::Index;
use xprocess_core::request::StoreKind;

entry_point!(entry, info);

pub const COMMAND: Command = Command {
    name: c"xprocess.info",
    entry,
    flags: c"readonly",
    acl: c"read",
    arity: 2,
    docs: Docs {
        summary: c"Describes a dedupe store: kind, stream, ranges, holes, lowest unprocessed ID, records, memory, business keys",
        complexity: c"O(1)",
        since: c"0.2.0",
        key_specs: &[KeySpec {
            notes: c"the dedupe key",
            flags: key::RO | key::ACCESS,
            begin: Begin::Index(1),
            unknown: false,
        }],
        args: &[Arg::new(c"dedupe-key", ArgKind::Key).key(0)],
    },
};

pub const NO_SUCH_KEY: Fixed = Fixed::new(ErrorKind::Err, "ERR no such key");

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
    reply::fields(ctx, &fields);
    Ok(())
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
    if let Some(d) = &index.definition {
        fields.extend(definition_info(ctx, index, d));
    }
    fields
}

/// The group's definition, as its XPROCESS.DEFINE arguments, its
/// processor's XPROCESS.START arguments, and how the processor is doing.
fn definition_info(ctx: &Context, index: &Index, d: &Definition) -> Vec<(&'static str, Value)> {
    let mut fields = vec![
        ("group", Value::Text(d.group.clone())),
        ("definition", Value::List(d.args.clone())),
        ("processor", d.start_args().map_or(Value::Nil, Value::List)),
    ];
    fields.extend(status::fields(ctx, selected_db(ctx), &index.stream, d));
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
