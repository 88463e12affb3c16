//! XPROCESS.STOP: stop a group's standing processor (its settings stay).

use super::{defined, GROUP, KEY, STREAM_KEY_SPEC};
use crate::redis::command::{entry_point, Command, Docs};
use crate::redis::reply;
use crate::store::definition;
use redis_module::Context;
use xprocess_core::errors::{self, ReplyError};

entry_point!(entry, stop);

pub const COMMAND: Command = Command {
    name: c"xprocess.stop",
    entry,
    flags: c"write",
    acl: c"write stream",
    arity: 3,
    docs: Docs {
        summary: c"Stops a group's standing processor; replies 1 if it was running, 0 if not",
        complexity: c"O(1)",
        since: c"0.3.0",
        key_specs: &STREAM_KEY_SPEC,
        args: &[KEY, GROUP],
    },
};

/// XPROCESS.STOP key group
pub fn stop(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    let [_, stream, group] = argv else {
        return Err(errors::SYNTAX.into());
    };
    let mut defined = defined(ctx, stream, group)?;
    let running = defined.processor.as_mut().filter(|p| p.running);
    let Some(processor) = running else {
        reply::integer(ctx, 0);
        return Ok(());
    };
    processor.running = false;
    definition::save(ctx, stream, group, Some(defined))?;
    reply::integer(ctx, 1);
    Ok(())
}
