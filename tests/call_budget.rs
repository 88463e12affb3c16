//! Regression guard for speed that is not a timing test: the number of
//! RedisModule_Call invocations (INFO xprocess, `xprocess_redis_calls`) and
//! of entry-cache misses per call and per entry stay at the designed values.
//!
//! Design: per call, one XACK, and with a Set store SMISMEMBER (dedupe
//! lookup) + SADD (records) on top (the index is read and written
//! in-process); nothing per entry for HINCRBY (low-level hash API); one
//! XPENDING per entry with CONSUMER; one XADD per entry for an XADD effect,
//! plus one XINFO per call and target stream; one XPENDING per call to
//! check the consumer group (nothing is remembered from call to call).

mod common;

use common::*;
use redis::Connection;

fn counter(con: &mut Connection, name: &str) -> u64 {
    info_field(con, "xprocess", &format!("xprocess_{name}"))
        .unwrap_or_else(|| panic!("INFO xprocess has no {name}"))
        .parse()
        .unwrap()
}

/// RedisModule_Calls and cache misses made by `XPROCESS args`. No call
/// walks the stream a second time to count entries for the index: the seek
/// that reads a window counts them on its way.
fn cost(con: &mut Connection, args: &[&str]) -> (u64, u64) {
    let (calls, misses, scans) = (
        counter(con, "redis_calls"),
        counter(con, "entry_cache_misses"),
        counter(con, "gap_scans"),
    );
    let reply = xprocess(con, args);
    assert!(
        slots(&reply).iter().all(|s| s == "1" || s == "0"),
        "{reply:?}"
    );
    assert_eq!(counter(con, "gap_scans"), scans, "{args:?}");
    (
        counter(con, "redis_calls") - calls,
        counter(con, "entry_cache_misses") - misses,
    )
}

fn call_with(store: &str, ids: &[String], effects: &[&str], consumer: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = vec!["s".into(), "g".into(), "STORE".into(), store.into()];
    if let Some(c) = consumer {
        args.extend(["CONSUMER".into(), c.into()]);
    }
    args.extend(effects.iter().map(|s| s.to_string()));
    args.extend(["IDS".into(), ids.len().to_string()]);
    args.extend(ids.iter().cloned());
    args
}

fn run(
    con: &mut Connection,
    store: &str,
    ids: &[String],
    effects: &[&str],
    consumer: Option<&str>,
) -> (u64, u64) {
    let args = call_with(store, ids, effects, consumer);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cost(con, &args)
}

const HINCRBY: [&str; 4] = ["HINCRBY", "totals", "$user", "$amount"];

#[test]
fn index_store_makes_one_redis_call_per_call() {
    // XACK only; duplicates need nothing else either.
    budget("INDEX", 1, 1);
}

#[test]
fn set_store_adds_smismember_and_sadd() {
    budget("SET", 3, 2);
}

/// `per_call`: RedisModule_Calls of a steady-state call that applies
/// entries; `duplicates`: of one whose entries are all duplicates.
fn budget(store: &str, per_call: u64, duplicates: u64) {
    let srv = Server::start();
    let mut con = srv.conn();
    let entries: Vec<Vec<(String, String)>> = (0..400)
        .map(|i| {
            vec![
                ("user".into(), format!("u{}", i % 7)),
                ("amount".into(), "1".into()),
            ]
        })
        .collect();
    let refs: Vec<Vec<(&str, &str)>> = entries
        .iter()
        .map(|e| e.iter().map(|(f, v)| (f.as_str(), v.as_str())).collect())
        .collect();
    let slices: Vec<&[(&str, &str)]> = refs.iter().map(Vec::as_slice).collect();
    let ids = pending(&mut con, "s", "g", "c1", &slices);
    let mut run =
        |ids: &[String], effects: &[&str], consumer| run(&mut con, store, ids, effects, consumer);

    // Each call checks the group (XPENDING) and reads its entries, up to
    // its last ID, with one stream seek (one entry-cache miss), whatever
    // the batch size.
    assert_eq!(run(&ids[0..1], &HINCRBY, None), (per_call + 1, 1));
    assert_eq!(run(&ids[1..2], &HINCRBY, None), (per_call + 1, 1));
    assert_eq!(run(&ids[2..102], &HINCRBY, None), (per_call + 1, 1));
    // Two HINCRBY effects cost no more RedisModule_Calls than one.
    let two = [&HINCRBY[..], &HINCRBY[..]].concat();
    assert_eq!(run(&ids[102..112], &two, None), (per_call + 1, 1));
    // Duplicates: no record written, no entry read.
    assert_eq!(run(&ids[2..102], &HINCRBY, None), (duplicates + 1, 0));
    // CONSUMER: one XPENDING per entry on top.
    assert_eq!(
        run(&ids[112..122], &HINCRBY, Some("c1")),
        (per_call + 1 + 10, 1)
    );
    // XADD effect: one XADD per entry, XINFO once per call for an existing target.
    let xadd = ["XADD", "out", "ENTRY"];
    assert_eq!(run(&ids[122..132], &xadd, None), (per_call + 1 + 10, 1));
    assert_eq!(run(&ids[132..142], &xadd, None), (per_call + 1 + 10 + 1, 1));
    // Past the read-ahead window (256 entries): a second seek.
    assert_eq!(run(&ids[142..400], &HINCRBY, None), (per_call + 1, 2));
}

