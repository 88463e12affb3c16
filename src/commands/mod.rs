//! The commands, one file each: XPROCESS, a group's definition and its
//! processor (DEFINE, UNDEFINE, START, STOP, LIST), and the dedupe stores'
//! commands (EXISTS, FORGET, INFO, and the internal PATCH). Each declares
//! its `COMMAND` (flags, ACL categories, arity, COMMAND DOCS) beside its
//! handler; what the `key group` commands share is here.

pub mod define;
pub mod exists;
pub mod forget;
pub mod info;
pub mod list;
pub mod patch;
pub mod start;
pub mod stop;
pub mod undefine;
pub mod xprocess;

use crate::redis::command::{key, Arg, ArgKind, Begin, Command, KeySpec};
use crate::run::check_write_permission;
use crate::store::definition;
use redis_module::Context;
use xprocess_core::definition::Definition;
use xprocess_core::errors::{self, ReplyError};
use xprocess_core::key_name::derived_dedupe_key;

/// Every command of the module, registered in this order at load.
pub const ALL: [&Command; 10] = [
    &xprocess::COMMAND,
    &define::COMMAND,
    &undefine::COMMAND,
    &start::COMMAND,
    &stop::COMMAND,
    &list::COMMAND,
    &exists::COMMAND,
    &forget::COMMAND,
    &info::COMMAND,
    &patch::COMMAND,
];

/// The key spec of UNDEFINE, START and STOP: the stream, in whose slot the
/// group's definition lives.
const STREAM_KEY_SPEC: [KeySpec; 1] = [KeySpec {
    notes: c"the stream (its group's definition is kept in its slot)",
    flags: key::RW | key::UPDATE,
    begin: Begin::Index(1),
    unknown: false,
}];

/// Their first two arguments: `key group`.
const KEY: Arg = Arg::new(c"key", ArgKind::Key).key(0);
const GROUP: Arg = Arg::new(c"group", ArgKind::String);

/// The caller may write the group's derived dedupe key (where its
/// definition is kept; not in argv, so Redis' ACL check misses it).
fn check_definition_permission(
    ctx: &Context,
    stream: &[u8],
    group: &[u8],
) -> Result<(), ReplyError> {
    check_write_permission(ctx, &derived_dedupe_key(stream, group)?)
}

/// The group's definition, for a command that changes its processor.
fn defined(ctx: &Context, stream: &[u8], group: &[u8]) -> Result<Definition, ReplyError> {
    check_definition_permission(ctx, stream, group)?;
    definition::load(ctx, stream, group)?.ok_or(errors::NOT_DEFINED.into())
}
