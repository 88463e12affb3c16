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
    assert_eq!(
        processed_flags(&mut con, DEDUPE, &[&ids[0], &ids[1]]),
        [true, true]
    );
    assert_eq!(recorded(&mut con, DEDUPE), 2);
    // A new dedupe key is an index, which never expires.
    assert_eq!(q::<String>(&mut con, &["TYPE", DEDUPE]), "xproc-idx");
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
            "orders",
            "g",
            // `$$` -> literal `$` in keys, fields and members.
            "HINCRBY",
            "$$x",
            "$$user",
            "$amount",
            "SADD",
            "$$members",
            "$$amount",
            "SADD",
            "ids",
            "$@id",
            "XADD",
            "$$out",
            "FIELDS",
            "2",
            "$$f",
            "$$$v",
            "id",
            "$@id",
            "IDS",
            "1",
            id,
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
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(
        processed_flags(&mut con, DEDUPE, &ids),
        [true, true, false, true]
    );
    assert_eq!(recorded(&mut con, DEDUPE), 3);
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
fn duplicate_in_an_index_that_is_still_pending_is_acked_without_effects() {
    let srv = Server::start();
    let mut con = srv.conn();
    // Group g2 also read the entry; g processed it into the shared index.
    let ids = pending(
        &mut con,
        "orders",
        "g2",
        "c2",
        &[&[("user", "a"), ("amount", "1")]],
    );
    q::<String>(&mut con, &["XGROUP", "CREATE", "orders", "g", "0"]);
    let run = |con: &mut redis::Connection, group: &str| {
        let args = [
            "orders", group, "DEDUPE", "shared", "HINCRBY", "totals", "$user", "$amount", "IDS",
            "1", &ids[0],
        ];
        slots(&xprocess(con, &args))
    };
    assert_eq!(run(&mut con, "g"), ["1"]);
    assert_eq!(q::<String>(&mut con, &["TYPE", "shared"]), "xproc-idx");
    assert_eq!(pel(&mut con, "orders", "g2").len(), 1);
    assert_eq!(run(&mut con, "g2"), ["0"]);
    assert_eq!(hget(&mut con, "totals", "a").as_deref(), Some("1"));
    assert!(
        pel(&mut con, "orders", "g2").is_empty(),
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
            "orders", "g", "STORE", "SET", "SADD", "s", "$user", "IDS", "2", &ids[0], &ids[1],
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
            processed(&mut con, want, &id),
            "{stream}: no dedupe record in {want}"
        );
        assert_eq!(q::<String>(&mut con, &["TYPE", want]), "xproc-idx");
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
    assert!(processed(&mut con, "my:done", &ids[0]));
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
    assert!(processed(&mut con, "d", &ids[0]));
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
                "orders", "g", "STORE", "SET", "TTL", "60000", "SADD", "s", "$user", "IDS", "1", id,
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
    assert!(processed(&mut con, DEDUPE, &id));
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
            "orders", "g", "ttl", "30000", "Dedupe", "d1", "store", "set", "consumer", "me",
            "hincrby", "t", "$user", "$amount", "ids", "1", &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "sToRe", "SeT", "CONSUMER", "me", "TTL", "30000", "DEDUPE", "d1",
            "HincrBy", "t", "$user", "$amount", "iDs", "1", &ids[1],
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
            "STORE",
            "SET",
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
    // `$s` is a template (the entry's field `s`): known per entry, not listed.
    assert_eq!(keys, ["orders", "dd", "h1", "h2", "x1", "x2"]);
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
    // The shortest valid call: XPROCESS key group CONSUMER c READ (the
    // group's definition).
    assert_eq!(arity, -6);
}

