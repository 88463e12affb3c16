//! The consumer loop with redis-py: benches/python/consumer_loop.py runs
//! one loop of consumer_loop.rs (floor, READ, READ ... REPLY COUNTS, IDS,
//! Lua) against a fresh server whose stream holds N new entries, as a
//! Python worker would; this side prepares the server, starts the script's
//! loop (a handshake on its stdin, so the clocks and the profiler cover the
//! loop only), reads its JSON and checks the end state.
//!
//! The Python: BENCH_PYTHON, else the first of target/bench/venv (`make
//! bench-deps`), target/examples/venv (`make examples-deps`) and python3
//! on PATH that imports redis. With none, the rows are skipped and the
//! report says why.

use crate::consumer_loop::{schedstat, COUNT};
use crate::contenders::LUA_SCRIPT;
use crate::profile::Profiler;
use crate::server::Server;
use crate::workload;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PyLoop {
    Lua,
    Ids,
    Read,
    ReadCounts,
    Ack,
}

pub const ALL: [PyLoop; 5] = [
    PyLoop::Lua,
    PyLoop::Ids,
    PyLoop::Read,
    PyLoop::ReadCounts,
    PyLoop::Ack,
];

impl PyLoop {
    pub fn name(self) -> &'static str {
        match self {
            PyLoop::Lua => "xreadgroup(count=100) + evalsha per entry in a pipeline (Lua script)",
            PyLoop::Ids => "xreadgroup(count=100) + XPROCESS ... IDS 100 id...",
            PyLoop::Read => "XPROCESS ... READ COUNT 100",
            PyLoop::ReadCounts => "XPROCESS ... READ COUNT 100 REPLY COUNTS",
            PyLoop::Ack => "xreadgroup(count=100) + xack (at-least-once floor)",
        }
    }

    /// Short name for BENCH_ONLY, progress lines and the ratio table.
    pub fn tag(self) -> &'static str {
        match self {
            PyLoop::Lua => "py-loop-lua",
            PyLoop::Ids => "py-loop-ids",
            PyLoop::Read => "py-loop-read",
            PyLoop::ReadCounts => "py-loop-read-counts",
            PyLoop::Ack => "py-loop-ack",
        }
    }

    /// consumer_loop.py's `--loop`.
    fn arg(self) -> &'static str {
        match self {
            PyLoop::Lua => "lua",
            PyLoop::Ids => "ids",
            PyLoop::Read => "read",
            PyLoop::ReadCounts => "read-counts",
            PyLoop::Ack => "ack",
        }
    }

    fn applies_effects(self) -> bool {
        self != PyLoop::Ack
    }
}

/// A Python that imports redis.
pub struct Python {
    exe: PathBuf,
    /// e.g. "Python 3.11.2, redis-py 5.2.1, no hiredis".
    pub describe: String,
}

impl Python {
    /// The interpreter, relative to the repository when inside it.
    pub fn exe_name(&self) -> String {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let exe = self.exe.strip_prefix(repo).unwrap_or(&self.exe);
        exe.display().to_string()
    }
}

/// The Python to run the loops with, or why there is none.
pub fn find(repo: &Path) -> Result<Python, String> {
    let chosen = std::env::var("BENCH_PYTHON").ok().filter(|v| !v.is_empty());
    let candidates: Vec<PathBuf> = match &chosen {
        Some(exe) => vec![PathBuf::from(exe)],
        None => vec![
            repo.join("target/bench/venv/bin/python"),
            repo.join("target/examples/venv/bin/python"),
            PathBuf::from("python3"),
        ],
    };
    let probe = "import sys, redis, redis.utils as u; print('Python %s, redis-py %s, %s' % \
                 (sys.version.split()[0], redis.__version__, \
                 'hiredis' if u.HIREDIS_AVAILABLE else 'no hiredis'))";
    let mut found_python = false;
    for exe in &candidates {
        let Ok(out) = Command::new(exe).args(["-c", probe]).output() else {
            continue;
        };
        found_python = true;
        if out.status.success() {
            let describe = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let exe = exe.clone();
            return Ok(Python { exe, describe });
        }
    }
    Err(match (found_python, chosen) {
        (false, Some(exe)) => format!("BENCH_PYTHON={exe} does not run"),
        (true, Some(exe)) => format!("BENCH_PYTHON={exe} does not import redis"),
        (false, None) => "python3 not found".into(),
        (true, None) => "no Python with redis-py (`make bench-deps` makes target/bench/venv, \
                           or set BENCH_PYTHON)"
            .into(),
    })
}

