//! XPROCESS.START: let the server run a group's definition by itself.

use super::{defined, GROUP, KEY, STREAM_KEY_SPEC};
use crate::processor;
use crate::redis::call::Redis;
use crate::redis::command::{entry_point, Arg, ArgKind, Command, Docs};
use crate::redis::reply;
use crate::store::definition;
use redis_module::Context;
use xprocess_core::definition::{Processor, DEFAULT_PROCESSOR_COUNT};
use xprocess_core::errors::{self, ReplyError};
use xprocess_core::numbers::parse_i64;

entry_point!(entry, start);

/// The consumer a processor reads as when START names none.
pub const DEFAULT_CONSUMER: &[u8] = b"xprocess";

pub const COMMAND: Command = Command {
    name: c"xprocess.start",
    entry,
    flags: c"write deny-oom",
    // A processor runs with the server's rights, not a user's (as the
    // replication stream and AOF loading do): its templated keys and its
    // function are checked against no ACL, so starting one is as dangerous
    // as RESTORE.
    acl: c"write stream dangerous",
    arity: -3,
    docs: Docs {
        summary: c"Makes the server process a defined group's entries by itself, as XPROCESS ... READ by its consumer would, from now on and after restarts and failovers",
        complexity: c"O(1)",
        since: c"0.3.0",
        key_specs: &STREAM_KEY_SPEC,
        args: &[
            KEY,
            GROUP,
            Arg::new(c"consumer", ArgKind::String)
                .token(c"CONSUMER")
                .optional(),
            Arg::new(c"count", ArgKind::Integer).token(c"COUNT").optional(),
            Arg::new(c"min-idle-time", ArgKind::Integer)
                .token(c"CLAIM")
                .optional(),
        ],
    },
};

/// XPROCESS.START key group [CONSUMER consumer] [COUNT count] [CLAIM min-idle-ms]
pub fn start(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    let [_, stream, group, options @ ..] = argv else {
        return Err(errors::SYNTAX.into());
    };
    let settings = parse(options)?;
    let mut defined = defined(ctx, stream, group)?;
    // The group must exist, as for a call (XPENDING with count 0 says so).
    let args: [&[u8]; 5] = [stream, group, b"-", b"+", b"0"];
    Redis::new(ctx).read("XPENDING", &args)?;
    defined.processor = Some(settings);
    definition::save(ctx, stream, group, Some(defined))?;
    processor::wake(ctx);
    reply::ok(ctx);
    Ok(())
}

fn parse(options: &[&[u8]]) -> Result<Processor, ReplyError> {
    let mut p = Processor {
        consumer: DEFAULT_CONSUMER.to_vec(),
        count: DEFAULT_PROCESSOR_COUNT,
        claim: None,
        running: true,
    };
    let (mut consumer, mut count) = (false, false);
    let mut rest = options;
    while let [token, value, tail @ ..] = rest {
        let is = |name: &str| token.eq_ignore_ascii_case(name.as_bytes());
        if is("CONSUMER") && !consumer {
            consumer = true;
            p.consumer = value.to_vec();
        } else if is("COUNT") && !count {
            count = true;
            let n = parse_i64(value).filter(|n| *n > 0);
            p.count = n.ok_or(errors::BAD_COUNT)? as u64;
        } else if is("CLAIM") && p.claim.is_none() {
            let ms = parse_i64(value).filter(|ms| *ms >= 0);
            p.claim = Some(ms.ok_or(errors::BAD_MIN_IDLE)? as u64);
        } else {
            return Err(errors::SYNTAX.into());
        }
        rest = tail;
    }
    match rest.is_empty() {
        true => Ok(p),
        false => Err(errors::SYNTAX.into()),
    }
}
