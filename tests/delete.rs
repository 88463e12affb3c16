//! `DELETE [ACKED]`: the entries a call is done with (applied, duplicate,
//! dead-lettered) leave the stream in the same atomic step; failed ones
//! stay pending. With ACKED, entries another group still needs stay.

mod common;

use common::*;
use redis::Connection;

const DEDUPE: &str = "{o}dd";

fn ids_in(con: &mut Connection) -> Vec<String> {
    xrange(con, "{o}orders").into_iter().map(|e| e.0).collect()
}

/// `XPROCESS {o}orders g DEDUPE {o}dd <options> SADD {o}s $c IDS ...`.
fn run(con: &mut Connection, options: &[&str], ids: &[String]) -> Vec<String> {
    let n = ids.len().to_string();
    let mut args = vec!["{o}orders", "g", "DEDUPE", DEDUPE];
    args.extend_from_slice(options);
    args.extend_from_slice(&["HINCRBY", "{o}t", "$c", "$amount", "IDS", &n]);
    args.extend(ids.iter().map(String::as_str));
    slots(&xprocess(con, &args))
}

fn orders(con: &mut Connection, amounts: &[&str]) -> Vec<String> {
    let rows: Vec<Vec<(&str, &str)>> = amounts
        .iter()
        .map(|a| vec![("c", "x"), ("amount", *a)])
        .collect();
    let rows: Vec<&[(&str, &str)]> = rows.iter().map(Vec::as_slice).collect();
    pending(con, "{o}orders", "g", "c1", &rows)
}

#[test]
fn done_entries_leave_the_stream_failed_ones_stay() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = orders(&mut con, &["1", "bad", "2"]);
    run(&mut con, &[], &ids[2..]); // processed before: a duplicate below
    let dl = ["DELETE", "DEADLETTER", "{o}dead", "AFTER", "9"];
    let r = run(&mut con, &dl, &ids);
    assert_eq!(r, ["1", "ERR value is not an integer or out of range", "0"]);
    assert_eq!(
        ids_in(&mut con),
        [ids[1].clone()],
        "only the failed entry stays"
    );
    assert_eq!(pel(&mut con, "{o}orders", "g").len(), 1);
    assert_eq!(
        processed_flags(&mut con, DEDUPE, &[&ids[0], &ids[1], &ids[2]]),
        [true, false, true]
    );
    assert_eq!(
        run(&mut con, &["DELETE"], &ids[..1]),
        ["0"],
        "still a duplicate once gone"
    );
}

#[test]
fn delete_acked_keeps_what_another_group_still_needs() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = orders(&mut con, &["1", "2", "3"]);
    // Group h has read the first two; it acks the first, the second stays
    // pending for it; the third was never delivered to it.
    q::<String>(&mut con, &["XGROUP", "CREATE", "{o}orders", "h", "0"]);
    q::<redis::Value>(
        &mut con,
        &[
            "XREADGROUP",
            "GROUP",
            "h",
            "w",
            "COUNT",
            "2",
            "STREAMS",
            "{o}orders",
            ">",
        ],
    );
    q::<i64>(&mut con, &["XACK", "{o}orders", "h", &ids[0]]);
    assert_eq!(run(&mut con, &["DELETE", "ACKED"], &ids), ["1", "1", "1"]);
    assert_eq!(ids_in(&mut con), ids[1..].to_vec());
    assert_eq!(hget(&mut con, "{o}t", "x").as_deref(), Some("6"));
}

/// Another group's pending entries are read in one XPENDING per group when
/// there are few in the call's range, and asked per entry past that: both
/// keep exactly what that group still has pending.
#[test]
fn delete_acked_with_many_entries_pending_in_another_group() {
    let server = Server::start();
    let mut con = server.conn();
    for n in [10usize, 2100] {
        q::<i64>(&mut con, &["DEL", "{o}orders", DEDUPE]);
        let amounts = vec!["1"; n];
        let ids = orders(&mut con, &amounts);
        q::<String>(&mut con, &["XGROUP", "CREATE", "{o}orders", "h", "0"]);
        let count = n.to_string();
        q::<redis::Value>(
            &mut con,
            &[
                "XREADGROUP",
                "GROUP",
                "h",
                "w",
                "COUNT",
                &count,
                "STREAMS",
                "{o}orders",
                ">",
            ],
        );
        let acked: Vec<&str> = ids.iter().step_by(2).map(String::as_str).collect();
        let mut xack = vec!["XACK", "{o}orders", "h"];
        xack.extend(&acked);
        q::<i64>(&mut con, &xack);
        let calls = |con: &mut Connection| {
            let v = info_field(con, "xprocess", "xprocess_redis_calls").unwrap();
            v.parse::<u64>().unwrap()
        };
        let before = calls(&mut con);
        assert!(run(&mut con, &["DELETE", "ACKED"], &ids)
            .iter()
            .all(|s| s == "1"));
        let made = calls(&mut con) - before;
        let left: Vec<String> = ids.iter().skip(1).step_by(2).cloned().collect();
        assert_eq!(ids_in(&mut con), left, "{n} entries");
        // XPENDING (group check), XINFO GROUPS, XPENDING for h, XACK, XDEL;
        // with 1024 or more pending in h, one XPENDING per entry besides.
        let expected = match n / 2 < 1024 {
            true => 5,
            false => 5 + n as u64,
        };
        assert_eq!(made, expected, "{n} entries");
    }
}

#[test]
fn a_replica_deletes_the_same_entries() {
    let primary = Server::start();
    let port = primary.port().to_string();
    let replica = Server::with(&[], &["--replicaof", "127.0.0.1", &port]);
    let mut con = primary.conn();
    let mut rcon = replica.conn();
    let ids = orders(&mut con, &["1", "x", "3"]);
    run(&mut con, &["DELETE"], &ids);
    wait_replica_synced(&mut con, &mut rcon);
    assert_eq!(digest(&mut rcon), digest(&mut con));
    assert_eq!(ids_in(&mut rcon), [ids[1].clone()]);
}
