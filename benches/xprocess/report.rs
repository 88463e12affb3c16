//! Medians, spreads and ratios over rounds, as Markdown; BENCHMARKS.md.

use crate::consumer_loop::{Loop, LoopSample};
use crate::contenders::{Call, Contender, Store, Way};
use crate::pipeline::{Pipe, PipeSample};
use crate::python::{PyLoop, PySample};
use crate::run::Sample;
use std::fmt::Write;
use std::path::Path;

/// Everything from this line on in BENCHMARKS.md is kept on regeneration.
pub const MARKER: &str =
    "<!-- Generated above this line by `cargo bench --bench xprocess`; everything below it is kept. -->";
const TIME_HEADING: &str = "## Where the time goes";

/// One contender's samples, one per round.
pub struct Results {
    pub who: Contender,
    pub samples: Vec<Sample>,
}

/// `min`, `median`, `max` of some values.
#[derive(Clone, Copy)]
struct Spread {
    min: f64,
    median: f64,
    max: f64,
}

fn spread(mut v: Vec<f64>) -> Spread {
    assert!(!v.is_empty());
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    Spread {
        min: v[0],
        median,
        max: v[v.len() - 1],
    }
}

fn over(r: &Results, f: impl Fn(&Sample) -> f64) -> Spread {
    over_samples(&r.samples, f)
}

fn over_samples<S>(samples: &[S], f: impl Fn(&S) -> f64) -> Spread {
    spread(samples.iter().map(f).collect())
}

fn fmt_int(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn show(s: Spread, fmt: impl Fn(f64) -> String) -> String {
    format!("{} ({}–{})", fmt(s.median), fmt(s.min), fmt(s.max))
}

fn dec(places: usize) -> impl Fn(f64) -> String {
    move |x| format!("{x:.places$}")
}

/// The main table: medians with (min–max) over rounds.
pub fn results_table(all: &[Results]) -> String {
    let mut t = String::from(
        "| Contender | entries/s | server µs/entry | dedupe bytes/entry | p50 µs/call | p99 µs/call |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for r in all {
        let dedupe = if r.who.has_dedupe() {
            show(over(r, |s| s.dedupe_bytes_per_entry.unwrap()), dec(1))
        } else {
            "–".into()
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} |",
            r.who.name(),
            show(over(r, |s| s.entries_per_s), fmt_int),
            show(over(r, |s| s.server_us_per_entry), dec(2)),
            dedupe,
            show(over(r, |s| s.p50_us), dec(1)),
            show(over(r, |s| s.p99_us), dec(1)),
        );
    }
    t
}

/// The targets: (entries/s vs Lua, vs naive), for 1 and 100 IDs.
fn target(who: Contender) -> Option<(f64, f64)> {
    match who {
        Contender::XProcess(1, Store::Index) => Some((2.5, 1.0)),
        Contender::XProcess(100, Store::Index) => Some((5.0, 1.5)),
        _ => None,
    }
}

/// Per-round ratio `f(a) / f(b)` (rounds pair up: same round, same order).
fn ratio(a: &Results, b: &Results, f: impl Fn(&Sample) -> f64) -> Spread {
    ratio_samples(&a.samples, &b.samples, f)
}

fn ratio_samples<S>(a: &[S], b: &[S], f: impl Fn(&S) -> f64) -> Spread {
    spread(a.iter().zip(b).map(|(x, y)| f(x) / f(y)).collect())
}

fn x(s: Spread) -> String {
    show(s, dec(2)).replacen(' ', "x ", 1)
}

/// Ratios of each XPROCESS variant against the Lua script and the naive
/// pipeline, and whether the targets are met (on the medians).
pub fn ratio_table(all: &[Results]) -> String {
    let find = |c: Contender| all.iter().find(|r| r.who == c);
    let (Some(lua), Some(naive)) = (find(Contender::Lua), find(Contender::Naive)) else {
        return "(ratios need the Lua and naive contenders)\n".into();
    };
    let mut t = String::from(
        "| XPROCESS | entries/s ÷ Lua | entries/s ÷ naive | server µs: Lua ÷ XPROCESS | server µs: naive ÷ XPROCESS | issue target (entries/s) |\n\
         |---|---:|---:|---:|---:|---|\n",
    );
    for r in all
        .iter()
        .filter(|r| matches!(r.who, Contender::XProcess(..)))
    {
        let eps = |s: &Sample| s.entries_per_s;
        let us = |s: &Sample| s.server_us_per_entry;
        let (vs_lua, vs_naive) = (ratio(r, lua, eps), ratio(r, naive, eps));
        let verdict = match target(r.who) {
            Some((l, n)) => {
                let ok = vs_lua.median >= l && vs_naive.median >= n;
                let word = if ok { "**met**" } else { "**not met**" };
                format!("≥{l}x Lua, ≥{n}x naive: {word}")
            }
            None => "–".into(),
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {verdict} |",
            r.who.name(),
            x(vs_lua),
            x(vs_naive),
            x(ratio(lua, r, us)),
            x(ratio(naive, r, us)),
        );
    }
    t
}

