//! Dedupe by business key (`KEY template`): a producer's retry
//! (two entries, one payment) applies once; the same key with another
//! payload is a CONFLICT that changes nothing; keys are remembered for their
//! window and no longer; replicas, the AOF, DEBUG RELOAD and MIGRATE keep
//! them; memory stays under 32 bytes per key.

mod common;

use common::*;
use redis::{Connection, Value};

const DEDUPE: &str = "{pay}:xprocess:g";

/// Pending payments on stream `pay` (group `g`, consumer `c`).
fn payments(con: &mut Connection, rows: &[&[(&str, &str)]]) -> Vec<String> {
    pending(con, "pay", "g", "c", rows)
}

/// `XPROCESS pay g <options> HINCRBY totals $cust $amount IDS ...`.
fn charge(con: &mut Connection, options: &[&str], ids: &[String]) -> Vec<String> {
    let mut args = vec!["pay", "g"];
    args.extend_from_slice(options);
    args.extend(["HINCRBY", "totals", "$cust", "$amount"]);
    let n = ids.len().to_string();
    args.extend(["IDS", &n]);
    args.extend(ids.iter().map(String::as_str));
    slots(&xprocess(con, &args))
}

fn total(con: &mut Connection, cust: &str) -> Option<String> {
    hget(con, "totals", cust)
}

fn key_exists(con: &mut Connection, names: &[&str]) -> Vec<i64> {
    let mut args = vec!["XPROCESS.EXISTS", DEDUPE, "KEY"];
    args.extend_from_slice(names);
    q(con, &args)
}

#[test]
fn a_producer_retry_applies_once_and_is_acked() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = payments(
        &mut con,
        &[
            &[
                ("pid", "p1"),
                ("cust", "ann"),
                ("amount", "10"),
                ("sent", "1"),
            ],
            &[
                ("pid", "p1"),
                ("cust", "ann"),
                ("amount", "10"),
                ("sent", "2"),
            ],
        ],
    );
    let out = charge(&mut con, &["KEY", "$pid"], &ids);
    assert_eq!(out, ["1", "0"]);
    assert_eq!(total(&mut con, "ann").as_deref(), Some("10"), "one charge");
    assert!(pel(&mut con, "pay", "g").is_empty(), "both acked");
    assert_eq!(key_exists(&mut con, &["p1", "p2"]), [1, 0]);
    // The retry counts as processed: XGROUP SETID 0 and a re-read give 0s.
    let again = charge(&mut con, &["KEY", "$pid"], &ids);
    assert_eq!(again, ["0", "0"]);
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "keys"), 1);
}

#[test]
fn another_payload_under_the_same_key_is_a_conflict_that_changes_nothing() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = payments(
        &mut con,
        &[
            &[("pid", "p1"), ("cust", "ann"), ("amount", "10")],
            &[("pid", "p1"), ("cust", "ann"), ("amount", "99")],
        ],
    );
    assert_eq!(charge(&mut con, &["KEY", "$pid"], &ids[..1]), ["1"]);
    let before = digest(&mut con);
    let out = charge(&mut con, &["KEY", "$pid"], &ids[1..]);
    let want = format!(
        "CONFLICT entry {} has business key 'p1' already applied by entry {} with a different payload",
        ids[1], ids[0]
    );
    assert_eq!(out, [want]);
    assert_eq!(digest(&mut con), before, "a conflict writes nothing");
    assert_eq!(owner(&mut con, "pay", "g", &ids[1]).as_deref(), Some("c"));
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "conflicts"), 1);
    // Fingerprinting only `cust` (in every call, as a deployment would),
    // another amount is a retry instead.
    let only_cust = ["KEY", "$pid", "FINGERPRINT", "1", "cust"];
    let more = payments(
        &mut con,
        &[
            &[("pid", "p9"), ("cust", "ann"), ("amount", "10")],
            &[("pid", "p9"), ("cust", "ann"), ("amount", "99")],
        ],
    );
    assert_eq!(charge(&mut con, &only_cust, &more), ["1", "0"]);
}

