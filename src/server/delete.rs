//! `DELETE [ACKED]`: the entries a call is done with leave the stream in the
//! same atomic step, as XACKDEL does, on every server (XDEL, replicated in
//! the call's MULTI/EXEC). With ACKED, an entry another group of the stream
//! still needs stays: one not yet delivered to that group, or pending in it.

use crate::redis::call::Redis;
use crate::stream::entry_cache;
use redis_module::CallReply;
use xprocess_core::errors::ReplyError;
use xprocess_core::id::StreamId;
use xprocess_core::process::Outcome;
use xprocess_core::request::{Delete, Request};

/// Delete the entries of `ids` whose outcome says the call is done with
/// them (not the failed ones: they stay pending).
pub fn delete_done(
    redis: &Redis,
    db: i32,
    req: &Request,
    ids: &[StreamId],
    outcomes: &[Outcome],
    how: Delete,
) -> Result<(), ReplyError> {
    let mut done: Vec<StreamId> = ids
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| !matches!(o, Outcome::Failed(_)))
        .map(|(id, _)| *id)
        .collect();
    if how == Delete::Acked {
        for (group, last) in other_groups(redis, req)? {
            let pending = Pending::of(redis, req.stream, &group, &done);
            done.retain(|id| *id <= last && !pending.has(redis, req.stream, &group, *id));
        }
    }
    if done.is_empty() {
        return Ok(());
    }
    redis.with_ids(true, "XDEL", &[req.stream], &done)?;
    entry_cache::forget(db, req.stream);
    Ok(())
}

/// The stream's other groups, with their last-delivered ID.
fn other_groups(redis: &Redis, req: &Request) -> Result<Vec<(Vec<u8>, StreamId)>, ReplyError> {
    let reply = redis.read("XINFO", &[b"GROUPS", req.stream])?;
    let CallReply::Array(groups) = reply else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for group in groups.iter().flatten() {
        let CallReply::Array(fields) = group else {
            continue;
        };
        let fields: Vec<Vec<u8>> = fields
            .iter()
            .map(|f| match f {
                Ok(CallReply::String(s)) => s.as_bytes().to_vec(),
                _ => Vec::new(),
            })
            .collect();
        let value = |name: &[u8]| {
            fields
                .chunks(2)
                .find(|pair| pair[0] == name && pair.len() == 2)
                .map(|pair| pair[1].clone())
        };
        let (Some(name), Some(last)) = (value(b"name"), value(b"last-delivered-id")) else {
            continue;
        };
        if name != req.group {
            out.push((name, StreamId::parse(&last).unwrap_or(StreamId::MAX)));
        }
    }
    Ok(out)
}

/// One group's pending IDs between the first and last of the call's: read
/// in one XPENDING when there are at most [`PENDING_READ`] of them, else
/// asked per entry.
enum Pending {
    All(Vec<StreamId>),
    TooMany,
}

const PENDING_READ: usize = 1024;

impl Pending {
    fn of(redis: &Redis, stream: &[u8], group: &[u8], ids: &[StreamId]) -> Pending {
        let (Some(first), Some(last)) = (ids.iter().min(), ids.iter().max()) else {
            return Pending::All(Vec::new());
        };
        let (first, last, count) = (first.text(), last.text(), PENDING_READ.to_string());
        let args: [&[u8]; 5] = [
            stream,
            group,
            first.as_bytes(),
            last.as_bytes(),
            count.as_bytes(),
        ];
        match redis.read("XPENDING", &args) {
            Ok(CallReply::Array(rows)) if rows.len() < PENDING_READ => Pending::All(
                rows.iter()
                    .flatten()
                    .filter_map(|row| row_id(&row))
                    .collect(),
            ),
            _ => Pending::TooMany,
        }
    }

    /// Whether `id` is pending in the group.
    fn has(&self, redis: &Redis, stream: &[u8], group: &[u8], id: StreamId) -> bool {
        if let Pending::All(ids) = self {
            return ids.binary_search(&id).is_ok(); // XPENDING lists in ID order
        }
        let text = id.text();
        let args: [&[u8]; 5] = [stream, group, text.as_bytes(), text.as_bytes(), b"1"];
        match redis.read("XPENDING", &args) {
            Ok(CallReply::Array(rows)) => rows.len() > 0,
            _ => true, // unsure: keep it
        }
    }
}

/// The ID of one XPENDING row (`[id, consumer, idle, deliveries]`).
fn row_id(row: &CallReply) -> Option<StreamId> {
    let CallReply::Array(fields) = row else {
        return None;
    };
    match fields.get(0)?.ok()? {
        CallReply::String(id) => StreamId::parse(id.as_bytes()),
        _ => None,
    }
}
