//! XPROCESS.UNDEFINE: remove a group's definition (and its processor).

use crate::redis::command::{entry_point, key, Arg, ArgKind, Begin, Command, Docs, KeySpec};
use crate::redis::reply;
use crate::run::check_write_permission;
use crate::store::definition;
use redis_module::Context;
use xprocess_core::errors::{self, ReplyError};
use xprocess_core::key_name::derived_dedupe_key;

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
        key_specs: &[KeySpec {
            notes: c"the stream (the definition is kept in its slot)",
            flags: key::RW | key::UPDATE,
            begin: Begin::Index(1),
            unknown: false,
        }],
        args: &[
            Arg::new(c"key", ArgKind::Key).key(0),
            Arg::new(c"group", ArgKind::String),
        ],
    },
};

/// XPROCESS.UNDEFINE key group
pub fn undefine(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    let [_, stream, group] = argv else {
        return Err(errors::SYNTAX.into());
    };
    check_write_permission(ctx, &derived_dedupe_key(stream, group)?)?;
    let had = definition::save(ctx, stream, group, None)?;
    reply::integer(ctx, i64::from(had));
    Ok(())
}