#[test]
fn a_key_is_forgotten_only_after_its_window() {
    let srv = Server::start();
    let mut con = srv.conn();
    let row: &[(&str, &str)] = &[("pid", "p1"), ("cust", "ann"), ("amount", "1")];
    let first = payments(&mut con, &[row]);
    assert_eq!(
        charge(&mut con, &["KEY", "$pid", "WINDOW", "1000"], &first),
        ["1"]
    );
    let retry = payments(&mut con, &[row]);
    assert_eq!(
        charge(&mut con, &["KEY", "$pid", "WINDOW", "1000"], &retry),
        ["0"]
    );
    // Windows end on whole seconds, rounded up: gone within 2 s, not before 1 s.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(key_exists(&mut con, &["p1"]), [0]);
    let late = payments(&mut con, &[row]);
    assert_eq!(
        charge(&mut con, &["KEY", "$pid", "WINDOW", "1000"], &late),
        ["1"]
    );
    assert_eq!(
        total(&mut con, "ann").as_deref(),
        Some("2"),
        "a retry after the window applies"
    );
}

#[test]
fn id_and_key_dedupe_mix_in_one_batch() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = payments(
        &mut con,
        &[
            &[("pid", "a"), ("cust", "ann"), ("amount", "1")],
            &[("pid", "b"), ("cust", "bob"), ("amount", "2")],
        ],
    );
    assert_eq!(charge(&mut con, &["KEY", "$pid"], &ids[..1]), ["1"]);
    let more = payments(
        &mut con,
        &[
            &[("pid", "a"), ("cust", "ann"), ("amount", "1")], // retry of a
            &[("pid", "c"), ("cust", "cat"), ("amount", "3")], // new
            &[("pid", "c"), ("cust", "cat"), ("amount", "4")], // conflict
            &[("cust", "dan"), ("amount", "5")],               // no key field
            &[("pid", "d"), ("cust", "dan"), ("amount", "x")], // bad amount
        ],
    );
    let mut batch = vec![ids[0].clone(), ids[1].clone()];
    batch.extend(more.iter().cloned());
    let out = charge(&mut con, &["KEY", "$pid"], &batch);
    assert_eq!(out[..4], ["0", "1", "0", "1"], "{out:?}");
    assert!(out[4].starts_with("CONFLICT"), "{}", out[4]);
    assert_eq!(out[5], format!("ERR entry {} has no field 'pid'", more[3]));
    assert_eq!(out[6], "ERR value is not an integer or out of range");
    assert_eq!(key_exists(&mut con, &["a", "b", "c", "d"]), [1, 1, 1, 0]);
    let pending: Vec<String> = pel(&mut con, "pay", "g")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(pending, more[2..].to_vec());
}