#[test]
fn ttl_zero_sets_no_expiry() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = orders(&mut con, &[&[("user", "a")]]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "STORE", "SET", "TTL", "0", "SADD", "s", "$user", "IDS", "1", &ids[0],
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
        "orders", "g", "STORE", "SET", "TTL", "60000", "SADD", "s", "$user", "IDS", "1", &ids[0],
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
    // The config applies to Sets only.
    let one = |con: &mut redis::Connection, opts: &[&str], id: &str| {
        let mut args = vec!["orders", "g", "STORE", "SET"];
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
        &[
            "orders", "g2", "STORE", "SET", "SADD", "s", "$user", "IDS", "1", &more[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    assert_eq!(
        q::<String>(&mut con, &["TYPE", "{orders}:xprocess:g2"]),
        "set"
    );
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
    assert!(processed(&mut con, "SADD", &ids[0]), "DEDUPE key not used");
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
    assert_eq!(recorded(&mut con, DEDUPE), 500);
    // 500 consecutive entries of the stream: one range.
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "ranges"), 1);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert!(processed_flags(&mut con, DEDUPE, &ids).iter().all(|p| *p));
    assert!(pel(&mut con, "orders", "g").is_empty());
    let r = slots(&xprocess(&mut con, &args));
    assert!(r.iter().all(|s| s == "0"), "{r:?}");
}

// ---- the dedupe store: INDEX (the default) or SET ------------------------------

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const TTL_ON_INDEX: &str = "ERR TTL applies to a Set dedupe store only, an index never needs to expire (use STORE SET for a Set)";
const BAD_STREAM_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// `XPROCESS orders g <opts> HINCRBY totals $user $amount IDS <ids>`.
fn charge(con: &mut redis::Connection, opts: &[&str], ids: &[&str]) -> redis::Value {
    let n = ids.len().to_string();
    let mut args = vec!["orders", "g"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["HINCRBY", "totals", "$user", "$amount", "IDS", &n]);
    args.extend_from_slice(ids);
    xprocess(con, &args)
}

/// Three entries of `orders` pending for c1, amounts 1, 10 and 100 for `u`.
fn three_orders(con: &mut redis::Connection) -> Vec<String> {
    orders(
        con,
        &[
            &[("user", "u"), ("amount", "1")],
            &[("user", "u"), ("amount", "10")],
            &[("user", "u"), ("amount", "100")],
        ],
    )
}

/// `charge` must be the whole-call error `want`, and change nothing at all.
fn refused(con: &mut redis::Connection, opts: &[&str], ids: &[&str], want: &str) {
    let before = digest(con);
    let pel_before = pel(con, "orders", "g");
    assert_eq!(err(&charge(con, opts, ids)), want, "{opts:?}");
    assert_eq!(digest(con), before, "{opts:?} changed the dataset");
    assert_eq!(pel(con, "orders", "g"), pel_before, "{opts:?} acked");
}

#[test]
fn missing_dedupe_key_becomes_an_index() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = three_orders(&mut con);
    assert_eq!(slots(&charge(&mut con, &[], &[&ids[0]])), ["1"]);
    assert_eq!(q::<String>(&mut con, &["TYPE", DEDUPE]), "xproc-idx");
    assert_eq!(q::<i64>(&mut con, &["PTTL", DEDUPE]), -1);
    // Plain Set commands do not work on it.
    assert_eq!(
        err(&call(&mut con, &["SISMEMBER", DEDUPE, &ids[0]])),
        WRONGTYPE
    );
    // STORE INDEX on the same (now existing) index is accepted, and so is
    // STORE INDEX on a missing key.
    assert_eq!(
        slots(&charge(&mut con, &["STORE", "INDEX"], &[&ids[0], &ids[1]])),
        ["0", "1"]
    );
    let ids2 = pending(&mut con, "orders", "g2", "c1", &[&[("user", "v")]]);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g2", "store", "index", "SADD", "s", "$user", "IDS", "1", &ids2[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    assert_eq!(
        q::<String>(&mut con, &["TYPE", "{orders}:xprocess:g2"]),
        "xproc-idx"
    );
    assert_eq!(hget(&mut con, "totals", "u").as_deref(), Some("11"));
}

