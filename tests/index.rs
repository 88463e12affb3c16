//! The dedupe index (TYPE `xproc-idx`) as a first-class Redis type: its
//! memory bounds (MEMORY USAGE, a size, not a time), persistence (RDB, DEBUG
//! RELOAD, AOF rewrite, kill -9 and AOF replay), DUMP/RESTORE/MIGRATE/COPY,
//! corrupt payloads, the internal XPROCESS.PATCH, and its exact semantics.

mod common;

use common::rng::Rng;
use common::*;
use redis::{Connection, ConnectionLike, Value};

const DEDUPE: &str = "{s}:xprocess:g";

/// `n` entries `1-0 ..= n-0` in stream `s` with group `g` at 0, an
/// `amount` of 1 each, and `bad` entries with no amount (a permanent
/// per-entry error for `HINCRBY t total $amount`).
fn fill(con: &mut Connection, n: u64, bad: impl Fn(u64) -> bool) {
    q::<()>(con, &["XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"]);
    let mut pipe = redis::pipe();
    let mut queued = 0;
    for i in 1..=n {
        let id = format!("{i}-0");
        if bad(i) {
            pipe.cmd("XADD")
                .arg("s")
                .arg(id)
                .arg("other")
                .arg("x")
                .ignore();
        } else {
            pipe.cmd("XADD")
                .arg("s")
                .arg(id)
                .arg("amount")
                .arg("1")
                .ignore();
        }
        queued += 1;
        if queued % 10_000 == 0 {
            pipe.query::<()>(con).unwrap();
            pipe = redis::pipe();
        }
    }
    pipe.query::<()>(con).unwrap();
}

/// XPROCESS over `ids` in calls of `batch` IDs, pipelined. Returns the
/// number of replies `1`.
fn process(con: &mut Connection, store: &str, ids: &[u64], batch: usize) -> usize {
    let mut applied = 0;
    for calls in ids.chunks(batch * 100) {
        let mut pipe = redis::pipe();
        for chunk in calls.chunks(batch) {
            let c = pipe
                .cmd("XPROCESS")
                .arg("s")
                .arg("g")
                .arg("STORE")
                .arg(store)
                .arg(&["HINCRBY", "t", "total", "$amount", "IDS"][..])
                .arg(chunk.len());
            for id in chunk {
                c.arg(format!("{id}-0"));
            }
        }
        // Raw replies: per-entry errors stay inside their arrays.
        let n = calls.len().div_ceil(batch);
        let replies = con
            .req_packed_commands(&pipe.get_packed_pipeline(), 0, n)
            .unwrap();
        applied += replies.iter().flat_map(slots).filter(|s| s == "1").count();
    }
    applied
}

fn memory(con: &mut Connection, key: &str) -> i64 {
    q(con, &["MEMORY", "USAGE", key])
}

/// XPROCESS.INFO as (field, value) pairs, values as text.
fn info(con: &mut Connection, key: &str) -> Vec<(String, String)> {
    let Value::Array(items) = call(con, &["XPROCESS.INFO", key]) else {
        panic!("XPROCESS.INFO {key}: not an array");
    };
    items
        .chunks(2)
        .map(|kv| {
            let text = |v: &Value| match v {
                Value::SimpleString(s) => s.clone(),
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::Int(n) => n.to_string(),
                Value::Nil => "nil".into(),
                other => format!("{other:?}"),
            };
            (text(&kv[0]), text(&kv[1]))
        })
        .collect()
}

fn field(con: &mut Connection, key: &str, name: &str) -> String {
    info(con, key)
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("XPROCESS.INFO has no {name}"))
        .1
}

fn exists(con: &mut Connection, key: &str, ids: &[u64]) -> Vec<i64> {
    let texts: Vec<String> = ids.iter().map(|i| format!("{i}-0")).collect();
    let mut args = vec!["XPROCESS.EXISTS", key];
    args.extend(texts.iter().map(String::as_str));
    q(con, &args)
}

