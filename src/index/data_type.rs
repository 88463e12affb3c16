//! The index as a Redis data type, `xproc-idx` (what TYPE answers), and the
//! callbacks through which Redis saves, loads, copies, measures, digests,
//! defragments and frees it. An RDB or AOF holding an index needs the module
//! loaded to be read.
//!
//! Every callback runs inside Redis: none may panic or trust its input. The
//! loader refuses (returns NULL, so RESTORE answers "Bad data format" and a
//! corrupt RDB stops the load) anything `encoding::decode` does not accept.

use crate::redis::key::Key;
use crate::stats::processors;
use redis_module::native_types::RedisType;
use redis_module::{raw, RedisString};
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use xprocess_core::index::codec::{self, ENCODING_VERSION};
use xprocess_core::index::patch;
use xprocess_core::index::ranges::{Index, Relocate};

pub static INDEX_TYPE: RedisType = RedisType::new(
    "xproc-idx",
    ENCODING_VERSION,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        aof_rewrite: Some(aof_rewrite),
        mem_usage: Some(mem_usage),
        digest: Some(digest),
        free: Some(free),
        aux_load: None,
        aux_save: None,
        aux_save_triggers: 0,
        free_effort: Some(free_effort),
        unlink: None,
        copy: Some(copy),
        defrag: Some(defrag),
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        aux_save2: None,
    },
);

/// The index stored at `key`, if it holds one.
pub fn index_at(key: &mut Key) -> Option<&mut Index> {
    // SAFETY: every value of INDEX_TYPE is an Index (set by `set_index` only).
    unsafe { key.value::<Index>(&INDEX_TYPE) }
}

/// Store `index` at `key`, open for writing and empty.
pub fn set_index(key: &mut Key, index: Index) -> bool {
    // SAFETY: as above; the callbacks below read INDEX_TYPE values as Index.
    unsafe { key.set_value(&INDEX_TYPE, index) }
}

fn log(message: &str) {
    redis_module::logging::log_warning(format!("xprocess: {message}"));
}

/// Run a callback body; a panic becomes `fallback` and a log line (it must
/// not unwind into Redis).
fn guarded<T>(what: &str, fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        log(&format!("panic in the index {what} callback"));
        fallback
    })
}

// SAFETY (every callback below): Redis calls it on the main thread with
// live arguments; `value` is always an Index of this type (`set_index`,
// `rdb_load` and `copy` make them). Here: a live RDB reader; the buffer it
// returns is ours, read within its length and freed once.
unsafe extern "C" fn rdb_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    guarded("rdb_load", ptr::null_mut(), || {
        if !(1..=ENCODING_VERSION).contains(&encver) {
            log(&format!(
                "cannot load an index of encoding version {encver} (this module reads {ENCODING_VERSION})"
            ));
            return ptr::null_mut();
        }
        let mut len = 0usize;
        let buf = raw::RedisModule_LoadStringBuffer.unwrap()(rdb, &mut len);
        if raw::RedisModule_IsIOError.unwrap()(rdb) != 0 || buf.is_null() {
            if !buf.is_null() {
                raw::RedisModule_Free.unwrap()(buf.cast());
            }
            return ptr::null_mut();
        }
        let decoded = codec::decode(std::slice::from_raw_parts(buf.cast::<u8>(), len), encver);
        raw::RedisModule_Free.unwrap()(buf.cast());
        match decoded {
            Ok(index) => {
                if index.definition.is_some() {
                    let db = raw::RedisModule_GetDbIdFromIO.unwrap()(rdb);
                    processors::track(db, &index.stream, None, index.definition.as_deref());
                }
                Box::into_raw(Box::new(index)).cast()
            }
            Err(why) => {
                log(&format!("refused a corrupt index payload: {why}"));
                ptr::null_mut()
            }
        }
    })
}

// SAFETY: a live RDB writer and an Index; Redis copies the buffer.
unsafe extern "C" fn rdb_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    guarded("rdb_save", (), || {
        let bytes = codec::encode(&*value.cast::<Index>());
        raw::RedisModule_SaveStringBuffer.unwrap()(
            rdb,
            bytes.as_ptr().cast::<c_char>(),
            bytes.len(),
        );
    })
}

// SAFETY: a live AOF writer, key name and Index; Redis copies the argv.
unsafe extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    guarded("aof_rewrite", (), || {
        let index = &*value.cast::<Index>();
        let key = RedisString::string_as_slice(key);
        let command = CString::new(patch::COMMAND).unwrap_or_default();
        let format = CString::new("v").unwrap_or_default();
        for p in patch::rebuild(index) {
            let strings: Vec<RedisString> = patch::to_args(key, &index.stream, &p)
                .iter()
                .map(|a| RedisString::create_from_slice(ptr::null_mut(), a))
                .collect();
            let mut argv: Vec<*mut raw::RedisModuleString> =
                strings.iter().map(|s| s.inner).collect();
            raw::RedisModule_EmitAOF.unwrap()(
                aof,
                command.as_ptr(),
                format.as_ptr(),
                argv.as_mut_ptr(),
                argv.len(),
            );
        }
    })
}

