//! The index store: processed IDs as ranges in our own data type (see
//! `crate::index`), read and written in-process: no RedisModule_Call.
//!
//! IDs are recorded into the live index as they are applied (the command is
//! atomic, so nobody sees a half-done call), and `commit` sweeps gaps whose
//! entries left the stream, then replicates what changed as one
//! `XPROCESS.PATCH` inside the call's MULTI/EXEC.

use super::{DedupeKey, Holds};
use crate::redis::replicate::replicate;
use crate::stream::reader::Stream;
use redis_module::Context;
use xprocess_core::errors::{self, ReplyError};
use xprocess_core::id::StreamId;
use xprocess_core::index::key_store::{KeyPatch, KeyRecord};
use xprocess_core::index::patch::Change;
use xprocess_core::index::ranges::{Index, Touched};
use xprocess_core::store::DedupeStore;

pub struct IndexStore<'c> {
    ctx: &'c Context,
    name: &'c [u8],
    stream: &'c [u8],
    /// The dedupe key, open for reading until the first record, then for
    /// writing (so a call of duplicates only signals no modification).
    key: DedupeKey,
    writing: bool,
    touched: Touched,
    recorded: bool,
    /// With `KEY`: the call's time and the window of the keys it records.
    clock: Option<KeyClock>,
    /// Business keys recorded by this call (written by `commit`).
    new_keys: Vec<KeyRecord>,
}

/// Times of one call's business keys, in the key store's whole seconds.
#[derive(Clone, Copy)]
struct KeyClock {
    now: u32,
    window: u64,
    /// The window's end: rounded up, so a key is never forgotten early.
    expires: u32,
}

impl KeyClock {
    fn new(now_ms: u64, window_ms: u64) -> KeyClock {
        let secs = |ms: u64| u32::try_from(ms).unwrap_or(u32::MAX);
        KeyClock {
            now: secs(now_ms / 1000),
            window: window_ms,
            expires: secs(now_ms.saturating_add(window_ms).div_ceil(1000)),
        }
    }
}

impl<'c> IndexStore<'c> {
    /// The store at `key` (named `name`, open for reading), which is missing
    /// or holds an index. An index that belongs to another stream is a
    /// whole-call error.
    pub fn open(
        ctx: &'c Context,
        key: DedupeKey,
        name: &'c [u8],
        stream: &'c [u8],
    ) -> Result<Self, ReplyError> {
        let mut store = IndexStore {
            ctx,
            name,
            stream,
            key,
            writing: false,
            touched: Touched::default(),
            recorded: false,
            clock: None,
            new_keys: Vec::new(),
        };
        if let Some(index) = store.key.index() {
            if index.stream != stream {
                return Err(ReplyError::index_of_other_stream(
                    name,
                    &index.stream,
                    stream,
                ));
            }
        }
        Ok(store)
    }

    /// Remember business keys: the call runs at `now_ms` (Unix ms) and its
    /// keys are kept for `window_ms`.
    pub fn with_keys(mut self, now_ms: u64, window_ms: u64) -> Self {
        self.clock = Some(KeyClock::new(now_ms, window_ms));
        self
    }

    /// The index, opened for writing and created if missing.
    fn index_for_writing(&mut self) -> Option<&mut Index> {
        if !self.writing {
            self.key.reopen_for_writing(self.ctx);
            self.writing = true;
            if self.key.holds() == Holds::Missing && !self.key.create_index(self.stream) {
                return None;
            }
        }
        self.key.index()
    }
}

impl DedupeStore for IndexStore<'_> {
    fn contains(&mut self, id: StreamId) -> Result<bool, ReplyError> {
        Ok(self.key.index().is_some_and(|index| index.contains(id)))
    }

    fn recorded_below(&mut self, id: StreamId) -> Option<StreamId> {
        self.key.index()?.recorded_below(id)
    }

    fn insert(&mut self, id: StreamId) {
        let (ctx, name) = (self.ctx, self.stream);
        let mut touched = self.touched;
        match self.index_for_writing() {
            Some(index) => {
                index.record(id, &mut Stream { ctx, name }, &mut touched);
            }
            // Planning reserved the key, so this cannot happen: say so loudly.
            None => self.ctx.log_warning(&format!(
                "xprocess: entry {id} applied but not recorded: {}",
                errors::INDEX_UNWRITABLE.text
            )),
        }
        self.touched = touched;
        self.recorded = true;
    }

    fn commit(&mut self) -> Result<(), ReplyError> {
        if !self.recorded && self.new_keys.is_empty() {
            return Ok(());
        }
        let (ctx, name) = (self.ctx, self.stream);
        let mut touched = self.touched;
        let key = self.name;
        let keys = (!self.new_keys.is_empty()).then(|| std::mem::take(&mut self.new_keys));
        let (now, window) = self.clock.map_or((0, 0), |c| (c.now, c.window));
        let recorded = self.recorded;
        let index = self.index_for_writing().ok_or(errors::INDEX_UNWRITABLE)?;
        if recorded {
            index.sweep(&mut Stream { ctx, name }, &mut touched);
        }
        let change = Change {
            ranges: index.patch(&touched),
            keys: keys.map(|records| KeyPatch {
                now,
                window,
                conflicts: index.keys.conflicts,
                expired_add: 0,
                records,
            }),
            definition: None,
        };
        if change.ranges.is_some() || change.keys.is_some() {
            replicate(ctx, key, &index.stream, &change);
        }
        self.touched = Touched::default();
        self.recorded = false;
        Ok(())
    }

    fn key(&mut self, key: u128) -> Option<(u32, StreamId)> {
        let now = self.clock?.now;
        let rec = self.key.index()?.keys.get(key, now)?;
        Some((rec.fp, rec.id))
    }

    fn record_key(&mut self, key: u128, fp: u32, id: StreamId) {
        let Some(clock) = self.clock else {
            return;
        };
        let rec = KeyRecord {
            key,
            fp,
            expires: clock.expires,
            id,
        };
        if let Some(index) = self.index_for_writing() {
            index.keys.insert(rec, clock.now);
            index.keys.window = clock.window;
            self.new_keys.push(rec);
        }
    }

    /// A conflict writes nothing (the entry is refused as it is): the
    /// counter is a statistic of this server, like `keys-expired`, saved
    /// with the index but outside its digest and not replicated.
    fn conflict(&mut self) {
        if let Some(index) = self.key.index() {
            index.keys.conflicts += 1;
        }
    }
}
