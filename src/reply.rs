//! Replies, written with the raw reply API so that per-entry errors can sit
//! inside the array; the same bytes serve RESP2 and RESP3 clients.

use crate::errors::ReplyError;
use crate::process::Outcome;
use redis_module::{raw, Context};
use std::ffi::CString;

pub fn error(ctx: &Context, err: &ReplyError) {
    // A NUL cannot cross the C API; printable() already keeps user bytes out.
    let text = CString::new(err.as_str().replace('\0', "?")).unwrap_or_default();
    unsafe { raw::RedisModule_ReplyWithError.unwrap()(ctx.ctx, text.as_ptr()) };
}

pub fn outcomes(ctx: &Context, outcomes: &[Outcome]) {
    unsafe { raw::RedisModule_ReplyWithArray.unwrap()(ctx.ctx, outcomes.len() as _) };
    for outcome in outcomes {
        match outcome {
            Outcome::Applied => integer(ctx, 1),
            Outcome::Duplicate => integer(ctx, 0),
            Outcome::Failed(e) => error(ctx, e),
        }
    }
}

fn integer(ctx: &Context, n: i64) {
    unsafe { raw::RedisModule_ReplyWithLongLong.unwrap()(ctx.ctx, n) };
}
