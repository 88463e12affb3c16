//! The server as the core's [`Backend`] and [`State`] sees it during one
//! XPROCESS call: key kinds, hash fields (read in bulk, HINCRBY results
//! written once at the end), stream entries (from what READ took, the call's
//! entry window, or read ahead from the stream), the group's PEL, and the
//! effects, dead letters and XACKs as replicated writes.

use crate::redis::acl::Caller;
use crate::redis::call::Redis;
use crate::redis::clock;
use crate::redis::hash::{self, Hash};
use crate::redis::key::{selected_db, Key, KeyType};
use crate::server::cluster;
use crate::server::group::Taken;
use crate::server::hash_reads::HashReads;
use crate::server::hash_writes::HashWrites;
use crate::stats;
use crate::stream::entry_cache::{self, Lookup};
use crate::stream::reader;
use redis_module::CallReply;
use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use xprocess_core::entry::Fields;
use xprocess_core::errors::ReplyError;
use xprocess_core::fast_map::FastMap;
use xprocess_core::id::StreamId;
use xprocess_core::plan::{Bytes, Native, Op, Touch};
use xprocess_core::process::{Backend, Poison};
use xprocess_core::request::{Request, Trim};
use xprocess_core::state::{KeyKind, State, StringHead};

/// At most this many entries (and bytes of field data) are read ahead, up
/// to the call's last ID, when an entry is not in the call's window.
const READ_AHEAD: usize = 256;
const READ_AHEAD_BYTES: usize = 256 * 1024;

/// An entry READ took for the consumer.
struct Took {
    /// A claimed entry's fields (new ones are in the entry cache).
    fields: Option<Fields>,
    /// Pending for the consumer now; a new entry READ kept out of the PEL
    /// is not (see `group::fresh`), and counts one delivery.
    in_pel: bool,
}

/// The most fields a call makes room for at once in a hash's deferred
/// writes (more grow as needed).
const MAX_FIELDS_ROOM: usize = 1024;

/// The server, as seen by one XPROCESS call.
pub struct RedisBackend<'r, 'c> {
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
    /// The entries READ took for the consumer.
    taken: FastMap<StreamId, Took>,
    consumer: &'r [u8],
    /// The call's highest ID: entries past it are never read ahead.
    last: StreamId,
    /// In a cluster, the stream's slot: templated keys must hash to it.
    slot: Option<u16>,
    /// The calling user, looked up at the first templated key.
    caller: OnceCell<Caller>,
    /// In a cluster, whether the stream's slot is migrating: asked at the
    /// first templated key that is missing here.
    migrating: OnceCell<bool>,
}

impl<'r, 'c> RedisBackend<'r, 'c> {
    pub fn new(redis: &'r Redis<'c>, req: &Request<'r>) -> Self {
        RedisBackend {
            redis,
            stream: req.stream,
            group: req.group,
            last_ids: RefCell::default(),
            db: selected_db(redis.ctx),
            hash_writes: HashWrites::default(),
            hash_reads: RefCell::default(),
            taken: FastMap::default(),
            consumer: req.consumer.unwrap_or_default(),
            last: req.ids.iter().copied().max().unwrap_or(StreamId::MAX),
            slot: cluster::in_cluster(redis.ctx).then(|| cluster::key_slot(req.stream)),
            caller: OnceCell::new(),
            migrating: OnceCell::new(),
        }
    }

    fn caller(&self) -> &Caller {
        self.caller.get_or_init(|| Caller::of(self.redis.ctx))
    }

    fn missing(&self, key: &[u8]) -> bool {
        Key::open(self.redis.ctx, key, false).key_type() == KeyType::Empty
            && self.hash_writes.fields(key).next().is_none()
    }

    fn migrating(&self, slot: u16) -> bool {
        *(self.migrating).get_or_init(|| cluster::slot_in_migration(self.redis, slot))
    }

    /// Keep the entries READ took for `read_entry`; their IDs, in order.
    /// The new ones are a window of the stream: as the entry cache, they
    /// also tell the dedupe index that nothing lies between them.
    pub fn take(&mut self, taken: Taken) -> Vec<StreamId> {
        stats::update(|s| {
            s.read_claimed += taken.claimed.len() as u64;
            s.read_new += taken.new.len() as u64;
            s.read_outside_pel += taken.outside_pel as u64;
        });
        let ids: Vec<StreamId> = taken
            .claimed
            .iter()
            .chain(&taken.new)
            .map(|e| e.0)
            .collect();
        let new = taken.new.iter().enumerate().map(|(n, (id, _))| {
            let in_pel = n >= taken.outside_pel;
            (
                *id,
                Took {
                    fields: None,
                    in_pel,
                },
            )
        });
        self.taken.extend(new);
        if let Some(&(first, _)) = taken.new.first() {
            entry_cache::store(self.db, self.stream, taken.lead, first, taken.new);
        }
        let claimed = taken.claimed.into_iter().map(|(id, fields)| {
            let fields = Some(fields);
            (
                id,
                Took {
                    fields,
                    in_pel: true,
                },
            )
        });
        self.taken.extend(claimed);
        ids
    }

