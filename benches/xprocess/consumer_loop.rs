//! The whole consumer loop, end to end: N new entries in the stream (XADDed
//! before the clock starts), one client on one connection taking and
//! processing them COUNT at a time until the server says nothing is left.
//! Each round trip waits for its reply before the next request, as a worker
//! does. Four loops:
//!
//! - Lua: XREADGROUP COUNT 100, then EVALSHA of the Lua script once per
//!   entry, the 100 calls in one write (the seed's pattern);
//! - IDS: XREADGROUP COUNT 100, then one `XPROCESS ... IDS 100 id...`;
//! - READ: `XPROCESS ... CONSUMER c ... READ COUNT 100` until it replies an
//!   empty array;
//! - READ with `REPLY COUNTS`: the same, the reply how many entries had each
//!   outcome instead of a pair per entry (still the empty array at the end);
//! - at-least-once floor: XREADGROUP COUNT 100, then XACK of those IDs (no
//!   effect, no dedupe);
//! - standing processor: the group's effect defined (`XPROCESS.DEFINE`,
//!   before the clock starts), then `XPROCESS.START ... COUNT 100`: the
//!   server works the entries off by itself; the client only asks XINFO
//!   GROUPS every millisecond whether it is done.
//!
//! The client checks every reply as it comes (the IDs are the stream's, in
//! order, each once; every entry replied 1), and the end state is checked as
//! in the per-entry benchmark (totals, empty PEL, dedupe store).

use crate::contenders::load_script;
use crate::profile::Profiler;
use crate::run::commandstats;
use crate::server::Server;
use crate::wire::{encode, Conn, Resp};
use crate::workload::{self, Entry, CONSUMER, DEDUPE, GROUP, STREAM, TOTALS};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Entries per XREADGROUP / READ call.
pub const COUNT: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loop {
    Lua,
    Ids,
    Read,
    ReadCounts,
    Ack,
    Standing,
}

pub const ALL: [Loop; 6] = [
    Loop::Lua,
    Loop::Ids,
    Loop::Read,
    Loop::ReadCounts,
    Loop::Ack,
    Loop::Standing,
];

impl Loop {
    pub fn name(self) -> &'static str {
        match self {
            Loop::Lua => "XREADGROUP COUNT 100 + EVALSHA per entry (Lua script, pipelined)",
            Loop::Ids => "XREADGROUP COUNT 100 + XPROCESS ... IDS 100 id...",
            Loop::Read => "XPROCESS ... READ COUNT 100",
            Loop::ReadCounts => "XPROCESS ... READ COUNT 100 REPLY COUNTS",
            Loop::Ack => "XREADGROUP COUNT 100 + XACK 100 IDs (at-least-once floor)",
            Loop::Standing => "XPROCESS.START COUNT 100 (standing processor, no worker)",
        }
    }

    /// Short name for BENCH_ONLY, progress lines and the ratio table.
    pub fn tag(self) -> &'static str {
        match self {
            Loop::Lua => "loop-lua",
            Loop::Ids => "loop-ids",
            Loop::Read => "loop-read",
            Loop::ReadCounts => "loop-read-counts",
            Loop::Ack => "loop-ack",
            Loop::Standing => "loop-standing",
        }
    }

    /// The commands the client sends (INFO commandstats usec of these is the
    /// loop's time in commands; the others ran inside them).
    pub fn top_level(self) -> &'static [&'static str] {
        match self {
            Loop::Lua => &["xreadgroup", "evalsha"],
            Loop::Ids => &["xreadgroup", "xprocess"],
            Loop::Read | Loop::ReadCounts => &["xprocess"],
            Loop::Ack => &["xreadgroup", "xack"],
            // The batches are XPROCESS calls the server makes itself.
            Loop::Standing => &["xprocess.start", "xprocess", "xinfo"],
        }
    }

    fn applies_effects(self) -> bool {
        self != Loop::Ack
    }

    fn has_dedupe(self) -> bool {
        self != Loop::Ack
    }
}

