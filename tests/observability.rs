//! INFO xprocess counters (monotonic: CONFIG RESETSTAT leaves them), and
//! the module event raised per applied entry.

mod common;

use common::*;
use redis::Connection;
use std::time::Duration;

fn counter(con: &mut Connection, name: &str) -> u64 {
    info_field(con, "xprocess", &format!("xprocess_{name}"))
        .unwrap_or_else(|| panic!("INFO xprocess has no {name}"))
        .parse()
        .unwrap()
}

/// Four entries: two applied, one per-entry error, then a retry (duplicates)
/// and a NOTOWNER.
fn workload(con: &mut Connection) {
    let ids = pending(
        con,
        "s",
        "g",
        "c1",
        &[&[("n", "1")], &[("n", "2")], &[("x", "3")], &[("n", "4")]],
    );
    let call = |con: &mut Connection, extra: &[&str], ids: &[String]| {
        let mut args = vec!["s", "g"];
        args.extend_from_slice(extra);
        args.extend(["HINCRBY", "h", "f", "$n", "SADD", "set", "$n", "IDS"]);
        let n = ids.len().to_string();
        args.push(&n);
        args.extend(ids.iter().map(String::as_str));
        slots(&xprocess(con, &args))
    };
    let missing = format!("ERR entry {} has no field 'n'", ids[2]);
    assert_eq!(call(con, &[], &ids[..3]), vec!["1", "1", missing.as_str()]);
    assert_eq!(call(con, &[], &ids[..2]), vec!["0", "0"]);
    let fenced = call(con, &["CONSUMER", "other"], &ids[3..]);
    assert!(fenced[0].starts_with("NOTOWNER"), "{fenced:?}");
}

#[test]
fn info_counts_and_counters_only_grow() {
    let srv = Server::start();
    let mut con = srv.conn();
    workload(&mut con);
    let expect = [
        ("calls", 3),
        ("entries", 6),
        ("applied", 2),
        ("duplicates", 2),
        ("errors", 1),
        ("fenced", 1),
        ("effects_hincrby", 2),
        ("effects_sadd", 2),
        ("effects_xadd", 0),
    ];
    for (name, value) in expect {
        assert_eq!(counter(&mut con, name), value, "{name}");
    }
    // Seeing CONFIG RESETSTAT would take a command filter on every command
    // of every client: the counters are monotonic instead.
    q::<String>(&mut con, &["CONFIG", "RESETSTAT"]);
    for (name, value) in expect {
        assert_eq!(counter(&mut con, name), value, "{name} after RESETSTAT");
    }
    let calls: u64 = info_field(&mut con, "commandstats", "cmdstat_xprocess")
        .map_or(0, |v| v.split(['=', ',']).nth(1).unwrap().parse().unwrap());
    assert_eq!(calls, 0, "Redis' own statistics were reset");
}

#[test]
fn one_module_event_per_applied_entry() {
    let srv = Server::start();
    let mut con = srv.conn();
    q::<String>(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "Kd"]);
    let mut sub = srv.conn();
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe("__keyspace@0__:s").unwrap();
    workload(&mut con);
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for _ in 0..2 {
        let msg = pubsub.get_message().unwrap();
        assert_eq!(msg.get_payload::<String>().unwrap(), "xprocess");
    }
    pubsub
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(
        pubsub.get_message().is_err(),
        "an event for a non-applied entry"
    );
}