#[test]
fn in_order_processing_keeps_the_index_under_1_kib() {
    let srv = Server::start();
    let mut con = srv.conn();
    const N: u64 = 200_000;
    fill(&mut con, N, |_| false);
    let ids: Vec<u64> = (1..=N).collect();
    assert_eq!(process(&mut con, "INDEX", &ids[..10_000], 1), 10_000);
    assert_eq!(process(&mut con, "INDEX", &ids[10_000..], 100), 190_000);
    assert_eq!(q::<String>(&mut con, &["TYPE", DEDUPE]), "xproc-idx");
    let used = memory(&mut con, DEDUPE);
    assert!(used <= 1024, "index of {N} in-order entries: {used} bytes");
    assert_eq!(field(&mut con, DEDUPE, "ranges"), "1");
    assert_eq!(field(&mut con, DEDUPE, "recorded"), N.to_string());
    assert_eq!(field(&mut con, DEDUPE, "lowest-unprocessed-id"), "nil");
    assert_eq!(hget(&mut con, "t", "total"), Some(N.to_string()));
    // Processing everything again applies nothing.
    assert_eq!(process(&mut con, "INDEX", &ids, 100), 0);
    assert_eq!(hget(&mut con, "t", "total"), Some(N.to_string()));
}

#[test]
fn a_set_grows_with_every_entry_where_the_index_does_not() {
    let srv = Server::start();
    let mut con = srv.conn();
    fill(&mut con, 20_000, |_| false);
    let ids: Vec<u64> = (1..=20_000).collect();
    process(&mut con, "SET", &ids, 100);
    let set = memory(&mut con, DEDUPE);
    // 66 bytes per ID on Redis 7.0, 27 on Valkey 9.1's denser sets.
    assert!(set > 20_000 * 20, "Set of 20,000 IDs: {set} bytes");
}

#[test]
fn permanent_failures_cost_a_hole_each_and_trimming_frees_them() {
    let srv = Server::start();
    let mut con = srv.conn();
    const N: u64 = 100_000;
    let bad = |i: u64| i % 100 == 50; // 1,000 entries without an amount
    fill(&mut con, N, bad);
    let ids: Vec<u64> = (1..=N).collect();
    assert_eq!(process(&mut con, "INDEX", &ids, 100), 99_000);
    assert_eq!(field(&mut con, DEDUPE, "holes"), "1000");
    assert_eq!(field(&mut con, DEDUPE, "lowest-unprocessed-id"), "50-0");
    let used = memory(&mut con, DEDUPE);
    assert!(used <= 64 * 1024, "1,000 holes: {used} bytes");
    // Trim past every failing entry, then process one more entry.
    q::<i64>(&mut con, &["XTRIM", "s", "MINID", "99951"]);
    xadd_id(&mut con, "s", &format!("{}-0", N + 1), &[("amount", "1")]);
    assert_eq!(process(&mut con, "INDEX", &[N + 1], 1), 1);
    let used = memory(&mut con, DEDUPE);
    assert!(used <= 1024, "after trimming the holes away: {used} bytes");
    assert_eq!(field(&mut con, DEDUPE, "ranges"), "1");
    assert_eq!(field(&mut con, DEDUPE, "left-unprocessed"), "1000");
    // Every processed entry still in the stream is a duplicate.
    let kept: Vec<u64> = (99_951..=N + 1).collect();
    assert!(exists(&mut con, DEDUPE, &kept).iter().all(|&e| e == 1));
    assert_eq!(process(&mut con, "INDEX", &kept, 100), 0);
}

#[test]
fn random_order_in_batches_of_100_ends_in_one_range() {
    let srv = Server::start();
    let mut con = srv.conn();
    const N: u64 = 20_000;
    fill(&mut con, N, |_| false);
    let mut ids: Vec<u64> = (1..=N).collect();
    let mut rng = Rng::new(7);
    for i in (1..ids.len()).rev() {
        ids.swap(i, rng.below(i as u64 + 1) as usize);
    }
    // Half-way, the holes are real.
    assert_eq!(process(&mut con, "INDEX", &ids[..10_000], 100), 10_000);
    assert!(field(&mut con, DEDUPE, "holes").parse::<u64>().unwrap() > 100);
    assert_eq!(process(&mut con, "INDEX", &ids[10_000..], 100), 10_000);
    assert_eq!(field(&mut con, DEDUPE, "ranges"), "1");
    let used = memory(&mut con, DEDUPE);
    assert!(used <= 1024, "after all were processed: {used} bytes");
    assert_eq!(hget(&mut con, "t", "total"), Some(N.to_string()));
}

