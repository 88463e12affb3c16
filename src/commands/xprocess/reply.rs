//! Replies, written with the raw reply API so that per-entry errors can sit
//! inside the array; the same bytes serve RESP2 and RESP3 clients.

use crate::commands::xprocess::run::Done;
use redis_module::{raw, Context};
use std::ffi::CString;
use xprocess_core::errors::ReplyError;
use xprocess_core::process::Outcome;

pub fn error(ctx: &Context, err: &ReplyError) {
    // A NUL cannot cross the C API; printable() already keeps user bytes out.
    let text = CString::new(err.as_str().replace('\0', "?")).unwrap_or_default();
    unsafe { raw::RedisModule_ReplyWithError.unwrap()(ctx.ctx, text.as_ptr()) };
}

/// With IDS, one outcome per ID; with READ, an `[id, outcome]` pair per
/// entry taken (the client did not know the IDs).
pub fn done(ctx: &Context, done: &Done, read: bool) {
    let outcomes = &done.outcomes;
    array(ctx, outcomes.len());
    for (n, outcome) in outcomes.iter().enumerate() {
        if read {
            array(ctx, 2);
            let id = done.taken[n].text();
            // SAFETY: a live context; Redis copies the bytes.
            unsafe {
                raw::RedisModule_ReplyWithStringBuffer.unwrap()(
                    ctx.ctx,
                    id.as_bytes().as_ptr().cast(),
                    id.as_bytes().len(),
                )
            };
        }
        match outcome {
            Outcome::Applied => integer(ctx, 1),
            Outcome::Duplicate => integer(ctx, 0),
            Outcome::DeadLettered => integer(ctx, 2),
            Outcome::Failed(e) => error(ctx, e),
        }
    }
}

/// An empty array: READ found nothing to do.
pub fn nothing(ctx: &Context) {
    array(ctx, 0);
}

fn array(ctx: &Context, len: usize) {
    unsafe { raw::RedisModule_ReplyWithArray.unwrap()(ctx.ctx, len as _) };
}

fn integer(ctx: &Context, n: i64) {
    unsafe { raw::RedisModule_ReplyWithLongLong.unwrap()(ctx.ctx, n) };
}
