//! XPROCESS happy paths: effects, templates, dedupe, TTL, fencing, options,
//! key reporting.

mod common;

use common::*;

const DEDUPE: &str = "{orders}:xprocess:g";

/// Entries of the `orders` stream, pending for consumer `c1` in group `g`.
fn orders(con: &mut redis::Connection, entries: &[&[(&str, &str)]]) -> Vec<String> {
    pending(con, "orders", "g", "c1", entries)
}

#[test]
fn hincrby_applies_dedupes_and_acks() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(
        &mut con,
        &[
            &[("user", "u1"), ("amount", "5")],
            &[("user", "u2"), ("amount", "7")],
        ],
    );
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "HINCRBY", "totals", "$user", "$amount", "IDS", "2", &ids[0], &ids[1],
        ],
    );
    assert_eq!(slots(&r), ["1", "1"]);
    assert_eq!(hget(&mut con, "totals", "u1").as_deref(), Some("5"));
    assert_eq!(hget(&mut con, "totals", "u2").as_deref(), Some("7"));
    assert!(
        pel(&mut con, "orders", "g").is_empty(),
        "entries not XACKed"
    );
    assert!(sismember(&mut con, DEDUPE, &ids[0]));
    assert!(sismember(&mut con, DEDUPE, &ids[1]));
    assert_eq!(q::<i64>(&mut con, &["SCARD", DEDUPE]), 2);
    // No TTL given: the dedupe set does not expire.
    assert_eq!(q::<i64>(&mut con, &["PTTL", DEDUPE]), -1);
}

#[test]
fn hincrby_literal_increment_adds_to_existing_value() {
    let srv = Server::start();
    let mut con = srv.conn();
    q::<i64>(&mut con, &["HSET", "counts", "orders", "40"]);
    let ids = orders(&mut con, &[&[("x", "1")], &[("x", "2")]]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "HINCRBY", "counts", "orders", "-1", "IDS", "2", &ids[0], &ids[1],
        ],
    );
    assert_eq!(slots(&r), ["1", "1"]);
    assert_eq!(hget(&mut con, "counts", "orders").as_deref(), Some("38"));
}

#[test]
fn hincrbyfloat_applies() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(
        &mut con,
        &[
            &[("amount", "2.5")],
            &[("amount", "0.25")],
            &[("amount", "-1")],
        ],
    );
    let r = xprocess(
        &mut con,
        &[
            "orders",
            "g",
            "HINCRBYFLOAT",
            "totals",
            "sum",
            "$amount",
            "IDS",
            "3",
            &ids[0],
            &ids[1],
            &ids[2],
        ],
    );
    assert_eq!(slots(&r), ["1", "1", "1"]);
    let v: f64 = hget(&mut con, "totals", "sum").unwrap().parse().unwrap();
    assert_eq!(v, 1.75);
}

#[test]
fn sadd_applies() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(
        &mut con,
        &[
            &[("user", "alice")],
            &[("user", "bob")],
            &[("user", "alice")],
        ],
    );
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "SADD", "buyers", "$user", "IDS", "3", &ids[0], &ids[1], &ids[2],
        ],
    );
    // The third entry is new to the dedupe set even if its member is not new
    // to the target set: it is applied.
    assert_eq!(slots(&r), ["1", "1", "1"]);
    let mut members: Vec<String> = q(&mut con, &["SMEMBERS", "buyers"]);
    members.sort();
    assert_eq!(members, ["alice", "bob"]);
    assert!(pel(&mut con, "orders", "g").is_empty());
}

#[test]
fn xadd_fields_with_templates_and_literals() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(&mut con, &[&[("user", "u1"), ("amount", "5")]]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "XADD", "out", "FIELDS", "3", "who", "$user", "src", "$@id", "kind",
            "charge", "IDS", "1", &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    let out = xrange(&mut con, "out");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, ["who", "u1", "src", &ids[0], "kind", "charge"]);
    // XADD uses an auto-generated ID, not the source ID.
    assert_ne!(out[0].0, "0-0");
}

#[test]
fn xadd_entry_copies_all_pairs_in_order() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(
        &mut con,
        &[
            &[("user", "u1"), ("amount", "5"), ("note", "$not-a-template")],
            &[("z", "1"), ("a", "2")],
        ],
    );
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "XADD", "copy", "ENTRY", "IDS", "2", &ids[0], &ids[1],
        ],
    );
    assert_eq!(slots(&r), ["1", "1"]);
    let out = xrange(&mut con, "copy");
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0].1,
        ["user", "u1", "amount", "5", "note", "$not-a-template"]
    );
    assert_eq!(out[1].1, ["z", "1", "a", "2"]);
}

