//! A throwaway `redis-server` with the module: free port, own temp dir, no
//! persistence, SIGKILLed and its dir removed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Server {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Server {
    /// Start a server loading `module`; retries when the port was taken
    /// between probing and binding.
    pub fn start(module: &Path) -> Server {
        let dir = unique_dir();
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn(module, port, &dir) {
                return Server {
                    child: Some(child),
                    port,
                    dir,
                };
            }
        }
        panic!("redis-server did not start; log:\n{}", log_tail(&dir));
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `None` when the process exits during startup (e.g. port taken).
fn spawn(module: &Path, port: u16, dir: &Path) -> Option<Child> {
    let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let port_s = port.to_string();
    let dir_s = dir.display().to_string();
    let module_s = module.display().to_string();
    let args = [
        "--port",
        &port_s,
        "--bind",
        "127.0.0.1",
        "--dir",
        &dir_s,
        "--logfile",
        "redis.log",
        "--save",
        "",
        "--appendonly",
        "no",
        "--loadmodule",
        &module_s,
    ];
    let mut child = Command::new(&bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        if is_ours(port, dir) {
            return Some(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "redis-server on port {port} did not start\n{}",
                log_tail(dir)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// PING answers and `CONFIG GET dir` is our dir (not another process's server).
fn is_ours(port: u16, dir: &Path) -> bool {
    if TcpStream::connect(("127.0.0.1", port)).is_err() {
        return false;
    }
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
        return false;
    };
    let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
        return false;
    };
    let got: redis::RedisResult<Vec<String>> =
        redis::cmd("CONFIG").arg("GET").arg("dir").query(&mut con);
    let ours = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    matches!(got, Ok(d) if d.len() == 2 && Path::new(&d[1]) == ours)
}

fn unique_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("xprocess-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create server temp dir");
    dir
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

fn log_tail(dir: &Path) -> String {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let log = read("stderr.log") + &read("redis.log");
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
