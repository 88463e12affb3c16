//! `READ ... BLOCK`: a READ that found nothing waits on the stream key, as
//! XREADGROUP BLOCK does, and runs again (the whole READ, atomically) each
//! time the key is signalled: XADD signals it. Where the server can (Redis
//! 7.2+, Valkey), deleting the key wakes the client too, and the READ then
//! fails with NOGROUP; on Redis 7.0 a timer wakes it (see `poll`).
//!
//! Blocking is never done inside MULTI/EXEC or a script: there the READ
//! replies at once, as XREADGROUP does.

use crate::commands::xprocess::reply;
use crate::redis::call::Redis;
use crate::server::cluster;
use crate::stats;
use redis_module::{raw, Context, ContextFlags, RedisString};
use std::cell::{Cell, RefCell};
use std::os::raw::{c_int, c_longlong, c_void};
use std::ptr;
use xprocess_core::errors;

const UNBLOCK_DELETED: c_int = raw::REDISMODULE_BLOCK_UNBLOCK_DELETED as c_int;

/// Whether this call may block its client.
pub fn can_block(ctx: &Context) -> bool {
    const NO_BLOCKING: u32 = raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING
        | raw::REDISMODULE_CTX_FLAGS_MULTI
        | raw::REDISMODULE_CTX_FLAGS_LUA;
    // SAFETY: a live context.
    let flags = unsafe { raw::RedisModule_GetContextFlags.unwrap()(ctx.ctx) } as u32;
    flags & NO_BLOCKING == 0
}

/// A waiting client: what Redis 7.0 needs to wake it when its key goes.
struct Waiting {
    db: i32,
    stream: Vec<u8>,
    client: *mut raw::RedisModuleBlockedClient,
    /// Unblocked by `wake`: its stream or group is gone.
    woken: bool,
}

thread_local! {
    /// Waiting clients, for servers that cannot wake them on deletion
    /// (only the main thread blocks and frees clients).
    static WAITING: RefCell<Vec<*mut Waiting>> = const { RefCell::new(Vec::new()) };
}

/// Block the calling client on `stream` for `timeout_ms` (0: forever).
pub fn wait(ctx: &Context, stream: &[u8], timeout_ms: u64) {
    let key = RedisString::create_from_slice(ctx.ctx, stream);
    let mut keys = [key.inner];
    let timeout = timeout_ms.min(i64::MAX as u64) as c_longlong;
    let waiting = Box::into_raw(Box::new(Waiting {
        // SAFETY: a live context.
        db: unsafe { raw::RedisModule_GetSelectedDb.unwrap()(ctx.ctx) },
        stream: stream.to_vec(),
        client: ptr::null_mut(),
        woken: false,
    }));
    // SAFETY: the API table is written once, at load. Redis 7.2+ and Valkey.
    let with_flags = unsafe { raw::RedisModule_BlockClientOnKeysWithFlags };
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
        // Not blocked (Redis replied itself): `free` will never run.
        // SAFETY: boxed above and handed to no one.
        drop(unsafe { Box::from_raw(waiting) });
        return;
    }
    if with_flags.is_none() {
        // Redis 7.0: deleting the key will not wake it, `poll` will.
        // SAFETY: live until `free`.
        unsafe { (*waiting).client = client };
        WAITING.with(|w| w.borrow_mut().push(waiting));
        start_polling(ctx.ctx);
    }
    stats::update(|s| {
        s.blocked += 1;
        s.blocked_clients += 1;
    });
}

/// Redis 7.0 signals the key of a waiting client when it is replaced or its
/// group destroyed, but not when it is deleted (DEL, expiry, eviction,
/// RENAME, MOVE, FLUSHDB, SWAPDB): so while anyone waits there, a timer
/// looks every `POLL_MS` for clients whose stream is gone, and wakes them
/// (their READ then fails with NOGROUP). A timer, not keyspace events:
/// events would cost every command of every client (issue #12).
const POLL_MS: c_longlong = 100;

thread_local! {
    static POLLING: Cell<bool> = const { Cell::new(false) };
}

fn start_polling(ctx: *mut raw::RedisModuleCtx) {
    if !POLLING.replace(true) {
        // SAFETY: a live context; the callback is 'static.
        unsafe { raw::RedisModule_CreateTimer.unwrap()(ctx, POLL_MS, Some(poll), ptr::null_mut()) };
    }
}

extern "C" fn poll(ctx: *mut raw::RedisModuleCtx, _data: *mut c_void) {
    POLLING.set(false);
    let gone: Vec<*mut Waiting> = WAITING.with_borrow(|waiting| {
        waiting
            .iter()
            .copied()
            // SAFETY: entries are live until `free` removes them.
            .filter(|&w| unsafe { !(*w).client.is_null() && stream_gone(ctx, &*w) })
            .collect()
    });
    for waiting in gone {
        wake(waiting);
    }
    if WAITING.with_borrow(|w| !w.is_empty()) {
        start_polling(ctx);
    }
}

