//! Hashes through the low-level key API: reading fields (one lookup, or the
//! whole hash in one walk) and writing HINCRBY results.

use crate::redis::events::notify_raw;
use redis_module::{raw, Context, NotifyEvent, RedisString};
use std::os::raw::c_void;
use std::ptr;
use xprocess_core::fast_map::FastMap;
use xprocess_core::numbers::format_i64;

/// A hash field's value to write, and how many HINCRBYs produced it (each
/// is notified).
pub type Pending = (i64, u32);

/// Every field of a hash and its value (`None`: read it from Redis).
pub type FieldValues = FastMap<Vec<u8>, Option<Vec<u8>>>;

/// A hash key open for reading, closed on drop.
pub struct Hash(*mut raw::RedisModuleKey);

impl Hash {
    /// `None` when the key is missing (READ mode opens it as NULL).
    pub fn open(ctx: &Context, key: &[u8]) -> Option<Hash> {
        let ctx = ctx.ctx;
        // SAFETY: the name string lives across the open; Redis keeps its own
        // reference to the key's name.
        unsafe {
            let name = raw::RedisModule_CreateString.unwrap()(ctx, key.as_ptr().cast(), key.len());
            let handle = raw::RedisModule_OpenKey.unwrap()(ctx, name, raw::REDISMODULE_READ as i32)
                .cast::<raw::RedisModuleKey>();
            raw::RedisModule_FreeString.unwrap()(ctx, name);
            (!handle.is_null()).then_some(Hash(handle))
        }
    }

    pub fn fields(&self) -> usize {
        // SAFETY: an open key.
        unsafe { raw::RedisModule_ValueLength.unwrap()(self.0) }
    }

    pub fn get(&self, ctx: &Context, field: &[u8]) -> Option<Vec<u8>> {
        let ctx = ctx.ctx;
        let mut value: *mut raw::RedisModuleString = ptr::null_mut();
        // SAFETY: an open key; the field string and the returned value are
        // ours and freed here.
        unsafe {
            let name =
                raw::RedisModule_CreateString.unwrap()(ctx, field.as_ptr().cast(), field.len());
            raw::RedisModule_HashGet.unwrap()(
                self.0,
                raw::REDISMODULE_HASH_NONE as i32,
                name,
                &mut value as *mut *mut raw::RedisModuleString,
                ptr::null_mut::<c_void>(),
            );
            raw::RedisModule_FreeString.unwrap()(ctx, name);
            if value.is_null() {
                return None;
            }
            let bytes = RedisString::string_as_slice(value).to_vec();
            raw::RedisModule_FreeString.unwrap()(ctx, value);
            Some(bytes)
        }
    }

    /// Every field and value, in one walk (one ScanKey call for a listpack;
    /// a hashtable takes several).
    pub fn copy(&self) -> FieldValues {
        let mut all = FastMap::with_capacity_and_hasher(self.fields(), Default::default());
        // SAFETY: an open key; the callback only sees `all` through
        // `privdata` while ScanKey runs, and copies the strings it is given.
        unsafe {
            let cursor = raw::RedisModule_ScanCursorCreate.unwrap()();
            let privdata = (&mut all as *mut FieldValues).cast::<c_void>();
            while raw::RedisModule_ScanKey.unwrap()(self.0, cursor, Some(copy_pair), privdata) != 0
            {
            }
            raw::RedisModule_ScanCursorDestroy.unwrap()(cursor);
        }
        all
    }
}

impl Drop for Hash {
    fn drop(&mut self) {
        // SAFETY: opened in `open`, closed once.
        unsafe { raw::RedisModule_CloseKey.unwrap()(self.0) };
    }
}

unsafe extern "C" fn copy_pair(
    _key: *mut raw::RedisModuleKey,
    field: *mut raw::RedisModuleString,
    value: *mut raw::RedisModuleString,
    privdata: *mut c_void,
) {
    let all = &mut *privdata.cast::<FieldValues>();
    if !field.is_null() && !value.is_null() {
        all.insert(
            RedisString::string_as_slice(field).to_vec(),
            Some(RedisString::string_as_slice(value).to_vec()),
        );
    }
}

/// Set hash fields to values HINCRBY planning computed, without
/// RedisModule_Call: the low-level hash API writes them, one `HSET key
/// field value ...` replicates them (the final values: deterministic),
/// and each HINCRBY that produced them is notified as `hincrby`. The
/// same module strings serve the write and the replication (`v`: Redis
/// retains them rather than copying).
pub fn write_hash(ctx: &Context, key: &[u8], fields: &[(Vec<u8>, Pending)]) {
    let ctx = ctx.ctx;
    let strings = Strings::new(ctx, key, fields);
    let [name, pairs @ ..] = strings.0.as_slice() else {
        return;
    };
    // SAFETY: the key is opened for writing, set and closed here; Redis
    // copies fields and values. Closing it signals the modification
    // (WATCH). HashSet returns a count of replaced fields, not a status:
    // planning checked the key is a hash or missing, so it cannot fail.
    unsafe {
        let handle = raw::RedisModule_OpenKey.unwrap()(ctx, *name, raw::REDISMODULE_WRITE as i32)
            .cast::<raw::RedisModuleKey>();
        for pair in pairs.chunks(2) {
            raw::RedisModule_HashSet.unwrap()(
                handle,
                raw::REDISMODULE_HASH_NONE as i32,
                pair[0],
                pair[1],
                ptr::null_mut::<c_void>(),
            );
        }
        raw::RedisModule_CloseKey.unwrap()(handle);
        raw::RedisModule_Replicate.unwrap()(
            ctx,
            c"HSET".as_ptr(),
            c"v".as_ptr(),
            strings.0.as_ptr(),
            strings.0.len(),
        );
        for (_, (_, count)) in fields {
            notify_raw(ctx, NotifyEvent::HASH, c"hincrby", *name, *count as usize);
        }
    }
}

/// `key field value ...` of one hash write as module strings, freed on drop.
struct Strings(Vec<*mut raw::RedisModuleString>, *mut raw::RedisModuleCtx);

impl Strings {
    fn new(ctx: *mut raw::RedisModuleCtx, key: &[u8], fields: &[(Vec<u8>, Pending)]) -> Self {
        // SAFETY: a live context; Redis copies the bytes into a new string.
        let create = |bytes: &[u8]| unsafe {
            raw::RedisModule_CreateString.unwrap()(ctx, bytes.as_ptr().cast(), bytes.len())
        };
        let mut strings = Vec::with_capacity(1 + 2 * fields.len());
        strings.push(create(key));
        for (field, (value, _)) in fields {
            let mut digits = [0; 20];
            strings.push(create(field));
            strings.push(create(format_i64(*value, &mut digits)));
        }
        Strings(strings, ctx)
    }
}

impl Drop for Strings {
    fn drop(&mut self) {
        for s in self.0.drain(..) {
            // SAFETY: created in `new`, freed once; Redis retained its own
            // references to whatever it keeps.
            unsafe { raw::RedisModule_FreeString.unwrap()(self.1, s) };
        }
    }
}