#[test]
fn store_set_on_a_missing_key_creates_a_plain_set() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = three_orders(&mut con);
    assert_eq!(
        slots(&charge(&mut con, &["STORE", "SET"], &[&ids[0], &ids[1]])),
        ["1", "1"]
    );
    assert_eq!(q::<String>(&mut con, &["TYPE", DEDUPE]), "set");
    let mut members: Vec<String> = q(&mut con, &["SMEMBERS", DEDUPE]);
    members.sort();
    assert_eq!(members, [ids[0].clone(), ids[1].clone()]);
    // Later calls without STORE keep using the Set (and may give a TTL).
    let r = charge(&mut con, &["TTL", "60000"], &[&ids[1], &ids[2]]);
    assert_eq!(slots(&r), ["0", "1"]);
    assert_eq!(q::<String>(&mut con, &["TYPE", DEDUPE]), "set");
    assert_eq!(q::<i64>(&mut con, &["SCARD", DEDUPE]), 3);
    let pttl: i64 = q(&mut con, &["PTTL", DEDUPE]);
    assert!(pttl > 0 && pttl <= 60000, "PTTL {pttl}");
    assert_eq!(hget(&mut con, "totals", "u").as_deref(), Some("111"));
}

#[test]
fn an_existing_set_without_store_is_used_as_a_set() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = three_orders(&mut con);
    // A dedupe set written before indexes existed (or by the Lua script).
    q::<i64>(&mut con, &["SADD", DEDUPE, &ids[0]]);
    let r = charge(&mut con, &[], &[&ids[0], &ids[1]]);
    assert_eq!(slots(&r), ["0", "1"], "the Set's record was not consulted");
    assert_eq!(q::<String>(&mut con, &["TYPE", DEDUPE]), "set");
    assert!(sismember(&mut con, DEDUPE, &ids[1]));
    assert_eq!(q::<i64>(&mut con, &["SCARD", DEDUPE]), 2);
    assert_eq!(hget(&mut con, "totals", "u").as_deref(), Some("10"));
    // Asking for what it is works too.
    assert_eq!(
        slots(&charge(&mut con, &["STORE", "SET"], &[&ids[2]])),
        ["1"]
    );
    assert_eq!(q::<i64>(&mut con, &["SCARD", DEDUPE]), 3);
}

#[test]
fn store_index_on_an_existing_set_is_wrongtype() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = three_orders(&mut con);
    assert_eq!(
        slots(&charge(&mut con, &["STORE", "SET"], &[&ids[0]])),
        ["1"]
    );
    refused(
        &mut con,
        &["STORE", "INDEX"],
        &[&ids[1], &ids[2]],
        WRONGTYPE,
    );
    // A duplicate-only call is refused as well: the check is for the call.
    refused(&mut con, &["STORE", "INDEX"], &[&ids[0]], WRONGTYPE);
    assert_eq!(q::<String>(&mut con, &["TYPE", DEDUPE]), "set");
    assert_eq!(q::<i64>(&mut con, &["SCARD", DEDUPE]), 1);
    assert_eq!(hget(&mut con, "totals", "u").as_deref(), Some("1"));
}

#[test]
fn store_set_on_an_existing_index_is_wrongtype() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = three_orders(&mut con);
    assert_eq!(slots(&charge(&mut con, &[], &[&ids[0]])), ["1"]);
    refused(&mut con, &["STORE", "SET"], &[&ids[1], &ids[2]], WRONGTYPE);
    refused(
        &mut con,
        &["STORE", "SET", "TTL", "1000"],
        &[&ids[1]],
        WRONGTYPE,
    );
    assert_eq!(q::<String>(&mut con, &["TYPE", DEDUPE]), "xproc-idx");
    assert_eq!(recorded(&mut con, DEDUPE), 1);
    assert_eq!(
        processed_flags(&mut con, DEDUPE, &[&ids[0], &ids[1], &ids[2]]),
        [true, false, false]
    );
    assert_eq!(hget(&mut con, "totals", "u").as_deref(), Some("1"));
}

