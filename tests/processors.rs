//! Standing processors (XPROCESS.START, STOP, LIST): the server runs a
//! group's definition by itself, as `XPROCESS ... READ` by its consumer
//! would, with no worker at all.

mod common;

use common::*;
use redis::{Connection, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const STREAM: &str = "{o}orders";
const DERIVED: &str = "{o}orders:xprocess:g";
/// Every entry adds its amount to a total and its `n` to a list: the list
/// shows each application (a duplicate would show twice).
const EFFECTS: &str = "HINCRBY {o}totals $cur $amount RPUSH {o}applied $n";

fn run(con: &mut Connection, args: &[&str]) -> Value {
    call(con, args)
}

fn define(con: &mut Connection, effects: &str) {
    q::<String>(con, &["XGROUP", "CREATE", STREAM, "g", "$", "MKSTREAM"]);
    let mut argv = vec!["XPROCESS.DEFINE", STREAM, "g"];
    argv.extend(effects.split(' '));
    assert_eq!(run(con, &argv), Value::Okay);
}

fn start(con: &mut Connection, options: &[&str]) {
    let mut argv = vec!["XPROCESS.START", STREAM, "g"];
    argv.extend_from_slice(options);
    assert_eq!(run(con, &argv), Value::Okay);
}

/// Append entries `from..to` (pipelined), amount 1 each.
fn produce(con: &mut Connection, from: u64, to: u64) {
    let mut pipe = redis::pipe();
    for n in from..to {
        pipe.cmd("XADD")
            .arg(STREAM)
            .arg("*")
            .arg("n")
            .arg(n)
            .arg("cur")
            .arg("eur")
            .arg("amount")
            .arg(1)
            .ignore();
    }
    pipe.query::<()>(con).unwrap();
}

fn applied(con: &mut Connection) -> Vec<String> {
    q(con, &["LRANGE", "{o}applied", "0", "-1"])
}

/// Wait until `n` entries were applied, then check each was applied once.
fn wait_applied(con: &mut Connection, n: usize) {
    wait_until(&format!("{n} entries applied"), || {
        q::<i64>(con, &["LLEN", "{o}applied"]) as usize >= n
    });
    let list = applied(con);
    let unique: HashSet<&String> = list.iter().collect();
    assert_eq!(list.len(), n, "applied more than produced");
    assert_eq!(unique.len(), n, "an entry was applied twice");
    let total = hget(con, "{o}totals", "eur").unwrap_or_default();
    assert_eq!(total, n.to_string());
}

/// XPROCESS.LIST's one processor, as field -> value.
fn listed(con: &mut Connection) -> std::collections::BTreeMap<String, Value> {
    let list: Vec<Vec<Value>> = q(con, &["XPROCESS.LIST"]);
    assert_eq!(list.len(), 1, "{list:?}");
    list[0]
        .chunks(2)
        .map(|kv| (redis::from_redis_value(&kv[0]).unwrap(), kv[1].clone()))
        .collect()
}

fn field_int(map: &std::collections::BTreeMap<String, Value>, name: &str) -> i64 {
    redis::from_redis_value(&map[name]).unwrap_or_else(|e| panic!("{name}: {e} in {map:?}"))
}

fn field_text(map: &std::collections::BTreeMap<String, Value>, name: &str) -> String {
    match &map[name] {
        Value::Nil => String::new(),
        v => redis::from_redis_value(v).unwrap(),
    }
}

#[test]
fn a_processor_applies_what_a_producer_appends_once() {
    let server = Server::start();
    let mut con = server.conn();
    define(&mut con, EFFECTS);
    start(&mut con, &[]);
    let mut producer = server.conn();
    for chunk in 0..30 {
        produce(&mut producer, chunk * 100, chunk * 100 + 100);
    }
    wait_applied(&mut con, 3000);
    let l = listed(&mut con);
    assert_eq!(field_text(&l, "key"), STREAM);
    assert_eq!(field_text(&l, "group"), "g");
    assert_eq!(field_text(&l, "consumer"), "xprocess");
    assert_eq!(field_text(&l, "state"), "running");
    assert_eq!(field_int(&l, "processed"), 3000);
    assert_eq!(field_int(&l, "errors"), 0);
    wait_until("lag 0", || field_int(&listed(&mut con), "lag") == 0);
    assert!(pel(&mut con, STREAM, "g").is_empty(), "every entry acked");
    assert_eq!(recorded(&mut con, DERIVED), 3000);
    let entries: i64 = info_field(&mut con, "xprocess", "xprocess_processor_entries")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(entries, 3000);
}

#[test]
fn stop_and_start() {
    let server = Server::start();
    let mut con = server.conn();
    define(&mut con, EFFECTS);
    let none = run(&mut con, &["XPROCESS.START", "{o}other", "g"]);
    assert_eq!(
        err(&none),
        "ERR the group has no definition, define it first with XPROCESS.DEFINE"
    );
    for (options, expected) in [
        (&["COUNT", "0"][..], "ERR COUNT must be a positive integer"),
        (
            &["CLAIM", "-1"][..],
            "ERR invalid CLAIM min-idle-time, must be a non-negative integer of milliseconds",
        ),
        (&["COUNT"][..], "ERR syntax error"),
        (&["BOGUS", "1"][..], "ERR syntax error"),
        (&["COUNT", "1", "COUNT", "2"][..], "ERR syntax error"),
    ] {
        let mut argv = vec!["XPROCESS.START", STREAM, "g"];
        argv.extend_from_slice(options);
        let got = run(&mut con, &argv);
        assert_eq!(error_text(&got).as_deref(), Some(expected), "{options:?}");
    }
    assert_eq!(q::<Vec<Value>>(&mut con, &["XPROCESS.LIST"]), vec![]);
    start(&mut con, &["CONSUMER", "bot", "COUNT", "7", "CLAIM", "500"]);
    produce(&mut con, 0, 50);
    wait_applied(&mut con, 50);
    assert_eq!(q::<i64>(&mut con, &["XPROCESS.STOP", STREAM, "g"]), 1);
    assert_eq!(q::<i64>(&mut con, &["XPROCESS.STOP", STREAM, "g"]), 0);
    produce(&mut con, 50, 60);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        applied(&mut con).len(),
        50,
        "a stopped processor applies nothing"
    );
    let l = listed(&mut con);
    assert_eq!(field_text(&l, "state"), "stopped");
    assert_eq!(field_int(&l, "lag"), 10);
    let info = dedupe_info(&mut con, DERIVED);
    let processor: Vec<String> = redis::from_redis_value(&info["processor"]).unwrap();
    assert_eq!(processor, ["CONSUMER", "bot", "COUNT", "7", "CLAIM", "500"]);
    start(&mut con, &["CONSUMER", "bot"]);
    wait_applied(&mut con, 60);
    let owners: Vec<Vec<Value>> = q(&mut con, &["XINFO", "CONSUMERS", STREAM, "g"]);
    assert_eq!(owners.len(), 1, "one consumer, bot: {owners:?}");
    assert_eq!(q::<i64>(&mut con, &["XPROCESS.UNDEFINE", STREAM, "g"]), 1);
    assert_eq!(q::<Vec<Value>>(&mut con, &["XPROCESS.LIST"]), vec![]);
}

