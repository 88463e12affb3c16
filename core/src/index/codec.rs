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
//! then the definition section (version 3):
//! ```text
//! defined (0 or 1), if 1: group-length, group, arg-count,
//! arg-count x (arg-length, arg), has-processor (0 or 1), if 1:
//! consumer-length, consumer, count, has-claim (0 or 1), claim, running (0 or 1)
//! ```
//! The business keys are the live ones, sorted. Version 2 is the same
//! without the definition section, version 1 (written before business keys
//! existed) without the key section either.
//! The decoder trusts nothing: lengths must match the payload exactly, and
//! the ranges must keep the index's invariants (`Index::from_parts`).

use super::key_store::{KeyRecord, KeyStore};
use super::ranges::{Index, Range};
use crate::definition::{Definition, Processor};
use crate::id::StreamId;

/// The RDB encoding version of the type (Redis passes it to the loader).
pub const ENCODING_VERSION: i32 = 3;

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
    write_definition(index.definition.as_deref(), &mut out);
    out
}

/// The definition section as bytes (DEBUG DIGEST adds them).
pub fn definition_bytes(definition: Option<&Definition>) -> Vec<u8> {
    let mut out = Vec::new();
    write_definition(definition, &mut out);
    out
}

/// The definition section (also the payload of a definition's patch).
pub(super) fn write_definition(definition: Option<&Definition>, out: &mut Vec<u8>) {
    let Some(d) = definition else {
        put(out, 0);
        return;
    };
    put(out, 1);
    put_bytes(out, &d.group);
    put(out, d.args.len() as u64);
    for arg in &d.args {
        put_bytes(out, arg);
    }
    let Some(p) = &d.processor else {
        put(out, 0);
        return;
    };
    put(out, 1);
    put_bytes(out, &p.consumer);
    put(out, p.count);
    put(out, u64::from(p.claim.is_some()));
    put(out, p.claim.unwrap_or(0));
    put(out, u64::from(p.running));
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

/// Decode a payload of encoding version `version` (1 to 3).
pub fn decode(bytes: &[u8], version: i32) -> Result<Index, &'static str> {
    let mut r = Reader(bytes);
    let stream_len = usize::try_from(r.u64()?).map_err(|_| TRUNCATED)?;
    let stream = r.take(stream_len)?.to_vec();
    let recorded = r.u64()?;
    let lost = r.u64()?;
    let count = usize::try_from(r.u64()?).map_err(|_| TRUNCATED)?;
    let exact = match version {
        1 => count.checked_mul(Range::BYTES) == Some(r.0.len()),
        2 | 3 => count
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
    if version >= 2 {
        let keys = decode_keys(&mut r)?;
        if keys != KeyStore::default() {
            index.keys = keys.into();
        }
    }
    if version >= 3 {
        index.definition = read_definition(&mut r, &index.stream)?.map(Box::new);
    }
    match r.0.is_empty() {
        true => Ok(index),
        false => Err("the payload is longer than its contents"),
    }
}

/// A definition section; the definition must parse as XPROCESS.DEFINE's
/// arguments for `stream` would.
pub(super) fn read_definition(
    r: &mut Reader,
    stream: &[u8],
) -> Result<Option<Definition>, &'static str> {
    if !r.flag()? {
        return Ok(None);
    }
    let group = r.bytes()?.to_vec();
    let count = r.u64()?;
    if count.checked_mul(8).is_none_or(|n| n > r.0.len() as u64) {
        return Err(TRUNCATED);
    }
    let args = (0..count)
        .map(|_| r.bytes().map(<[u8]>::to_vec))
        .collect::<Result<_, _>>()?;
    let processor = match r.flag()? {
        false => None,
        true => Some(Processor {
            consumer: r.bytes()?.to_vec(),
            count: r.u64()?,
            claim: match (r.flag()?, r.u64()?) {
                (true, claim) => Some(claim),
                (false, 0) => None,
                (false, _) => return Err("a claim without its flag"),
            },
            running: r.flag()?,
        }),
    };
    let definition = Definition {
        group,
        args,
        processor,
    };
    if definition.request(stream).is_err() {
        return Err("the definition does not parse");
    }
    // As XPROCESS.START takes them: a positive count, integers of Redis.
    let max = i64::MAX as u64;
    if let Some(p) = &definition.processor {
        if p.count == 0 || p.count > max || p.claim.is_some_and(|ms| ms > max) {
            return Err("the processor's count or claim is out of range");
        }
    }
    Ok(Some(definition))
}

