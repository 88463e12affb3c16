//! Hash maps keyed by stream IDs and key names, hashed with xxh3.
//!
//! xxh3's streaming `Hasher` is slow on the few bytes a key has (a stream ID
//! is two u64s), so this hasher gathers the bytes first and hashes
//! them in one `xxh3_64` call, switching to streaming only for long keys.
//! Keys come from the caller; a crafted collision can only slow one call.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Xxh3Hasher>>;
pub type FastSet<T> = HashSet<T, BuildHasherDefault<Xxh3Hasher>>;

/// Bytes gathered before falling back to streaming.
const INLINE: usize = 64;

pub struct Xxh3Hasher {
    buf: [u8; INLINE],
    len: usize,
    stream: Option<Box<Xxh3>>,
}

impl Default for Xxh3Hasher {
    fn default() -> Self {
        Xxh3Hasher {
            buf: [0; INLINE],
            len: 0,
            stream: None,
        }
    }
}

impl Hasher for Xxh3Hasher {
    fn write(&mut self, bytes: &[u8]) {
        if let Some(stream) = &mut self.stream {
            return stream.update(bytes);
        }
        if self.len + bytes.len() <= INLINE {
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
            return;
        }
        let mut stream = Box::new(Xxh3::new());
        stream.update(&self.buf[..self.len]);
        stream.update(bytes);
        self.stream = Some(stream);
    }

    fn finish(&self) -> u64 {
        match &self.stream {
            Some(stream) => stream.digest(),
            None => xxh3_64(&self.buf[..self.len]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn fingerprint(value: impl Hash) -> u64 {
        BuildHasherDefault::<Xxh3Hasher>::default().hash_one(value)
    }

    #[test]
    fn same_bytes_same_fingerprint_however_written() {
        let long = vec![7u8; 200];
        let mut split = Xxh3Hasher::default();
        split.write(&long[..10]);
        split.write(&long[10..]);
        assert_eq!(split.finish(), xxh3_64(&long));
        let mut short = Xxh3Hasher::default();
        short.write(b"ab");
        short.write(b"c");
        assert_eq!(short.finish(), xxh3_64(b"abc"));
        assert_ne!(fingerprint((1u64, 2u64)), fingerprint((2u64, 1u64)));
    }
}
