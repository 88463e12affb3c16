//! HINCRBY results of one call, written once per field when the call ends.
//!
//! A batch often increments the same field many times (one counter per
//! customer, many payments each). Planning already computes every result, so
//! the call keeps the latest value of each field here, answers later reads
//! from it, and writes each field once at the end: one hash lookup and one
//! replicated `HSET key field value ...` per key instead of one per entry.
//! The whole call is atomic, so nobody can observe the difference.

pub use crate::redis::hash::Pending;
use xprocess_core::fast_map::FastMap;

/// One key's pending fields.
pub type KeyWrites = (Vec<u8>, Vec<(Vec<u8>, Pending)>);

/// One key's pending writes: field -> pending write.
type FieldWrites = FastMap<Vec<u8>, Pending>;

/// Keys found by comparing names; past this many, by an index.
const FEW_KEYS: usize = 8;

/// A call's effects write few hashes (often one) and many fields of each:
/// keys are found by comparing names (an index once there are more than
/// `FEW_KEYS`, so that a templated key per entry costs no scan), fields by
/// hashing.
#[derive(Default)]
pub struct HashWrites {
    /// key, and its field -> pending write
    keys: Vec<(Vec<u8>, FieldWrites)>,
    /// key -> position in `keys`, kept while `keys` holds more than `FEW_KEYS`.
    index: FastMap<Vec<u8>, usize>,
    /// Entries of the call still to come, at most: room for that many
    /// fields is made when the call's first key is written (a batch often
    /// writes a new field of one hash per entry; calls that write many
    /// keys, a templated one per entry, grow each as needed).
    pub room: usize,
}

impl HashWrites {
    fn of(&self, key: &[u8]) -> Option<&FieldWrites> {
        Some(&self.keys[self.position(key)?].1)
    }

    fn position(&self, key: &[u8]) -> Option<usize> {
        match self.keys.len() > FEW_KEYS {
            true => self.index.get(key).copied(),
            false => self.keys.iter().position(|(k, _)| k == key),
        }
    }

    /// Make `index` match `keys` again (after a key was added past
    /// `FEW_KEYS`, or removed).
    fn reindex(&mut self) {
        self.index.clear();
        if self.keys.len() > FEW_KEYS {
            let positions = self
                .keys
                .iter()
                .enumerate()
                .map(|(n, (k, _))| (k.clone(), n));
            self.index.extend(positions);
        }
    }

    pub fn get(&self, key: &[u8], field: &[u8]) -> Option<i64> {
        Some(self.of(key)?.get(field)?.0)
    }

    /// The fields of `key` with pending writes.
    pub fn fields(&self, key: &[u8]) -> impl Iterator<Item = &[u8]> {
        self.of(key)
            .into_iter()
            .flat_map(|f| f.keys().map(Vec::as_slice))
    }

    /// Whether `key` has pending writes (so it is, or will be, a hash).
    pub fn touches(&self, key: &[u8]) -> bool {
        self.of(key).is_some()
    }

    pub fn set(&mut self, key: &[u8], field: &[u8], value: i64) {
        let at = match self.position(key) {
            Some(at) => at,
            None => {
                let room = if self.keys.is_empty() { self.room } else { 0 };
                let fields = FastMap::with_capacity_and_hasher(room, Default::default());
                self.keys.push((key.to_vec(), fields));
                let at = self.keys.len() - 1;
                match at {
                    FEW_KEYS => self.reindex(),
                    _ if at > FEW_KEYS => {
                        self.index.insert(key.to_vec(), at);
                    }
                    _ => {}
                }
                at
            }
        };
        let fields = &mut self.keys[at].1;
        match fields.get_mut(field) {
            Some(slot) => *slot = (value, slot.1 + 1),
            None => {
                fields.insert(field.to_vec(), (value, 1));
            }
        }
    }

    /// Remove and return the pending write of one field.
    pub fn take(&mut self, key: &[u8], field: &[u8]) -> Option<Pending> {
        let at = self.position(key)?;
        let fields = &mut self.keys[at].1;
        let pending = fields.remove(field);
        if fields.is_empty() {
            self.keys.swap_remove(at);
            self.reindex();
        }
        pending
    }

    /// Remove and return the pending writes of one key, fields sorted.
    pub fn take_key(&mut self, key: &[u8]) -> Option<Vec<(Vec<u8>, Pending)>> {
        let at = self.position(key)?;
        let mut fields: Vec<_> = self.keys.swap_remove(at).1.into_iter().collect();
        self.reindex();
        fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Some(fields)
    }

    /// All pending writes grouped by key, keys and fields sorted (so the
    /// replicated commands do not depend on hash order).
    pub fn drain_by_key(&mut self) -> Vec<KeyWrites> {
        self.index.clear();
        let mut out: Vec<_> = self
            .keys
            .drain(..)
            .map(|(key, fields)| {
                let mut fields: Vec<_> = fields.into_iter().collect();
                fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                (key, fields)
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_value_and_counts_writes() {
        let mut w = HashWrites::default();
        w.set(b"h", b"a", 1);
        w.set(b"h", b"a", 5);
        w.set(b"h", b"b", 2);
        w.set(b"g", b"a", 3);
        assert_eq!(w.get(b"h", b"a"), Some(5));
        assert!(w.touches(b"g") && !w.touches(b"x"));
        assert_eq!(w.take(b"g", b"a"), Some((3, 1)));
        assert!(!w.touches(b"g"));
        let drained = w.drain_by_key();
        assert_eq!(
            drained,
            vec![(
                b"h".to_vec(),
                vec![(b"a".to_vec(), (5, 2)), (b"b".to_vec(), (2, 1))]
            )]
        );
        assert!(!w.touches(b"h"));
    }

    #[test]
    fn many_keys_are_found_through_the_index() {
        let mut w = HashWrites::default();
        let key = |n: usize| format!("k{n}").into_bytes();
        for n in 0..20 {
            w.set(&key(n), b"f", n as i64);
        }
        assert!((0..20).all(|n| w.get(&key(n), b"f") == Some(n as i64)));
        assert_eq!(w.take(&key(3), b"f"), Some((3, 1)));
        assert!(!w.touches(&key(3)));
        assert_eq!(w.take_key(&key(0)).map(|f| f.len()), Some(1));
        w.set(&key(3), b"f", 30);
        assert!((1..20).all(|n| w.touches(&key(n))) && !w.touches(&key(0)));
        assert_eq!(w.get(&key(19), b"f"), Some(19));
        assert_eq!(w.get(&key(3), b"f"), Some(30));
        assert_eq!(w.drain_by_key().len(), 19);
        assert!(!w.touches(&key(5)));
    }
}
