//! Dedupe stores: where processed entry IDs are remembered. `store` is the
//! trait `process` works against; one file per kind of store.

mod index;
mod memory;
mod set;
mod store;

pub use index::IndexStore;
pub use memory::MemoryStore;
pub use set::SetStore;
pub use store::DedupeStore;
