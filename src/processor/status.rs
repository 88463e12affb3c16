//! How far behind a group is, for XPROCESS.LIST and XPROCESS.INFO.

use crate::redis::call::Redis;
use crate::redis::reply::Value as Field;
use crate::server::group::info;
use crate::stats::processors::{self, Name};
use redis_module::Context;
use xprocess_core::definition::Definition;

/// What XPROCESS.INFO and XPROCESS.LIST say of a definition and its
/// processor in database `db`: its state (`running`, `stopped`, or nil
/// before any START), the group's lag, and what the processor did on this
/// server since the module loaded.
pub fn fields(ctx: &Context, db: i32, stream: &[u8], d: &Definition) -> Vec<(&'static str, Field)> {
    let name = Name {
        db,
        stream: stream.to_vec(),
        group: d.group.clone(),
    };
    let counters = processors::get(&name)
        .map(|k| k.counters)
        .unwrap_or_default();
    let text = |t: &str| Field::Text(t.as_bytes().to_vec());
    let int = |n: u64| Field::Int(n as i64);
    let state = d
        .processor
        .as_ref()
        .map_or(Field::Nil, |p| match p.running {
            true => text("running"),
            false => text("stopped"),
        });
    let lag = lag(&Redis::new(ctx), stream, &d.group);
    let (error_id, error) = match counters.last_error {
        Some((id, e)) => (id.map_or(Field::Nil, |id| text(&id)), text(&e)),
        None => (Field::Nil, Field::Nil),
    };
    vec![
        ("state", state),
        ("lag", lag.map_or(Field::Nil, int)),
        ("processed", int(counters.processed)),
        ("duplicates", int(counters.duplicates)),
        ("dead-lettered", int(counters.dead_lettered)),
        ("errors", int(counters.errors)),
        ("last-error", error),
        ("last-error-id", error_id),
    ]
}

/// Entries not yet delivered to the group plus those pending in it, from
/// XINFO GROUPS; `None` when the group (or stream) is missing, or when the
/// server cannot tell how many were not delivered (entries deleted between
/// the group's position and the end).
pub fn lag(redis: &Redis, stream: &[u8], group: &[u8]) -> Option<u64> {
    let info = info::group(redis, stream, group)?;
    Some(info.lag? + info.position.pending)
}