#[test]
fn replicas_failover_aof_reload_and_restart_keep_the_keys() {
    let (primary, replica) = primary_with_aof_and_replica();
    let (mut p, mut r) = (primary.conn(), replica.conn());
    wait_replica_synced(&mut p, &mut r);
    let ids = payments(
        &mut p,
        &[
            &[("pid", "p1"), ("cust", "ann"), ("amount", "1")],
            &[("pid", "p1"), ("cust", "ann"), ("amount", "1")],
            &[("pid", "p1"), ("cust", "ann"), ("amount", "7")],
            &[("pid", "p2"), ("cust", "bob"), ("amount", "2")],
        ],
    );
    let out = charge(&mut p, &["KEY", "$pid", "WINDOW", "600000"], &ids);
    assert_eq!(out[..2], ["1", "0"]);
    assert_eq!(out[3], "1");
    wait_replica_synced(&mut p, &mut r);
    assert_eq!(digest(&mut r), digest(&mut p));
    // A failover: the promoted replica remembers the keys.
    let _: () = q(&mut r, &["REPLICAOF", "NO", "ONE"]);
    let retry = payments(
        &mut r,
        &[&[("pid", "p1"), ("cust", "ann"), ("amount", "1")]],
    );
    assert_eq!(charge(&mut r, &["KEY", "$pid"], &retry), ["0"]);
    assert_eq!(total(&mut r, "ann").as_deref(), Some("1"));
    let mut primary = primary;
    let before = digest_value(&mut p, &[DEDUPE]);
    drop(p);
    primary.kill9();
    primary.restart();
    let mut p = primary.conn();
    assert_eq!(digest_value(&mut p, &[DEDUPE]), before, "AOF reload");
    assert_eq!(key_exists(&mut p, &["p1", "p2", "p3"]), [1, 1, 0]);
    rewrite_aof(&mut p);
    let _: () = q(&mut p, &["DEBUG", "RELOAD"]);
    assert_eq!(digest_value(&mut p, &[DEDUPE]), before, "RDB reload");
    primary.restart();
    let mut p = primary.conn();
    assert_eq!(digest_value(&mut p, &[DEDUPE]), before, "rewritten AOF");
    let retry = payments(
        &mut p,
        &[&[("pid", "p2"), ("cust", "bob"), ("amount", "2")]],
    );
    assert_eq!(charge(&mut p, &["KEY", "$pid"], &retry), ["0"]);
}

#[test]
fn migrate_and_copy_move_the_keys() {
    let src = Server::start();
    let dst = Server::start();
    let mut con = src.conn();
    let ids = payments(
        &mut con,
        &[&[("pid", "p1"), ("cust", "ann"), ("amount", "1")]],
    );
    assert_eq!(charge(&mut con, &["KEY", "$pid"], &ids), ["1"]);
    let copied: i64 = q(&mut con, &["COPY", DEDUPE, "{pay}:copy"]);
    assert_eq!(copied, 1);
    let port = dst.port().to_string();
    let _: String = q(
        &mut con,
        &["MIGRATE", "127.0.0.1", &port, DEDUPE, "0", "5000"],
    );
    let mut other = dst.conn();
    assert_eq!(key_exists(&mut other, &["p1"]), [1]);
    let in_copy: Vec<i64> = q(&mut con, &["XPROCESS.EXISTS", "{pay}:copy", "KEY", "p1"]);
    assert_eq!(in_copy, [1]);
    assert!(!exists(&mut con, DEDUPE), "MIGRATE moved it");
}

#[test]
fn memory_stays_under_32_bytes_per_business_key() {
    let srv = Server::start();
    let mut con = srv.conn();
    let n = 20_000;
    let _: () = q(&mut con, &["XGROUP", "CREATE", "pay", "g", "$", "MKSTREAM"]);
    let mut ids = Vec::with_capacity(n);
    for chunk in 0..n / 1000 {
        let mut pipe = redis::pipe();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            pipe.cmd("XADD")
                .arg("pay")
                .arg("*")
                .arg("pid")
                .arg(i)
                .arg("cust")
                .arg("c")
                .arg("amount")
                .arg(1);
        }
        let batch: Vec<String> = pipe.query(&mut con).unwrap();
        ids.extend(batch);
    }
    let _: Value = q(
        &mut con,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "100000",
            "STREAMS",
            "pay",
            ">",
        ],
    );
    assert_eq!(charge(&mut con, &["KEY", "$pid"], &ids[..1]), ["1"]);
    let base: i64 = q(&mut con, &["MEMORY", "USAGE", DEDUPE]);
    for chunk in ids[1..].chunks(1000) {
        let out = charge(&mut con, &["KEY", "$pid"], chunk);
        assert!(out.iter().all(|o| o == "1"));
    }
    let after: i64 = q(&mut con, &["MEMORY", "USAGE", DEDUPE]);
    let per_key = (after - base) as f64 / (n - 1) as f64;
    assert!(per_key <= 32.0, "{per_key:.2} bytes per business key");
    assert_eq!(dedupe_info_int(&mut con, DEDUPE, "keys"), n as i64);
}
