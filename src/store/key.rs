//! A dedupe key: what it holds (nothing, a Set, an index, something else)
//! and the index in it. Closed on drop.

use crate::index::data_type::{index_at, set_index, INDEX_TYPE};
use crate::redis::key::{Key, KeyType};
use redis_module::Context;
use xprocess_core::index::ranges::Index;
use xprocess_core::request::StoreKind;

/// What a dedupe key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    Missing,
    Store(StoreKind),
    Other,
}

pub struct DedupeKey(Key);

impl DedupeKey {
    /// Open `name` for reading, or for writing too (see `Key`).
    pub fn open(ctx: &Context, name: &[u8], write: bool) -> DedupeKey {
        DedupeKey(Key::open(ctx, name, write))
    }

    /// Close the key and open it again for writing.
    pub fn reopen_for_writing(&mut self, ctx: &Context) {
        self.0.reopen_for_writing(ctx);
    }

    pub fn holds(&self) -> Holds {
        match self.0.key_type() {
            KeyType::Empty => Holds::Missing,
            KeyType::Set => Holds::Store(StoreKind::Set),
            KeyType::Module if self.0.holds(&INDEX_TYPE) => Holds::Store(StoreKind::Index),
            _ => Holds::Other,
        }
    }

    /// The index the key holds, if it holds one.
    pub fn index(&mut self) -> Option<&mut Index> {
        index_at(&mut self.0)
    }

    /// Store a new index at the key, which is open for writing and empty.
    pub fn create_index(&mut self, stream: &[u8]) -> bool {
        set_index(&mut self.0, Index::new(stream))
    }
}