#[test]
fn ttl_with_an_index_is_a_whole_call_error() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = three_orders(&mut con);
    // On a missing key (which would become an index): nothing is created.
    refused(&mut con, &["TTL", "60000"], &[&ids[0]], TTL_ON_INDEX);
    refused(
        &mut con,
        &["STORE", "INDEX", "TTL", "0"],
        &[&ids[0]],
        TTL_ON_INDEX,
    );
    assert!(!exists(&mut con, DEDUPE), "the dedupe key was created");
    assert!(!exists(&mut con, "totals"));
    // On an existing index.
    assert_eq!(slots(&charge(&mut con, &[], &[&ids[0]])), ["1"]);
    refused(&mut con, &["TTL", "60000"], &[&ids[1]], TTL_ON_INDEX);
    refused(
        &mut con,
        &["TTL", "5", "STORE", "INDEX"],
        &[&ids[1]],
        TTL_ON_INDEX,
    );
    assert_eq!(q::<i64>(&mut con, &["PTTL", DEDUPE]), -1);
    assert!(!processed(&mut con, DEDUPE, &ids[1]));
}

#[test]
fn default_ttl_config_does_not_apply_to_an_index() {
    let srv = Server::with(&["default-ttl", "60000"], &[]);
    let mut con = srv.conn();
    let ids = three_orders(&mut con);
    // No TTL option: no error, and the new index does not expire.
    assert_eq!(slots(&charge(&mut con, &[], &[&ids[0]])), ["1"]);
    assert_eq!(q::<String>(&mut con, &["TYPE", DEDUPE]), "xproc-idx");
    assert_eq!(q::<i64>(&mut con, &["PTTL", DEDUPE]), -1);
    assert_eq!(slots(&charge(&mut con, &[], &[&ids[1]])), ["1"]);
    assert_eq!(q::<i64>(&mut con, &["PTTL", DEDUPE]), -1);
}

#[test]
fn an_index_belongs_to_one_stream_a_set_may_be_shared() {
    let srv = Server::start();
    let mut con = srv.conn();
    // Distinct IDs: in a shared Set, the same ID in two streams is one entry.
    let a = [xadd_id(&mut con, "{t}a", "1-1", &[("user", "x")])];
    let b = [xadd_id(&mut con, "{t}b", "2-1", &[("user", "y")])];
    for stream in ["{t}a", "{t}b"] {
        q::<String>(&mut con, &["XGROUP", "CREATE", stream, "g", "0"]);
    }
    q::<redis::Value>(
        &mut con,
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "{t}b", ">"],
    );
    let run =
        |con: &mut redis::Connection, stream: &str, dedupe: &str, store: &[&str], id: &str| {
            let mut args = vec![stream, "g", "DEDUPE", dedupe];
            args.extend_from_slice(store);
            args.extend_from_slice(&["SADD", "{t}seen", "$user", "IDS", "1", id]);
            xprocess(con, &args)
        };
    assert_eq!(slots(&run(&mut con, "{t}a", "{t}idx", &[], &a[0])), ["1"]);
    let before = digest(&mut con);
    assert_eq!(
        err(&run(&mut con, "{t}b", "{t}idx", &[], &b[0])),
        "ERR the dedupe index '{t}idx' belongs to stream '{t}a', not to '{t}b'"
    );
    assert_eq!(digest(&mut con), before);
    assert_eq!(pel(&mut con, "{t}b", "g").len(), 1);
    // Two streams may share a Set.
    assert_eq!(
        slots(&run(&mut con, "{t}a", "{t}set", &["STORE", "SET"], &a[0])),
        ["1"]
    );
    assert_eq!(slots(&run(&mut con, "{t}b", "{t}set", &[], &b[0])), ["1"]);
    assert_eq!(q::<i64>(&mut con, &["SCARD", "{t}set"]), 2);
    let info = dedupe_info(&mut con, "{t}idx");
    assert_eq!(info["stream"], redis::Value::BulkString(b"{t}a".to_vec()));
}

#[test]
fn an_effect_on_the_dedupe_index_is_a_per_entry_wrongtype() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = three_orders(&mut con);
    assert_eq!(slots(&charge(&mut con, &[], &[&ids[0]])), ["1"]);
    let before = digest(&mut con);
    let r = xprocess(
        &mut con,
        &[
            "orders", "g", "SADD", DEDUPE, "$@id", "IDS", "2", &ids[0], &ids[1],
        ],
    );
    assert_eq!(slots(&r), ["0", WRONGTYPE]);
    assert_eq!(digest(&mut con), before);
    assert_eq!(
        owner(&mut con, "orders", "g", &ids[1]).as_deref(),
        Some("c1")
    );
}

