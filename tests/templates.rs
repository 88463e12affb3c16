//! Templates everywhere: effect keys and any argument may interpolate
//! `${field}` and `${@id}`, `${@ms}`, `${@seq}`, `${@date}`, `${@hour}`;
//! increments may be `-$field`. A templated key is checked per entry (the
//! stream, the dedupe key and the dead-letter key are refused; in a cluster
//! it must hash to the stream's slot; the caller's ACL must allow writing
//! it), and an entry whose key fails changes nothing.

mod common;

use common::*;
use redis::Connection;

const DEDUPE: &str = "{o}dd";

/// Entries (customer, amount) pending for consumer c1 in `{o}orders`.
fn orders(con: &mut Connection, entries: &[(&str, &str)]) -> Vec<String> {
    let rows: Vec<Vec<(&str, &str)>> = entries
        .iter()
        .map(|&(c, a)| vec![("c", c), ("amount", a)])
        .collect();
    let rows: Vec<&[(&str, &str)]> = rows.iter().map(Vec::as_slice).collect();
    pending(con, "{o}orders", "g", "c1", &rows)
}

/// `XPROCESS {o}orders g DEDUPE {o}dd <effects...> IDS n ids...`, per-ID slots.
fn run(con: &mut Connection, effects: &[&str], ids: &[String]) -> Vec<String> {
    let n = ids.len().to_string();
    let mut args = vec!["{o}orders", "g", "DEDUPE", DEDUPE];
    args.extend_from_slice(effects);
    args.extend_from_slice(&["IDS", &n]);
    args.extend(ids.iter().map(String::as_str));
    slots(&xprocess(con, &args))
}

#[test]
fn keys_and_arguments_interpolate_entry_fields() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = orders(&mut con, &[("alice", "5"), ("bob", "7"), ("alice", "-2")]);
    let effects = [
        "HINCRBY",
        "{o}customer:${c}",
        "total",
        "$amount",
        "SADD",
        "{o}seen:${@date}",
        "${c}@${@ms}-${@seq}",
    ];
    assert_eq!(run(&mut con, &effects, &ids), ["1", "1", "1"]);
    assert_eq!(
        hget(&mut con, "{o}customer:alice", "total").as_deref(),
        Some("3")
    );
    assert_eq!(
        hget(&mut con, "{o}customer:bob", "total").as_deref(),
        Some("7")
    );
    assert!(!exists(&mut con, "{o}customer:${c}"), "no literal key");
    let (ms, seq) = ids[1].split_once('-').unwrap();
    let day = utc_day(ms.parse().unwrap());
    let member = format!("bob@{ms}-{seq}");
    assert!(sismember(&mut con, &format!("{{o}}seen:{day}"), &member));
    // A duplicate stays a duplicate: nothing is written again.
    assert_eq!(run(&mut con, &effects, &ids), ["0", "0", "0"]);
    assert_eq!(
        hget(&mut con, "{o}customer:alice", "total").as_deref(),
        Some("3")
    );
}

/// `YYYY-MM-DD` of Unix ms, computed here the slow way (days since epoch,
/// year by year), to check the module's calendar independently.
fn utc_day(ms: u64) -> String {
    let mut days = ms / 86_400_000;
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let months = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= months[month] {
        days -= months[month];
        month += 1;
    }
    format!("{year:04}-{:02}-{:02}", month + 1, days + 1)
}

#[test]
fn a_negated_increment_refunds() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = orders(&mut con, &[("alice", "5"), ("alice", "x")]);
    let r = run(&mut con, &["HINCRBY", "{o}balance", "$c", "-$amount"], &ids);
    assert_eq!(r, ["1", "ERR value is not an integer or out of range"]);
    assert_eq!(hget(&mut con, "{o}balance", "alice").as_deref(), Some("-5"));
}

#[test]
fn a_key_that_cannot_be_made_fails_only_its_entry() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = orders(&mut con, &[("alice", "5"), ("", "1")]);
    xadd_id(&mut con, "{o}orders", "*", &[("amount", "3")]);
    let no_customer = xrange(&mut con, "{o}orders").pop().unwrap().0;
    q::<redis::Value>(&mut con, &["SET", "{o}customer:", "a string"]);
    let before = digest(&mut con);
    let all = [ids[1].clone(), no_customer.clone()];
    let r = run(
        &mut con,
        &[
            "SADD",
            "{o}ok",
            "$c",
            "HINCRBY",
            "{o}customer:${c}",
            "t",
            "$amount",
        ],
        &all,
    );
    assert_eq!(
        r,
        [
            "WRONGTYPE Operation against a key holding the wrong kind of value".to_string(),
            format!("ERR entry {no_customer} has no field 'c'"),
        ]
    );
    assert_eq!(digest(&mut con), before, "neither entry changed anything");
    assert_eq!(run(&mut con, &["SADD", "{o}ok", "$c"], &ids[..1]), ["1"]);
}

