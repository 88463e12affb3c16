//! The Redis layer: the one place that calls the raw module API (apart from
//! the index type's callbacks in `index::data_type`).

pub mod call;
pub mod command_info;
pub mod replicate;
