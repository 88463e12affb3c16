//! BENCH_PROFILE: run a profiler against the server during the timed phase
//! only, e.g. `BENCH_PROFILE='perf record -g -p {pid} -o perf-{tag}.data'`.
//! `{pid}` is the redis-server pid, `{tag}` the contender (xprocess1, lua,
//! ...). The profiler gets SIGINT when the phase ends. The phase starts
//! 300 ms after the profiler, or, if the command names `{ready}` (a file
//! path), once the profiler has created that file: a profiler that must
//! act before the phase (callgrind's counters zeroed) can take its time
//! on a busy machine.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a profiler may take to create its `{ready}` file.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

pub struct Profiler(Child);

impl Profiler {
    /// Start the BENCH_PROFILE command, if set, and wait until it is ready.
    pub fn start(pid: u32, tag: &str) -> Option<Profiler> {
        let template = std::env::var("BENCH_PROFILE").ok()?;
        let ready = template.contains("{ready}").then(ready_path);
        let cmd = template
            .replace("{pid}", &pid.to_string())
            .replace("{tag}", tag)
            .replace(
                "{ready}",
                &ready
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string()),
            );
        let mut child = Command::new("sh")
            .args(["-c", &format!("exec {cmd}")])
            .spawn()
            .unwrap_or_else(|e| panic!("BENCH_PROFILE {cmd}: {e}"));
        let Some(ready) = ready else {
            std::thread::sleep(Duration::from_millis(300)); // let it attach
            return Some(Profiler(child));
        };
        let since = Instant::now();
        while !ready.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("BENCH_PROFILE {cmd} exited ({status}) before it was ready");
            }
            assert!(
                since.elapsed() < READY_TIMEOUT,
                "BENCH_PROFILE {cmd}: not ready after {READY_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(&ready);
        Some(Profiler(child))
    }

    /// SIGINT (so perf writes its data) and wait.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// A fresh path for a profiler's `{ready}` file.
fn ready_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let name = format!("xprocess-bench-{}-ready-{n}", std::process::id());
    let path = std::env::temp_dir().join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// The processor budget (µs) a standing processor gets in a profiled run.
/// Under callgrind the server runs about 50 times slower while the budget
/// is wall-clock time, so the default 1 ms would shrink batches to a couple
/// of entries; 50 ms keeps them as large as at full speed (COUNT 100).
const PROFILED_BUDGET_US: &str = "50000";

/// In a profiled run, give standing processors the budget that keeps their
/// batches as large as unprofiled (`PROFILED_BUDGET_US`).
pub fn keep_batch_sizes(con: &mut redis::Connection) {
    if std::env::var_os("BENCH_PROFILE").is_none() {
        return;
    }
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "xprocess.processor-budget-us", PROFILED_BUDGET_US])
        .query(con)
        .unwrap();
}

/// How often a client polls for a standing processor's progress: every
/// millisecond, or every 50 in a profiled run, whose server is about 50
/// times slower (else the polls would be counted 50 times over).
pub fn poll_interval() -> Duration {
    match std::env::var_os("BENCH_PROFILE") {
        Some(_) => Duration::from_millis(50),
        None => Duration::from_millis(1),
    }
}
