//! `cargo bench --bench xprocess`: XPROCESS against the Lua script it
//! replaces, the naive (non-atomic) pipeline and bare XACK, on real
//! redis-server processes. Build the module first: `cargo build --release`.
//!
//! Every round runs every contender on a fresh server (the order rotates
//! from round to round): N pending entries are processed through one
//! pipelined connection (timed: entries/s; INFO commandstats: server µs per
//! entry), the end state is checked (totals, empty PEL, dedupe set), the
//! dedupe set is measured, and then sequential single calls on fresh entries
//! give p50/p99 latency. Then the whole consumer loop, end to end, six
//! ways (consumer_loop.rs); the pipeline, a producer and a consumer at
//! once, three ways (pipeline.rs); and the consumer loop run by redis-py,
//! five ways (python.rs, benches/python/consumer_loop.py), each on a fresh
//! server in every round. Prints Markdown tables and writes BENCHMARKS.md.
//!
//! Environment: BENCH_N (default 100000), BENCH_ROUNDS (5),
//! BENCH_LATENCY_CALLS (2000), BENCH_ONLY (comma-separated tags, e.g.
//! `xprocess1,lua`; then BENCHMARKS.md is only written if BENCH_OUT is set;
//! the effect contenders, `hset100`, `hset-lua`, `hset-native`, the same for
//! `incrby` and `zincrby`, and `noeffect100`, run only when named, or all
//! of them with `effects`, and the FCALL contenders, `fcall1`, `fcall100`,
//! `fcall-lua`, `fcall-native`, or all of them with `fcall`: `make bench`
//! counts their instructions with scripts/bench-callgrind.sh),
//! BENCH_OUT (default BENCHMARKS.md in the repo), XPROCESS_MODULE (default
//! target/release/libxprocess.so), REDIS_SERVER (default redis-server),
//! BENCH_PROFILE (a profiler command run during each timed phase, see
//! profile.rs), BENCH_MEMORY_N (1000000: entries of the memory scenarios,
//! see memory.rs; 0 skips them, as BENCH_ONLY does unless it names `memory`),
//! BENCH_LOOP_N (100000: entries of the consumer loops; 0 skips them, as
//! BENCH_ONLY does unless it names `loop` or a loop's tag: `loop-lua`,
//! `loop-ids`, `loop-read`, `loop-read-counts`, `loop-ack`,
//! `loop-standing`), BENCH_PIPE_N (BENCH_LOOP_N: entries of the
//! pipelines, a producer and a consumer at once, see pipeline.rs; 0 skips
//! them, as BENCH_ONLY does unless it names `pipe` or a pipeline's tag:
//! `pipe-ack`, `pipe-read`, `pipe-standing`), BENCH_PY_N (BENCH_LOOP_N:
//! entries of the consumer loops run by redis-py, see python.rs; 0 skips
//! them, as BENCH_ONLY does unless it names `py` or a loop's tag:
//! `py-loop-lua`, `py-loop-ids`, `py-loop-read`, `py-loop-read-counts`,
//! `py-loop-ack`), BENCH_PYTHON (the Python with redis-py; without it the
//! first of target/bench/venv, target/examples/venv and python3 that
//! imports redis; with none the redis-py rows are skipped with a note).

mod consumer_loop;
mod contenders;
mod machine;
mod memory;
mod pipeline;
mod profile;
mod python;
mod report;
mod run;
mod server;
mod wire;
mod workload;

use consumer_loop::Loop;
use contenders::Contender;
use pipeline::Pipe;
use python::{PyLoop, Python};
use report::{LoopResults, PipeResults, PyResults, Results};
use run::Settings;
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Config {
    settings: Settings,
    memory_n: u64,
    loop_n: usize,
    /// The consumer loops to run (none when loop_n is 0).
    loops: Vec<Loop>,
    pipe_n: usize,
    /// The pipelines to run (none when pipe_n is 0).
    pipes: Vec<Pipe>,
    py_n: usize,
    /// The redis-py loops to run (none when py_n is 0).
    py_loops: Vec<PyLoop>,
    rounds: usize,
    only: Option<Vec<String>>,
    out: Option<PathBuf>,
    module: PathBuf,
}