#[test]
fn xadd_maxlen_exact_trims() {
    let srv = Server::start();
    let mut con = srv.conn();
    for i in 1..=5 {
        xadd_id(&mut con, "out", &format!("{i}-1"), &[("old", "x")]);
    }
    let ids = orders(&mut con, &[&[("n", "1")], &[("n", "2")]]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "XADD", "out", "maxlen", "3", "ENTRY", "IDS", "2", &ids[0], &ids[1],
        ],
    );
    assert_eq!(slots(&r), ["1", "1"]);
    let out = xrange(&mut con, "out");
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].0, "5-1");
    assert_eq!(out[1].1, ["n", "1"]);
    assert_eq!(out[2].1, ["n", "2"]);
}

#[test]
fn xadd_maxlen_approx_trims_like_plain_xadd() {
    // Small nodes so that `~` trimming actually removes whole nodes.
    let srv = Server::with(&[], &["--stream-node-max-entries", "5"]);
    let mut con = srv.conn();
    for i in 1..=23 {
        xadd_id(&mut con, "out", &format!("{i}-1"), &[("old", "x")]);
        xadd_id(&mut con, "ref", &format!("{i}-1"), &[("old", "x")]);
    }
    let ids = orders(&mut con, &[&[("n", "1")]]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "XADD", "out", "MAXLEN", "~", "7", "FIELDS", "1", "n", "$n", "IDS", "1",
            &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    q::<String>(
        &mut con,
        &["XADD", "ref", "MAXLEN", "~", "7", "*", "n", "1"],
    );
    let got: i64 = q(&mut con, &["XLEN", "out"]);
    let want: i64 = q(&mut con, &["XLEN", "ref"]);
    assert_eq!(got, want, "approximate trim differs from XADD MAXLEN ~");
    assert!((7..24).contains(&got), "XLEN out = {got}: not trimmed");
    let out = xrange(&mut con, "out");
    assert_eq!(out.last().unwrap().1, ["n", "1"]);
}

#[test]
fn templates_dollar_escape_id_and_literal_key_names() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(&mut con, &[&[("user", "u1"), ("amount", "3")]]);
    let id = ids[0].as_str();
    let r = xprocess(
        &mut con,
        &[
            "orders", "g",
            // `$$` -> literal `$` in field and member; key `$x` stays literal.
            "HINCRBY", "$x", "$$user", "$amount", "SADD", "$members", "$$amount", "SADD", "ids",
            "$@id", "XADD", "$out", "FIELDS", "2", "$$f", "$$$v", "id", "$@id", "IDS", "1", id,
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    assert_eq!(hget(&mut con, "$x", "$user").as_deref(), Some("3"));
    assert!(!exists(&mut con, "u1"), "a key name was templated");
    let m: Vec<String> = q(&mut con, &["SMEMBERS", "$members"]);
    assert_eq!(m, ["$amount"]);
    assert!(sismember(&mut con, "ids", id));
    let out = xrange(&mut con, "$out");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, ["$f", "$$v", "id", id]);
}

#[test]
fn template_names_a_field_literally_even_if_it_looks_like_an_id() {
    let srv = Server::start();
    let mut con = srv.conn();
    // `$user` reads the field `user`, not a field literally named `$user`.
    let ids = orders(&mut con, &[&[("user", "u9"), ("$user", "other")]]);
    let r = xprocess(
        &mut con,
        &["orders", "g", "SADD", "s", "$user", "IDS", "1", &ids[0]],
    );
    assert_eq!(slots(&r), ["1"]);
    let m: Vec<String> = q(&mut con, &["SMEMBERS", "s"]);
    assert_eq!(m, ["u9"]);
}

#[test]
fn batch_mixes_applied_duplicate_and_error() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(
        &mut con,
        &[
            &[("user", "a"), ("amount", "1")],
            &[("user", "b"), ("amount", "10")],
            &[("user", "c")],
            &[("user", "d"), ("amount", "100")],
        ],
    );
    // Process b first so that it is a duplicate in the batch.
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "HINCRBY", "totals", "$user", "$amount", "IDS", "1", &ids[1],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "HINCRBY", "totals", "$user", "$amount", "SADD", "buyers", "$user",
            "IDS", "4", &ids[0], &ids[1], &ids[2], &ids[3],
        ],
    );
    let s = slots(&r);
    assert_eq!(s.len(), 4);
    assert_eq!(s[0], "1");
    assert_eq!(s[1], "0");
    assert_eq!(
        s[2],
        format!("ERR entry {} has no field 'amount'", ids[2]),
        "reply {s:?}"
    );
    assert_eq!(s[3], "1");
    let totals: Vec<String> = q(&mut con, &["HGETALL", "totals"]);
    let mut pairs: Vec<(String, String)> = totals
        .chunks(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "10".to_string()),
            ("d".to_string(), "100".to_string())
        ]
    );
    let mut buyers: Vec<String> = q(&mut con, &["SMEMBERS", "buyers"]);
    buyers.sort();
    assert_eq!(buyers, ["a", "d"], "duplicate b must not run its effects");
    // Only the failed entry stays pending, with its owner.
    assert_eq!(
        pel(&mut con, "orders", "g"),
        [(ids[2].clone(), "c1".to_string())]
    );
    assert!(!sismember(&mut con, DEDUPE, &ids[2]));
    assert_eq!(q::<i64>(&mut con, &["SCARD", DEDUPE]), 3);
}

