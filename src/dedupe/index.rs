//! The index store: processed IDs as ranges in our own data type (see
//! `crate::index`), read and written in-process: no RedisModule_Call.
//!
//! IDs are recorded into the live index as they are applied (the command is
//! atomic, so nobody sees a half-done call), and `commit` sweeps gaps whose
//! entries left the stream, then replicates what changed as one
//! `XPROCESS.PATCH` inside the call's MULTI/EXEC.

use super::DedupeStore;
use crate::errors::{self, ReplyError};
use crate::index::data_type::{self, holds_index};
use crate::index::patch;
use crate::index::ranges::{Index, Touched};
use crate::parse::StreamId;
use crate::stream_reader::Stream;
use redis_module::{raw, Context, RedisString};
use std::ptr;

pub struct IndexStore<'c> {
    ctx: &'c Context,
    name: RedisString,
    stream: &'c [u8],
    /// The dedupe key, open for reading until the first record, then for
    /// writing (a key closed after writing mode signals a modification to
    /// WATCH, so a call of duplicates only never opens it so).
    key: *mut raw::RedisModuleKey,
    writing: bool,
    touched: Touched,
    recorded: bool,
}

impl<'c> IndexStore<'c> {
    /// The store at `key`, which is missing or holds an index. An index that
    /// belongs to another stream is a whole-call error.
    pub fn open(ctx: &'c Context, key: &[u8], stream: &'c [u8]) -> Result<Self, ReplyError> {
        let mut store = IndexStore {
            ctx,
            name: RedisString::create_from_slice(ctx.ctx, key),
            stream,
            key: ptr::null_mut(),
            writing: false,
            touched: Touched::default(),
            recorded: false,
        };
        store.key = store.open_key(raw::REDISMODULE_READ);
        if let Some(index) = store.index() {
            if index.stream != stream {
                return Err(ReplyError::index_of_other_stream(
                    key,
                    &index.stream,
                    stream,
                ));
            }
        }
        Ok(store)
    }

    fn open_key(&self, mode: u32) -> *mut raw::RedisModuleKey {
        // SAFETY: the name outlives the handle, which Drop closes.
        unsafe {
            raw::RedisModule_OpenKey.unwrap()(self.ctx.ctx, self.name.inner, mode as i32)
                .cast::<raw::RedisModuleKey>()
        }
    }

    fn index(&mut self) -> Option<&mut Index> {
        // SAFETY: the key stays open for the whole call, and effects cannot
        // write it (it is reserved: planning refuses effects on it).
        unsafe { data_type::value_of(self.key) }
    }

    /// The index, opened for writing and created if missing.
    fn index_for_writing(&mut self) -> Option<&mut Index> {
        if !self.writing {
            self.close();
            self.key = self.open_key(raw::REDISMODULE_READ | raw::REDISMODULE_WRITE);
            self.writing = true;
            // SAFETY: just opened for writing; an empty key takes a new index.
            unsafe {
                if raw::RedisModule_KeyType.unwrap()(self.key)
                    == raw::REDISMODULE_KEYTYPE_EMPTY as i32
                    && !data_type::set_value(self.key, Index::new(self.stream))
                {
                    return None;
                }
                if !holds_index(self.key) {
                    return None;
                }
            }
        }
        self.index()
    }

    fn close(&mut self) {
        if !self.key.is_null() {
            // SAFETY: opened by open_key, closed once.
            unsafe { raw::RedisModule_CloseKey.unwrap()(self.key) };
            self.key = ptr::null_mut();
        }
    }
}

impl Drop for IndexStore<'_> {
    fn drop(&mut self) {
        self.close();
    }
}

impl DedupeStore for IndexStore<'_> {
    fn contains(&mut self, id: StreamId) -> Result<bool, ReplyError> {
        Ok(self.index().is_some_and(|index| index.contains(id)))
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
        let key = self.name.as_slice().to_vec();
        let index = self.index_for_writing().ok_or(errors::INDEX_UNWRITABLE)?;
        index.sweep(&mut Stream { ctx, name }, &mut touched);
        if let Some(p) = index.patch(&touched) {
            patch::replicate(context, &key, &index.stream, &p);
        }
        self.touched = Touched::default();
        self.recorded = false;
        self.close();
        Ok(())
    }
}
