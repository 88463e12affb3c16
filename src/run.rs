//! Execution against Redis: whole-call checks, then [`process`] with the
//! Redis backend and the dedupe store the key holds (an index when missing).

use crate::config;
use crate::redis::acl::Caller;
use crate::redis::call::Redis;
use crate::redis::clock;
use crate::redis::events;
use crate::redis::key::selected_db;
use crate::server::backend::RedisBackend;
use crate::server::cluster;
use crate::server::{delete, group};
use crate::stats;
use crate::store::definition;
use crate::store::{DedupeKey, Holds, IndexStore, SetStore};
use crate::stream::entry_cache::{self};
use redis_module::{Context, ContextFlags, NotifyEvent};
use xprocess_core::errors::{self, ErrorKind, ReplyError};
use xprocess_core::id::StreamId;
use xprocess_core::key_name::derived_dedupe_key;
use xprocess_core::process::{process, Outcome};
use xprocess_core::request::{Effect, Request, StoreKind};
use xprocess_core::state::{KeyKind, State};
use xprocess_core::template::Arg;

/// What one call did: an outcome per entry, in order; with READ, the IDs
/// of the entries it took (with IDS, they are the call's).
pub struct Done {
    pub taken: Vec<StreamId>,
    pub outcomes: Vec<Outcome>,
}

/// Run one parsed XPROCESS call; `defined` when it runs the group's stored
/// definition (else the group must have none).
pub fn run(ctx: &Context, req: &Request, defined: bool) -> Result<Done, ReplyError> {
    let _window = entry_cache::scope();
    if req.ids.len() > config::max_ids() {
        return Err(ReplyError::too_many_ids(config::max_ids()));
    }
    let derived;
    let dedupe_key: &[u8] = match req.dedupe {
        Some(key) => key,
        None => {
            derived = derived_dedupe_key(req.stream, req.group)?;
            check_write_permission(ctx, &derived)?;
            &derived
        }
    };
    let redis = Redis::new(ctx);
    let mut backend = RedisBackend::new(&redis, req);
    let (kind, key) = check_keys(ctx, &redis, &backend, (req, defined), dedupe_key)?;
    // The store is opened before READ takes anything: its errors are
    // whole-call errors, and must find nothing changed.
    let mut store = match kind {
        StoreKind::Set => {
            drop(key);
            let ttl = req.ttl.unwrap_or_else(config::default_ttl_ms);
            Store::Set(SetStore::new(&redis, dedupe_key, ttl))
        }
        StoreKind::Index => {
            let mut index = IndexStore::open(ctx, key, dedupe_key, req.stream)?;
            if let Some(bk) = &req.business_key {
                let window = bk.window.unwrap_or_else(config::key_window_ms);
                index = index.with_keys(clock::now_ms(), window);
            }
            Store::Index(index)
        }
    };
    let taken = match &req.read {
        Some(read) => backend.take(group::take(&redis, req, read)?),
        None => Vec::new(),
    };
    let ids = if req.read.is_some() { &taken } else { &req.ids };
    let outcomes = match &mut store {
        Store::Set(set) => {
            let reserved = [(dedupe_key, KeyKind::Set)];
            process(req, ids, &mut backend, set, &reserved)
        }
        Store::Index(index) => {
            // Effects on the index key are refused like on any other type.
            let reserved = [(dedupe_key, KeyKind::Other)];
            process(req, ids, &mut backend, index, &reserved)
        }
    };
    if let Some(how) = req.delete {
        if let Err(e) = delete::delete_done(&redis, selected_db(ctx), req, ids, &outcomes, how) {
            ctx.log_warning(&format!("xprocess: DELETE failed: {e}"));
        }
    }
    count(&outcomes, redis.calls.get());
    notify_applied(ctx, req.stream, &outcomes);
    Ok(Done { taken, outcomes })
}

