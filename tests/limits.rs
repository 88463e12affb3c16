//! Limits: the largest call, the most effects, and memory that stays bounded.

mod common;

use common::*;
use redis::Connection;
use std::time::Instant;

/// `n` entries in stream `s` (group g), pending for c1; returns their IDs.
fn pending_entries(con: &mut Connection, n: usize) -> Vec<String> {
    q::<String>(con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("XADD")
            .arg("s")
            .arg("*")
            .arg("user")
            .arg(i % 100)
            .arg("amount")
            .arg(1);
    }
    let ids: Vec<String> = pipe.query(con).unwrap();
    let _: redis::Value = q(
        con,
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"],
    );
    ids
}

fn xprocess_ids(con: &mut Connection, effects: &[&str], ids: &[String]) -> redis::Value {
    let mut cmd = redis::cmd("XPROCESS");
    cmd.arg("s")
        .arg("g")
        .arg(effects)
        .arg("IDS")
        .arg(ids.len())
        .arg(ids);
    cmd.query(con).unwrap()
}

fn used_memory(con: &mut Connection) -> i64 {
    info_field(con, "memory", "used_memory")
        .unwrap()
        .parse()
        .unwrap()
}

const HINCRBY: [&str; 4] = ["HINCRBY", "totals", "$user", "$amount"];

#[test]
fn numids_over_max_ids_is_refused_and_can_be_raised() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = pending_entries(&mut con, 100_000);
    let max: String = q::<Vec<String>>(&mut con, &["CONFIG", "GET", "xprocess.max-ids"]).remove(1);
    assert_eq!(max, "10000");

    let before = digest(&mut con);
    let reply = call(&mut con, &{
        let mut a = vec!["XPROCESS", "s", "g", "SADD", "x", "$user", "IDS", "10001"];
        a.extend(ids[..10_001].iter().map(String::as_str));
        a
    });
    assert!(err(&reply).starts_with("ERR numids exceeds xprocess.max-ids (10000)"));
    assert_eq!(digest(&mut con), before, "a refused call changed data");

    q::<String>(&mut con, &["CONFIG", "SET", "xprocess.max-ids", "100000"]);
    let started = Instant::now();
    let reply = xprocess_ids(&mut con, &HINCRBY, &ids);
    let took = started.elapsed();
    let applied = slots(&reply).iter().filter(|s| *s == "1").count();
    assert_eq!(applied, 100_000);
    assert_eq!(q::<i64>(&mut con, &["HGET", "totals", "7"]), 1_000);
    let dedupe = "{s}:xprocess:g";
    assert_eq!(recorded(&mut con, dedupe), 100_000);
    let (first, last) = (ids[0].as_str(), ids[99_999].as_str());
    assert_eq!(
        processed_flags(&mut con, dedupe, &[first, &ids[50_000], last]),
        [true, true, true]
    );
    // 100,000 consecutive entries are one range: the index stays small.
    assert_eq!(dedupe_info_int(&mut con, dedupe, "ranges"), 1);
    let usage: i64 = q(&mut con, &["MEMORY", "USAGE", dedupe]);
    assert!(usage < 1024, "MEMORY USAGE of the index: {usage}");
    assert_eq!(pel(&mut con, "s", "g").len(), 0);
    println!("100,000 IDs in one call (debug build): {took:?}");
}

#[test]
fn a_thousand_effects_in_one_call() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = pending_entries(&mut con, 3);
    let mut effects: Vec<String> = Vec::new();
    for i in 0..1000 {
        effects.extend([
            "HINCRBY".into(),
            format!("h{}", i % 10),
            format!("f{i}"),
            "$amount".into(),
        ]);
    }
    let effects: Vec<&str> = effects.iter().map(String::as_str).collect();
    let reply = xprocess_ids(&mut con, &effects, &ids);
    assert_eq!(slots(&reply), vec!["1", "1", "1"]);
    for h in 0..10 {
        assert_eq!(q::<i64>(&mut con, &["HLEN", &format!("h{h}")]), 100);
    }
    assert_eq!(q::<i64>(&mut con, &["HGET", "h3", "f993"]), 3);
}

/// Repeated calls leave nothing behind: memory after many duplicate calls
/// (nothing to write) is what it was before them.
#[test]
fn memory_stays_bounded_under_repeated_calls() {
    let srv = Server::start();
    let mut con = srv.conn();
    let ids = pending_entries(&mut con, 5_000);
    for chunk in ids.chunks(100) {
        xprocess_ids(&mut con, &HINCRBY, chunk);
    }
    let before = used_memory(&mut con);
    for _ in 0..4 {
        for chunk in ids.chunks(10) {
            let reply = xprocess_ids(&mut con, &HINCRBY, chunk);
            assert!(slots(&reply).iter().all(|s| s == "0"));
        }
    }
    let grown = used_memory(&mut con) - before;
    assert!(
        grown < 256 * 1024,
        "used_memory grew by {grown} bytes over 2,000 calls"
    );
}

/// The configs as loadmodule arguments, and the example redis.conf as a
/// server's config file: the module loads and the configs read back.
#[test]
fn configs_from_loadmodule_arguments_and_redis_conf_example() {
    let srv = Server::with(
        &["max-ids", "3", "default-ttl", "1000", "key-window", "5000"],
        &[],
    );
    let mut con = srv.conn();
    let got: Vec<String> = q(&mut con, &["CONFIG", "GET", "xprocess.*"]);
    let mut pairs: Vec<(String, String)> = got
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("xprocess.default-ttl".to_string(), "1000".to_string()),
            ("xprocess.key-window".to_string(), "5000".to_string()),
            ("xprocess.max-ids".to_string(), "3".to_string()),
            (
                "xprocess.processor-budget-us".to_string(),
                "1000".to_string()
            )
        ]
    );
    let ids = pending_entries(&mut con, 4);
    let reply = call(&mut con, &{
        let mut a = vec!["XPROCESS", "s", "g", "SADD", "x", "$user", "IDS", "4"];
        a.extend(ids.iter().map(String::as_str));
        a
    });
    assert!(err(&reply).starts_with("ERR numids exceeds xprocess.max-ids (3)"));

    // redis.conf.example's directives as arguments (as a config file would
    // give them), but the harness' own port, bind, dir and save.
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/redis.conf.example"))
            .unwrap();
    let mut args: Vec<String> = Vec::new();
    for line in example.lines().map(str::trim) {
        let Some((name, value)) = line.split_once(' ') else {
            continue;
        };
        if line.starts_with('#') || ["port", "bind", "dir", "save", "logfile"].contains(&name) {
            continue;
        }
        let value = match name {
            "loadmodule" => module_path().display().to_string(),
            _ => value.trim_matches('"').to_string(),
        };
        args.extend([format!("--{name}"), value]);
    }
    assert!(args.contains(&"--loadmodule".to_string()), "{args:?}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let example_srv = Server::without_module(&args);
    let mut con = example_srv.conn();
    let got: Vec<String> = q(&mut con, &["CONFIG", "GET", "xprocess.max-ids"]);
    assert_eq!(got, ["xprocess.max-ids", "10000"]);
    let got: Vec<String> = q(&mut con, &["CONFIG", "GET", "appendonly"]);
    assert_eq!(got, ["appendonly", "yes"]);
}
