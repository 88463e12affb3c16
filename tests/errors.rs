//! Per-entry errors (the entry is left untouched, the others proceed) and
//! whole-call errors (nothing changes at all).

mod common;

use common::*;
use redis::Connection;

const DEDUPE: &str = "{orders}:xprocess:g";

const NO_EFFECT: &str = "ERR syntax error, XPROCESS needs at least one effect before IDS";
const NO_IDS: &str =
    "ERR syntax error, XPROCESS needs IDS numids id [id ...] or READ after the effects";
const BAD_NUMIDS: &str = "ERR numids must be a positive integer";
const NUMIDS_MISMATCH: &str = "ERR numids does not match the number of IDs given";
const BAD_NUMPAIRS: &str = "ERR numpairs must be a positive integer";
const BAD_TTL: &str =
    "ERR invalid TTL, must be an integer of milliseconds from 0 to 4611686018427387903";
const BAD_MAXLEN: &str = "ERR The MAXLEN argument must be a non-negative integer";
const BAD_STREAM_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const UNKNOWN_METADATA: &str =
    "ERR unknown entry metadata template, only @id, @ms, @seq, @date and @hour are supported (use $$ for a literal $)";
const NEED_DEDUPE: &str =
    "ERR cannot derive a dedupe key from an empty key name or one with '}' but no hash tag, use DEDUPE";
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const BAD_STORE: &str = "ERR STORE must be INDEX or SET";
const TTL_ON_INDEX: &str = "ERR TTL applies to a Set dedupe store only, an index never needs to expire (use STORE SET for a Set)";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const NOT_FLOAT: &str = "ERR value is not a valid float";
const HASH_NOT_INTEGER: &str = "ERR hash value is not an integer";
const HASH_NOT_FLOAT: &str = "ERR hash value is not a float";
const OVERFLOW: &str = "ERR increment or decrement would overflow";
const NAN_OR_INF: &str = "ERR increment would produce NaN or Infinity";

// ---- per-entry errors ----------------------------------------------------------

/// Two pending entries `[bad, good]` of `orders`; process both with `effects`.
/// Asserts the reply is `[want, 1]` and that `bad` is left exactly as it was:
/// still pending for `c1`, not recorded in the dedupe store (an index: the
/// default). Returns `[bad, good]`.
fn bad_then_good(
    con: &mut Connection,
    bad: &[(&str, &str)],
    good: &[(&str, &str)],
    effects: &[&str],
    want: impl Fn(&str) -> String,
) -> Vec<String> {
    let ids = pending(con, "orders", "g", "c1", &[bad, good]);
    let mut args = vec!["orders", "g"];
    args.extend_from_slice(effects);
    args.extend_from_slice(&["IDS", "2", &ids[0], &ids[1]]);
    let r = xprocess(con, &args);
    assert_eq!(slots(&r), [want(&ids[0]), "1".to_string()]);
    assert_eq!(owner(con, "orders", "g", &ids[0]).as_deref(), Some("c1"));
    assert_eq!(
        owner(con, "orders", "g", &ids[1]),
        None,
        "good entry not acked"
    );
    assert_eq!(q::<String>(con, &["TYPE", DEDUPE]), "xproc-idx");
    assert!(!processed(con, DEDUPE, &ids[0]), "failed entry recorded");
    assert!(processed(con, DEDUPE, &ids[1]));
    ids
}

#[test]
fn id_not_in_stream() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = pending(
        &mut con,
        "orders",
        "g",
        "c1",
        &[&[("user", "a")], &[("user", "b")]],
    );
    // Still pending but deleted from the stream.
    q::<i64>(&mut con, &["XDEL", "orders", &ids[1]]);
    let r = xprocess(
        &mut con,
        &[
            "orders",
            "g",
            "SADD",
            "s",
            "$@id",
            "IDS",
            "4",
            "1-1",
            &ids[0],
            "99999999999999-0",
            &ids[1],
        ],
    );
    assert_eq!(
        slots(&r),
        [
            "ERR entry 1-1 not found in the stream".to_string(),
            "1".to_string(),
            "ERR entry 99999999999999-0 not found in the stream".to_string(),
            format!("ERR entry {} not found in the stream", ids[1]),
        ]
    );
    let members: Vec<String> = q(&mut con, &["SMEMBERS", "s"]);
    assert_eq!(members, [ids[0].clone()]);
    // Only the applied entry is recorded.
    assert_eq!(
        processed_flags(
            &mut con,
            DEDUPE,
            &["1-1", &ids[0], "99999999999999-0", &ids[1]]
        ),
        [false, true, false, false]
    );
    assert_eq!(recorded(&mut con, DEDUPE), 1);
    assert_eq!(
        pel(&mut con, "orders", "g"),
        [(ids[1].clone(), "c1".into())]
    );
}

