//! Dedupe stores: where processed entry IDs are remembered. `store` is the
//! trait `process` works against; one file per kind of store; `key` opens a
//! dedupe key and tells what it holds.

mod index;
mod key;
mod set;

pub use index::IndexStore;
pub use key::{DedupeKey, Holds};
pub use set::SetStore;