#[test]
fn retried_call_is_all_duplicates_and_changes_nothing() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(
        &mut con,
        &[
            &[("user", "a"), ("amount", "1")],
            &[("user", "b"), ("amount", "2")],
            &[("user", "a"), ("amount", "3")],
        ],
    );
    let args = [
        "orders",
        "g",
        "HINCRBY",
        "totals",
        "$user",
        "$amount",
        "HINCRBYFLOAT",
        "ftotals",
        "$user",
        "$amount",
        "SADD",
        "buyers",
        "$user",
        "XADD",
        "out",
        "ENTRY",
        "IDS",
        "3",
        &ids[0],
        &ids[1],
        &ids[2],
    ];
    assert_eq!(slots(&xprocess(&mut con, &args)), ["1", "1", "1"]);
    let keys = ["totals", "ftotals", "buyers", "out", DEDUPE, "orders"];
    let before_values = digest_value(&mut con, &keys);
    let before = digest(&mut con);
    assert_eq!(hget(&mut con, "totals", "a").as_deref(), Some("4"));
    assert_eq!(slots(&xprocess(&mut con, &args)), ["0", "0", "0"]);
    assert_eq!(digest_value(&mut con, &keys), before_values);
    assert_eq!(digest(&mut con), before);
    assert_eq!(hget(&mut con, "totals", "a").as_deref(), Some("4"));
    assert_eq!(q::<i64>(&mut con, &["XLEN", "out"]), 3);
}

#[test]
fn duplicate_that_is_still_pending_is_acked_without_effects() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(&mut con, &[&[("user", "a"), ("amount", "1")]]);
    // A previous run recorded it in the dedupe set but died before XACK.
    q::<i64>(&mut con, &["SADD", DEDUPE, &ids[0]]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "HINCRBY", "totals", "$user", "$amount", "IDS", "1", &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["0"]);
    assert!(!exists(&mut con, "totals"), "duplicate applied its effect");
    assert!(
        pel(&mut con, "orders", "g").is_empty(),
        "duplicate not XACKed"
    );
}

#[test]
fn dedupe_set_is_a_plain_set() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(&mut con, &[&[("user", "a")], &[("user", "b")]]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "SADD", "s", "$user", "IDS", "2", &ids[0], &ids[1],
        ],
    );
    assert_eq!(slots(&r), ["1", "1"]);
    assert_eq!(q::<String>(&mut con, &["TYPE", DEDUPE]), "set");
    let mut members: Vec<String> = q(&mut con, &["SMEMBERS", DEDUPE]);
    members.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(members, want);
    assert_eq!(q::<i64>(&mut con, &["SISMEMBER", DEDUPE, &ids[1]]), 1);
    assert_eq!(q::<i64>(&mut con, &["SISMEMBER", DEDUPE, "0-1"]), 0);
}

/// Process one entry of `stream` with the derived dedupe key, return its ID.
fn process_one(con: &mut redis::Connection, stream: &str, group: &str) -> (String, Vec<String>) {
    let ids = pending(con, stream, group, "c1", &[&[("user", "a")]]);
    let r = xprocess(
        con,
        &[stream, group, "SADD", "s", "$user", "IDS", "1", &ids[0]],
    );
    (ids[0].clone(), slots(&r))
}