fn env_num(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        Err(_) => default,
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn config() -> Config {
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let out = match std::env::var_os("BENCH_OUT") {
        Some(p) => Some(PathBuf::from(p)),
        None if only.is_some() => None,
        None => Some(repo().join("BENCHMARKS.md")),
    };
    let module = std::env::var_os("XPROCESS_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/release/libxprocess.so"));
    let memory_n = match &only {
        Some(tags) if !tags.iter().any(|t| t == "memory") => 0,
        _ => env_num("BENCH_MEMORY_N", 1_000_000) as u64,
    };
    let loop_n = env_num("BENCH_LOOP_N", 100_000);
    let loops = consumer_loop::ALL
        .into_iter()
        .filter(|l| match &only {
            Some(tags) => tags.iter().any(|t| t == "loop" || t == l.tag()),
            None => true,
        })
        .filter(|_| loop_n > 0)
        .collect();
    let pipe_n = env_num("BENCH_PIPE_N", loop_n);
    let pipes = pipeline::ALL
        .into_iter()
        .filter(|p| match &only {
            Some(tags) => tags.iter().any(|t| t == "pipe" || t == p.tag()),
            None => true,
        })
        .filter(|_| pipe_n > 0)
        .collect();
    let py_n = env_num("BENCH_PY_N", loop_n);
    let py_loops = python::ALL
        .into_iter()
        .filter(|l| match &only {
            Some(tags) => tags.iter().any(|t| t == "py" || t == l.tag()),
            None => true,
        })
        .filter(|_| py_n > 0)
        .collect();
    Config {
        memory_n,
        loop_n,
        loops,
        pipe_n,
        pipes,
        py_n,
        py_loops,
        settings: Settings {
            n: env_num("BENCH_N", 100_000).max(1),
            latency_calls: env_num("BENCH_LATENCY_CALLS", 2_000).max(1),
        },
        rounds: env_num("BENCH_ROUNDS", 5).max(1),
        only,
        out,
        module,
    }
}

/// A private copy of the module, so a rebuild during the run cannot mix
/// versions across rounds. Removed on drop.
struct ModuleCopy(PathBuf);