/// An index with holes and a forgotten ID: something worth persisting.
fn holey_index(con: &mut Connection) -> (String, Vec<i64>) {
    fill(con, 300, |i| i % 37 == 0);
    let ids: Vec<u64> = (1..=300).collect();
    process(con, "INDEX", &ids, 50);
    q::<i64>(con, &["XPROCESS.FORGET", DEDUPE, "100-0"]);
    let all: Vec<u64> = (1..=301).collect();
    let seen = exists(con, DEDUPE, &all);
    assert!(seen.contains(&0) && seen.contains(&1));
    (digest_value(con, &[DEDUPE]).remove(0), seen)
}

#[test]
fn survives_debug_reload_aof_rewrite_and_kill9() {
    let mut srv = Server::with(&[], &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = srv.conn();
    let (digest, seen) = holey_index(&mut con);
    let all: Vec<u64> = (1..=301).collect();
    let check = |con: &mut Connection, when: &str| {
        assert_eq!(digest_value(con, &[DEDUPE]), vec![digest.clone()], "{when}");
        assert_eq!(exists(con, DEDUPE, &all), seen, "{when}");
        assert_eq!(q::<String>(con, &["TYPE", DEDUPE]), "xproc-idx", "{when}");
    };
    // The AOF so far holds XPROCESS.PATCH commands: replay them.
    srv.kill9();
    srv.restart();
    let mut con = srv.conn();
    check(&mut con, "after kill -9 and AOF replay");
    q::<()>(&mut con, &["DEBUG", "RELOAD"]);
    check(&mut con, "after DEBUG RELOAD");
    rewrite_aof(&mut con);
    srv.restart();
    let mut con = srv.conn();
    check(&mut con, "after BGREWRITEAOF and a restart");
    // Still a working index: the forgotten ID applies, once.
    assert_eq!(process(&mut con, "INDEX", &[100], 1), 1);
    assert_eq!(process(&mut con, "INDEX", &[100], 1), 0);
}

#[test]
fn dump_restore_copy_and_migrate_keep_the_index() {
    let srv = Server::start();
    let other = Server::start();
    let mut con = srv.conn();
    let (digest, seen) = holey_index(&mut con);
    let all: Vec<u64> = (1..=301).collect();
    let payload: Vec<u8> = redis::cmd("DUMP").arg(DEDUPE).query(&mut con).unwrap();
    redis::cmd("RESTORE")
        .arg("restored")
        .arg(0)
        .arg(&payload)
        .query::<()>(&mut con)
        .unwrap();
    assert_eq!(digest_value(&mut con, &["restored"]), vec![digest.clone()]);
    assert_eq!(q::<i64>(&mut con, &["COPY", DEDUPE, "copied"]), 1);
    assert_eq!(digest_value(&mut con, &["copied"]), vec![digest.clone()]);
    assert_eq!(exists(&mut con, "copied", &all), seen);
    // A copy is independent of its source.
    q::<i64>(&mut con, &["XPROCESS.FORGET", "copied", "1-0"]);
    assert_eq!(exists(&mut con, DEDUPE, &[1]), vec![1]);
    let port = other.port().to_string();
    let migrated: String = q(
        &mut con,
        &["MIGRATE", "127.0.0.1", &port, DEDUPE, "0", "5000"],
    );
    assert_eq!(migrated, "OK");
    let mut o = other.conn();
    assert_eq!(digest_value(&mut o, &[DEDUPE]), vec![digest]);
    assert!(!common::exists(&mut con, DEDUPE));
}

/// A DUMP payload of `body` as our value's one string buffer, with the
/// type and module ID of `real` (a real DUMP of an index) and a valid CRC.
fn forge(real: &[u8], body: &[u8]) -> Vec<u8> {
    // real = type(1) moduleid(9: 0x81 + 8 bytes) opcode STRING(1) len str
    //        opcode EOF(1) version(2) crc(8)
    let mut out = real[..10].to_vec();
    out.push(5); // RDB_MODULE_OPCODE_STRING
    let len = body.len() as u32;
    out.push(0x80); // 32-bit length
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out.push(0); // RDB_MODULE_OPCODE_EOF
    let footer = &real[real.len() - 10..real.len() - 8];
    out.extend_from_slice(footer);
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn le(n: u64) -> [u8; 8] {
    n.to_le_bytes()
}

/// Our encoding (version 3, see core/src/index/codec.rs): stream, recorded,
/// lost, count, ranges, then the business keys: now, window, expired,
/// conflicts, count, keys (none here), then the definition (none: 0).
fn body(stream: &[u8], count: u64, ranges: &[[u64; 5]]) -> Vec<u8> {
    let mut b = ranges_body(stream, count, ranges);
    for n in [0, 0, 0, 0, 0, 0] {
        b.extend_from_slice(&le(n));
    }
    b
}

/// `body` with one business key (16 bytes of hash, fingerprint, expiry,
/// entry ms and seq) and the given key count and store time.
fn body_with_key(key_count: u64, now: u64, expires: u32) -> Vec<u8> {
    let mut b = ranges_body(b"s", 2, &[[1, 0, 3, 0, 0], [7, 0, 7, 0, 3]]);
    for n in [now, 1000, 0, 0, key_count] {
        b.extend_from_slice(&le(n));
    }
    b.extend_from_slice(&[7; 16]);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&expires.to_le_bytes());
    b.extend_from_slice(&le(1));
    b.extend_from_slice(&le(0));
    b.extend_from_slice(&le(0)); // no definition
    b
}

fn ranges_body(stream: &[u8], count: u64, ranges: &[[u64; 5]]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&le(stream.len() as u64));
    b.extend_from_slice(stream);
    b.extend_from_slice(&le(4)); // recorded: 1, 2, 3 and 7
    b.extend_from_slice(&le(0));
    b.extend_from_slice(&le(count));
    for r in ranges {
        for n in r {
            b.extend_from_slice(&le(*n));
        }
    }
    b
}

