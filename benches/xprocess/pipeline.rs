//! The pipeline: a producer and a consumer at once. A fresh server with the
//! group created at `$` (and, for the standing processor, its definition
//! and XPROCESS.START) before the clock; at the start instant a producer on
//! its own connection pipelines the XADDs of all N entries as fast as it can
//! (`*` IDs, written 1,000 commands at a time by one thread while another
//! reads the replies), while the consumer keeps up on another connection:
//!
//! - at-least-once floor: `XREADGROUP ... COUNT 100 BLOCK 1 STREAMS key >`,
//!   then XACK of the IDs read;
//! - READ worker: `XPROCESS ... CONSUMER c ... READ COUNT 100 BLOCK 1`;
//! - standing processor: no worker; the client asks XINFO GROUPS every
//!   millisecond whether the group has read all N entries and has none
//!   pending.
//!
//! Timed from the start instant until every entry is applied (acked for the
//! floor): the worker's own count of them, or XINFO GROUPS for the standing
//! processor. Consumers at the head of a stream that is still growing take
//! what is there, often fewer than 100 entries, so this measures how the
//! work keeps up with arrivals rather than the draining of a backlog (the
//! consumer loops of consumer_loop.rs).

use crate::consumer_loop::{poll_until_done, schedstat, COUNT};
use crate::profile::Profiler;
use crate::run::commandstats;
use crate::server::Server;
use crate::wire::{self, encode, Conn, Resp};
use crate::workload::{self, Entry, CONSUMER, GROUP, STREAM, TOTALS};
use std::path::Path;
use std::time::Instant;

/// XADDs per write of the producer.
pub const CHUNK: usize = 1_000;
/// BLOCK of the workers' requests, in milliseconds.
const BLOCK_MS: &str = "1";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pipe {
    Ack,
    Read,
    Standing,
}

pub const ALL: [Pipe; 3] = [Pipe::Ack, Pipe::Read, Pipe::Standing];

impl Pipe {
    pub fn name(self) -> &'static str {
        match self {
            Pipe::Ack => "XREADGROUP COUNT 100 BLOCK 1 + XACK (at-least-once floor)",
            Pipe::Read => "XPROCESS ... READ COUNT 100 BLOCK 1 (worker)",
            Pipe::Standing => "XPROCESS.START COUNT 100 (standing processor, no worker)",
        }
    }

    /// Short name for BENCH_ONLY, progress lines and the ratio table.
    pub fn tag(self) -> &'static str {
        match self {
            Pipe::Ack => "pipe-ack",
            Pipe::Read => "pipe-read",
            Pipe::Standing => "pipe-standing",
        }
    }

    /// The consumer's commands (INFO commandstats usec of these is its time
    /// in commands; the standing processor's batches are XPROCESS calls the
    /// server makes itself, XINFO the client's polls).
    pub fn consumer_commands(self) -> &'static [&'static str] {
        match self {
            Pipe::Ack => &["xreadgroup", "xack"],
            Pipe::Read => &["xprocess"],
            Pipe::Standing => &["xprocess", "xinfo"],
        }
    }

    fn applies_effects(self) -> bool {
        self != Pipe::Ack
    }
}

/// What one pipeline measured in one round; µs are per entry.
#[derive(Clone, Debug)]
pub struct PipeSample {
    /// N over the time from the start instant until all were applied.
    pub entries_per_s: f64,
    pub wall_ms: f64,
    /// The producer's time from the start instant to its last reply.
    pub producer_ms: f64,
    /// The server's main thread on a CPU over the timed phase (XADDs too).
    pub server_cpu_us: f64,
    /// The server's main thread runnable but waiting for a CPU.
    pub server_wait_us: f64,
    /// INFO commandstats usec of the XADDs.
    pub xadd_us: f64,
    /// INFO commandstats usec of [`Pipe::consumer_commands`].
    pub consumer_us: f64,
    /// Requests the consumer wrote per 100 entries.
    pub trips_per_100: f64,
}

/// One pipeline of `n` entries on a fresh server.
pub fn measure(module: &Path, who: Pipe, n: usize) -> PipeSample {
    let server = Server::start(module);
    let mut con = server.conn();
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", STREAM, GROUP, "$", "MKSTREAM"])
        .query(&mut con)
        .unwrap();
    if who == Pipe::Standing {
        crate::profile::keep_batch_sizes(&mut con);
        let define = [STREAM, GROUP, "HINCRBY", TOTALS, "$customer", "$amount"];
        let _: () = redis::cmd("XPROCESS.DEFINE")
            .arg(&define)
            .query(&mut con)
            .unwrap();
        let start = [STREAM, GROUP, "CONSUMER", CONSUMER, "COUNT", "100"];
        let _: () = redis::cmd("XPROCESS.START")
            .arg(&start)
            .query(&mut con)
            .unwrap();
    }
    let entries = workload::entries(0, n as u64);
    let chunks = xadds(&entries);
    let producer = wire::connect(server.port());
    let mut conn = Conn::new(server.port());
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();

    let profiler = Profiler::start(server.pid(), who.tag());
    let server_stat = format!("/proc/{0}/task/{0}/schedstat", server.pid());
    let server0 = schedstat(&server_stat);
    let start = Instant::now();
    let (wall, trips, (produced, summary)) = std::thread::scope(|scope| {
        let producer =
            scope.spawn(|| wire::produce(producer, &chunks, entries.len() as u64, start));
        let trips = consume(&mut conn, who, &entries);
        let wall = start.elapsed();
        (wall, trips, producer.join().expect("the producer"))
    });
    let server1 = schedstat(&server_stat);
    if let Some(p) = profiler {
        p.stop();
    }
    let stats = commandstats(&mut con);
    assert_eq!(summary.replies, n as u64, "{}: XADD replies", who.tag());
    assert_eq!(summary.errors, 0, "{}: XADD errors", who.tag());
    workload::verify(
        &mut con,
        &entries,
        who.applies_effects(),
        who.applies_effects(),
        who.tag(),
    );

    let per_entry = |ns: u64| ns as f64 / 1e3 / n as f64;
    let usec = |names: &[&str]| {
        let sum: u64 = names
            .iter()
            .filter_map(|c| stats.get(*c))
            .map(|c| c.1)
            .sum();
        sum as f64 / n as f64
    };
    PipeSample {
        entries_per_s: n as f64 / wall.as_secs_f64(),
        wall_ms: wall.as_secs_f64() * 1e3,
        producer_ms: produced.as_secs_f64() * 1e3,
        server_cpu_us: per_entry(server1.0 - server0.0),
        server_wait_us: per_entry(server1.1 - server0.1),
        xadd_us: usec(&["xadd"]),
        consumer_us: usec(who.consumer_commands()),
        trips_per_100: trips as f64 * 100.0 / n as f64,
    }
}