#[test]
fn derived_dedupe_key_names() {
    let srv = Server::start();
    let mut con = srv.conn();
    let cases = [
        // no hash tag, no `}`: wrapped in braces
        ("orders", "g1", "{orders}:xprocess:g1"),
        ("{open", "g1", "{{open}:xprocess:g1"),
        // hash tag: appended as is
        ("orders{eu}", "g2", "orders{eu}:xprocess:g2"),
        ("{eu}orders", "g2", "{eu}orders:xprocess:g2"),
        // `}` before a valid tag still has a tag
        ("a}b{c}", "g3", "a}b{c}:xprocess:g3"),
    ];
    for (stream, group, want) in cases {
        let (id, r) = process_one(&mut con, stream, group);
        assert_eq!(r, ["1"], "{stream}");
        assert!(
            sismember(&mut con, want, &id),
            "{stream}: no dedupe set {want}"
        );
    }
    let keys: Vec<String> = q(&mut con, &["KEYS", "*xprocess*"]);
    assert_eq!(keys.len(), cases.len(), "unexpected keys {keys:?}");
}

#[test]
fn explicit_dedupe_key() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(&mut con, &[&[("user", "a")]]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "DEDUPE", "my:done", "SADD", "s", "$user", "IDS", "1", &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    assert!(sismember(&mut con, "my:done", &ids[0]));
    assert!(
        !exists(&mut con, DEDUPE),
        "derived key written despite DEDUPE"
    );
    // The explicit set is the one consulted for duplicates.
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "DEDUPE", "my:done", "SADD", "s2", "$user", "IDS", "1", &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["0"]);
    assert!(!exists(&mut con, "s2"));
}

#[test]
fn explicit_dedupe_key_allows_keys_without_hash_tag() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = pending(&mut con, "a}b", "g", "c1", &[&[("user", "a")]]);
    let r = xprocess(
        &mut con,
        &[
            "a}b", "g", "DEDUPE", "d", "SADD", "s", "$user", "IDS", "1", &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    assert!(sismember(&mut con, "d", &ids[0]));
}

#[test]
fn ttl_sets_and_refreshes_expiry() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(&mut con, &[&[("user", "a")], &[("user", "b")]]);
    let run = |con: &mut redis::Connection, id: &str| {
        slots(&xprocess(
            con,
            &[
                "orders", "g", "TTL", "60000", "SADD", "s", "$user", "IDS", "1", id,
            ],
        ))
    };
    assert_eq!(run(&mut con, &ids[0]), ["1"]);
    let pttl: i64 = q(&mut con, &["PTTL", DEDUPE]);
    assert!(pttl > 0 && pttl <= 60000, "PTTL {pttl}");
    // Shorten it, then a new write must refresh it to the full TTL.
    q::<i64>(&mut con, &["PEXPIRE", DEDUPE, "5000"]);
    assert_eq!(run(&mut con, &ids[1]), ["1"]);
    let pttl: i64 = q(&mut con, &["PTTL", DEDUPE]);
    assert!(
        pttl > 5000 && pttl <= 60000,
        "TTL not refreshed: PTTL {pttl}"
    );
}

#[test]
fn consumer_fencing_after_xclaim() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = pending(
        &mut con,
        "orders",
        "g",
        "A",
        &[&[("user", "u"), ("amount", "5")]],
    );
    let id = ids[0].as_str();
    // A stalls; B claims the entry.
    let claimed: redis::Value = q(&mut con, &["XCLAIM", "orders", "g", "B", "0", id, "JUSTID"]);
    assert_eq!(
        claimed,
        redis::Value::Array(vec![redis::Value::BulkString(id.into())])
    );
    let args = |consumer: &'static str| {
        vec![
            "orders", "g", "CONSUMER", consumer, "HINCRBY", "totals", "$user", "$amount", "IDS",
            "1", id,
        ]
    };
    let before = digest(&mut con);
    let r = xprocess(&mut con, &args("A"));
    assert_eq!(
        slots(&r),
        [format!(
            "NOTOWNER entry {id} is pending for consumer 'B', not for consumer 'A'"
        )]
    );
    assert_eq!(digest(&mut con), before, "the zombie changed something");
    assert_eq!(owner(&mut con, "orders", "g", id).as_deref(), Some("B"));
    assert!(!exists(&mut con, "totals"));
    // The new owner processes it.
    assert_eq!(slots(&xprocess(&mut con, &args("B"))), ["1"]);
    assert_eq!(hget(&mut con, "totals", "u").as_deref(), Some("5"));
    assert!(pel(&mut con, "orders", "g").is_empty());
    // The zombie retries: it is a duplicate now, nothing runs twice.
    assert_eq!(slots(&xprocess(&mut con, &args("A"))), ["0"]);
    assert_eq!(hget(&mut con, "totals", "u").as_deref(), Some("5"));
}

