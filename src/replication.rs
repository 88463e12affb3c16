//! The one door through which XPROCESS talks to Redis commands.
//!
//! Writes run through `RedisModule_Call` with `!`: Redis then propagates each
//! of them in its deterministic form (XADD with the ID it generated,
//! HINCRBYFLOAT as HSET of the result, PEXPIRE as PEXPIREAT), and wraps all
//! the writes of one XPROCESS call in a single MULTI/EXEC for replicas and
//! the AOF. XPROCESS itself is never propagated. Reads are not propagated.

use crate::errors::ReplyError;
use crate::hash_writes::Pending;
use crate::parse::{IdText, StreamId};
use redis_module::{
    raw, CallOptions, CallOptionsBuilder, CallReply, CallResult, Context, NotifyEvent, RedisString,
};
use std::cell::Cell;
use std::os::raw::c_void;
use std::ptr;

thread_local! {
    // Built once: RedisModule_Call flags, `!` replicate, `E` errors as replies.
    static WRITE: CallOptions = CallOptionsBuilder::new().replicate().errors_as_replies().build();
    static READ: CallOptions = CallOptionsBuilder::new().errors_as_replies().build();
}

pub struct Redis<'c> {
    pub ctx: &'c Context,
    /// RedisModule_Call invocations so far (reads and writes).
    pub calls: Cell<u64>,
}

impl<'c> Redis<'c> {
    pub fn new(ctx: &'c Context) -> Self {
        Redis {
            ctx,
            calls: Cell::new(0),
        }
    }

    /// A command whose effect must reach replicas and the AOF.
    pub fn write(&self, cmd: &str, args: &[&[u8]]) -> Result<CallReply<'static>, ReplyError> {
        self.calls.set(self.calls.get() + 1);
        let result: CallResult<'static> = WRITE.with(|opts| self.ctx.call_ext(cmd, opts, args));
        result.map_err(to_reply_error)
    }

    /// A command that only reads.
    pub fn read(&self, cmd: &str, args: &[&[u8]]) -> Result<CallReply<'static>, ReplyError> {
        self.calls.set(self.calls.get() + 1);
        let result: CallResult<'static> = READ.with(|opts| self.ctx.call_ext(cmd, opts, args));
        result.map_err(to_reply_error)
    }
}

impl Redis<'_> {
    /// `cmd lead... id...`, the IDs as `ms-seq` text; a write (replicated)
    /// or a read.
    pub fn with_ids(
        &self,
        write: bool,
        cmd: &str,
        lead: &[&[u8]],
        ids: &[StreamId],
    ) -> Result<CallReply<'static>, ReplyError> {
        let texts: Vec<IdText> = ids.iter().map(|id| id.text()).collect();
        let mut args: Vec<&[u8]> = Vec::with_capacity(lead.len() + ids.len());
        args.extend_from_slice(lead);
        args.extend(texts.iter().map(IdText::as_bytes));
        match write {
            true => self.write(cmd, &args),
            false => self.read(cmd, &args),
        }
    }

    /// Set hash fields to values HINCRBY planning computed, without
    /// RedisModule_Call: the low-level hash API writes them, one `HSET key
    /// field value ...` replicates them (the final values: deterministic),
    /// and each HINCRBY that produced them is notified as `hincrby`.
    pub fn write_hash(&self, key: &[u8], fields: &[(Vec<u8>, Pending)]) {
        let ctx = self.ctx.ctx;
        let name = RedisString::create_from_slice(ctx, key);
        let mut strings = Vec::with_capacity(2 * fields.len());
        for (field, (value, _)) in fields {
            let mut digits = itoa_buf();
            strings.push(RedisString::create_from_slice(ctx, field));
            strings.push(RedisString::create_from_slice(
                ctx,
                format_i64(*value, &mut digits),
            ));
        }
        // SAFETY: the key is opened for writing, set and closed here; Redis
        // copies fields and values. Closing it signals the modification
        // (WATCH). HashSet returns a count of replaced fields, not a status:
        // planning checked the key is a hash or missing, so it cannot fail.
        unsafe {
            let handle =
                raw::RedisModule_OpenKey.unwrap()(ctx, name.inner, raw::REDISMODULE_WRITE as i32)
                    .cast::<raw::RedisModuleKey>();
            for pair in strings.chunks(2) {
                raw::RedisModule_HashSet.unwrap()(
                    handle,
                    raw::REDISMODULE_HASH_NONE as i32,
                    pair[0].inner,
                    pair[1].inner,
                    ptr::null_mut::<c_void>(),
                );
            }
            raw::RedisModule_CloseKey.unwrap()(handle);
        }
        let mut args: Vec<&RedisString> = Vec::with_capacity(strings.len() + 1);
        args.push(&name);
        args.extend(strings.iter());
        self.ctx.replicate("HSET", args.as_slice());
        for (_, (_, count)) in fields {
            for _ in 0..*count {
                self.ctx
                    .notify_keyspace_event(NotifyEvent::HASH, "hincrby", &name);
            }
        }
    }
}

/// Room for any i64 in decimal.
fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// `n` in decimal, without going through `fmt`.
pub fn format_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut rest = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_i64_covers_the_range() {
        let mut buf = itoa_buf();
        for n in [0, 7, -7, 10, 1234567890, i64::MAX, i64::MIN] {
            assert_eq!(format_i64(n, &mut buf), n.to_string().as_bytes());
        }
    }
}
