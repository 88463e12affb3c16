//! libFuzzer target: the dedupe index (src/index/) without Redis.
//!
//! The input is used twice:
//! - as an RDB payload: `decode` never panics, and what it accepts encodes
//!   back to the same bytes and keeps the invariants;
//! - as a program of operations on a stream of 64 entries (process an entry,
//!   forget an ID, XDEL, XTRIM, sweep), run on a "primary" index, while a
//!   "replica" replays only the XPROCESS.PATCH text of every change.
//!
//! Oracles (a panic is a finding):
//! - exactness: an entry still in the stream is covered exactly when it was
//!   processed and not forgotten since (never a lost or repeated effect);
//! - the replica, fed the patches' argv, equals the primary after each step;
//! - the index survives encode -> decode unchanged;
//! - `lost` never exceeds the entries that left the stream unprocessed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;
use xprocess_core::id::StreamId;
use xprocess_core::index::codec::{decode, encode};
use xprocess_core::index::patch;
use xprocess_core::index::ranges::{Index, StreamView, Touched};

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

fn replay(replica: &mut Index, index: &Index, t: &Touched) {
    let Some(p) = index.patch(t) else { return };
    let change = patch::Change {
        ranges: Some(p),
        ..patch::Change::default()
    };
    let args = patch::to_args(b"k", &index.stream, &change);
    let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let parsed = patch::parse(&argv).expect("a patch we wrote parses");
    patch::apply(replica, &parsed.change).expect("a patch we wrote applies");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = decode(data, 2) {
        assert_eq!(
            encode(&index),
            data,
            "decode accepted what encode would not write"
        );
    }

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
    let round = decode(&encode(&primary), 2).expect("our own encoding decodes");
    assert_eq!(round.ranges(), primary.ranges());
});
