//! The consumer workers in `examples/` (Python, Node.js, Rust, redis-cli),
//! run as child processes against a live server with the module. Each
//! stores the group's definition at start-up (`XPROCESS.DEFINE ...
//! DEADLETTER ... AFTER ...` and the effects, the same from every worker),
//! then is a loop on one `XPROCESS ... CONSUMER ... READ COUNT CLAIM BLOCK`
//! call without effects.
//!
//! Each worker gets the same scenario: entries left pending by a dead
//! consumer (READ's CLAIM must take them over), one entry already processed
//! (READ must answer `0` for it), three poison entries (two amounts that are
//! not numbers, one of them held by the dead consumer, and one entry without
//! a customer: per-entry errors, logged, left pending, claimed again, and
//! dead-lettered on their max-deliveries-th delivery) and new entries. The
//! worker runs until idle; then the totals, the receipts, the dead letters,
//! the PEL, the dedupe store, READ's counts and the worker's summary line are
//! checked, and that the group's definition is the one the worker's options
//! give (so that a call with effects is refused). A second test stops a
//! running worker with SIGTERM, a third runs all four at once.
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
    /// `extra` options after the common ones; `env` for the child.
    fn start(
        cmd: &[String],
        server: &Server,
        consumer: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Worker {
        let out = server.dir().join(format!("{consumer}.out"));
        let err = server.dir().join(format!("{consumer}.err"));
        let child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .args(["--port", &server.port().to_string(), "--consumer", consumer])
            .args(["--stream", STREAM, "--group", GROUP, "--block-ms", "100"])
            .args(extra)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .envs(env.iter().copied())
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

/// The numbers of the worker's last line,
/// `stopped: applied=N duplicates=N dead=N errors=N notowner=N` (the same
/// names in the same order in every worker).
fn summary(stdout: &str) -> BTreeMap<String, u64> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("stopped:"))
        .unwrap_or_else(|| panic!("no `stopped:` line in stdout:\n{stdout}"));
    let pairs: Vec<(String, u64)> = line["stopped:".len()..]
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("name=value");
            (k.to_string(), v.parse().expect("a number"))
        })
        .collect();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["applied", "duplicates", "dead", "errors", "notowner"],
        "{line}"
    );
    pairs.into_iter().collect()
}

/// An entry that can never be applied, and what its dead letter must hold.
struct Poison {
    /// The per-entry error XPROCESS gives it: the dead letter's `@error`.
    error: String,
    /// The entry's own fields, copied into the dead letter as `$field`.
    fields: Vec<(String, String)>,
}

/// What the scenario must end with.
struct Expected {
    /// Every entry of the stream, in order.
    ids: Vec<String>,
    /// Customer -> sum of the valid amounts.
    totals: BTreeMap<String, i64>,
    /// Entry ID -> amount, for every valid entry: one receipt each.
    receipts: BTreeMap<String, String>,
    /// Entry ID -> the poison entries: each must end in the dead-letter
    /// stream, once.
    poison: BTreeMap<String, Poison>,
    /// Entries the dead consumer held.
    held_by_dead: Vec<String>,
}

/// The error of a non-numeric HINCRBY increment.
const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";

/// Add `n` entries; entries 5 and 13 have an amount that is not a number,
/// entry 17 has no customer: those three are poison. Returns what the
/// workers must end with.
fn produce(con: &mut Connection, n: i64) -> Expected {
    let mut want = Expected {
        ids: Vec::new(),
        totals: BTreeMap::new(),
        receipts: BTreeMap::new(),
        poison: BTreeMap::new(),
        held_by_dead: Vec::new(),
    };
    for i in 0..n {
        let customer = format!("c{}", i % 4);
        let amount = match i {
            5 | 13 => "x".to_string(),
            _ => (i * 7 + 1).to_string(),
        };
        let mut fields = vec![("customer", customer.as_str()), ("amount", &amount)];
        if i == 17 {
            fields.remove(0);
        }
        let id = xadd_id(con, STREAM, "*", &fields);
        want.ids.push(id.clone());
        let error = match i {
            5 | 13 => NOT_AN_INTEGER.to_string(),
            17 => format!("ERR entry {id} has no field 'customer'"),
            _ => {
                *want.totals.entry(customer.clone()).or_insert(0) += i * 7 + 1;
                want.receipts.insert(id, amount.clone());
                continue;
            }
        };
        let fields = fields
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect();
        want.poison.insert(id, Poison { error, fields });
    }
    want
}

