//! The dedupe stores' memory in the scenarios of issue #9, as `MEMORY USAGE`
//! of the dedupe key (a size, not a time): in-order processing with 100 and
//! with 1 ID per call, permanent failures before and after trimming them
//! away, random order in batches of 100; the index against a Set. And the
//! business keys of issue #10: bytes per key with 1,000,000 keys (`KEY`).

use crate::server::Server;
use crate::wire::{encode, pipeline};
use redis::Connection;
use std::path::Path;

const DEDUPE: &str = "{m}:xprocess:g";

pub struct Figure {
    pub what: String,
    pub index: u64,
    pub set: Option<u64>,
}

/// Entries `1-0 ..= n-0` in stream `m` (group `g` at 0); `bad(i)` entries
/// have no `amount`, so `HINCRBY t total $amount` fails on them for good.
fn fill(port: u16, con: &mut Connection, n: u64, bad: &dyn Fn(u64) -> bool) {
    redis::cmd("FLUSHALL").query::<()>(con).unwrap();
    redis::cmd("XGROUP")
        .arg(&["CREATE", "m", "g", "0", "MKSTREAM"])
        .query::<()>(con)
        .unwrap();
    let mut payload = Vec::with_capacity(n as usize * 48);
    for i in 1..=n {
        let id = format!("{i}-0");
        let field: &[u8] = if bad(i) { b"other" } else { b"amount" };
        encode(&mut payload, &[b"XADD", b"m", id.as_bytes(), field, b"1"]);
    }
    let (_, s) = pipeline(port, &payload, n);
    assert_eq!(s.errors, 0, "XADD errors");
}

/// XPROCESS over `ids` in calls of `batch`, pipelined; returns `1` replies.
fn process(port: u16, store: &str, ids: &[u64], batch: usize) -> i64 {
    process_with(port, &[b"STORE", store.as_bytes()], ids, batch)
}

/// `process` with any options before the effect.
fn process_with(port: u16, options: &[&[u8]], ids: &[u64], batch: usize) -> i64 {
    let mut payload = Vec::new();
    let mut calls = 0;
    for chunk in ids.chunks(batch) {
        let n = chunk.len().to_string();
        let texts: Vec<String> = chunk.iter().map(|i| format!("{i}-0")).collect();
        let mut args: Vec<&[u8]> = vec![b"XPROCESS", b"m", b"g"];
        args.extend_from_slice(options);
        args.extend([b"HINCRBY" as &[u8], b"t", b"total", b"$amount", b"IDS"]);
        args.push(n.as_bytes());
        args.extend(texts.iter().map(|t| t.as_bytes()));
        encode(&mut payload, &args);
        calls += 1;
    }
    pipeline(port, &payload, calls).1.int_sum
}

fn usage(con: &mut Connection) -> u64 {
    redis::cmd("MEMORY")
        .arg(&["USAGE", DEDUPE, "SAMPLES", "0"])
        .query(con)
        .unwrap()
}

/// A deterministic shuffle (xorshift), the same in every run.
fn shuffled(n: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = (1..=n).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..ids.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids.swap(i, (x % (i as u64 + 1)) as usize);
    }
    ids
}

/// One scenario on one store: its figure, after checking the work was done.
fn scenario(server: &Server, store: &str, what: usize, n: u64) -> u64 {
    let port = server.port();
    let mut con = server.conn();
    let failing = |i: u64| i % (n / 1000) == n / 2000;
    match what {
        0 | 1 => {
            fill(port, &mut con, n, &|_| false);
            let ids: Vec<u64> = (1..=n).collect();
            let batch = if what == 0 { 100 } else { 1 };
            assert_eq!(process(port, store, &ids, batch), n as i64);
        }
        2 | 3 => {
            fill(port, &mut con, n, &failing);
            let ids: Vec<u64> = (1..=n).collect();
            assert_eq!(process(port, store, &ids, 100), (n - 1000) as i64);
            if what == 3 {
                // Trim past every failing entry, then process one more.
                let minid = format!("{}", n - n / 2000 + 1);
                redis::cmd("XTRIM")
                    .arg(&["m", "MINID", &minid])
                    .query::<i64>(&mut con)
                    .unwrap();
                let next = format!("{}-0", n + 1);
                redis::cmd("XADD")
                    .arg(&["m", &next, "amount", "1"])
                    .query::<String>(&mut con)
                    .unwrap();
                assert_eq!(process(port, store, &[n + 1], 1), 1);
            }
        }
        _ => {
            fill(port, &mut con, n, &|_| false);
            assert_eq!(process(port, store, &shuffled(n), 100), n as i64);
        }
    }
    usage(&mut con)
}