/// Whether the waiting client's stream is missing. Not when MIGRATE took it
/// away: Redis redirects the client once the slot has moved.
fn stream_gone(ctx: *mut raw::RedisModuleCtx, waiting: &Waiting) -> bool {
    // SAFETY: a timer's context, whose client may select any database.
    unsafe { raw::RedisModule_SelectDb.unwrap()(ctx, waiting.db) };
    let context = Context::new(ctx);
    let name = RedisString::create_from_slice(ctx, &waiting.stream);
    context.open_key(&name).key_type() == raw::KeyType::Empty && !moving_away(ctx, &waiting.stream)
}

/// In a cluster, whether the stream is gone from this node because its slot
/// is migrating: its blocked clients must wait for the redirect (MOVED) that
/// Redis sends them when the slot's owner changes, not fail with NOGROUP.
fn moving_away(ctx: *mut raw::RedisModuleCtx, stream: &[u8]) -> bool {
    let context = Context::new(ctx);
    if !context.get_flags().contains(ContextFlags::CLUSTER) {
        return false;
    }
    let name = RedisString::create_from_slice(ctx, stream);
    if context.open_key(&name).key_type() != raw::KeyType::Empty {
        return false;
    }
    cluster::slot_in_migration(&Redis::new(&context), cluster::key_slot(stream))
}

fn wake(waiting: *mut Waiting) {
    // SAFETY: live until `free`, which runs after the unblock below.
    let waiting = unsafe { &mut *waiting };
    waiting.woken = true;
    // SAFETY: a blocked client not yet unblocked, once only. For a client
    // blocked on keys, Redis then calls `on_timeout`.
    unsafe { raw::RedisModule_UnblockClient.unwrap()(waiting.client, ptr::null_mut()) };
    waiting.client = ptr::null_mut();
}

/// The key was signalled: READ again, and reply unless it found nothing.
extern "C" fn on_ready(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    // SAFETY: argv[1] is the stream (the call parsed before it blocked).
    let stream = RedisString::string_as_slice(unsafe { *argv.add(1) });
    if moving_away(ctx, stream) {
        return raw::REDISMODULE_ERR as c_int;
    }
    match again(ctx, argv, argc, false) {
        true => raw::REDISMODULE_OK as c_int,
        false => raw::REDISMODULE_ERR as c_int, // go on waiting
    }
}

/// BLOCK's time passed: an empty array. Or (Redis 7.0) `wake` unblocked the
/// client because its stream went: READ again, which says why it failed.
extern "C" fn on_timeout(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    // SAFETY: a timeout callback's context; the private data is a Waiting.
    let waiting = unsafe { raw::RedisModule_GetBlockedClientPrivateData.unwrap()(ctx) };
    let woken = !waiting.is_null() && unsafe { (*waiting.cast::<Waiting>()).woken };
    if !woken || !again(ctx, argv, argc, true) {
        reply::nothing(&Context::new(ctx));
    }
    raw::REDISMODULE_OK as c_int
}

/// Run the blocked command again, through RedisModule_Call, as the client's
/// user: a command run that way propagates all its writes in one
/// MULTI/EXEC on every server (a reply callback's own writes do not, on
/// Redis 7.0), and it cannot block. Forward its reply, unless it took
/// nothing and `always` is false. Returns whether it replied.
fn again(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    always: bool,
) -> bool {
    // SAFETY: argv holds argc live strings (the command's own); the reply
    // is read, forwarded (Redis copies it) and freed here.
    unsafe {
        let reply = raw::RedisModule_Call.unwrap()(
            ctx,
            c"XPROCESS".as_ptr(),
            c"!CEv".as_ptr(),
            argv.add(1),
            (argc - 1) as usize,
        );
        if reply.is_null() {
            crate::redis::reply::error(&Context::new(ctx), &errors::INTERNAL.into());
            return true;
        }
        let nothing = raw::RedisModule_CallReplyType.unwrap()(reply)
            == raw::REDISMODULE_REPLY_ARRAY as c_int
            && raw::RedisModule_CallReplyLength.unwrap()(reply) == 0;
        let replied = always || !nothing;
        if replied && left_the_node(reply) {
            // The slot moved on between the signal and now: let the client
            // retry, it will be redirected.
            crate::redis::reply::error(&Context::new(ctx), &errors::SLOT_MOVING.into());
        } else if replied {
            raw::RedisModule_ReplyWithCallReply.unwrap()(ctx, reply);
        }
        raw::RedisModule_FreeCallReply.unwrap()(reply);
        replied
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

/// The client is done waiting, whatever the reason (served, timed out,
/// disconnected, redirected).
extern "C" fn free(_ctx: *mut raw::RedisModuleCtx, privdata: *mut c_void) {
    let waiting = privdata.cast::<Waiting>();
    WAITING.with(|w| w.borrow_mut().retain(|&p| p != waiting));
    // SAFETY: boxed in `wait`, freed once here.
    drop(unsafe { Box::from_raw(waiting) });
    stats::update(|s| s.blocked_clients = s.blocked_clients.saturating_sub(1));
}
