//! READ keeps the entries it finishes out of the PEL: the group, its PEL
//! and its consumers must still end exactly as `XREADGROUP` + `XACK` leave
//! them. Two streams get the same entries and the same changes (XDEL ahead
//! of the group, XGROUP SETID back with and without ENTRIESREAD, deleting
//! what was done); one is consumed by a client's XREADGROUP, HINCRBY and
//! XACK, the other by READ. After each round their groups are compared,
//! and at the end a replica's data with the primary's.

mod common;

use common::*;
use redis::{Connection, Value};
use std::collections::BTreeMap;

const FLOOR: &str = "{a}";
const READ: &str = "{b}";

fn stream(side: &str) -> String {
    format!("{side}s")
}

fn totals(side: &str) -> String {
    format!("{side}t")
}

/// Entry `n`: every seventh lacks `cust`, so its effect fails.
fn add(con: &mut Connection, n: u64) {
    let amount = (n % 13 + 1).to_string();
    let cust = format!("c{}", n % 5);
    let id = format!("{}-0", 1000 + n);
    for side in [FLOOR, READ] {
        let mut fields = vec![("amount", amount.as_str())];
        if !n.is_multiple_of(7) {
            fields.push(("cust", cust.as_str()));
        }
        xadd_id(con, &stream(side), &id, &fields);
    }
}

/// One round of each consumer: COUNT entries at most. Whether any was read.
fn round(con: &mut Connection, consumer: &str, count: usize, delete: bool) -> bool {
    let (s, t) = (stream(FLOOR), totals(FLOOR));
    let n = count.to_string();
    let args = ["GROUP", "g", consumer, "COUNT", &n, "STREAMS", &s, ">"];
    let reply: Value = q(con, &[&["XREADGROUP"][..], &args].concat());
    let entries = floor_entries(&reply);
    let mut done = Vec::new();
    for (id, fields) in &entries {
        if let (Some(cust), Some(amount)) = (fields.get("cust"), fields.get("amount")) {
            q::<i64>(con, &["HINCRBY", &t, cust, amount]);
            done.push(id.as_str());
        }
    }
    if !done.is_empty() {
        q::<i64>(con, &[&["XACK", &s, "g"][..], &done].concat());
        if delete {
            q::<i64>(con, &[&["XDEL", &s][..], &done].concat());
        }
    }
    let (s, t) = (stream(READ), totals(READ));
    let mut call = vec![s.as_str(), "g", "CONSUMER", consumer];
    if delete {
        call.push("DELETE");
    }
    call.extend(["HINCRBY", &t, "$cust", "$amount", "READ", "COUNT", &n]);
    let read = xprocess(con, &call);
    let Value::Array(pairs) = &read else {
        panic!("READ replied {read:?}");
    };
    assert_eq!(pairs.len(), entries.len(), "READ took what XREADGROUP took");
    !entries.is_empty()
}

type Fields = BTreeMap<String, String>;

fn floor_entries(reply: &Value) -> Vec<(String, Fields)> {
    let Value::Array(streams) = reply else {
        return Vec::new(); // nil: nothing new
    };
    let Value::Array(stream) = &streams[0] else {
        panic!("{reply:?}");
    };
    let entries: Vec<(String, Vec<String>)> = redis::from_redis_value(&stream[1]).unwrap();
    entries
        .into_iter()
        .map(|(id, flat)| {
            let fields = flat.chunks(2).map(|p| (p[0].clone(), p[1].clone()));
            (id, fields.collect())
        })
        .collect()
}

/// Consume everything new, `count` at a time, with each consumer in turn.
fn drain(con: &mut Connection, count: usize, delete: bool) {
    for consumer in ["w1", "w2"].iter().cycle() {
        if !round(con, consumer, count, delete) {
            break;
        }
        assert_same(con);
    }
    assert_same(con);
}