#[test]
fn a_poison_entry_is_retried_every_claim_and_shown() {
    let server = Server::start();
    let mut con = server.conn();
    define(&mut con, EFFECTS);
    start(&mut con, &["CLAIM", "100"]);
    produce(&mut con, 0, 5);
    let poison = xadd_id(
        &mut con,
        STREAM,
        "*",
        &[("n", "p"), ("cur", "eur"), ("amount", "x")],
    );
    produce(&mut con, 5, 10);
    wait_applied(&mut con, 10);
    wait_until("the poison entry retried", || {
        field_int(&listed(&mut con), "errors") >= 3
    });
    let l = listed(&mut con);
    assert_eq!(field_text(&l, "last-error-id"), poison);
    assert_eq!(
        field_text(&l, "last-error"),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(field_int(&l, "lag"), 1, "pending, never hidden");
    assert_eq!(
        owner(&mut con, STREAM, "g", &poison).as_deref(),
        Some("xprocess")
    );
}

#[test]
fn dead_letters_are_written_once() {
    let server = Server::start();
    let mut con = server.conn();
    define(&mut con, &format!("DEADLETTER {{o}}dl AFTER 2 {EFFECTS}"));
    start(&mut con, &["CLAIM", "50"]);
    let poison = xadd_id(
        &mut con,
        STREAM,
        "*",
        &[("n", "p"), ("cur", "eur"), ("amount", "x")],
    );
    produce(&mut con, 0, 20);
    wait_applied(&mut con, 20);
    wait_until("dead-lettered", || {
        q::<i64>(&mut con, &["XLEN", "{o}dl"]) == 1
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(q::<i64>(&mut con, &["XLEN", "{o}dl"]), 1, "exactly once");
    let l = listed(&mut con);
    assert_eq!(field_int(&l, "dead-lettered"), 1);
    assert_eq!(field_int(&l, "lag"), 0);
    assert!(!pel(&mut con, STREAM, "g")
        .iter()
        .any(|(id, _)| *id == poison));
}

#[test]
fn deleting_the_group_or_stream_stops_it_everywhere() {
    let (primary, replica) = primary_with_aof_and_replica();
    let mut con = primary.conn();
    define(&mut con, EFFECTS);
    start(&mut con, &[]);
    produce(&mut con, 0, 10);
    wait_applied(&mut con, 10);
    let _: Value = run(&mut con, &["XGROUP", "DESTROY", STREAM, "g"]);
    produce(&mut con, 10, 11);
    wait_until("stopped", || {
        field_text(&listed(&mut con), "state") == "stopped"
    });
    let l = listed(&mut con);
    assert!(field_text(&l, "last-error").starts_with("NOGROUP"), "{l:?}");
    let mut rcon = replica.conn();
    wait_replica_synced(&mut con, &mut rcon);
    assert_eq!(
        digest_value(&mut rcon, &[DERIVED]),
        digest_value(&mut con, &[DERIVED])
    );
    let stops = info_field(&mut con, "xprocess", "xprocess_processor_stops");
    assert_eq!(stops.as_deref(), Some("1"));
    // Started again on a recreated group, then the stream deleted.
    q::<String>(&mut con, &["XGROUP", "CREATE", STREAM, "g", "$"]);
    start(&mut con, &[]);
    let _: Value = run(&mut con, &["DEL", STREAM]);
    wait_until("stopped again", || {
        field_text(&listed(&mut con), "state") == "stopped"
    });
    assert_eq!(q::<String>(&mut con, &["PING"]), "PONG");
}

#[test]
fn a_replica_keeps_the_processor_and_a_promoted_one_resumes() {
    let (mut primary, replica) = primary_with_aof_and_replica();
    let mut con = primary.conn();
    define(&mut con, EFFECTS);
    start(&mut con, &["CLAIM", "100"]);
    produce(&mut con, 0, 500);
    wait_applied(&mut con, 500);
    let mut rcon = replica.conn();
    wait_replica_synced(&mut con, &mut rcon);
    let keys = [DERIVED, "{o}totals", "{o}applied", STREAM];
    assert_eq!(
        digest_value(&mut rcon, &keys),
        digest_value(&mut con, &keys)
    );
    let batches = info_field(&mut rcon, "xprocess", "xprocess_processor_batches");
    assert_eq!(batches.as_deref(), Some("0"), "a replica never runs it");
    assert_eq!(field_text(&listed(&mut rcon), "state"), "running");
    primary.kill9();
    let _: Value = run(&mut rcon, &["REPLICAOF", "NO", "ONE"]);
    produce(&mut rcon, 500, 800);
    wait_applied(&mut rcon, 800);
    drop(primary);
}

#[test]
fn restarts_keep_it_running() {
    for persistence in [["--appendonly", "no"], ["--appendonly", "yes"]] {
        let mut server = Server::with(&[], &persistence);
        let mut con = server.conn();
        define(&mut con, EFFECTS);
        start(&mut con, &[]);
        produce(&mut con, 0, 100);
        wait_applied(&mut con, 100);
        if persistence[1] == "no" {
            q::<String>(&mut con, &["SAVE"]);
        }
        server.kill9();
        server.restart();
        let mut con = server.conn();
        produce(&mut con, 100, 200);
        wait_applied(&mut con, 200);
        assert_eq!(field_text(&listed(&mut con), "state"), "running");
    }
}

#[test]
fn a_backlog_is_worked_off_within_the_budget_per_turn() {
    let server = Server::with(&["processor-budget-us", "2000"], &[]);
    let mut con = server.conn();
    define(&mut con, EFFECTS);
    let n = 20_000;
    for chunk in 0..(n / 1000) {
        produce(&mut con, chunk * 1000, chunk * 1000 + 1000);
    }
    let mut ping = server.conn();
    start(&mut con, &["COUNT", "10000"]);
    let began = Instant::now();
    let mut worst = Duration::ZERO;
    while q::<i64>(&mut con, &["LLEN", "{o}applied"]) < n as i64 {
        let sent = Instant::now();
        assert_eq!(q::<String>(&mut ping, &["PING"]), "PONG");
        worst = worst.max(sent.elapsed());
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "backlog not worked off"
        );
    }
    let took = began.elapsed();
    eprintln!("backlog of {n}: {took:?}, worst PING {worst:?}");
    wait_applied(&mut con, n as usize);
    let batches: u64 = info_field(&mut con, "xprocess", "xprocess_processor_batches")
        .unwrap()
        .parse()
        .unwrap();
    // One batch of 10,000 would hold the server for the whole backlog:
    // batches are sized to the budget instead.
    assert!(batches >= 20, "{batches} batches for {n} entries");
    assert!(
        worst < took / 4 && worst < Duration::from_millis(250),
        "a PING waited {worst:?} while the backlog took {took:?}"
    );
}

#[test]
fn define_and_start_in_multi_and_scripts() {
    let server = Server::start();
    let mut con = server.conn();
    q::<String>(
        &mut con,
        &["XGROUP", "CREATE", STREAM, "g", "$", "MKSTREAM"],
    );
    let replies: Vec<Value> = redis::pipe()
        .atomic()
        .cmd("XPROCESS.DEFINE")
        .arg(&[STREAM, "g"])
        .arg(EFFECTS.split(' ').collect::<Vec<_>>())
        .cmd("XPROCESS.START")
        .arg(&[STREAM, "g"])
        .query(&mut con)
        .unwrap();
    assert_eq!(replies, vec![Value::Okay, Value::Okay]);
    produce(&mut con, 0, 10);
    wait_applied(&mut con, 10);
    let script = "redis.call('XPROCESS.STOP', KEYS[1], 'g');
        return redis.call('XPROCESS.DEFINE', KEYS[1], 'g', 'RPUSH', '{o}applied', '$n')";
    let ok: Value = call(&mut con, &["EVAL", script, "1", STREAM]);
    assert_eq!(ok, Value::Okay);
    assert_eq!(field_text(&listed(&mut con), "state"), "stopped");
    let started: Value = call(
        &mut con,
        &[
            "EVAL",
            "return redis.call('XPROCESS.START', KEYS[1], 'g')",
            "1",
            STREAM,
        ],
    );
    assert_eq!(started, Value::Okay);
    produce(&mut con, 10, 12);
    wait_until("applied after EVAL", || applied(&mut con).len() == 12);
}

#[test]
fn a_demoted_primary_stops_and_its_new_primary_runs_it() {
    let (primary, replica) = primary_with_aof_and_replica();
    let mut con = primary.conn();
    define(&mut con, EFFECTS);
    start(&mut con, &[]);
    produce(&mut con, 0, 100);
    wait_applied(&mut con, 100);
    let mut rcon = replica.conn();
    wait_replica_synced(&mut con, &mut rcon);
    // Swap the roles: the replica becomes the primary, the old primary its
    // replica.
    let _: Value = run(&mut rcon, &["REPLICAOF", "NO", "ONE"]);
    let port = replica.port().to_string();
    let _: Value = run(&mut con, &["REPLICAOF", "127.0.0.1", &port]);
    wait_replica_synced(&mut rcon, &mut con);
    let batches = |c: &mut Connection| -> u64 {
        info_field(c, "xprocess", "xprocess_processor_batches")
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = batches(&mut con);
    produce(&mut rcon, 100, 300);
    wait_applied(&mut rcon, 300);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(batches(&mut con), before, "the demoted primary ran a batch");
    wait_replica_synced(&mut rcon, &mut con);
    let keys = [DERIVED, "{o}totals", "{o}applied", STREAM];
    assert_eq!(
        digest_value(&mut con, &keys),
        digest_value(&mut rcon, &keys)
    );
}

#[test]
fn starting_a_processor_is_dangerous() {
    let server = Server::start();
    let mut con = server.conn();
    if !server_version(&mut con).redis_at_least(7, 2) {
        return; // no ACL categories for module commands before 7.2
    }
    define(&mut con, EFFECTS);
    let _: Value = run(
        &mut con,
        &[
            "ACL",
            "SETUSER",
            "u",
            "on",
            ">pw",
            "+@all",
            "-@dangerous",
            "~*",
        ],
    );
    let mut u = server.conn_as("u", "pw");
    let refused = run(&mut u, &["XPROCESS.START", STREAM, "g"]);
    assert!(err(&refused).starts_with("NOPERM"), "{refused:?}");
    assert_eq!(
        run(&mut u, &["XPROCESS", STREAM, "g", "CONSUMER", "c", "READ"]),
        Value::Array(vec![])
    );
    let cats: Vec<String> = q(&mut con, &["ACL", "CAT", "dangerous"]);
    assert!(cats.iter().any(|c| c == "xprocess.start"), "{cats:?}");
}
