//! How far behind a group is, for XPROCESS.LIST and XPROCESS.INFO.

use crate::redis::call::Redis;
use crate::redis::reply::Value as Field;
use crate::stats::processors::{self, Name};
use redis_module::{CallReply, Context};
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
    let CallReply::Array(groups) = redis.read("XINFO", &[b"GROUPS", stream]).ok()? else {
        return None;
    };
    for info in groups.iter().flatten() {
        let fields = pairs(&info);
        let field = |name: &[u8]| fields.iter().find(|(f, _)| f == name).map(|(_, v)| v);
        if field(b"name").and_then(|v| v.as_bytes()) != Some(group) {
            continue;
        }
        let number = |name: &[u8]| field(name).and_then(|v| v.as_u64());
        return Some(number(b"lag")? + number(b"pending")?);
    }
    None
}

/// A field of XINFO's reply: a name and a string or a number.
enum Value {
    Bytes(Vec<u8>),
    Number(u64),
    Other,
}

impl Value {
    fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// A group's fields: a flat array (RESP2) or a map (RESP3).
fn pairs(reply: &CallReply) -> Vec<(Vec<u8>, Value)> {
    let value = |v: &CallReply| match v {
        CallReply::String(s) => Value::Bytes(s.as_bytes().to_vec()),
        CallReply::I64(n) => u64::try_from(n.to_i64()).map_or(Value::Other, Value::Number),
        _ => Value::Other,
    };
    let mut out = Vec::new();
    match reply {
        CallReply::Array(items) => {
            let items: Vec<_> = items.iter().flatten().collect();
            for pair in items.chunks(2) {
                if let [CallReply::String(f), v] = pair {
                    out.push((f.as_bytes().to_vec(), value(v)));
                }
            }
        }
        CallReply::Map(map) => {
            for (f, v) in map.iter() {
                if let (Ok(CallReply::String(f)), Ok(v)) = (f, v) {
                    out.push((f.as_bytes().to_vec(), value(&v)));
                }
            }
        }
        _ => {}
    }
    out
}