/// One ID per call, in stream order, with IDs apart (so an entry could lie
/// between two): each call seeks once, counting on its way what lies
/// between the index's last record and its entry; no second walk (`cost`
/// checks that). An entry left out is counted as a hole on that same walk.
#[test]
fn one_id_per_call_seeks_once() {
    let srv = Server::start();
    let mut con = srv.conn();
    q::<String>(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let ids: Vec<String> = (1..=40).map(|i| format!("{}-0", i * 10)).collect();
    for id in &ids {
        xadd_id(&mut con, "s", id, &[("user", "u"), ("amount", "1")]);
    }
    let read = ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"];
    let _: redis::Value = call(&mut con, &read);
    let one = |id: &String| call_with("INDEX", std::slice::from_ref(id), &HINCRBY, None);
    for id in &ids[..30] {
        let args = one(id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(cost(&mut con, &args), (2, 1), "{id}");
    }
    // 310-0 left out: a hole, counted by the walk to 320-0. (With a hole,
    // a call also checks one gap for entries, round robin: a walk.)
    for id in &ids[31..] {
        let args = one(id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(slots(&xprocess(&mut con, &args)), ["1"]);
    }
    let dedupe = "{s}:xprocess:g";
    assert_eq!(dedupe_info_int(&mut con, dedupe, "holes"), 1);
    assert_eq!(dedupe_info_int(&mut con, dedupe, "recorded"), 39);
    let flags = processed_flags(&mut con, dedupe, &["300-0", "310-0", "320-0"]);
    assert_eq!(flags, [true, false, true]);
}

/// READ: per call, XINFO GROUPS and XINFO STREAM (where the group is, how
/// to count), XGROUP SETID past all new entries but the last, XREADGROUP
/// COUNT 1 for the last, and one XACK; XAUTOCLAIM on top with CLAIM. No
/// XPENDING per entry (the entries were just taken for the consumer), one
/// read of the stream for all entries, no stream walk to record them, and
/// all but one new entry kept out of the PEL.
#[test]
fn read_makes_five_redis_calls_per_call_and_none_per_entry() {
    let srv = Server::start();
    let mut con = srv.conn();
    q::<String>(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let read = |con: &mut Connection, claim: bool| {
        let (calls, misses, scans, outside) = (
            counter(con, "redis_calls"),
            counter(con, "entry_cache_misses"),
            counter(con, "gap_scans"),
            counter(con, "read_outside_pel"),
        );
        let mut args = vec![
            "s", "g", "CONSUMER", "c", "HINCRBY", "totals", "$user", "$amount",
        ];
        args.extend(["READ", "COUNT", "100"]);
        if claim {
            args.extend(["CLAIM", "60000"]);
        }
        let redis::Value::Array(pairs) = xprocess(con, &args) else {
            panic!("READ reply");
        };
        (
            pairs.len(),
            counter(con, "redis_calls") - calls,
            counter(con, "entry_cache_misses") - misses,
            counter(con, "gap_scans") - scans,
            counter(con, "read_outside_pel") - outside,
        )
    };
    read(&mut con, false); // nothing to take yet
    for (round, claim) in [false, false, true].into_iter().enumerate() {
        // Each round's IDs start a new millisecond: the first is not the
        // ID right after the last one recorded.
        for seq in 0..100 {
            let id = format!("{}-{seq}", 1000 * (round + 1));
            xadd_id(&mut con, "s", &id, &[("user", "u"), ("amount", "1")]);
        }
        let (taken, calls, misses, scans, outside) = read(&mut con, claim);
        assert_eq!(taken, 100);
        assert_eq!(calls, 5 + u64::from(claim), "CLAIM: {claim}");
        assert_eq!(outside, 99);
        assert_eq!(misses, 0);
        // The entries read are a window of the stream, read from the
        // group's position: the index learns from it that nothing lies
        // between them, nor between its last record and the first.
        assert_eq!(scans, 0, "stream walks for 100 entries");
    }
}
