//! AOF persistence: after `kill -9` and a reload, the dataset is exactly what
//! it was, and the AOF holds each entry's writes as one MULTI/EXEC of plain
//! commands, never XPROCESS itself.

mod common;

use common::*;
use std::collections::HashSet;

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
fn aof_reload_after_kill9_restores_everything() {
    let mut srv = Server::with(&[], &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = srv.conn();
    let keys = mixed_workload(&mut con);
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

    check_aof_transactions(&commands, &keys);
}

/// No XPROCESS in the AOF; every write to an effect target or dedupe set is
/// inside MULTI/EXEC, and each such transaction also records and acks.
fn check_aof_transactions(commands: &[Vec<String>], workload_keys: &[&str]) {
    // Every key the workload wrote, except the source stream itself.
    let targets: HashSet<&str> = workload_keys
        .iter()
        .copied()
        .filter(|k| *k != "orders")
        .collect();
    let dedupe: HashSet<&str> = ["done", "{orders}:xprocess:g"].into();
    let mut in_multi = false;
    let mut block: Vec<&Vec<String>> = Vec::new();
    let mut transactions = 0;
    for argv in commands {
        let name = argv[0].to_ascii_lowercase();
        assert_ne!(name, "xprocess", "XPROCESS written to the AOF: {argv:?}");
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
                    transactions += 1;
                    let sadd_dedupe = block.iter().any(|a| {
                        a[0].eq_ignore_ascii_case("sadd") && dedupe.contains(a[1].as_str())
                    });
                    assert!(sadd_dedupe, "transaction without dedupe record: {block:?}");
                    // Group g's entries were pending, so their XACK is a write
                    // (g2 never delivered them: its XACK changes nothing).
                    let xack = block
                        .iter()
                        .any(|a| a[0].eq_ignore_ascii_case("xack") && a[1] == "orders");
                    let in_g = block
                        .iter()
                        .any(|a| a.contains(&"{orders}:xprocess:g".into()));
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
    // Applied calls in mixed_workload: two entries, then one, then two.
    assert!(
        transactions >= 3,
        "only {transactions} transactions in the AOF"
    );
}
