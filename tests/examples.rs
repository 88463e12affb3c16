//! The consumer workers in `examples/` (Python, Node.js, Rust, redis-cli),
//! run as child processes against a live server with the module.
//!
//! Each worker gets the same scenario: entries left pending by a dead
//! consumer (XAUTOCLAIM must take them over), one entry already processed
//! (XPROCESS must answer `0` for it), one entry whose amount is not a number
//! (a per-entry error: logged and left pending) and new entries. The worker
//! runs until idle; then the totals, the receipts, the PEL and the worker's
//! summary line are checked. A second test stops a running worker with
//! SIGTERM.
//!
//! A test is skipped (with a message) only when its language's toolchain is
//! missing. Dependencies are not installed here (no network at test time):
//! `make examples-deps` puts them in `examples/node/node_modules`,
//! `target/examples/venv` and the cargo cache; a missing one fails the test
//! with that hint.

mod common;

use common::*;
use redis::Connection;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const STREAM: &str = "payments";
const GROUP: &str = "billing";
const DEPS_HINT: &str = "run `make examples-deps` first";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The command line that runs a worker, or `None` (after printing why) when
/// the toolchain is missing.
fn worker(lang: &str) -> Option<Vec<String>> {
    let skip = |tool: &str| {
        // Straight to stderr, past the test harness's output capture.
        let msg = format!("SKIP examples/{lang}: `{tool}` is not installed\n");
        let _ = std::io::stderr().write_all(msg.as_bytes());
        None
    };
    let path = |p: &str| repo().join(p).display().to_string();
    match lang {
        "python" => {
            let venv = repo().join("target/examples/venv/bin/python");
            let python = if venv.exists() {
                venv.display().to_string()
            } else if have("python3") {
                "python3".to_string()
            } else {
                return skip("python3");
            };
            let import = Command::new(&python).args(["-c", "import redis"]).status();
            assert!(
                import.is_ok_and(|s| s.success()),
                "{python} cannot import redis-py: {DEPS_HINT}"
            );
            Some(vec![python, path("examples/python/worker.py")])
        }
        "node" => {
            if !have("node") || !have("npm") {
                return skip("node/npm");
            }
            assert!(
                repo().join("examples/node/node_modules/ioredis").is_dir(),
                "examples/node/node_modules has no ioredis: {DEPS_HINT}"
            );
            Some(vec!["node".into(), path("examples/node/worker.js")])
        }
        "rust" => Some(vec![build_rust_worker().display().to_string()]),
        "redis-cli" => {
            if !have("redis-cli") || !have("bash") {
                return skip("redis-cli/bash");
            }
            Some(vec!["bash".into(), path("examples/redis-cli/session.sh")])
        }
        other => panic!("unknown example {other}"),
    }
}

/// `cargo build` of examples/rust (its own package), offline: the crates come
/// from the cargo cache that `make examples-deps` (cargo fetch) filled.
fn build_rust_worker() -> PathBuf {
    let target = repo().join("target/examples/rust");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--locked",
            "--offline",
            "--manifest-path",
        ])
        .arg(repo().join("examples/rust/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building examples/rust failed ({DEPS_HINT}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug/xprocess-worker")
}

/// A worker process, its output in files of the server's temp dir.
struct Worker {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Worker {
    fn start(cmd: &[String], server: &Server, consumer: &str, extra: &[&str]) -> Worker {
        let out = server.dir().join(format!("{consumer}.out"));
        let err = server.dir().join(format!("{consumer}.err"));
        let child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .args(["--port", &server.port().to_string(), "--consumer", consumer])
            .args(["--stream", STREAM, "--group", GROUP, "--block-ms", "100"])
            .args(extra)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        Worker { child, out, err }
    }

    /// Wait for the exit (killing the worker after `limit`); returns the
    /// status, stdout and stderr.
    fn wait(mut self, limit: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("worker still running after {limit:?}:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        (status, read(&self.out), read(&self.err))
    }

    fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!("stdout:\n{}stderr:\n{}", read(&self.out), read(&self.err))
    }

