//! `WHEN condition` before an effect: the effect applies only to the entries
//! for which every condition before it holds; conditions are decided
//! against the data as it is before the entry's first effect.

mod common;

use common::*;
use redis::Connection;

const DEDUPE: &str = "{o}dd";

fn entries(con: &mut Connection, rows: &[&[(&str, &str)]]) -> Vec<String> {
    pending(con, "{o}orders", "g", "c1", rows)
}

/// `XPROCESS {o}orders g DEDUPE {o}dd <words...> IDS n ids...`, per-ID slots.
fn run(con: &mut Connection, words: &str, ids: &[String]) -> Vec<String> {
    let n = ids.len().to_string();
    let mut args = vec!["{o}orders", "g", "DEDUPE", DEDUPE];
    args.extend(words.split(' '));
    args.extend_from_slice(&["IDS", &n]);
    args.extend(ids.iter().map(String::as_str));
    slots(&xprocess(con, &args))
}

const BALANCES: &str = "WHEN $type = charge HINCRBY {o}bal $c $amount \
                        WHEN $type = refund HINCRBY {o}bal $c -$amount \
                        WHEN $amount >= 100 WHEN $type != refund SADD {o}big $c";

#[test]
fn charges_and_refunds_choose_their_effect() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = entries(
        &mut con,
        &[
            &[("type", "charge"), ("c", "alice"), ("amount", "150")],
            &[("type", "refund"), ("c", "alice"), ("amount", "30")],
            &[("type", "charge"), ("c", "bob"), ("amount", "20")],
        ],
    );
    assert_eq!(run(&mut con, BALANCES, &ids), ["1", "1", "1"]);
    assert_eq!(hget(&mut con, "{o}bal", "alice").as_deref(), Some("120"));
    assert_eq!(hget(&mut con, "{o}bal", "bob").as_deref(), Some("20"));
    let big: Vec<String> = q(&mut con, &["SMEMBERS", "{o}big"]);
    assert_eq!(big, ["alice"]);
}

#[test]
fn an_entry_no_effect_applies_to_is_recorded_and_acked() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = entries(
        &mut con,
        &[&[("type", "ping"), ("c", "x"), ("amount", "1")]],
    );
    let before = info_field(&mut con, "xprocess", "xprocess_no_effect").unwrap();
    assert_eq!(run(&mut con, BALANCES, &ids), ["1"]);
    assert!(!exists(&mut con, "{o}bal"));
    assert!(pel(&mut con, "{o}orders", "g").is_empty(), "acked");
    assert!(processed(&mut con, DEDUPE, &ids[0]), "recorded");
    let after = info_field(&mut con, "xprocess", "xprocess_no_effect").unwrap();
    assert_eq!(
        after.parse::<u64>().unwrap(),
        before.parse::<u64>().unwrap() + 1
    );
    assert_eq!(run(&mut con, BALANCES, &ids), ["0"], "a duplicate now");
}

#[test]
fn a_missing_field_is_no_error_a_non_number_is() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = entries(
        &mut con,
        &[&[("c", "a")], &[("c", "b"), ("amount", "lots")]],
    );
    let words = "SADD {o}all $c WHEN $amount > 5 SADD {o}big $c \
                 WHEN $amount MISSING SADD {o}none $c WHEN $amount != 7 SADD {o}not7 $c";
    let r = run(&mut con, words, &ids);
    assert_eq!(r, ["1", "ERR value is not a number"]);
    let members = |con: &mut Connection, k: &str| q::<Vec<String>>(con, &["SMEMBERS", k]);
    assert_eq!(members(&mut con, "{o}all"), ["a"], "b changed nothing");
    assert_eq!(members(&mut con, "{o}none"), ["a"]);
    assert_eq!(members(&mut con, "{o}not7"), ["a"]);
    assert!(!exists(&mut con, "{o}big"));
}

#[test]
fn key_conditions_see_the_data_before_the_entry() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = entries(
        &mut con,
        &[&[("c", "alice")], &[("c", "alice")], &[("c", "bob")]],
    );
    // Both effects of a new customer apply: the first one creating the key
    // does not change what the second one's condition sees.
    let words = "WHEN KEY {o}seen:${c} MISSING SADD {o}seen:${c} yes \
                 WHEN KEY {o}seen:${c} MISSING SADD {o}firsts $c \
                 WHEN KEY {o}seen:${c} EXISTS SADD {o}again $c";
    assert_eq!(run(&mut con, words, &ids), ["1", "1", "1"]);
    let members = |con: &mut Connection, k: &str| {
        let mut m: Vec<String> = q(con, &["SMEMBERS", k]);
        m.sort();
        m
    };
    assert_eq!(members(&mut con, "{o}firsts"), ["alice", "bob"]);
    assert_eq!(members(&mut con, "{o}again"), ["alice"]);
}

#[test]
fn conditions_are_part_of_a_business_key_fingerprint() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = entries(
        &mut con,
        &[
            &[
                ("order", "1"),
                ("type", "charge"),
                ("c", "a"),
                ("amount", "5"),
            ],
            &[
                ("order", "1"),
                ("type", "refund"),
                ("c", "a"),
                ("amount", "5"),
            ],
        ],
    );
    let words = format!("KEY $order {BALANCES}");
    let r = run(&mut con, &words, &ids);
    assert_eq!(r[0], "1");
    assert!(r[1].starts_with("CONFLICT entry "), "{}", r[1]);
    assert_eq!(hget(&mut con, "{o}bal", "a").as_deref(), Some("5"));
}

#[test]
fn malformed_conditions_are_whole_call_errors() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = entries(&mut con, &[&[("c", "a")]]);
    let before = digest(&mut con);
    let bad = [
        ("SADD {o}s $c WHEN $c = a", "ERR syntax error, WHEN must be followed by an effect"),
        ("WHEN $c ~ a SADD {o}s $c", "ERR syntax error, WHEN needs $field (= | != | < | <= | > | >=) value, $field (EXISTS | MISSING) or KEY key (EXISTS | MISSING)"),
        ("WHEN $c > many SADD {o}s $c", "ERR WHEN compares with <, <=, > or >= against a number"),
        ("WHEN KEY k THERE SADD {o}s $c", "ERR syntax error, WHEN needs $field (= | != | < | <= | > | >=) value, $field (EXISTS | MISSING) or KEY key (EXISTS | MISSING)"),
    ];
    for (words, want) in bad {
        let mut args = vec!["{o}orders", "g", "DEDUPE", DEDUPE];
        args.extend(words.split(' '));
        args.extend_from_slice(&["IDS", "1", &ids[0]]);
        assert_eq!(err(&xprocess(&mut con, &args)), want, "{words}");
    }
    assert_eq!(digest(&mut con), before);
}
