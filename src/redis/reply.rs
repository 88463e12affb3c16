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

/// A value of a reply's field.
pub enum Value {
    Text(Vec<u8>),
    Int(i64),
    Nil,
    /// An array of strings.
    List(Vec<Vec<u8>>),
    /// An array of fields (a nested map).
    Fields(Vec<(&'static str, Value)>),
}

/// Named fields as a map (a flat name/value array in RESP2).
pub fn fields(ctx: &Context, fields: &[(&str, Value)]) {
    map(ctx, fields.len());
    for (name, value) in fields {
        simple(ctx, &std::ffi::CString::new(*name).unwrap_or_default());
        match value {
            Value::Text(t) => bytes(ctx, t),
            Value::Int(n) => integer(ctx, *n),
            Value::Nil => null(ctx),
            Value::List(items) => {
                array(ctx, items.len());
                for item in items {
                    bytes(ctx, item);
                }
            }
            Value::Fields(nested) => self::fields(ctx, nested),
        }
    }
}
