//! Execution against Redis: whole-call checks, then [`process`] with the
//! Redis backend and the dedupe store the key holds (an index when missing).

use crate::cluster;
use crate::config;
use crate::dedupe::{DedupeKey, Holds, IndexStore, SetStore};
use crate::entry_cache::{self, Lookup};
use crate::hash::reads::HashReads;
use crate::hash::writes::HashWrites;
use crate::index::commands as index_commands;
use crate::read::{self, Taken};
use crate::replication::Redis;
use crate::stats;
use crate::stream_reader;
use redis_module::{
    raw, AclPermissions, CallReply, Context, ContextFlags, NotifyEvent, RedisString,
};
use std::cell::RefCell;
use std::ptr;
use xprocess_core::entry::Fields;
use xprocess_core::errors::{self, ErrorKind, ReplyError};
use xprocess_core::fast_map::FastMap;
use xprocess_core::id::StreamId;
use xprocess_core::key_name::derived_dedupe_key;
use xprocess_core::plan::{KeyKind, Op, State};
use xprocess_core::process::{process, Backend, Outcome, Poison};
use xprocess_core::request::{Request, StoreKind};

/// At most this many entries (and bytes of field data) are read ahead, up
/// to the call's last ID, when an entry is not in the call's window.
const READ_AHEAD: usize = 256;
const READ_AHEAD_BYTES: usize = 256 * 1024;

/// What one call did: an outcome per entry, in order; with READ, the IDs
/// of the entries it took (with IDS, they are the call's).
pub struct Done {
    pub taken: Vec<StreamId>,
    pub outcomes: Vec<Outcome>,
}

/// Run one parsed XPROCESS call.
pub fn run(ctx: &Context, req: &Request) -> Result<Done, ReplyError> {
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
    let (kind, key) = check_keys(ctx, &backend, req, dedupe_key)?;
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
                index = index.with_keys(index_commands::now_ms(), window);
            }
            Store::Index(index)
        }
    };
    let taken = match &req.read {
        Some(read) => backend.take(read::take(&redis, req, read)?),
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
    backend: &RedisBackend,
    req: &Request,
    dedupe_key: &[u8],
) -> Result<(StoreKind, DedupeKey), ReplyError> {
    match backend.kind(req.stream) {
        KeyKind::Missing => return Err(ReplyError::nogroup(req.stream, req.group)),
        KeyKind::Stream => {}
        _ => return Err(errors::WRONGTYPE.into()),
    }
    if let Some(dl) = &req.dead_letter {
        if dl.key == req.stream || dl.key == dedupe_key {
            return Err(errors::DEAD_LETTER_KEY.into());
        }
        if !matches!(backend.kind(dl.key), KeyKind::Stream | KeyKind::Missing) {
            return Err(errors::WRONGTYPE.into());
        }
    }
    let key = DedupeKey::open(ctx, dedupe_key, false);
    let holds = key.holds();
    let store = choose_store(req, holds)?;
    if holds == Holds::Missing
        && req.dedupe.is_none()
        && ctx.get_flags().contains(ContextFlags::CLUSTER)
        && cluster::slot_in_migration(backend.redis, cluster::key_slot(req.stream))
    {
        return Err(errors::TRYAGAIN.into());
    }
    if req.read.is_none() {
        // XPENDING with count 0 checks that the group exists, returns nothing.
        // (READ needs no check: XREADGROUP fails with NOGROUP before
        // anything is written.)
        let args: [&[u8]; 5] = [req.stream, req.group, b"-", b"+", b"0"];
        backend.redis.read("XPENDING", &args)?;
    }
    Ok((store, key))
}

/// One module keyspace event (`xprocess`, class `d`) on the stream per
/// applied entry, for subscribers that follow processing.
fn notify_applied(ctx: &Context, stream: &[u8], outcomes: &[Outcome]) {
    let applied = outcomes.iter().filter(|o| **o == Outcome::Applied).count();
    if applied == 0 {
        return;
    }
    let key = RedisString::create_from_slice(ctx.ctx, stream);
    for _ in 0..applied {
        // SAFETY: an event name literal and a live key name; Redis copies.
        unsafe {
            raw::RedisModule_NotifyKeyspaceEvent.unwrap()(
                ctx.ctx,
                NotifyEvent::MODULE.bits(),
                c"xprocess".as_ptr(),
                key.inner,
            )
        };
    }
}

