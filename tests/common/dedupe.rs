//! Reading a dedupe store whole, for the chaos, failover and cluster tests:
//! which of a list of IDs it records and how many other records it holds,
//! and whether an index is settled once everything is processed.
//!
//! Every helper takes any connection (`&mut dyn ConnectionLike`) and returns
//! its failures as text, so a test that reports problems at the end collects
//! them and one that must stop right away panics with them.

use super::Store;
use redis::{ConnectionLike, FromRedisValue, Value};
use std::collections::{BTreeMap, HashSet};

/// What a dedupe store records about a list of IDs.
#[derive(Debug, Default, PartialEq)]
pub struct Dedupe {
    /// The IDs asked about that it records.
    pub found: HashSet<String>,
    /// How many records of other IDs it holds: a Set's other members; for an
    /// index, which cannot be listed, XPROCESS.INFO's `recorded` (IDs
    /// recorded since it was created; nothing is forgotten here) minus `found`.
    pub others: u64,
}

/// Run a command; a whole-call error reply or a connection error is `Err`.
fn query(con: &mut dyn ConnectionLike, args: &[&str]) -> Result<Value, String> {
    match con.req_command(&super::build(args)) {
        Ok(Value::ServerError(e)) => Err(format!("{args:?}: {e:?}")),
        Ok(v) => Ok(v),
        Err(e) => Err(format!("{args:?}: {e}")),
    }
}

fn conv<T: FromRedisValue>(v: &Value) -> Result<T, String> {
    redis::from_redis_value(v).map_err(|e| format!("unexpected reply {v:?}: {e}"))
}

/// XPROCESS.INFO of `key` as field -> value (a nil value as "", an array
/// of strings, such as a definition's arguments, joined by spaces).
pub fn store_info(
    con: &mut dyn ConnectionLike,
    key: &str,
) -> Result<BTreeMap<String, String>, String> {
    let pairs: Vec<(Value, Value)> = match query(con, &["XPROCESS.INFO", key])? {
        Value::Array(flat) if flat.len() % 2 == 0 => flat
            .chunks(2)
            .map(|kv| (kv[0].clone(), kv[1].clone()))
            .collect(),
        Value::Map(map) => map,
        other => return Err(format!("XPROCESS.INFO {key}: {other:?}")),
    };
    pairs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Nil => String::new(),
                Value::Array(items) => conv::<Vec<String>>(&Value::Array(items.clone()))?.join(" "),
                v => conv(v)?,
            };
            Ok((conv(k)?, v))
        })
        .collect()
}

/// Which of `ids` the dedupe store at `key` records, and how many other
/// records it holds: SMEMBERS for a Set, XPROCESS.EXISTS and `recorded` for
/// an index. The key must hold the kind of store asked for (or be missing:
/// nothing recorded). Read on the node `con` is connected to.
pub fn read_dedupe(
    con: &mut dyn ConnectionLike,
    store: Store,
    key: &str,
    ids: &[String],
) -> Result<Dedupe, String> {
    let exists: i64 = conv(&query(con, &["EXISTS", key])?)?;
    if exists == 0 {
        return Ok(Dedupe::default());
    }
    let info = store_info(con, key)?;
    let kind = info.get("kind").map_or("?", String::as_str);
    if kind != store.kind() {
        return Err(format!(
            "{key} holds a {kind}, not a {}: {info:?}",
            store.kind()
        ));
    }
    let wanted: HashSet<&String> = ids.iter().collect();
    match store {
        Store::Set => {
            let members: HashSet<String> = conv(&query(con, &["SMEMBERS", key])?)?;
            let (found, others): (HashSet<String>, HashSet<String>) =
                members.into_iter().partition(|m| wanted.contains(m));
            Ok(Dedupe {
                found,
                others: others.len() as u64,
            })
        }
        Store::Index => {
            let mut found = HashSet::new();
            for chunk in ids.chunks(1000) {
                let mut args = vec!["XPROCESS.EXISTS", key];
                args.extend(chunk.iter().map(String::as_str));
                let flags: Vec<i64> = conv(&query(con, &args)?)?;
                if flags.len() != chunk.len() {
                    return Err(format!("XPROCESS.EXISTS {key}: {flags:?} for {chunk:?}"));
                }
                let hits = chunk.iter().zip(flags).filter(|(_, f)| *f == 1);
                found.extend(hits.map(|(id, _)| id.clone()));
            }
            let recorded: u64 = info["recorded"]
                .parse()
                .map_err(|e| format!("recorded {:?}: {e}", info["recorded"]))?;
            let others = recorded.checked_sub(found.len() as u64).ok_or_else(|| {
                format!(
                    "{key}: XPROCESS.EXISTS finds {} IDs, `recorded` is {recorded}",
                    found.len()
                )
            })?;
            Ok(Dedupe { found, others })
        }
    }
}

/// An index once every entry of `stream` is processed (and none left it):
/// one range, no hole, no lowest unprocessed entry, nothing left unprocessed.
/// The problems found, none if it is settled.
pub fn index_settled(con: &mut dyn ConnectionLike, key: &str, stream: &str) -> Vec<String> {
    let mut info = match store_info(con, key) {
        Ok(info) => info,
        Err(e) => return vec![e],
    };
    // Without `memory`, so the text stays the same across a restart.
    info.remove("memory");
    let expected = [
        ("kind", "index"),
        ("stream", stream),
        ("holes", "0"),
        ("lowest-unprocessed-id", ""),
        ("left-unprocessed", "0"),
    ];
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(f, v)| info.get(*f).map(String::as_str) != Some(*v))
        .map(|(f, v)| format!("{f} is {:?}, expected {v:?}", info.get(*f)))
        .collect();
    if wrong.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "index {key} after everything was processed: {}; XPROCESS.INFO {info:?}",
        wrong.join(", ")
    )]
}
