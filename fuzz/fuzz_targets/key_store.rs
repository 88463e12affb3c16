//! libFuzzer target: the business-key store (src/index/keys.rs) without Redis.
//!
//! The input is a program: each 4-byte step records a key (one of 256, with
//! a window of 0..=15 seconds) if it has no live record, or only lets time
//! pass (0..=7 seconds). A "primary" store records, a "replica" replays the
//! XPROCESS.PATCH payload of each step, and a model (a map of key -> window
//! end) says what must be remembered.
//!
//! Oracles (a panic is a finding):
//! - exactness: a key is found exactly while its window has not ended, with
//!   the fingerprint and entry that recorded it;
//! - the replica, fed the patches' argv, has the same live records;
//! - a store saved and loaded (encode -> decode, the current encoding
//!   version) has the same live records;
//! - nothing live is dropped and memory follows the live records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use xprocess_core::id::StreamId;
use xprocess_core::index::codec::{decode, encode, ENCODING_VERSION};
use xprocess_core::index::key_store::{KeyPatch, KeyRecord};
use xprocess_core::index::patch::{self, Change};
use xprocess_core::index::ranges::Index;

fn key(n: u8) -> u128 {
    xxhash_rust::xxh3::xxh3_128(&[n])
}

fuzz_target!(|data: &[u8]| {
    let mut primary = Index::new(b"s");
    let mut replica = Index::new(b"s");
    // key -> (window end, fingerprint, entry)
    let mut model: BTreeMap<u128, (u32, u32, StreamId)> = BTreeMap::new();
    let mut now: u32 = 1_000;
    for (step, op) in data.chunks(4).enumerate() {
        let byte = |i: usize| op.get(i).copied().unwrap_or(0);
        now += u32::from(byte(0) % 8);
        if byte(1) % 4 != 0 {
            let k = key(byte(2));
            let live = model.get(&k).filter(|(end, ..)| *end > now);
            let found = primary.keys.get(k, now);
            assert_eq!(
                found.map(|r| (r.expires, r.fp, r.id)),
                live.copied(),
                "step {step}: the store and the model disagree on a key"
            );
            if found.is_none() {
                let id = StreamId {
                    ms: u64::from(now),
                    // Now and then an ID that does not pack into 7 bytes.
                    seq: if byte(3) > 250 {
                        u64::MAX - step as u64
                    } else {
                        step as u64
                    },
                };
                let rec = KeyRecord {
                    key: k,
                    fp: u32::from(byte(3)),
                    expires: now + 1 + u32::from(byte(3) % 16),
                    id,
                };
                primary.keys.insert(rec, now);
                model.insert(k, (rec.expires, rec.fp, rec.id));
                let change = Change {
                    ranges: None,
                    keys: Some(KeyPatch {
                        now,
                        window: 1_000,
                        conflicts: 0,
                        expired_add: 0,
                        records: vec![rec],
                    }),
                    definition: None,
                };
                let args = patch::to_args(b"k", b"s", &change);
                let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                let parsed = patch::parse(&argv).expect("a patch we wrote parses");
                patch::apply(&mut replica, &parsed.change).expect("a patch we wrote applies");
            }
        }
        let live: Vec<(u128, u32)> = model
            .iter()
            .filter(|(_, (end, ..))| *end > primary.keys.now)
            .map(|(k, (end, ..))| (*k, *end))
            .collect();
        let got: Vec<(u128, u32)> = primary
            .keys
            .live()
            .iter()
            .map(|r| (r.key, r.expires))
            .collect();
        assert_eq!(got, live, "step {step}: live records");
        assert_eq!(
            replica.keys.live(),
            primary.keys.live(),
            "step {step}: replica"
        );
        assert!(
            primary.keys.stored() <= live.len() + 2 * 65_536,
            "step {step}: {} stored for {} live",
            primary.keys.stored(),
            live.len()
        );
    }
    let loaded = decode(&encode(&primary), ENCODING_VERSION).expect("our own encoding decodes");
    assert_eq!(loaded.keys.live(), primary.keys.live());
    assert_eq!(
        encode(&loaded),
        encode(&primary),
        "a reload saves the same bytes"
    );
});
