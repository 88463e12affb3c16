//! XPROCESS.STOP: stop a group's standing processor (its settings stay).

use crate::commands::start::STREAM_KEY_SPEC;
use crate::redis::command::{entry_point, Arg, ArgKind, Command, Docs};
use crate::redis::reply;
use crate::run::check_write_permission;
use crate::store::definition;
use redis_module::Context;
use xprocess_core::errors::{self, ReplyError};
use xprocess_core::key_name::derived_dedupe_key;

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
        args: &[
            Arg::new(c"key", ArgKind::Key).key(0),
            Arg::new(c"group", ArgKind::String),
        ],
    },
};

/// XPROCESS.STOP key group
pub fn stop(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    let [_, stream, group] = argv else {
        return Err(errors::SYNTAX.into());
    };
    check_write_permission(ctx, &derived_dedupe_key(stream, group)?)?;
    let mut defined = definition::load(ctx, stream, group)?.ok_or(errors::NOT_DEFINED)?;
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
