//! `XPROCESS.PATCH`, an index change as a command: how every change of an
//! index reaches replicas and the AOF (inside the MULTI/EXEC of the call that
//! made it), and how an AOF rewrite writes a whole index.
//!
//! ```text
//! XPROCESS.PATCH key stream payload
//! ```
//! Replaces the ranges within `lo..=hi` with the given ones and sets the
//! counters: explicit values only, so replaying it needs no stream and gives
//! the same index on every server. The payload is binary (a version byte,
//! then little-endian u64s: recorded, lost, lo-ms, lo-seq, hi-ms, hi-seq,
//! then start-ms, start-seq, end-ms, end-seq, gap per range): one argument
//! instead of three per range keeps replicating a call cheap.
//!
//! A change that records business keys (`KEY`) uses payload version 2: a
//! flags byte (1: ranges, 2: keys), then, if flagged, the ranges as in
//! version 1 preceded by their count, then the keys: now (Unix seconds),
//! the window (ms), the conflicts counter, an amount added to the expired counter, the count,
//! and per key its xxh3-128 (16 bytes), fingerprint and expiry (4 each), the
//! entry's ms and seq. Version 1 stays what a change without keys sends.
//!
//! A change of the group's definition (XPROCESS.DEFINE, UNDEFINE, START,
//! STOP, or a processor stopping by itself) is payload version 3: the
//! definition section of the RDB encoding (`codec`), which replaces the
//! index's definition whole (defined 0 removes it).

use super::codec::{read_definition, write_definition, Reader};
use super::key_store::{KeyPatch, KeyRecord};
use super::ranges::{Index, Patch, Range};
use crate::definition::Definition;
use crate::id::StreamId;

pub const COMMAND: &str = "XPROCESS.PATCH";

/// The payload's format version (its first byte): ranges only.
const VERSION: u8 = 1;
/// Ranges and/or business keys.
const VERSION_KEYS: u8 = 2;
/// The group's definition.
const VERSION_DEFINITION: u8 = 3;
const HEADER: usize = 1 + 6 * 8;
const HAS_RANGES: u8 = 1;
const HAS_KEYS: u8 = 2;

/// One change of an index: its ranges, its business keys, or both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub ranges: Option<Patch>,
    pub keys: Option<KeyPatch>,
    /// The definition the index now holds (`Some(None)`: none). A change of
    /// the definition changes nothing else.
    pub definition: Option<Option<Definition>>,
}

/// Ranges per command when an AOF rewrite writes a whole index.
const AOF_CHUNK: usize = 1024;

/// The arguments after the command name.
pub fn to_args(key: &[u8], stream: &[u8], change: &Change) -> [Vec<u8>; 3] {
    let mut payload = Vec::new();
    write_payload(change, &mut payload);
    [key.to_vec(), stream.to_vec(), payload]
}

/// The binary payload of `change`, appended to `out`.
pub fn write_payload(change: &Change, out: &mut Vec<u8>) {
    let words = |out: &mut Vec<u8>, ns: &[u64]| {
        for n in ns {
            out.extend_from_slice(&n.to_le_bytes());
        }
    };
    let ranges = |out: &mut Vec<u8>, patch: &Patch| {
        let (lo, hi) = (patch.lo, patch.hi);
        words(
            out,
            &[patch.recorded, patch.lost, lo.ms, lo.seq, hi.ms, hi.seq],
        );
        for r in &patch.ranges {
            words(out, &r.words());
        }
    };
    if let Some(definition) = &change.definition {
        out.push(VERSION_DEFINITION);
        write_definition(definition.as_ref(), out);
        return;
    }
    let Some(keys) = &change.keys else {
        out.push(VERSION);
        if let Some(patch) = &change.ranges {
            out.reserve(HEADER + Range::BYTES * patch.ranges.len());
            ranges(out, patch);
        }
        return;
    };
    out.push(VERSION_KEYS);
    out.push(HAS_KEYS | change.ranges.as_ref().map_or(0, |_| HAS_RANGES));
    if let Some(patch) = &change.ranges {
        words(out, &[patch.ranges.len() as u64]);
        ranges(out, patch);
    }
    let n = keys.records.len() as u64;
    let header = [u64::from(keys.now), keys.window, keys.conflicts];
    words(out, &header);
    words(out, &[keys.expired_add, n]);
    for r in &keys.records {
        r.write(out);
    }
}

/// Apply a change to `index` (on a replica, or from the AOF): refused, and
/// nothing changed, if either part is invalid.
pub fn apply(index: &mut Index, change: &Change) -> Result<(), &'static str> {
    if let Some(keys) = &change.keys {
        keys.check()?;
    }
    if let Some(ranges) = &change.ranges {
        index.apply(ranges)?;
    }
    if let Some(keys) = &change.keys {
        index.keys.apply(keys);
    }
    if let Some(definition) = &change.definition {
        index.definition = definition.clone().map(Box::new);
    }
    Ok(())
}

/// A parsed `XPROCESS.PATCH` (arguments after the command name).
pub struct Parsed<'a> {
    pub key: &'a [u8],
    pub stream: &'a [u8],
    pub change: Change,
}

