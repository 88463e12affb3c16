//! Reading source entries with the module API's stream iterator.
//!
//! Finding one entry costs a seek plus a walk from the start of its radix-tree
//! node (up to `stream-node-max-entries`, 100 by default), which is what
//! `XRANGE id id` pays too: so a call reads its entries a window at a time
//! (see `entry_cache`).

use crate::stats;
use crate::stream::entry_cache::{self, Lead};
use redis_module::{raw, RedisString};
use std::os::raw::c_long;
use std::ptr;
use xprocess_core::entry::Fields;
use xprocess_core::id::StreamId;
use xprocess_core::index::ranges::StreamView;

/// An open stream key with a running iterator; closed on drop.
struct Cursor {
    key: *mut raw::RedisModuleKey,
    running: bool,
}

impl Cursor {
    fn open(ctx: *mut raw::RedisModuleCtx, name: &[u8]) -> Option<Cursor> {
        let name = RedisString::create_from_slice(ctx, name);
        // SAFETY: OpenKey retains the name; the handle is closed in Drop.
        let key = unsafe {
            raw::RedisModule_OpenKey.unwrap()(ctx, name.inner, raw::REDISMODULE_READ as i32)
                .cast::<raw::RedisModuleKey>()
        };
        (!key.is_null()).then_some(Cursor {
            key,
            running: false,
        })
    }

    /// Restart the iteration at `from` (inclusive), up to `to` (inclusive).
    fn seek(&mut self, from: StreamId, to: StreamId) -> bool {
        self.stop();
        let mut from = raw::RedisModuleStreamID {
            ms: from.ms,
            seq: from.seq,
        };
        let mut to = raw::RedisModuleStreamID {
            ms: to.ms,
            seq: to.seq,
        };
        // SAFETY: `key` is an open stream key (checked by the caller's type check).
        let status = unsafe {
            raw::RedisModule_StreamIteratorStart.unwrap()(self.key, 0, &mut from, &mut to)
        };
        self.running = status == raw::REDISMODULE_OK as i32;
        self.running
    }

    fn next_id(&mut self) -> Option<StreamId> {
        let mut id = raw::RedisModuleStreamID { ms: 0, seq: 0 };
        let mut numfields: c_long = 0;
        // SAFETY: only called while an iterator is running on `key`.
        let status = unsafe {
            raw::RedisModule_StreamIteratorNextID.unwrap()(self.key, &mut id, &mut numfields)
        };
        (status == raw::REDISMODULE_OK as i32).then_some(StreamId {
            ms: id.ms,
            seq: id.seq,
        })
    }

    /// The next field/value pair of the entry `next_id` just returned.
    fn next_field(&mut self) -> Option<(RedisString, RedisString)> {
        let mut field: *mut raw::RedisModuleString = ptr::null_mut();
        let mut value: *mut raw::RedisModuleString = ptr::null_mut();
        // SAFETY: the strings returned are ours and freed by RedisString.
        let status = unsafe {
            raw::RedisModule_StreamIteratorNextField.unwrap()(self.key, &mut field, &mut value)
        };
        (status == raw::REDISMODULE_OK as i32).then(|| {
            (
                RedisString::from_redis_module_string(ptr::null_mut(), field),
                RedisString::from_redis_module_string(ptr::null_mut(), value),
            )
        })
    }

    /// The field/value pairs of the entry `next_id` just returned.
    fn fields(&mut self) -> Fields {
        let mut fields = Vec::new();
        while let Some((field, value)) = self.next_field() {
            fields.push((field.as_slice().to_vec(), value.as_slice().to_vec()));
        }
        fields
    }

    /// Step over the fields of the entry `next_id` just returned, without
    /// copying them (Redis 7.0 asserts unless they are read).
    fn skip_fields(&mut self) {
        while self.next_field().is_some() {}
    }

    fn stop(&mut self) {
        if self.running {
            // Stop, not Delete: RedisModule_StreamIteratorDelete deletes the
            // current entry from the stream (and fails on a key open for
            // reading, leaving the iterator running).
            // SAFETY: an iterator is running on `key`.
            unsafe { raw::RedisModule_StreamIteratorStop.unwrap()(self.key) };
            self.running = false;
        }
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        self.stop();
        // SAFETY: opened in `open`, closed once here.
        unsafe { raw::RedisModule_CloseKey.unwrap()(self.key) };
    }
}

/// Entries read in one pass (see `read_ahead`).
#[derive(Default)]
pub struct Read {
    pub lead: Option<Lead>,
    pub entries: Vec<(StreamId, Fields)>,
}

/// The most entries counted on the way to the first one asked for; past
/// it, the walk gives up and seeks there instead.
const MAX_LEAD: u64 = 256;