/// What one loop measured in one round; times are µs per entry.
#[derive(Clone, Debug)]
pub struct LoopSample {
    pub entries_per_s: f64,
    pub wall_us: f64,
    /// The server's main thread on a CPU (/proc/<pid>/task/<pid>/schedstat).
    pub server_cpu_us: f64,
    /// The server's main thread runnable but waiting for a CPU.
    pub server_wait_us: f64,
    /// The client's thread on a CPU (encoding, parsing, checking).
    pub client_cpu_us: f64,
    /// Requests written per 100 entries, each a wait for the reply.
    pub trips_per_100: f64,
    /// INFO commandstats: command -> (calls, usec) per entry, top-level and
    /// inner (RedisModule_Call, redis.call) alike.
    pub commands: BTreeMap<String, (f64, f64)>,
}

impl LoopSample {
    /// µs per entry in the top-level commands (INFO commandstats).
    pub fn command_us(&self, who: Loop) -> f64 {
        who.top_level()
            .iter()
            .filter_map(|c| self.commands.get(*c))
            .map(|c| c.1)
            .sum()
    }
}

/// One loop over `n` entries on a fresh server.
pub fn measure(module: &Path, who: Loop, n: usize) -> LoopSample {
    let server = Server::start(module);
    let mut con = server.conn();
    let sha = load_script(&mut con);
    let entries = workload::entries(0, n as u64);
    workload::add_new(&mut con, server.port(), &entries);
    assert_eq!(workload::pending_count(&mut con), 0);
    if who == Loop::Standing {
        crate::profile::keep_batch_sizes(&mut con);
        let args = [STREAM, GROUP, "HINCRBY", TOTALS, "$customer", "$amount"];
        let _: () = redis::cmd("XPROCESS.DEFINE")
            .arg(&args)
            .query(&mut con)
            .unwrap();
    }

    let mut conn = Conn::new(server.port());
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();
    let profiler = Profiler::start(server.pid(), who.tag());
    let server_stat = format!("/proc/{0}/task/{0}/schedstat", server.pid());
    let (server0, client0) = (
        schedstat(&server_stat),
        schedstat("/proc/thread-self/schedstat"),
    );
    let start = Instant::now();
    let trips = run(&mut conn, who, &entries, &sha);
    let wall = start.elapsed();
    let (server1, client1) = (
        schedstat(&server_stat),
        schedstat("/proc/thread-self/schedstat"),
    );
    if let Some(p) = profiler {
        p.stop();
    }
    let stats = commandstats(&mut con);
    workload::verify(
        &mut con,
        &entries,
        who.applies_effects(),
        who.has_dedupe(),
        who.tag(),
    );

    let per_entry = |ns: u64| ns as f64 / 1e3 / n as f64;
    LoopSample {
        entries_per_s: n as f64 / wall.as_secs_f64(),
        wall_us: wall.as_secs_f64() * 1e6 / n as f64,
        server_cpu_us: per_entry(server1.0 - server0.0),
        server_wait_us: per_entry(server1.1 - server0.1),
        client_cpu_us: per_entry(client1.0 - client0.0),
        trips_per_100: trips as f64 * 100.0 / n as f64,
        commands: stats
            .iter()
            .filter(|(name, _)| !name.starts_with("config|") && *name != "info")
            .map(|(name, (calls, usec))| {
                let per = |x: u64| x as f64 / n as f64;
                (name.clone(), (per(*calls), per(*usec)))
            })
            .collect(),
    }
}

