//! `READ` (the worker loop in one command), `BLOCK` and `DEADLETTER`,
//! against real servers.

mod common;

use common::*;
use redis::{Connection, Value};
use std::thread;
use std::time::{Duration, Instant};

const DL: &str = "{s}dead";

/// `XPROCESS s g CONSUMER <consumer> [options] HINCRBY t $cust $amount READ <read>`.
fn read(con: &mut Connection, consumer: &str, options: &[&str], read: &[&str]) -> Value {
    let mut args = vec!["s", "g", "CONSUMER", consumer];
    args.extend_from_slice(options);
    args.extend_from_slice(&["HINCRBY", "{s}t", "$cust", "$amount", "READ"]);
    args.extend_from_slice(read);
    xprocess(con, &args)
}

/// A READ reply as (id, outcome) pairs, outcomes as in `slots`.
fn pairs(v: &Value) -> Vec<(String, String)> {
    let Value::Array(items) = v else {
        panic!("expected an array reply, got {v:?}");
    };
    items
        .iter()
        .map(|item| match item {
            Value::Array(pair) if pair.len() == 2 => {
                let id: String = redis::from_redis_value(&pair[0]).unwrap();
                (id, slots(&Value::Array(vec![pair[1].clone()])).remove(0))
            }
            other => panic!("unexpected element {other:?} in {v:?}"),
        })
        .collect()
}

fn ids(v: &Value) -> Vec<String> {
    pairs(v).into_iter().map(|(id, _)| id).collect()
}

fn add(con: &mut Connection, fields: &[(&str, &str)]) -> String {
    xadd_id(con, "s", "*", fields)
}

