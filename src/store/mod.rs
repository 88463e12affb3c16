//! Dedupe stores, the implementations of the core's `DedupeStore`: a plain
//! Redis Set, or the index; `key` opens a dedupe key and tells what it holds.

pub mod definition;
mod index;
mod key;
mod set;

pub use index::IndexStore;
pub use key::{DedupeKey, Holds};
pub use set::SetStore;
