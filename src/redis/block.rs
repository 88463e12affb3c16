//! Clients blocked on a key (the module API's blocked clients), for a
//! command that waits for data the way XREADGROUP BLOCK does.
//!
//! A blocked client is woken when its key is signalled (XADD signals a
//! stream), when its timeout passes, or by [`wake_where`]: servers before
//! Redis 7.2 do not wake clients when their key is deleted, so the command
//! can ask, from a timer, which waiting clients' keys are gone.

use super::timer;
use redis_module::{raw, Context, RedisString};
use std::cell::{Cell, RefCell};
use std::os::raw::{c_int, c_longlong, c_void};
use std::ptr;

/// What a command does with its blocked clients.
pub struct Callbacks {
    /// The key was signalled: reply and return true, or return false to go
    /// on waiting.
    pub ready: fn(&Context, &Argv) -> bool,
    /// The wait ended without a reply: the timeout passed, or `wake_where`
    /// woke the client (`woken`). Must reply.
    pub timeout: fn(&Context, &Argv, woken: bool),
    /// The client is done waiting, whatever the reason.
    pub freed: fn(),
}

/// The blocked command's own arguments, as Redis hands them back.
pub struct Argv {
    argv: *mut *mut raw::RedisModuleString,
    argc: usize,
}

impl Argv {
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        // SAFETY: Redis passes argc live strings for the callback's duration.
        (i < self.argc).then(|| RedisString::string_as_slice(unsafe { *self.argv.add(i) }))
    }
}

/// Whether the current call may block its client (not inside MULTI, a
/// script, or where the client denies blocking).
pub fn can_block(ctx: &Context) -> bool {
    const NO_BLOCKING: u32 = raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING
        | raw::REDISMODULE_CTX_FLAGS_MULTI
        | raw::REDISMODULE_CTX_FLAGS_LUA;
    // SAFETY: a live context.
    let flags = unsafe { raw::RedisModule_GetContextFlags.unwrap()(ctx.ctx) } as u32;
    flags & NO_BLOCKING == 0
}

/// A waiting client: its callbacks, and what `wake_where` needs.
struct Waiting {
    callbacks: &'static Callbacks,
    db: i32,
    key: Vec<u8>,
    client: *mut raw::RedisModuleBlockedClient,
    /// Unblocked by `wake_where`.
    woken: bool,
}

thread_local! {
    /// Waiting clients that deleting their key would not wake (only the
    /// main thread blocks and frees clients).
    static UNWOKEN_BY_DELETE: RefCell<Vec<*mut Waiting>> = const { RefCell::new(Vec::new()) };
}

/// How a call to [`block_on_key`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// Redis did not block the client (it replied itself).
    No,
    /// Blocked; deleting the key wakes it.
    Yes,
    /// Blocked; deleting the key does not wake it (Redis 7.0): see
    /// `wake_where`.
    UntilWoken,
}

/// Block the calling client on `key` (in the selected database) for
/// `timeout_ms` (0: forever).
pub fn block_on_key(
    ctx: &Context,
    key: &[u8],
    timeout_ms: u64,
    callbacks: &'static Callbacks,
) -> Blocked {
    let name = RedisString::create_from_slice(ctx.ctx, key);
    let mut keys = [name.inner];
    let timeout = timeout_ms.min(i64::MAX as u64) as c_longlong;
    let waiting = Box::into_raw(Box::new(Waiting {
        callbacks,
        db: super::key::selected_db(ctx),
        key: key.to_vec(),
        client: ptr::null_mut(),
        woken: false,
    }));
    // SAFETY: the API table is written once, at load. Redis 7.2+ and Valkey.
    let with_flags = unsafe { raw::RedisModule_BlockClientOnKeysWithFlags };
    const UNBLOCK_DELETED: c_int = raw::REDISMODULE_BLOCK_UNBLOCK_DELETED as c_int;
    // SAFETY: Redis retains the key names; `waiting` is ours again in `free`.
    let client = unsafe {
        let (ctx, keys, privdata) = (ctx.ctx, keys.as_mut_ptr(), waiting.cast());
        let (reply, timed_out, free) =
            (Some(on_ready as _), Some(on_timeout as _), Some(free as _));
        match with_flags {
            Some(block) => block(
                ctx,
                reply,
                timed_out,
                free,
                timeout,
                keys,
                1,
                privdata,
                UNBLOCK_DELETED,
            ),
            None => raw::RedisModule_BlockClientOnKeys.unwrap()(
                ctx, reply, timed_out, free, timeout, keys, 1, privdata,
            ),
        }
    };
    if client.is_null() {
        // SAFETY: boxed above and handed to no one: `free` will never run.
        drop(unsafe { Box::from_raw(waiting) });
        return Blocked::No;
    }
    if with_flags.is_some() {
        return Blocked::Yes;
    }
    // SAFETY: live until `free`.
    unsafe { (*waiting).client = client };
    UNWOKEN_BY_DELETE.with(|w| w.borrow_mut().push(waiting));
    Blocked::UntilWoken
}

/// Whether any client waits that deleting its key would not wake.
pub fn any_unwoken_by_delete() -> bool {
    UNWOKEN_BY_DELETE.with_borrow(|w| !w.is_empty())
}

