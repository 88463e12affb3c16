//! The Redis implementation of the core's traits: the backend of one call,
//! the group reads of READ, hash field reads and writes, Redis Cluster.

pub mod backend;
pub mod cluster;
pub mod delete;
pub mod group;
pub mod hash_reads;
pub mod hash_writes;