/// What one loop measured in one round; µs are per entry.
#[derive(Clone, Debug)]
pub struct PySample {
    /// N over the loop's wall time, as the script timed it.
    pub entries_per_s: f64,
    pub wall_us: f64,
    /// The server's main thread on a CPU over the loop.
    pub server_cpu_us: f64,
    /// The server's main thread runnable but waiting for a CPU.
    pub server_wait_us: f64,
    /// The script's thread on a CPU over the loop (redis-py, the checks).
    pub client_cpu_us: f64,
    /// Requests written per 100 entries, each a wait for the reply.
    pub trips_per_100: f64,
}

/// One loop over `n` entries on a fresh server.
pub fn measure(module: &Path, py: &Python, repo: &Path, who: PyLoop, n: usize) -> PySample {
    let server = Server::start(module);
    let mut con = server.conn();
    let entries = workload::entries(0, n as u64);
    workload::add_new(&mut con, server.port(), &entries);
    assert_eq!(workload::pending_count(&mut con), 0);
    let script = std::env::temp_dir().join(format!("xprocess-bench-{}.lua", std::process::id()));
    std::fs::write(&script, LUA_SCRIPT).expect("write the Lua script");

    let mut child = Command::new(&py.exe)
        .arg(repo.join("benches/python/consumer_loop.py"))
        .args(["--port", &server.port().to_string()])
        .args(["--loop", who.arg(), "--entries", &n.to_string()])
        .args(["--count", &COUNT.to_string()])
        .arg("--lua-script")
        .arg(&script)
        .arg("--handshake")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", py.exe.display()));
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        "ready",
        "{}: consumer_loop.py did not start",
        who.tag()
    );

    let profiler = Profiler::start(server.pid(), who.tag());
    let server_stat = format!("/proc/{0}/task/{0}/schedstat", server.pid());
    let server0 = schedstat(&server_stat);
    stdin.write_all(b"go\n").unwrap();
    stdin.flush().unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let server1 = schedstat(&server_stat);
    if let Some(p) = profiler {
        p.stop();
    }
    drop(stdin);
    let status = child.wait().unwrap();
    let _ = std::fs::remove_file(&script);
    assert!(status.success(), "{}: consumer_loop.py {status}", who.tag());
    let field = |name: &str| json_number(&line, name);
    assert_eq!(field("entries") as usize, n, "{}: entries done", who.tag());
    workload::verify(
        &mut con,
        &entries,
        who.applies_effects(),
        who.applies_effects(),
        who.tag(),
    );

    let per_entry = |ns: u64| ns as f64 / 1e3 / n as f64;
    PySample {
        entries_per_s: n as f64 / field("seconds"),
        wall_us: field("seconds") * 1e6 / n as f64,
        server_cpu_us: per_entry(server1.0 - server0.0),
        server_wait_us: per_entry(server1.1 - server0.1),
        client_cpu_us: field("client_cpu_seconds") * 1e6 / n as f64,
        trips_per_100: field("requests") * 100.0 / n as f64,
    }
}

/// A number of the script's one-line JSON object (flat, written by it).
fn json_number(json: &str, name: &str) -> f64 {
    let key = format!("\"{name}\":");
    let at = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in consumer_loop.py's output {json:?}"));
    let rest = json[at + key.len()..].trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{name} in {json:?}: not a number"))
}
