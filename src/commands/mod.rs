//! The commands, one file each: XPROCESS, and the dedupe stores' commands
//! (EXISTS, FORGET, INFO, and the internal PATCH). Each declares its
//! `COMMAND` (flags, ACL categories, arity, COMMAND DOCS) beside its handler.

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

use crate::redis::command::Command;

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
