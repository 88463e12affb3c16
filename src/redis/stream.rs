//! A stream key read with the module API's stream iterator.

use redis_module::{raw, Context, RedisString};
use std::os::raw::c_long;
use std::ptr;
use xprocess_core::entry::Fields;
use xprocess_core::id::StreamId;

/// An open stream key with a running iterator; closed on drop.
pub struct Cursor {
    key: *mut raw::RedisModuleKey,
    running: bool,
    /// Fields of the entry `next_id` returned last.
    fields: usize,
}

impl Cursor {
    pub fn open(ctx: &Context, name: &[u8]) -> Option<Cursor> {
        let name = RedisString::create_from_slice(ctx.ctx, name);
        // SAFETY: OpenKey retains the name; the handle is closed in Drop.
        let key = unsafe {
            raw::RedisModule_OpenKey.unwrap()(ctx.ctx, name.inner, raw::REDISMODULE_READ as i32)
                .cast::<raw::RedisModuleKey>()
        };
        (!key.is_null()).then_some(Cursor {
            key,
            running: false,
            fields: 0,
        })
    }

    /// Restart the iteration at `from` (inclusive), up to `to` (inclusive).
    pub fn seek(&mut self, from: StreamId, to: StreamId) -> bool {
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

    pub fn next_id(&mut self) -> Option<StreamId> {
        let mut id = raw::RedisModuleStreamID { ms: 0, seq: 0 };
        let mut numfields: c_long = 0;
        // SAFETY: only called while an iterator is running on `key`.
        let status = unsafe {
            raw::RedisModule_StreamIteratorNextID.unwrap()(self.key, &mut id, &mut numfields)
        };
        self.fields = usize::try_from(numfields).unwrap_or(0);
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
    pub fn fields(&mut self) -> Fields {
        let pairs = self.fields.min(1024);
        let mut fields = Fields::with_capacity(pairs, 32 * pairs);
        while let Some((field, value)) = self.next_field() {
            fields.push(field.as_slice(), value.as_slice());
        }
        fields
    }

    /// Step over the fields of the entry `next_id` just returned, without
    /// copying them (Redis 7.0 asserts unless they are read).
    pub fn skip_fields(&mut self) {
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
