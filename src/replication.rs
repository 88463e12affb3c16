//! The one door through which XPROCESS talks to Redis commands.
//!
//! Writes run through `RedisModule_Call` with `!`: Redis then propagates each
//! of them in its deterministic form (XADD with the ID it generated,
//! HINCRBYFLOAT as HSET of the result, PEXPIRE as PEXPIREAT), and wraps all
//! the writes of one XPROCESS call in a single MULTI/EXEC for replicas and
//! the AOF. XPROCESS itself is never propagated. Reads are not propagated.

use crate::errors::ReplyError;
use redis_module::{CallOptions, CallOptionsBuilder, CallReply, CallResult, Context};
use std::cell::Cell;

pub struct Redis<'c> {
    pub ctx: &'c Context,
    write: CallOptions,
    read: CallOptions,
    /// RedisModule_Call invocations so far (reads and writes).
    pub calls: Cell<u64>,
}

impl<'c> Redis<'c> {
    pub fn new(ctx: &'c Context) -> Self {
        Redis {
            ctx,
            write: CallOptionsBuilder::new()
                .replicate()
                .errors_as_replies()
                .build(),
            read: CallOptionsBuilder::new().errors_as_replies().build(),
            calls: Cell::new(0),
        }
    }

    /// A command whose effect must reach replicas and the AOF.
    pub fn write(&self, cmd: &str, args: &[&[u8]]) -> Result<CallReply<'static>, ReplyError> {
        self.calls.set(self.calls.get() + 1);
        let result: CallResult<'static> = self.ctx.call_ext(cmd, &self.write, args);
        result.map_err(to_reply_error)
    }

    /// A command that only reads.
    pub fn read(&self, cmd: &str, args: &[&[u8]]) -> Result<CallReply<'static>, ReplyError> {
        self.calls.set(self.calls.get() + 1);
        let result: CallResult<'static> = self.ctx.call_ext(cmd, &self.read, args);
        result.map_err(to_reply_error)
    }
}

fn to_reply_error(e: redis_module::ErrorReply<'_>) -> ReplyError {
    let text = e.to_utf8_string().unwrap_or_default();
    // RM_Call's own errors may lack a code; Redis replies need one.
    match text.split(' ').next() {
        Some(code) if !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase()) => {
            ReplyError::new(text)
        }
        _ => ReplyError::new(format!("ERR {text}")),
    }
}