    /// Wait for the worker's first log line, printed once its signal
    /// handlers are installed and it is connected.
    fn wait_ready(&self) {
        wait_until("the worker's `consuming` line", || {
            std::fs::read_to_string(&self.err).is_ok_and(|e| e.contains(": consuming "))
        });
    }

    fn signal(&self, sig: &str) {
        // The shell's kill builtin: std has no way to send a signal.
        let kill = format!("kill -s {sig} {}", self.child.id());
        let status = Command::new("sh").args(["-c", &kill]).status();
        assert!(status.is_ok_and(|s| s.success()), "{kill}");
    }
}

/// The numbers of the worker's last line, `stopped: applied=N duplicates=N ...`.
fn summary(stdout: &str) -> BTreeMap<String, u64> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("stopped:"))
        .unwrap_or_else(|| panic!("no `stopped:` line in stdout:\n{stdout}"));
    line["stopped:".len()..]
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("name=value");
            (k.to_string(), v.parse().expect("a number"))
        })
        .collect()
}

/// What the scenario must end with.
struct Expected {
    /// Customer -> sum of the valid amounts.
    totals: BTreeMap<String, i64>,
    /// Entry ID -> amount, for every valid entry: one receipt each.
    receipts: BTreeMap<String, String>,
    /// The entry with a bad amount, left pending.
    bad: String,
    /// Entries the dead consumer held.
    dead: usize,
}

/// Add `n` entries, entry 13 with a bad amount; returns the IDs in order
/// and what the workers must end with.
fn produce(con: &mut Connection, n: i64) -> (Vec<String>, Expected) {
    let mut want = Expected {
        totals: BTreeMap::new(),
        receipts: BTreeMap::new(),
        bad: String::new(),
        dead: 0,
    };
    let mut ids = Vec::new();
    for i in 0..n {
        let customer = format!("c{}", i % 4);
        let amount = match i {
            13 => "x".to_string(),
            _ => (i * 7 + 1).to_string(),
        };
        let fields = [("customer", customer.as_str()), ("amount", &amount)];
        let id = xadd_id(con, STREAM, "*", &fields);
        ids.push(id.clone());
        if i == 13 {
            want.bad = id;
        } else {
            *want.totals.entry(customer).or_insert(0) += i * 7 + 1;
            want.receipts.insert(id, amount);
        }
    }
    (ids, want)
}

fn scenario(con: &mut Connection) -> Expected {
    q::<String>(con, &["XGROUP", "CREATE", STREAM, GROUP, "0", "MKSTREAM"]);
    let (ids, mut want) = produce(con, 30);
    // A consumer that read the first 8 entries and died: only XAUTOCLAIM
    // gets them back.
    want.dead = 8;
    let args = [
        "XREADGROUP",
        "GROUP",
        GROUP,
        "dead",
        "COUNT",
        "8",
        "STREAMS",
        STREAM,
        ">",
    ];
    let read: redis::Value = q(con, &args);
    assert!(matches!(read, redis::Value::Array(_)), "{read:?}");
    // Entry 20 is processed before any worker sees it: the worker gets `0`.
    let done = ids[20].clone();
    #[rustfmt::skip]
    let args = [
        STREAM, GROUP, "HINCRBY", "totals", "$customer", "$amount",
        "XADD", "receipts", "FIELDS", "2", "src", "$@id", "amount", "$amount", "IDS", "1", &done,
    ];
    let r = xprocess(con, &args);
    assert_eq!(slots(&r), ["1"]);
    want
}

/// The dedupe key of the examples' stream and group (an index: the workers
/// give no STORE).
const DEDUPE: &str = "{payments}:xprocess:billing";