const BAD: &str = "ERR invalid XPROCESS.PATCH arguments";

pub fn parse<'a>(args: &[&'a [u8]]) -> Result<Parsed<'a>, &'static str> {
    let [key, stream, payload] = args else {
        return Err(BAD);
    };
    let change = parse_payload(payload, stream).map_err(|_| BAD)?;
    Ok(Parsed {
        key,
        stream,
        change,
    })
}

fn parse_payload(payload: &[u8], stream: &[u8]) -> Result<Change, &'static str> {
    match payload.split_first() {
        Some((&VERSION, body)) => {
            let count = body.len().checked_sub(HEADER - 1).ok_or(BAD)?;
            if !count.is_multiple_of(Range::BYTES) {
                return Err(BAD);
            }
            let ranges = Some(read_ranges(&mut Reader(body), count / Range::BYTES)?);
            Ok(Change {
                ranges,
                ..Change::default()
            })
        }
        Some((&VERSION_DEFINITION, body)) => {
            let mut r = Reader(body);
            let definition = Some(read_definition(&mut r, stream)?);
            match r.0.is_empty() {
                true => Ok(Change {
                    definition,
                    ..Change::default()
                }),
                false => Err(BAD),
            }
        }
        Some((&VERSION_KEYS, [flags, body @ ..])) => parse_v2(*flags, body),
        _ => Err(BAD),
    }
}

fn parse_v2(flags: u8, body: &[u8]) -> Result<Change, &'static str> {
    if flags & !(HAS_RANGES | HAS_KEYS) != 0 || flags & HAS_KEYS == 0 {
        return Err(BAD);
    }
    let mut r = Reader(body);
    let mut change = Change::default();
    if flags & HAS_RANGES != 0 {
        let count = usize::try_from(r.u64()?).map_err(|_| BAD)?;
        change.ranges = Some(read_ranges(&mut r, count)?);
    }
    let now = u32::try_from(r.u64()?).map_err(|_| BAD)?;
    let (window, conflicts, expired_add) = (r.u64()?, r.u64()?, r.u64()?);
    let count = usize::try_from(r.u64()?).map_err(|_| BAD)?;
    if count.checked_mul(KeyRecord::BYTES) != Some(r.0.len()) {
        return Err(BAD);
    }
    let records = (0..count).map(|_| r.record()).collect::<Result<_, _>>()?;
    change.keys = Some(KeyPatch {
        now,
        window,
        conflicts,
        expired_add,
        records,
    });
    Ok(change)
}

/// recorded, lost, lo, hi, then `count` ranges.
fn read_ranges(r: &mut Reader, count: usize) -> Result<Patch, &'static str> {
    let (recorded, lost) = (r.u64()?, r.u64()?);
    let (lo, hi) = (r.id()?, r.id()?);
    if count
        .checked_mul(Range::BYTES)
        .is_none_or(|n| n > r.0.len())
    {
        return Err(BAD);
    }
    let ranges = (0..count)
        .map(|_| r.range())
        .collect::<Result<_, &'static str>>()?;
    Ok(Patch {
        lo,
        hi,
        ranges,
        recorded,
        lost,
    })
}

/// A whole index as changes that rebuild it from nothing, in order: its
/// ranges, then its live business keys.
pub fn rebuild(index: &Index) -> Vec<Change> {
    let chunks: Vec<&[Range]> = index.ranges().chunks(AOF_CHUNK).collect();
    let mut changes: Vec<Change> = match chunks.is_empty() {
        true => {
            let zero = StreamId { ms: 0, seq: 0 };
            vec![patch_of(zero, zero, &[], index)]
        }
        false => chunks
            .iter()
            .map(|c| patch_of(c[0].start, c[c.len() - 1].end, c, index))
            .collect(),
    }
    .into_iter()
    .map(|p| Change {
        ranges: Some(p),
        ..Change::default()
    })
    .collect();
    let live = index.keys.live();
    let keys = &index.keys;
    if !live.is_empty() || keys.conflicts > 0 || keys.expired > 0 {
        let mut chunks: Vec<&[KeyRecord]> = live.chunks(AOF_CHUNK).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for (n, chunk) in chunks.into_iter().enumerate() {
            changes.push(Change {
                ranges: None,
                definition: None,
                keys: Some(KeyPatch {
                    now: keys.now,
                    window: keys.window,
                    conflicts: keys.conflicts,
                    expired_add: if n == 0 { keys.expired } else { 0 },
                    records: chunk.to_vec(),
                }),
            });
        }
    }
    if let Some(definition) = &index.definition {
        changes.push(Change {
            definition: Some(Some((**definition).clone())),
            ..Change::default()
        });
    }
    changes
}