/// Commands that ran inside the top-level command, per entry (medians).
pub fn inner_table(all: &[Results]) -> String {
    let mut t = String::from(
        "| Contender | inside it, per entry: command calls / µs (median) | total inner µs/entry |\n\
         |---|---|---:|\n",
    );
    let with_inner = all.iter().filter(|r| {
        matches!(
            r.who,
            Contender::XProcess(..)
                | Contender::Lua
                | Contender::NoEffect
                | Contender::Effect(_, Way::XProcess | Way::Lua)
                | Contender::Fcall(Call::XProcess(_) | Call::Lua)
        )
    });
    for r in with_inner {
        t += &inner_row(r);
    }
    t
}

/// The kept tail of an existing BENCHMARKS.md: from the marker line, else
/// from the "Where the time goes" heading, else a fresh section.
pub fn kept_tail(path: &Path) -> String {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    if let Some(at) = old.find(MARKER) {
        return old[at..].to_string();
    }
    let section = match old.find(TIME_HEADING) {
        Some(at) => old[at..].to_string(),
        None => format!(
            "{TIME_HEADING}\n\n_To be filled in by the module author: a perf or callgrind \
             profile of XPROCESS (1 and 100 IDs per call) and what the time is spent on. \
             To profile the timed phase only: `BENCH_ONLY=xprocess1 BENCH_ROUNDS=1 \
             BENCH_PROFILE='perf record --call-graph dwarf -p {{pid}} -o perf-{{tag}}.data' \
             cargo bench --bench xprocess`._\n"
        ),
    };
    format!("{MARKER}\n\n{section}")
}

fn inner_row(r: &Results) -> String {
    let median = |name: &str, usec: bool| {
        let v = |s: &Sample| {
            let c = s.inner.get(name).copied().unwrap_or_default();
            if usec {
                c.1
            } else {
                c.0
            }
        };
        over(r, v).median
    };
    let cells: Vec<String> = r.samples[0]
        .inner
        .keys()
        .map(|n| format!("{n} {:.3} / {:.2}", median(n, false), median(n, true)))
        .collect();
    let cells = if cells.is_empty() {
        "(none)".to_string()
    } else {
        cells.join("; ")
    };
    let total = over(r, |s| s.inner.values().map(|c| c.1).sum());
    format!("| {} | {cells} | {:.2} |\n", r.who.name(), total.median)
}

/// One consumer loop's samples, one per round.
pub struct LoopResults {
    pub who: Loop,
    pub samples: Vec<LoopSample>,
}

impl LoopResults {
    fn median(&self, f: impl Fn(&LoopSample) -> f64) -> f64 {
        over_samples(&self.samples, f).median
    }

    fn over(&self, f: impl Fn(&LoopSample) -> f64) -> Spread {
        over_samples(&self.samples, f)
    }

    /// Median µs per entry in the top-level commands.
    fn command_us(&self) -> f64 {
        self.median(|s| s.command_us(self.who))
    }

    /// Median (calls, µs) per entry of one command.
    fn command(&self, name: &str) -> (f64, f64) {
        let get = |s: &LoopSample| s.commands.get(name).copied().unwrap_or_default();
        (self.median(|s| get(s).0), self.median(|s| get(s).1))
    }

    /// Commands that ran inside the top-level ones, by name.
    fn inner(&self) -> Vec<String> {
        let mut names: Vec<String> = self.samples[0]
            .commands
            .keys()
            .filter(|n| !self.who.top_level().contains(&n.as_str()))
            .cloned()
            .collect();
        names.sort();
        names
    }
}