// ---- XPROCESS.EXISTS / FORGET / INFO ---------------------------------------------

/// `ids[0]` and `ids[2]` of [`three_orders`] processed into `DEDUPE` as a
/// `store`; `ids[1]` left pending.
fn first_and_last(con: &mut redis::Connection, store: Store) -> Vec<String> {
    let ids = three_orders(con);
    let opts: &[&str] = match store {
        Store::Index => &[],
        Store::Set => &["STORE", "SET"],
    };
    assert_eq!(slots(&charge(con, opts, &[&ids[0], &ids[2]])), ["1", "1"]);
    assert_eq!(q::<String>(con, &["TYPE", DEDUPE]), store.type_name());
    ids
}

#[test]
fn exists_answers_per_id_on_both_stores() {
    for store in [Store::Index, Store::Set] {
        let srv = Server::start();
        let mut con = srv.conn();
        let ids = first_and_last(&mut con, store);
        let (ms, _) = ids[0].split_once('-').unwrap();
        let r: Vec<i64> = q(
            &mut con,
            &[
                "XPROCESS.EXISTS",
                DEDUPE,
                &ids[0],
                &ids[1],
                &ids[2],
                "0-1",
                &ids[2],
            ],
        );
        assert_eq!(r, [1, 0, 1, 0, 1], "{store:?}");
        // An ID given as `ms` means `ms-0` (the first entry of a new stream
        // has sequence 0).
        assert_eq!(ids[0], format!("{ms}-0"));
        let r: Vec<i64> = q(&mut con, &["XPROCESS.EXISTS", DEDUPE, ms]);
        assert_eq!(r, [1], "{store:?}");
        // It reads only.
        let before = digest(&mut con);
        let _: Vec<i64> = q(&mut con, &["XPROCESS.EXISTS", DEDUPE, &ids[1]]);
        assert_eq!(digest(&mut con), before);
    }
}

#[test]
fn exists_on_a_missing_key_wrong_type_or_bad_id() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = first_and_last(&mut con, Store::Index);
    let r: Vec<i64> = q(&mut con, &["XPROCESS.EXISTS", "nosuchkey", &ids[0], "1-1"]);
    assert_eq!(r, [0, 0]);
    assert!(!exists(&mut con, "nosuchkey"));
    q::<String>(&mut con, &["SET", "str", "x"]);
    for key in ["str", "orders"] {
        let r = call(&mut con, &["XPROCESS.EXISTS", key, &ids[0]]);
        assert_eq!(err(&r), WRONGTYPE, "{key}");
    }
    for bad in ["foo", "1-x", "", "-", "+", "$", ">", "1-2-3"] {
        for key in [DEDUPE, "nosuchkey"] {
            let r = call(&mut con, &["XPROCESS.EXISTS", key, &ids[0], bad]);
            assert_eq!(err(&r), BAD_STREAM_ID, "{key} {bad:?}");
        }
    }
    let r = call(&mut con, &["XPROCESS.EXISTS", DEDUPE]);
    assert!(
        err(&r).starts_with("ERR wrong number of arguments"),
        "{r:?}"
    );
}

