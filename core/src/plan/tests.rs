use super::*;
use crate::parse::parse;
use std::collections::HashMap;

/// In-memory keyspace: kinds, hash fields and stream last IDs.
#[derive(Default)]
struct Mem {
    kinds: HashMap<Vec<u8>, KeyKind>,
    fields: HashMap<(Vec<u8>, Vec<u8>), Vec<u8>>,
    last_ids: HashMap<Vec<u8>, StreamId>,
    strings: HashMap<Vec<u8>, Vec<u8>>,
    scores: HashMap<(Vec<u8>, Vec<u8>), f64>,
}

impl State for Mem {
    fn kind(&self, key: &[u8]) -> KeyKind {
        *self.kinds.get(key).unwrap_or(&KeyKind::Missing)
    }
    fn hash_field(&self, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
        self.fields.get(&(key.to_vec(), field.to_vec())).cloned()
    }
    fn stream_last_id(&self, key: &[u8]) -> StreamId {
        self.last_ids[key]
    }
    fn string(&self, key: &[u8], limit: usize) -> Option<crate::state::StringHead> {
        let value = self.strings.get(key)?;
        let head = value[..value.len().min(limit)].to_vec();
        Some(crate::state::StringHead {
            head,
            len: value.len(),
        })
    }
    fn zscore(&self, key: &[u8], member: &[u8]) -> Option<f64> {
        self.scores.get(&(key.to_vec(), member.to_vec())).copied()
    }
    fn now_ms(&self) -> i64 {
        1_000_000
    }
    fn len(&self, key: &[u8]) -> Option<usize> {
        let fields = self.fields.keys().filter(|(k, _)| k == key).count();
        let scores = self.scores.keys().filter(|(k, _)| k == key).count();
        Some(fields + scores)
    }
}

impl Mem {
    fn hash(mut self, key: &str, field: &str, value: &str) -> Self {
        self.kinds.insert(key.into(), KeyKind::Hash);
        self.fields.insert((key.into(), field.into()), value.into());
        self
    }
    fn string(mut self, key: &str, value: &[u8]) -> Self {
        self.kinds.insert(key.into(), KeyKind::String);
        self.strings.insert(key.into(), value.to_vec());
        self
    }
    fn score(mut self, key: &str, member: &str, score: f64) -> Self {
        self.kinds.insert(key.into(), KeyKind::ZSet);
        self.scores.insert((key.into(), member.into()), score);
        self
    }
    fn kind(mut self, key: &str, kind: KeyKind) -> Self {
        self.kinds.insert(key.into(), kind);
        self
    }
}

const FIELDS: [(&[u8], &[u8]); 3] = [(b"cust", b"alice"), (b"amount", b"7"), (b"f", b"1.5")];
const ENTRY: Entry<'static> = Entry {
    id: "1-1",
    fields: &FIELDS,
};

/// Plan the effects of `cmd` (effects only, IDS appended) for ENTRY.
fn plan(cmd: &str, state: &Mem) -> Result<Vec<String>, String> {
    let line = format!("XPROCESS s g {cmd} IDS 1 1-1");
    let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    let req = parse(&argv).unwrap();
    let reserved = [(&b"dd"[..], KeyKind::Set)];
    let rules = KeyRules {
        reserved: &reserved,
        forbidden: &[b"s", b"dd"],
    };
    plan_entry(&req.effects, &req.when, &ENTRY, state, &rules)
        .map(|ops| ops.iter().map(|op| format!("{op:?}")).collect())
        .map_err(|e| e.to_string())
}

#[test]
fn templates_are_expanded_into_ops() {
    let ops = plan("HINCRBY totals $cust $amount XADD o ENTRY", &Mem::default()).unwrap();
    assert_eq!(ops.len(), 2);
    assert!(ops[0].contains("[97, 108, 105, 99, 101]"), "{}", ops[0]); // alice
    assert!(ops[1].contains("pairs"));
}

