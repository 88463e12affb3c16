//! AOF persistence: after `kill -9` and a reload, the dataset is exactly what
//! it was, and the AOF holds each entry's writes as one MULTI/EXEC of plain
//! commands, never XPROCESS itself. The dedupe record in that block is an
//! `SADD` for a Set and an `XPROCESS.PATCH` for an index; the workload runs
//! once with each store under the derived key (the other one under its
//! explicit DEDUPE key).

mod common;

use common::*;
use std::collections::{HashMap, HashSet};

/// Split a RESP stream of commands (an AOF) into argv vectors.
fn parse_commands(mut buf: &[u8]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let n = resp_len(buf).expect("truncated command in the AOF");
        let mut argv = Vec::new();
        let mut rest = &buf[..n];
        // *<argc>\r\n then $<len>\r\n<bytes>\r\n ...
        let line = rest.iter().position(|&b| b == b'\n').unwrap();
        assert_eq!(rest[0], b'*', "AOF entry is not an array");
        rest = &rest[line + 1..];
        while !rest.is_empty() {
            let line = rest.iter().position(|&b| b == b'\n').unwrap();
            let len: usize = std::str::from_utf8(&rest[1..line - 1])
                .unwrap()
                .parse()
                .unwrap();
            let start = line + 1;
            argv.push(String::from_utf8_lossy(&rest[start..start + len]).into_owned());
            rest = &rest[start + len + 2..];
        }
        out.push(argv);
        buf = &buf[n..];
    }
    out
}

fn read_incr_aof(dir: &std::path::Path) -> Vec<u8> {
    let aof_dir = dir.join("appendonlydir");
    let mut files: Vec<_> = std::fs::read_dir(&aof_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", aof_dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no incr AOF in {}", aof_dir.display());
    files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect()
}

#[test]
fn aof_reload_after_kill9_restores_everything_index() {
    reload_after_kill9(Store::Index);
}

#[test]
fn aof_reload_after_kill9_restores_everything_set() {
    reload_after_kill9(Store::Set);
}

/// [`mixed_workload_with`] `store`, `kill -9`, reload the AOF.
fn reload_after_kill9(store: Store) {
    let mut srv = Server::with(&[], &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = srv.conn();
    let keys = mixed_workload_with(&mut con, store);
    let want_digest = digest(&mut con);
    let want = snapshot(&mut con, &keys);
    let audit = xrange(&mut con, "audit");
    drop(con);

    srv.kill9();
    let commands = parse_commands(&read_incr_aof(srv.dir()));
    srv.restart();

    let mut con = srv.conn();
    assert_eq!(
        digest(&mut con),
        want_digest,
        "DEBUG DIGEST differs after reload"
    );
    assert_eq!(snapshot(&mut con, &keys), want);
    assert_eq!(
        xrange(&mut con, "audit"),
        audit,
        "XADD IDs changed on reload"
    );

    for key in [WORKLOAD_DEDUPE, WORKLOAD_DEDUPE2] {
        let kind: String = q(&mut con, &["TYPE", key]);
        assert_eq!(kind, store_of(store, key).type_name(), "{key} after reload");
    }
    check_aof_transactions(&commands, &keys, store);
}

/// The store the workload run with `store` keeps at dedupe key `key`.
fn store_of(store: Store, key: &str) -> Store {
    match (key == WORKLOAD_DEDUPE, store) {
        (true, s) => s,
        (false, Store::Index) => Store::Set,
        (false, Store::Set) => Store::Index,
    }
}

/// The dedupe key a command records into, and how: `SADD key ...` for a
/// Set, `XPROCESS.PATCH key stream ...` for an index.
fn dedupe_record<'a>(
    argv: &'a [String],
    dedupe: &[&str],
) -> Option<(&'a str, Store, &'a [String])> {
    let key = argv.get(1).filter(|k| dedupe.contains(&k.as_str()))?;
    let kind = match argv[0].to_ascii_lowercase().as_str() {
        "sadd" => Store::Set,
        "xprocess.patch" => Store::Index,
        _ => return None,
    };
    Some((key, kind, argv))
}

