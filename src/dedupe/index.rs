//! The index store: processed IDs as ranges in our own data type (see
//! `crate::index`), read and written in-process: no RedisModule_Call.
//!
//! IDs are recorded into the live index as they are applied (the command is
//! atomic, so nobody sees a half-done call), and `commit` sweeps gaps whose
//! entries left the stream, then replicates what changed as one
//! `XPROCESS.PATCH` inside the call's MULTI/EXEC.

use super::{DedupeKey, DedupeStore, Holds};
use crate::errors::{self, ReplyError};
use crate::index::patch;
use crate::index::ranges::{Index, Touched};
use crate::parse::StreamId;
use crate::stream_reader::Stream;
use redis_module::Context;

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

    fn insert(&mut self, id: StreamId) {
        let (ctx, name) = (self.ctx.ctx, self.stream);
        let mut touched = self.touched;
        match self.index_for_writing() {
            Some(index) => {
                index.record(id, &mut Stream { ctx, name }, &mut touched);
            }
            // Planning reserved the key, so this cannot happen: say so loudly.
            None => self.ctx.log_warning(&format!(
                "xprocess: entry {id} applied but not recorded: {}",
                errors::INDEX_UNWRITABLE
            )),
        }
        self.touched = touched;
        self.recorded = true;
    }

    fn commit(&mut self) -> Result<(), ReplyError> {
        if !self.recorded {
            return Ok(());
        }
        let (context, ctx, name) = (self.ctx, self.ctx.ctx, self.stream);
        let mut touched = self.touched;
        let key = self.name;
        let index = self.index_for_writing().ok_or(errors::INDEX_UNWRITABLE)?;
        index.sweep(&mut Stream { ctx, name }, &mut touched);
        if let Some(p) = index.patch(&touched) {
            let change = patch::Change {
                ranges: Some(p),
                keys: None,
            };
            patch::replicate(context, key, &index.stream, &change);
        }
        self.touched = Touched::default();
        self.recorded = false;
        Ok(())
    }
}
