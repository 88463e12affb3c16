//! The Set store: a plain Redis Set of `ms-seq` IDs, as the hand-written Lua
//! script keeps it, so deployments that share it with such a script keep
//! working. Every record costs a member (about 66 bytes) forever.

use crate::redis::call::Redis;
use redis_module::CallReply;
use xprocess_core::errors::ReplyError;
use xprocess_core::fast_map::FastSet;
use xprocess_core::id::StreamId;
use xprocess_core::store::DedupeStore;

/// A plain Redis Set of `ms-seq` IDs, so `SISMEMBER` works on it, with an
/// optional expiry refreshed on every write.
pub struct SetStore<'r, 'c> {
    redis: &'r Redis<'c>,
    key: &'r [u8],
    ttl_ms: u64,
    pending: Vec<StreamId>,
    pending_set: FastSet<StreamId>,
    /// IDs found in the set by `prefetch`; `None` until it ran.
    known: Option<FastSet<StreamId>>,
}

impl<'r, 'c> SetStore<'r, 'c> {
    pub fn new(redis: &'r Redis<'c>, key: &'r [u8], ttl_ms: u64) -> Self {
        SetStore {
            redis,
            key,
            ttl_ms,
            pending: Vec::new(),
            pending_set: FastSet::default(),
            known: None,
        }
    }
}

impl DedupeStore for SetStore<'_, '_> {
    fn contains(&mut self, id: StreamId) -> Result<bool, ReplyError> {
        if self.pending_set.contains(&id) {
            return Ok(true);
        }
        if let Some(known) = &self.known {
            return Ok(known.contains(&id));
        }
        match self
            .redis
            .read("SISMEMBER", &[self.key, id.text().as_bytes()])?
        {
            CallReply::I64(n) => Ok(n.to_i64() == 1),
            other => Err(ReplyError::err(format!(
                "ERR unexpected SISMEMBER reply {other:?}"
            ))),
        }
    }

    fn insert(&mut self, id: StreamId) {
        if self.pending_set.insert(id) {
            self.pending.push(id);
        }
    }

    fn commit(&mut self) -> Result<(), ReplyError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.redis
            .with_ids(true, "SADD", &[self.key], &self.pending)?;
        if self.ttl_ms > 0 {
            let ttl = self.ttl_ms.to_string();
            self.redis.write("PEXPIRE", &[self.key, ttl.as_bytes()])?;
        }
        self.pending.clear();
        self.pending_set.clear();
        Ok(())
    }

    /// One SMISMEMBER for the whole call instead of a SISMEMBER per ID.
    fn prefetch(&mut self, ids: &[StreamId]) {
        let reply = self.redis.with_ids(false, "SMISMEMBER", &[self.key], ids);
        let Ok(CallReply::Array(flags)) = reply else {
            return; // keep looking IDs up one by one
        };
        let mut known = FastSet::default();
        for (id, flag) in ids.iter().zip(flags.iter()) {
            if matches!(flag, Ok(CallReply::I64(n)) if n.to_i64() == 1) {
                known.insert(*id);
            }
        }
        self.known = Some(known);
    }
}
