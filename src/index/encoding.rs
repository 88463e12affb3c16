//! The index as bytes: the payload of its RDB value (and so of DUMP,
//! RESTORE and MIGRATE). Pure, so the decoder is fuzzed without a server.
//!
//! Encoding version 1, all integers little-endian u64:
//! ```text
//! stream-length, stream bytes, recorded, lost, range-count,
//! range-count x (start-ms, start-seq, end-ms, end-seq, gap)
//! ```
//! The decoder trusts nothing: lengths must match the payload exactly, and
//! the ranges must keep the index's invariants (`Index::from_parts`).

use super::ranges::{Index, Range};
use crate::parse::StreamId;

/// The RDB encoding version of the type (Redis passes it to the loader).
pub const ENCODING_VERSION: i32 = 1;

const RANGE_BYTES: usize = 5 * 8;

pub fn encode(index: &Index) -> Vec<u8> {
    let ranges = index.ranges();
    let mut out = Vec::with_capacity(32 + index.stream.len() + ranges.len() * RANGE_BYTES);
    put(&mut out, index.stream.len() as u64);
    out.extend_from_slice(&index.stream);
    put(&mut out, index.recorded);
    put(&mut out, index.lost);
    put(&mut out, ranges.len() as u64);
    for r in ranges {
        for n in [r.start.ms, r.start.seq, r.end.ms, r.end.seq, r.gap] {
            put(&mut out, n);
        }
    }
    out
}

fn put(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

pub fn decode(bytes: &[u8]) -> Result<Index, &'static str> {
    let mut r = Reader(bytes);
    let stream_len = usize::try_from(r.u64()?).map_err(|_| TRUNCATED)?;
    let stream = r.take(stream_len)?.to_vec();
    let recorded = r.u64()?;
    let lost = r.u64()?;
    let count = usize::try_from(r.u64()?).map_err(|_| TRUNCATED)?;
    if count.checked_mul(RANGE_BYTES) != Some(r.0.len()) {
        return Err("the range count does not match the payload");
    }
    let mut ranges = Vec::with_capacity(count);
    for _ in 0..count {
        let start = StreamId {
            ms: r.u64()?,
            seq: r.u64()?,
        };
        let end = StreamId {
            ms: r.u64()?,
            seq: r.u64()?,
        };
        ranges.push(Range {
            start,
            end,
            gap: r.u64()?,
        });
    }
    Index::from_parts(stream, ranges, recorded, lost)
}

const TRUNCATED: &str = "the payload is truncated";

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.0.len() {
            return Err(TRUNCATED);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| TRUNCATED)?))
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
        }
        index
    }

    #[test]
    fn round_trips() {
        let index = sample();
        assert_eq!(decode(&encode(&index)).unwrap(), index);
        let empty = Index::new(b"");
        assert_eq!(decode(&encode(&empty)).unwrap(), empty);
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn broken_invariants_and_huge_counts_are_refused() {
        let mut bytes = encode(&sample());
        // The stream name is 15 bytes: the first range starts at 8+15+24.
        let first_start = 8 + 15 + 24;
        bytes[first_start..first_start + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&bytes).is_err(), "start after end");
        let mut huge = encode(&Index::new(b"s"));
        let at = huge.len() - 8;
        huge[at..].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
        let mut long_name = encode(&Index::new(b"s"));
        long_name[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&long_name).is_err());
    }
}
