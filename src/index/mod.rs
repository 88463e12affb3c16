//! The dedupe index as a Redis data type: its structures live in the core
//! (`xprocess_core::index`); here are the type and its callbacks (RDB, AOF
//! rewrite, digest, memory usage, copy, defragmentation, free).

pub mod data_type;
