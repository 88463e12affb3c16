//! libFuzzer target: the dedupe index (src/index/) without Redis.
//!
//! The input is used three times:
//! - as an RDB payload of every encoding version (1, 2 and 3, the one with
//!   the group's definition section): `decode` never panics, and what it
//!   accepts encodes back to the same bytes (version 3; versions 1 and 2
//!   come back as the version-3 bytes of the same index) and keeps the
//!   invariants, a definition included (it parses as XPROCESS.DEFINE's
//!   arguments, its processor is one XPROCESS.START could have set);
//! - as a program of operations on a stream of 64 entries (process an entry,
//!   forget an ID, XDEL, XTRIM, sweep), run on a "primary" index, while a
//!   "replica" replays only the XPROCESS.PATCH text of every change;
//! - as a definition (arguments drawn from a table of tokens, a processor's
//!   settings) that the primary then carries.
//!
//! Oracles (a panic is a finding):
//! - exactness: an entry still in the stream is covered exactly when it was
//!   processed and not forgotten since (never a lost or repeated effect);
//! - the replica, fed the patches' argv, equals the primary after each step;
//! - the index survives encode -> decode unchanged, with its definition, and
//!   so does a rebuild (the AOF rewrite's patches) replayed on a new index;
//! - a definition is saved exactly when it parses (`parse_definition`) and
//!   its processor's count is positive, and a definition's patch carries it
//!   whole; its payload with one word of the definition section changed
//!   holds the decoder's oracles above;
//! - `lost` never exceeds the entries that left the stream unprocessed.
//!
//! Its findings (a CLAIM word without its flag, a COUNT or CLAIM that
//! XPROCESS.START refuses) are fixed and kept as seeds (`known_*`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;
use xprocess_core::definition::{Definition, Processor};
use xprocess_core::id::StreamId;
use xprocess_core::index::codec::{decode, definition_bytes, encode, ENCODING_VERSION};
use xprocess_core::index::patch;
use xprocess_core::index::ranges::{Index, StreamView, Touched};
use xprocess_core::parse::parse_definition;

struct Stream(BTreeSet<StreamId>);

impl StreamView for Stream {
    fn count_between(&mut self, after: StreamId, before: StreamId, cap: u64) -> u64 {
        if after >= before {
            return 0;
        }
        let n = self
            .0
            .range(after..before)
            .filter(|id| **id != after)
            .count() as u64;
        n.min(cap)
    }
    fn first_id(&mut self) -> Option<StreamId> {
        self.0.first().copied()
    }
}

fn id(n: u8) -> StreamId {
    // Two entries per millisecond, so IDs share ms and differ in seq too.
    StreamId {
        ms: u64::from(n / 2) + 1,
        seq: u64::from(n % 2),
    }
}

/// The XPROCESS.PATCH argv of `change`, parsed back as a replica would.
fn through_argv(stream: &[u8], change: &patch::Change) -> patch::Change {
    let args = patch::to_args(b"k", stream, change);
    let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let parsed = patch::parse(&argv).expect("a patch we wrote parses");
    assert_eq!(parsed.stream, stream);
    parsed.change
}

fn replay(replica: &mut Index, index: &Index, t: &Touched) {
    let Some(p) = index.patch(t) else { return };
    let change = patch::Change {
        ranges: Some(p),
        ..patch::Change::default()
    };
    let parsed = through_argv(&index.stream, &change);
    patch::apply(replica, &parsed).expect("a patch we wrote applies");
}

/// What every decoded index must hold: a definition that parses for its
/// stream, and a processor XPROCESS.START could have set.
fn check_decoded(index: &Index) {
    let Some(d) = index.definition.as_deref() else {
        return;
    };
    assert!(
        d.request(&index.stream).is_ok(),
        "decode accepted a definition that does not parse: {d:?}"
    );
    let Some(p) = &d.processor else { return };
    assert!(p.count > 0, "decode accepted a processor of count 0");
    let start_takes = |n: u64| i64::try_from(n).is_ok();
    assert!(
        start_takes(p.count) && p.claim.is_none_or(start_takes),
        "decode accepted a processor XPROCESS.START refuses: {p:?}"
    );
}