/// The producer's XADDs of `entries`, CHUNK commands per buffer.
fn xadds(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries
        .chunks(CHUNK)
        .map(|chunk| {
            let mut out = Vec::with_capacity(chunk.len() * 80);
            for e in chunk {
                let args = [
                    "XADD",
                    STREAM,
                    "*",
                    "customer",
                    &e.customer,
                    "amount",
                    &e.amount,
                ];
                encode(&mut out, &args.map(str::as_bytes));
            }
            out
        })
        .collect()
}

/// The consumer, until all of `entries` are applied (acked for the floor);
/// every reply is checked. Returns the requests written.
fn consume(conn: &mut Conn, who: Pipe, entries: &[Entry]) -> u64 {
    let count = COUNT.to_string();
    let take = match who {
        Pipe::Standing => return poll_until_done(conn, entries.len()),
        Pipe::Ack => vec![
            "XREADGROUP",
            "GROUP",
            GROUP,
            CONSUMER,
            "COUNT",
            &count,
            "BLOCK",
            BLOCK_MS,
            "STREAMS",
            STREAM,
            ">",
        ],
        Pipe::Read => vec![
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
            "BLOCK",
            BLOCK_MS,
        ],
    };
    let take: Vec<&[u8]> = take.iter().map(|a| a.as_bytes()).collect();
    let mut request = Vec::new();
    encode(&mut request, &take);
    let (mut done, mut trips) = (0, 0);
    let mut ack = Vec::with_capacity(COUNT * 32);
    while done < entries.len() {
        conn.send(&request);
        trips += 1;
        ack.clear();
        let left = &entries[done..];
        let got = conn.reply(|r| match who {
            Pipe::Ack => read_entries(r, left, &mut ack),
            _ => read_outcomes(r, left.len()),
        });
        if who == Pipe::Ack && got > 0 {
            conn.send(&ack);
            trips += 1;
            let tag = who.tag();
            conn.reply(|r| {
                assert!(
                    matches!(r, Resp::Int(n) if *n == got as i64),
                    "{tag}: {r:?}"
                )
            });
        }
        done += got;
    }
    trips
}

/// An XREADGROUP reply (null when BLOCK timed out): its entries are the next
/// of `expected` (same fields, in order, at most COUNT); the XACK of their
/// IDs goes into `ack`. Returns their number.
fn read_entries(reply: &Resp<'_>, expected: &[Entry], ack: &mut Vec<u8>) -> usize {
    let Some(stream) = reply.items().first() else {
        return 0;
    };
    let [name, list] = stream.items() else {
        panic!("XREADGROUP: unexpected reply {reply:?}");
    };
    assert_eq!(name.bulk(), STREAM.as_bytes());
    let list = list.items();
    assert!(
        list.len() <= COUNT.min(expected.len()),
        "XREADGROUP: too many entries"
    );
    let mut args: Vec<&[u8]> = ["XACK", STREAM, GROUP].map(str::as_bytes).to_vec();
    for (entry, want) in list.iter().zip(expected) {
        let [id, fields] = entry.items() else {
            panic!("XREADGROUP: unexpected entry {entry:?}");
        };
        let fields: Vec<&[u8]> = fields.items().iter().map(Resp::bulk).collect();
        let wanted = ["customer", &want.customer, "amount", &want.amount].map(str::as_bytes);
        assert_eq!(fields, wanted, "XREADGROUP: not the next entry");
        args.push(id.bulk());
    }
    encode(ack, &args);
    list.len()
}

/// A READ reply (empty when BLOCK timed out): an `[id, 1]` pair per entry
/// taken, at most COUNT and no more than are left. Returns their number.
fn read_outcomes(reply: &Resp<'_>, left: usize) -> usize {
    let pairs = reply.items();
    assert!(pairs.len() <= COUNT.min(left), "READ: too many entries");
    for p in pairs {
        assert!(
            matches!(p.items()[1], Resp::Int(1)),
            "READ: an entry was not applied: {p:?}"
        );
    }
    pairs.len()
}