/// The loop results: medians with (min–max) over rounds.
pub fn loop_table(all: &[LoopResults]) -> String {
    let mut t = String::from(
        "| Loop | entries/s | wall µs/entry | server CPU µs/entry | of which in commands | client CPU µs/entry | server waiting for a CPU µs/entry | requests per 100 entries |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in all {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} |",
            r.who.name(),
            show(r.over(|s| s.entries_per_s), fmt_int),
            show(r.over(|s| s.wall_us), dec(2)),
            show(r.over(|s| s.server_cpu_us), dec(2)),
            show(r.over(|s| s.command_us(r.who)), dec(2)),
            show(r.over(|s| s.client_cpu_us), dec(2)),
            show(r.over(|s| s.server_wait_us), dec(2)),
            r.median(|s| s.trips_per_100),
        );
    }
    t
}

/// The READ loops' target against the at-least-once floor, in entries/s,
/// with either client.
const READ_VS_FLOOR: f64 = 1.5;

/// Per-round ratios against the Lua loop and the at-least-once floor, and
/// the READ loops' targets (on the medians). Without the Lua loop (a
/// BENCH_ONLY run) its columns are empty.
pub fn loop_ratio_table(all: &[LoopResults]) -> String {
    let find = |w: Loop| all.iter().find(|r| r.who == w);
    let Some(floor) = find(Loop::Ack) else {
        return "(ratios need the loop-ack loop)\n".into();
    };
    let lua = find(Loop::Lua);
    let mut t = String::from(
        "| Loop | entries/s ÷ Lua loop | entries/s ÷ floor | server CPU/entry: Lua loop ÷ it | server CPU/entry: floor ÷ it | target (entries/s) |\n\
         |---|---:|---:|---:|---:|---|\n",
    );
    let eps = |s: &LoopSample| s.entries_per_s;
    let cpu = |s: &LoopSample| s.server_cpu_us;
    for r in all.iter().filter(|r| r.who != Loop::Lua) {
        let vs_lua = lua.map(|lua| ratio_samples(&r.samples, &lua.samples, eps));
        let vs_floor = ratio_samples(&r.samples, &floor.samples, eps);
        let verdict = if matches!(r.who, Loop::Read | Loop::ReadCounts) {
            let word = |ok: bool| if ok { "**met**" } else { "**not met**" };
            let floor = format!(
                "≥{READ_VS_FLOOR}x floor: {}",
                word(vs_floor.median >= READ_VS_FLOOR)
            );
            match vs_lua {
                Some(l) => format!("≥10x Lua loop: {}; {floor}", word(l.median >= 10.0)),
                None => floor,
            }
        } else {
            "–".into()
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {verdict} |",
            r.who.name(),
            vs_lua.map_or("–".into(), x),
            x(vs_floor),
            lua.map_or("–".into(), |l| x(ratio_samples(
                &l.samples, &r.samples, cpu
            ))),
            x(ratio_samples(&floor.samples, &r.samples, cpu)),
        );
    }
    t
}

/// INFO commandstats per entry of every command of each loop (medians).
pub fn loop_commands_table(all: &[LoopResults]) -> String {
    let mut t = String::from(
        "| Loop | commands sent, per entry: calls / µs | inside them, per entry: calls / µs |\n\
         |---|---|---|\n",
    );
    for r in all {
        let cell = |names: Vec<String>| {
            let cells: Vec<String> = names
                .iter()
                .map(|n| {
                    let (calls, us) = r.command(n);
                    format!("{n} {calls:.3} / {us:.2}")
                })
                .collect();
            if cells.is_empty() {
                "(none)".to_string()
            } else {
                cells.join("; ")
            }
        };
        let top = r.who.top_level().iter().map(|s| s.to_string()).collect();
        let _ = writeln!(
            t,
            "| {} | {} | {} |",
            r.who.name(),
            cell(top),
            cell(r.inner())
        );
    }
    t
}