/// Read the entries of stream `name` from `from` to `to` (both inclusive),
/// in ID order: at most `max_entries` of them (and about `max_bytes`). With
/// `count_from`, start there instead and count the entries before `from`
/// (the dedupe index is about to ask for them) without copying them.
pub fn read_ahead(
    ctx: *mut raw::RedisModuleCtx,
    name: &[u8],
    count_from: Option<StreamId>,
    (from, to): (StreamId, StreamId),
    (max_entries, max_bytes): (usize, usize),
) -> Read {
    let mut read = Read::default();
    let Some(mut cursor) = Cursor::open(ctx, name) else {
        return read;
    };
    let mut first = None;
    if let Some(start) = count_from.filter(|start| *start < from) {
        (read.lead, first) = walk_lead(&mut cursor, start, (from, to));
        if read.lead.is_some() && first.is_none() {
            // The walk reached the end: nothing from `from` on. (NextID
            // again after it said no more crashes Redis 7.0.)
            return read;
        }
    }
    if read.lead.is_none() && !cursor.seek(from, to) {
        return read;
    }
    let mut bytes = 0;
    while read.entries.len() < max_entries && bytes < max_bytes {
        let Some(id) = first.take().or_else(|| cursor.next_id()) else {
            break;
        };
        // Redis 7.0 asserts (and aborts) if NextID is called again before
        // the current entry's fields were read: always read them.
        let fields = cursor.fields();
        bytes += fields.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>();
        read.entries.push((id, fields));
    }
    read
}

/// Count the entries from `start` up to `from` (exclusive); the lead, and
/// the first entry at or past `from`, whose fields are still to be read.
/// No lead if there are more than `MAX_LEAD` (the cursor is left to seek).
fn walk_lead(
    cursor: &mut Cursor,
    start: StreamId,
    (from, to): (StreamId, StreamId),
) -> (Option<Lead>, Option<StreamId>) {
    if !cursor.seek(start, to) {
        return (None, None);
    }
    let mut count = 0;
    while let Some(id) = cursor.next_id() {
        if id >= from {
            return (Some(Lead { from: start, count }), Some(id));
        }
        cursor.skip_fields();
        count += 1;
        if count > MAX_LEAD {
            return (None, None);
        }
    }
    (Some(Lead { from: start, count }), None)
}

/// The source stream as the dedupe index sees it: entry counts between IDs
/// and the first entry, read with the stream iterator (each question opens
/// the key anew: effects may have written to the stream in between).
pub struct Stream<'a> {
    pub ctx: *mut raw::RedisModuleCtx,
    pub name: &'a [u8],
}

impl Stream<'_> {
    fn db(&self) -> i32 {
        // SAFETY: a live context.
        unsafe { raw::RedisModule_GetSelectedDb.unwrap()(self.ctx) }
    }
}

impl StreamView for Stream<'_> {
    fn count_between(&mut self, after: StreamId, before: StreamId, cap: u64) -> u64 {
        if let Some(n) = entry_cache::count_between(self.db(), self.name, after, before) {
            return n.min(cap);
        }
        let (Some(from), Some(to)) = (after.next(), before.prev()) else {
            return 0;
        };
        if from > to || cap == 0 {
            return 0;
        }
        stats::update(|s| s.gap_scans += 1);
        let Some(mut cursor) = Cursor::open(self.ctx, self.name) else {
            return 0;
        };
        if !cursor.seek(from, to) {
            return 0;
        }
        let mut n = 0;
        while n < cap && cursor.next_id().is_some() {
            cursor.skip_fields();
            n += 1;
        }
        n
    }

    fn first_id(&mut self) -> Option<StreamId> {
        first_from(self.ctx, self.name, StreamId { ms: 0, seq: 0 })
    }
}

/// Whether the stream holds entry `id`.
pub fn contains(ctx: *mut raw::RedisModuleCtx, name: &[u8], id: StreamId) -> bool {
    first_from(ctx, name, id) == Some(id)
}

/// The first entry with an ID above `after`.
pub fn first_after(
    ctx: *mut raw::RedisModuleCtx,
    name: &[u8],
    after: StreamId,
) -> Option<StreamId> {
    first_from(ctx, name, after.next()?)
}

fn first_from(ctx: *mut raw::RedisModuleCtx, name: &[u8], from: StreamId) -> Option<StreamId> {
    let mut cursor = Cursor::open(ctx, name)?;
    if !cursor.seek(from, StreamId::MAX) {
        return None;
    }
    let id = cursor.next_id();
    if id.is_some() {
        cursor.skip_fields();
    }
    id
}
