//! XPROCESS: parse the call (in the core), run it against Redis (`run`),
//! reply (`reply`), or wait for entries (`block`).

pub mod block;
pub mod reply;
pub mod run;

use redis_module::Context;
use xprocess_core::errors::ReplyError;
use xprocess_core::parse;

/// XPROCESS key group [CONSUMER consumer] [DEDUPE dedupe-key]
///          [STORE INDEX | SET] [TTL milliseconds] [KEY template ...]
///          [DEADLETTER dead-letter-key AFTER deliveries]
///          effect [effect ...]
///          (IDS numids id [id ...] | READ [COUNT n] [CLAIM ms] [BLOCK ms])
pub fn xprocess(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    if ctx.is_keys_position_request() {
        report_keys(ctx, argv);
        return Ok(());
    }
    let req = parse::parse(argv)?;
    let done = run::run(ctx, &req)?;
    match req.read.and_then(|read| read.block) {
        Some(timeout) if done.outcomes.is_empty() && block::can_block(ctx) => {
            block::wait(ctx, req.stream, timeout)
        }
        _ => reply::done(ctx, &done, req.read.is_some()),
    }
    Ok(())
}

/// getkeys-api: the stream, the DEDUPE key and every effect target.
fn report_keys(ctx: &Context, argv: &[&[u8]]) {
    let positions = match parse::parse(argv) {
        Ok(req) => req.key_positions,
        Err(_) => vec![1], // the call will fail; route it by its stream
    };
    for pos in positions {
        ctx.key_at_pos(pos as i32);
    }
}