#[test]
fn restore_refuses_corrupt_payloads_and_the_server_lives_on() {
    let srv = Server::start();
    let mut con = srv.conn();
    fill(&mut con, 10, |_| false);
    process(&mut con, "INDEX", &[1, 2, 3, 7], 4);
    let real: Vec<u8> = redis::cmd("DUMP").arg(DEDUPE).query(&mut con).unwrap();
    // A forged copy of a good body is accepted: the forgery is faithful.
    let good = body(b"s", 2, &[[1, 0, 3, 0, 0], [7, 0, 7, 0, 3]]);
    let restore = |con: &mut Connection, key: &str, payload: &[u8]| {
        redis::cmd("RESTORE")
            .arg(key)
            .arg(0)
            .arg(payload)
            .query::<()>(con)
    };
    restore(&mut con, "good", &forge(&real, &good)).unwrap();
    // A well-formed business key loads too.
    restore(
        &mut con,
        "with-key",
        &forge(&real, &body_with_key(1, 100, 200)),
    )
    .unwrap();
    assert_eq!(
        digest_value(&mut con, &["good"]),
        digest_value(&mut con, &[DEDUPE])
    );
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", good[..good.len() - 3].to_vec()),
        ("one byte too long", [&good[..], &[0]].concat()),
        (
            "count too high",
            body(b"s", 3, &[[1, 0, 3, 0, 0], [7, 0, 7, 0, 3]]),
        ),
        (
            "count overflows",
            body(b"s", u64::MAX / 4, &[[1, 0, 3, 0, 0]]),
        ),
        ("start after end", body(b"s", 1, &[[5, 0, 3, 0, 0]])),
        (
            "overlapping",
            body(b"s", 2, &[[1, 0, 5, 0, 0], [5, 0, 7, 0, 1]]),
        ),
        (
            "out of order",
            body(b"s", 2, &[[7, 0, 8, 0, 0], [1, 0, 2, 0, 1]]),
        ),
        ("first range with a gap", body(b"s", 1, &[[1, 0, 2, 0, 4]])),
        ("key count too high", body_with_key(2, 100, 200)),
        ("key count overflows", body_with_key(u64::MAX / 8, 100, 200)),
        ("store time out of range", body_with_key(1, 1 << 40, 200)),
        ("a key already expired", body_with_key(1, 300, 200)),
        ("a definition flag of 2", {
            let mut b = good.clone();
            let at = b.len() - 8;
            b[at] = 2;
            b
        }),
        (
            "a definition cut short",
            [&good[..good.len() - 8], &le(1)[..], &le(1)[..]].concat(),
        ),
        ("stream length past the end", {
            let mut b = good.clone();
            b[..8].copy_from_slice(&le(1 << 40));
            b
        }),
    ];
    for (what, b) in &bad {
        let e = restore(&mut con, "bad", &forge(&real, b)).expect_err(what);
        assert!(e.to_string().contains("Bad data format"), "{what}: {e}");
        assert!(
            !common::exists(&mut con, "bad"),
            "{what}: a key was created"
        );
    }
    // Random payloads (valid CRC) never crash it either.
    let mut rng = Rng::new(99);
    for _ in 0..300 {
        let mut b = good.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(b.len() as u64) as usize;
            b[at] = rng.below(256) as u8;
        }
        let cut = rng.below(b.len() as u64 + 1) as usize;
        let _ = restore(&mut con, "fuzzed", &forge(&real, &b[..cut]));
        let _: i64 = q(&mut con, &["DEL", "fuzzed"]);
    }
    assert_eq!(q::<String>(&mut con, &["PING"]), "PONG");
    assert!(!srv.log_tail(200).contains("panic"), "{}", srv.log_tail(50));
}