    /// Whether entry `id` is in the PEL, as far as this call knows (an
    /// entry READ did not take is).
    fn in_pel(&self, id: StreamId) -> bool {
        self.taken.get(&id).is_none_or(|t| t.in_pel)
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

    /// What the call keeps of a key must not go stale under a native
    /// write: a deferred HINCRBY of what it writes lands first, copied
    /// fields are read again, a replaced stream's last ID is asked again.
    fn before_native(&mut self, cmd: Native, args: &[Bytes]) {
        let Some(key) = args.first() else {
            return;
        };
        match cmd.touches() {
            Touch::Nothing => {}
            Touch::Fields => {
                let reads = self.hash_reads.get_mut();
                for field in args.iter().skip(1).step_by(2) {
                    reads.forget(key, field);
                    if let Some(pending) = self.hash_writes.take(key, field) {
                        hash::write_hash(self.redis.ctx, key, &[(field.to_vec(), pending)]);
                    }
                }
            }
            Touch::Key => {
                self.hash_reads.get_mut().forget_key(key);
                self.last_ids.get_mut().remove(&**key);
                if let Some(fields) = self.hash_writes.take_key(key) {
                    hash::write_hash(self.redis.ctx, key, &fields);
                }
            }
        }
    }

    fn xadd(
        &self,
        key: &[u8],
        trim: Option<Trim>,
        pairs: &[(Bytes, Bytes)],
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
            args.extend_from_slice(&[&**f, &**v]);
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
    fn check_key(&self, key: &[u8], id: &str, write: bool) -> Result<(), ReplyError> {
        if let Some(slot) = self.slot {
            if cluster::key_slot(key) != slot {
                return Err(ReplyError::cross_slot(id, key));
            }
            // Redis routed the call by its stream, not by this key: while
            // the slot migrates, a missing key may be on the other node
            // already, and writing it here would make a second one.
            if self.missing(key) && self.migrating(slot) {
                return Err(ReplyError::slot_migrating(id, key));
            }
        }
        match write {
            true if !self.caller().may_write(self.redis.ctx, key) => {
                Err(ReplyError::noperm_key(id, key))
            }
            false if !self.caller().may_read(self.redis.ctx, key) => {
                Err(ReplyError::noperm_read(id, key))
            }
            _ => Ok(()),
        }
    }

    fn check_channel(&self, channel: &[u8], id: &str) -> Result<(), ReplyError> {
        match self.caller().may_publish(self.redis.ctx, channel) {
            true => Ok(()),
            false => Err(ReplyError::noperm_channel(id, channel)),
        }
    }

    fn string(&self, key: &[u8], limit: usize) -> Option<StringHead> {
        let (head, len) = Key::open(self.redis.ctx, key, false).string_head(limit)?;
        Some(StringHead { head, len })
    }

    fn zscore(&self, key: &[u8], member: &[u8]) -> Option<f64> {
        Key::open(self.redis.ctx, key, false).zscore(self.redis.ctx, member)
    }

    fn len(&self, key: &[u8]) -> Option<usize> {
        let written = Key::open(self.redis.ctx, key, false).value_length();
        // Fields whose deferred HINCRBY makes them will be there too.
        let hash = Hash::open(self.redis.ctx, key);
        let ctx = self.redis.ctx;
        let deferred = self.hash_writes.fields(key);
        let new = deferred
            .filter(|f| hash.as_ref().is_none_or(|h| h.get(ctx, f).is_none()))
            .count();
        Some(written + new)
    }

    fn is_member(&self, key: &[u8], member: &[u8]) -> bool {
        let reply = self.redis.read("SISMEMBER", &[key, member]);
        matches!(reply, Ok(CallReply::I64(n)) if n.to_i64() == 1)
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(clock::now_ms()).unwrap_or(i64::MAX)
    }

    fn kind(&self, key: &[u8]) -> KeyKind {
        if self.hash_writes.touches(key) {
            return KeyKind::Hash; // it will be once the writes are done
        }
        match Key::open(self.redis.ctx, key, false).key_type() {
            KeyType::Empty => KeyKind::Missing,
            KeyType::String => KeyKind::String,
            KeyType::List => KeyKind::List,
            KeyType::Hash => KeyKind::Hash,
            KeyType::ZSet => KeyKind::ZSet,
            KeyType::Set => KeyKind::Set,
            KeyType::Stream => KeyKind::Stream,
            KeyType::Module | KeyType::Other => KeyKind::Other,
        }
    }

    fn hash_field(&self, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
        if let Some(value) = self.hash_writes.get(key, field) {
            return Some(value.to_string().into_bytes());
        }
        self.hash_reads.borrow_mut().get(self.redis.ctx, key, field)
    }

    fn hash_int(&self, key: &[u8], field: &[u8]) -> Option<Option<i64>> {
        if let Some(value) = self.hash_writes.get(key, field) {
            return Some(Some(value));
        }
        self.hash_reads
            .borrow_mut()
            .get_int(self.redis.ctx, key, field)
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
    fn pending_owner(&mut self, id: StreamId) -> Result<Option<Cow<'_, [u8]>>, ReplyError> {
        if self.taken.contains_key(&id) {
            return Ok(Some(Cow::Borrowed(self.consumer))); // READ took it for us
        }
        Ok(self.pending(id)?.map(|(owner, _)| Cow::Owned(owner)))
    }

    fn read_entry(&mut self, id: StreamId, count_from: Option<StreamId>) -> Option<Fields> {
        if let Some(fields) = self.taken.get_mut(&id).and_then(|t| t.fields.take()) {
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
        let span = (id, self.last.max(id));
        let limits = (READ_AHEAD, READ_AHEAD_BYTES);
        let read = reader::read_ahead(self.redis.ctx, self.stream, count_from, span, limits);
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
            Op::XAdd { key, trim, pairs } => self.xadd(key, *trim, pairs),
            Op::Native { cmd, args } => {
                self.before_native(*cmd, args);
                // A function may run anything: Redis checks it against the
                // caller's ACL; the other effects' keys were checked here.
                let as_caller = *cmd == Native::FCall;
                let written = self.redis.write_args(cmd.name(), args, as_caller);
                if written.is_err() && *cmd == Native::FCall {
                    stats::update(|s| s.fcall_errors += 1);
                }
                written
            }
        }
    }

    fn deliveries(&mut self, id: StreamId) -> Result<u64, ReplyError> {
        if !self.in_pel(id) {
            return Ok(1); // read by this call, outside the PEL
        }
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
        let empty = Fields::new();
        let fields = poison.fields.unwrap_or(&empty);
        let names: Vec<Vec<u8>> = fields.iter().map(|(f, _)| [b"$", f].concat()).collect();
        for (name, (_, value)) in names.iter().zip(fields.iter()) {
            args.extend_from_slice(&[name, value]);
        }
        self.redis.write("XADD", &args).map(drop)
    }

    fn ack(&mut self, ids: &[StreamId]) -> Result<(), ReplyError> {
        if self.taken.values().all(|t| t.in_pel) {
            return self.redis.ack(self.stream, self.group, ids);
        }
        let pending: Vec<StreamId> = ids.iter().copied().filter(|id| self.in_pel(*id)).collect();
        match pending.is_empty() {
            true => Ok(()),
            false => self.redis.ack(self.stream, self.group, &pending),
        }
    }

    fn leave_pending(&mut self, ids: &[StreamId]) -> Result<(), ReplyError> {
        let outside: Vec<StreamId> = ids.iter().copied().filter(|id| !self.in_pel(*id)).collect();
        if outside.is_empty() {
            return Ok(());
        }
        // As XREADGROUP would have left them: pending for the consumer,
        // delivered once, now (an explicit time, for replicas and the AOF).
        let now = clock::now_ms().to_string();
        let lead: [&[u8]; 4] = [self.stream, self.group, self.consumer, b"0"];
        let tail: [&[u8]; 6] = [
            b"TIME",
            now.as_bytes(),
            b"RETRYCOUNT",
            b"1",
            b"FORCE",
            b"JUSTID",
        ];
        self.redis
            .with_ids_then(true, "XCLAIM", &lead, &outside, &tail)
            .map(drop)
    }

    fn warn(&mut self, message: &str) {
        self.redis.ctx.log_warning(&format!("xprocess: {message}"));
    }

    fn entries_after(&mut self, n: usize) {
        self.hash_reads.get_mut().entries_after = n;
        self.hash_writes.room = (n + 1).min(MAX_FIELDS_ROOM);
    }

    fn finish(&mut self) {
        for (key, fields) in self.hash_writes.drain_by_key() {
            hash::write_hash(self.redis.ctx, &key, &fields);
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

fn count_effect(op: &Op) {
    stats::update(|s| {
        let counter = match op {
            Op::HIncrBy { .. } => &mut s.effects_hincrby,
            Op::XAdd { .. } => &mut s.effects_xadd,
            Op::Native { cmd, .. } => match cmd {
                Native::HIncrByFloat => &mut s.effects_hincrbyfloat,
                Native::HSet => &mut s.effects_hset,
                Native::HSetNx => &mut s.effects_hsetnx,
                Native::HDel => &mut s.effects_hdel,
                Native::Set => &mut s.effects_set,
                Native::IncrBy => &mut s.effects_incrby,
                Native::IncrByFloat => &mut s.effects_incrbyfloat,
                Native::Del => &mut s.effects_del,
                Native::SAdd => &mut s.effects_sadd,
                Native::SRem => &mut s.effects_srem,
                Native::ZAdd => &mut s.effects_zadd,
                Native::ZIncrBy => &mut s.effects_zincrby,
                Native::ZRem => &mut s.effects_zrem,
                Native::PfAdd => &mut s.effects_pfadd,
                Native::LPush => &mut s.effects_lpush,
                Native::RPush => &mut s.effects_rpush,
                Native::PExpire => &mut s.effects_pexpire,
                Native::Publish => &mut s.effects_publish,
                Native::FCall => &mut s.effects_fcall,
            },
        };
        *counter += 1;
    });
}
