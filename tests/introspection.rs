//! COMMAND DOCS / COMMAND INFO describe XPROCESS like a built-in command.

mod common;

use common::*;
use redis::Value;

/// Every string of a nested reply, depth first.
fn flatten(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().for_each(|i| flatten(i, out)),
        Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            flatten(k, out);
            flatten(v, out);
        }),
        Value::BulkString(b) => out.push(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => out.push(s.clone()),
        Value::Int(i) => out.push(i.to_string()),
        _ => {}
    }
}

fn strings(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    flatten(v, &mut out);
    out
}

/// `pair` appears as two adjacent strings.
fn has(words: &[String], pair: [&str; 2]) -> bool {
    words.windows(2).any(|w| w[0] == pair[0] && w[1] == pair[1])
}

#[test]
fn command_docs_give_summary_and_the_argument_tree() {
    let srv = Server::start();
    let mut con = srv.conn();
    let docs = strings(&call(&mut con, &["COMMAND", "DOCS", "xprocess"]));
    assert!(has(&docs, ["since", "0.1.0"]), "{docs:?}");
    assert!(has(&docs, ["group", "module"]));
    assert!(docs
        .iter()
        .any(|w| w.starts_with("Applies effects of stream entries exactly once")));
    for token in [
        "CONSUMER",
        "DEDUPE",
        "TTL",
        "HINCRBY",
        "HINCRBYFLOAT",
        "SADD",
        "XADD",
        "MAXLEN",
        "FIELDS",
        "ENTRY",
        "IDS",
        "READ",
        "COUNT",
        "CLAIM",
        "BLOCK",
        "DEADLETTER",
        "AFTER",
    ] {
        assert!(has(&docs, ["token", token]), "no token {token} in {docs:?}");
    }
    for name in [
        "dedupe-key",
        "milliseconds",
        "numids",
        "numpairs",
        "increment",
        "member",
        "dead-letter-key",
        "min-idle-time",
        "deliveries",
    ] {
        assert!(has(&docs, ["name", name]), "no argument {name}");
    }
    assert!(
        has(&docs, ["key_spec_index", "3"]),
        "effect keys point at their spec"
    );
}

#[test]
fn command_info_gives_arity_flags_and_key_specs() {
    let srv = Server::start();
    let mut con = srv.conn();
    let info = strings(&call(&mut con, &["COMMAND", "INFO", "xprocess"]));
    assert_eq!(info[..2], ["xprocess".to_string(), "-6".to_string()]);
    for flag in ["write", "denyoom", "movablekeys"] {
        assert!(info.contains(&flag.to_string()), "no flag {flag}: {info:?}");
    }
    assert!(has(&info, ["keyword", "DEDUPE"]), "{info:?}");
    assert!(has(&info, ["keyword", "DEADLETTER"]), "{info:?}");
    assert!(info
        .iter()
        .any(|w| w.contains("reported through the getkeys-api")));
    // The keyword spec is documentation: a member named DEDUPE is no key.
    let keys: Vec<String> = q(
        &mut con,
        &[
            "COMMAND", "GETKEYS", "XPROCESS", "s", "g", "SADD", "set", "DEDUPE", "IDS", "1", "1-1",
        ],
    );
    assert_eq!(keys, vec!["s", "set"]);
}
