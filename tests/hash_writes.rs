//! HINCRBY results are written once per field at the end of a call
//! (src/server/hash_writes.rs). Interleaved with HINCRBYFLOAT on the same fields,
//! the primary, its replica and an AOF reload must all agree, and keyspace
//! notifications still come one per HINCRBY.

mod common;

use common::*;
use redis::Connection;

/// Entries whose HINCRBY and HINCRBYFLOAT targets overlap across entries.
fn interleaved(con: &mut Connection) -> Vec<String> {
    let ids = pending(
        con,
        "s",
        "g",
        "c1",
        &[
            &[("i", "a"), ("f", "b")],
            &[("i", "c"), ("f", "a")], // float on a, pending from entry 1
            &[("i", "a"), ("f", "z")], // a now holds "1.5": not an integer
            &[("i", "c"), ("f", "y")],
        ],
    );
    let mut args = vec![
        "s",
        "g",
        "HINCRBY",
        "h",
        "$i",
        "1",
        "HINCRBYFLOAT",
        "h",
        "$f",
        "0.5",
    ];
    args.extend(["IDS", "4"]);
    args.extend(ids.iter().map(String::as_str));
    let reply = slots(&xprocess(con, &args));
    assert_eq!(
        reply,
        vec!["1", "1", "ERR hash value is not an integer", "1"],
        "{reply:?}"
    );
    ids
}

fn hash(con: &mut Connection) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = q(con, &["HGETALL", "h"]);
    h.sort();
    h
}

fn expected() -> Vec<(String, String)> {
    [("a", "1.5"), ("b", "0.5"), ("c", "2"), ("y", "0.5")]
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect()
}

#[test]
fn replica_sees_the_same_hash() {
    let primary = Server::with(&[], &["--repl-diskless-sync-delay", "0"]);
    let port = primary.port().to_string();
    let replica = Server::with(&[], &["--replicaof", "127.0.0.1", &port]);
    let (mut p, mut r) = (primary.conn(), replica.conn());
    wait_replica_synced(&mut p, &mut r);
    interleaved(&mut p);
    wait_replica_synced(&mut p, &mut r);
    assert_eq!(hash(&mut p), expected());
    assert_eq!(hash(&mut r), expected());
    assert_eq!(digest(&mut r), digest(&mut p));
}

#[test]
fn aof_reload_sees_the_same_hash() {
    let mut srv = Server::with(&[], &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = srv.conn();
    interleaved(&mut con);
    let before = digest(&mut con);
    srv.kill9();
    srv.restart();
    let mut con = srv.conn();
    assert_eq!(hash(&mut con), expected());
    assert_eq!(digest(&mut con), before);
}

#[test]
fn one_hincrby_notification_per_increment() {
    let srv = Server::start();
    let mut con = srv.conn();
    q::<String>(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "Kh"]);
    let mut sub = srv.conn();
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe("__keyspace@0__:h").unwrap();
    let ids = pending(
        &mut con,
        "s",
        "g",
        "c1",
        &[&[("i", "a")], &[("i", "a")], &[("i", "b")]],
    );
    let mut args = vec!["s", "g", "HINCRBY", "h", "$i", "1", "IDS", "3"];
    args.extend(ids.iter().map(String::as_str));
    assert_eq!(slots(&xprocess(&mut con, &args)), vec!["1", "1", "1"]);
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    for _ in 0..3 {
        let msg = pubsub.get_message().unwrap();
        assert_eq!(msg.get_payload::<String>().unwrap(), "hincrby");
    }
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    assert!(
        pubsub.get_message().is_err(),
        "more than one event per HINCRBY"
    );
    assert_eq!(q::<i64>(&mut con, &["HGET", "h", "a"]), 2);
}