#[test]
fn consumer_fencing_entry_not_pending() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = pending(&mut con, "orders", "g", "A", &[&[("user", "u")]]);
    let id = ids[0].as_str();
    // Acked by hand without a dedupe record: no longer pending.
    q::<i64>(&mut con, &["XACK", "orders", "g", id]);
    // Added but never delivered to the group.
    let undelivered = xadd_id(&mut con, "orders", "*", &[("user", "v")]);
    let before = digest(&mut con);
    let r = xprocess(
        &mut con,
        &[
            "orders",
            "g",
            "CONSUMER",
            "A",
            "SADD",
            "s",
            "$user",
            "IDS",
            "2",
            id,
            &undelivered,
        ],
    );
    assert_eq!(
        slots(&r),
        [
            format!("NOTOWNER entry {id} is not pending in the group, not for consumer 'A'"),
            format!(
                "NOTOWNER entry {undelivered} is not pending in the group, not for consumer 'A'"
            ),
        ]
    );
    assert_eq!(digest(&mut con), before);
}

#[test]
fn without_consumer_an_undelivered_entry_is_processed() {
    let srv = Server::start();
    let mut con = srv.conn();
    pending(&mut con, "orders", "g", "A", &[]);
    let id = xadd_id(&mut con, "orders", "*", &[("user", "u")]);
    let r = xprocess(
        &mut con,
        &["orders", "g", "SADD", "s", "$user", "IDS", "1", &id],
    );
    assert_eq!(slots(&r), ["1"]);
    assert!(sismember(&mut con, "s", "u"));
    assert!(sismember(&mut con, DEDUPE, &id));
}

