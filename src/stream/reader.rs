//! Reading source entries with the module API's stream iterator.
//!
//! Finding one entry costs a seek plus a walk from the start of its radix-tree
//! node (up to `stream-node-max-entries`, 100 by default), which is what
//! `XRANGE id id` pays too: so a call reads its entries a window at a time
//! (see `entry_cache`).

use crate::redis::key;
use crate::redis::stream::Cursor;
use crate::stats;
use crate::stream::entry_cache::{self, Lead};
use redis_module::Context;
use xprocess_core::entry::Fields;
use xprocess_core::id::StreamId;
use xprocess_core::index::ranges::StreamView;

/// Entries read in one pass (see `read_ahead`).
#[derive(Default)]
pub struct ReadAhead {
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
    ctx: &Context,
    name: &[u8],
    count_from: Option<StreamId>,
    (from, to): (StreamId, StreamId),
    (max_entries, max_bytes): (usize, usize),
) -> ReadAhead {
    let mut read = ReadAhead::default();
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
        bytes += fields.byte_len();
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
    pub ctx: &'a Context,
    pub name: &'a [u8],
}

impl Stream<'_> {
    fn db(&self) -> i32 {
        key::selected_db(self.ctx)
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
pub fn contains(ctx: &Context, name: &[u8], id: StreamId) -> bool {
    first_from(ctx, name, id) == Some(id)
}

/// The first entry with an ID above `after`.
pub fn first_after(ctx: &Context, name: &[u8], after: StreamId) -> Option<StreamId> {
    first_from(ctx, name, after.next()?)
}

fn first_from(ctx: &Context, name: &[u8], from: StreamId) -> Option<StreamId> {
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
