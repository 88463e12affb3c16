//! XPROCESS.UNDEFINE: remove a group's definition (and its processor).

use super::{check_definition_permission, GROUP, KEY, STREAM_KEY_SPEC};
use crate::redis::command::{entry_point, Command, Docs};
use crate::redis::reply;
use crate::store::definition;
use redis_module::Context;
use xprocess_core::errors::{self, ReplyError};

entry_point!(entry, undefine);

pub const COMMAND: Command = Command {
    name: c"xprocess.undefine",
    entry,
    flags: c"write",
    acl: c"write stream",
    arity: 3,
    docs: Docs {
        summary: c"Removes a group's definition and stops its processor; replies 1 if it had one, 0 if not",
        complexity: c"O(1)",
        since: c"0.3.0",
        key_specs: &STREAM_KEY_SPEC,
        args: &[KEY, GROUP],
    },
};

/// XPROCESS.UNDEFINE key group
pub fn undefine(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    let [_, stream, group] = argv else {
        return Err(errors::SYNTAX.into());
    };
    check_definition_permission(ctx, stream, group)?;
    let had = definition::save(ctx, stream, group, None)?;
    reply::integer(ctx, i64::from(had));
    Ok(())
}