/// How many of the valid entries the dedupe store has recorded.
fn valid_processed(con: &mut Connection, want: &Expected) -> usize {
    let ids: Vec<&str> = want.receipts.keys().map(String::as_str).collect();
    processed_flags(con, DEDUPE, &ids)
        .iter()
        .filter(|p| **p)
        .count()
}

/// Totals, receipts, PEL and dedupe store after the scenario; `pending_for`
/// is the consumer expected to hold the bad entry.
fn check_result(con: &mut Connection, want: &Expected, pending_for: &[&str]) {
    let flat: Vec<String> = q(con, &["HGETALL", "totals"]);
    let totals: BTreeMap<String, i64> = flat
        .chunks(2)
        .map(|kv| (kv[0].clone(), kv[1].parse().unwrap()))
        .collect();
    assert_eq!(totals, want.totals, "totals");
    // One receipt per valid entry, pointing at it, with its amount.
    let mut receipts = BTreeMap::new();
    for (_, fields) in xrange(con, "receipts") {
        assert_eq!(fields[0], "src", "{fields:?}");
        let dup = receipts.insert(fields[1].clone(), fields[3].clone());
        assert!(dup.is_none(), "two receipts for {}", fields[1]);
    }
    assert_eq!(receipts, want.receipts, "receipts");
    // Only the bad entry is left pending, and it is not marked processed.
    let pel = pel(con, STREAM, GROUP);
    assert_eq!(pel.len(), 1, "PEL: {pel:?}");
    assert_eq!(pel[0].0, want.bad, "PEL: {pel:?}");
    assert!(pending_for.contains(&pel[0].1.as_str()), "PEL: {pel:?}");
    // Every valid entry recorded once, the bad one not at all.
    assert_eq!(q::<String>(con, &["TYPE", DEDUPE]), "xproc-idx");
    assert_eq!(valid_processed(con, want), want.receipts.len());
    assert_eq!(recorded(con, DEDUPE), want.receipts.len() as i64);
    assert!(!processed(con, DEDUPE, &want.bad));
}

/// The scenario with one worker run until idle.
fn run_until_idle(lang: &str) {
    let Some(cmd) = worker(lang) else { return };
    let server = Server::start();
    let mut con = server.conn();
    let want = scenario(&mut con);
    let started = Instant::now();
    // min-idle 200 ms: the dead consumer's entries become claimable soon
    // after the start; until-idle must exceed it (plus BLOCK) so the worker
    // does not exit before claiming them.
    let w = Worker::start(
        &cmd,
        &server,
        "w1",
        &[
            "--count",
            "4",
            "--min-idle-ms",
            "200",
            "--until-idle-ms",
            "1500",
        ],
    );
    let (status, out, err) = w.wait(Duration::from_secs(60));
    let ctx = format!("stdout:\n{out}stderr:\n{err}");
    assert!(status.success(), "worker exited with {status}\n{ctx}");
    eprintln!(
        "examples/{lang}: ran {:?}; {}",
        started.elapsed(),
        out.trim()
    );
    check_result(&mut con, &want, &["w1"]);

    let s = summary(&out);
    let valid = want.receipts.len() as u64;
    assert_eq!(s["applied"], valid - 1, "{ctx}");
    assert_eq!(s["duplicates"], 1, "{ctx}");
    assert_eq!(s["notowner"], 0, "{ctx}");
    assert!(s["errors"] >= 1, "{ctx}");
    assert!(s["claimed"] >= want.dead as u64, "{ctx}");
    assert!(
        err.contains(&want.bad),
        "the bad entry is not logged\n{ctx}"
    );
}

