//! The commands: XPROCESS, and the commands of the dedupe index.

pub mod index;
pub mod xprocess;
