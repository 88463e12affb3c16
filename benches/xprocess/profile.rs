//! BENCH_PROFILE: run a profiler against the server during the timed phase
//! only, e.g. `BENCH_PROFILE='perf record -g -p {pid} -o perf-{tag}.data'`.
//! `{pid}` is the redis-server pid, `{tag}` the contender (xprocess1, lua,
//! ...). The profiler gets SIGINT when the phase ends.

use std::process::{Child, Command};
use std::time::Duration;

pub struct Profiler(Child);

impl Profiler {
    /// Start the BENCH_PROFILE command, if set.
    pub fn start(pid: u32, tag: &str) -> Option<Profiler> {
        let template = std::env::var("BENCH_PROFILE").ok()?;
        let cmd = template
            .replace("{pid}", &pid.to_string())
            .replace("{tag}", tag);
        let child = Command::new("sh")
            .args(["-c", &format!("exec {cmd}")])
            .spawn()
            .unwrap_or_else(|e| panic!("BENCH_PROFILE {cmd}: {e}"));
        std::thread::sleep(Duration::from_millis(300)); // let it attach
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