#[test]
fn template_field_missing() {
    let srv = Server::start();
    let mut con = srv.conn();
    bad_then_good(
        &mut con,
        &[("user", "bad")],
        &[("user", "good"), ("amount", "2")],
        &[
            "SADD", "buyers", "$user", "HINCRBY", "totals", "$user", "$amount",
        ],
        |id| format!("ERR entry {id} has no field 'amount'"),
    );
    let buyers: Vec<String> = q(&mut con, &["SMEMBERS", "buyers"]);
    assert_eq!(buyers, ["good"], "first effect of the failed entry applied");
    // Missing field in XADD FIELDS too.
    bad_then_good(
        &mut con,
        &[("user", "bad2")],
        &[("user", "good2"), ("amount", "2")],
        &["XADD", "out", "FIELDS", "2", "u", "$user", "a", "$amount"],
        |id| format!("ERR entry {id} has no field 'amount'"),
    );
    let out = xrange(&mut con, "out");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, ["u", "good2", "a", "2"]);
}

#[test]
fn non_numeric_increment() {
    let srv = Server::start();
    let mut con = srv.conn();
    for bad in ["abc", "1.5", "99999999999999999999", ""] {
        bad_then_good(
            &mut con,
            &[("user", "u"), ("amount", bad)],
            &[("user", "u"), ("amount", "1")],
            &["HINCRBY", "totals", "$user", "$amount"],
            |_| NOT_INTEGER.to_string(),
        );
    }
    assert_eq!(hget(&mut con, "totals", "u").as_deref(), Some("4"));
    for bad in ["abc", "1.5x", ""] {
        bad_then_good(
            &mut con,
            &[("user", "u"), ("amount", bad)],
            &[("user", "u"), ("amount", "0.5")],
            &["HINCRBYFLOAT", "ftotals", "$user", "$amount"],
            |_| NOT_FLOAT.to_string(),
        );
    }
    assert_eq!(hget(&mut con, "ftotals", "u").as_deref(), Some("1.5"));
}

#[test]
fn hash_value_not_a_number() {
    let srv = Server::start();
    let mut con = srv.conn();
    q::<i64>(&mut con, &["HSET", "totals", "bad", "xyz", "good", "1"]);
    bad_then_good(
        &mut con,
        &[("user", "bad")],
        &[("user", "good")],
        &["HINCRBY", "totals", "$user", "1"],
        |_| HASH_NOT_INTEGER.to_string(),
    );
    assert_eq!(hget(&mut con, "totals", "bad").as_deref(), Some("xyz"));
    assert_eq!(hget(&mut con, "totals", "good").as_deref(), Some("2"));
    bad_then_good(
        &mut con,
        &[("user", "bad")],
        &[("user", "good")],
        &["HINCRBYFLOAT", "totals", "$user", "1.5"],
        |_| HASH_NOT_FLOAT.to_string(),
    );
    assert_eq!(hget(&mut con, "totals", "bad").as_deref(), Some("xyz"));
    assert_eq!(hget(&mut con, "totals", "good").as_deref(), Some("3.5"));
}