fn group(con: &mut Connection) {
    q::<String>(con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
}

fn total(con: &mut Connection) -> i64 {
    hget(con, "{s}t", "c").map_or(0, |v| v.parse().unwrap())
}

/// READ ... BLOCK clients waiting now (INFO xprocess).
fn blocked_clients(con: &mut Connection) -> u64 {
    info_field(con, "xprocess", "xprocess_blocked_clients")
        .expect("INFO xprocess_blocked_clients")
        .parse()
        .unwrap()
}

/// Wait until `n` READ ... BLOCK clients wait.
fn wait_blocked(con: &mut Connection, n: u64) {
    wait_until(&format!("{n} blocked READ clients"), || {
        blocked_clients(con) == n
    });
}

fn deliveries(con: &mut Connection, id: &str) -> i64 {
    let rows: Vec<(String, String, i64, i64)> = q(con, &["XPENDING", "s", "g", id, id, "1"]);
    rows.first().map_or(0, |r| r.3)
}

#[test]
fn read_takes_new_entries_for_the_consumer_and_leaves_failures_pending() {
    let server = Server::start();
    let mut con = server.conn();
    group(&mut con);
    assert_eq!(read(&mut con, "w", &[], &[]), Value::Array(vec![]));
    let good = add(&mut con, &[("cust", "c"), ("amount", "5")]);
    let bad = add(&mut con, &[("amount", "7")]);
    let out = pairs(&read(&mut con, "w", &[], &[]));
    assert_eq!(
        out,
        vec![
            (good.clone(), "1".to_string()),
            (bad.clone(), format!("ERR entry {bad} has no field 'cust'"))
        ]
    );
    assert_eq!(total(&mut con), 5);
    assert_eq!(pel(&mut con, "s", "g"), vec![(bad.clone(), "w".into())]);
    // Nothing new: the failed entry is not read again without CLAIM.
    assert_eq!(read(&mut con, "w", &[], &[]), Value::Array(vec![]));
    assert_eq!(
        info_field(&mut con, "xprocess", "xprocess_read_new").as_deref(),
        Some("2")
    );
    // The group moved on as XREADGROUP moves it.
    let lag: Value = q(&mut con, &["XINFO", "GROUPS", "s"]);
    assert!(format!("{lag:?}").contains(&bad), "{lag:?}");
}

#[test]
fn count_is_split_between_claimed_and_new_entries() {
    let server = Server::start();
    let mut con = server.conn();
    group(&mut con);
    let f: &[(&str, &str)] = &[("cust", "c"), ("amount", "1")];
    let abandoned = pending(&mut con, "s", "g", "dead", &[f, f]);
    let new: Vec<String> = (0..5).map(|_| add(&mut con, f)).collect();
    thread::sleep(Duration::from_millis(20));
    // CLAIM 10: both abandoned entries are idle enough; then one new one.
    let out = read(&mut con, "w", &[], &["COUNT", "3", "CLAIM", "10"]);
    let expect = [abandoned.clone(), vec![new[0].clone()]].concat();
    assert_eq!(ids(&out), expect);
    assert!(pairs(&out).iter().all(|(_, o)| o == "1"));
    assert_eq!(deliveries(&mut con, &new[1]), 0, "not read yet");
    assert!(pel(&mut con, "s", "g").is_empty(), "all three acked");
    assert_eq!(
        info_field(&mut con, "xprocess", "xprocess_read_claimed").as_deref(),
        Some("2")
    );
    let out = read(&mut con, "w", &[], &["COUNT", "10"]);
    assert_eq!(ids(&out), new[1..].to_vec());
    // Entries pending for less than min-idle are not claimed.
    let fresh = pending(&mut con, "s", "g", "other", &[f]);
    let out = read(&mut con, "w", &[], &["COUNT", "10", "CLAIM", "60000"]);
    assert_eq!(out, Value::Array(vec![]));
    assert_eq!(
        owner(&mut con, "s", "g", &fresh[0]).as_deref(),
        Some("other")
    );
    assert_eq!(total(&mut con), 7);
}

#[test]
fn count_defaults_to_100_and_is_capped_by_max_ids() {
    let server = Server::start();
    let mut con = server.conn();
    group(&mut con);
    for _ in 0..150 {
        add(&mut con, &[("cust", "c"), ("amount", "1")]);
    }
    assert_eq!(pairs(&read(&mut con, "w", &[], &[])).len(), 100);
    q::<String>(&mut con, &["CONFIG", "SET", "xprocess.max-ids", "7"]);
    assert_eq!(
        pairs(&read(&mut con, "w", &[], &["COUNT", "1000"])).len(),
        7
    );
}

#[test]
fn dead_letter_at_exactly_the_after_th_delivery() {
    let server = Server::start();
    let mut con = server.conn();
    group(&mut con);
    let dl = ["DEADLETTER", DL, "AFTER", "3"];
    let poison = add(&mut con, &[("amount", "x"), ("@id", "spoof")]);
    let claim = ["CLAIM", "0"];
    for delivery in 1..=2 {
        let out = pairs(&read(&mut con, "w", &dl, &claim));
        assert_eq!(out.len(), 1);
        assert!(out[0].1.starts_with("ERR"), "delivery {delivery}: {out:?}");
        assert_eq!(deliveries(&mut con, &poison), delivery);
        assert!(!exists(&mut con, DL));
    }
    let out = pairs(&read(&mut con, "w", &dl, &claim));
    assert_eq!(out, vec![(poison.clone(), "2".to_string())]);
    assert!(pel(&mut con, "s", "g").is_empty(), "acked");
    assert!(processed(&mut con, "{s}:xprocess:g", &poison));
    assert_eq!(total(&mut con), 0, "never applied");
    let letters = xrange(&mut con, DL);
    assert_eq!(letters.len(), 1);
    let fields = &letters[0].1;
    let expect: Vec<String> = [
        "@id",
        poison.as_str(),
        "@stream",
        "s",
        "@group",
        "g",
        "@consumer",
        "w",
        "@error",
        &format!("ERR entry {poison} has no field 'cust'"),
        "@deliveries",
        "3",
        "$amount",
        "x",
        "$@id",
        "spoof",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(fields, &expect);
    assert_eq!(
        info_field(&mut con, "xprocess", "xprocess_dead_lettered").as_deref(),
        Some("1")
    );

    // Replayed from the start of the stream, it is a duplicate, not applied.
    q::<String>(&mut con, &["XGROUP", "SETID", "s", "g", "0"]);
    assert_eq!(
        pairs(&read(&mut con, "w", &dl, &[])),
        vec![(poison.clone(), "0".into())]
    );
    // After a fix, FORGET and XPROCESS without CONSUMER reprocess it.
    let forgot: i64 = q(&mut con, &["XPROCESS.FORGET", "{s}:xprocess:g", &poison]);
    assert_eq!(forgot, 1);
    let out = xprocess(
        &mut con,
        &["s", "g", "SADD", "{s}fixed", "$@id", "IDS", "1", &poison],
    );
    assert_eq!(slots(&out), ["1"]);
}

#[test]
fn dead_letter_with_ids_uses_the_pel_delivery_count() {
    let server = Server::start();
    let mut con = server.conn();
    let f: &[(&str, &str)] = &[("amount", "1")];
    let id = pending(&mut con, "s", "g", "w", &[f]).remove(0);
    let call = |con: &mut Connection, after: &str| {
        let args = [
            "s",
            "g",
            "CONSUMER",
            "w",
            "DEADLETTER",
            DL,
            "AFTER",
            after,
            "SADD",
            "{s}x",
            "$cust",
            "IDS",
            "1",
            &id,
        ];
        slots(&xprocess(con, &args))
    };
    assert!(call(&mut con, "2")[0].starts_with("ERR"), "delivered once");
    assert_eq!(call(&mut con, "1"), ["2"]);
    let letter = &xrange(&mut con, DL)[0].1;
    let at = letter.iter().position(|f| f == "@deliveries").unwrap();
    assert_eq!(letter[at + 1], "1");
    assert!(!letter.contains(&"@consumer".to_string()) || letter.contains(&"w".to_string()));
    // A NOTOWNER entry is never dead-lettered.
    let other = pending(&mut con, "s", "g", "bob", &[f]).remove(0);
    let args = [
        "s",
        "g",
        "CONSUMER",
        "w",
        "DEADLETTER",
        DL,
        "AFTER",
        "1",
        "SADD",
        "{s}x",
        "$cust",
        "IDS",
        "1",
        &other,
    ];
    assert!(slots(&xprocess(&mut con, &args))[0].starts_with("NOTOWNER"));
    assert_eq!(xrange(&mut con, DL).len(), 1);
}

#[test]
fn bad_dead_letter_keys_are_refused_before_anything_runs() {
    let server = Server::start();
    let mut con = server.conn();
    group(&mut con);
    add(&mut con, &[("cust", "c"), ("amount", "1")]);
    q::<String>(&mut con, &["SET", "{s}str", "x"]);
    let wrong = read(&mut con, "w", &["DEADLETTER", "{s}str", "AFTER", "1"], &[]);
    assert!(err(&wrong).starts_with("WRONGTYPE"));
    let same = read(&mut con, "w", &["DEADLETTER", "s", "AFTER", "1"], &[]);
    assert!(err(&same).contains("dead-letter key"), "{same:?}");
    assert_eq!(pel(&mut con, "s", "g"), vec![], "nothing was read");
    let missing_consumer = xprocess(
        &mut con,
        &["s", "g", "SADD", "{s}x", "1", "READ", "COUNT", "1"],
    );
    assert!(err(&missing_consumer).contains("READ needs CONSUMER"));
}

#[test]
fn block_is_woken_by_an_xadd_from_another_client() {
    let server = Server::start();
    let mut con = server.conn();
    group(&mut con);
    let mut waiter = server.conn();
    let started = Instant::now();
    let handle = thread::spawn(move || read(&mut waiter, "w", &[], &["BLOCK", "0"]));
    wait_blocked(&mut con, 1);
    // Other clients are served while it waits.
    assert_eq!(q::<String>(&mut con, &["PING"]), "PONG");
    let id = add(&mut con, &[("cust", "c"), ("amount", "4")]);
    let out = handle.join().unwrap();
    assert_eq!(pairs(&out), vec![(id, "1".to_string())]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(total(&mut con), 4);
    assert_eq!(blocked_clients(&mut con), 0);
}

#[test]
fn block_times_out_with_an_empty_array() {
    let server = Server::start();
    let mut con = server.conn();
    group(&mut con);
    let started = Instant::now();
    let out = read(&mut con, "w", &[], &["BLOCK", "200"]);
    assert_eq!(out, Value::Array(vec![]));
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
    // An XADD to another key does not wake it.
    let mut waiter = server.conn();
    let handle = thread::spawn(move || {
        let started = Instant::now();
        (
            read(&mut waiter, "w", &[], &["BLOCK", "300"]),
            started.elapsed(),
        )
    });
    thread::sleep(Duration::from_millis(50));
    xadd_id(&mut con, "other", "*", &[("a", "1")]);
    let (out, took) = handle.join().unwrap();
    assert_eq!(out, Value::Array(vec![]));
    assert!(took >= Duration::from_millis(290), "{took:?}");
}

#[test]
fn block_on_a_stream_deleted_or_a_group_destroyed_while_waiting() {
    let server = Server::start();
    let mut con = server.conn();
    for destroy in [&["DEL", "s"][..], &["XGROUP", "DESTROY", "s", "g"]] {
        group(&mut con);
        let mut waiter = server.conn();
        let handle = thread::spawn(move || read(&mut waiter, "w", &[], &["BLOCK", "0"]));
        wait_blocked(&mut con, 1);
        let _: Value = q(&mut con, destroy);
        let out = handle.join().unwrap();
        assert!(err(&out).starts_with("NOGROUP"), "{destroy:?}: {out:?}");
        q::<i64>(&mut con, &["DEL", "s"]);
    }
    assert_eq!(blocked_clients(&mut con), 0);
}

#[test]
fn a_disconnected_blocked_client_is_released() {
    let server = Server::start();
    let mut con = server.conn();
    group(&mut con);
    let mut sock = server.tcp();
    use std::io::Write;
    let cmd = resp_command(&[
        "XPROCESS", "s", "g", "CONSUMER", "w", "SADD", "{s}x", "$@id", "READ", "BLOCK", "0",
    ]);
    sock.write_all(&cmd).unwrap();
    wait_blocked(&mut con, 1);
    drop(sock);
    wait_blocked(&mut con, 0);
    // Its entries are not taken by a client that is gone.
    let id = add(&mut con, &[("a", "1")]);
    assert_eq!(deliveries(&mut con, &id), 0);
    assert_eq!(pairs(&read(&mut con, "w2", &[], &[]))[0].0, id);
}

#[test]
fn block_does_not_block_inside_multi_or_a_script() {
    let server = Server::start();
    let mut con = server.conn();
    group(&mut con);
    let started = Instant::now();
    let replies: Value = redis::pipe()
        .atomic()
        .cmd("XPROCESS")
        .arg(&[
            "s", "g", "CONSUMER", "w", "SADD", "{s}x", "$@id", "READ", "BLOCK", "0",
        ])
        .query(&mut con)
        .unwrap();
    assert_eq!(replies, Value::Array(vec![Value::Array(vec![])]));
    let script = "return redis.call('XPROCESS', 's', 'g', 'CONSUMER', 'w', 'SADD', '{s}x', '$@id', 'READ', 'BLOCK', '0')";
    let out: Value = q(
        &mut con,
        &["EVAL", script, "3", "s", "{s}x", "{s}:xprocess:g"],
    );
    assert_eq!(out, Value::Array(vec![]));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_replica_matches_its_primary_after_reads_claims_blocks_and_dead_letters() {
    let primary = Server::with(&[], &["--appendonly", "yes"]);
    let replica = Server::start();
    let mut p = primary.conn();
    let mut r = replica.conn();
    q::<String>(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &primary.port().to_string()],
    );
    group(&mut p);
    let dl = ["DEADLETTER", DL, "AFTER", "2"];
    for n in 0..30 {
        let amount = n.to_string();
        let mut fields = vec![("amount", amount.as_str())];
        if n % 7 != 3 {
            fields.push(("cust", "c"));
        }
        add(&mut p, &fields);
    }
    read(&mut p, "w1", &dl, &["COUNT", "10"]);
    read(&mut p, "w2", &dl, &["COUNT", "10", "CLAIM", "0"]);
    read(&mut p, "w1", &dl, &["COUNT", "50", "CLAIM", "0"]);
    // One served from BLOCK.
    let mut waiter = primary.conn();
    let handle = thread::spawn(move || read(&mut waiter, "w3", &dl, &["BLOCK", "0"]));
    wait_blocked(&mut p, 1);
    add(&mut p, &[("cust", "c"), ("amount", "100")]);
    assert_eq!(pairs(&handle.join().unwrap()).len(), 1);
    // 3, 10 and 17 failed twice; 24 once and stays pending.
    assert_eq!(
        xrange(&mut p, DL).len(),
        3,
        "poison entries were dead-lettered"
    );
    assert_eq!(pel(&mut p, "s", "g").len(), 1);
    wait_replica_synced(&mut p, &mut r);
    assert_eq!(digest(&mut p), digest(&mut r));
    assert_eq!(pel(&mut p, "s", "g"), pel(&mut r, "s", "g"));
    // And the AOF replays to the same data.
    let before = digest(&mut p);
    let mut primary = primary;
    primary.kill9();
    primary.restart();
    let mut p = primary.conn();
    assert_eq!(digest(&mut p), before);
}

#[test]
fn a_user_without_read_permission_on_the_stream_cannot_read_it() {
    let server = Server::start();
    let mut con = server.conn();
    group(&mut con);
    add(&mut con, &[("cust", "c"), ("amount", "1")]);
    let _: Value = q(
        &mut con,
        &[
            "ACL", "SETUSER", "writer", "on", ">pw", "+@all", "%W~s", "~{s}*",
        ],
    );
    let mut writer = server.conn_as("writer", "pw");
    let out = read(&mut writer, "w", &[], &[]);
    assert!(err(&out).starts_with("NOPERM"), "{out:?}");
    assert!(pel(&mut con, "s", "g").is_empty());
}

#[test]
fn a_dead_letter_raises_the_xadd_keyspace_event() {
    let server = Server::start();
    let mut con = server.conn();
    q::<String>(
        &mut con,
        &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
    );
    group(&mut con);
    let mut sub = server.conn();
    let mut events = sub.as_pubsub();
    events.subscribe(format!("__keyspace@0__:{DL}")).unwrap();
    events
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let poison = add(&mut con, &[("amount", "1")]);
    let out = read(&mut con, "w", &["DEADLETTER", DL, "AFTER", "1"], &[]);
    assert_eq!(pairs(&out), vec![(poison, "2".to_string())]);
    let event: String = events.get_message().unwrap().get_payload().unwrap();
    assert_eq!(event, "xadd");
}

#[test]
fn a_whole_call_error_of_the_dedupe_store_takes_nothing() {
    let server = Server::start();
    let mut con = server.conn();
    group(&mut con);
    // An index that belongs to another stream.
    let other = pending(&mut con, "{s}o", "g", "w", &[&[("a", "1")]]);
    let args = [
        "{s}o", "g", "DEDUPE", "{s}idx", "SADD", "{s}x", "$@id", "IDS", "1", &other[0],
    ];
    assert_eq!(slots(&xprocess(&mut con, &args)), ["1"]);
    add(&mut con, &[("cust", "c"), ("amount", "1")]);
    let out = read(&mut con, "w", &["DEDUPE", "{s}idx"], &[]);
    assert!(err(&out).contains("belongs to stream"), "{out:?}");
    assert!(pel(&mut con, "s", "g").is_empty(), "nothing was taken");
}

/// `REPLY COUNTS` as field -> value, from a RESP2 flat array or a RESP3 map.
fn counts(v: &Value) -> std::collections::BTreeMap<String, Value> {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Array(flat) => flat
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
        Value::Map(map) => map.clone(),
        other => panic!("expected REPLY COUNTS' map, got {other:?}"),
    };
    pairs
        .into_iter()
        .map(|(k, v)| (redis::from_redis_value(&k).unwrap(), v))
        .collect()
}

#[test]
fn reply_counts_gives_the_outcomes_and_the_failed_entries() {
    let server = Server::start();
    let mut con = server.conn();
    group(&mut con);
    add(&mut con, &[("cust", "c"), ("amount", "4")]);
    let bad = add(&mut con, &[("cust", "c"), ("amount", "x")]);
    // One entry recorded before the group delivers it: a duplicate.
    let dup = add(&mut con, &[("cust", "c"), ("amount", "5")]);
    let _: Value = call(
        &mut con,
        &[
            "XPROCESS", "s", "g", "HINCRBY", "{s}t", "$cust", "$amount", "IDS", "1", &dup,
        ],
    );
    for resp3 in [false, true] {
        let mut c = if resp3 {
            server.conn_resp3()
        } else {
            server.conn()
        };
        let out = read(&mut c, "w", &[], &["REPLY", "COUNTS", "CLAIM", "0"]);
        let m = counts(&out);
        let int = |name: &str| -> i64 { redis::from_redis_value(&m[name]).unwrap() };
        if !resp3 {
            assert_eq!(
                m.keys().collect::<Vec<_>>(),
                ["applied", "dead-lettered", "duplicates", "errors", "failed"]
            );
            assert_eq!(
                (int("applied"), int("duplicates"), int("failed")),
                (1, 1, 1),
                "{out:?}"
            );
        } else {
            // Only the failed entry is left: claimed again, failing again.
            assert_eq!(
                (int("applied"), int("duplicates"), int("failed")),
                (0, 0, 1),
                "{out:?}"
            );
        }
        assert_eq!(int("dead-lettered"), 0);
        let Value::Array(errors) = &m["errors"] else {
            panic!("{out:?}")
        };
        assert_eq!(errors.len(), 1);
        let Value::Array(pair) = &errors[0] else {
            panic!("{out:?}")
        };
        assert_eq!(redis::from_redis_value::<String>(&pair[0]).unwrap(), bad);
        assert_eq!(
            error_text(&pair[1]).as_deref(),
            Some("ERR value is not an integer or out of range")
        );
    }
    assert_eq!(total(&mut con), 9);
    // Nothing to do: an empty array, as without REPLY COUNTS.
    let _: i64 = q(&mut con, &["XACK", "s", "g", &bad]);
    let out = read(&mut con, "w", &[], &["REPLY", "COUNTS"]);
    assert_eq!(out, Value::Array(vec![]));
    // BLOCK waits, and replies the counts of what woke it.
    let mut waiter = server.conn();
    let handle =
        thread::spawn(move || read(&mut waiter, "w", &[], &["REPLY", "COUNTS", "BLOCK", "0"]));
    wait_blocked(&mut con, 1);
    add(&mut con, &[("cust", "c"), ("amount", "1")]);
    let woke = counts(&handle.join().unwrap());
    assert_eq!(woke["applied"], Value::Int(1));
    assert_eq!(woke["errors"], Value::Array(vec![]));
}