#[test]
fn wrong_type_targets_are_refused() {
    let state = Mem::default()
        .kind("str", KeyKind::Other)
        .kind("st", KeyKind::Stream);
    for cmd in [
        "HINCRBY str f 1",
        "SADD str m",
        "XADD str ENTRY",
        "SADD st m",
        "HINCRBY dd f 1",
    ] {
        assert_eq!(plan(cmd, &state).unwrap_err(), errors::WRONGTYPE, "{cmd}");
    }
}

#[test]
fn a_failing_second_effect_refuses_the_whole_entry() {
    let state = Mem::default();
    assert_eq!(
        plan("HINCRBY h a 1 HINCRBY h b x", &state).unwrap_err(),
        errors::NOT_INTEGER
    );
    // The first effect makes `k` a hash, so the second cannot treat it as a set.
    assert_eq!(
        plan("HINCRBY k a 1 SADD k m", &state).unwrap_err(),
        errors::WRONGTYPE
    );
}

#[test]
fn integer_overflow_counts_earlier_effects() {
    let state = Mem::default().hash("h", "f", "9223372036854775800");
    assert!(plan("HINCRBY h f 7", &state).is_ok());
    assert_eq!(plan("HINCRBY h f 8", &state).unwrap_err(), errors::OVERFLOW);
    assert_eq!(
        plan("HINCRBY h f 4 HINCRBY h f 4", &state).unwrap_err(),
        errors::OVERFLOW
    );
    let neg = Mem::default().hash("h", "f", "-9223372036854775807");
    assert_eq!(plan("HINCRBY h f -2", &neg).unwrap_err(), errors::OVERFLOW);
}

#[test]
fn hash_values_must_be_numbers() {
    let state = Mem::default().hash("h", "f", "abc").hash("g", "f", "1.5");
    assert_eq!(
        plan("HINCRBY h f 1", &state).unwrap_err(),
        errors::HASH_NOT_INTEGER
    );
    assert_eq!(
        plan("HINCRBY g f 1", &state).unwrap_err(),
        errors::HASH_NOT_INTEGER
    );
    assert_eq!(
        plan("HINCRBYFLOAT h f 1", &state).unwrap_err(),
        errors::HASH_NOT_FLOAT
    );
    assert!(plan("HINCRBYFLOAT g f $f", &state).is_ok());
    assert_eq!(
        plan("HINCRBYFLOAT x y 1 HINCRBY x y 1", &state).unwrap_err(),
        errors::HASH_NOT_INTEGER
    );
}

#[test]
fn float_results_must_be_finite() {
    let state = Mem::default().hash("h", "f", "1e308");
    assert_eq!(
        plan("HINCRBYFLOAT h f 1e308", &state).unwrap_err(),
        errors::NAN_OR_INF
    );
    assert_eq!(
        plan("HINCRBYFLOAT h g inf", &state).unwrap_err(),
        errors::FLOAT_NAN_OR_INF
    );
    assert_eq!(
        plan("HINCRBYFLOAT h g nan", &state).unwrap_err(),
        errors::NOT_FLOAT
    );
    assert_eq!(
        plan("HINCRBYFLOAT h g 1e308 HINCRBYFLOAT h g 1e308", &state).unwrap_err(),
        errors::NAN_OR_INF
    );
}

#[test]
fn missing_template_field_is_an_entry_error() {
    let err = plan("SADD s $nope", &Mem::default()).unwrap_err();
    assert_eq!(err, "ERR entry 1-1 has no field 'nope'");
}

#[test]
fn xadd_refuses_an_exhausted_stream() {
    let mut state = Mem::default().kind("o", KeyKind::Stream);
    state.last_ids.insert(b"o".to_vec(), StreamId::MAX);
    assert_eq!(
        plan("XADD o ENTRY", &state).unwrap_err(),
        errors::STREAM_EXHAUSTED
    );
    let almost = StreamId {
        ms: u64::MAX,
        seq: u64::MAX - 1,
    };
    state.last_ids.insert(b"o".to_vec(), almost);
    assert!(plan("XADD o ENTRY", &state).is_ok());
    assert_eq!(
        plan("XADD o ENTRY XADD o ENTRY", &state).unwrap_err(),
        errors::STREAM_EXHAUSTED
    );
    assert!(plan("XADD new ENTRY XADD new ENTRY", &state).is_ok());
}