#[test]
fn patch_is_refused_from_clients_scripts_and_transactions() {
    let srv = Server::start();
    let mut con = srv.conn();
    let argv = ["XPROCESS.PATCH", "k", "s", "\x01"];
    let e = err(&call(&mut con, &argv));
    assert!(e.starts_with("ERR XPROCESS.PATCH is internal"), "{e}");
    let lua = call(
        &mut con,
        &[
            "EVAL",
            "return redis.call('XPROCESS.PATCH', 'k', 's', 'payload')",
            "0",
        ],
    );
    assert!(err(&lua).contains("XPROCESS.PATCH is internal"), "{lua:?}");
    let multi: Value = redis::pipe()
        .atomic()
        .cmd(argv[0])
        .arg(&argv[1..])
        .query(&mut con)
        .unwrap_or(Value::Nil);
    assert!(!format!("{multi:?}").contains("OK"), "{multi:?}");
    assert!(!common::exists(&mut con, "k"));
}

#[test]
fn an_index_belongs_to_one_stream_and_groups_may_share_it() {
    let srv = Server::start();
    let mut con = srv.conn();
    fill(&mut con, 5, |_| false);
    q::<()>(&mut con, &["XGROUP", "CREATE", "s", "g2", "0"]);
    q::<()>(
        &mut con,
        &["XGROUP", "CREATE", "other", "g", "0", "MKSTREAM"],
    );
    xadd_id(&mut con, "other", "1-0", &[("amount", "1")]);
    let run = |con: &mut Connection, stream: &str, group: &str, id: &str| {
        xprocess(
            con,
            &[
                stream, group, "DEDUPE", "shared", "HINCRBY", "t", "n", "1", "IDS", "1", id,
            ],
        )
    };
    assert_eq!(slots(&run(&mut con, "s", "g", "1-0")), ["1"]);
    // Another group of the same stream shares the records.
    assert_eq!(slots(&run(&mut con, "s", "g2", "1-0")), ["0"]);
    assert_eq!(slots(&run(&mut con, "s", "g2", "2-0")), ["1"]);
    let before = digest(&mut con);
    let e = err(&run(&mut con, "other", "g", "1-0"));
    assert_eq!(
        e,
        "ERR the dedupe index 'shared' belongs to stream 's', not to 'other'"
    );
    assert_eq!(digest(&mut con), before, "a refused call changes nothing");
}

