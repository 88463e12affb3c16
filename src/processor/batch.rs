//! One batch of a standing processor: `XPROCESS key group CONSUMER consumer
//! READ COUNT n [CLAIM ms]` through RedisModule_Call, which runs it as the
//! command it is (one atomic unit, its writes in one MULTI/EXEC on every
//! server) and hands back its reply to count.

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
        b"COUNT",
        count.as_bytes(),
    ];
    if let Some(claim) = &claim {
        args.extend([&b"CLAIM"[..], claim.as_bytes()]);
    }
    let reply = acl::as_server(|| redis.write("XPROCESS", &args))?;
    Ok(count_outcomes(&reply))
}

/// READ's reply: an `[id, outcome]` pair per entry, the outcome 1
/// (applied), 0 (duplicate), 2 (dead-lettered) or the entry's error.
fn count_outcomes(reply: &CallReply) -> Batch {
    let mut batch = Batch::default();
    let CallReply::Array(pairs) = reply else {
        return batch;
    };
    for pair in pairs.iter().flatten() {
        let CallReply::Array(pair) = pair else {
            continue;
        };
        batch.taken += 1;
        let outcome = pair.get(1);
        match outcome {
            Some(Ok(CallReply::I64(n))) => match n.to_i64() {
                0 => batch.duplicates += 1,
                2 => batch.dead_lettered += 1,
                _ => batch.processed += 1,
            },
            Some(Err(e)) => {
                batch.failed += 1;
                let id = match pair.get(0) {
                    Some(Ok(CallReply::String(id))) => id.to_string().unwrap_or_default(),
                    _ => String::new(),
                };
                batch.last_error = Some((id, e.to_utf8_string().unwrap_or_default()));
            }
            _ => batch.failed += 1,
        };
    }
    batch
}
