//! The dedupe index: the default dedupe store, a module data type that
//! remembers processed entry IDs as ranges (see `ranges`), so memory follows
//! the number of holes, not the number of entries.
//!
//! `ranges` is the structure and its logic (pure), `encoding` its bytes in
//! RDB/DUMP payloads (pure), `patch` the XPROCESS.PATCH command that carries
//! its changes to replicas and the AOF, `data_type` the Redis type and its
//! callbacks, `commands` XPROCESS.EXISTS, FORGET, INFO and PATCH, `keys` the
//! business keys remembered for a window (pure).

pub mod commands;
pub mod data_type;
pub mod replicate;
