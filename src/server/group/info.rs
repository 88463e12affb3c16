//! A stream's totals and a group's position, read from XINFO's replies
//! (RESP2 flat arrays, or maps when the server answers in RESP3).

use crate::redis::call::Redis;
use redis_module::CallReply;
use xprocess_core::group_read::{GroupPosition, StreamTotals};
use xprocess_core::id::StreamId;

/// One group as XINFO GROUPS shows it.
pub struct GroupInfo {
    pub position: GroupPosition,
    /// Entries not yet delivered, `None` when the server cannot tell.
    pub lag: Option<u64>,
}

/// Group `group` of stream `stream`, `None` when either is missing.
pub fn group(redis: &Redis, stream: &[u8], group: &[u8]) -> Option<GroupInfo> {
    let CallReply::Array(groups) = redis.read("XINFO", &[b"GROUPS", stream]).ok()? else {
        return None;
    };
    let found = groups
        .iter()
        .flatten()
        .find_map(|info| group_info(&info, group));
    found
}

fn group_info(info: &CallReply, name: &[u8]) -> Option<GroupInfo> {
    let mut ours = false;
    let (mut last, mut read, mut pending, mut lag) = (None, None, None, None);
    for_each_field(info, |field, value| match field {
        b"name" => ours = bytes(value) == Some(name),
        b"last-delivered-id" => last = bytes(value).and_then(StreamId::parse),
        b"entries-read" => read = number(value),
        b"pending" => pending = number(value),
        b"lag" => lag = number(value),
        _ => {}
    });
    ours.then_some(())?;
    Some(GroupInfo {
        position: GroupPosition {
            last_delivered: last?,
            entries_read: read,
            pending: pending?,
        },
        lag,
    })
}

/// XINFO STREAM's totals, `None` when the stream is missing or a field
/// is (a server too old to count entries added).
pub fn stream(redis: &Redis, stream: &[u8]) -> Option<StreamTotals> {
    let reply = redis.read("XINFO", &[b"STREAM", stream]).ok()?;
    let (mut length, mut last, mut deleted, mut added) = (None, None, None, None);
    let mut first = None;
    for_each_field(&reply, |field, value| match field {
        b"length" => length = number(value),
        b"last-generated-id" => last = bytes(value).and_then(StreamId::parse),
        b"max-deleted-entry-id" => deleted = bytes(value).and_then(StreamId::parse),
        b"entries-added" => added = number(value),
        b"first-entry" => first = entry_id(value),
        _ => {}
    });
    Some(StreamTotals {
        length: length?,
        first,
        last_generated: last?,
        max_deleted: deleted?,
        entries_added: added?,
    })
}

/// Call `f` with each name and value of a flat array of pairs or a map.
fn for_each_field(reply: &CallReply, mut f: impl FnMut(&[u8], &CallReply)) {
    match reply {
        CallReply::Array(items) => {
            let mut items = items.iter().flatten();
            while let (Some(name), Some(value)) = (items.next(), items.next()) {
                if let Some(name) = bytes(&name) {
                    f(name, &value);
                }
            }
        }
        CallReply::Map(map) => {
            for (name, value) in map.iter() {
                if let (Ok(name), Ok(value)) = (name, value) {
                    if let Some(name) = bytes(&name) {
                        f(name, &value);
                    }
                }
            }
        }
        _ => {}
    }
}

fn bytes<'a>(reply: &'a CallReply) -> Option<&'a [u8]> {
    match reply {
        CallReply::String(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn number(reply: &CallReply) -> Option<u64> {
    match reply {
        CallReply::I64(n) => u64::try_from(n.to_i64()).ok(),
        _ => None,
    }
}

/// The ID of an `[id, [field, value, ...]]` entry.
fn entry_id(reply: &CallReply) -> Option<StreamId> {
    let CallReply::Array(entry) = reply else {
        return None;
    };
    let id = entry.get(0)?.ok()?;
    bytes(&id).and_then(StreamId::parse)
}