// SAFETY: an Index, read only.
unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    guarded("mem_usage", 0, || (*value.cast::<Index>()).memory())
}

// SAFETY: a live digest and an Index, read only.
unsafe extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    guarded("digest", (), || {
        let index = &*value.cast::<Index>();
        let add = |n: u64| raw::RedisModule_DigestAddLongLong.unwrap()(md, n as i64);
        raw::RedisModule_DigestAddStringBuffer.unwrap()(
            md,
            index.stream.as_ptr().cast_mut().cast(),
            index.stream.len(),
        );
        add(index.recorded);
        add(index.lost);
        if index.definition.is_some() {
            let bytes = codec::definition_bytes(index.definition.as_deref());
            raw::RedisModule_DigestAddStringBuffer.unwrap()(
                md,
                bytes.as_ptr().cast_mut().cast(),
                bytes.len(),
            );
        }
        for r in index.ranges() {
            for n in r.words() {
                add(n);
            }
        }
        // The live keys only: which expired ones are still stored differs
        // from server to server and changes no answer. The counters are this
        // server's statistics.
        let keys = &index.keys;
        let live = keys.live();
        if !live.is_empty() {
            add(u64::from(keys.now));
            for k in &live {
                add(k.key as u64);
                add((k.key >> 64) as u64);
                add(u64::from(k.fp) << 32 | u64::from(k.expires));
                add(k.id.ms);
                add(k.id.seq);
            }
        }
        raw::RedisModule_DigestEndSequence.unwrap()(md);
    })
}

// SAFETY: an Index boxed by this module, freed once by Redis.
unsafe extern "C" fn free(value: *mut c_void) {
    if !value.is_null() {
        drop(Box::from_raw(value.cast::<Index>()));
    }
}

// SAFETY: reads nothing.
/// Ranges are freed in one go: the effort is one allocation, not per range.
unsafe extern "C" fn free_effort(
    _key: *mut raw::RedisModuleString,
    _value: *const c_void,
) -> usize {
    1
}

// SAFETY: an Index, read only; the copy is boxed for Redis to own.
unsafe extern "C" fn copy(
    _from: *mut raw::RedisModuleString,
    _to: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    guarded("copy", ptr::null_mut(), || {
        Box::into_raw(Box::new((*value.cast::<Index>()).clone())).cast()
    })
}

// SAFETY: a live defrag context and a pointer to the key's Index pointer,
// which Redis lets us replace with the moved allocation.
/// Move the index's allocations (the value, its stream name and its ranges)
/// to places the active defragmenter chooses.
unsafe extern "C" fn defrag(
    ctx: *mut raw::RedisModuleDefragCtx,
    _key: *mut raw::RedisModuleString,
    value: *mut *mut c_void,
) -> c_int {
    let Some(defrag_alloc) = raw::RedisModule_DefragAlloc else {
        return 0;
    };
    let moved = defrag_alloc(ctx, *value);
    if !moved.is_null() {
        *value = moved;
    }
    (*(*value).cast::<Index>()).defrag_buffers(&mut Defrag { ctx, defrag_alloc });
    0
}

/// Moves an index's buffers with `RedisModule_DefragAlloc`.
struct Defrag {
    ctx: *mut raw::RedisModuleDefragCtx,
    // The API's DefragAlloc, taken once it is known to exist.
    defrag_alloc: unsafe extern "C" fn(*mut raw::RedisModuleDefragCtx, *mut c_void) -> *mut c_void,
}

impl Relocate for Defrag {
    fn relocate<T>(&mut self, v: &mut Vec<T>) {
        if v.capacity() == 0 || std::mem::size_of::<T>() == 0 {
            return;
        }
        let (old, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
        // SAFETY: the buffer came from Redis' allocator (the module allocates
        // through it); DefragAlloc returns a copy of the same size and frees
        // the old one, or null when it leaves it in place.
        let new = unsafe { (self.defrag_alloc)(self.ctx, old.cast()) }.cast::<T>();
        if !new.is_null() && new != old {
            std::mem::forget(std::mem::take(v));
            // SAFETY: `new` holds the `len` elements of the old buffer, with
            // its capacity, and nothing else refers to the old one.
            *v = unsafe { Vec::from_raw_parts(new, len, cap) };
        }
    }
}