fn count_effect(op: &Op) {
    stats::update(|s| match op {
        Op::HIncrBy { .. } => s.effects_hincrby += 1,
        Op::HIncrByFloat { .. } => s.effects_hincrbyfloat += 1,
        Op::SAdd { .. } => s.effects_sadd += 1,
        Op::XAdd { .. } => s.effects_xadd += 1,
    });
}

fn count(outcomes: &[Outcome], redis_calls: u64) {
    stats::update(|s| {
        s.calls += 1;
        s.redis_calls += redis_calls;
        s.entries += outcomes.len() as u64;
        for outcome in outcomes {
            match outcome {
                Outcome::Applied => s.applied += 1,
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
fn check_write_permission(ctx: &Context, key: &[u8]) -> Result<(), ReplyError> {
    let user = unsafe { raw::RedisModule_GetCurrentUserName.unwrap()(ctx.ctx) };
    if user.is_null() {
        return Ok(()); // no client: replication or AOF loading
    }
    let user = RedisString::from_redis_module_string(ptr::null_mut(), user);
    let key_name = RedisString::create_from_slice(ptr::null_mut(), key);
    let perms = AclPermissions::ACCESS | AclPermissions::INSERT | AclPermissions::UPDATE;
    ctx.acl_check_key_permission(&user, &key_name, &perms)
        .map_err(|_| ReplyError::noperm_dedupe(key))
}

/// The server, as seen by one XPROCESS call.
struct RedisBackend<'r, 'c> {
    redis: &'r Redis<'c>,
    stream: &'r [u8],
    group: &'r [u8],
    /// Last generated ID of each XADD target, read once per call.
    last_ids: RefCell<FastMap<Vec<u8>, StreamId>>,
    /// The database selected by the caller, for the entry cache.
    pub db: i32,
    /// HINCRBY results not yet written (see `hash::writes`).
    hash_writes: HashWrites,
    /// Hash field values read so far (see `hash::reads`).
    hash_reads: RefCell<HashReads>,
    /// The entries READ took, pending for the consumer now; the fields of
    /// claimed ones (new ones are in the entry cache).
    taken: FastMap<StreamId, Option<Fields>>,
    consumer: &'r [u8],
    /// The call's highest ID: entries past it are never read ahead.
    last: StreamId,
}

impl<'r, 'c> RedisBackend<'r, 'c> {
    fn new(redis: &'r Redis<'c>, req: &Request<'r>) -> Self {
        RedisBackend {
            redis,
            stream: req.stream,
            group: req.group,
            last_ids: RefCell::default(),
            db: unsafe { raw::RedisModule_GetSelectedDb.unwrap()(redis.ctx.ctx) },
            hash_writes: HashWrites::default(),
            hash_reads: RefCell::default(),
            taken: FastMap::default(),
            consumer: req.consumer.unwrap_or_default(),
            last: req.ids.iter().copied().max().unwrap_or(StreamId::MAX),
        }
    }

    /// Keep the entries READ took for `read_entry`; their IDs, in order.
    /// The new ones are a window of the stream: as the entry cache, they
    /// also tell the dedupe index that nothing lies between them.
    fn take(&mut self, taken: Taken) -> Vec<StreamId> {
        stats::update(|s| {
            s.read_claimed += taken.claimed.len() as u64;
            s.read_new += taken.new.len() as u64;
        });
        let ids: Vec<StreamId> = taken
            .claimed
            .iter()
            .chain(&taken.new)
            .map(|e| e.0)
            .collect();
        self.taken
            .extend(taken.new.iter().map(|(id, _)| (*id, None)));
        if let Some(&(first, _)) = taken.new.first() {
            entry_cache::store(self.db, self.stream, None, first, taken.new);
        }
        self.taken
            .extend(taken.claimed.into_iter().map(|(id, f)| (id, Some(f))));
        ids
    }

    /// Entry `id`'s row of the group's PEL: its consumer and delivery
    /// count, `None` if it is not pending.
    fn pending(&self, id: StreamId) -> Result<Option<(Vec<u8>, u64)>, ReplyError> {
        let text = id.text();
        let id = text.as_bytes();
        let reply = self
            .redis
            .read("XPENDING", &[self.stream, self.group, id, id, b"1"])?;
        // [[id, consumer, idle, deliveries]] or []
        let CallReply::Array(rows) = reply else {
            return Ok(None);
        };
        let row = rows.get(0).and_then(|row| match row.ok()? {
            CallReply::Array(row) => {
                let owner = reply_bytes(&row.get(1)?.ok()?)?.to_vec();
                let deliveries = match row.get(3)?.ok()? {
                    CallReply::I64(n) => u64::try_from(n.to_i64()).ok()?,
                    _ => return None,
                };
                Some((owner, deliveries))
            }
            _ => None,
        });
        Ok(row)
    }

    fn key(&self, name: &[u8]) -> redis_module::key::RedisKey {
        let name = RedisString::create_from_slice(self.redis.ctx.ctx, name);
        self.redis.ctx.open_key(&name)
    }

    fn xadd(
        &self,
        key: &[u8],
        trim: Option<xprocess_core::request::Trim>,
        pairs: &[(&[u8], &[u8])],
    ) -> Result<(), ReplyError> {
        let count;
        let mut args: Vec<&[u8]> = Vec::with_capacity(5 + 2 * pairs.len());
        args.push(key);
        if let Some(trim) = trim {
            count = trim.count.to_string();
            args.extend_from_slice(&[b"MAXLEN", if trim.approx { b"~" } else { b"=" }]);
            args.push(count.as_bytes());
        }
        args.push(b"*");
        for (f, v) in pairs {
            args.extend_from_slice(&[f, v]);
        }
        let reply = self.redis.write("XADD", &args)?;
        if key == self.stream {
            entry_cache::forget(self.db, key); // it may have trimmed entries
        }
        if let Some(id) = reply_bytes(&reply).and_then(StreamId::parse) {
            self.last_ids.borrow_mut().insert(key.to_vec(), id);
        }
        Ok(())
    }
}

impl State for RedisBackend<'_, '_> {
    fn kind(&self, key: &[u8]) -> KeyKind {
        if self.hash_writes.touches(key) {
            return KeyKind::Hash; // it will be once the writes are done
        }
        match self.key(key).key_type() {
            raw::KeyType::Empty => KeyKind::Missing,
            raw::KeyType::Hash => KeyKind::Hash,
            raw::KeyType::Set => KeyKind::Set,
            raw::KeyType::Stream => KeyKind::Stream,
            _ => KeyKind::Other,
        }
    }

    fn hash_field(&self, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
        if let Some(value) = self.hash_writes.get(key, field) {
            return Some(value.to_string().into_bytes());
        }
        let ctx = self.redis.ctx.ctx;
        self.hash_reads.borrow_mut().get(ctx, key, field)
    }

    fn stream_last_id(&self, key: &[u8]) -> StreamId {
        if let Some(id) = self.last_ids.borrow().get(key) {
            return *id;
        }
        let id = self
            .redis
            .read("XINFO", &[b"STREAM", key])
            .ok()
            .and_then(|reply| last_generated_id(&reply))
            .unwrap_or(StreamId::MAX); // unreadable: refuse rather than guess
        self.last_ids.borrow_mut().insert(key.to_vec(), id);
        id
    }
}

impl Backend for RedisBackend<'_, '_> {
    fn pending_owner(&mut self, id: StreamId) -> Result<Option<Vec<u8>>, ReplyError> {
        if self.taken.contains_key(&id) {
            return Ok(Some(self.consumer.to_vec())); // READ took it for us
        }
        Ok(self.pending(id)?.map(|(owner, _)| owner))
    }

    fn read_entry(&mut self, id: StreamId, count_from: Option<StreamId>) -> Option<Fields> {
        if let Some(Some(fields)) = self.taken.get_mut(&id).map(Option::take) {
            return Some(fields);
        }
        match entry_cache::take(self.db, self.stream, id) {
            Lookup::Hit(fields) => {
                stats::update(|s| s.entry_cache_hits += 1);
                return Some(fields);
            }
            Lookup::Missing => return None,
            Lookup::Unknown => stats::update(|s| s.entry_cache_misses += 1),
        }
        let ctx = self.redis.ctx.ctx;
        let span = (id, self.last.max(id));
        let limits = (READ_AHEAD, READ_AHEAD_BYTES);
        let read = stream_reader::read_ahead(ctx, self.stream, count_from, span, limits);
        let found = read.entries.first().is_some_and(|(first, _)| *first == id);
        entry_cache::store(self.db, self.stream, read.lead, id, read.entries);
        if !found {
            return None;
        }
        match entry_cache::take(self.db, self.stream, id) {
            Lookup::Hit(fields) => Some(fields),
            _ => None,
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), ReplyError> {
        count_effect(op);
        match op {
            Op::HIncrBy {
                key, field, result, ..
            } => {
                self.hash_writes.set(key, field, *result);
                Ok(())
            }
            Op::HIncrByFloat { key, field, incr } => {
                // A deferred HINCRBY of this field must land first.
                self.hash_reads.get_mut().forget(key, field);
                if let Some(pending) = self.hash_writes.take(key, field) {
                    self.redis.write_hash(key, &[(field.to_vec(), pending)]);
                }
                self.redis
                    .write("HINCRBYFLOAT", &[key, field, incr])
                    .map(drop)
            }
            Op::SAdd { key, member } => self.redis.write("SADD", &[key, member]).map(drop),
            Op::XAdd { key, trim, pairs } => self.xadd(key, *trim, pairs),
        }
    }

    fn deliveries(&mut self, id: StreamId) -> Result<u64, ReplyError> {
        Ok(self.pending(id)?.map_or(0, |(_, deliveries)| deliveries))
    }

    fn dead_letter(&mut self, key: &[u8], poison: &Poison) -> Result<(), ReplyError> {
        let (id, deliveries) = (poison.id.text(), poison.deliveries.to_string());
        let mut args: Vec<&[u8]> = vec![key, b"*", b"@id", id.as_bytes()];
        args.extend_from_slice(&[b"@stream", self.stream, b"@group", self.group]);
        if !self.consumer.is_empty() {
            args.extend_from_slice(&[b"@consumer", self.consumer]);
        }
        args.extend_from_slice(&[b"@error", poison.error.as_str().as_bytes()]);
        args.extend_from_slice(&[b"@deliveries", deliveries.as_bytes()]);
        // Entry fields as `$field` (as templates name them): never `@...`.
        let fields = poison.fields.unwrap_or_default();
        let names: Vec<Vec<u8>> = fields
            .iter()
            .map(|(f, _)| [b"$", f.as_slice()].concat())
            .collect();
        for (name, (_, value)) in names.iter().zip(fields) {
            args.extend_from_slice(&[name, value]);
        }
        self.redis.write("XADD", &args).map(drop)
    }

    fn ack(&mut self, ids: &[StreamId]) -> Result<(), ReplyError> {
        self.redis.ack(self.stream, self.group, ids)
    }

    fn warn(&mut self, message: &str) {
        self.redis.ctx.log_warning(&format!("xprocess: {message}"));
    }

    fn entries_after(&mut self, n: usize) {
        self.hash_reads.get_mut().entries_after = n;
    }

    fn finish(&mut self) {
        for (key, fields) in self.hash_writes.drain_by_key() {
            self.redis.write_hash(&key, &fields);
        }
    }
}

fn reply_bytes<'a>(reply: &'a CallReply<'_>) -> Option<&'a [u8]> {
    match reply {
        CallReply::String(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// `last-generated-id` from an XINFO STREAM reply (a flat RESP2 array).
fn last_generated_id(reply: &CallReply<'_>) -> Option<StreamId> {
    let CallReply::Array(items) = reply else {
        return None;
    };
    let items: Vec<_> = items.iter().collect();
    items.windows(2).find_map(|pair| {
        let name = reply_bytes(pair[0].as_ref().ok()?)?;
        if name != b"last-generated-id" {
            return None;
        }
        StreamId::parse(reply_bytes(pair[1].as_ref().ok()?)?)
    })
}