/// A worker following the stream live, then stopped with SIGTERM: it
/// finishes the batch at hand, prints its summary and exits 0.
fn stop_on_sigterm(lang: &str) {
    let Some(cmd) = worker(lang) else { return };
    let server = Server::start();
    let mut con = server.conn();
    let w = Worker::start(&cmd, &server, "live", &[]);
    w.wait_ready();
    // Blocked in XREADGROUP: the loop runs.
    wait_until("the worker to block in XREADGROUP", || {
        info_field(&mut con, "clients", "blocked_clients").as_deref() == Some("1")
    });
    for amount in ["5", "6", "7"] {
        xadd_id(
            &mut con,
            STREAM,
            "*",
            &[("customer", "c"), ("amount", amount)],
        );
    }
    wait_until("the worker to apply 3 entries", || {
        hget(&mut con, "totals", "c").as_deref() == Some("18")
    });
    let sent = Instant::now();
    w.signal("TERM");
    let (status, out, err) = w.wait(Duration::from_secs(10));
    assert!(
        status.success(),
        "exit {status}\nstdout:\n{out}stderr:\n{err}"
    );
    eprintln!(
        "examples/{lang}: stopped {:?} after SIGTERM",
        sent.elapsed()
    );
    assert_eq!(summary(&out)["applied"], 3, "{out}");
    assert!(pel(&mut con, STREAM, GROUP).is_empty());
    assert_eq!(q::<usize>(&mut con, &["XLEN", "receipts"]), 3);
}

#[test]
fn python_worker() {
    run_until_idle("python");
}

#[test]
fn python_worker_stops_on_sigterm() {
    stop_on_sigterm("python");
}

#[test]
fn node_worker() {
    run_until_idle("node");
}

#[test]
fn node_worker_stops_on_sigterm() {
    stop_on_sigterm("node");
}

#[test]
fn rust_worker() {
    run_until_idle("rust");
}

#[test]
fn rust_worker_stops_on_sigterm() {
    stop_on_sigterm("rust");
}

#[test]
fn redis_cli_worker() {
    run_until_idle("redis-cli");
}

#[test]
fn redis_cli_worker_stops_on_sigterm() {
    stop_on_sigterm("redis-cli");
}

/// All four workers at once on one stream while 300 entries come in, with a
/// min-idle of 5 ms so that they claim entries from each other: CONSUMER fencing (NOTOWNER) and the
/// dedupe store keep every effect exactly once whoever wins. They run until
/// every valid entry is processed, then get SIGTERM.
#[test]
fn all_workers_together() {
    let cmds: Vec<(&str, Vec<String>)> = ["python", "node", "rust", "redis-cli"]
        .into_iter()
        .filter_map(|lang| worker(lang).map(|cmd| (lang, cmd)))
        .collect();
    let server = Server::start();
    let mut con = server.conn();
    q::<String>(
        &mut con,
        &["XGROUP", "CREATE", STREAM, GROUP, "0", "MKSTREAM"],
    );
    let extra = ["--count", "3", "--min-idle-ms", "5"];
    let workers: Vec<_> = cmds
        .iter()
        .map(|(lang, cmd)| (*lang, Worker::start(cmd, &server, lang, &extra)))
        .collect();
    for (_, w) in &workers {
        w.wait_ready();
    }
    let (_, want) = produce(&mut con, 300);
    let deadline = Instant::now() + Duration::from_secs(60);
    while valid_processed(&mut con, &want) < want.receipts.len() {
        assert!(Instant::now() < deadline, "workers did not finish in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut applied, mut notowner) = (0, 0);
    for (_, w) in &workers {
        w.signal("TERM");
    }
    for (lang, w) in workers {
        let (status, out, err) = w.wait(Duration::from_secs(10));
        assert!(status.success(), "{lang}: exit {status}\n{out}{err}");
        let s = summary(&out);
        eprintln!("examples/{lang} (together): {}", out.trim());
        applied += s["applied"];
        notowner += s["notowner"];
    }
    eprintln!("examples (together): {notowner} NOTOWNER replies in all");
    let langs: Vec<&str> = cmds.iter().map(|(l, _)| *l).collect();
    check_result(&mut con, &want, &langs);
    assert_eq!(applied, want.receipts.len() as u64);
}