/// The input as an RDB payload of each encoding version.
fn check_payload(data: &[u8]) {
    if let Ok(index) = decode(data, ENCODING_VERSION) {
        check_decoded(&index);
        let again = encode(&index);
        assert_eq!(again, data, "decode accepted what encode would not write");
    }
    if let Ok(index) = decode(data, 2) {
        // Version 2 is version 3 without the definition section.
        assert!(index.definition.is_none());
        let mut v3 = data.to_vec();
        v3.extend_from_slice(&definition_bytes(None));
        assert_eq!(encode(&index), v3, "a version-2 payload is not version 3's");
    }
    if let Ok(index) = decode(data, 1) {
        let back = decode(&encode(&index), ENCODING_VERSION).expect("our own encoding decodes");
        assert_eq!(back, index, "a version-1 payload does not come back");
    }
    for bad in [0, 4, -1, i32::MAX] {
        assert!(decode(data, bad).is_err(), "decoded version {bad}");
    }
}

/// Tokens a definition is drawn from: options, effects, their arguments,
/// and a few that only a call may have (CONSUMER, IDS, READ, ...).
const TOKENS: [&str; 40] = [
    "SADD",
    "k",
    "$id",
    "HINCRBY",
    "h",
    "$f",
    "1",
    "DEDUPE",
    "d",
    "KEY",
    "$o",
    "WINDOW",
    "1000",
    "FINGERPRINT",
    "ENTRY",
    "DEADLETTER",
    "dl",
    "AFTER",
    "2",
    "DELETE",
    "ACKED",
    "WHEN",
    "$a",
    ">",
    "XADD",
    "FIELDS",
    "FCALL",
    "0",
    "PUBLISH",
    "SET",
    "NX",
    "ZADD",
    "GT",
    "IDS",
    "READ",
    "CONSUMER",
    "STORE",
    "TTL",
    "",
    "${",
];

/// A definition drawn from `bytes` (most of it; the rest are its
/// processor's settings), whether it parses or not.
fn definition_from(bytes: &[u8]) -> Definition {
    let mut b = bytes.iter().copied();
    let mut next = || b.next().unwrap_or(0);
    let n = 1 + usize::from(next() % 8);
    let args = (0..n)
        .map(|_| {
            TOKENS[usize::from(next()) % TOKENS.len()]
                .as_bytes()
                .to_vec()
        })
        .collect();
    let group = [&b"g"[..], b"", b"g2", b"\0\xff"][usize::from(next() % 4)].to_vec();
    let flags = next();
    let processor = (flags & 1 != 0).then(|| Processor {
        consumer: [&b"c"[..], b"", b"xprocess"][usize::from(next() % 3)].to_vec(),
        count: [1, 100, 0, i64::MAX as u64][usize::from(next() % 4)],
        claim: [None, Some(0), Some(60_000), Some(i64::MAX as u64)][usize::from(next() % 4)],
        running: flags & 2 != 0,
    });
    Definition {
        group,
        args,
        processor,
    }
}