#[test]
fn a_template_never_writes_the_stream_or_the_stores() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = orders(
        &mut con,
        &[("orders", "1"), ("dd", "1"), ("dead", "1"), ("x", "1")],
    );
    let before = digest(&mut con);
    let mut args = vec![
        "{o}orders",
        "g",
        "DEDUPE",
        DEDUPE,
        "DEADLETTER",
        "{o}dead",
        "AFTER",
        "9",
        "SADD",
        "{o}${c}",
        "$amount",
        "IDS",
        "3",
    ];
    args.extend(ids[..3].iter().map(String::as_str));
    let r = slots(&xprocess(&mut con, &args));
    for (slot, (id, key)) in r
        .iter()
        .zip(ids.iter().zip(["{o}orders", "{o}dd", "{o}dead"]))
    {
        assert_eq!(
            *slot,
            format!(
                "ERR entry {id} makes the effect key '{key}', which is the stream, the dedupe key or the dead-letter key"
            )
        );
    }
    assert_eq!(digest(&mut con), before);
    assert_eq!(pel(&mut con, "{o}orders", "g").len(), 4, "nothing acked");
}

#[test]
fn templated_keys_are_not_declared_literal_ones_are() {
    let server = Server::start();
    let mut con = server.conn();
    let keys: Vec<String> = q(
        &mut con,
        &[
            "COMMAND",
            "GETKEYS",
            "XPROCESS",
            "{o}orders",
            "g",
            "SADD",
            "{o}a",
            "m",
            "SADD",
            "{o}b:${c}",
            "m",
            "HINCRBY",
            "$$lit",
            "f",
            "1",
            "IDS",
            "1",
            "1-1",
        ],
    );
    // `$$lit` writes the key `$lit`, not what argv says: checked per entry.
    assert_eq!(keys, ["{o}orders", "{o}a"]);
}

#[test]
fn the_caller_acl_decides_each_templated_key() {
    let server = Server::start();
    let mut admin = server.conn();
    let ids = orders(&mut admin, &[("alice", "5"), ("bob", "7")]);
    let rules = [
        "ACL",
        "SETUSER",
        "u",
        "on",
        ">p",
        "+@all",
        "~{o}orders",
        "~{o}dd",
        "~{o}customer:a*",
    ];
    q::<String>(&mut admin, &rules);
    let mut user = server.conn_as("u", "p");
    let r = run(
        &mut user,
        &["HINCRBY", "{o}customer:${c}", "t", "$amount"],
        &ids,
    );
    assert_eq!(
        r,
        [
            "1".to_string(),
            format!(
                "NOPERM entry {} makes the effect key '{{o}}customer:bob', which this user has no permissions to write",
                ids[1]
            ),
        ]
    );
    assert_eq!(
        hget(&mut admin, "{o}customer:alice", "t").as_deref(),
        Some("5")
    );
    assert!(!exists(&mut admin, "{o}customer:bob"));
    assert_eq!(
        pel(&mut admin, "{o}orders", "g").len(),
        1,
        "bob's entry stays pending"
    );
}

#[test]
fn in_a_cluster_a_templated_key_must_share_the_stream_slot() {
    let server = Server::with(
        &[],
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ],
    );
    let mut con = server.conn();
    q::<String>(&mut con, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    wait_until("cluster_state:ok", || {
        q::<String>(&mut con, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
    });
    let ids = orders(&mut con, &[("alice", "5"), ("bob", "7")]);
    let r = run(
        &mut con,
        &["HINCRBY", "${c}", "t", "$amount", "SADD", "{o}s", "$c"],
        &ids,
    );
    let slot_of = |con: &mut Connection, k: &str| q::<i64>(con, &["CLUSTER", "KEYSLOT", k]);
    assert_ne!(slot_of(&mut con, "alice"), slot_of(&mut con, "{o}orders"));
    for (slot, (id, key)) in r.iter().zip(ids.iter().zip(["alice", "bob"])) {
        assert_eq!(
            *slot,
            format!("CROSSSLOT entry {id} makes the effect key '{key}', which does not hash to the stream's slot")
        );
    }
    assert!(
        !exists(&mut con, "{o}s"),
        "no effect of a refused entry ran"
    );
    let r = run(&mut con, &["HINCRBY", "{o}${c}", "t", "$amount"], &ids);
    assert_eq!(r, ["1", "1"]);
}

#[test]
fn a_replica_gets_the_expanded_keys() {
    let primary = Server::start();
    let port = primary.port().to_string();
    let replica = Server::with(&[], &["--replicaof", "127.0.0.1", &port]);
    let mut con = primary.conn();
    let mut rcon = replica.conn();
    let ids = orders(&mut con, &[("alice", "5"), ("bob", "7")]);
    let effects = [
        "HINCRBY",
        "{o}c:${c}",
        "t",
        "-$amount",
        "XADD",
        "{o}out:${c}",
        "ENTRY",
    ];
    assert_eq!(run(&mut con, &effects, &ids), ["1", "1"]);
    wait_replica_synced(&mut con, &mut rcon);
    assert_eq!(digest(&mut rcon), digest(&mut con));
    assert_eq!(hget(&mut rcon, "{o}c:bob", "t").as_deref(), Some("-7"));
}