#[test]
fn effect_target_of_wrong_type_is_a_per_entry_error() {
    let srv = Server::start();
    let mut con = srv.conn();
    q::<String>(&mut con, &["SET", "str", "x"]);
    q::<i64>(&mut con, &["HSET", "hash", "f", "1"]);
    q::<i64>(&mut con, &["SADD", "set", "m"]);
    let cases: [&[&str]; 4] = [
        &["HINCRBY", "str", "f", "1"],
        &["HINCRBYFLOAT", "set", "f", "1"],
        &["SADD", "hash", "$user"],
        &["XADD", "str", "ENTRY"],
    ];
    let ids = pending(
        &mut con,
        "orders",
        "g",
        "c1",
        &[&[("user", "a")], &[("user", "b")], &[("user", "c")]],
    );
    // The third entry is a duplicate: its slot is still 0, so the error is
    // per entry and not a whole-call one.
    q::<i64>(&mut con, &["SADD", DEDUPE, &ids[2]]);
    q::<i64>(&mut con, &["XACK", "orders", "g", &ids[2]]);
    for effect in cases {
        let before = digest(&mut con);
        let mut args = vec!["orders", "g"];
        args.extend_from_slice(effect);
        args.extend_from_slice(&["IDS", "3", &ids[0], &ids[1], &ids[2]]);
        let r = xprocess(&mut con, &args);
        assert_eq!(slots(&r), [WRONGTYPE, WRONGTYPE, "0"], "{effect:?}");
        assert_eq!(digest(&mut con), before, "{effect:?} changed something");
    }
    // A valid first effect is not applied when the second is of wrong type.
    let before = digest(&mut con);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "HINCRBY", "totals", "$user", "1", "SADD", "str", "$user", "IDS", "2",
            &ids[0], &ids[1],
        ],
    );
    assert_eq!(slots(&r), [WRONGTYPE, WRONGTYPE]);
    assert_eq!(digest(&mut con), before);
    assert!(!exists(&mut con, "totals"));
    assert_eq!(pel(&mut con, "orders", "g").len(), 2);
}

#[test]
fn increment_overflow() {
    let srv = Server::start();
    let mut con = srv.conn();
    q::<i64>(&mut con, &["HSET", "totals", "u", "9223372036854775806"]);
    bad_then_good(
        &mut con,
        &[("user", "u"), ("amount", "5")],
        &[("user", "u"), ("amount", "1")],
        &["HINCRBY", "totals", "$user", "$amount"],
        |_| OVERFLOW.to_string(),
    );
    assert_eq!(
        hget(&mut con, "totals", "u").as_deref(),
        Some("9223372036854775807")
    );
    q::<i64>(&mut con, &["HSET", "neg", "u", "-9223372036854775807"]);
    bad_then_good(
        &mut con,
        &[("user", "u"), ("amount", "-2")],
        &[("user", "u"), ("amount", "-1")],
        &["HINCRBY", "neg", "$user", "$amount"],
        |_| OVERFLOW.to_string(),
    );
    assert_eq!(
        hget(&mut con, "neg", "u").as_deref(),
        Some("-9223372036854775808")
    );
}

#[test]
fn hincrbyfloat_producing_infinity() {
    let srv = Server::start();
    let mut con = srv.conn();
    q::<i64>(&mut con, &["HSET", "totals", "u", "1e308"]);
    let before = hget(&mut con, "totals", "u");
    bad_then_good(
        &mut con,
        &[("user", "u"), ("amount", "1e308")],
        &[("user", "v"), ("amount", "1")],
        &["HINCRBYFLOAT", "totals", "$user", "$amount"],
        |_| NAN_OR_INF.to_string(),
    );
    assert_eq!(hget(&mut con, "totals", "u"), before);
    assert_eq!(hget(&mut con, "totals", "v").as_deref(), Some("1"));
}

#[test]
fn failing_second_effect_leaves_first_unapplied() {
    let srv = Server::start();
    let mut con = srv.conn();
    bad_then_good(
        &mut con,
        &[("user", "bad"), ("amount", "ten")],
        &[("user", "good"), ("amount", "10")],
        &[
            "SADD", "buyers", "$user", "XADD", "log", "ENTRY", "HINCRBY", "totals", "$user",
            "$amount",
        ],
        |_| NOT_INTEGER.to_string(),
    );
    let buyers: Vec<String> = q(&mut con, &["SMEMBERS", "buyers"]);
    assert_eq!(buyers, ["good"]);
    let log = xrange(&mut con, "log");
    assert_eq!(log.len(), 1, "XADD of the failed entry applied");
    assert_eq!(log[0].1, ["user", "good", "amount", "10"]);
    assert_eq!(hget(&mut con, "totals", "bad"), None);
    assert_eq!(hget(&mut con, "totals", "good").as_deref(), Some("10"));
}

