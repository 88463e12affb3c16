//! One batch of a standing processor: `XPROCESS key group CONSUMER consumer
//! READ COUNT n [CLAIM ms] REPLY COUNTS` through RedisModule_Call, which
//! runs it as the command it is (one atomic unit, its writes in one
//! MULTI/EXEC on every server) and hands back its counts.

use crate::redis::acl;
use crate::redis::call::Redis;
use redis_module::CallReply;
use xprocess_core::definition::Processor;
use xprocess_core::errors::ReplyError;

/// What one batch did, from its reply.
#[derive(Debug, Default)]
pub struct Batch {
    /// Entries READ took.
    pub taken: u64,
    pub processed: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
    pub failed: u64,
    /// The last entry that failed, and why.
    pub last_error: Option<(String, String)>,
}

/// Run one batch of at most `count` entries.
pub fn run(
    redis: &Redis,
    stream: &[u8],
    group: &[u8],
    processor: &Processor,
    count: u64,
) -> Result<Batch, ReplyError> {
    let count = count.to_string();
    let claim = processor.claim.map(|ms| ms.to_string());
    let mut args: Vec<&[u8]> = vec![
        stream,
        group,
        b"CONSUMER",
        &processor.consumer,
        b"READ",
        b"REPLY",
        b"COUNTS",
        b"COUNT",
        count.as_bytes(),
    ];
    if let Some(claim) = &claim {
        args.extend([&b"CLAIM"[..], claim.as_bytes()]);
    }
    let reply = acl::as_server(|| redis.write("XPROCESS", &args))?;
    Ok(count_outcomes(&reply))
}

/// READ's `REPLY COUNTS` (a flat field/value array: RedisModule_Call
/// replies in RESP2), or an empty array when it took nothing.
fn count_outcomes(reply: &CallReply) -> Batch {
    let mut batch = Batch::default();
    let CallReply::Array(fields) = reply else {
        return batch;
    };
    let items: Vec<_> = fields.iter().flatten().collect();
    for pair in items.chunks(2) {
        let [CallReply::String(name), value] = pair else {
            continue;
        };
        let n = match value {
            CallReply::I64(n) => n.to_i64().max(0) as u64,
            _ => 0,
        };
        match name.as_bytes() {
            b"applied" => batch.processed = n,
            b"duplicates" => batch.duplicates = n,
            b"dead-lettered" => batch.dead_lettered = n,
            b"failed" => batch.failed = n,
            b"errors" => batch.last_error = last_error(value),
            _ => {}
        }
    }
    batch.taken = batch.processed + batch.duplicates + batch.dead_lettered + batch.failed;
    batch
}

/// The last `[id, error]` pair of `errors`.
fn last_error(errors: &CallReply) -> Option<(String, String)> {
    let CallReply::Array(pairs) = errors else {
        return None;
    };
    let last = pairs.iter().flatten().last()?;
    let CallReply::Array(pair) = last else {
        return None;
    };
    let id = match pair.get(0) {
        Some(Ok(CallReply::String(id))) => id.to_string().unwrap_or_default(),
        _ => String::new(),
    };
    let error = match pair.get(1) {
        Some(Err(e)) => e.to_utf8_string().unwrap_or_default(),
        _ => String::new(),
    };
    Some((id, error))
}
