//! One contender, one round, one fresh server: prepare, process pipelined
//! (timed), check, then the sequential latency phase.

use crate::contenders::Contender;
use crate::profile::Profiler;
use crate::server::Server;
use crate::wire::{self, Summary};
use crate::workload::{self, Entry};
use redis::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// At most this many extra entries for the latency phase of one contender.
const LATENCY_ENTRY_CAP: usize = 50_000;

pub struct Settings {
    pub n: usize,
    pub latency_calls: usize,
}

/// What one contender measured in one round.
#[derive(Clone, Debug)]
pub struct Sample {
    pub entries_per_s: f64,
    pub server_us_per_entry: f64,
    pub dedupe_bytes_per_entry: Option<f64>,
    pub p50_us: f64,
    pub p99_us: f64,
    pub latency_calls: usize,
    /// Per command other than the top-level one(s): (calls, usec) per entry,
    /// i.e. what ran inside XPROCESS or the script (RedisModule_Call /
    /// redis.call).
    pub inner: BTreeMap<String, (f64, f64)>,
}

/// A command's INFO commandstats line: calls and usec.
pub type CmdStats = BTreeMap<String, (u64, u64)>;

pub fn measure(module: &Path, who: Contender, cfg: &Settings) -> Sample {
    let server = Server::start(module);
    let mut con = server.conn();
    let sha = who.load_script(&mut con);
    let entries = workload::entries(0, cfg.n as u64);
    workload::make_pending(&mut con, server.port(), &entries);
    assert_eq!(workload::pending_count(&mut con), cfg.n as u64);

    let (payload, commands) = encode_all(who, &entries, &sha);
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();
    let profiler = Profiler::start(server.pid(), &who.tag());
    let (wall, summary) = wire::pipeline(server.port(), &payload, commands);
    if let Some(p) = profiler {
        p.stop();
    }
    let stats = commandstats(&mut con);
    check_replies(who, &summary, commands, entries.len());
    who.verify(&mut con, &entries, &who.tag());
    let dedupe = who
        .has_dedupe()
        .then(|| workload::dedupe_bytes_per_entry(&mut con));

    let (p50_us, p99_us, latency_calls) = latency(&mut con, &server, who, cfg, entries, &sha);
    let n = cfg.n as f64;
    Sample {
        entries_per_s: n / wall.as_secs_f64(),
        server_us_per_entry: top_level_usec(&stats, who) as f64 / n,
        dedupe_bytes_per_entry: dedupe,
        p50_us,
        p99_us,
        latency_calls,
        inner: inner_per_entry(&stats, who, n),
    }
}

/// All commands for `entries`, in batches of `who.batch()`.
fn encode_all(who: Contender, entries: &[Entry], sha: &str) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(entries.len() * 128);
    let mut commands = 0;
    for batch in entries.chunks(who.batch()) {
        who.encode_batch(&mut out, batch, sha);
        commands += who.commands_per_batch();
    }
    (out, commands)
}

fn check_replies(who: Contender, s: &Summary, commands: u64, entries: usize) {
    let tag = who.tag();
    assert_eq!(s.replies, commands, "{tag}: reply count");
    assert_eq!(s.errors, 0, "{tag}: error replies");
    if let Some(sum) = who.expected_int_sum(entries) {
        assert_eq!(s.int_sum, sum, "{tag}: not every entry replied 1");
    }
}

/// Sequential calls on fresh pending entries: (p50 us, p99 us, calls).
fn latency(
    con: &mut Connection,
    server: &Server,
    who: Contender,
    cfg: &Settings,
    mut done: Vec<Entry>,
    sha: &str,
) -> (f64, f64, usize) {
    let k = who.batch();
    let calls = cfg.latency_calls.min(LATENCY_ENTRY_CAP / k).max(1);
    let fresh = workload::entries(done.len() as u64, (calls * k) as u64);
    workload::make_pending(con, server.port(), &fresh);
    let units: Vec<(Vec<u8>, u64)> = fresh
        .chunks(k)
        .map(|batch| {
            let mut out = Vec::new();
            who.encode_batch(&mut out, batch, sha);
            (out, who.commands_per_batch())
        })
        .collect();
    let (mut times, summary) = wire::latencies(server.port(), &units);
    check_replies(
        who,
        &summary,
        calls as u64 * who.commands_per_batch(),
        fresh.len(),
    );
    done.extend(fresh);
    let tag = format!("{} (latency phase)", who.tag());
    who.verify(con, &done, &tag);
    times.sort();
    (
        micros(percentile(&times, 0.50)),
        micros(percentile(&times, 0.99)),
        calls,
    )
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// INFO commandstats as command -> (calls, usec).
pub fn commandstats(con: &mut Connection) -> CmdStats {
    let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.parse::<u64>().ok())
            };
            Some((name.to_string(), (field("calls=")?, field("usec=")?)))
        })
        .collect()
}

fn top_level_usec(stats: &CmdStats, who: Contender) -> u64 {
    let usec = |name: &&str| stats.get(*name).map_or(0, |s| s.1);
    who.top_level().iter().map(usec).sum()
}

fn inner_per_entry(stats: &CmdStats, who: Contender, n: f64) -> BTreeMap<String, (f64, f64)> {
    stats
        .iter()
        .filter(|(name, _)| !who.top_level().contains(&name.as_str()))
        .filter(|(name, _)| !name.starts_with("config|") && *name != "info")
        .map(|(name, (calls, usec))| (name.clone(), (*calls as f64 / n, *usec as f64 / n)))
        .collect()
}
