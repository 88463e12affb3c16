//! Medians, spreads and ratios over rounds, as Markdown; BENCHMARKS.md.

use crate::contenders::{Contender, Store};
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
    spread(r.samples.iter().map(f).collect())
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
    spread(
        a.samples
            .iter()
            .zip(&b.samples)
            .map(|(x, y)| f(x) / f(y))
            .collect(),
    )
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
    let with_inner = all
        .iter()
        .filter(|r| matches!(r.who, Contender::XProcess(..) | Contender::Lua));
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
