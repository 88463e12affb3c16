//! A call that reads many fields of one small hash copies the hash once
//! (src/server/hash_reads.rs) instead of walking its listpack per field. The copy
//! must never be seen stale: HINCRBYFLOAT writes behind it, fields missing
//! from it, and the results must equal what one HINCRBY per entry gives.

mod common;

use common::*;
use redis::Connection;

fn copies(con: &mut Connection) -> u64 {
    info_field(con, "xprocess", "xprocess_hash_copies")
        .expect("INFO xprocess has hash_copies")
        .parse()
        .unwrap()
}

/// A hash `h` with `n` fields f0.. holding 100 + i.
fn seed_hash(con: &mut Connection, n: usize) {
    for i in 0..n {
        let _: () = q(
            con,
            &["HSET", "h", &format!("f{i}"), &(100 + i).to_string()],
        );
    }
}

/// Process entries with fields `f` and `g` in one call, with `effects`.
fn run(con: &mut Connection, entries: &[(&str, &str)], effects: &[&str]) -> Vec<String> {
    let fields: Vec<Vec<(&str, &str)>> = entries
        .iter()
        .map(|&(f, g)| vec![("f", f), ("g", g)])
        .collect();
    let refs: Vec<&[(&str, &str)]> = fields.iter().map(Vec::as_slice).collect();
    let ids = pending(con, "s", "g", "c", &refs);
    let count = ids.len().to_string();
    let mut args = vec!["s", "g"];
    args.extend_from_slice(effects);
    args.extend(["IDS", &count]);
    args.extend(ids.iter().map(String::as_str));
    slots(&xprocess(con, &args))
}

#[test]
fn many_fields_of_a_small_hash_are_read_in_one_copy() {
    let srv = Server::start();
    let mut con = srv.conn();
    seed_hash(&mut con, 100);
    let before = copies(&mut con);
    // 90 distinct existing fields, one missing, and repeats.
    let mut entries: Vec<(String, &str)> = (0..90).map(|i| (format!("f{i}"), "-")).collect();
    entries.push(("new".into(), "-"));
    entries.push(("f3".into(), "-"));
    let refs: Vec<(&str, &str)> = entries.iter().map(|(f, g)| (f.as_str(), *g)).collect();
    let out = run(&mut con, &refs, &["HINCRBY", "h", "$f", "1"]);
    assert!(out.iter().all(|o| o == "1"), "{out:?}");
    assert_eq!(copies(&mut con) - before, 1, "one copy for the whole call");
    assert_eq!(hget(&mut con, "h", "f0").as_deref(), Some("101"));
    assert_eq!(hget(&mut con, "h", "f3").as_deref(), Some("105"));
    assert_eq!(hget(&mut con, "h", "f89").as_deref(), Some("190"));
    assert_eq!(hget(&mut con, "h", "f90").as_deref(), Some("190"));
    assert_eq!(hget(&mut con, "h", "new").as_deref(), Some("1"));
}

/// A large hash, or a call too short for a copy to pay, reads field by field.
#[test]
fn large_hashes_and_short_calls_are_not_copied() {
    let srv = Server::start();
    let mut con = srv.conn();
    for (fields, entries) in [(200, 100), (100, 40)] {
        let _: () = q(&mut con, &["DEL", "h"]);
        seed_hash(&mut con, fields);
        let before = copies(&mut con);
        let names: Vec<String> = (0..entries).map(|i| format!("f{i}")).collect();
        let refs: Vec<(&str, &str)> = names.iter().map(|f| (f.as_str(), "-")).collect();
        let out = run(&mut con, &refs, &["HINCRBY", "h", "$f", "1"]);
        assert!(out.iter().all(|o| o == "1"), "{out:?}");
        assert_eq!(
            copies(&mut con),
            before,
            "{fields} fields, {entries} entries"
        );
        let last = format!("f{}", entries - 1);
        let want = (100 + entries).to_string();
        assert_eq!(hget(&mut con, "h", &last), Some(want));
    }
}

#[test]
fn a_float_write_after_the_copy_is_seen_by_later_entries() {
    let srv = Server::start();
    let mut con = srv.conn();
    seed_hash(&mut con, 64);
    let before = copies(&mut con);
    // Entries 0..59 read sixty fields (the copy comes on the eighth lookup);
    // entry 60 turns f0 into a float behind the copy; entry 61 must see the
    // float and refuse, entry 62 must add to the float.
    let mut entries: Vec<(String, &str)> = (0..60).map(|i| (format!("f{i}"), "none")).collect();
    entries.push(("f60".into(), "f0"));
    entries.push(("f0".into(), "none"));
    entries.push(("f61".into(), "f0"));
    let refs: Vec<(&str, &str)> = entries.iter().map(|(f, g)| (f.as_str(), *g)).collect();
    let out = run(
        &mut con,
        &refs,
        &["HINCRBY", "h", "$f", "1", "HINCRBYFLOAT", "h", "$g", "0.5"],
    );
    let mut want = vec!["1"; 61];
    want.push("ERR hash value is not an integer");
    want.push("1");
    assert_eq!(out, want);
    assert_eq!(copies(&mut con) - before, 1);
    // f0: 100 + 1 (entry 0), + 0.5 (entry 60), + 0.5 (entry 62).
    assert_eq!(hget(&mut con, "h", "f0").as_deref(), Some("102"));
    assert_eq!(hget(&mut con, "h", "none").as_deref(), Some("30"));
    assert_eq!(hget(&mut con, "h", "f61").as_deref(), Some("162"));
}

/// A field past its TTL (HPEXPIRE, Redis 7.4+ and Valkey 9) but not yet
/// reclaimed must not reach the copy: HINCRBY on it starts from 0, as
/// HINCRBY itself does. Servers without field TTLs skip this.
#[test]
fn an_expired_field_is_not_copied() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = q(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    seed_hash(&mut con, 64);
    let expire = call(&mut con, &["HPEXPIRE", "h", "1", "FIELDS", "1", "f63"]);
    if error_text(&expire).is_some() {
        return; // no hash field expiry on this server
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let before = copies(&mut con);
    let entries: Vec<String> = (0..64).map(|i| format!("f{i}")).collect();
    let refs: Vec<(&str, &str)> = entries.iter().map(|f| (f.as_str(), "-")).collect();
    let out = run(&mut con, &refs, &["HINCRBY", "h", "$f", "1"]);
    assert!(out.iter().all(|o| o == "1"), "{out:?}");
    assert_eq!(copies(&mut con) - before, 1, "the call copied the hash");
    assert_eq!(hget(&mut con, "h", "f63").as_deref(), Some("1"));
    assert_eq!(hget(&mut con, "h", "f62").as_deref(), Some("163"));
}