/// The dedupe store of one call.
enum Store<'r, 'c> {
    Set(SetStore<'r, 'c>),
    Index(IndexStore<'c>),
}

/// The store to use: the kind the key holds, or STORE's (an index by
/// default) when it is missing; asking for the other kind is WRONGTYPE.
fn choose_store(req: &Request, holds: Holds) -> Result<StoreKind, ReplyError> {
    let kind = match (holds, req.store) {
        (Holds::Other, _) => return Err(errors::WRONGTYPE.into()),
        (Holds::Store(have), Some(want)) if have != want => return Err(errors::WRONGTYPE.into()),
        (Holds::Store(have), _) => have,
        (Holds::Missing, want) => want.unwrap_or(StoreKind::Index),
    };
    if kind == StoreKind::Index && req.ttl.is_some() {
        return Err(errors::TTL_ON_INDEX.into());
    }
    if kind == StoreKind::Set && req.business_key.is_some() {
        return Err(errors::KEY_ON_SET.into());
    }
    Ok(kind)
}

/// Whole-call checks on the keys, before anything is written: the stream
/// and its group exist, the dedupe key holds a store of the kind asked for
/// or is missing (and, in a cluster, really missing rather than in the
/// middle of a slot migration). Returns the store to use and the dedupe
/// key, open for reading.
fn check_keys(
    ctx: &Context,
    redis: &Redis,
    backend: &RedisBackend,
    (req, defined): (&Request, bool),
    dedupe_key: &[u8],
) -> Result<(StoreKind, DedupeKey), ReplyError> {
    let mut key = DedupeKey::open(ctx, dedupe_key, false);
    if !defined {
        check_no_definition(ctx, req, &mut key)?;
    }
    match backend.kind(req.stream) {
        KeyKind::Missing => return Err(ReplyError::nogroup(req.stream, req.group)),
        KeyKind::Stream => {}
        _ => return Err(errors::WRONGTYPE.into()),
    }
    check_own_keys(ctx, req, dedupe_key)?;
    if let Some(dl) = &req.dead_letter {
        if !matches!(backend.kind(dl.key), KeyKind::Stream | KeyKind::Missing) {
            return Err(errors::WRONGTYPE.into());
        }
    }
    let fcall = |e: &Effect| matches!(e, Effect::FCall { .. });
    if req.effects.iter().any(fcall) && ctx.get_flags().contains(ContextFlags::LUA) {
        // Redis runs one script at a time: a function inside a script or
        // function would be a script started from within one.
        return Err(errors::FCALL_IN_SCRIPT.into());
    }
    let holds = key.holds();
    let store = choose_store(req, holds)?;
    if holds == Holds::Missing
        && req.dedupe.is_none()
        && ctx.get_flags().contains(ContextFlags::CLUSTER)
        && cluster::slot_in_migration(redis, cluster::key_slot(req.stream))
    {
        return Err(errors::TRYAGAIN.into());
    }
    if req.read.is_none() {
        // XPENDING with count 0 checks that the group exists, returns nothing.
        // (READ needs no check: XREADGROUP fails with NOGROUP before
        // anything is written.)
        let args: [&[u8]; 5] = [req.stream, req.group, b"-", b"+", b"0"];
        redis.read("XPENDING", &args)?;
    }
    Ok((store, key))
}

/// A call that gives effects is refused for a group with a definition (one
/// group, one definition). The definition is kept at the derived dedupe
/// key: without DEDUPE, that is `key`, already open.
fn check_no_definition(
    ctx: &Context,
    req: &Request,
    key: &mut DedupeKey,
) -> Result<(), ReplyError> {
    let has = match req.dedupe {
        None => definition::in_key(key, req.stream, req.group).is_some(),
        Some(_) => definition::defined(ctx, req.stream, req.group),
    };
    match has {
        true => Err(errors::DEFINED.into()),
        false => Ok(()),
    }
}

/// The checks of a call's own keys that need no data (so XPROCESS.DEFINE
/// makes them too): the dead-letter key is neither the stream nor the
/// dedupe key, and effects leave all three alone.
pub fn check_own_keys(ctx: &Context, req: &Request, dedupe_key: &[u8]) -> Result<(), ReplyError> {
    if let Some(dl) = &req.dead_letter {
        if dl.key == req.stream || dl.key == dedupe_key {
            return Err(errors::DEAD_LETTER_KEY.into());
        }
    }
    check_effect_targets(ctx, req, dedupe_key)
}

/// Effects that remove keys or set members may not name the call's own
/// keys, and PUBLISH needs the caller's permission for a literal channel
/// (Redis checks only keys). Templated ones are checked per entry.
fn check_effect_targets(ctx: &Context, req: &Request, dedupe_key: &[u8]) -> Result<(), ReplyError> {
    let own = [
        Some(req.stream),
        Some(dedupe_key),
        req.dead_letter.map(|dl| dl.key),
    ];
    for effect in &req.effects {
        let literals = effect.keys().iter().filter_map(Arg::literal);
        if effect.removes() && literals.map(Some).any(|key| own.contains(&key)) {
            return Err(errors::REMOVES_OWN_KEY.into());
        }
        if let Effect::Publish { channel, .. } = effect {
            if let Some(channel) = channel.literal() {
                if !Caller::of(ctx).may_publish(ctx, channel) {
                    return Err(errors::NOPERM_CHANNEL.into());
                }
            }
        }
    }
    Ok(())
}

/// One module keyspace event (`xprocess`, class `d`) on the stream per
/// applied entry, for subscribers that follow processing.
fn notify_applied(ctx: &Context, stream: &[u8], outcomes: &[Outcome]) {
    let applied = outcomes.iter().filter(|o| **o == Outcome::Applied).count();
    events::notify(ctx, NotifyEvent::MODULE, c"xprocess", stream, applied);
}

fn count(outcomes: &[Outcome], redis_calls: u64) {
    stats::update(|s| {
        s.calls += 1;
        s.redis_calls += redis_calls;
        s.entries += outcomes.len() as u64;
        for outcome in outcomes {
            match outcome {
                Outcome::Applied => s.applied += 1,
                Outcome::NoEffect => s.no_effect += 1,
                Outcome::Duplicate => s.duplicates += 1,
                Outcome::DeadLettered => s.dead_lettered += 1,
                Outcome::Failed(e) => match e.kind() {
                    ErrorKind::NotOwner => s.fenced += 1,
                    ErrorKind::Conflict => s.conflicts += 1,
                    _ => s.errors += 1,
                },
            }
        }
    });
}

/// The derived dedupe key is not in argv, so Redis' own ACL check (which
/// uses the keys we report) does not cover it: check it here.
pub fn check_write_permission(ctx: &Context, key: &[u8]) -> Result<(), ReplyError> {
    match Caller::of(ctx).may_write(ctx, key) {
        true => Ok(()),
        false => Err(ReplyError::noperm_dedupe(key)),
    }
}