#[test]
fn two_effects_on_one_field_overflowing_together() {
    let srv = Server::start();
    let mut con = srv.conn();
    // Each increment alone fits in an i64, both together do not.
    bad_then_good(
        &mut con,
        &[("a", "5000000000000000000")],
        &[("a", "1")],
        &["HINCRBY", "t", "f", "$a", "HINCRBY", "t", "f", "$a"],
        |_| OVERFLOW.to_string(),
    );
    assert_eq!(hget(&mut con, "t", "f").as_deref(), Some("2"));
}

#[test]
fn same_id_twice_in_one_call_is_applied_once() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = pending(&mut con, "orders", "g", "c1", &[&[("amount", "3")]]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "HINCRBY", "t", "f", "$amount", "IDS", "2", &ids[0], &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1", "0"]);
    assert_eq!(hget(&mut con, "t", "f").as_deref(), Some("3"));
}

// ---- whole-call errors -----------------------------------------------------------

/// A server with two pending entries in `orders`/`g` and some other data.
fn fixture() -> (Server, Connection, Vec<String>) {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = pending(
        &mut con,
        "orders",
        "g",
        "c1",
        &[
            &[("user", "a"), ("amount", "1")],
            &[("user", "b"), ("amount", "2")],
        ],
    );
    q::<i64>(&mut con, &["HSET", "totals", "a", "10"]);
    q::<String>(&mut con, &["SET", "str", "x"]);
    (srv, con, ids)
}

/// Run `XPROCESS args`; the reply must be a whole-call error accepted by
/// `check`, and the dataset (DEBUG DIGEST) must be unchanged.
fn whole_call_error(con: &mut Connection, args: &[&str], check: impl Fn(&str) -> bool) {
    let before = digest(con);
    let pel_before = pel(con, "orders", "g");
    let r = xprocess(con, args);
    let e = err(&r);
    assert!(check(&e), "{args:?}: unexpected error {e:?}");
    assert_eq!(digest(con), before, "{args:?} changed the dataset");
    assert_eq!(pel(con, "orders", "g"), pel_before);
}

fn exactly(want: &str) -> impl Fn(&str) -> bool + '_ {
    move |e| e == want
}

fn syntax(e: &str) -> bool {
    e.starts_with("ERR syntax error")
}

fn arity(e: &str) -> bool {
    e.eq_ignore_ascii_case("ERR wrong number of arguments for 'xprocess' command")
}

#[test]
fn wrong_arity() {
    let (_srv, mut con, _) = fixture();
    whole_call_error(&mut con, &[], arity);
    whole_call_error(&mut con, &["orders", "g"], arity);
    // One short of the smallest valid call (one that uses a definition).
    whole_call_error(&mut con, &["orders", "g", "CONSUMER", "READ"], arity);
}

