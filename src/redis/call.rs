//! The one door through which XPROCESS talks to Redis commands.
//!
//! Writes run through `RedisModule_Call` with `!`: Redis then propagates each
//! of them in its deterministic form (XADD with the ID it generated,
//! HINCRBYFLOAT as HSET of the result, PEXPIRE as PEXPIREAT), and wraps all
//! the writes of one XPROCESS call in a single MULTI/EXEC for replicas and
//! the AOF. XPROCESS itself is never propagated. Reads are not propagated.

use redis_module::{raw, CallOptions, CallOptionsBuilder, CallReply, CallResult, Context};
use std::cell::Cell;
use std::ffi::CStr;
use xprocess_core::errors::{ErrorKind, ReplyError};
use xprocess_core::id::{IdText, StreamId};

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
    /// `XACK stream group id...`, the one RedisModule_Call of a steady-state
    /// call. Made without the wrapper's per-call allocations (a C string of
    /// the command name, a module string per argument and vectors of them):
    /// stream and group go to Redis as buffers (`b`), a single ID too.
    pub fn ack(&self, stream: &[u8], group: &[u8], ids: &[StreamId]) -> Result<(), ReplyError> {
        self.calls.set(self.calls.get() + 1);
        let ctx = self.ctx.ctx;
        // SAFETY: the module API is initialised before any command runs.
        let call = unsafe { raw::RedisModule_Call.unwrap() };
        // SAFETY: each format letter has its arguments: `b` a pointer and a
        // length, `v` an array of module strings and its length. Redis
        // copies or retains them; the strings are freed after the call.
        let reply = unsafe {
            if let [id] = ids {
                let id = id.text();
                let id = id.as_bytes();
                call(
                    ctx,
                    c"XACK".as_ptr(),
                    c"!Ebbb".as_ptr(),
                    stream.as_ptr(),
                    stream.len(),
                    group.as_ptr(),
                    group.len(),
                    id.as_ptr(),
                    id.len(),
                )
            } else {
                let strings: Vec<*mut raw::RedisModuleString> = ids
                    .iter()
                    .map(|id| {
                        let text = id.text();
                        let text = text.as_bytes();
                        raw::RedisModule_CreateString.unwrap()(
                            ctx,
                            text.as_ptr().cast(),
                            text.len(),
                        )
                    })
                    .collect();
                let reply = call(
                    ctx,
                    c"XACK".as_ptr(),
                    c"!Ebbv".as_ptr(),
                    stream.as_ptr(),
                    stream.len(),
                    group.as_ptr(),
                    group.len(),
                    strings.as_ptr(),
                    strings.len(),
                );
                for s in strings {
                    raw::RedisModule_FreeString.unwrap()(ctx, s);
                }
                reply
            }
        };
        // SAFETY: a reply from RedisModule_Call, read and freed here.
        unsafe { reply_status(reply) }
    }

    /// `cmd args...`, replicated, without the wrapper's per-call allocations
    /// (a C string of the name, and a vector of module strings besides the
    /// one of raw pointers made here): an effect's write, once per entry.
    /// `as_caller`: Redis checks the command, its keys and whatever it runs
    /// (a function's commands) against the caller's ACL (`C`).
    pub fn write_args<A: AsRef<[u8]>>(
        &self,
        cmd: &CStr,
        args: &[A],
        as_caller: bool,
    ) -> Result<(), ReplyError> {
        self.calls.set(self.calls.get() + 1);
        let ctx = self.ctx.ctx;
        // SAFETY: `v` takes an array of module strings and its length;
        // Redis keeps its own references while the command runs, ours are
        // freed after it.
        unsafe {
            let create = raw::RedisModule_CreateString.unwrap();
            let strings: Vec<*mut raw::RedisModuleString> = args
                .iter()
                .map(|arg| {
                    let arg = arg.as_ref();
                    create(ctx, arg.as_ptr().cast(), arg.len())
                })
                .collect();
            let reply = raw::RedisModule_Call.unwrap()(
                ctx,
                cmd.as_ptr(),
                if as_caller { c"!ECv" } else { c"!Ev" }.as_ptr(),
                strings.as_ptr(),
                strings.len(),
            );
            for s in strings {
                raw::RedisModule_FreeString.unwrap()(ctx, s);
            }
            reply_status(reply)
        }
    }

    /// `cmd lead... id...`, the IDs as `ms-seq` text; a write (replicated)
    /// or a read.
    pub fn with_ids(
        &self,
        write: bool,
        cmd: &str,
        lead: &[&[u8]],
        ids: &[StreamId],
    ) -> Result<CallReply<'static>, ReplyError> {
        self.with_ids_then(write, cmd, lead, ids, &[])
    }

    /// `cmd lead... id... tail...`, as `with_ids`.
    pub fn with_ids_then(
        &self,
        write: bool,
        cmd: &str,
        lead: &[&[u8]],
        ids: &[StreamId],
        tail: &[&[u8]],
    ) -> Result<CallReply<'static>, ReplyError> {
        let texts: Vec<IdText> = ids.iter().map(|id| id.text()).collect();
        let mut args: Vec<&[u8]> = Vec::with_capacity(lead.len() + ids.len() + tail.len());
        args.extend_from_slice(lead);
        args.extend(texts.iter().map(IdText::as_bytes));
        args.extend_from_slice(tail);
        match write {
            true => self.write(cmd, &args),
            false => self.read(cmd, &args),
        }
    }
}

/// Ok, or the error a raw RedisModule_Call replied (or failed with); frees
/// the reply.
///
/// # Safety
/// `reply` must come from RedisModule_Call (or be null) and not be used after.
unsafe fn reply_status(reply: *mut raw::RedisModuleCallReply) -> Result<(), ReplyError> {
    if reply.is_null() {
        return Err(ReplyError::err("ERR internal call failed"));
    }
    let status = match raw::RedisModule_CallReplyType.unwrap()(reply) as isize {
        raw::REDISMODULE_REPLY_ERROR => {
            let mut len = 0;
            let ptr = raw::RedisModule_CallReplyStringPtr.unwrap()(reply, &mut len);
            let text = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
            Err(with_code(String::from_utf8_lossy(text).into_owned()))
        }
        _ => Ok(()),
    };
    raw::RedisModule_FreeCallReply.unwrap()(reply);
    status
}

fn to_reply_error(e: redis_module::ErrorReply<'_>) -> ReplyError {
    with_code(e.to_utf8_string().unwrap_or_default())
}

/// An error reply of RedisModule_Call as ours: RM_Call's own errors may lack
/// a code, Redis replies need one.
fn with_code(text: String) -> ReplyError {
    // RM_Call's own ACL refusal (with `C`) says what Redis says as NOPERM.
    const ACL: &str = "acl verification failed";
    if let Some(rest) = text.strip_prefix("ERR ").filter(|t| t.starts_with(ACL)) {
        return ReplyError::new(ErrorKind::NoPerm, format!("NOPERM {rest}"));
    }
    match text.split(' ').next() {
        Some(code) if !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase()) => {
            ReplyError::new(ErrorKind::of_line(&text), text)
        }
        _ => ReplyError::err(format!("ERR {text}")),
    }
}
