//! Keys through the low-level key API, and databases.

use redis_module::native_types::RedisType;
use redis_module::{raw, Context, RedisString};
use std::os::raw::{c_int, c_void};
use std::ptr;

/// The database the client of `ctx` has selected.
pub fn selected_db(ctx: &Context) -> i32 {
    // SAFETY: a live context.
    unsafe { raw::RedisModule_GetSelectedDb.unwrap()(ctx.ctx) }
}

/// Select database `db` for the client of `ctx`; false if it does not exist.
pub fn select_db(ctx: &Context, db: i32) -> bool {
    // SAFETY: a live context.
    unsafe { raw::RedisModule_SelectDb.unwrap()(ctx.ctx, db) == raw::REDISMODULE_OK as c_int }
}

/// What an open key holds, as far as XPROCESS cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Empty,
    String,
    List,
    Hash,
    ZSet,
    Set,
    Stream,
    /// A value of a module's data type (ours or another module's).
    Module,
    Other,
}

/// A key open for reading (or writing too), closed on drop. A key closed
/// after being opened for writing signals a modification (WATCH), so open
/// for writing only what will be written.
pub struct Key {
    handle: *mut raw::RedisModuleKey,
    name: RedisString,
}

impl Key {
    pub fn open(ctx: &Context, name: &[u8], write: bool) -> Key {
        let mut key = Key {
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

    pub fn key_type(&self) -> KeyType {
        // READ mode opens a missing key as NULL.
        if self.handle.is_null() {
            return KeyType::Empty;
        }
        // SAFETY: an open key.
        match unsafe { raw::RedisModule_KeyType.unwrap()(self.handle) } as isize {
            raw::REDISMODULE_KEYTYPE_EMPTY => KeyType::Empty,
            raw::REDISMODULE_KEYTYPE_STRING => KeyType::String,
            raw::REDISMODULE_KEYTYPE_LIST => KeyType::List,
            raw::REDISMODULE_KEYTYPE_HASH => KeyType::Hash,
            raw::REDISMODULE_KEYTYPE_ZSET => KeyType::ZSet,
            raw::REDISMODULE_KEYTYPE_SET => KeyType::Set,
            raw::REDISMODULE_KEYTYPE_STREAM => KeyType::Stream,
            raw::REDISMODULE_KEYTYPE_MODULE => KeyType::Module,
            _ => KeyType::Other,
        }
    }

    /// At most the first `limit` bytes of a string value, and its length;
    /// `None` unless the key holds a string.
    pub fn string_head(&self, limit: usize) -> Option<(Vec<u8>, usize)> {
        if self.key_type() != KeyType::String {
            return None;
        }
        let mut len = 0;
        // SAFETY: an open string key read in place (no copy of a large
        // value), copied out before the key can change.
        unsafe {
            let ptr = raw::RedisModule_StringDMA.unwrap()(
                self.handle,
                &mut len,
                raw::REDISMODULE_READ as c_int,
            );
            if ptr.is_null() {
                return Some((Vec::new(), 0));
            }
            let head = std::slice::from_raw_parts(ptr.cast::<u8>(), len.min(limit));
            Some((head.to_vec(), len))
        }
    }

    /// How many fields, members or elements the key holds (0 when missing).
    pub fn value_length(&self) -> usize {
        if self.handle.is_null() {
            return 0;
        }
        // SAFETY: an open key.
        unsafe { raw::RedisModule_ValueLength.unwrap()(self.handle) }
    }

    /// A sorted-set member's score; `None` when the key is not a sorted set
    /// or has no such member.
    pub fn zscore(&self, ctx: &Context, member: &[u8]) -> Option<f64> {
        if self.key_type() != KeyType::ZSet {
            return None;
        }
        let member = RedisString::create_from_slice(ctx.ctx, member);
        let mut score = 0.0;
        // SAFETY: an open sorted-set key; the member string lives across the call.
        let status =
            unsafe { raw::RedisModule_ZsetScore.unwrap()(self.handle, member.inner, &mut score) };
        (status == raw::REDISMODULE_OK as c_int).then_some(score)
    }

    /// Whether the key holds a value of the module type `ty`.
    pub fn holds(&self, ty: &RedisType) -> bool {
        self.key_type() == KeyType::Module
            // SAFETY: an open key holding a module value.
            && unsafe { raw::RedisModule_ModuleTypeGetType.unwrap()(self.handle) }
                == *ty.raw_type.borrow()
    }

    /// The value of module type `ty` at the key, if it holds one.
    ///
    /// # Safety
    /// Every value of `ty` must be a `T`. The reference lives as long as the
    /// key is neither closed nor written.
    pub unsafe fn value<T>(&mut self, ty: &RedisType) -> Option<&mut T> {
        if !self.holds(ty) {
            return None;
        }
        raw::RedisModule_ModuleTypeGetValue.unwrap()(self.handle)
            .cast::<T>()
            .as_mut()
    }

    /// Store `value` as a value of module type `ty` at the key, which must be
    /// open for writing; false (and `value` dropped) if Redis refused.
    ///
    /// # Safety
    /// Every value of `ty` must be a `T` (its callbacks read it as one).
    pub unsafe fn set_value<T>(&mut self, ty: &RedisType, value: T) -> bool {
        if self.handle.is_null() {
            return false;
        }
        let value = Box::into_raw(Box::new(value)).cast::<c_void>();
        let status =
            raw::RedisModule_ModuleTypeSetValue.unwrap()(self.handle, *ty.raw_type.borrow(), value);
        if status != raw::REDISMODULE_OK as c_int {
            drop(Box::from_raw(value.cast::<T>()));
            return false;
        }
        true
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.close();
    }
}
