//! The index as bytes: the payload of its RDB value (and so of DUMP,
//! RESTORE and MIGRATE). Pure, so the decoder is fuzzed without a server.
//!
//! Encoding version 2, all integers little-endian u64 unless said:
//! ```text
//! stream-length, stream bytes, recorded, lost, range-count,
//! range-count x (start-ms, start-seq, end-ms, end-seq, gap),
//! keys-now, keys-window, keys-expired, keys-conflicts, key-count,
//! key-count x (key: 16 bytes, fingerprint: u32, expires: u32, ms, seq)
//! ```
//! The business keys are the live ones, sorted. Version 1 (written before
//! business keys existed) is the same without the key section.
//! The decoder trusts nothing: lengths must match the payload exactly, and
//! the ranges must keep the index's invariants (`Index::from_parts`).

use super::key_store::{KeyRecord, KeyStore};
use super::ranges::{Index, Range};
use crate::id::StreamId;

/// The RDB encoding version of the type (Redis passes it to the loader).
pub const ENCODING_VERSION: i32 = 2;

pub fn encode(index: &Index) -> Vec<u8> {
    let ranges = index.ranges();
    let mut out = Vec::with_capacity(32 + index.stream.len() + ranges.len() * Range::BYTES);
    put(&mut out, index.stream.len() as u64);
    out.extend_from_slice(&index.stream);
    put(&mut out, index.recorded);
    put(&mut out, index.lost);
    put(&mut out, ranges.len() as u64);
    for r in ranges {
        for n in r.words() {
            put(&mut out, n);
        }
    }
    let keys = &index.keys;
    let live = keys.live();
    out.reserve(40 + live.len() * KeyRecord::BYTES);
    for n in [
        u64::from(keys.now),
        keys.window,
        keys.expired,
        keys.conflicts,
    ] {
        put(&mut out, n);
    }
    put(&mut out, live.len() as u64);
    for r in &live {
        r.write(&mut out);
    }
    out
}

fn put(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

/// Decode a payload of encoding version `version` (1 or 2).
pub fn decode(bytes: &[u8], version: i32) -> Result<Index, &'static str> {
    let mut r = Reader(bytes);
    let stream_len = usize::try_from(r.u64()?).map_err(|_| TRUNCATED)?;
    let stream = r.take(stream_len)?.to_vec();
    let recorded = r.u64()?;
    let lost = r.u64()?;
    let count = usize::try_from(r.u64()?).map_err(|_| TRUNCATED)?;
    let exact = match version {
        1 => count.checked_mul(Range::BYTES) == Some(r.0.len()),
        2 => count
            .checked_mul(Range::BYTES)
            .is_some_and(|n| n <= r.0.len()),
        _ => return Err("unknown encoding version"),
    };
    if !exact {
        return Err("the range count does not match the payload");
    }
    let mut ranges = Vec::with_capacity(count);
    for _ in 0..count {
        ranges.push(r.range()?);
    }
    let mut index = Index::from_parts(stream, ranges, recorded, lost)?;
    if version == 2 {
        let keys = decode_keys(&mut r)?;
        if keys != KeyStore::default() {
            index.keys = keys.into();
        }
    }
    Ok(index)
}

fn decode_keys(r: &mut Reader) -> Result<KeyStore, &'static str> {
    let now = u32::try_from(r.u64()?).map_err(|_| "the key store's time is out of range")?;
    let (window, expired, conflicts) = (r.u64()?, r.u64()?, r.u64()?);
    let count = usize::try_from(r.u64()?).map_err(|_| TRUNCATED)?;
    if count.checked_mul(KeyRecord::BYTES) != Some(r.0.len()) {
        return Err("the key count does not match the payload");
    }
    let records = (0..count)
        .map(|_| r.record())
        .collect::<Result<Vec<_>, _>>()?;
    KeyStore::from_live(&records, now, window, expired, conflicts)
}

