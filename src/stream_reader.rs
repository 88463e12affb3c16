//! Reading source entries with the module API's stream iterator.
//!
//! Finding one entry costs a seek plus a walk from the start of its radix-tree
//! node (up to `stream-node-max-entries`, 100 by default), which is what
//! `XRANGE id id` pays too. A batch of IDs is therefore read in one forward
//! pass, seeking again only across long gaps.

use crate::parse::StreamId;
use crate::process::Fields;
use redis_module::{raw, RedisString};
use std::os::raw::c_long;
use std::ptr;

/// Entries walked past without being wanted before a new seek is cheaper.
const MAX_SKIP: usize = 256;

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

    /// The field/value pairs of the entry `next_id` just returned.
    fn fields(&mut self) -> Fields {
        let mut fields = Vec::new();
        loop {
            let mut field: *mut raw::RedisModuleString = ptr::null_mut();
            let mut value: *mut raw::RedisModuleString = ptr::null_mut();
            // SAFETY: the strings returned are ours and freed by RedisString.
            let status = unsafe {
                raw::RedisModule_StreamIteratorNextField.unwrap()(self.key, &mut field, &mut value)
            };
            if status != raw::REDISMODULE_OK as i32 {
                return fields;
            }
            let field = RedisString::from_redis_module_string(ptr::null_mut(), field);
            let value = RedisString::from_redis_module_string(ptr::null_mut(), value);
            fields.push((field.as_slice().to_vec(), value.as_slice().to_vec()));
        }
    }

    fn stop(&mut self) {
        if self.running {
            // SAFETY: an iterator is running on `key`.
            unsafe { raw::RedisModule_StreamIteratorDelete.unwrap()(self.key) };
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

/// Read the entries `ids` (sorted ascending, no repeats) of stream `name`.
/// Returns one slot per ID: `None` where the stream has no such entry.
pub fn read_sorted(
    ctx: *mut raw::RedisModuleCtx,
    name: &[u8],
    ids: &[StreamId],
) -> Vec<Option<Fields>> {
    let mut out: Vec<Option<Fields>> = vec![None; ids.len()];
    let (Some(&last), Some(mut cursor)) = (ids.last(), Cursor::open(ctx, name)) else {
        return out;
    };
    let mut i = 0;
    'seek: while i < ids.len() {
        if !cursor.seek(ids[i], last) {
            return out;
        }
        let mut skipped = 0;
        while let Some(id) = cursor.next_id() {
            while i < ids.len() && ids[i] < id {
                i += 1; // not in the stream
            }
            if i == ids.len() {
                return out;
            }
            if ids[i] == id {
                out[i] = Some(cursor.fields());
                i += 1;
                skipped = 0;
            } else {
                skipped += 1;
                if skipped > MAX_SKIP {
                    continue 'seek;
                }
            }
        }
        return out; // the iterator passed `last`
    }
    out
}