#[test]
fn string_effects_read_what_earlier_ones_wrote() {
    let state = Mem::default().string("n", b"41").string("t", b"abc");
    assert!(plan("INCRBY n 1", &state).is_ok());
    assert_eq!(plan("INCRBY t 1", &state).unwrap_err(), errors::NOT_INTEGER);
    assert!(plan("SET t 5 INCRBY t 1", &state).is_ok());
    assert_eq!(
        plan("INCRBYFLOAT n 0.5 INCRBY n 1", &state).unwrap_err(),
        errors::NOT_INTEGER
    );
    assert_eq!(
        plan("SET n 9223372036854775807 INCRBY n 1", &state).unwrap_err(),
        errors::OVERFLOW
    );
    // NX keeps the old value: the increment then reads 41, not `x`.
    assert!(plan("SET n x NX INCRBY n 1", &state).is_ok());
    assert_eq!(
        plan("SET n x XX INCRBY n 1", &state).unwrap_err(),
        errors::NOT_INTEGER
    );
    assert!(plan("DEL t INCRBY t 1", &state).is_ok());
}

#[test]
fn a_removed_key_is_not_read_from_the_server() {
    let state = Mem::default()
        .hash("h", "f", "abc")
        .kind("l", KeyKind::List);
    assert_eq!(
        plan("HINCRBY h f 1", &state).unwrap_err(),
        errors::HASH_NOT_INTEGER
    );
    assert!(plan("DEL h HINCRBY h f 1", &state).is_ok());
    assert!(plan("PEXPIRE h 0 HINCRBY h f 1", &state).is_ok());
    assert_eq!(
        plan("PEXPIRE h 1 HINCRBY h f 1", &state).unwrap_err(),
        errors::HASH_NOT_INTEGER
    );
    assert!(plan("PEXPIRE l -5 SADD l m", &state).is_ok());
    assert!(plan("HDEL h f HINCRBY h f 1", &state).is_ok());
}