const TRUNCATED: &str = "the payload is truncated";

/// Little-endian values off the front of a payload (also XPROCESS.PATCH's).
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.0.len() {
            return Err(TRUNCATED);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(super) fn u64(&mut self) -> Result<u64, &'static str> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| TRUNCATED)?))
    }

    pub(super) fn range(&mut self) -> Result<Range, &'static str> {
        Ok(Range {
            start: self.id()?,
            end: self.id()?,
            gap: self.u64()?,
        })
    }

    pub(super) fn id(&mut self) -> Result<StreamId, &'static str> {
        Ok(StreamId {
            ms: self.u64()?,
            seq: self.u64()?,
        })
    }

    pub(super) fn record(&mut self) -> Result<KeyRecord, &'static str> {
        KeyRecord::read(self.take(KeyRecord::BYTES)?).ok_or(TRUNCATED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::ranges::tests::{id, MemStream};
    use crate::index::ranges::Touched;

    fn sample() -> Index {
        let mut s = MemStream((1..=50).map(id).collect());
        let mut index = Index::new(b"{shop}:payments");
        for ms in (1..=50).filter(|ms| ms % 7 != 0) {
            index.record(id(ms), &mut s, &mut Touched::default());
            let key = xxhash_rust::xxh3::xxh3_128(&ms.to_le_bytes());
            let rec = KeyRecord {
                key,
                fp: ms as u32,
                expires: 1_000 + ms as u32,
                id: id(ms),
            };
            index.keys.insert(rec, 1_000);
        }
        index.keys.conflicts = 3;
        index.keys.window = 60_000;
        index
    }

    /// Equal as saved: keys compare by their live records.
    fn same(a: &Index, b: &Index) -> bool {
        let strip = |i: &Index| {
            let mut i = i.clone();
            i.keys = Default::default();
            i
        };
        strip(a) == strip(b)
            && a.keys.live() == b.keys.live()
            && (a.keys.now, a.keys.window, a.keys.expired, a.keys.conflicts)
                == (b.keys.now, b.keys.window, b.keys.expired, b.keys.conflicts)
    }

    #[test]
    fn round_trips() {
        let index = sample();
        assert_eq!(index.keys.live().len(), 43);
        assert!(same(&decode(&encode(&index), 2).unwrap(), &index));
        let empty = Index::new(b"");
        assert_eq!(decode(&encode(&empty), 2).unwrap(), empty);
    }

    #[test]
    fn version_1_payloads_still_load() {
        let mut index = sample();
        index.keys = Default::default();
        let v2 = encode(&index);
        let v1 = &v2[..v2.len() - 40]; // without the (empty) key section
        assert_eq!(decode(v1, 1).unwrap(), index);
        assert!(decode(v1, 2).is_err(), "a v1 payload is not a v2 one");
        assert!(decode(&v2, 1).is_err());
        assert!(decode(&v2, 3).is_err());
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len], 2).is_err(), "truncated to {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, 2).is_err());
    }

    #[test]
    fn broken_invariants_and_huge_counts_are_refused() {
        let mut bytes = encode(&sample());
        let mut unsorted = encode(&sample());
        let first_key = unsorted.len() - 43 * KeyRecord::BYTES;
        unsorted.swap(first_key, first_key + KeyRecord::BYTES);
        unsorted.swap(first_key + 15, first_key + KeyRecord::BYTES + 15);
        assert!(decode(&unsorted, 2).is_err(), "business keys out of order");
        // The stream name is 15 bytes: the first range starts at 8+15+24.
        let first_start = 8 + 15 + 24;
        bytes[first_start..first_start + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&bytes, 2).is_err(), "start after end");
        let mut huge = encode(&Index::new(b"s"));
        let at = huge.len() - 8;
        huge[at..].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&huge, 2).is_err());
        let mut long_name = encode(&Index::new(b"s"));
        long_name[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&long_name, 2).is_err());
    }
}