#[test]
fn options_are_case_insensitive_and_in_any_order() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = pending(
        &mut con,
        "orders",
        "g",
        "me",
        &[
            &[("user", "u"), ("amount", "2")],
            &[("user", "u"), ("amount", "3")],
        ],
    );
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "ttl", "30000", "Dedupe", "d1", "consumer", "me", "hincrby", "t",
            "$user", "$amount", "ids", "1", &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "CONSUMER", "me", "TTL", "30000", "DEDUPE", "d1", "HincrBy", "t",
            "$user", "$amount", "iDs", "1", &ids[1],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    assert_eq!(hget(&mut con, "t", "u").as_deref(), Some("5"));
    let pttl: i64 = q(&mut con, &["PTTL", "d1"]);
    assert!(pttl > 0 && pttl <= 30000, "PTTL {pttl}");
    assert_eq!(q::<i64>(&mut con, &["SCARD", "d1"]), 2);
    // Lowercase effect names and sub-tokens too.
    let more = pending(&mut con, "orders", "g", "me", &[&[("user", "w")]]);
    let r = xprocess(
        &mut con,
        &[
            "orders",
            "g",
            "sadd",
            "s",
            "$user",
            "xadd",
            "x",
            "maxlen",
            "~",
            "10",
            "fields",
            "1",
            "f",
            "$user",
            "hincrbyfloat",
            "t",
            "f",
            "1.5",
            "xadd",
            "y",
            "entry",
            "ids",
            "1",
            &more[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    assert!(sismember(&mut con, "s", "w"));
    assert_eq!(xrange(&mut con, "x")[0].1, ["f", "w"]);
    assert_eq!(xrange(&mut con, "y")[0].1, ["user", "w"]);
    assert_eq!(hget(&mut con, "t", "f").as_deref(), Some("1.5"));
}

#[test]
fn command_getkeys_lists_stream_dedupe_and_effect_keys() {
    let srv = Server::start();
    let mut con = srv.conn();
    let keys: Vec<String> = q(
        &mut con,
        &[
            "COMMAND",
            "GETKEYS",
            "XPROCESS",
            "orders",
            "g",
            "CONSUMER",
            "c",
            "DEDUPE",
            "dd",
            "TTL",
            "10",
            "HINCRBY",
            "h1",
            "$f",
            "1",
            "HINCRBYFLOAT",
            "h2",
            "f",
            "$v",
            "SADD",
            "$s",
            "$m",
            "XADD",
            "x1",
            "MAXLEN",
            "~",
            "5",
            "FIELDS",
            "1",
            "a",
            "b",
            "XADD",
            "x2",
            "ENTRY",
            "IDS",
            "2",
            "1-1",
            "2-2",
        ],
    );
    assert_eq!(keys, ["orders", "dd", "h1", "h2", "$s", "x1", "x2"]);
    // Without DEDUPE: the derived key is not in argv, so not listed.
    let keys: Vec<String> = q(
        &mut con,
        &[
            "COMMAND", "GETKEYS", "XPROCESS", "orders", "g", "SADD", "s", "m", "IDS", "1", "1-1",
        ],
    );
    assert_eq!(keys, ["orders", "s"]);
}

#[test]
fn command_info_reports_write_flags() {
    let srv = Server::start();
    let mut con = srv.conn();
    let info: redis::Value = q(&mut con, &["COMMAND", "INFO", "xprocess"]);
    let text = format!("{info:?}");
    assert!(text.contains("write"), "flags missing write: {text}");
    assert!(text.contains("denyoom"), "flags missing denyoom: {text}");
}

#[test]
fn command_info_reports_arity() {
    let srv = Server::start();
    let mut con = srv.conn();
    // [[name, arity, flags, first, last, step, ...]]
    let info: Vec<Vec<redis::Value>> = q(&mut con, &["COMMAND", "INFO", "xprocess"]);
    let arity: i64 = redis::from_redis_value(&info[0][1]).unwrap();
    // The shortest valid call: XPROCESS key group SADD k m IDS 1 id.
    assert_eq!(arity, -9);
}

#[test]
fn ttl_zero_sets_no_expiry() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(&mut con, &[&[("user", "a")]]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "TTL", "0", "SADD", "s", "$user", "IDS", "1", &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    assert_eq!(q::<i64>(&mut con, &["PTTL", DEDUPE]), -1);
}

#[test]
fn duplicates_only_do_not_refresh_ttl() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(&mut con, &[&[("user", "a")]]);
    let args = [
        "orders", "g", "TTL", "60000", "SADD", "s", "$user", "IDS", "1", &ids[0],
    ];
    assert_eq!(slots(&xprocess(&mut con, &args)), ["1"]);
    q::<i64>(&mut con, &["PEXPIRE", DEDUPE, "5000"]);
    assert_eq!(slots(&xprocess(&mut con, &args)), ["0"]);
    let pttl: i64 = q(&mut con, &["PTTL", DEDUPE]);
    assert!(pttl > 0 && pttl <= 5000, "PTTL {pttl}");
}

#[test]
fn default_ttl_module_config() {
    let srv = Server::with(&["default-ttl", "60000"], &[]);
    let mut con = srv.conn();
    let got: Vec<String> = q(&mut con, &["CONFIG", "GET", "xprocess.default-ttl"]);
    assert_eq!(got, ["xprocess.default-ttl", "60000"]);
    let ids = orders(&mut con, &[&[("user", "a")], &[("user", "b")]]);
    let one = |con: &mut redis::Connection, opts: &[&str], id: &str| {
        let mut args = vec!["orders", "g"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["SADD", "s", "$user", "IDS", "1", id]);
        slots(&xprocess(con, &args))
    };
    // No TTL option: the configured default applies.
    assert_eq!(one(&mut con, &[], &ids[0]), ["1"]);
    let pttl: i64 = q(&mut con, &["PTTL", DEDUPE]);
    assert!(pttl > 5000 && pttl <= 60000, "PTTL {pttl}");
    // An explicit TTL wins over the default.
    assert_eq!(one(&mut con, &["TTL", "5000"], &ids[1]), ["1"]);
    let pttl: i64 = q(&mut con, &["PTTL", DEDUPE]);
    assert!(pttl > 0 && pttl <= 5000, "PTTL {pttl}");
    // Changed at run time; 0 means no expiry for new sets.
    q::<String>(&mut con, &["CONFIG", "SET", "xprocess.default-ttl", "0"]);
    let more = pending(&mut con, "orders", "g2", "c1", &[&[("user", "c")]]);
    let r = xprocess(
        &mut con,
        &["orders", "g2", "SADD", "s", "$user", "IDS", "1", &more[0]],
    );
    assert_eq!(slots(&r), ["1"]);
    assert_eq!(q::<i64>(&mut con, &["PTTL", "{orders}:xprocess:g2"]), -1);
    let bad = call(&mut con, &["CONFIG", "SET", "xprocess.default-ttl", "-1"]);
    assert!(error_text(&bad).is_some(), "negative default TTL accepted");
}

#[test]
fn deny_oom_refuses_over_maxmemory() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(&mut con, &[&[("user", "a")]]);
    let before = digest(&mut con);
    q::<String>(&mut con, &["CONFIG", "SET", "maxmemory", "1"]);
    let r = xprocess(
        &mut con,
        &["orders", "g", "SADD", "s", "$user", "IDS", "1", &ids[0]],
    );
    q::<String>(&mut con, &["CONFIG", "SET", "maxmemory", "0"]);
    assert!(err(&r).starts_with("OOM"), "{r:?}");
    assert_eq!(digest(&mut con), before);
}