impl ModuleCopy {
    fn new(module: &Path) -> ModuleCopy {
        assert!(
            module.is_file(),
            "module not found at {}: run `cargo build --release` first (or set XPROCESS_MODULE)",
            module.display()
        );
        let dir =
            std::env::temp_dir().join(format!("xprocess-bench-{}-module", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create module copy dir");
        let copy = dir.join("libxprocess.so");
        std::fs::copy(module, &copy).expect("copy the module");
        ModuleCopy(copy)
    }
}

impl Drop for ModuleCopy {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The contenders of ALL that BENCH_ONLY names (all without it), then the
/// effect contenders it names (`effects`: all of them; none without it),
/// then the FCALL contenders it names (`fcall`: all of them).
fn contenders(cfg: &Config) -> Vec<Contender> {
    let named = |c: &Contender, all: &str| {
        let o = cfg.only.as_deref().unwrap_or_default();
        o.contains(&c.tag()) || o.iter().any(|t| t == all)
    };
    let chosen: Vec<Contender> = contenders::ALL
        .into_iter()
        .filter(|c| cfg.only.is_none() || named(c, ""))
        .chain(
            contenders::EFFECTS
                .into_iter()
                .filter(|c| named(c, "effects")),
        )
        .chain(contenders::FCALLS.into_iter().filter(|c| named(c, "fcall")))
        .collect();
    assert!(
        !chosen.is_empty()
            || cfg.memory_n > 0
            || !cfg.loops.is_empty()
            || !cfg.pipes.is_empty()
            || !cfg.py_loops.is_empty(),
        "BENCH_ONLY matches no contender"
    );
    chosen
}

/// All rounds; round r starts at contender r (rotation), each on a fresh server.
fn measure_all(cfg: &Config, module: &Path, chosen: &[Contender]) -> Vec<Results> {
    let mut all: Vec<Results> = chosen
        .iter()
        .map(|&who| Results {
            who,
            samples: Vec::new(),
        })
        .collect();
    for round in 0..cfg.rounds {
        for i in 0..all.len() {
            let r = &mut all[(round + i) % chosen.len()];
            let start = Instant::now();
            let s = run::measure(module, r.who, &cfg.settings);
            eprintln!(
                "round {}/{} {:<12} {:>10.0} entries/s {:>6.2} server-us/entry p50 {:>7.1} us  ({:.1}s)",
                round + 1,
                cfg.rounds,
                r.who.tag(),
                s.entries_per_s,
                s.server_us_per_entry,
                s.p50_us,
                start.elapsed().as_secs_f64()
            );
            r.samples.push(s);
        }
    }
    all
}

/// All rounds of the consumer loops, rotating like `measure_all`.
fn measure_loops(cfg: &Config, module: &Path) -> Vec<LoopResults> {
    let mut all: Vec<LoopResults> = cfg
        .loops
        .iter()
        .map(|&who| LoopResults {
            who,
            samples: Vec::new(),
        })
        .collect();
    for round in 0..cfg.rounds {
        for i in 0..all.len() {
            let r = &mut all[(round + i) % cfg.loops.len()];
            let start = Instant::now();
            let s = consumer_loop::measure(module, r.who, cfg.loop_n);
            eprintln!(
                "round {}/{} {:<16} {:>10.0} entries/s {:>6.2} server-cpu-us/entry {:>6.2} in commands  ({:.1}s)",
                round + 1,
                cfg.rounds,
                r.who.tag(),
                s.entries_per_s,
                s.server_cpu_us,
                s.command_us(r.who),
                start.elapsed().as_secs_f64()
            );
            r.samples.push(s);
        }
    }
    all
}

/// All rounds of the pipelines, rotating like `measure_all`.
fn measure_pipes(cfg: &Config, module: &Path) -> Vec<PipeResults> {
    let mut all: Vec<PipeResults> = cfg
        .pipes
        .iter()
        .map(|&who| PipeResults {
            who,
            samples: Vec::new(),
        })
        .collect();
    for round in 0..cfg.rounds {
        for i in 0..all.len() {
            let r = &mut all[(round + i) % cfg.pipes.len()];
            let start = Instant::now();
            let s = pipeline::measure(module, r.who, cfg.pipe_n);
            eprintln!(
                "round {}/{} {:<16} {:>10.0} entries/s producer {:>7.1} ms {:>6.2} server-cpu-us/entry  ({:.1}s)",
                round + 1,
                cfg.rounds,
                r.who.tag(),
                s.entries_per_s,
                s.producer_ms,
                s.server_cpu_us,
                start.elapsed().as_secs_f64()
            );
            r.samples.push(s);
        }
    }
    all
}

/// All rounds of the redis-py loops, rotating like `measure_all`; none
/// without a Python with redis-py.
fn measure_py(cfg: &Config, module: &Path, py: Option<&Python>) -> Vec<PyResults> {
    let Some(py) = py else {
        return Vec::new();
    };
    let mut all: Vec<PyResults> = cfg
        .py_loops
        .iter()
        .map(|&who| PyResults {
            who,
            samples: Vec::new(),
        })
        .collect();
    for round in 0..cfg.rounds {
        for i in 0..all.len() {
            let r = &mut all[(round + i) % cfg.py_loops.len()];
            let start = Instant::now();
            let s = python::measure(module, py, repo(), r.who, cfg.py_n);
            eprintln!(
                "round {}/{} {:<20} {:>10.0} entries/s {:>6.2} server-cpu-us/entry {:>6.2} python-cpu-us/entry  ({:.1}s)",
                round + 1,
                cfg.rounds,
                r.who.tag(),
                s.entries_per_s,
                s.server_cpu_us,
                s.client_cpu_us,
                start.elapsed().as_secs_f64()
            );
            r.samples.push(s);
        }
    }
    all
}

/// The redis-py section: its tables, or why its rows were skipped.
fn py_section(cfg: &Config, py: &Option<Result<Python, String>>, loops: &[PyResults]) -> String {
    let Some(py) = py else {
        return String::new();
    };
    let head = format!(
        "## The consumer loop with redis-py\n\n\
         The loops above as a Python worker runs them: benches/python/consumer_loop.py \
         with redis-py, one connection, each request waiting for its reply, until the \
         server has nothing left; N = {} new entries in the stream of a fresh server per \
         loop and round (XADDed, the group created at `$`, not timed). The floor: \
         `xreadgroup(count={count})` then `xack` of the IDs read; Lua: `xreadgroup`, then \
         `evalsha` of the same script per entry in one redis-py pipeline; IDS: \
         `xreadgroup`, then `XPROCESS ... IDS <k> <id>...`; READ: `XPROCESS ... CONSUMER \
         worker-1 HINCRBY totals $customer $amount READ COUNT {count}` (with and without \
         `REPLY COUNTS`) until the empty array. The script checks every reply (every \
         entry 1, or applied = the entries taken; XACK acked all) and times the loop \
         itself (started through its stdin once connected, the script loaded); then the \
         end state is checked as above. Server CPU is its main thread over the loop; \
         *Python CPU* the script's thread (redis-py encoding and parsing, the checks). \
         Rounds: {}, the order rotating; median (min–max) over rounds.\n\n",
        cfg.py_n,
        cfg.rounds,
        count = consumer_loop::COUNT,
    );
    match py {
        Err(why) => format!("{head}_Skipped: {why}._\n\n"),
        Ok(py) => format!(
            "{head}Client: {} (`{}`).\n\n{}\n\
             ### Ratios of the redis-py loops\n\n\
             Per round, median (min–max) over rounds.\n\n{}\n",
            py.describe,
            py.exe_name(),
            report::py_table(loops),
            report::py_ratio_table(loops),
        ),
    }
}

fn pipe_section(cfg: &Config, pipes: &[PipeResults]) -> String {
    if pipes.is_empty() {
        return String::new();
    }
    format!(
        "## The pipeline: a producer and a consumer at once\n\n\
         N = {n} entries produced while they are consumed (benches/xprocess/pipeline.rs). \
         A fresh server per consumer and round, the group created at `$` (`MKSTREAM`) \
         before the clock; for the standing processor, `XPROCESS.DEFINE payments billing \
         HINCRBY totals $customer $amount` and `XPROCESS.START payments billing CONSUMER \
         worker-1 COUNT {count}` before the clock too. At the start instant a producer on \
         its own connection pipelines the N XADDs (`*` IDs, the entries of the tables \
         above) as fast as it can: one thread writes them {chunk} commands at a time while \
         another reads the replies. Meanwhile the consumer, on another connection:\n\n\
         - at-least-once floor: `XREADGROUP GROUP billing worker-1 COUNT {count} BLOCK 1 \
         STREAMS payments >`, then one XACK of the IDs read, in a loop;\n\
         - READ worker: `XPROCESS payments billing CONSUMER worker-1 HINCRBY totals \
         $customer $amount READ COUNT {count} BLOCK 1` in a loop;\n\
         - standing processor: no worker; the client asks XINFO GROUPS every millisecond \
         whether entries-read is N and nothing is pending.\n\n\
         Timed from the start instant until every entry is applied (acked for the floor): \
         the worker's own count of the entries it got applied or acked, XINFO GROUPS for \
         the standing processor. entries/s is N over that time; *producer's last reply* is \
         the producer's own time to get every XADD's reply. A consumer at the head of a \
         growing stream takes what is there, often fewer than {count} entries per request, \
         so this measures keeping up with arrivals, not draining a backlog (the consumer \
         loops above). Every reply is checked (XADD no error; XREADGROUP the next entries' \
         fields in order, XACK acked them all; READ every entry replied 1), then the end \
         state (totals per customer equal the sums, PEL empty, N IDs in the dedupe store, \
         none for the floor). Server CPU is the server's main thread over the timed phase \
         (`/proc/<pid>/task/<pid>/schedstat`), the XADDs included; *of which* are INFO \
         commandstats usec (the consumer's: XREADGROUP and XACK; XPROCESS; the standing \
         processor's XPROCESS batches and the XINFO polls). The producer's two threads, \
         the consumer and the server share the machine's cores. Rounds: {rounds}, each \
         consumer on a fresh server in every round, the order rotating; median (min–max) \
         over rounds. Instructions per entry: `scripts/bench-callgrind.sh pipe`.\n\n{}\n\
         ### Ratios of the pipelines\n\n\
         Per round, median (min–max) over rounds.\n\n{}\n",
        report::pipe_table(pipes, cfg.pipe_n),
        report::pipe_ratio_table(pipes),
        n = cfg.pipe_n,
        count = consumer_loop::COUNT,
        chunk = pipeline::CHUNK,
        rounds = cfg.rounds,
    )
}

fn loop_section(cfg: &Config, loops: &[LoopResults]) -> String {
    if loops.is_empty() {
        return String::new();
    }
    format!(
        "## The consumer loop, end to end\n\n\
         The whole worker loop over N = {} entries (benches/xprocess/consumer_loop.rs): \
         they are XADDed to the stream of a fresh server, the group created at `$` (not \
         timed); then one client on one connection takes and processes them until the \
         server has nothing left, each request waiting for its reply, as a worker does. \
         Effect `HINCRBY totals $customer $amount`, the Lua script and the checks of the \
         tables above.\n\n\
         - Lua loop (the seed's pattern): XREADGROUP COUNT {count}, then EVALSHA of the \
         script once per entry read, the {count} calls in one write.\n\
         - IDS loop (today's workers): XREADGROUP COUNT {count}, then one \
         `XPROCESS payments billing HINCRBY totals $customer $amount IDS <k> <id>...` of the \
         IDs read (the index store, the default).\n\
         - READ loop: `XPROCESS payments billing CONSUMER worker-1 HINCRBY totals $customer \
         $amount READ COUNT {count}` until it replies an empty array.\n\
         - READ loop, `REPLY COUNTS`: the same call ending in `REPLY COUNTS`: each reply \
         is the numbers of entries applied, duplicate, dead-lettered and failed (and the \
         failed ones' errors) instead of an `[id, outcome]` pair per entry; the client \
         checks that all the entries it took were applied (the next {count}, or what is \
         left) and stops at the same empty array.\n\
         - At-least-once floor: XREADGROUP COUNT {count}, then one XACK of the IDs read; no \
         effect, no dedupe.\n\n\
         Timed from the first request to the reply that says nothing is left (a null \
         XREADGROUP, an empty READ); entries/s is N over that time. Every reply is checked \
         as it arrives (the stream's next IDs in order, at most {count}; every entry replied \
         1; XACK acked all), then the end state (totals per customer equal the sums, PEL \
         empty, N IDs in the dedupe store, none for the floor). CPU times are the server's \
         main thread and the client's thread over the timed phase, user and kernel time \
         (so the socket system calls are in them; `/proc/<pid>/task/<tid>/schedstat`); \
         *of which in commands* is INFO commandstats \
         usec of the commands the client sent, reset right before the phase. Rounds: {}, \
         each loop on a fresh server in every round, the order rotating; median (min–max) \
         over rounds.\n\n{}\n\
         ### Ratios of the loops\n\n\
         Per round, median (min–max) over rounds.\n\n{}\n\
         ### Commands in the loop\n\n\
         INFO commandstats over the timed phase, per entry; the commands inside are \
         RedisModule_Call (XPROCESS) and redis.call (the script).\n\n{}\n\
         ### Where the time goes in the loop\n\n{}\n",
        cfg.loop_n,
        cfg.rounds,
        report::loop_table(loops),
        report::loop_ratio_table(loops),
        report::loop_commands_table(loops),
        report::loop_time_text(loops),
        count = consumer_loop::COUNT,
    )
}

fn setup_text(cfg: &Config, all: &[Results]) -> String {
    let mut s: String = machine::describe(&cfg.module, repo())
        .into_iter()
        .map(|(k, v)| format!("- {k}: {v}\n"))
        .collect();
    let lat: Vec<String> = all
        .iter()
        .map(|r| format!("{} for {}", r.samples[0].latency_calls, r.who.tag()))
        .collect();
    s += &format!(
        "- Workload: N = {} pending entries per contender and round (fields `customer`, one of \
         100, and `amount`), all delivered to one consumer by XREADGROUP; effect \
         `HINCRBY totals $customer $amount`, dedupe key `{}`: an index (`STORE INDEX`, the \
         default) or a Set (`STORE SET`, as the Lua script and the naive pipeline keep it).\n\
         - Rounds: {}; each contender runs on a fresh redis-server (`--save \"\" --appendonly no`) \
         in every round, the order rotating from round to round. Tables show the median and \
         (min–max) over rounds.\n\
         - Client: raw RESP over one TCP connection; one thread writes all commands while another \
         reads the replies (like `redis-cli --pipe`). entries/s is N over the wall time of that \
         phase. Server µs/entry is INFO commandstats usec of the top-level command(s) only \
         (xprocess; evalsha; hincrby+sadd+xack; xack) over N, reset right before the phase.\n\
         - Dedupe bytes/entry: `MEMORY USAGE <key> SAMPLES 0` / IDs recorded (SCARD of a Set, \
         `recorded` of XPROCESS.INFO for an index) after the phase.\n\
         - Latency: sequential calls, one in flight, on fresh pending entries, per call (a call \
         covers k entries for XPROCESS with k IDs; for the naive pipeline a call is the three \
         commands of one entry in one write). Calls: {}.\n\
         - Every phase is checked: no error replies, every entry replied 1, totals per customer \
         equal the sums of the amounts, PEL empty, one dedupe member per entry.\n",
        cfg.settings.n,
        workload::DEDUPE,
        cfg.rounds,
        lat.join(", ")
    );
    s
}

fn document(
    cfg: &Config,
    all: &[Results],
    loops: &[LoopResults],
    pipes: &[PipeResults],
    py: (&Option<Result<Python, String>>, &[PyResults]),
    memory: &[memory::Figure],
    keys: Option<&memory::KeyFigure>,
) -> String {
    let memory = if memory.is_empty() {
        String::new()
    } else {
        format!(
            "## Memory of the dedupe stores\n\n\
             `MEMORY USAGE <dedupe key> SAMPLES 0` after the work (benches/xprocess/memory.rs), \
             effect `HINCRBY t total $amount`, entries `1-0` to `N-0`; a failing entry lacks \
             `amount`. Sizes, so one run says it all.\n\n{}\n{}",
            memory::table(memory),
            keys.map_or(String::new(), |k| format!(
                "Business keys (`KEY`, issue #10): the index's `MEMORY USAGE` with and \
                 without them after the same work.\n\n{}\n",
                memory::key_table(k)
            )),
        )
    };
    format!(
        "# Benchmarks\n\n\
         Generated by `cargo bench --bench xprocess` (benches/xprocess/); regenerate with \
         `cargo build --release && cargo bench --bench xprocess`.\n\n\
         ## Setup\n\n{}\n\
         ## Results\n\n{}\n\
         ## Ratios\n\n\
         Per round (contenders of one round ran back to back), median (min–max) over rounds. \
         Higher is better for XPROCESS everywhere.\n\n{}\n\
         {}\
         {}\
         {}\
         {}\
         ## Commands run inside the top-level command\n\n\
         From INFO commandstats during the pipelined phase: RedisModule_Call (XPROCESS) or \
         redis.call (Lua) invocations per entry and their own µs per entry. The rest of the \
         top-level µs is the command's own overhead.\n\n{}\n",
        setup_text(cfg, all),
        report::results_table(all),
        report::ratio_table(all),
        loop_section(cfg, loops),
        pipe_section(cfg, pipes),
        py_section(cfg, py.0, py.1),
        memory,
        report::inner_table(all),
    )
}

fn main() {
    machine::note_start();
    let cfg = config();
    for stale in machine::stale_sources(&cfg.module, repo()) {
        eprintln!("warning: {stale} is newer than the module: run `cargo build --release`?");
    }
    let module = ModuleCopy::new(&cfg.module);
    let chosen = contenders(&cfg);
    let started = Instant::now();
    let all = measure_all(&cfg, &module.0, &chosen);
    let loops = measure_loops(&cfg, &module.0);
    let pipes = measure_pipes(&cfg, &module.0);
    let py = (!cfg.py_loops.is_empty()).then(|| python::find(repo()));
    if let Some(Err(why)) = &py {
        eprintln!("warning: the redis-py loops are skipped: {why}");
    }
    let py_loops = measure_py(&cfg, &module.0, py.as_ref().and_then(|p| p.as_ref().ok()));
    let memory = match cfg.memory_n {
        0 => Vec::new(),
        n => memory::measure(&module.0, n.max(10_000)),
    };
    let keys =
        (cfg.memory_n > 0).then(|| memory::business_keys(&module.0, cfg.memory_n.max(10_000)));
    let doc = document(
        &cfg,
        &all,
        &loops,
        &pipes,
        (&py, &py_loops),
        &memory,
        keys.as_ref(),
    );
    println!("{doc}");
    eprintln!("total {:.0}s", started.elapsed().as_secs_f64());
    if let Some(out) = &cfg.out {
        let text = format!("{doc}{}", report::kept_tail(out));
        std::fs::write(out, text).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
        eprintln!("wrote {}", out.display());
    }
}