#[test]
fn rereading_the_whole_stream_after_setid_0_applies_nothing_twice() {
    let srv = Server::start();
    let mut con = srv.conn();
    fill(&mut con, 50, |i| i == 20);
    let ids: Vec<u64> = (1..=50).collect();
    assert_eq!(process(&mut con, "INDEX", &ids, 7), 49);
    q::<()>(&mut con, &["XGROUP", "SETID", "s", "g", "0"]);
    let read: Value = q(
        &mut con,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "100",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert!(format!("{read:?}").contains("50-0"));
    let mut args = vec![
        "s", "g", "CONSUMER", "c", "HINCRBY", "t", "total", "$amount", "IDS", "50",
    ];
    let texts: Vec<String> = ids.iter().map(|i| format!("{i}-0")).collect();
    args.extend(texts.iter().map(String::as_str));
    let replies = slots(&xprocess(&mut con, &args));
    assert_eq!(replies.iter().filter(|s| *s == "0").count(), 49);
    assert!(
        replies[19].contains("has no field 'amount'"),
        "{}",
        replies[19]
    );
    assert_eq!(hget(&mut con, "t", "total"), Some("49".into()));
    // Everything but the failing entry was acked.
    assert_eq!(
        pel(&mut con, "s", "g"),
        vec![("20-0".to_string(), "c".to_string())]
    );
}

/// A stream deleted and recreated reuses IDs the index covers: those
/// entries count as processed (docs/reference.md says so); deleting the index
/// with the stream avoids it.
#[test]
fn a_recreated_stream_with_reused_ids_is_covered_by_the_old_index() {
    let srv = Server::start();
    let mut con = srv.conn();
    fill(&mut con, 5, |_| false);
    process(&mut con, "INDEX", &[1, 2, 3, 4, 5], 5);
    q::<i64>(&mut con, &["DEL", "s"]);
    fill(&mut con, 6, |_| false);
    assert_eq!(
        process(&mut con, "INDEX", &[1, 2, 3, 4, 5, 6], 6),
        1,
        "only 6-0 is new"
    );
    q::<i64>(&mut con, &["DEL", "s", DEDUPE]);
    fill(&mut con, 3, |_| false);
    assert_eq!(process(&mut con, "INDEX", &[1, 2, 3], 3), 3);
}

#[test]
fn replica_and_primary_agree_on_the_index() {
    let primary = Server::with(&[], &["--repl-diskless-sync-delay", "0"]);
    let port = primary.port().to_string();
    let replica = Server::with(&[], &["--replicaof", "127.0.0.1", &port]);
    let mut p = primary.conn();
    let mut r = replica.conn();
    wait_replica_synced(&mut p, &mut r);
    holey_index(&mut p);
    q::<i64>(&mut p, &["XTRIM", "s", "MINID", "150"]);
    xadd_id(&mut p, "s", "400-0", &[("amount", "1")]);
    process(&mut p, "INDEX", &[400, 200, 201], 3);
    wait_replica_synced(&mut p, &mut r);
    assert_eq!(digest(&mut r), digest(&mut p));
    // All but `memory`: capacity depends on each server's history.
    let logical = |con: &mut Connection| {
        let mut i = info(con, DEDUPE);
        i.retain(|(k, _)| k != "memory");
        i
    };
    assert_eq!(logical(&mut r), logical(&mut p));
    let stats: String = q(&mut r, &["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_xprocess.patch"), "{stats}");
    assert!(!stats.contains("cmdstat_xprocess:"), "{stats}");
}

/// A gap that emptied (XDEL) before a sweep merged it: the lowest
/// unprocessed entry is the first one no range covers, not the first one
/// after the first range.
#[test]
fn lowest_unprocessed_skips_ranges_past_an_emptied_gap() {
    let srv = Server::start();
    let mut con = srv.conn();
    fill(&mut con, 6, |_| false);
    process(&mut con, "INDEX", &[1, 3], 2);
    q::<i64>(&mut con, &["XDEL", "s", "2-0"]);
    process(&mut con, "INDEX", &[5], 1);
    assert_eq!(exists(&mut con, DEDUPE, &[3, 4, 5]), vec![1, 0, 1]);
    assert_eq!(field(&mut con, DEDUPE, "lowest-unprocessed-id"), "4-0");
    process(&mut con, "INDEX", &[4, 6], 2);
    assert_eq!(field(&mut con, DEDUPE, "lowest-unprocessed-id"), "nil");
}
