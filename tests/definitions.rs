//! XPROCESS.DEFINE and XPROCESS.UNDEFINE: a group's options and effects
//! kept once, at its derived dedupe key, and calls that give only CONSUMER
//! and IDS or READ.

mod common;

use common::*;
use redis::{Connection, Value};

const STREAM: &str = "{o}orders";
const DERIVED: &str = "{o}orders:xprocess:g";

fn setup(con: &mut Connection) -> Vec<String> {
    q::<String>(con, &["XGROUP", "CREATE", STREAM, "g", "$", "MKSTREAM"]);
    (1..=3)
        .map(|n| {
            let amount = (n * 10).to_string();
            xadd_id(con, STREAM, "*", &[("cur", "eur"), ("amount", &amount)])
        })
        .collect()
}

/// How many entries a READ reply holds.
fn taken(v: &Value) -> usize {
    match v {
        Value::Array(pairs) => pairs.len(),
        other => panic!("expected READ's array, got {other:?}"),
    }
}

fn define(con: &mut Connection, args: &str) -> redis::Value {
    let mut argv = vec!["XPROCESS.DEFINE", STREAM, "g"];
    argv.extend(args.split(' '));
    call(con, &argv)
}

#[test]
fn a_call_without_effects_runs_the_definition() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = setup(&mut con);
    let ok = define(
        &mut con,
        "HINCRBY {o}totals $cur $amount RPUSH {o}log $amount",
    );
    assert_eq!(ok, Value::Okay);
    let read = xprocess(
        &mut con,
        &[STREAM, "g", "CONSUMER", "c", "READ", "COUNT", "2"],
    );
    assert_eq!(taken(&read), 2, "{read:?}");
    assert_eq!(hget(&mut con, "{o}totals", "eur").as_deref(), Some("30"));
    // IDS: the third applies, the first is a duplicate.
    let _: Value = call(
        &mut con,
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", STREAM, ">"],
    );
    let out = xprocess(&mut con, &[STREAM, "g", "IDS", "2", &ids[2], &ids[0]]);
    assert_eq!(slots(&out), ["1", "0"]);
    assert_eq!(hget(&mut con, "{o}totals", "eur").as_deref(), Some("60"));
    let log: Vec<String> = q(&mut con, &["LRANGE", "{o}log", "0", "-1"]);
    assert_eq!(log, ["10", "20", "30"]);
    // The definition lives at the derived key, in the index.
    let kind: String = q(&mut con, &["TYPE", DERIVED]);
    assert_eq!(kind, "xproc-idx");
    assert_eq!(recorded(&mut con, DERIVED), 3);
}

#[test]
fn one_group_one_definition() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = setup(&mut con);
    let with_effects = [STREAM, "g", "SADD", "{o}s", "$cur", "IDS", "1", &ids[0]];
    define(&mut con, "SADD {o}s $amount");
    let refused = xprocess(&mut con, &with_effects);
    assert_eq!(
        err(&refused),
        "ERR the group has a definition, call XPROCESS key group [CONSUMER consumer] IDS|READ without effects, or XPROCESS.UNDEFINE it first"
    );
    // DEDUPE elsewhere does not get around it.
    let mut other = with_effects.to_vec();
    other.splice(2..2, ["DEDUPE", "{o}elsewhere"]);
    assert!(err(&xprocess(&mut con, &other)).starts_with("ERR the group has a definition"));
    assert_eq!(q::<i64>(&mut con, &["XPROCESS.UNDEFINE", STREAM, "g"]), 1);
    assert_eq!(q::<i64>(&mut con, &["XPROCESS.UNDEFINE", STREAM, "g"]), 0);
    let call_it = xprocess(&mut con, &[STREAM, "g", "CONSUMER", "c", "READ"]);
    assert_eq!(
        err(&call_it),
        "ERR no effect given and the group has no definition, give effects or define them with XPROCESS.DEFINE"
    );
    // Other groups of the stream are not concerned.
    q::<String>(&mut con, &["XGROUP", "CREATE", STREAM, "h", "0"]);
    let h = xprocess(
        &mut con,
        &[STREAM, "h", "CONSUMER", "c", "SADD", "{o}h", "$cur", "READ"],
    );
    assert_eq!(taken(&h), 3);
}