/// The loop itself, until the server has nothing left to give; every reply
/// is checked against `entries`. Returns the requests written.
fn run(conn: &mut Conn, who: Loop, entries: &[Entry], sha: &str) -> u64 {
    if who == Loop::Standing {
        return standing(conn, entries.len());
    }
    let count = COUNT.to_string();
    let mut take = Vec::new();
    match who {
        Loop::Read | Loop::ReadCounts => {
            let mut args = vec![
                "XPROCESS",
                STREAM,
                GROUP,
                "CONSUMER",
                CONSUMER,
                "HINCRBY",
                TOTALS,
                "$customer",
                "$amount",
                "READ",
                "COUNT",
                &count,
            ];
            if who == Loop::ReadCounts {
                args.extend(["REPLY", "COUNTS"]);
            }
            let args: Vec<&[u8]> = args.into_iter().map(str::as_bytes).collect();
            encode(&mut take, &args);
        }
        _ => {
            let args = [
                "XREADGROUP",
                "GROUP",
                GROUP,
                CONSUMER,
                "COUNT",
                &count,
                "STREAMS",
                STREAM,
                ">",
            ];
            encode(&mut take, &args.map(str::as_bytes));
        }
    }
    let mut done = 0;
    let mut trips = 0;
    let mut then = Vec::with_capacity(COUNT * 128);
    loop {
        conn.send(&take);
        trips += 1;
        then.clear();
        let got = conn.reply(|r| match who {
            Loop::Read => check_read(r, &entries[done..]),
            Loop::ReadCounts => check_counts(r, entries.len() - done),
            _ => {
                let ids = stream_ids(r, &entries[done..]);
                encode_then(who, &mut then, &ids, sha);
                ids.len()
            }
        });
        if got == 0 {
            break;
        }
        if !matches!(who, Loop::Read | Loop::ReadCounts) {
            conn.send(&then);
            trips += 1;
            check_then(conn, who, got);
        }
        done += got;
    }
    assert_eq!(done, entries.len(), "{}: entries done", who.tag());
    trips
}

/// The entry IDs of an XREADGROUP reply (null when there was nothing),
/// checked to be the next ones of `expected`.
fn stream_ids<'a>(reply: &'a Resp<'_>, expected: &[Entry]) -> Vec<&'a [u8]> {
    let Some(stream) = reply.items().first() else {
        return Vec::new();
    };
    let [name, list] = stream.items() else {
        panic!("XREADGROUP: unexpected reply {reply:?}");
    };
    assert_eq!(name.bulk(), STREAM.as_bytes());
    let ids: Vec<&[u8]> = list.items().iter().map(|e| e.items()[0].bulk()).collect();
    check_ids(ids.iter().copied(), expected, "XREADGROUP");
    ids
}

/// The IDs are the next ones of `expected`, at most COUNT of them.
fn check_ids<'a>(ids: impl Iterator<Item = &'a [u8]>, expected: &[Entry], what: &str) {
    for (i, got) in ids.enumerate() {
        assert!(i < COUNT.min(expected.len()), "{what}: too many entries");
        assert_eq!(got, expected[i].id.as_bytes(), "{what}: not the next entry");
    }
}

/// A READ reply: `[id, 1]` pairs for the next entries; their number.
fn check_read(reply: &Resp<'_>, expected: &[Entry]) -> usize {
    let pairs = reply.items();
    check_ids(pairs.iter().map(|p| p.items()[0].bulk()), expected, "READ");
    for p in pairs {
        assert!(
            matches!(p.items()[1], Resp::Int(1)),
            "READ: an entry was not applied: {p:?}"
        );
    }
    pairs.len()
}

/// A `READ ... REPLY COUNTS` reply when `left` entries are still new: the
/// empty array when none are, else every entry taken (the next
/// `min(COUNT, left)`, as nothing else reads the group) applied, none a
/// duplicate, dead-lettered or failed; the number applied.
pub fn check_counts(reply: &Resp<'_>, left: usize) -> usize {
    let fields = reply.items();
    if fields.is_empty() {
        assert_eq!(left, 0, "READ REPLY COUNTS: empty with {left} entries left");
        return 0;
    }
    let field = |name: &str| {
        let at = fields.chunks(2).find(|kv| kv[0].text() == name.as_bytes());
        &at.unwrap_or_else(|| panic!("READ REPLY COUNTS: no {name} in {reply:?}"))[1]
    };
    let count = |name: &str| match field(name) {
        Resp::Int(v) => *v as usize,
        other => panic!("READ REPLY COUNTS: {name} is {other:?}"),
    };
    let applied = count("applied");
    assert_eq!(applied, COUNT.min(left), "READ REPLY COUNTS: applied");
    for name in ["duplicates", "dead-lettered", "failed"] {
        assert_eq!(count(name), 0, "READ REPLY COUNTS: {name}");
    }
    assert!(
        field("errors").items().is_empty(),
        "READ REPLY COUNTS: errors {reply:?}"
    );
    applied
}