/// No XPROCESS in the AOF; every write to an effect target or dedupe store
/// is inside MULTI/EXEC, and each such transaction also records (in the
/// right form for the store at that key) and acks. A Set given a TTL gets
/// its PEXPIREAT in the same transaction; an index never has an expiry.
fn check_aof_transactions(commands: &[Vec<String>], workload_keys: &[&str], store: Store) {
    // Every key the workload wrote, except the source stream itself.
    let targets: HashSet<&str> = workload_keys
        .iter()
        .copied()
        .filter(|k| *k != "orders")
        .collect();
    let dedupe = [WORKLOAD_DEDUPE, WORKLOAD_DEDUPE2];
    let mut records: HashMap<&str, usize> = HashMap::new();
    let mut in_multi = false;
    let mut block: Vec<&Vec<String>> = Vec::new();
    for argv in commands {
        let name = argv[0].to_ascii_lowercase();
        assert_ne!(name, "xprocess", "XPROCESS written to the AOF: {argv:?}");
        if name.contains("expire") && argv.len() > 1 {
            let key = argv[1].as_str();
            assert!(
                !dedupe.contains(&key) || store_of(store, key) == Store::Set,
                "an expiry on the dedupe index: {argv:?}"
            );
        }
        match name.as_str() {
            "multi" => {
                assert!(!in_multi, "nested MULTI");
                in_multi = true;
                block.clear();
            }
            "exec" => {
                assert!(in_multi, "EXEC without MULTI");
                in_multi = false;
                let touches = |set: &HashSet<&str>| {
                    block
                        .iter()
                        .any(|a| a.len() > 1 && set.contains(a[1].as_str()))
                };
                if touches(&targets) {
                    let recorded: Vec<_> = block
                        .iter()
                        .filter_map(|a| dedupe_record(a, &dedupe))
                        .collect();
                    assert_eq!(
                        recorded.len(),
                        1,
                        "transaction without exactly one dedupe record: {block:?}"
                    );
                    let (key, kind, record) = recorded[0];
                    assert_eq!(
                        kind,
                        store_of(store, key),
                        "{key} recorded as a {kind:?}: {block:?}"
                    );
                    if kind == Store::Index {
                        assert_eq!(record[2], "orders", "PATCH of another stream: {record:?}");
                    }
                    *records.entry(key).or_default() += 1;
                    // The TTL of the Set under the derived key.
                    if key == WORKLOAD_DEDUPE && kind == Store::Set {
                        let expiry = block
                            .iter()
                            .any(|a| a[0].eq_ignore_ascii_case("pexpireat") && a[1] == key);
                        assert!(expiry, "Set record without its PEXPIREAT: {block:?}");
                    }
                    // Group g's entries were pending, so their XACK is a write
                    // (g2 never delivered them: its XACK changes nothing).
                    let xack = block
                        .iter()
                        .any(|a| a[0].eq_ignore_ascii_case("xack") && a[1] == "orders");
                    let in_g = block
                        .iter()
                        .any(|a| a.iter().any(|arg| arg == WORKLOAD_DEDUPE));
                    assert!(xack || !in_g, "transaction without XACK: {block:?}");
                }
            }
            _ if in_multi => block.push(argv),
            _ => assert!(
                argv.len() < 2 || !targets.contains(argv[1].as_str()),
                "effect or dedupe write outside MULTI/EXEC: {argv:?}"
            ),
        }
    }
    assert!(!in_multi, "AOF ends inside a transaction");
    // The calls of mixed_workload that applied something: in group g two
    // entries, then the claimed one; in g2 two entries.
    let want: HashMap<&str, usize> = [(WORKLOAD_DEDUPE, 2), (WORKLOAD_DEDUPE2, 1)].into();
    assert_eq!(records, want, "transactions recording into each dedupe key");
}

/// What the harness cuts from an AOF torn by kill -9 before a restart:
/// from the MULTI of a transaction the file ends inside, and nothing from
/// a file that ends whole or with a torn command outside a transaction.
#[test]
fn a_torn_transaction_is_cut_before_its_multi() {
    let cmd = |args: &[&str]| String::from_utf8(resp_command(args)).unwrap();
    let whole = [
        cmd(&["SET", "a", "1"]),
        cmd(&["MULTI"]),
        cmd(&["HINCRBY", "h", "f", "1"]),
        cmd(&["EXEC"]),
    ]
    .concat();
    assert_eq!(torn_transaction_start(whole.as_bytes()), None);
    let multi_at = whole.len();
    let multi = cmd(&["MULTI"]);
    let torn = format!("{whole}{multi}{}", cmd(&["XACK", "s", "g", "1-0"]));
    // A torn MULTI itself: Redis cuts before it, as before any command.
    for cut in multi_at + 1..multi_at + multi.len() {
        assert_eq!(
            torn_transaction_start(&torn.as_bytes()[..cut]),
            None,
            "cut {cut}"
        );
    }
    for cut in multi_at + multi.len()..torn.len() {
        assert_eq!(
            torn_transaction_start(&torn.as_bytes()[..cut]),
            Some(multi_at),
            "cut {cut}"
        );
    }
    let outside = format!("{whole}{}", cmd(&["SET", "b", "2"]));
    for cut in multi_at..outside.len() {
        assert_eq!(
            torn_transaction_start(&outside.as_bytes()[..cut]),
            None,
            "cut {cut}"
        );
    }
}
