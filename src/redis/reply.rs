//! Replies, written with the raw reply API so that errors can sit inside an
//! array (per-entry errors); the same calls serve RESP2 and RESP3 clients.

use redis_module::{raw, Context};
use std::ffi::{CStr, CString};
use xprocess_core::errors::ReplyError;

pub fn error(ctx: &Context, err: &ReplyError) {
    // A NUL cannot cross the C API; printable() already keeps user bytes out.
    let text = CString::new(err.as_str().replace('\0', "?")).unwrap_or_default();
    // SAFETY: a live context; Redis copies the text.
    unsafe { raw::RedisModule_ReplyWithError.unwrap()(ctx.ctx, text.as_ptr()) };
}

/// An array of `len` elements: the next `len` replies.
pub fn array(ctx: &Context, len: usize) {
    // SAFETY: a live context.
    unsafe { raw::RedisModule_ReplyWithArray.unwrap()(ctx.ctx, len as _) };
}

/// A map of `len` pairs (RESP3), a flat array of `2 * len` (RESP2): the
/// next `2 * len` replies, name then value.
pub fn map(ctx: &Context, len: usize) {
    // SAFETY: a live context.
    unsafe { raw::RedisModule_ReplyWithMap.unwrap()(ctx.ctx, len as _) };
}

pub fn integer(ctx: &Context, n: i64) {
    // SAFETY: a live context.
    unsafe { raw::RedisModule_ReplyWithLongLong.unwrap()(ctx.ctx, n) };
}

pub fn integers(ctx: &Context, values: &[i64]) {
    array(ctx, values.len());
    for v in values {
        integer(ctx, *v);
    }
}

/// A bulk string.
pub fn bytes(ctx: &Context, bytes: &[u8]) {
    // SAFETY: a live context; Redis copies the bytes.
    unsafe {
        raw::RedisModule_ReplyWithStringBuffer.unwrap()(ctx.ctx, bytes.as_ptr().cast(), bytes.len())
    };
}

pub fn simple(ctx: &Context, text: &CStr) {
    // SAFETY: a live context; Redis copies the text.
    unsafe { raw::RedisModule_ReplyWithSimpleString.unwrap()(ctx.ctx, text.as_ptr()) };
}

pub fn null(ctx: &Context) {
    // SAFETY: a live context.
    unsafe { raw::RedisModule_ReplyWithNull.unwrap()(ctx.ctx) };
}

pub fn ok(ctx: &Context) {
    simple(ctx, c"OK");
}