/// Wake the clients (among those deleting their key would not wake) for
/// which `gone(ctx, key)` holds, with their database selected; their
/// `timeout` callback then runs with `woken` set.
pub fn wake_where(ctx: &Context, gone: impl Fn(&Context, &[u8]) -> bool) {
    let waiting: Vec<*mut Waiting> = UNWOKEN_BY_DELETE.with_borrow(|w| w.clone());
    for w in waiting {
        // SAFETY: entries are live until `free` removes them, and nothing
        // else runs on the main thread while this does.
        let w = unsafe { &mut *w };
        if w.client.is_null() {
            continue;
        }
        // SAFETY: a timer's context, whose client may select any database.
        unsafe { raw::RedisModule_SelectDb.unwrap()(ctx.ctx, w.db) };
        if gone(ctx, &w.key) {
            w.woken = true;
            // SAFETY: a blocked client not yet unblocked, once only. For a
            // client blocked on keys, Redis then calls `on_timeout`.
            unsafe { raw::RedisModule_UnblockClient.unwrap()(w.client, ptr::null_mut()) };
            w.client = ptr::null_mut();
        }
    }
}

/// The blocked client's `Waiting`, from a reply or timeout callback.
fn waiting_of(ctx: *mut raw::RedisModuleCtx) -> Option<&'static Waiting> {
    // SAFETY: a blocked client's callback context; the private data is the
    // Waiting boxed in `block_on_key`, live until `free`.
    unsafe {
        raw::RedisModule_GetBlockedClientPrivateData.unwrap()(ctx)
            .cast::<Waiting>()
            .as_ref()
    }
}

extern "C" fn on_ready(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    let Some(waiting) = waiting_of(ctx) else {
        return raw::REDISMODULE_ERR as c_int;
    };
    let argv = Argv {
        argv,
        argc: argc as usize,
    };
    match (waiting.callbacks.ready)(&Context::new(ctx), &argv) {
        true => raw::REDISMODULE_OK as c_int,
        false => raw::REDISMODULE_ERR as c_int, // go on waiting
    }
}

extern "C" fn on_timeout(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    if let Some(waiting) = waiting_of(ctx) {
        let argv = Argv {
            argv,
            argc: argc as usize,
        };
        (waiting.callbacks.timeout)(&Context::new(ctx), &argv, waiting.woken);
    }
    raw::REDISMODULE_OK as c_int
}

extern "C" fn free(_ctx: *mut raw::RedisModuleCtx, privdata: *mut c_void) {
    let waiting = privdata.cast::<Waiting>();
    UNWOKEN_BY_DELETE.with(|w| w.borrow_mut().retain(|&p| p != waiting));
    // SAFETY: boxed in `block_on_key`, freed once here.
    let waiting = unsafe { Box::from_raw(waiting) };
    (waiting.callbacks.freed)();
}

thread_local! {
    static TIMER_SET: Cell<bool> = const { Cell::new(false) };
}

/// Run `f` once in `ms` milliseconds, unless a call of this is already
/// pending (one timer at a time).
pub fn after(ctx: &Context, ms: u64, f: fn(&Context)) {
    timer::after(ctx, ms, &TIMER_SET, f);
}

/// What running the blocked command again gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Again {
    /// It replied, and its reply was forwarded to the client.
    Replied,
    /// It took nothing (an empty array), and nothing was forwarded.
    Nothing,
    /// The key is no longer served by this cluster node.
    LeftTheNode,
    /// RedisModule_Call itself failed.
    Failed,
}

/// Run `command` again with the blocked client's arguments (after the
/// name), through RedisModule_Call as the client's user: a command run that
/// way propagates all its writes in one MULTI/EXEC on every server (a reply
/// callback's own writes do not, on Redis 7.0), and it cannot block.
/// Forward its reply, unless it is an empty array and `always` is false.
pub fn again(ctx: &Context, command: &std::ffi::CStr, argv: &Argv, always: bool) -> Again {
    // SAFETY: argv holds argc live strings (the command's own); the reply
    // is read, forwarded (Redis copies it) and freed here.
    unsafe {
        let reply = raw::RedisModule_Call.unwrap()(
            ctx.ctx,
            command.as_ptr(),
            c"!CEv".as_ptr(),
            argv.argv.add(1),
            argv.argc.saturating_sub(1),
        );
        if reply.is_null() {
            return Again::Failed;
        }
        let nothing = raw::RedisModule_CallReplyType.unwrap()(reply)
            == raw::REDISMODULE_REPLY_ARRAY as c_int
            && raw::RedisModule_CallReplyLength.unwrap()(reply) == 0;
        let outcome = if nothing && !always {
            Again::Nothing
        } else if left_the_node(reply) {
            Again::LeftTheNode
        } else {
            raw::RedisModule_ReplyWithCallReply.unwrap()(ctx.ctx, reply);
            Again::Replied
        };
        raw::RedisModule_FreeCallReply.unwrap()(reply);
        outcome
    }
}

/// RedisModule_Call's error for a key this cluster node no longer serves.
///
/// # Safety
/// `reply` must be a live RedisModule_Call reply.
unsafe fn left_the_node(reply: *mut raw::RedisModuleCallReply) -> bool {
    if raw::RedisModule_CallReplyType.unwrap()(reply) != raw::REDISMODULE_REPLY_ERROR as c_int {
        return false;
    }
    let mut len = 0;
    let text = raw::RedisModule_CallReplyStringPtr.unwrap()(reply, &mut len);
    let text = std::slice::from_raw_parts(text.cast::<u8>(), len);
    text.windows(14).any(|w| w == b"non local key ")
}