/// The figures, `n` entries in order (`n / 10` in random order).
pub fn measure(module: &Path, n: u64) -> Vec<Figure> {
    let names = [
        format!("{n} entries in order, 100 IDs per call"),
        format!("{n} entries in order, 1 ID per call"),
        format!("{n} entries, 1,000 of them failing for good (spread evenly)"),
        "the same, after XTRIM MINID past all failing entries and one more call".to_string(),
        format!("{} entries in random order, batches of 100", n / 10),
    ];
    let server = Server::start(module);
    names
        .iter()
        .enumerate()
        .map(|(what, name)| {
            let size = if what == 4 { n / 10 } else { n };
            let index = scenario(&server, "INDEX", what, size);
            // The 1-ID Set run adds nothing the 100-ID one does not show.
            let set = (what != 1).then(|| scenario(&server, "SET", what, size));
            eprintln!("memory: {name}: index {index} B, set {set:?} B");
            Figure {
                what: name.clone(),
                index,
                set,
            }
        })
        .collect()
}

/// Business keys: `MEMORY USAGE` of an index after `n` entries with
/// distinct `pid`s processed with `KEY $pid`, against the same work without.
pub struct KeyFigure {
    pub keys: u64,
    pub with_keys: u64,
    pub without: u64,
}

impl KeyFigure {
    pub fn per_key(&self) -> f64 {
        (self.with_keys - self.without) as f64 / self.keys as f64
    }
}

pub fn business_keys(module: &Path, n: u64) -> KeyFigure {
    let server = Server::start(module);
    let port = server.port();
    let mut con = server.conn();
    let mut sizes = [0; 2];
    for (with, size) in sizes.iter_mut().enumerate() {
        redis::cmd("FLUSHALL").query::<()>(&mut con).unwrap();
        redis::cmd("XGROUP")
            .arg(&["CREATE", "m", "g", "0", "MKSTREAM"])
            .query::<()>(&mut con)
            .unwrap();
        let mut payload = Vec::with_capacity(n as usize * 64);
        for i in 1..=n {
            let (id, pid) = (format!("{i}-0"), format!("payment-{i}"));
            let args: [&[u8]; 7] = [
                b"XADD",
                b"m",
                id.as_bytes(),
                b"pid",
                pid.as_bytes(),
                b"amount",
                b"1",
            ];
            encode(&mut payload, &args);
        }
        assert_eq!(pipeline(port, &payload, n).1.errors, 0, "XADD errors");
        let ids: Vec<u64> = (1..=n).collect();
        let options: &[&[u8]] = match with {
            1 => &[b"KEY", b"$pid"],
            _ => &[],
        };
        assert_eq!(process_with(port, options, &ids, 100), n as i64);
        *size = usage(&mut con);
    }
    let figure = KeyFigure {
        keys: n,
        without: sizes[0],
        with_keys: sizes[1],
    };
    eprintln!(
        "memory: {n} business keys: {} B ({:.2} B per key; the index alone {} B)",
        figure.with_keys,
        figure.per_key(),
        figure.without
    );
    figure
}

pub fn key_table(f: &KeyFigure) -> String {
    let verdict = if f.per_key() <= 32.0 {
        "met"
    } else {
        "**not met**"
    };
    format!(
        "| Scenario | index with KEY (MEMORY USAGE) | the same without KEY | bytes per business key | issue #10 target |\n\
         |---|---:|---:|---:|---|\n\
         | {} entries in order, 100 IDs per call, `KEY $pid` (all distinct) | {} B | {} B | {:.2} | ≤ 32: {verdict} |\n",
        f.keys,
        f.with_keys,
        f.without,
        f.per_key()
    )
}

pub fn table(figures: &[Figure]) -> String {
    let mut t =
        String::from("| Scenario | index (MEMORY USAGE) | Set (MEMORY USAGE) |\n|---|---:|---:|\n");
    for f in figures {
        let set = f.set.map_or("–".to_string(), |b| format!("{b} B"));
        t += &format!("| {} | {} B | {set} |\n", f.what, f.index);
    }
    t
}
