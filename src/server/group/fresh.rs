//! READ's new entries without the PEL.
//!
//! `XREADGROUP ... >` writes every entry it hands out into the group's PEL
//! (and propagates an XCLAIM for each), and XACK takes it out again. An
//! entry READ finishes in the same call needs neither: READ reads the new
//! entries straight from the stream, moves the group past all but the last
//! itself (`XGROUP SETID ... ENTRIESREAD`, replicated), and lets the server
//! read the last one with `XREADGROUP ... COUNT 1 >`, so that the consumer
//! is created, seen and active exactly as the server does it, and the
//! group's counter ends where the server puts it. Only that last entry
//! enters the PEL (and is acked with the others); an entry that fails is
//! put there afterwards (`XCLAIM ... FORCE`, see `RedisBackend`), as
//! pending for the consumer after one delivery.
//!
//! When the servers could count the group's entries-read differently,
//! READ lets the server read all but the last with `NOACK` instead of
//! moving the group itself (the server then counts; the entries still stay
//! out of the PEL). When an entry past the group's position is pending
//! already (the group was moved back), XREADGROUP must hand it over to the
//! consumer: READ leaves the whole read to XREADGROUP, as before.

use crate::redis::call::Redis;
use crate::server::group::info;
use crate::stream::entry_cache::Lead;
use crate::stream::reader;
use redis_module::CallReply;
use xprocess_core::entry::Fields;
use xprocess_core::errors::ReplyError;
use xprocess_core::group_read::entries_read_after;
use xprocess_core::id::StreamId;

/// Reads of fewer entries go through XREADGROUP: this path's fixed cost
/// (two XINFO replies and an XGROUP SETID) is repaid per entry.
pub const SMALLEST: usize = 8;

/// New entries read past the group's position; all but the last are
/// outside the PEL.
pub struct Fresh {
    pub entries: Vec<(StreamId, Fields)>,
    /// No entry lies between the group's position and the first of them:
    /// the dedupe index, whose last record is usually that position, needs
    /// no walk of the stream to learn it.
    pub lead: Option<Lead>,
}

/// Up to `want` new entries for `consumer`, or `None` (nothing written)
/// when XREADGROUP must read them.
pub fn take(
    redis: &Redis,
    (stream, group, consumer): (&[u8], &[u8], &[u8]),
    want: usize,
) -> Result<Option<Fresh>, ReplyError> {
    if want < SMALLEST {
        return Ok(None);
    }
    let Some(position) = info::group(redis, stream, group).map(|g| g.position) else {
        return Ok(None); // XREADGROUP gives the error
    };
    let Some(from) = position.last_delivered.next() else {
        return Ok(None);
    };
    if position.pending > 0 && pending_from(redis, stream, group, from)? {
        return Ok(None);
    }
    let span = (from, StreamId::MAX);
    let entries = reader::read_ahead(redis.ctx, stream, None, span, (want, usize::MAX)).entries;
    if let [(first, _), .., _] = entries.as_slice() {
        let before = entries.len() - 1;
        let totals = info::stream(redis, stream);
        let counted = totals.and_then(|t| entries_read_after(&t, &position, *first, before as u64));
        match counted {
            Some(count) => set_id(redis, (stream, group), entries[before - 1].0, count)?,
            None => read_unacked(redis, (stream, group, consumer), before)?,
        }
    }
    let last = read_one(redis, (stream, group, consumer))?;
    if last != entries.last().map(|e| e.0) {
        let warning = format!("xprocess: READ read {last:?} last, not the entry it expected");
        redis.ctx.log_warning(&warning);
    }
    let lead = Some(Lead { from, count: 0 });
    Ok(Some(Fresh { entries, lead }))
}

/// Whether an entry from `from` on is pending in the group already.
fn pending_from(
    redis: &Redis,
    stream: &[u8],
    group: &[u8],
    from: StreamId,
) -> Result<bool, ReplyError> {
    let from = from.text();
    let args: [&[u8]; 5] = [stream, group, from.as_bytes(), b"+", b"1"];
    Ok(matches!(redis.read("XPENDING", &args)?, CallReply::Array(rows) if rows.len() > 0))
}

/// `XGROUP SETID stream group id ENTRIESREAD n`, replicated.
fn set_id(
    redis: &Redis,
    (stream, group): (&[u8], &[u8]),
    id: StreamId,
    entries_read: u64,
) -> Result<(), ReplyError> {
    let (id, n) = (id.text(), entries_read.to_string());
    let args: [&[u8]; 6] = [
        b"SETID",
        stream,
        group,
        id.as_bytes(),
        b"ENTRIESREAD",
        n.as_bytes(),
    ];
    redis.write("XGROUP", &args).map(drop)
}

/// The server's own `XREADGROUP ... COUNT n NOACK >`, when only it can
/// tell the group's counter: the entries stay out of the PEL (their
/// fields, already read, are not looked at again).
fn read_unacked(
    redis: &Redis,
    (stream, group, consumer): (&[u8], &[u8], &[u8]),
    n: usize,
) -> Result<(), ReplyError> {
    let n = n.to_string();
    let args: [&[u8]; 9] = [
        b"GROUP",
        group,
        consumer,
        b"COUNT",
        n.as_bytes(),
        b"NOACK",
        b"STREAMS",
        stream,
        b">",
    ];
    redis.write("XREADGROUP", &args).map(drop)
}

/// The server's own `XREADGROUP ... COUNT 1 >`: the ID it read, if any.
fn read_one(
    redis: &Redis,
    (stream, group, consumer): (&[u8], &[u8], &[u8]),
) -> Result<Option<StreamId>, ReplyError> {
    let args: [&[u8]; 8] = [
        b"GROUP", group, consumer, b"COUNT", b"1", b"STREAMS", stream, b">",
    ];
    // [[stream, [[id, fields]]]], or null when there is nothing new.
    let reply = redis.write("XREADGROUP", &args)?;
    Ok(first_id(&reply))
}

fn first_id(reply: &CallReply) -> Option<StreamId> {
    let CallReply::Array(streams) = reply else {
        return None;
    };
    let stream = streams.get(0)?.ok()?;
    let CallReply::Array(stream) = &stream else {
        return None;
    };
    let entries = stream.get(1)?.ok()?;
    let CallReply::Array(entries) = &entries else {
        return None;
    };
    let entry = entries.get(0)?.ok()?;
    let CallReply::Array(entry) = &entry else {
        return None;
    };
    let id = entry.get(0)?.ok()?;
    let id = match &id {
        CallReply::String(id) => StreamId::parse(id.as_bytes()),
        _ => None,
    };
    id
}