fn patch_of(lo: StreamId, hi: StreamId, ranges: &[Range], index: &Index) -> Patch {
    Patch {
        lo,
        hi,
        ranges: ranges.to_vec(),
        recorded: index.recorded,
        lost: index.lost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::ranges::tests::{id, MemStream};
    use crate::index::ranges::Touched;

    #[test]
    fn args_round_trip_and_rebuild_gives_the_same_index() {
        let mut s = MemStream((1..=9000).map(id).collect());
        let mut index = Index::new(b"st");
        for ms in (1..=9000).filter(|ms| ms % 3 != 0) {
            index.record(id(ms), &mut s, &mut Touched::default());
        }
        let patches = rebuild(&index);
        assert_eq!(patches.len(), 3, "3000 ranges in chunks of 1024");
        let mut copy = Index::new(b"st");
        for p in &patches {
            let args = to_args(b"k", b"st", p);
            let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            assert_eq!(argv.len(), 3);
            let parsed = parse(&argv).unwrap();
            assert_eq!((parsed.key, parsed.stream), (&b"k"[..], &b"st"[..]));
            assert_eq!(&parsed.change, p);
            apply(&mut copy, &parsed.change).unwrap();
        }
        assert_eq!(copy, index);
        let empty = Index::new(b"st");
        let mut copy = Index::new(b"st");
        for p in rebuild(&empty) {
            apply(&mut copy, &p).unwrap();
        }
        assert_eq!(copy, empty);
    }

    #[test]
    fn business_keys_round_trip_through_patches_and_rebuild() {
        let mut index = Index::new(b"st");
        let mut s = MemStream((1..=3000).map(id).collect());
        let records: Vec<KeyRecord> = (1..=3000u64)
            .map(|ms| KeyRecord {
                key: xxhash_rust::xxh3::xxh3_128(&ms.to_le_bytes()),
                fp: 7,
                expires: 500 + (ms % 50) as u32,
                id: StreamId { ms, seq: u64::MAX },
            })
            .collect();
        let mut t = Touched::default();
        for ms in 1..=3000 {
            index.record(id(ms), &mut s, &mut t);
        }
        let change = Change {
            ranges: index.patch(&t),
            keys: Some(KeyPatch {
                now: 480,
                window: 20_000,
                conflicts: 2,
                expired_add: 0,
                records,
            }),
            definition: None,
        };
        let args = to_args(b"k", b"st", &change);
        let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let parsed = parse(&argv).unwrap();
        assert_eq!(parsed.change, change);
        let mut replica = Index::new(b"st");
        apply(&mut replica, &parsed.change).unwrap();
        assert_eq!(replica.ranges(), index.ranges());
        assert_eq!(replica.keys.live().len(), 3000);
        assert_eq!(replica.keys.conflicts, 2);

        let mut rebuilt = Index::new(b"st");
        let changes = rebuild(&replica);
        assert_eq!(
            changes.len(),
            1 + 3,
            "one range chunk, 3000 keys in chunks of 1024"
        );
        for c in &changes {
            let args = to_args(b"k", b"st", c);
            let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            apply(&mut rebuilt, &parse(&argv).unwrap().change).unwrap();
        }
        assert_eq!(rebuilt.keys.live(), replica.keys.live());
        assert_eq!(rebuilt.keys.conflicts, 2);
        assert_eq!(rebuilt.ranges(), replica.ranges());

        let mut late = change.clone();
        late.keys.as_mut().unwrap().now = 10_000;
        let before = replica.clone();
        assert!(apply(&mut replica, &late).is_err(), "keys already expired");
        assert_eq!(replica, before, "a refused change changes nothing");
    }

    #[test]
    fn definitions_travel_as_patches_and_in_rebuilds() {
        let args = ["SADD", "set", "$id"]
            .map(|a| a.as_bytes().to_vec())
            .to_vec();
        let mut index = Index::new(b"st");
        index.definition = Some(Box::new(Definition {
            group: b"g".to_vec(),
            args,
            processor: None,
        }));
        let mut copy = Index::new(b"st");
        for change in rebuild(&index) {
            let args = to_args(b"k", b"st", &change);
            let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            apply(&mut copy, &parse(&argv).unwrap().change).unwrap();
        }
        assert_eq!(copy, index);
        let undefine = Change {
            definition: Some(None),
            ..Change::default()
        };
        let args = to_args(b"k", b"st", &undefine);
        let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        apply(&mut copy, &parse(&argv).unwrap().change).unwrap();
        assert_eq!(copy.definition, None);
        let mut bad = to_args(b"k", b"st", &rebuild(&index)[1])[2].clone();
        bad.truncate(bad.len() - 1);
        assert!(parse(&[b"k", b"st", &bad]).is_err());
    }

    #[test]
    fn malformed_arguments_are_refused() {
        let good = to_args(b"k", b"s", &rebuild(&Index::new(b"s"))[0]);
        let argv = |payload: &[u8]| parse(&[b"k", b"s", payload]).is_err();
        assert!(!argv(&good[2]));
        assert!(argv(&good[2][..good[2].len() - 1]), "truncated");
        assert!(
            argv(&[good[2].as_slice(), &[0; 39]].concat()),
            "part of a range"
        );
        assert!(
            argv(&[&[2u8][..], &good[2][1..]].concat()),
            "unknown version"
        );
        assert!(argv(b""));
        assert!(parse(&[b"k", b"s"]).is_err());
        assert!(parse(&[b"k", b"s", &good[2], b"x"]).is_err());
    }
}