/// "Where the time goes in the loop": the medians above, per loop, in words.
pub fn loop_time_text(all: &[LoopResults]) -> String {
    let mut t = String::from(
        "Per entry, medians over rounds, in µs. *Wall* is what the client waited; the \
         server's main thread ran *server* of it, *commands* inside the commands themselves \
         (INFO commandstats) and the difference outside them (reading and parsing requests, \
         writing replies, the event loop); the client's thread ran *client* (encoding \
         requests, parsing and checking replies); for the *rest* of the wall time neither \
         ran (loopback wake-ups and scheduling; *waiting* is how long the server was \
         runnable without a CPU). Instructions per entry of the same loops, which do not \
         depend on the machine's load: `scripts/bench-callgrind.sh loop` (below, \
         \"The consumer loop (READ), callgrind\").\n\n",
    );
    for r in all {
        let wall = r.median(|s| s.wall_us);
        let server = r.median(|s| s.server_cpu_us);
        let client = r.median(|s| s.client_cpu_us);
        let commands = r.command_us();
        let parts: Vec<String> = r
            .who
            .top_level()
            .iter()
            .map(|c| format!("{} {:.2}", c.to_uppercase(), r.command(c).1))
            .collect();
        let inner: Vec<String> = r
            .inner()
            .iter()
            .map(|c| (c, r.command(c).1))
            .filter(|(_, us)| *us >= 0.005)
            .map(|(c, us)| format!("{} {us:.2}", c.to_uppercase()))
            .collect();
        let inner = if inner.is_empty() {
            String::new()
        } else {
            format!(
                "; inside them {:.2}: {}",
                r.inner().iter().map(|c| r.command(c).1).sum::<f64>(),
                inner.join(", ")
            )
        };
        let _ = writeln!(
            t,
            "- **{}** ({:.2} requests per 100 entries): wall {wall:.2}; server {server:.2}, \
             commands {commands:.2} ({}{inner}), outside them {:.2}; client {client:.2}; \
             rest {:.2}; waiting {:.2}.",
            r.who.name(),
            r.median(|s| s.trips_per_100),
            parts.join(", "),
            server - commands,
            wall - server - client,
            r.median(|s| s.server_wait_us),
        );
    }
    let find = |w: Loop| all.iter().find(|r| r.who == w);
    let (Some(read), Some(lua), Some(ids), Some(floor)) = (
        find(Loop::Read),
        find(Loop::Lua),
        find(Loop::Ids),
        find(Loop::Ack),
    ) else {
        return t;
    };
    let cpu = |r: &LoopResults| r.median(|s| s.server_cpu_us);
    let client = |r: &LoopResults| r.median(|s| s.client_cpu_us);
    let wall = |r: &LoopResults| r.median(|s| s.wall_us);
    let eps = |r: &LoopResults| r.median(|s| s.entries_per_s);
    // XPROCESS's own work: its µs less the commands it ran inside.
    let own = |r: &LoopResults| {
        r.command("xprocess").1 - r.inner().iter().map(|c| r.command(c).1).sum::<f64>()
    };
    let lua_inner: f64 = lua.inner().iter().map(|c| lua.command(c).1).sum();
    let _ = write!(
        t,
        "\nThe READ loop against the others, per entry:\n\n\
         - Lua loop: server {:.2} against {:.2} ({:.2}x less); the script's EVALSHA alone \
         takes {:.2}, of which its redis.calls {lua_inner:.2} (XRANGE {:.2}); client {:.2} \
         against {:.2}.\n\
         - IDS loop: XPROCESS's own work (its µs less the commands it runs inside) {:.2} for \
         READ against {:.2} for IDS; the XREADGROUP inside READ {:.2} against the IDS loop's \
         own {:.2}; client {:.2} against {:.2}.\n\
         - At-least-once floor: server {:.2} against {:.2} ({:+.2}), client {:.2} against \
         {:.2} ({:+.2}), wall {:.2} against {:.2} ({:+.2}).\n\
         - 10x the Lua loop is {} entries/s, {:.2} µs of wall time per entry; the floor, \
         which applies nothing, does {} entries/s ({:.2}x the Lua loop).\n",
        cpu(read),
        cpu(lua),
        cpu(lua) / cpu(read),
        lua.command("evalsha").1,
        lua.command("xrange").1,
        client(read),
        client(lua),
        own(read),
        own(ids),
        read.command("xreadgroup").1,
        ids.command("xreadgroup").1,
        client(read),
        client(ids),
        cpu(read),
        cpu(floor),
        cpu(read) - cpu(floor),
        client(read),
        client(floor),
        client(read) - client(floor),
        wall(read),
        wall(floor),
        wall(read) - wall(floor),
        fmt_int(10.0 * eps(lua)),
        1e6 / (10.0 * eps(lua)),
        fmt_int(eps(floor)),
        eps(floor) / eps(lua),
    );
    t
}

/// One pipeline's samples, one per round.
pub struct PipeResults {
    pub who: Pipe,
    pub samples: Vec<PipeSample>,
}

impl PipeResults {
    fn over(&self, f: impl Fn(&PipeSample) -> f64) -> Spread {
        over_samples(&self.samples, f)
    }
}

