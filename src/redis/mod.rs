//! The Redis layer: the one place that calls the raw module API (apart from
//! the index type's callbacks in `index::data_type`).

pub mod acl;
pub mod block;
pub mod call;
pub mod clock;
pub mod command;
pub mod events;
pub mod hash;
pub mod info;
pub mod key;
pub mod replicate;
pub mod reply;
pub mod stream;
pub mod timer;