#[test]
fn module_load_at_run_time() {
    let srv = Server::without_module(&["--enable-module-command", "yes"]);
    let mut con = srv.conn();
    let path = module_path().display().to_string();
    assert_eq!(q::<String>(&mut con, &["MODULE", "LOAD", &path]), "OK");
    let list: redis::Value = q(&mut con, &["MODULE", "LIST"]);
    assert!(format!("{list:?}").contains("xprocess"), "{list:?}");
    let ids = orders(&mut con, &[&[("user", "a")]]);
    let r = xprocess(
        &mut con,
        &["orders", "g", "SADD", "s", "$user", "IDS", "1", &ids[0]],
    );
    assert_eq!(slots(&r), ["1"]);
}

#[test]
fn arguments_that_look_like_keywords_are_positional() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = pending(&mut con, "CONSUMER", "TTL", "c1", &[&[("user", "a")]]);
    let r = xprocess(
        &mut con,
        &[
            "CONSUMER", "TTL", "DEDUPE", "SADD", "SADD", "IDS", "IDS", "HINCRBY", "XADD",
            "HINCRBY", "1", "XADD", "ENTRY", "FIELDS", "1", "IDS", "TTL", "IDS", "1", &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    assert!(sismember(&mut con, "IDS", "IDS"));
    assert!(sismember(&mut con, "SADD", &ids[0]), "DEDUPE key not used");
    assert_eq!(hget(&mut con, "XADD", "HINCRBY").as_deref(), Some("1"));
    assert_eq!(xrange(&mut con, "ENTRY")[0].1, ["IDS", "TTL"]);
    let keys: Vec<String> = q(
        &mut con,
        &[
            "COMMAND", "GETKEYS", "XPROCESS", "CONSUMER", "TTL", "DEDUPE", "SADD", "SADD", "IDS",
            "IDS", "HINCRBY", "XADD", "HINCRBY", "1", "XADD", "ENTRY", "FIELDS", "1", "IDS", "TTL",
            "IDS", "1", "1-1",
        ],
    );
    assert_eq!(keys, ["CONSUMER", "SADD", "IDS", "XADD", "ENTRY"]);
}

#[test]
fn large_batch() {
    let srv = Server::start();
    let mut con = srv.conn();
    let amounts: Vec<String> = (1..=500).map(|i| i.to_string()).collect();
    let entries: Vec<[(&str, &str); 1]> =
        amounts.iter().map(|a| [("amount", a.as_str())]).collect();
    let entries: Vec<&[(&str, &str)]> = entries.iter().map(|e| &e[..]).collect();
    let ids = orders(&mut con, &entries);
    let mut args = vec![
        "orders", "g", "HINCRBY", "t", "sum", "$amount", "IDS", "500",
    ];
    args.extend(ids.iter().map(String::as_str));
    let r = slots(&xprocess(&mut con, &args));
    assert_eq!(r.len(), 500);
    assert!(r.iter().all(|s| s == "1"), "{r:?}");
    assert_eq!(hget(&mut con, "t", "sum").as_deref(), Some("125250"));
    assert_eq!(q::<i64>(&mut con, &["SCARD", DEDUPE]), 500);
    assert!(pel(&mut con, "orders", "g").is_empty());
    let r = slots(&xprocess(&mut con, &args));
    assert!(r.iter().all(|s| s == "0"), "{r:?}");
}
