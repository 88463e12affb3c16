//! READ's group side: take entries for the consumer as XAUTOCLAIM and
//! `XREADGROUP ... >` do, by running them (replicated, so replicas and the
//! AOF get their deterministic XCLAIM / XGROUP SETID forms inside the call's
//! MULTI/EXEC), or, for new entries, straight from the stream (`fresh`).
//! Their replies carry the entries' fields, so a READ never reads an entry
//! twice.

pub mod fresh;
pub mod info;

use crate::config;
use crate::redis::call::Redis;
use crate::stream::entry_cache::Lead;
use redis_module::CallReply;
use xprocess_core::entry::Fields;
use xprocess_core::errors::ReplyError;
use xprocess_core::id::StreamId;
use xprocess_core::request::{Read, Request, DEFAULT_READ_COUNT};

/// The entries one READ took: claimed ones (processed first), then new
/// ones. The new ones follow each other in the stream, with no entry
/// between them that was not read (XREADGROUP `>` reads the next entries).
#[derive(Default)]
pub struct Taken {
    pub claimed: Vec<(StreamId, Fields)>,
    pub new: Vec<(StreamId, Fields)>,
    /// How many of the first new entries are outside the PEL (`fresh`).
    pub outside_pel: usize,
    /// What lies just before the new entries, when known (`fresh`).
    pub lead: Option<Lead>,
}

/// How many entries a READ takes at most.
pub fn count(read: &Read) -> usize {
    read.count
        .unwrap_or(DEFAULT_READ_COUNT)
        .min(config::max_ids())
}

/// Claim idle entries (with CLAIM), then read new ones, up to COUNT in all.
pub fn take(redis: &Redis, req: &Request, read: &Read) -> Result<Taken, ReplyError> {
    let consumer = req.consumer.unwrap_or_default(); // parse requires it
    let count = count(read);
    let mut taken = Taken::default();
    if let Some(min_idle) = read.claim {
        let (idle, n) = (min_idle.to_string(), count.to_string());
        let args: [&[u8]; 7] = [
            req.stream,
            req.group,
            consumer,
            idle.as_bytes(),
            b"0-0",
            b"COUNT",
            n.as_bytes(),
        ];
        let reply = redis.write("XAUTOCLAIM", &args)?;
        // [cursor, [entry, ...], [deleted id, ...]]
        if let CallReply::Array(parts) = &reply {
            if let Some(Ok(entries)) = parts.get(1) {
                entries_into(&entries, &mut taken.claimed);
            }
        }
    }
    let want = count - taken.claimed.len();
    if want > 0 {
        let names = (req.stream, req.group, consumer);
        match fresh::take(redis, names, want)? {
            Some(fresh) => {
                taken.outside_pel = fresh.entries.len().saturating_sub(1);
                taken.new = fresh.entries;
                taken.lead = fresh.lead;
            }
            None => read_new(redis, names, want, &mut taken.new)?,
        }
    }
    Ok(taken)
}

/// `XREADGROUP GROUP group consumer COUNT want STREAMS stream >` into `out`.
fn read_new(
    redis: &Redis,
    (stream, group, consumer): (&[u8], &[u8], &[u8]),
    want: usize,
    out: &mut Vec<(StreamId, Fields)>,
) -> Result<(), ReplyError> {
    let n = want.to_string();
    let args: [&[u8]; 8] = [
        b"GROUP",
        group,
        consumer,
        b"COUNT",
        n.as_bytes(),
        b"STREAMS",
        stream,
        b">",
    ];
    // [[stream, [entry, ...]]], or null when there is nothing new.
    if let CallReply::Array(streams) = redis.write("XREADGROUP", &args)? {
        if let Some(Ok(CallReply::Array(stream))) = streams.get(0) {
            if let Some(Ok(entries)) = stream.get(1) {
                entries_into(&entries, out);
            }
        }
    }
    Ok(())
}

/// `[[id, [field, value, ...]], ...]` into `out`.
fn entries_into(reply: &CallReply<'_>, out: &mut Vec<(StreamId, Fields)>) {
    let CallReply::Array(entries) = reply else {
        return;
    };
    for entry in entries.iter().flatten() {
        let CallReply::Array(entry) = entry else {
            continue;
        };
        let id = entry.get(0).and_then(|id| match id.ok()? {
            CallReply::String(s) => StreamId::parse(s.as_bytes()),
            _ => None,
        });
        let Some(id) = id else { continue };
        let mut fields = Fields::new();
        if let Some(Ok(CallReply::Array(pairs))) = entry.get(1) {
            let mut items = pairs.iter();
            while let (Some(Ok(CallReply::String(f))), Some(Ok(CallReply::String(v)))) =
                (items.next(), items.next())
            {
                fields.push(f.as_bytes(), v.as_bytes());
            }
        }
        out.push((id, fields));
    }
}