/// What the loop sends for the IDs it read.
fn encode_then(who: Loop, out: &mut Vec<u8>, ids: &[&[u8]], sha: &str) {
    match who {
        Loop::Lua => {
            for id in ids {
                let head = ["EVALSHA", sha, "3", STREAM, DEDUPE, TOTALS, GROUP];
                let mut args: Vec<&[u8]> = head.map(str::as_bytes).to_vec();
                args.push(id);
                encode(out, &args);
            }
        }
        Loop::Ids => {
            let n = ids.len().to_string();
            let head = [
                "XPROCESS",
                STREAM,
                GROUP,
                "HINCRBY",
                TOTALS,
                "$customer",
                "$amount",
                "IDS",
                &n,
            ];
            let mut args: Vec<&[u8]> = head.map(str::as_bytes).to_vec();
            args.extend_from_slice(ids);
            encode(out, &args);
        }
        Loop::Ack => {
            let mut args: Vec<&[u8]> = ["XACK", STREAM, GROUP].map(str::as_bytes).to_vec();
            args.extend_from_slice(ids);
            encode(out, &args);
        }
        Loop::Read | Loop::ReadCounts | Loop::Standing => unreachable!("no second command"),
    }
}

/// The replies to what `encode_then` sent for `got` entries: 1 per entry
/// (EVALSHA, XPROCESS IDS), `got` acked (XACK).
fn check_then(conn: &mut Conn, who: Loop, got: usize) {
    let tag = who.tag();
    match who {
        Loop::Lua => {
            for _ in 0..got {
                conn.reply(|r| assert!(matches!(r, Resp::Int(1)), "{tag}: {r:?}"));
            }
        }
        Loop::Ids => conn.reply(|r| {
            let ones = r.items().iter().filter(|v| matches!(v, Resp::Int(1)));
            let ok = r.items().len() == got && ones.count() == got;
            assert!(ok, "{tag}: not every entry replied 1: {r:?}");
        }),
        Loop::Ack => conn.reply(|r| {
            assert!(
                matches!(r, Resp::Int(n) if *n == got as i64),
                "{tag}: {r:?}"
            )
        }),
        Loop::Read | Loop::ReadCounts | Loop::Standing => unreachable!(),
    }
}

/// Start the processor, then ask XINFO GROUPS every millisecond until the
/// group has read every entry and has none pending. Returns the requests
/// written.
fn standing(conn: &mut Conn, n: usize) -> u64 {
    let mut start = Vec::new();
    let args = [
        "XPROCESS.START",
        STREAM,
        GROUP,
        "CONSUMER",
        CONSUMER,
        "COUNT",
        "100",
    ];
    encode(&mut start, &args.map(str::as_bytes));
    conn.send(&start);
    conn.reply(|r| assert!(matches!(r, Resp::Simple(_)), "XPROCESS.START: {r:?}"));
    1 + poll_until_done(conn, n)
}

/// Ask XINFO GROUPS every millisecond until the group has read `n` entries
/// and has none pending. Returns the requests written.
pub fn poll_until_done(conn: &mut Conn, n: usize) -> u64 {
    let mut info = Vec::new();
    encode(&mut info, &["XINFO", "GROUPS", STREAM].map(str::as_bytes));
    let mut trips = 0;
    loop {
        std::thread::sleep(crate::profile::poll_interval());
        conn.send(&info);
        trips += 1;
        let done = conn.reply(|r| {
            let group = r.items()[0].items();
            let field = |name: &[u8]| {
                let at = group
                    .chunks(2)
                    .find(|kv| matches!(kv[0], Resp::Bulk(Some(f)) if f == name));
                match at.map(|kv| &kv[1]) {
                    Some(Resp::Int(v)) => *v,
                    // Redis 7.0: a group created at `$` on an empty stream
                    // has no entries-read until it reads (the pipelines poll
                    // from then on).
                    Some(Resp::Bulk(None)) => -1,
                    other => panic!("XINFO GROUPS {}: {other:?}", String::from_utf8_lossy(name)),
                }
            };
            field(b"entries-read") == n as i64 && field(b"pending") == 0
        });
        if done {
            return trips;
        }
    }
}

/// (ns on a CPU, ns waiting for one) of a thread.
pub fn schedstat(path: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap());
    (fields.next().unwrap(), fields.next().unwrap())
}