#[test]
fn syntax_errors() {
    let (_srv, mut con, ids) = fixture();
    let id = ids[0].as_str();
    // unknown option / effect
    whole_call_error(
        &mut con,
        &[
            "orders", "g", "FOO", "bar", "SADD", "s", "m", "IDS", "1", id,
        ],
        syntax,
    );
    whole_call_error(
        &mut con,
        &[
            "orders", "g", "SADD", "s", "m", "LPUSHX", "l", "v", "IDS", "1", id,
        ],
        syntax,
    );
    // option after the effects
    whole_call_error(
        &mut con,
        &["orders", "g", "SADD", "s", "m", "TTL", "10", "IDS", "1", id],
        syntax,
    );
    // option without its value
    whole_call_error(
        &mut con,
        &["orders", "g", "TTL", "SADD", "s", "m", "IDS", "1", id],
        |e| e.starts_with("ERR"),
    );
    // effect missing an argument
    whole_call_error(
        &mut con,
        &["orders", "g", "HINCRBY", "totals", "a", "IDS", "1", id],
        syntax,
    );
    // XADD without FIELDS or ENTRY
    whole_call_error(
        &mut con,
        &["orders", "g", "XADD", "out", "BODY", "x", "IDS", "1", id],
        syntax,
    );
    whole_call_error(
        &mut con,
        &["orders", "g", "XADD", "out", "MAXLEN", "5", "IDS", "1", id],
        syntax,
    );
    // STORE: a value other than INDEX or SET, twice, without a value, after
    // the effects
    for kind in ["BTREE", "", "SETS", "IND"] {
        whole_call_error(
            &mut con,
            &[
                "orders", "g", "STORE", kind, "SADD", "s", "m", "IDS", "1", id,
            ],
            exactly(BAD_STORE),
        );
    }
    whole_call_error(
        &mut con,
        &[
            "orders", "g", "STORE", "SET", "STORE", "SET", "SADD", "s", "m", "IDS", "1", id,
        ],
        syntax,
    );
    whole_call_error(
        &mut con,
        &[
            "orders", "g", "STORE", "SET", "DEDUPE", "d", "store", "index", "SADD", "s", "m",
            "IDS", "1", id,
        ],
        syntax,
    );
    whole_call_error(
        &mut con,
        &[
            "orders", "g", "SADD", "s", "m", "STORE", "SET", "IDS", "1", id,
        ],
        syntax,
    );
    whole_call_error(&mut con, &["orders", "g", "STORE"], arity);
    // no effect at all / no IDS
    whole_call_error(
        &mut con,
        &["orders", "g", "CONSUMER", "c1", "TTL", "5", "IDS", "1", id],
        exactly(NO_EFFECT),
    );
    whole_call_error(
        &mut con,
        &["orders", "g", "SADD", "s", "m", "SADD", "t", "n"],
        exactly(NO_IDS),
    );
}

#[test]
fn bad_numids() {
    let (_srv, mut con, ids) = fixture();
    let (a, b) = (ids[0].as_str(), ids[1].as_str());
    let base = ["orders", "g", "SADD", "s", "m", "IDS"];
    for n in ["0", "-1", "abc", "1.0", ""] {
        let mut args = base.to_vec();
        args.extend_from_slice(&[n, a]);
        whole_call_error(&mut con, &args, exactly(BAD_NUMIDS));
    }
    let mut args = base.to_vec();
    args.extend_from_slice(&["2", a]);
    whole_call_error(&mut con, &args, exactly(NUMIDS_MISMATCH));
    let mut args = base.to_vec();
    args.extend_from_slice(&["1", a, b]);
    whole_call_error(&mut con, &args, exactly(NUMIDS_MISMATCH));
}

#[test]
fn invalid_stream_id() {
    let (_srv, mut con, ids) = fixture();
    for bad in ["foo", "1-x", "", "-1", "1-2-3"] {
        // A valid ID before the bad one is not processed either.
        whole_call_error(
            &mut con,
            &["orders", "g", "SADD", "s", "m", "IDS", "2", &ids[0], bad],
            exactly(BAD_STREAM_ID),
        );
    }
}

#[test]
fn bad_ttl_maxlen_numpairs() {
    let (_srv, mut con, ids) = fixture();
    let id = ids[0].as_str();
    for ttl in ["-1", "abc", "1.5"] {
        whole_call_error(
            &mut con,
            &["orders", "g", "TTL", ttl, "SADD", "s", "m", "IDS", "1", id],
            exactly(BAD_TTL),
        );
    }
    for maxlen in ["-1", "abc"] {
        whole_call_error(
            &mut con,
            &[
                "orders", "g", "XADD", "out", "MAXLEN", maxlen, "ENTRY", "IDS", "1", id,
            ],
            exactly(BAD_MAXLEN),
        );
        whole_call_error(
            &mut con,
            &[
                "orders", "g", "XADD", "out", "MAXLEN", "~", maxlen, "ENTRY", "IDS", "1", id,
            ],
            exactly(BAD_MAXLEN),
        );
    }
    for n in ["0", "-1", "x"] {
        whole_call_error(
            &mut con,
            &[
                "orders", "g", "XADD", "out", "FIELDS", n, "f", "v", "IDS", "1", id,
            ],
            exactly(BAD_NUMPAIRS),
        );
    }
}

