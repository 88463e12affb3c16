//! libFuzzer target: XPROCESS argv parsing, template expansion and the
//! per-entry plan/apply loop, without Redis.
//!
//! Input layout: the first byte is the separator, the rest is split on it
//! into argv (after the command name). So any byte, `\0` `\r` `\n` and
//! invalid UTF-8 included, can appear inside an argument.
//!
//! Oracles (a panic is a finding):
//! - `parse` never panics; on `Ok`, the request is consistent with argv
//!   (key positions, numids, IDs round-trip through their text form);
//! - the derived dedupe key keeps the stream's hash slot;
//! - `process` over an in-memory keyspace: an op that `plan_entry` validated
//!   never fails when applied with Redis' own rules (that would leave an entry
//!   half-applied), one outcome per ID, the dedupe store ends up holding
//!   exactly the applied IDs, and a failed entry changed nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::{HashMap, HashSet};
use xprocess_core::entry::Entry;
use xprocess_core::entry::Fields;
use xprocess_core::errors::{ErrorKind, ReplyError};
use xprocess_core::id::StreamId;
use xprocess_core::key_name::{derived_dedupe_key, hash_tag};
use xprocess_core::numbers::{parse_float, parse_i64};
use xprocess_core::parse::parse;
use xprocess_core::plan::Op;
use xprocess_core::process::{process, Backend, Outcome, Poison};
use xprocess_core::request::{Effect, Pairs};
use xprocess_core::state::{KeyKind, State};
use xprocess_core::store::DedupeStore;
use xprocess_core::template::Arg;

