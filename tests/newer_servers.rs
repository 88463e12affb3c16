//! XPROCESS beside the stream features of newer Redis servers: trimming
//! acked entries (8.2), `XREADGROUP ... CLAIM` (8.4) and idempotent producers
//! (`XADD ... IDMP`, 8.6). Each test knows the server it runs on: where the
//! feature exists it checks how the two combine, as docs/reference.md describes;
//! where it does not (older Redis, Valkey up to 9.1) it checks the server
//! refuses the syntax, so a test never passes by skipping.

mod common;

use common::*;
use redis::Connection;

const DEDUPE: &str = "{s}dd";

fn group(con: &mut Connection) {
    q::<String>(con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
}

fn add(con: &mut Connection, amount: &str) -> String {
    xadd_id(con, "s", "*", &[("c", "x"), ("amount", amount)])
}

fn total(con: &mut Connection) -> i64 {
    hget(con, "{s}t", "x").map_or(0, |v| v.parse().unwrap())
}

/// A READ reply's outcomes, in order, as `slots` gives them.
fn outcomes(reply: redis::Value) -> Vec<String> {
    let redis::Value::Array(pairs) = reply else {
        panic!("expected a READ reply, got {reply:?}");
    };
    pairs
        .into_iter()
        .map(|p| match p {
            redis::Value::Array(mut pair) if pair.len() == 2 => {
                slots(&redis::Value::Array(vec![pair.remove(1)])).remove(0)
            }
            other => panic!("unexpected READ element {other:?}"),
        })
        .collect()
}

/// `XPROCESS s g CONSUMER <consumer> DEDUPE {s}dd [options] HINCRBY {s}t $c $amount READ`.
fn read_as(con: &mut Connection, consumer: &str, options: &[&str]) -> Vec<String> {
    let mut args = vec!["s", "g", "CONSUMER", consumer, "DEDUPE", DEDUPE];
    args.extend_from_slice(options);
    args.extend_from_slice(&["HINCRBY", "{s}t", "$c", "$amount", "READ"]);
    outcomes(xprocess(con, &args))
}

/// `XTRIM key MAXLEN 0 ACKED` after XPROCESS: it removes exactly what
/// XPROCESS acked, and the index keeps those IDs processed after they left
/// the stream, so a late redelivery is still a duplicate.
#[test]
fn trimming_acked_entries_keeps_them_processed() {
    let server = Server::start();
    let mut con = server.conn();
    let version = server_version(&mut con);
    group(&mut con);
    let ids: Vec<String> = ["5", "7", "bad"].iter().map(|a| add(&mut con, a)).collect();
    assert_eq!(
        read_as(&mut con, "w", &[]),
        ["1", "1", "ERR value is not an integer or out of range"]
    );

    let trim = call(&mut con, &["XTRIM", "s", "MAXLEN", "0", "ACKED"]);
    if !version.redis_at_least(8, 2) {
        assert!(
            err(&trim).starts_with("ERR syntax error"),
            "{version:?}: {trim:?}"
        );
        return;
    }
    assert_eq!(trim, redis::Value::Int(2), "only the two acked entries go");
    let left: Vec<String> = xrange(&mut con, "s").into_iter().map(|e| e.0).collect();
    assert_eq!(left, [ids[2].clone()], "the failed entry stays, pending");
    assert_eq!(
        processed_flags(&mut con, DEDUPE, &[&ids[0], &ids[1], &ids[2]]),
        [true, true, false]
    );
    let again = xprocess(
        &mut con,
        &[
            "s", "g", "DEDUPE", DEDUPE, "HINCRBY", "{s}t", "$c", "$amount", "IDS", "2", &ids[0],
            &ids[1],
        ],
    );
    assert_eq!(slots(&again), ["0", "0"]);
    assert_eq!(total(&mut con), 12);
}

/// `XREADGROUP ... CLAIM` moves idle entries to the reader, and XPROCESS'
/// fencing follows the PEL: the old owner is refused, the new one applies.
#[test]
fn xreadgroup_claim_then_xprocess_ids() {
    let server = Server::start();
    let mut con = server.conn();
    let version = server_version(&mut con);
    group(&mut con);
    let id = add(&mut con, "5");
    q::<redis::Value>(
        &mut con,
        &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"],
    );

    let claim = call(
        &mut con,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "b",
            "CLAIM",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    if !version.redis_at_least(8, 4) {
        assert!(
            err(&claim).starts_with("ERR syntax error"),
            "{version:?}: {claim:?}"
        );
        return;
    }
    assert_eq!(owner(&mut con, "s", "g", &id).as_deref(), Some("b"));
    let effect = [
        "DEDUPE", DEDUPE, "HINCRBY", "{s}t", "$c", "$amount", "IDS", "1", &id,
    ];
    let by = |con: &mut Connection, consumer: &str| {
        let mut args = vec!["s", "g", "CONSUMER", consumer];
        args.extend_from_slice(&effect);
        slots(&xprocess(con, &args))
    };
    assert_eq!(
        by(&mut con, "a"),
        [format!(
            "NOTOWNER entry {id} is pending for consumer 'b', not for consumer 'a'"
        )]
    );
    assert_eq!(by(&mut con, "b"), ["1"]);
    assert_eq!(by(&mut con, "a"), ["0"]);
    assert_eq!(total(&mut con), 5);
    assert!(pel(&mut con, "s", "g").is_empty());
}

/// IDMP drops a producer's retried XADD; `KEY` drops a retry that came
/// without IDMP (another producer, or a retry older than IDMP remembers).
/// Together every payment is applied once.
#[test]
fn idmp_producers_and_key_on_the_consumer() {
    let server = Server::start();
    let mut con = server.conn();
    let version = server_version(&mut con);
    group(&mut con);
    let idmp = |con: &mut Connection, order: &str| {
        call(
            con,
            &[
                "XADD", "s", "IDMP", "p1", order, "*", "c", "x", "amount", "5", "order", order,
            ],
        )
    };
    let first = idmp(&mut con, "o1");
    if !version.redis_at_least(8, 6) {
        // Before IDMP, the word stands where the entry ID goes.
        assert_eq!(
            err(&first),
            "ERR Invalid stream ID specified as stream command argument",
            "{version:?}"
        );
        return;
    }
    let retry = idmp(&mut con, "o1");
    assert_eq!(
        first, retry,
        "IDMP answers a retry with the first entry's ID"
    );
    xadd_id(
        &mut con,
        "s",
        "*",
        &[("c", "x"), ("amount", "5"), ("order", "o1")],
    );
    xadd_id(
        &mut con,
        "s",
        "*",
        &[("c", "x"), ("amount", "7"), ("order", "o2")],
    );
    assert_eq!(q::<i64>(&mut con, &["XLEN", "s"]), 3);

    assert_eq!(read_as(&mut con, "w", &["KEY", "$order"]), ["1", "0", "1"]);
    assert_eq!(total(&mut con), 12);
}