#[test]
fn a_bad_definition_is_an_error_and_changes_nothing() {
    let server = Server::start();
    let mut con = server.conn();
    setup(&mut con);
    define(&mut con, "HINCRBY {o}totals $cur $amount");
    let before = digest(&mut con);
    let cases = [
        ("", "ERR wrong number of arguments for 'xprocess.define' command"),
        ("DEDUPE {o}d", "ERR syntax error, a definition needs at least one effect"),
        ("CONSUMER c SADD {o}s m", "ERR syntax error, CONSUMER, STORE and TTL are not part of a definition (give CONSUMER when calling or starting it)"),
        ("STORE SET SADD {o}s m", "ERR syntax error, CONSUMER, STORE and TTL are not part of a definition (give CONSUMER when calling or starting it)"),
        ("SADD {o}s m READ COUNT 5", "ERR syntax error, IDS and READ are not part of a definition (give them when calling it)"),
        ("SADD {o}s m IDS 1 1-1", "ERR syntax error, IDS and READ are not part of a definition (give them when calling it)"),
        ("DEL {o}orders", "ERR SET, DEL, PEXPIRE, SREM and FCALL may not target the stream, the dedupe key or the dead-letter key"),
        ("DEL {o}orders:xprocess:g", "ERR SET, DEL, PEXPIRE, SREM and FCALL may not target the stream, the dedupe key or the dead-letter key"),
        ("BOGUS {o}s m", "ERR syntax error"),
        ("SADD {o}s m FCALL f 0 0", "ERR syntax error, FCALL must be the call's only effect"),
    ];
    for (args, expected) in cases {
        let mut argv = vec!["XPROCESS.DEFINE", STREAM, "g"];
        if !args.is_empty() {
            argv.extend(args.split(' '));
        } else {
            argv.truncate(2);
        }
        let got = call(&mut con, &argv);
        assert_eq!(error_text(&got).as_deref(), Some(expected), "DEFINE {args}");
    }
    let dl = call(
        &mut con,
        &[
            "XPROCESS.DEFINE",
            STREAM,
            "g",
            "DEADLETTER",
            STREAM,
            "AFTER",
            "2",
            "SADD",
            "{o}s",
            "m",
        ],
    );
    assert!(err(&dl).starts_with("ERR"), "{dl:?}");
    assert_eq!(digest(&mut con), before, "nothing changed");
    // A stream whose dedupe key cannot be derived cannot carry one.
    let bad = call(&mut con, &["XPROCESS.DEFINE", "a}b", "g", "SADD", "s", "m"]);
    assert!(err(&bad).contains("cannot derive a dedupe key"), "{bad:?}");
    // The derived key holding a Set.
    q::<i64>(&mut con, &["SADD", "{x}s:xprocess:g", "1-1"]);
    let set = call(
        &mut con,
        &["XPROCESS.DEFINE", "{x}s", "g", "SADD", "{x}t", "m"],
    );
    assert!(
        err(&set).starts_with("WRONGTYPE the group's dedupe key"),
        "{set:?}"
    );
}

#[test]
fn redefining_replaces_and_info_shows_it() {
    let server = Server::start();
    let mut con = server.conn();
    setup(&mut con);
    define(&mut con, "KEY $amount SADD {o}s $amount");
    define(&mut con, "DEADLETTER {o}dl AFTER 3 RPUSH {o}l $amount");
    let info = dedupe_info(&mut con, DERIVED);
    let text = |v: &Value| redis::from_redis_value::<Vec<String>>(v).unwrap();
    assert_eq!(
        text(&info["definition"]),
        [
            "DEADLETTER",
            "{o}dl",
            "AFTER",
            "3",
            "RPUSH",
            "{o}l",
            "$amount"
        ]
    );
    assert_eq!(info["group"], Value::BulkString(b"g".to_vec()));
    assert_eq!(info["processor"], Value::Nil);
    assert_eq!(info["state"], Value::Nil);
    assert_eq!(
        info["lag"],
        Value::Int(3),
        "three entries not yet delivered"
    );
    xprocess(&mut con, &[STREAM, "g", "CONSUMER", "c", "READ"]);
    let list: Vec<String> = q(&mut con, &["LRANGE", "{o}l", "0", "-1"]);
    assert_eq!(list, ["10", "20", "30"]);
    assert!(!exists(&mut con, "{o}s"), "the first definition is gone");
    assert_eq!(dedupe_info(&mut con, DERIVED)["lag"], Value::Int(0));
}