/// What a side's group, PEL and consumers look like (times left out).
fn state(con: &mut Connection, side: &str) -> Vec<String> {
    let s = stream(side);
    let groups: Vec<Vec<Value>> = q(con, &["XINFO", "GROUPS", &s]);
    let mut out: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
    let pel: Vec<(String, String, i64, i64)> = q(con, &["XPENDING", &s, "g", "-", "+", "1000"]);
    out.extend(
        pel.iter()
            .map(|(id, c, _, n)| format!("pending {id} {c} {n}")),
    );
    let consumers: Vec<BTreeMap<String, Value>> = q(con, &["XINFO", "CONSUMERS", &s, "g"]);
    for c in consumers {
        // Seen and active times are now-ish on both sides; only whether the
        // consumer was ever active (-1 when not, Redis 7.2 and later) counts.
        let never = c.get("inactive").map(|v| format!("{v:?}") == "int(-1)");
        out.push(format!(
            "consumer {:?} {:?} {never:?}",
            c["name"], c["pending"]
        ));
    }
    let info: BTreeMap<String, Value> = q(con, &["XINFO", "STREAM", &s]);
    for field in [
        "length",
        "last-generated-id",
        "max-deleted-entry-id",
        "entries-added",
    ] {
        out.push(format!("{field} {:?}", info[field]));
    }
    // (Totals are not compared: after SETID back, the client applies the
    // entries it reads again, READ finds them duplicates.)
    out
}

fn assert_same(con: &mut Connection) {
    assert_eq!(state(con, READ), state(con, FLOOR));
}

/// A command run on both streams (`{}` stands for the stream).
fn both(con: &mut Connection, args: &[&str]) {
    for side in [FLOOR, READ] {
        let s = stream(side);
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "{}" { s.as_str() } else { a })
            .collect();
        call(con, &args);
    }
}

#[test]
fn read_leaves_group_pel_and_consumers_as_xreadgroup_and_xack_do() {
    let (primary, replica) = primary_with_aof_and_replica();
    let mut con = primary.conn();
    for side in [FLOOR, READ] {
        q::<String>(
            &mut con,
            &["XGROUP", "CREATE", &stream(side), "g", "0", "MKSTREAM"],
        );
    }
    let mut next = 0;
    let mut add_n = |con: &mut Connection, n: u64| {
        for _ in 0..n {
            next += 1;
            add(con, next);
        }
    };
    // In order, as the fast path reads; then small reads.
    add_n(&mut con, 250);
    drain(&mut con, 100, false);
    add_n(&mut con, 40);
    drain(&mut con, 3, false);
    // Tombstones ahead of the group.
    add_n(&mut con, 60);
    both(&mut con, &["XDEL", "{}", "1295-0", "1300-0", "1340-0"]);
    drain(&mut con, 25, false);
    // Moved back without a counter: entries it reads again are pending.
    add_n(&mut con, 30);
    both(&mut con, &["XGROUP", "SETID", "{}", "g", "1200-0"]);
    drain(&mut con, 50, false);
    // Moved back with a counter.
    both(
        &mut con,
        &["XGROUP", "SETID", "{}", "g", "1370-0", "ENTRIESREAD", "367"],
    );
    add_n(&mut con, 30);
    drain(&mut con, 10, false);
    // What is done leaves the stream (READ ... DELETE; XDEL after XACK).
    add_n(&mut con, 80);
    drain(&mut con, 20, false);
    add_n(&mut con, 80);
    drain(&mut con, 20, true);
    add_n(&mut con, 80);
    drain(&mut con, 100, true);
    // A new consumer, and a group that starts at the end.
    both(&mut con, &["XGROUP", "CREATE", "{}", "late", "$"]);
    add_n(&mut con, 20);
    drain(&mut con, 100, false);
    // Most new entries never entered the PEL (the rest: reads of fewer than
    // eight, and those the servers may count differently).
    let outside: u64 = info_field(&mut con, "xprocess", "xprocess_read_outside_pel")
        .expect("INFO xprocess_read_outside_pel")
        .parse()
        .unwrap();
    assert!(outside > 400, "{outside} entries outside the PEL");
    let mut rcon = replica.conn();
    wait_replica_synced(&mut con, &mut rcon);
    assert_eq!(digest(&mut rcon), digest(&mut con));
    let s = stream(READ);
    assert_eq!(
        digest_value(&mut rcon, &[&s]),
        digest_value(&mut con, &[&s])
    );
}