/// The pipeline results: medians with (min–max) over rounds.
pub fn pipe_table(all: &[PipeResults], n: usize) -> String {
    let mut t = String::from(
        "| Consumer | entries/s (all applied) | all applied, ms | producer's last reply, ms | producer entries/s | server CPU µs/entry | of which XADD | of which the consumer's commands | server waiting for a CPU µs/entry | consumer requests per 100 entries |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in all {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.who.name(),
            show(r.over(|s| s.entries_per_s), fmt_int),
            show(r.over(|s| s.wall_ms), dec(1)),
            show(r.over(|s| s.producer_ms), dec(1)),
            show(r.over(|s| n as f64 * 1e3 / s.producer_ms), fmt_int),
            show(r.over(|s| s.server_cpu_us), dec(2)),
            show(r.over(|s| s.xadd_us), dec(2)),
            show(r.over(|s| s.consumer_us), dec(2)),
            show(r.over(|s| s.server_wait_us), dec(2)),
            show(r.over(|s| s.trips_per_100), dec(1)),
        );
    }
    t
}

/// Per-round ratios against the floor pipeline, and the standing
/// processor's target (on the median).
pub fn pipe_ratio_table(all: &[PipeResults]) -> String {
    let Some(floor) = all.iter().find(|r| r.who == Pipe::Ack) else {
        return "(ratios need the pipe-ack pipeline)\n".into();
    };
    let mut t = String::from(
        "| Consumer | entries/s ÷ floor pipeline | server CPU/entry: floor ÷ it | target (entries/s) |\n\
         |---|---:|---:|---|\n",
    );
    for r in all.iter().filter(|r| r.who != Pipe::Ack) {
        let vs_floor = ratio_samples(&r.samples, &floor.samples, |s| s.entries_per_s);
        let verdict = if r.who == Pipe::Standing {
            let met = vs_floor.median >= 1.0;
            let word = if met { "**met**" } else { "**not met**" };
            format!("≥ 1.0x floor pipeline: {word}")
        } else {
            "–".into()
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {verdict} |",
            r.who.name(),
            x(vs_floor),
            x(ratio_samples(&floor.samples, &r.samples, |s| s.server_cpu_us)),
        );
    }
    t
}

/// One redis-py loop's samples, one per round.
pub struct PyResults {
    pub who: PyLoop,
    pub samples: Vec<PySample>,
}

impl PyResults {
    fn over(&self, f: impl Fn(&PySample) -> f64) -> Spread {
        over_samples(&self.samples, f)
    }
}

/// The redis-py loops: medians with (min–max) over rounds.
pub fn py_table(all: &[PyResults]) -> String {
    let mut t = String::from(
        "| Loop (redis-py) | entries/s | wall µs/entry | server CPU µs/entry | Python CPU µs/entry | server waiting for a CPU µs/entry | requests per 100 entries |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in all {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {:.2} |",
            r.who.name(),
            show(r.over(|s| s.entries_per_s), fmt_int),
            show(r.over(|s| s.wall_us), dec(2)),
            show(r.over(|s| s.server_cpu_us), dec(2)),
            show(r.over(|s| s.client_cpu_us), dec(2)),
            show(r.over(|s| s.server_wait_us), dec(2)),
            r.over(|s| s.trips_per_100).median,
        );
    }
    t
}

/// Per-round ratios against the redis-py floor and the redis-py Lua loop
/// (its columns empty without it).
pub fn py_ratio_table(all: &[PyResults]) -> String {
    let find = |w: PyLoop| all.iter().find(|r| r.who == w);
    let Some(floor) = find(PyLoop::Ack) else {
        return "(ratios need the py-loop-ack loop)\n".into();
    };
    let lua = find(PyLoop::Lua);
    let mut t = String::from(
        "| Loop (redis-py) | entries/s ÷ py floor | entries/s ÷ py Lua loop | server CPU/entry: py floor ÷ it | target (entries/s) |\n\
         |---|---:|---:|---:|---|\n",
    );
    let eps = |s: &PySample| s.entries_per_s;
    for r in all.iter().filter(|r| r.who != PyLoop::Ack) {
        let vs_floor = ratio_samples(&r.samples, &floor.samples, eps);
        let verdict = match r.who {
            PyLoop::Read | PyLoop::ReadCounts => {
                let met = vs_floor.median >= READ_VS_FLOOR;
                let word = if met { "**met**" } else { "**not met**" };
                format!("≥{READ_VS_FLOOR}x py floor: {word}")
            }
            _ => "–".into(),
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {verdict} |",
            r.who.name(),
            x(vs_floor),
            lua.map_or("–".into(), |l| x(ratio_samples(
                &r.samples, &l.samples, eps
            ))),
            x(ratio_samples(&floor.samples, &r.samples, |s| s.server_cpu_us)),
        );
    }
    t
}