fn scenario(con: &mut Connection) -> Expected {
    q::<String>(con, &["XGROUP", "CREATE", STREAM, GROUP, "0", "MKSTREAM"]);
    let mut want = produce(con, 30);
    // A consumer that read the first 8 entries (poison entry 5 among them)
    // and died: only a claim gets them back.
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
    want.held_by_dead = want.ids[..8].to_vec();
    let held: Vec<(String, String)> = want
        .held_by_dead
        .iter()
        .map(|id| (id.clone(), "dead".to_string()))
        .collect();
    assert_eq!(pel(con, STREAM, GROUP), held);
    assert!(want.poison.contains_key(&want.ids[5]));
    // Entry 20 is processed before any worker sees it: the worker gets `0`.
    let done = want.ids[20].clone();
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

/// The workers' dead-letter stream when no `--dead-letter` is given.
const DEFAULT_DEAD_LETTER: &str = "payments:dead";

/// The group's definition is the one every worker sends at start-up, with
/// `dead_letters` and `max_deliveries` (the default totals and receipts
/// keys), and no processor runs it; a call that gives effects is refused.
fn check_definition(con: &mut Connection, dead_letters: &str, max_deliveries: u64) {
    let info = dedupe_info(con, DEDUPE);
    let definition: Vec<String> = info
        .get("definition")
        .map(|v| redis::from_redis_value(v).unwrap())
        .unwrap_or_else(|| panic!("XPROCESS.INFO {DEDUPE} has no definition: {info:?}"));
    #[rustfmt::skip]
    let expect = [
        "DEADLETTER", dead_letters, "AFTER", &max_deliveries.to_string(),
        "HINCRBY", "totals", "$customer", "$amount",
        "XADD", "receipts", "FIELDS", "2", "src", "$@id", "amount", "$amount",
    ];
    assert_eq!(definition, expect, "{info:?}");
    assert_eq!(info["group"], redis::Value::BulkString(GROUP.into()));
    assert_eq!(info["processor"], redis::Value::Nil, "{info:?}");
    #[rustfmt::skip]
    let with_effects = [
        STREAM, GROUP, "HINCRBY", "totals", "$customer", "$amount", "IDS", "1", "0-1",
    ];
    let refused = xprocess(con, &with_effects);
    assert!(
        err(&refused).starts_with("ERR the group has a definition"),
        "{refused:?}"
    );
}

/// How many of the valid entries the dedupe store has recorded.
fn valid_processed(con: &mut Connection, want: &Expected) -> usize {
    let ids: Vec<&str> = want.receipts.keys().map(String::as_str).collect();
    processed_flags(con, DEDUPE, &ids)
        .iter()
        .filter(|p| **p)
        .count()
}

/// The dead letter `want` expects for poison entry `id`, written by
/// `consumer` on delivery `deliveries`: the metadata, then the fields.
fn dead_letter(want: &Expected, id: &str, consumer: &str, deliveries: u64) -> Vec<String> {
    let p = &want.poison[id];
    let mut letter: Vec<String> = [
        "@id",
        id,
        "@stream",
        STREAM,
        "@group",
        GROUP,
        "@consumer",
        consumer,
        "@error",
        &p.error,
        "@deliveries",
        &deliveries.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (f, v) in &p.fields {
        letter.extend([format!("${f}"), v.clone()]);
    }
    letter
}

/// Totals, receipts, dead letters, PEL and dedupe store after the scenario.
/// `dead_letters` is the dead-letter stream, `consumers` the workers that
/// may have written a dead letter, `max_deliveries` their AFTER.
fn check_result(
    con: &mut Connection,
    want: &Expected,
    dead_letters: &str,
    consumers: &[&str],
    max_deliveries: u64,
) {
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
    // One dead letter per poison entry, none for a valid one: written on
    // its max-deliveries-th delivery by a worker, with the error that
    // entry gets and its own fields.
    let mut letters = BTreeMap::new();
    for (_, fields) in xrange(con, dead_letters) {
        assert!(fields.len() >= 12 && fields[0] == "@id", "{fields:?}");
        let id = fields[1].clone();
        assert!(want.poison.contains_key(&id), "dead letter of {id}");
        let consumer = fields[7].as_str();
        assert!(consumers.contains(&consumer), "{fields:?}");
        assert_eq!(fields, dead_letter(want, &id, consumer, max_deliveries));
        let dup = letters.insert(id.clone(), fields);
        assert!(dup.is_none(), "two dead letters for {id}");
    }
    let poison: Vec<&String> = want.poison.keys().collect();
    assert_eq!(letters.keys().collect::<Vec<_>>(), poison, "dead letters");
    // Nothing left pending: the valid entries applied, the poison ones
    // dead-lettered, all acked.
    let pel = pel(con, STREAM, GROUP);
    assert!(pel.is_empty(), "PEL: {pel:?}");
    // Every entry recorded once: valid ones as applied, poison ones as
    // dead-lettered.
    assert_eq!(q::<String>(con, &["TYPE", DEDUPE]), "xproc-idx");
    assert_eq!(valid_processed(con, want), want.receipts.len());
    for id in want.poison.keys() {
        assert!(processed(con, DEDUPE, id), "{id} not recorded");
    }
    let all = want.receipts.len() + want.poison.len();
    assert_eq!(all, want.ids.len());
    assert_eq!(recorded(con, DEDUPE), all as i64);
}

fn info_count(con: &mut Connection, field: &str) -> u64 {
    let v = info_field(con, "xprocess", field);
    v.and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO xprocess"))
}

/// The scenario with one worker run until idle.
fn run_until_idle(lang: &str) {
    let Some(cmd) = worker(lang) else { return };
    let server = Server::start();
    let mut con = server.conn();
    let want = scenario(&mut con);
    let started = Instant::now();
    // min-idle 200 ms: the dead consumer's entries become claimable soon
    // after the start, and so does a failed entry 200 ms after its failure;
    // until-idle must exceed it (plus BLOCK) so the worker does not exit
    // before claiming them. Max deliveries 2 (not the default 3): a poison
    // entry fails once and is dead-lettered on its second delivery.
    let max_deliveries = 2;
    #[rustfmt::skip]
    let w = Worker::start(
        &cmd,
        &server,
        "w1",
        &[
            "--count", "4", "--min-idle-ms", "200", "--until-idle-ms", "1500",
            "--dead-letter", "dead-letters", "--max-deliveries", "2",
        ],
        &[],
    );
    let (status, out, err) = w.wait(Duration::from_secs(60));
    let ctx = format!("stdout:\n{out}stderr:\n{err}");
    assert!(status.success(), "worker exited with {status}\n{ctx}");
    eprintln!(
        "examples/{lang}: ran {:?}; {}",
        started.elapsed(),
        out.trim()
    );
    check_result(&mut con, &want, "dead-letters", &["w1"], max_deliveries);
    check_definition(&mut con, "dead-letters", max_deliveries);
    assert!(
        !exists(&mut con, DEFAULT_DEAD_LETTER),
        "--dead-letter ignored"
    );

    let s = summary(&out);
    let valid = want.receipts.len() as u64;
    assert_eq!(s["applied"], valid - 1, "{ctx}");
    assert_eq!(s["duplicates"], 1, "{ctx}");
    assert_eq!(s["dead"], want.poison.len() as u64, "{ctx}");
    assert_eq!(s["notowner"], 0, "{ctx}");
    // A poison entry fails on each delivery before the last; the first
    // delivery of entry 5 was the dead consumer's, not the worker's.
    let errors: u64 = want
        .poison
        .keys()
        .map(|id| max_deliveries - 1 - want.held_by_dead.contains(id) as u64)
        .sum();
    assert_eq!(s["errors"], errors, "{ctx}");
    // What READ took: the dead consumer's entries and every failed entry
    // again through CLAIM, all others once as new entries.
    let claimed = want.held_by_dead.len() as u64 + errors;
    assert_eq!(info_count(&mut con, "xprocess_read_claimed"), claimed);
    let new = (want.ids.len() - want.held_by_dead.len()) as u64;
    assert_eq!(info_count(&mut con, "xprocess_read_new"), new);
    for id in want.poison.keys() {
        assert!(
            err.contains(id.as_str()),
            "poison {id} is not logged\n{ctx}"
        );
    }
}

/// A worker following the stream live, then stopped with SIGTERM: it
/// finishes the call at hand, prints its summary and exits 0. Its options
/// come from the environment (XP_MAX_DELIVERIES) and the defaults (the
/// dead-letter key).
fn stop_on_sigterm(lang: &str) {
    let Some(cmd) = worker(lang) else { return };
    let server = Server::start();
    let mut con = server.conn();
    let w = Worker::start(&cmd, &server, "live", &[], &[("XP_MAX_DELIVERIES", "1")]);
    w.wait_ready();
    // The definition is stored before the loop (and its `consuming` line).
    check_definition(&mut con, DEFAULT_DEAD_LETTER, 1);
    // Blocked in READ ... BLOCK: the loop runs.
    wait_until("the worker to block in READ", || {
        info_field(&mut con, "xprocess", "xprocess_blocked_clients").as_deref() == Some("1")
    });
    for amount in ["5", "6", "7"] {
        xadd_id(
            &mut con,
            STREAM,
            "*",
            &[("customer", "c"), ("amount", amount)],
        );
    }
    let poison = xadd_id(
        &mut con,
        STREAM,
        "*",
        &[("customer", "c"), ("amount", "eight")],
    );
    wait_until("the worker to apply 3 entries", || {
        hget(&mut con, "totals", "c").as_deref() == Some("18")
    });
    // AFTER 1: dead-lettered on its first failure.
    wait_until("the worker to dead-letter 1 entry", || {
        exists(&mut con, DEFAULT_DEAD_LETTER)
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
    let s = summary(&out);
    assert_eq!(s["applied"], 3, "{out}");
    assert_eq!(s["dead"], 1, "{out}");
    assert_eq!(s["errors"], 0, "{out}");
    assert!(pel(&mut con, STREAM, GROUP).is_empty());
    assert_eq!(q::<usize>(&mut con, &["XLEN", "receipts"]), 3);
    let letters = xrange(&mut con, DEFAULT_DEAD_LETTER);
    assert_eq!(letters.len(), 1, "{letters:?}");
    #[rustfmt::skip]
    let expect = [
        "@id", &poison, "@stream", STREAM, "@group", GROUP, "@consumer", "live",
        "@error", NOT_AN_INTEGER, "@deliveries", "1", "$customer", "c", "$amount", "eight",
    ];
    assert_eq!(letters[0].1, expect);
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

/// All four workers at once on one stream while 300 entries come in, with
/// the default max deliveries (3) and dead-letter key, and a min-idle of 5 ms
/// so that they claim the failed entries from each other. READ takes and
/// processes entries in one step, so no entry is ever between two commands:
/// whoever takes it applies it, there are no duplicates and no NOTOWNER, and
/// each poison entry fails twice (on whichever workers) and is dead-lettered
/// once. They run until every entry is done, then get SIGTERM.
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
        .map(|(lang, cmd)| (*lang, Worker::start(cmd, &server, lang, &extra, &[])))
        .collect();
    for (_, w) in &workers {
        w.wait_ready();
    }
    // Every worker sent the same definition: one, with the defaults.
    check_definition(&mut con, DEFAULT_DEAD_LETTER, 3);
    let want = produce(&mut con, 300);
    let deadline = Instant::now() + Duration::from_secs(60);
    while valid_processed(&mut con, &want) < want.receipts.len()
        || q::<usize>(&mut con, &["XLEN", DEFAULT_DEAD_LETTER]) < want.poison.len()
    {
        assert!(Instant::now() < deadline, "workers did not finish in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    for (_, w) in &workers {
        w.signal("TERM");
    }
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    for (lang, w) in workers {
        let (status, out, err) = w.wait(Duration::from_secs(10));
        assert!(status.success(), "{lang}: exit {status}\n{out}{err}");
        eprintln!("examples/{lang} (together): {}", out.trim());
        for (k, v) in summary(&out) {
            *sums.entry(k).or_insert(0) += v;
        }
    }
    let langs: Vec<&str> = cmds.iter().map(|(l, _)| *l).collect();
    check_result(&mut con, &want, DEFAULT_DEAD_LETTER, &langs, 3);
    let poison = want.poison.len() as u64;
    assert_eq!(sums["applied"], want.receipts.len() as u64, "{sums:?}");
    assert_eq!(sums["dead"], poison, "{sums:?}");
    assert_eq!(sums["errors"], poison * 2, "{sums:?}");
    assert_eq!(sums["duplicates"], 0, "{sums:?}");
    assert_eq!(sums["notowner"], 0, "{sums:?}");
}