/// `index` carrying `definition`: saved and loaded, sent as a patch, and
/// rebuilt from patches, it comes back the same exactly when the definition
/// is valid; an invalid one is refused by the decoder and the patch parser.
fn check_definition(index: &Index, definition: Definition, corrupt: [u8; 2]) {
    let stream = &index.stream[..];
    let mut argv: Vec<&[u8]> = vec![b"XPROCESS.DEFINE", stream, &definition.group];
    argv.extend(definition.args.iter().map(Vec::as_slice));
    let parses = parse_definition(&argv).is_ok();
    let count_ok = definition.processor.as_ref().is_none_or(|p| p.count > 0);
    let valid = parses && count_ok;
    assert_eq!(definition.request(stream).is_ok(), parses);

    let mut defined = index.clone();
    defined.definition = Some(Box::new(definition.clone()));
    let bytes = encode(&defined);
    let mut section = Vec::new();
    section.extend_from_slice(&definition_bytes(Some(&definition)));
    assert!(
        bytes.ends_with(&section),
        "the definition section ends the payload"
    );
    match decode(&bytes, ENCODING_VERSION) {
        Ok(back) => {
            assert!(
                valid,
                "decode accepted an invalid definition: {definition:?}"
            );
            assert_eq!(back.definition, defined.definition);
            assert_eq!(back.ranges(), defined.ranges());
            assert_eq!((back.recorded, back.lost), (defined.recorded, defined.lost));
            assert_eq!(encode(&back), bytes);
            check_decoded(&back);
        }
        Err(e) => assert!(
            !valid,
            "decode refused a valid definition ({e}): {definition:?}"
        ),
    }
    // Every shorter payload is refused.
    for cut in [bytes.len() - 1, bytes.len() - section.len() / 2] {
        assert!(decode(&bytes[..cut], ENCODING_VERSION).is_err());
    }
    // One word of the section changed (a length, a count, a flag, a
    // setting): the decoder holds as on any payload.
    let mut corrupted = bytes.clone();
    let words = section.len() / 8;
    let at = corrupted.len() - section.len() + 8 * (usize::from(corrupt[0]) % words);
    let old = u64::from_le_bytes(corrupted[at..at + 8].try_into().unwrap());
    let new = [
        0,
        1,
        2,
        old.wrapping_add(1),
        old.wrapping_sub(1),
        u64::MAX,
        1 << 63,
        u64::from(corrupt[1]) << 8,
    ][usize::from(corrupt[1] % 8)];
    corrupted[at..at + 8].copy_from_slice(&new.to_le_bytes());
    check_payload(&corrupted);

    // XPROCESS.PATCH of the definition, as DEFINE/START/STOP send it.
    let change = patch::Change {
        definition: Some(Some(definition.clone())),
        ..patch::Change::default()
    };
    let args = patch::to_args(b"k", stream, &change);
    let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let Ok(parsed) = patch::parse(&argv) else {
        assert!(!valid, "the patch of a valid definition is refused");
        return;
    };
    assert!(valid, "the patch of an invalid definition parses");
    assert_eq!(parsed.change, change);
    let mut replica = index.clone();
    patch::apply(&mut replica, &parsed.change).expect("a definition patch applies");
    assert_eq!(replica.definition, defined.definition);

    // An AOF rewrite's patches rebuild the whole index, definition included.
    let mut rebuilt = Index::new(stream);
    for change in patch::rebuild(&defined) {
        let parsed = through_argv(stream, &change);
        patch::apply(&mut rebuilt, &parsed).expect("a rebuild patch applies");
    }
    assert_eq!(rebuilt.ranges(), defined.ranges());
    assert_eq!(
        (rebuilt.recorded, rebuilt.lost),
        (defined.recorded, defined.lost)
    );
    assert_eq!(rebuilt.definition, defined.definition);
    assert_eq!(encode(&rebuilt), bytes);

    // UNDEFINE: the definition goes, nothing else.
    let undefine = patch::Change {
        definition: Some(None),
        ..patch::Change::default()
    };
    patch::apply(&mut replica, &through_argv(stream, &undefine)).unwrap();
    assert_eq!(replica.definition, None);
    assert_eq!(replica.ranges(), index.ranges());
}

fuzz_target!(|data: &[u8]| {
    check_payload(data);

    let mut stream = Stream((0..64).map(id).collect());
    let mut primary = Index::new(b"s");
    let mut replica = Index::new(b"s");
    let mut processed: BTreeSet<StreamId> = BTreeSet::new();
    let mut left_unprocessed = 0u64;
    for op in data.chunks(2) {
        let (kind, n) = (op[0] % 5, op.get(1).copied().unwrap_or(0) % 64);
        let target = id(n);
        let mut t = Touched::default();
        match kind {
            0 | 1 => {
                // XPROCESS reads the entry first: only entries in the stream.
                if stream.0.contains(&target) && !primary.contains(target) {
                    assert!(primary.record(target, &mut stream, &mut t));
                    processed.insert(target);
                }
                primary.sweep(&mut stream, &mut t);
            }
            2 => {
                let present = stream.0.contains(&target);
                if primary.forget(target, present, &mut t) {
                    processed.remove(&target);
                }
            }
            3 => {
                // XDEL
                if stream.0.remove(&target) && !processed.contains(&target) {
                    left_unprocessed += 1;
                }
            }
            _ => {
                // XTRIM MINID target
                let gone: Vec<StreamId> = stream.0.range(..target).copied().collect();
                for g in gone {
                    stream.0.remove(&g);
                    if !processed.contains(&g) {
                        left_unprocessed += 1;
                    }
                }
            }
        }
        replay(&mut replica, &primary, &t);
        assert_eq!(replica.ranges(), primary.ranges());
        assert_eq!(
            (replica.recorded, replica.lost),
            (primary.recorded, primary.lost)
        );
        for e in &stream.0 {
            assert_eq!(
                primary.contains(*e),
                processed.contains(e),
                "entry {e} in the stream: covered must mean processed"
            );
        }
        assert!(
            primary.lost <= left_unprocessed,
            "lost counts more than left"
        );
    }
    let round = decode(&encode(&primary), ENCODING_VERSION).expect("our own encoding decodes");
    assert_eq!(round.ranges(), primary.ranges());
    assert_eq!(round.definition, None);

    // The same index carrying a definition drawn from the input (read from
    // its end, so the program and the definition vary apart).
    let tail: Vec<u8> = data.iter().rev().take(16).copied().collect();
    let corrupt = [data.first(), data.get(1)].map(|b| b.copied().unwrap_or(0));
    check_definition(&primary, definition_from(&tail), corrupt);
});
