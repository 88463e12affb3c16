//! A dedupe key opened with the low-level key API: what it holds (nothing, a
//! Set, an index, something else) and the index in it. Closed on drop.

use crate::index::data_type::{self, holds_index};
use redis_module::{raw, Context, RedisString};
use std::ptr;
use xprocess_core::index::ranges::Index;
use xprocess_core::request::StoreKind;

/// What a dedupe key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    Missing,
    Store(StoreKind),
    Other,
}

pub struct DedupeKey {
    handle: *mut raw::RedisModuleKey,
    name: RedisString,
}

impl DedupeKey {
    /// Open `name` for reading, or for writing too. A key closed after
    /// being opened for writing signals a modification (WATCH), so open for
    /// writing only what will be written.
    pub fn open(ctx: &Context, name: &[u8], write: bool) -> DedupeKey {
        let mut key = DedupeKey {
            handle: ptr::null_mut(),
            name: RedisString::create_from_slice(ctx.ctx, name),
        };
        key.open_as(ctx, write);
        key
    }

    /// Close the key and open it again for writing.
    pub fn reopen_for_writing(&mut self, ctx: &Context) {
        self.close();
        self.open_as(ctx, true);
    }

    fn open_as(&mut self, ctx: &Context, write: bool) {
        let mode = match write {
            true => raw::REDISMODULE_READ | raw::REDISMODULE_WRITE,
            false => raw::REDISMODULE_READ,
        };
        // SAFETY: the name lives as long as the handle; `close` closes it.
        self.handle = unsafe {
            raw::RedisModule_OpenKey.unwrap()(ctx.ctx, self.name.inner, mode as i32)
                .cast::<raw::RedisModuleKey>()
        };
    }

    fn close(&mut self) {
        if !self.handle.is_null() {
            // SAFETY: opened in `open_as`, closed once.
            unsafe { raw::RedisModule_CloseKey.unwrap()(self.handle) };
            self.handle = ptr::null_mut();
        }
    }

    pub fn holds(&self) -> Holds {
        // READ mode opens a missing key as NULL.
        if self.handle.is_null() {
            return Holds::Missing;
        }
        // SAFETY: an open key.
        unsafe {
            match raw::RedisModule_KeyType.unwrap()(self.handle) as isize {
                raw::REDISMODULE_KEYTYPE_EMPTY => Holds::Missing,
                raw::REDISMODULE_KEYTYPE_SET => Holds::Store(StoreKind::Set),
                _ if holds_index(self.handle) => Holds::Store(StoreKind::Index),
                _ => Holds::Other,
            }
        }
    }

    /// The index the key holds, if it holds one.
    pub fn index(&mut self) -> Option<&mut Index> {
        // SAFETY: an open key; the reference does not outlive `self`.
        unsafe { data_type::value_of(self.handle) }
    }

    /// Store a new index at the key, which is open for writing and empty.
    pub fn create_index(&mut self, stream: &[u8]) -> bool {
        // SAFETY: `set_value` needs a handle open for writing, as documented.
        !self.handle.is_null() && unsafe { data_type::set_value(self.handle, Index::new(stream)) }
    }
}

impl Drop for DedupeKey {
    fn drop(&mut self) {
        self.close();
    }
}