#[test]
fn calls_need_permission_for_the_keys_the_definition_names() {
    let server = Server::start();
    let mut con = server.conn();
    setup(&mut con);
    define(&mut con, "HINCRBY {o}secret $cur $amount");
    let _: Value = call(
        &mut con,
        &["ACL", "SETUSER", "w", "on", ">pw", "+@all", "~{o}orders*"],
    );
    let mut w = server.conn_as("w", "pw");
    let refused = xprocess(&mut w, &[STREAM, "g", "CONSUMER", "c", "READ"]);
    assert_eq!(
        err(&refused),
        "NOPERM this user has no permissions to access one of the keys used as arguments"
    );
    assert!(!exists(&mut con, "{o}secret"));
    let pel = pel(&mut con, STREAM, "g");
    assert!(pel.is_empty(), "nothing read: {pel:?}");
    // Defining needs the keys too (Redis checks the reported ones).
    let define = call(
        &mut w,
        &["XPROCESS.DEFINE", STREAM, "g", "SADD", "{o}other", "m"],
    );
    assert!(err(&define).starts_with("NOPERM"), "{define:?}");
}

#[test]
fn definitions_persist_replicate_and_survive_rewrites() {
    let (mut primary, replica) = primary_with_aof_and_replica();
    let mut con = primary.conn();
    setup(&mut con);
    define(
        &mut con,
        "KEY $amount WINDOW 60000 ZINCRBY {o}z $amount $cur",
    );
    xprocess(
        &mut con,
        &[STREAM, "g", "CONSUMER", "c", "READ", "COUNT", "1"],
    );
    let mut rcon = replica.conn();
    wait_replica_synced(&mut con, &mut rcon);
    let keys = [DERIVED, "{o}z"];
    assert_eq!(
        digest_value(&mut rcon, &keys),
        digest_value(&mut con, &keys)
    );
    rewrite_aof(&mut con);
    xprocess(
        &mut con,
        &[STREAM, "g", "CONSUMER", "c", "READ", "COUNT", "1"],
    );
    let before = digest_value(&mut con, &keys);
    primary.kill9();
    primary.restart();
    let mut con = primary.conn();
    assert_eq!(
        digest_value(&mut con, &keys),
        before,
        "AOF (rewritten base + tail)"
    );
    let out = xprocess(&mut con, &[STREAM, "g", "CONSUMER", "c", "READ"]);
    assert_eq!(taken(&out), 1, "the definition came back: {out:?}");
    // RDB and DUMP/RESTORE carry it too.
    let _: Value = call(&mut con, &["DEBUG", "RELOAD"]);
    let dump: Vec<u8> = redis::cmd("DUMP").arg(DERIVED).query(&mut con).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("{o}copy")
        .arg(0)
        .arg(dump)
        .query(&mut con)
        .unwrap();
    let info = dedupe_info(&mut con, "{o}copy");
    assert_eq!(info["group"], Value::BulkString(b"g".to_vec()));
    assert_eq!(
        digest_value(&mut con, &[DERIVED])[0],
        digest_value(&mut con, &["{o}copy"])[0]
    );
    let mut corrupt: Vec<u8> = redis::cmd("DUMP").arg(DERIVED).query(&mut con).unwrap();
    let at = corrupt.len() / 2;
    corrupt[at] ^= 0x55;
    let restored: redis::RedisResult<()> = redis::cmd("RESTORE")
        .arg("{o}bad")
        .arg(0)
        .arg(corrupt)
        .query(&mut con);
    assert!(restored.is_err(), "a corrupt payload is refused");
    assert_eq!(q::<String>(&mut con, &["PING"]), "PONG");
}