#[test]
fn hyperloglogs_are_recognised_by_their_header() {
    let mut dense = b"HYLL\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    let short = Mem::default().string("d", &dense);
    assert_eq!(plan("PFADD d e", &short).unwrap_err(), errors::NOT_HLL);
    dense.resize(16 + 12288, 0);
    let state = Mem::default()
        .string("d", &dense)
        .string("s", b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff")
        .string("e", b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0")
        .string("o", b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff\x80")
        .string("x", b"HYLL\x02\0\0\0\0\0\0\0\0\0\0\0");
    assert!(plan("PFADD d e", &state).is_ok());
    assert!(plan("PFADD s e", &state).is_ok());
    // Sparse opcodes covering no registers, or more than 16384.
    assert_eq!(plan("PFADD e x", &state).unwrap_err(), errors::HLL_CORRUPT);
    assert_eq!(plan("PFADD o x", &state).unwrap_err(), errors::HLL_CORRUPT);
    assert_eq!(plan("PFADD x e", &state).unwrap_err(), errors::NOT_HLL);
    assert!(plan("PFADD new e PFADD new f", &state).is_ok());
    assert_eq!(
        plan("PFADD new e INCRBY new 1", &state).unwrap_err(),
        errors::NOT_INTEGER
    );
}

#[test]
fn zincrby_refuses_only_a_nan_score() {
    let state = Mem::default()
        .score("z", "up", f64::INFINITY)
        .score("z", "one", 1.0);
    assert!(plan("ZINCRBY z 1 up", &state).is_ok());
    assert!(plan("ZINCRBY z inf up", &state).is_ok());
    assert_eq!(
        plan("ZINCRBY z -inf up", &state).unwrap_err(),
        errors::NAN_SCORE
    );
    assert!(plan("ZINCRBY z -inf one", &state).is_ok());
    // Earlier writes of the entry count, with ZADD's options.
    assert_eq!(
        plan("ZADD z GT +inf one ZINCRBY z -inf one", &state).unwrap_err(),
        errors::NAN_SCORE
    );
    assert!(plan("ZADD z LT +inf one ZINCRBY z -inf one", &state).is_ok());
    assert!(plan("ZADD z NX +inf one ZINCRBY z -inf one", &state).is_ok());
    assert!(plan("ZADD z XX +inf new ZINCRBY z -inf new", &state).is_ok());
    assert!(plan("DEL z ZINCRBY z -inf up", &state).is_ok());
    assert!(plan("ZREM z up ZINCRBY z -inf up", &state).is_ok());
    assert_eq!(
        plan("ZREM s m", &Mem::default().kind("s", KeyKind::Set)).unwrap_err(),
        errors::WRONGTYPE
    );
    assert_eq!(
        plan("ZADD z 1e400 m", &state).unwrap_err(),
        errors::NOT_FLOAT
    );
}

#[test]
fn expiry_times_must_stay_within_redis_range() {
    let state = Mem::default().string("k", b"v");
    let max = i64::MAX - 1_000_000 - 3_600_000;
    assert!(plan(&format!("PEXPIRE k {max}"), &state).is_ok());
    assert_eq!(
        plan(&format!("PEXPIRE k {}", max + 1), &state).unwrap_err(),
        errors::PEXPIRE_BAD_EXPIRE
    );
    assert_eq!(
        plan("SET k v PX 0", &state).unwrap_err(),
        errors::SET_BAD_EXPIRE
    );
    assert_eq!(
        plan("SET k v PX x", &state).unwrap_err(),
        errors::NOT_INTEGER
    );
    assert!(plan("SET k v PX 1 NX", &state).is_ok());
}

/// Found by fuzz/parse_plan: ZADD XX of a missing key creates nothing, so
/// a later `SET NX` of the entry applies and the key holds a string.
#[test]
fn zadd_xx_leaves_a_missing_key_missing() {
    let state = Mem::default();
    assert_eq!(
        plan("ZADD w XX 1 m SET w v NX ZADD w 1 m", &state).unwrap_err(),
        errors::WRONGTYPE
    );
    assert!(plan("ZADD w XX 1 m SET w 5 NX INCRBY w 1", &state).is_ok());
    // With the key there, XX updates it and SET NX does nothing.
    let zset = Mem::default().score("w", "m", 1.0);
    assert!(plan("ZADD w XX 2 m SET w v NX ZADD w 1 m", &zset).is_ok());
}

#[test]
fn a_key_its_last_field_or_member_left_is_gone() {
    let state = Mem::default()
        .hash("h", "only", "1")
        .hash("g", "a", "1")
        .hash("g", "b", "2")
        .score("z", "m", 1.0);
    // HDEL empties h: SET NX writes a string, a hash effect is then refused.
    assert_eq!(
        plan("HDEL h only SET h v NX HSET h FIELDS 1 a b", &state).unwrap_err(),
        errors::WRONGTYPE
    );
    assert!(plan("HDEL h only SADD h m", &state).is_ok());
    assert!(plan(
        "HSET h FIELDS 1 x y HDEL h only SET h v NX HSET h FIELDS 1 a b",
        &state
    )
    .is_ok());
    assert!(plan("HDEL g a SET g v NX HSET g FIELDS 1 c d", &state).is_ok());
    assert!(plan("ZREM z m SET z v NX INCRBY z 1", &state).is_err());
    assert!(plan("ZREM z m ZADD z XX 1 m SET z 5 NX INCRBY z 1", &state).is_ok());
}