#[test]
fn forget_makes_an_id_processable_again() {
    for store in [Store::Index, Store::Set] {
        let srv = Server::start();
        let mut con = srv.conn();
        let ids = first_and_last(&mut con, store);
        assert_eq!(hget(&mut con, "totals", "u").as_deref(), Some("101"));
        // ids[1] was never processed, 0-1 is not even an entry: only
        // ids[0] counts, given twice or not.
        let n: i64 = q(
            &mut con,
            &["XPROCESS.FORGET", DEDUPE, &ids[0], &ids[1], "0-1", &ids[0]],
        );
        assert_eq!(n, 1, "{store:?}");
        assert_eq!(
            processed_flags(&mut con, DEDUPE, &[&ids[0], &ids[1], &ids[2]]),
            [false, false, true],
            "{store:?}"
        );
        assert_eq!(q::<String>(&mut con, &["TYPE", DEDUPE]), store.type_name());
        // The entry is applied again (it is no longer pending: without
        // CONSUMER that does not matter), the others are not.
        let r = charge(&mut con, &[], &[&ids[0], &ids[1], &ids[2]]);
        assert_eq!(slots(&r), ["1", "1", "0"], "{store:?}");
        assert_eq!(
            hget(&mut con, "totals", "u").as_deref(),
            Some("112"),
            "{store:?}"
        );
        assert_eq!(
            processed_flags(&mut con, DEDUPE, &[&ids[0], &ids[1], &ids[2]]),
            [true, true, true]
        );
        assert!(pel(&mut con, "orders", "g").is_empty());
        // Forgetting the last one of a store that keeps nothing else.
        let n: i64 = q(
            &mut con,
            &["XPROCESS.FORGET", DEDUPE, &ids[0], &ids[1], &ids[2]],
        );
        assert_eq!(n, 3, "{store:?}");
        let r: Vec<i64> = q(
            &mut con,
            &["XPROCESS.EXISTS", DEDUPE, &ids[0], &ids[1], &ids[2]],
        );
        assert_eq!(r, [0, 0, 0], "{store:?}");
    }
}

#[test]
fn forget_on_a_missing_key_wrong_type_or_bad_id() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = first_and_last(&mut con, Store::Index);
    let before = digest(&mut con);
    let n: i64 = q(&mut con, &["XPROCESS.FORGET", "nosuchkey", &ids[0]]);
    assert_eq!(n, 0);
    assert!(!exists(&mut con, "nosuchkey"), "FORGET created the key");
    q::<String>(&mut con, &["SET", "str", "x"]);
    let before_str = digest(&mut con);
    assert_eq!(
        err(&call(&mut con, &["XPROCESS.FORGET", "str", &ids[0]])),
        WRONGTYPE
    );
    assert_eq!(digest(&mut con), before_str);
    q::<i64>(&mut con, &["DEL", "str"]);
    assert_eq!(digest(&mut con), before);
    // A bad ID refuses the whole call: the valid ID before it is kept.
    for bad in ["foo", "1-x", "", "+"] {
        let r = call(&mut con, &["XPROCESS.FORGET", DEDUPE, &ids[0], bad]);
        assert_eq!(err(&r), BAD_STREAM_ID, "{bad:?}");
        assert_eq!(digest(&mut con), before, "{bad:?}");
    }
    assert!(processed(&mut con, DEDUPE, &ids[0]));
}

#[test]
fn info_describes_an_index() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = first_and_last(&mut con, Store::Index);
    let info = dedupe_info(&mut con, DEDUPE);
    let keys: Vec<&str> = info.keys().map(String::as_str).collect();
    let mut want = [
        "kind",
        "stream",
        "ranges",
        "holes",
        "lowest-unprocessed-id",
        "recorded",
        "left-unprocessed",
        "memory",
        "keys",
        "key-window",
        "oldest-key-age",
        "keys-expired",
        "conflicts",
    ];
    want.sort();
    assert_eq!(keys, want);
    let text = |v: &redis::Value| redis::from_redis_value::<String>(v).unwrap();
    assert_eq!(text(&info["kind"]), "index");
    assert_eq!(text(&info["stream"]), "orders");
    // ids[0] and ids[2] with ids[1] between them: two ranges, one hole.
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "ranges"), 2);
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "holes"), 1);
    assert_eq!(text(&info["lowest-unprocessed-id"]), ids[1]);
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "recorded"), 2);
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "left-unprocessed"), 0);
    let memory = dedupe_info_int(&mut con, DEDUPE, "memory");
    assert!(memory > 0, "memory {memory}");
    // Filling the hole: one range, nothing unprocessed left.
    assert_eq!(slots(&charge(&mut con, &[], &[&ids[1]])), ["1"]);
    let info = dedupe_info(&mut con, DEDUPE);
    assert_eq!(info["ranges"], redis::Value::Int(1));
    assert_eq!(info["holes"], redis::Value::Int(0));
    assert_eq!(info["recorded"], redis::Value::Int(3));
    assert_eq!(info["lowest-unprocessed-id"], redis::Value::Nil);
    // A new entry is the lowest unprocessed one.
    let next = xadd_id(
        &mut con,
        "orders",
        "*",
        &[("user", "u"), ("amount", "1000")],
    );
    let info = dedupe_info(&mut con, DEDUPE);
    assert_eq!(text(&info["lowest-unprocessed-id"]), next);
    // A FORGET does not take back `recorded` (counted since creation).
    let _: i64 = q(&mut con, &["XPROCESS.FORGET", DEDUPE, &ids[1]]);
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "holes"), 1);
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "recorded"), 3);
}