fn decode_keys(r: &mut Reader) -> Result<KeyStore, &'static str> {
    let now = u32::try_from(r.u64()?).map_err(|_| "the key store's time is out of range")?;
    let (window, expired, conflicts) = (r.u64()?, r.u64()?, r.u64()?);
    let count = usize::try_from(r.u64()?).map_err(|_| TRUNCATED)?;
    if count
        .checked_mul(KeyRecord::BYTES)
        .is_none_or(|n| n > r.0.len())
    {
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

    /// A length-prefixed byte string.
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], &'static str> {
        let len = usize::try_from(self.u64()?).map_err(|_| TRUNCATED)?;
        self.take(len)
    }

    /// 0 or 1.
    pub(super) fn flag(&mut self) -> Result<bool, &'static str> {
        match self.u64()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("a flag is neither 0 nor 1"),
        }
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
        assert!(same(&decode(&encode(&index), 3).unwrap(), &index));
        let empty = Index::new(b"");
        assert_eq!(decode(&encode(&empty), 3).unwrap(), empty);
        let defined = with_definition(sample());
        assert_eq!(
            decode(&encode(&defined), 3).unwrap().definition,
            defined.definition
        );
    }

    fn with_definition(mut index: Index) -> Index {
        let args = [
            "DEADLETTER",
            "{shop}:dl",
            "AFTER",
            "3",
            "SADD",
            "{shop}:s",
            "$id",
        ];
        index.definition = Some(Box::new(Definition {
            group: b"g".to_vec(),
            args: args.map(|a| a.as_bytes().to_vec()).to_vec(),
            processor: Some(Processor {
                consumer: b"c".to_vec(),
                count: 50,
                claim: Some(1000),
                running: true,
            }),
        }));
        index
    }

    #[test]
    fn versions_1_and_2_still_load() {
        let mut index = sample();
        let v3 = encode(&index);
        let v2 = &v3[..v3.len() - 8]; // without the (empty) definition section
        assert!(same(&decode(v2, 2).unwrap(), &index));
        index.keys = Default::default();
        let v3 = encode(&index);
        let v1 = &v3[..v3.len() - 48]; // without the (empty) key section
        assert_eq!(decode(v1, 1).unwrap(), index);
        assert!(decode(v1, 2).is_err(), "a v1 payload is not a v2 one");
        assert!(decode(&v3, 1).is_err());
        assert!(decode(&v3, 2).is_err());
        assert!(decode(&v3, 4).is_err());
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        for index in [sample(), with_definition(sample())] {
            let bytes = encode(&index);
            for len in 0..bytes.len() {
                assert!(decode(&bytes[..len], 3).is_err(), "truncated to {len}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode(&longer, 3).is_err());
        }
    }

    #[test]
    fn a_definition_that_does_not_parse_is_refused() {
        let mut index = with_definition(Index::new(b"s"));
        let def = index.definition.as_mut().unwrap();
        def.args.truncate(4); // DEADLETTER without an effect
        assert!(decode(&encode(&index), 3).is_err());
        let mut index = with_definition(Index::new(b"s"));
        index
            .definition
            .as_mut()
            .unwrap()
            .processor
            .as_mut()
            .unwrap()
            .count = 0;
        assert!(decode(&encode(&index), 3).is_err());
        let mut bytes = encode(&with_definition(Index::new(b"s")));
        let running = bytes.len() - 8;
        bytes[running] = 2;
        assert!(decode(&bytes, 3).is_err(), "a flag of 2");
        let mut index = with_definition(Index::new(b"s"));
        let claim_of = |index: &mut Index, claim| {
            let definition = index.definition.as_mut().unwrap();
            definition.processor.as_mut().unwrap().claim = claim;
        };
        claim_of(&mut index, Some(1 << 63));
        assert!(decode(&encode(&index), 3).is_err(), "a claim START refuses");
        claim_of(&mut index, None);
        let mut bytes = encode(&index);
        let claim = bytes.len() - 16;
        bytes[claim] = 7;
        assert!(decode(&bytes, 3).is_err(), "a claim without its flag");
    }

    #[test]
    fn broken_invariants_and_huge_counts_are_refused() {
        let mut bytes = encode(&sample());
        let mut unsorted = encode(&sample());
        let first_key = unsorted.len() - 8 - 43 * KeyRecord::BYTES;
        unsorted.swap(first_key, first_key + KeyRecord::BYTES);
        unsorted.swap(first_key + 15, first_key + KeyRecord::BYTES + 15);
        assert!(decode(&unsorted, 3).is_err(), "business keys out of order");
        // The stream name is 15 bytes: the first range starts at 8+15+24.
        let first_start = 8 + 15 + 24;
        bytes[first_start..first_start + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&bytes, 3).is_err(), "start after end");
        let mut huge = encode(&Index::new(b"s"));
        let at = huge.len() - 16; // the key count
        huge[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&huge, 3).is_err());
        let mut long_name = encode(&Index::new(b"s"));
        long_name[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&long_name, 3).is_err());
    }
}