#[test]
fn unknown_metadata_template() {
    let (_srv, mut con, ids) = fixture();
    whole_call_error(
        &mut con,
        &["orders", "g", "SADD", "s", "$@time", "IDS", "1", &ids[0]],
        exactly(UNKNOWN_METADATA),
    );
}

#[test]
fn source_key_not_a_stream() {
    let (_srv, mut con, _) = fixture();
    whole_call_error(
        &mut con,
        &["str", "g", "SADD", "s", "m", "IDS", "1", "1-1"],
        exactly(WRONGTYPE),
    );
    whole_call_error(
        &mut con,
        &["totals", "g", "SADD", "s", "m", "IDS", "1", "1-1"],
        exactly(WRONGTYPE),
    );
}

#[test]
fn missing_key_or_group() {
    let (_srv, mut con, ids) = fixture();
    whole_call_error(
        &mut con,
        &["nokey", "g", "SADD", "s", "m", "IDS", "1", "1-1"],
        exactly("NOGROUP No such key 'nokey' or consumer group 'g'"),
    );
    whole_call_error(
        &mut con,
        &["orders", "nog", "SADD", "s", "m", "IDS", "1", &ids[0]],
        exactly("NOGROUP No such key 'orders' or consumer group 'nog'"),
    );
}

#[test]
fn dedupe_key_of_wrong_type() {
    let (_srv, mut con, ids) = fixture();
    whole_call_error(
        &mut con,
        &[
            "orders", "g", "DEDUPE", "str", "SADD", "s", "m", "IDS", "1", &ids[0],
        ],
        exactly(WRONGTYPE),
    );
    q::<i64>(&mut con, &["HSET", DEDUPE, "f", "v"]);
    whole_call_error(
        &mut con,
        &["orders", "g", "SADD", "s", "m", "IDS", "1", &ids[0]],
        exactly(WRONGTYPE),
    );
    // Whatever STORE asks for.
    for kind in ["INDEX", "SET"] {
        whole_call_error(
            &mut con,
            &[
                "orders", "g", "STORE", kind, "SADD", "s", "m", "IDS", "1", &ids[0],
            ],
            exactly(WRONGTYPE),
        );
    }
}

#[test]
fn dedupe_store_of_the_other_kind() {
    let (_srv, mut con, ids) = fixture();
    // An index at the derived key, a Set at `d`.
    let run = |con: &mut Connection, opts: &[&str]| {
        let mut args = vec!["orders", "g"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["SADD", "s", "$user", "IDS", "1", &ids[0]]);
        slots(&xprocess(con, &args))
    };
    assert_eq!(run(&mut con, &[]), ["1"]);
    assert_eq!(run(&mut con, &["DEDUPE", "d", "STORE", "SET"]), ["1"]);
    for (opts, want) in [
        (&["STORE", "SET"][..], WRONGTYPE),
        (&["DEDUPE", "d", "STORE", "INDEX"], WRONGTYPE),
        (&["TTL", "1000"], TTL_ON_INDEX),
        (&["TTL", "0", "STORE", "INDEX"], TTL_ON_INDEX),
    ] {
        let mut args = vec!["orders", "g"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["SADD", "s", "$user", "IDS", "1", &ids[1]]);
        whole_call_error(&mut con, &args, exactly(want));
    }
    // A missing key that would become an index refuses TTL too.
    whole_call_error(
        &mut con,
        &[
            "orders", "g", "DEDUPE", "fresh", "TTL", "1000", "SADD", "s", "$user", "IDS", "1",
            &ids[1],
        ],
        exactly(TTL_ON_INDEX),
    );
    assert!(!exists(&mut con, "fresh"));
}

#[test]
fn key_with_brace_but_no_hash_tag_needs_dedupe() {
    let srv = Server::start();
    let mut con = srv.conn();
    for key in ["a}b", "x{}y}", "}"] {
        let ids = pending(&mut con, key, "g", "c1", &[&[("user", "a")]]);
        let before = digest(&mut con);
        let r = xprocess(
            &mut con,
            &[key, "g", "SADD", "s", "$user", "IDS", "1", &ids[0]],
        );
        assert_eq!(err(&r), NEED_DEDUPE, "{key}");
        assert_eq!(digest(&mut con), before);
    }
}