#[test]
fn info_counts_entries_that_left_the_stream_unprocessed() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = first_and_last(&mut con, Store::Index);
    // The unprocessed entry between the two processed ones is trimmed away.
    let trimmed: i64 = q(&mut con, &["XTRIM", "orders", "MINID", &ids[2]]);
    assert_eq!(trimmed, 2);
    let more = orders(&mut con, &[&[("user", "u"), ("amount", "1000")]]);
    assert_eq!(slots(&charge(&mut con, &[], &[&more[0]])), ["1"]);
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "left-unprocessed"), 1);
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "ranges"), 1);
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "holes"), 0);
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "recorded"), 3);
}

#[test]
fn info_describes_a_set() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = three_orders(&mut con);
    let r = charge(
        &mut con,
        &["STORE", "SET", "TTL", "60000"],
        &[&ids[0], &ids[2]],
    );
    assert_eq!(slots(&r), ["1", "1"]);
    let info = dedupe_info(&mut con, DEDUPE);
    let keys: Vec<&str> = info.keys().map(String::as_str).collect();
    assert_eq!(keys, ["ids", "kind", "memory", "ttl"]);
    assert_eq!(info["kind"], redis::Value::BulkString(b"set".to_vec()));
    assert_eq!(info["ids"], redis::Value::Int(2));
    let ttl = dedupe_info_int(&mut con, DEDUPE, "ttl");
    assert!(ttl > 0 && ttl <= 60000, "ttl {ttl}");
    let memory = dedupe_info_int(&mut con, DEDUPE, "memory");
    assert_eq!(memory, q::<i64>(&mut con, &["MEMORY", "USAGE", DEDUPE]));
    q::<i64>(&mut con, &["PERSIST", DEDUPE]);
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "ttl"), -1);
}

#[test]
fn info_on_a_missing_key_or_wrong_type() {
    let srv = Server::start();
    let mut con = srv.conn();
    assert_eq!(
        err(&call(&mut con, &["XPROCESS.INFO", DEDUPE])),
        "ERR no such key"
    );
    q::<String>(&mut con, &["SET", "str", "x"]);
    assert_eq!(err(&call(&mut con, &["XPROCESS.INFO", "str"])), WRONGTYPE);
    let r = call(&mut con, &["XPROCESS.INFO", "str", "extra"]);
    assert!(
        err(&r).starts_with("ERR wrong number of arguments"),
        "{r:?}"
    );
}

#[test]
fn info_is_a_map_in_resp3() {
    let srv = Server::start();
    let mut con = srv.conn_resp3();
    first_and_last(&mut con, Store::Index);
    let info: redis::Value = q(&mut con, &["XPROCESS.INFO", DEDUPE]);
    let redis::Value::Map(pairs) = info else {
        panic!("XPROCESS.INFO in RESP3 is not a map: {info:?}");
    };
    assert_eq!(pairs.len(), 13, "{pairs:?}");
    assert!(pairs.contains(&(
        redis::Value::SimpleString("recorded".into()),
        redis::Value::Int(2)
    )));
}

#[test]
fn store_commands_report_their_key() {
    let srv = Server::start();
    let mut con = srv.conn();
    for args in [
        &["XPROCESS.EXISTS", "dd", "1-1", "2-2"][..],
        &["XPROCESS.FORGET", "dd", "1-1"],
        &["XPROCESS.INFO", "dd"],
    ] {
        let mut full = vec!["COMMAND", "GETKEYS"];
        full.extend_from_slice(args);
        let keys: Vec<String> = q(&mut con, &full);
        assert_eq!(keys, ["dd"], "{args:?}");
    }
}
