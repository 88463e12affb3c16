//! `READ ... BLOCK`: a READ that found nothing waits on the stream key, as
//! XREADGROUP BLOCK does, and runs again (the whole READ, atomically) each
//! time the key is signalled: XADD signals it. Where the server can (Redis
//! 7.2+, Valkey), deleting the key wakes the client too, and the READ then
//! fails with NOGROUP; on Redis 7.0 a timer wakes it (see `poll`).
//!
//! Blocking is never done inside MULTI/EXEC or a script: there the READ
//! replies at once, as XREADGROUP does.

use crate::commands::xprocess::reply;
use crate::redis::block::{self, Again, Argv, Blocked, Callbacks};
use crate::redis::call::Redis;
use crate::redis::key::{Key, KeyType};
use crate::server::cluster;
use crate::stats;
use redis_module::Context;
use xprocess_core::errors;

pub use crate::redis::block::can_block;

static CALLBACKS: Callbacks = Callbacks {
    ready,
    timeout,
    freed,
};

/// Block the calling client on `stream` for `timeout_ms` (0: forever).
pub fn wait(ctx: &Context, stream: &[u8], timeout_ms: u64) {
    let blocked = block::block_on_key(ctx, stream, timeout_ms, &CALLBACKS);
    if blocked == Blocked::No {
        return;
    }
    if blocked == Blocked::UntilWoken {
        block::after(ctx, POLL_MS, poll);
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
/// events would cost every command of every client.
const POLL_MS: u64 = 100;

fn poll(ctx: &Context) {
    block::wake_where(ctx, stream_gone);
    if block::any_unwoken_by_delete() {
        block::after(ctx, POLL_MS, poll);
    }
}

/// Whether a waiting client's stream is missing (its database selected).
/// Not when MIGRATE took it away: Redis redirects the client once the slot
/// has moved.
fn stream_gone(ctx: &Context, stream: &[u8]) -> bool {
    missing(ctx, stream) && !slot_migrating(ctx, stream)
}

fn missing(ctx: &Context, key: &[u8]) -> bool {
    Key::open(ctx, key, false).key_type() == KeyType::Empty
}

/// In a cluster, whether the stream is gone from this node because its slot
/// is migrating: its blocked clients must wait for the redirect (MOVED) that
/// Redis sends them when the slot's owner changes, not fail with NOGROUP.
fn moving_away(ctx: &Context, stream: &[u8]) -> bool {
    cluster::in_cluster(ctx) && missing(ctx, stream) && slot_migrating(ctx, stream)
}

/// In a cluster, whether the stream's slot is migrating.
fn slot_migrating(ctx: &Context, stream: &[u8]) -> bool {
    cluster::in_cluster(ctx)
        && cluster::slot_in_migration(&Redis::new(ctx), cluster::key_slot(stream))
}

/// The key was signalled: READ again, and reply unless it found nothing.
fn ready(ctx: &Context, argv: &Argv) -> bool {
    let stream = argv.get(1).unwrap_or_default(); // parsed before it blocked
    if moving_away(ctx, stream) {
        return false;
    }
    again(ctx, argv, false)
}

/// BLOCK's time passed: an empty array. Or (Redis 7.0) `poll` woke the
/// client because its stream went: READ again, which says why it failed.
fn timeout(ctx: &Context, argv: &Argv, woken: bool) {
    if !woken || !again(ctx, argv, true) {
        reply::nothing(ctx);
    }
}

/// Run the READ again and forward its reply, unless it took nothing and
/// `always` is false. Returns whether it replied.
fn again(ctx: &Context, argv: &Argv, always: bool) -> bool {
    match block::again(ctx, c"XPROCESS", argv, always) {
        Again::Replied => true,
        Again::Nothing => false,
        Again::LeftTheNode => {
            // The slot moved on between the signal and now: let the client
            // retry, it will be redirected.
            crate::redis::reply::error(ctx, &errors::SLOT_MOVING.into());
            true
        }
        Again::Failed => {
            crate::redis::reply::error(ctx, &errors::INTERNAL.into());
            true
        }
    }
}

/// The client is done waiting, whatever the reason (served, timed out,
/// disconnected, redirected).
fn freed() {
    stats::update(|s| s.blocked_clients = s.blocked_clients.saturating_sub(1));
}
