//! Regression guard for speed that is not a timing test: the number of
//! RedisModule_Call invocations (INFO xprocess, `xprocess_redis_calls`) and
//! of entry-cache misses per call and per entry stay at the designed values.
//!
//! Design: per call, SMISMEMBER (dedupe lookup) + SADD (records) + XACK;
//! nothing per entry for HINCRBY (low-level hash API); one XPENDING per entry
//! with CONSUMER; one XADD per entry for an XADD effect, plus one XINFO per
//! call and target stream. The consumer-group check runs once per stream.

mod common;

use common::*;
use redis::Connection;

fn counter(con: &mut Connection, name: &str) -> u64 {
    info_field(con, "xprocess", &format!("xprocess_{name}"))
        .unwrap_or_else(|| panic!("INFO xprocess has no {name}"))
        .parse()
        .unwrap()
}

/// RedisModule_Calls and cache misses made by `XPROCESS args`.
fn cost(con: &mut Connection, args: &[&str]) -> (u64, u64) {
    let (calls, misses) = (
        counter(con, "redis_calls"),
        counter(con, "entry_cache_misses"),
    );
    let reply = xprocess(con, args);
    assert!(
        slots(&reply).iter().all(|s| s == "1" || s == "0"),
        "{reply:?}"
    );
    (
        counter(con, "redis_calls") - calls,
        counter(con, "entry_cache_misses") - misses,
    )
}

fn call_with(ids: &[String], effects: &[&str], consumer: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = vec!["s".into(), "g".into()];
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
    ids: &[String],
    effects: &[&str],
    consumer: Option<&str>,
) -> (u64, u64) {
    let args = call_with(ids, effects, consumer);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cost(con, &args)
}

const HINCRBY: [&str; 4] = ["HINCRBY", "totals", "$user", "$amount"];

#[test]
fn redis_calls_per_call_and_per_entry_stay_as_designed() {
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

    // First call on the stream: + one XPENDING for the group check.
    assert_eq!(run(&mut con, &ids[0..1], &HINCRBY, None), (4, 1));
    // Then 3 per call, whatever the batch size; the window serves the rest.
    assert_eq!(run(&mut con, &ids[1..2], &HINCRBY, None), (3, 0));
    assert_eq!(run(&mut con, &ids[2..102], &HINCRBY, None), (3, 0));
    // Two HINCRBY effects cost no more RedisModule_Calls than one.
    let two = [&HINCRBY[..], &HINCRBY[..]].concat();
    assert_eq!(run(&mut con, &ids[102..112], &two, None), (3, 0));
    // Duplicates: SMISMEMBER and XACK, no SADD, no entry read.
    assert_eq!(run(&mut con, &ids[2..102], &HINCRBY, None), (2, 0));
    // CONSUMER: one XPENDING per entry on top.
    assert_eq!(
        run(&mut con, &ids[112..122], &HINCRBY, Some("c1")),
        (3 + 10, 0)
    );
    // XADD effect: one XADD per entry, XINFO once per call for an existing target.
    let xadd = ["XADD", "out", "ENTRY"];
    assert_eq!(run(&mut con, &ids[122..132], &xadd, None), (3 + 10, 0));
    assert_eq!(run(&mut con, &ids[132..142], &xadd, None), (3 + 10 + 1, 0));
    // Past the read-ahead window (256 entries from the first miss): one miss.
    assert_eq!(run(&mut con, &ids[142..400], &HINCRBY, None), (3, 1));
}