#[test]
fn non_finite_float_increment_matches_redis_errors() {
    let srv = Server::start();
    let mut con = srv.conn();
    // The module answers what HINCRBYFLOAT itself would.
    for bad in ["inf", "-inf", "nan"] {
        let redis_says = err(&call(&mut con, &["HINCRBYFLOAT", "probe", "f", bad]));
        bad_then_good(
            &mut con,
            &[("amount", bad)],
            &[("amount", "1")],
            &["HINCRBYFLOAT", "t", "f", "$amount"],
            |_| redis_says.clone(),
        );
    }
    assert_eq!(hget(&mut con, "t", "f").as_deref(), Some("3"));
    assert!(!exists(&mut con, "probe"));
}

#[test]
fn effects_see_earlier_effects_of_the_same_entry() {
    let srv = Server::start();
    let mut con = srv.conn();
    // Each entry: the first effect alone is valid, the second is only invalid
    // on top of the first; nothing of the entry may be applied.
    let cases: [(&[&str], &str); 3] = [
        (
            &["HINCRBYFLOAT", "k", "f", "0.5", "HINCRBY", "k", "f", "1"],
            HASH_NOT_INTEGER,
        ),
        (&["SADD", "k", "m", "HINCRBY", "k", "f", "1"], WRONGTYPE),
        (&["XADD", "k", "ENTRY", "SADD", "k", "m"], WRONGTYPE),
    ];
    for (effects, want) in cases {
        let ids = pending(&mut con, "orders", "g", "c1", &[&[("user", "a")]]);
        let before = digest(&mut con);
        let mut args = vec!["orders", "g"];
        args.extend_from_slice(effects);
        args.extend_from_slice(&["IDS", "1", &ids[0]]);
        assert_eq!(slots(&xprocess(&mut con, &args)), [want], "{effects:?}");
        assert_eq!(digest(&mut con), before, "{effects:?} partially applied");
        assert!(!exists(&mut con, "k"));
    }
    // And valid chains are applied in order.
    let ids = pending(&mut con, "orders", "g", "c1", &[&[("user", "a")]]);
    let r = xprocess(
        &mut con,
        &[
            "orders",
            "g",
            "HINCRBY",
            "k",
            "f",
            "1",
            "HINCRBYFLOAT",
            "k",
            "f",
            "0.5",
            "IDS",
            "1",
            &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    assert_eq!(hget(&mut con, "k", "f").as_deref(), Some("1.5"));
}

#[test]
fn xadd_to_an_exhausted_stream() {
    let srv = Server::start();
    let mut con = srv.conn();
    let max = "18446744073709551615-18446744073709551615";
    xadd_id(&mut con, "full", max, &[("f", "v")]);
    let ids = pending(
        &mut con,
        "orders",
        "g",
        "c1",
        &[&[("user", "a")], &[("user", "b")]],
    );
    let before = digest(&mut con);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "SADD", "s", "$user", "XADD", "full", "ENTRY", "IDS", "2", &ids[0],
            &ids[1],
        ],
    );
    let exhausted = "ERR The stream has exhausted the last possible ID, unable to add more items";
    assert_eq!(slots(&r), [exhausted, exhausted]);
    assert_eq!(digest(&mut con), before);
}

#[test]
fn duplicates_are_not_validated_again() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = pending(
        &mut con,
        "orders",
        "g",
        "c1",
        &[
            &[("user", "a"), ("amount", "1")],
            &[("user", "b"), ("amount", "2")],
        ],
    );
    let args = [
        "orders", "g", "HINCRBY", "totals", "$user", "$amount", "IDS", "2", &ids[0], &ids[1],
    ];
    assert_eq!(slots(&xprocess(&mut con, &args)), ["1", "1"]);
    // The target is now of another type and one entry is gone from the
    // stream: both IDs are in the dedupe set, so they are just duplicates.
    q::<i64>(&mut con, &["DEL", "totals"]);
    q::<String>(&mut con, &["SET", "totals", "x"]);
    q::<i64>(&mut con, &["XDEL", "orders", &ids[1]]);
    let before = digest(&mut con);
    assert_eq!(slots(&xprocess(&mut con, &args)), ["0", "0"]);
    assert_eq!(digest(&mut con), before);
}