fn mix(bytes: &[u8]) -> u64 {
    // FNV-1a: a deterministic "random" shape for each key and field name.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

const HASH_VALUES: [&[u8]; 12] = [
    b"0",
    b"1",
    b"-1",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"1.5",
    b"1e308",
    b"-1e308",
    b"abc",
    b"",
    b"inf",
    b"007",
];

const LAST_IDS: [StreamId; 4] = [
    StreamId { ms: 0, seq: 0 },
    StreamId { ms: 5, seq: 1 },
    StreamId {
        ms: u64::MAX,
        seq: u64::MAX - 1,
    },
    StreamId::MAX,
];

/// An in-memory keyspace whose initial shape is derived from key names, and
/// whose writes follow Redis' rules (so a validated op that Redis would
/// refuse shows up as a failed `apply`).
#[derive(Default, Clone, PartialEq, Debug)]
struct Mem {
    kinds: HashMap<Vec<u8>, KeyKind>,
    fields: HashMap<(Vec<u8>, Vec<u8>), Vec<u8>>,
    sets: HashMap<Vec<u8>, HashSet<Vec<u8>>>,
    last_ids: HashMap<Vec<u8>, StreamId>,
    stream_len: HashMap<Vec<u8>, u64>,
    acked: Vec<StreamId>,
    entries: HashMap<StreamId, Fields>,
    owners: HashMap<StreamId, Vec<u8>>,
    broken: Vec<String>,
    deliveries: HashMap<StreamId, u64>,
    dead: Vec<StreamId>,
}

impl Mem {
    fn initial_kind(key: &[u8]) -> KeyKind {
        match mix(key) % 6 {
            0 | 1 => KeyKind::Missing,
            2 => KeyKind::Hash,
            3 => KeyKind::Set,
            4 => KeyKind::Stream,
            _ => KeyKind::Other,
        }
    }

    fn kind_of(&self, key: &[u8]) -> KeyKind {
        self.kinds
            .get(key)
            .copied()
            .unwrap_or_else(|| Mem::initial_kind(key))
    }

    fn field_of(&self, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
        if self.kind_of(key) != KeyKind::Hash {
            return None;
        }
        if let Some(v) = self.fields.get(&(key.to_vec(), field.to_vec())) {
            return Some(v.clone());
        }
        if self.kinds.contains_key(key) {
            return None; // created during the run: only written fields exist
        }
        let h = mix(&[key, b"\xff", field].concat());
        (!h.is_multiple_of(3)).then(|| HASH_VALUES[(h / 3) as usize % HASH_VALUES.len()].to_vec())
    }

    fn last_id_of(&self, key: &[u8]) -> StreamId {
        self.last_ids
            .get(key)
            .copied()
            .unwrap_or_else(|| LAST_IDS[(mix(key) / 6) as usize % LAST_IDS.len()])
    }

    fn want(&mut self, key: &[u8], kind: KeyKind) -> Result<(), ReplyError> {
        match self.kind_of(key) {
            KeyKind::Missing => {
                self.kinds.insert(key.to_vec(), kind);
                if kind == KeyKind::Stream {
                    self.last_ids
                        .insert(key.to_vec(), StreamId { ms: 0, seq: 0 });
                }
                Ok(())
            }
            k if k == kind => Ok(()),
            _ => Err(ReplyError::new(ErrorKind::WrongType, "WRONGTYPE")),
        }
    }
}

impl State for Mem {
    fn kind(&self, key: &[u8]) -> KeyKind {
        self.kind_of(key)
    }
    fn hash_field(&self, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
        self.field_of(key, field)
    }
    fn stream_last_id(&self, key: &[u8]) -> StreamId {
        self.last_id_of(key)
    }
}

impl Backend for Mem {
    fn pending_owner(&mut self, id: StreamId) -> Result<Option<Vec<u8>>, ReplyError> {
        Ok(self.owners.get(&id).cloned())
    }

    fn read_entry(&mut self, id: StreamId, _count_from: Option<StreamId>) -> Option<Fields> {
        self.entries.get(&id).cloned()
    }

    fn deliveries(&mut self, id: StreamId) -> Result<u64, ReplyError> {
        Ok(self.deliveries.get(&id).copied().unwrap_or(0))
    }

    fn dead_letter(&mut self, _key: &[u8], poison: &Poison) -> Result<(), ReplyError> {
        assert!(
            !poison.error.as_str().starts_with("NOTOWNER"),
            "fenced entry dead-lettered"
        );
        self.dead.push(poison.id);
        Ok(())
    }

    /// Redis' semantics for each write, independent of `plan`.
    fn apply(&mut self, op: &Op) -> Result<(), ReplyError> {
        match op {
            Op::HIncrBy {
                key,
                field,
                incr,
                result,
            } => {
                let by = parse_i64(incr).ok_or_else(|| ReplyError::err("not an integer"))?;
                self.want(key, KeyKind::Hash)?;
                let cur = match self.field_of(key, field) {
                    None => 0,
                    Some(v) => parse_i64(&v).ok_or_else(|| ReplyError::err("hash not integer"))?,
                };
                let sum = cur
                    .checked_add(by)
                    .ok_or_else(|| ReplyError::err("overflow"))?;
                // The value planning predicted (and that is replicated).
                assert_eq!(sum, *result, "planned HINCRBY result differs");
                self.fields
                    .insert((key.to_vec(), field.to_vec()), sum.to_string().into_bytes());
            }
            Op::HIncrByFloat { key, field, incr } => {
                let by = parse_float(incr).ok_or_else(|| ReplyError::err("not a float"))?;
                if !by.is_finite() {
                    return Err(ReplyError::err("NaN or Infinity"));
                }
                self.want(key, KeyKind::Hash)?;
                let cur = match self.field_of(key, field) {
                    None => 0.0,
                    Some(v) => parse_float(&v).ok_or_else(|| ReplyError::err("hash not float"))?,
                };
                let sum = cur + by;
                if !sum.is_finite() {
                    return Err(ReplyError::err("would produce NaN or Infinity"));
                }
                // Written so that HINCRBY can no longer read it as an integer,
                // like Redis' long double text of a float result in general.
                self.fields.insert(
                    (key.to_vec(), field.to_vec()),
                    format!("{sum:e}").into_bytes(),
                );
            }
            Op::SAdd { key, member } => {
                self.want(key, KeyKind::Set)?;
                self.sets
                    .entry(key.to_vec())
                    .or_default()
                    .insert(member.to_vec());
            }
            Op::XAdd { key, trim, pairs } => {
                assert!(!pairs.is_empty(), "XADD with no field/value pairs");
                self.want(key, KeyKind::Stream)?;
                let next = self
                    .last_id_of(key)
                    .next()
                    .ok_or_else(|| ReplyError::err("stream exhausted"))?;
                self.last_ids.insert(key.to_vec(), next);
                let len = self.stream_len.entry(key.to_vec()).or_default();
                *len += 1;
                if let Some(t) = trim {
                    assert!(t.count >= 0, "negative MAXLEN planned");
                    *len = (*len).min(t.count as u64);
                }
            }
        }
        Ok(())
    }

    fn ack(&mut self, ids: &[StreamId]) -> Result<(), ReplyError> {
        self.acked.extend_from_slice(ids);
        Ok(())
    }

    fn warn(&mut self, message: &str) {
        self.broken.push(message.to_string());
    }
}

/// A Set dedupe store in memory; `pre` holds IDs processed before the call.
#[derive(Default)]
struct MemStore {
    committed: HashSet<StreamId>,
    pending: Vec<StreamId>,
    inserts: Vec<StreamId>,
}

impl DedupeStore for MemStore {
    fn contains(&mut self, id: StreamId) -> Result<bool, ReplyError> {
        Ok(self.committed.contains(&id) || self.pending.contains(&id))
    }
    fn insert(&mut self, id: StreamId) {
        assert!(!self.contains(id).unwrap(), "{id} recorded twice");
        self.pending.push(id);
        self.inserts.push(id);
    }
    fn commit(&mut self) -> Result<(), ReplyError> {
        self.committed.extend(self.pending.drain(..));
        Ok(())
    }
}

/// Field/value pairs of the in-memory source entries: fixed ones that the
/// dictionary's templates name, plus the argv tokens themselves (so `$x`
/// finds a field `x` when `x` also appears in the call).
fn entry_fields(argv: &[&[u8]], salt: u64) -> Fields {
    let mut f: Fields = [
        ("customer", "alice"),
        ("amount", "7"),
        ("f", "1.5"),
        ("big", "9223372036854775807"),
        ("neg", "-9223372036854775808"),
        ("huge", "1e308"),
        ("inf", "inf"),
        ("nan", "nan"),
        ("empty", ""),
        ("amount", "-3"),
    ]
    .iter()
    .filter(|(k, _)| mix(k.as_bytes()) ^ salt != 0 && !(mix(k.as_bytes()) ^ salt).is_multiple_of(5))
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    for pair in argv.windows(2).step_by(3) {
        f.push((pair[0].to_vec(), pair[1].to_vec()));
    }
    f.push((b"bin".to_vec(), b"\0\r\n\xff".to_vec()));
    f
}

fn check_parse(argv: &[&[u8]], req: &xprocess_core::request::Request) {
    // Key positions: the stream first, then DEDUPE and DEADLETTER (in the
    // order given), then one per effect.
    assert_eq!(req.key_positions[0], 1);
    let options = usize::from(req.dedupe.is_some()) + usize::from(req.dead_letter.is_some());
    let expected = 1 + options + req.effects.len();
    assert_eq!(req.key_positions.len(), expected, "{req:?}");
    for (i, &p) in req.key_positions.iter().enumerate() {
        assert!(p < argv.len(), "key position {p} outside argv");
        if i > 0 {
            assert!(p > req.key_positions[i - 1], "key positions not increasing");
        }
    }
    assert_eq!(argv[1], req.stream);
    let off = 1 + options;
    let option_keys: Vec<&[u8]> = req.key_positions[1..off].iter().map(|&p| argv[p]).collect();
    if let Some(d) = req.dedupe {
        assert!(option_keys.contains(&d), "DEDUPE key position");
    }
    if let Some(dl) = req.dead_letter {
        assert!(option_keys.contains(&dl.key), "DEADLETTER key position");
        assert!(dl.after >= 1);
    }
    // Only literal effect keys are declared; templated ones are known per entry.
    let literal_keys = req.effects.iter().filter_map(|e| e.key().literal());
    assert_eq!(literal_keys.clone().count(), req.key_positions.len() - off);
    for (key, &p) in literal_keys.zip(&req.key_positions[off..]) {
        assert_eq!(argv[p], key, "effect key position");
    }
    for e in &req.effects {
        if let Effect::XAdd {
            pairs: Pairs::Fields(pairs),
            trim,
            ..
        } = e
        {
            assert!(!pairs.is_empty());
            if let Some(t) = trim {
                assert!(t.count >= 0);
            }
        }
    }
    assert!(!req.effects.is_empty());
    if req.read.is_some() {
        assert!(req.ids.is_empty() && req.consumer.is_some());
        assert!(argv.iter().any(|a| a.eq_ignore_ascii_case(b"READ")));
        return;
    }
    assert!(!req.ids.is_empty());
    // The IDs are the last numids arguments, and their canonical text parses
    // back to the same ID.
    let tail = &argv[argv.len() - req.ids.len()..];
    for (id, raw) in req.ids.iter().zip(tail) {
        assert_eq!(StreamId::parse(raw), Some(*id));
        assert_eq!(StreamId::parse(id.to_string().as_bytes()), Some(*id));
    }
    assert!(argv[argv.len() - req.ids.len() - 2].eq_ignore_ascii_case(b"IDS"));
}

fn check_templates(argv: &[&[u8]]) {
    let fields: Vec<(&[u8], &[u8])> = vec![(b"a", b"1"), (b"", b"empty-name")];
    let entry = Entry {
        id: "1-0",
        fields: &fields,
    };
    for raw in argv {
        match Arg::parse(raw) {
            Ok(Arg::Literal(l)) => {
                assert_eq!(&*Arg::Literal(l).expand(&entry).unwrap(), l);
                assert_eq!(l, *raw, "a literal is the argument as written");
                assert!(!raw.windows(2).any(|w| w == b"$$" || w == b"${"));
            }
            Ok(Arg::Field(name)) => {
                assert_eq!(&raw[1..], name);
                let got = Arg::Field(name).expand(&entry);
                assert_eq!(got.is_ok(), name == b"a" || name.is_empty());
            }
            Ok(arg @ Arg::Meta(_)) => {
                assert!(raw.starts_with(b"$@"));
                assert!(arg.expand(&entry).is_ok(), "metadata always expands");
            }
            Ok(Arg::Negated(_)) => unreachable!("only numeric arguments are negated"),
            Ok(arg @ Arg::Interpolated(_)) => {
                // Expanding never panics; it fails only on a missing field.
                if let Ok(bytes) = arg.expand(&entry) {
                    assert!(bytes.len() <= raw.len() * 16 + 64);
                }
            }
            Err(_) => assert!(raw.contains(&b'$')),
        }
    }
}

/// `FUZZ_SKIP_KNOWN=1` skips known findings so a long run can look for new
/// ones: the derived dedupe key of the empty stream name `""` is
/// `{}:xprocess:<group>`, whose slot is not slot("") (an empty `{}` is no
/// hash tag). Strict by default.
fn skip_known() -> bool {
    static SKIP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SKIP.get_or_init(|| std::env::var_os("FUZZ_SKIP_KNOWN").is_some_and(|v| v == "1"))
}

fn check_dedupe_key(stream: &[u8], group: &[u8]) {
    if stream.is_empty() && skip_known() {
        return;
    }
    if let Ok(key) = derived_dedupe_key(stream, group) {
        // Same hash slot: Redis hashes the tag if there is one, else the
        // whole name, so the hashed bytes must be equal.
        let hashed = |k: &[u8]| hash_tag(k).unwrap_or(k).to_vec();
        assert_eq!(
            hashed(&key),
            hashed(stream),
            "derived dedupe key {:?} is not in the slot of stream {:?}",
            String::from_utf8_lossy(&key),
            String::from_utf8_lossy(stream)
        );
        assert!(key.ends_with(group));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sep, rest)) = data.split_first() else {
        return;
    };
    let mut argv: Vec<&[u8]> = vec![b"XPROCESS"];
    argv.extend(rest.split(|&b| b == sep));
    if argv.len() > 4096 {
        return;
    }
    check_templates(&argv[1..]);
    let req = match parse(&argv) {
        Ok(req) => req,
        Err(e) => {
            assert!(
                e.as_str().starts_with("ERR "),
                "parse error without ERR: {e}"
            );
            return;
        }
    };
    check_parse(&argv, &req);
    if argv.len() > 2 {
        check_dedupe_key(argv[1], argv[2]);
    }

    // Entries exist for most IDs; ownership and prior processing vary.
    let salt = mix(rest);
    let fields = entry_fields(&argv[1..], salt);
    let mut mem = Mem::default();
    let mut store = MemStore::default();
    // READ takes entries for the consumer: three, here.
    let ids: Vec<StreamId> = match req.read {
        Some(_) => (1..=3).map(|ms| StreamId { ms, seq: 0 }).collect(),
        None => req.ids.clone(),
    };
    for (i, id) in ids.iter().enumerate() {
        let h = mix(&[id.to_string().as_bytes(), &salt.to_le_bytes()].concat()) ^ i as u64;
        if !h.is_multiple_of(7) {
            mem.entries.insert(*id, fields.clone());
        }
        if h.is_multiple_of(11) {
            store.committed.insert(*id);
        }
        mem.deliveries.insert(*id, h % 4);
        if let Some(c) = req.consumer {
            if req.read.is_some() || !h.is_multiple_of(3) {
                mem.owners.insert(*id, c.to_vec());
            } else if h.is_multiple_of(2) {
                mem.owners.insert(*id, b"someone-else".to_vec());
            }
        }
    }
    let before_committed = store.committed.clone();
    let dedupe: &[u8] = req.dedupe.unwrap_or(b"{s}:xprocess:g");
    let reserved = [(dedupe, KeyKind::Set)];
    let outcomes = process(&req, &ids, &mut mem, &mut store, &reserved);

    assert!(
        mem.broken.is_empty(),
        "validated op failed when applied: {:?}\nargv: {:?}",
        mem.broken,
        argv.iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
    );
    assert_eq!(outcomes.len(), ids.len());
    let mut applied = HashSet::new();
    let mut dead = Vec::new();
    let mut acked = Vec::new();
    for (id, out) in ids.iter().zip(&outcomes) {
        match out {
            Outcome::Applied | Outcome::NoEffect => {
                assert!(applied.insert(*id), "{id} applied twice in one call");
                assert!(!before_committed.contains(id));
                acked.push(*id);
            }
            Outcome::Duplicate => {
                assert!(before_committed.contains(id) || applied.contains(id));
                acked.push(*id);
            }
            Outcome::DeadLettered => {
                let after = req
                    .dead_letter
                    .expect("dead-lettered without DEADLETTER")
                    .after;
                assert!(mem.deliveries[id] >= after, "dead-lettered too early");
                assert!(!before_committed.contains(id) && !applied.contains(id));
                dead.push(*id);
                acked.push(*id);
            }
            Outcome::Failed(e) => {
                if let Some(dl) = req.dead_letter {
                    let fenced = e.as_str().starts_with("NOTOWNER");
                    assert!(
                        fenced || mem.deliveries[id] < dl.after,
                        "{id} not dead-lettered: {e}"
                    );
                }
                let text = e.as_str();
                assert!(!text.is_empty() && !text.contains('\r') && !text.contains('\n'));
                assert!(!before_committed.contains(id) && !applied.contains(id));
            }
        }
    }
    assert_eq!(mem.dead, dead, "dead letters != outcomes 2");
    let inserted: HashSet<StreamId> = store.inserts.iter().copied().collect();
    let done: HashSet<StreamId> = applied.iter().chain(&dead).copied().collect();
    assert_eq!(
        inserted, done,
        "dedupe records != applied and dead-lettered entries"
    );
    assert_eq!(mem.acked, acked, "XACK set != applied + duplicates");
});
