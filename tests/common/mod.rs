//! Test harness: real `redis-server` processes with the built module loaded.
//!
//! Every test starts its own [`Server`] on a free port, in its own temp dir;
//! the server is killed (SIGKILL) and its dir removed when the guard drops.
//! Helpers are free functions over a `redis::Connection`: `call` returns the
//! raw reply (per-entry errors stay nested in the array), `q` a typed one.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod dedupe;
pub mod rng;

use redis::{Connection, ConnectionLike, FromRedisValue, RedisResult, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to answer PING (startup or AOF load).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound for every polling helper.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// The module under test: `$XPROCESS_MODULE`, else the debug build.
pub fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("XPROCESS_MODULE") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("debug").join("libxprocess.so")
}

fn checked_module_path() -> PathBuf {
    let path = module_path();
    assert!(
        path.is_file(),
        "xprocess module not found at {}: run `cargo build` first (or set XPROCESS_MODULE)",
        path.display()
    );
    path
}

fn unique_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("xprocess-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create server temp dir");
    dir
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

/// A running `redis-server` with the module loaded; killed on drop.
pub struct Server {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

impl Server {
    /// A plain server with the module loaded without arguments.
    pub fn start() -> Server {
        Server::with(&[], &[])
    }

    /// `module_args` follow the module path on the `--loadmodule` line;
    /// `config` is extra redis-server argv, e.g. `["--appendonly", "yes"]`.
    pub fn with(module_args: &[&str], config: &[&str]) -> Server {
        Server::launch(Some(&checked_module_path()), module_args, config)
    }

    /// A server without the module (to test `MODULE LOAD`).
    pub fn without_module(config: &[&str]) -> Server {
        checked_module_path();
        Server::launch(None, &[], config)
    }

    fn launch(module: Option<&Path>, module_args: &[&str], config: &[&str]) -> Server {
        let mut server = Server {
            child: None,
            port: 0,
            dir: unique_dir(),
            args: Vec::new(),
        };
        let mut last_log = String::new();
        // The port may be taken between probing and binding: retry.
        for _ in 0..5 {
            server.port = free_port();
            let mut args: Vec<String> = vec![
                "--port".into(),
                server.port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                server.dir.display().to_string(),
                "--logfile".into(),
                "redis.log".into(),
                "--save".into(),
                String::new(),
                "--enable-debug-command".into(),
                "yes".into(),
            ];
            if let Some(module) = module {
                args.extend(["--loadmodule".into(), module.display().to_string()]);
                args.extend(module_args.iter().map(|s| s.to_string()));
            }
            args.extend(config.iter().map(|s| s.to_string()));
            server.args = args;
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("redis-server did not start; last log:\n{last_log}");
    }

    /// Spawn with the stored argv, wait until PING answers. `Err(log tail)`
    /// when the process exited (e.g. the port was taken).
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Config errors are printed before the logfile is opened.
            .stderr(std::fs::File::create(self.dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("exited with {status}\n{}", self.log_tail(40)));
            }
            if self.ping_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill9();
                panic!(
                    "redis-server on port {} did not answer PING within {START_TIMEOUT:?}\n{}",
                    self.port,
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn ping_ok(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
            return false;
        };
        // While loading the AOF the server answers -LOADING.
        if !matches!(redis::cmd("PING").query::<String>(&mut con), Ok(s) if s == "PONG") {
            return false;
        }
        // Make sure it is our server, not another test's that took the port.
        let dir: RedisResult<Vec<String>> =
            redis::cmd("CONFIG").arg("GET").arg("dir").query(&mut con);
        let ours = self.dir.canonicalize().unwrap_or_else(|_| self.dir.clone());
        matches!(dir, Ok(d) if d.len() == 2 && Path::new(&d[1]) == ours)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The last `n` lines of the server log (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let log = read("stderr.log") + &read("redis.log");
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// SIGKILL the server and reap it; the dir is kept for `restart`.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again with the same argv, dir and port (e.g. to reload the AOF).
    pub fn restart(&mut self) {
        self.kill9();
        drop_torn_transaction(&self.dir);
        // The port was just released by a killed process we own: retry
        // briefly in case the kernel has not let go of it yet.
        let mut last = String::new();
        for _ in 0..20 {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(log) => last = log,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "redis-server did not restart on port {}:\n{last}",
            self.port
        );
    }

    fn client(&self, url: String) -> Connection {
        let con = redis::Client::open(url)
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to port {}: {e}", self.port));
        con.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        con
    }

    /// A RESP2 connection as the default user.
    pub fn conn(&self) -> Connection {
        self.client(self.url())
    }

    /// A RESP3 connection (the client sends `HELLO 3`).
    pub fn conn_resp3(&self) -> Connection {
        self.client(format!("{}?protocol=resp3", self.url()))
    }

    /// A connection authenticated as an ACL user.
    pub fn conn_as(&self, user: &str, pass: &str) -> Connection {
        self.client(format!("redis://{user}:{pass}@127.0.0.1:{}/", self.port))
    }

    /// A raw TCP socket to the server, for wire-format checks.
    pub fn tcp(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- redis-server log (port {}, {}) ---\n{}",
                self.port,
                self.dir.display(),
                self.log_tail(30)
            );
        }
        self.kill9();
        if std::env::var_os("XPROCESS_KEEP_TMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---- commands and replies ----------------------------------------------------

fn build(args: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd
}

/// Run a command and return the raw reply: a whole-call error comes back as
/// `Value::ServerError`, per-entry errors stay nested in the array.
pub fn call(con: &mut Connection, args: &[&str]) -> Value {
    con.req_command(&build(args))
        .unwrap_or_else(|e| panic!("{args:?}: connection error {e}"))
}

/// Run a command that must succeed, converting its reply.
pub fn q<T: FromRedisValue>(con: &mut Connection, args: &[&str]) -> T {
    build(args)
        .query(con)
        .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

/// `XPROCESS args...`, raw reply.
pub fn xprocess(con: &mut Connection, args: &[&str]) -> Value {
    let mut full = vec!["XPROCESS"];
    full.extend_from_slice(args);
    call(con, &full)
}

/// The full error line as the server sent it (`CODE detail`), if `v` is an
/// error.
pub fn error_text(v: &Value) -> Option<String> {
    let Value::ServerError(e) = v else {
        return None;
    };
    Some(match e.details() {
        Some(d) => format!("{} {d}", e.code()),
        None => e.code().to_string(),
    })
}

/// A per-ID reply as strings: `"1"`, `"0"`, or the error line.
pub fn slots(v: &Value) -> Vec<String> {
    let Value::Array(items) = v else {
        panic!("expected an array reply, got {v:?}");
    };
    items
        .iter()
        .map(|item| match item {
            Value::Int(i) => i.to_string(),
            Value::ServerError(_) => error_text(item).unwrap(),
            other => panic!("unexpected element {other:?} in {v:?}"),
        })
        .collect()
}

/// The whole-call error line of a reply that must be an error.
pub fn err(v: &Value) -> String {
    error_text(v).unwrap_or_else(|| panic!("expected an error reply, got {v:?}"))
}

// ---- streams -----------------------------------------------------------------

/// `XADD stream id field value ...`, returns the entry ID.
pub fn xadd_id(con: &mut Connection, stream: &str, id: &str, fields: &[(&str, &str)]) -> String {
    let mut args = vec!["XADD", stream, id];
    for (f, v) in fields {
        args.push(f);
        args.push(v);
    }
    q(con, &args)
}

/// Create `group` at `$` (MKSTREAM) unless it exists, add `entries` and read
/// them with XREADGROUP as `consumer`, so they are pending for it.
/// Returns their IDs in order.
pub fn pending(
    con: &mut Connection,
    stream: &str,
    group: &str,
    consumer: &str,
    entries: &[&[(&str, &str)]],
) -> Vec<String> {
    let created = call(con, &["XGROUP", "CREATE", stream, group, "$", "MKSTREAM"]);
    if let Some(e) = error_text(&created) {
        assert!(e.starts_with("BUSYGROUP"), "XGROUP CREATE: {e}");
    }
    let ids: Vec<String> = entries
        .iter()
        .map(|fields| xadd_id(con, stream, "*", fields))
        .collect();
    let n = ids.len().to_string();
    let read: Value = q(
        con,
        &[
            "XREADGROUP",
            "GROUP",
            group,
            consumer,
            "COUNT",
            &n,
            "STREAMS",
            stream,
            ">",
        ],
    );
    assert_eq!(
        read_ids(&read),
        ids,
        "XREADGROUP did not read the new entries"
    );
    ids
}

/// A stream entry: (id, [field, value, ...]).
pub type Entry = (String, Vec<String>);

fn read_ids(v: &Value) -> Vec<String> {
    // [[stream, [entry, ...]]]
    let streams: Vec<(String, Vec<Entry>)> = redis::from_redis_value(v).unwrap_or_default();
    streams
        .into_iter()
        .flat_map(|(_, es)| es.into_iter().map(|(id, _)| id))
        .collect()
}

/// The group's PEL as (id, consumer) pairs.
pub fn pel(con: &mut Connection, stream: &str, group: &str) -> Vec<(String, String)> {
    let rows: Vec<(String, String, i64, i64)> =
        q(con, &["XPENDING", stream, group, "-", "+", "1000"]);
    rows.into_iter().map(|(id, c, _, _)| (id, c)).collect()
}

/// The consumer that `id` is pending for, if it is pending.
pub fn owner(con: &mut Connection, stream: &str, group: &str, id: &str) -> Option<String> {
    pel(con, stream, group)
        .into_iter()
        .find(|(i, _)| i == id)
        .map(|(_, c)| c)
}

/// `XRANGE key - +` as (id, [field, value, ...]).
pub fn xrange(con: &mut Connection, key: &str) -> Vec<Entry> {
    q(con, &["XRANGE", key, "-", "+"])
}

pub fn sismember(con: &mut Connection, key: &str, member: &str) -> bool {
    q::<i64>(con, &["SISMEMBER", key, member]) == 1
}

pub fn hget(con: &mut Connection, key: &str, field: &str) -> Option<String> {
    q(con, &["HGET", key, field])
}

pub fn exists(con: &mut Connection, key: &str) -> bool {
    q::<i64>(con, &["EXISTS", key]) == 1
}

// ---- dedupe stores -------------------------------------------------------------

/// The dedupe store a test asks for with `STORE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// The module's `xproc-idx` type, the default for a new dedupe key.
    Index,
    /// A plain Redis Set (`STORE SET`).
    Set,
}

impl Store {
    /// The Redis `TYPE` of a dedupe key holding this store.
    pub fn type_name(self) -> &'static str {
        match self {
            Store::Index => "xproc-idx",
            Store::Set => "set",
        }
    }

    /// The store a key of this `TYPE` is, if any.
    pub fn of_type(type_name: &str) -> Option<Store> {
        [Store::Index, Store::Set]
            .into_iter()
            .find(|s| s.type_name() == type_name)
    }

    /// XPROCESS options (after the group) that keep the calls on this store.
    pub fn options(self) -> &'static [&'static str] {
        match self {
            Store::Index => &[],
            Store::Set => &["STORE", "SET"],
        }
    }

    /// XPROCESS.INFO's `kind`.
    pub fn kind(self) -> &'static str {
        match self {
            Store::Index => "index",
            Store::Set => "set",
        }
    }
}

/// `XPROCESS.EXISTS key id ...`: per ID, whether the dedupe store at `key`
/// (an index or a Set; a missing key has processed nothing) recorded it.
pub fn processed_flags(con: &mut Connection, key: &str, ids: &[&str]) -> Vec<bool> {
    let mut args = vec!["XPROCESS.EXISTS", key];
    args.extend_from_slice(ids);
    let flags: Vec<i64> = q(con, &args);
    assert_eq!(flags.len(), ids.len(), "XPROCESS.EXISTS {key} {ids:?}");
    flags
        .into_iter()
        .map(|f| {
            assert!(f == 0 || f == 1, "XPROCESS.EXISTS answered {f}");
            f == 1
        })
        .collect()
}

/// Whether the dedupe store at `key` recorded `id` as processed.
pub fn processed(con: &mut Connection, key: &str, id: &str) -> bool {
    processed_flags(con, key, &[id])[0]
}

/// `XPROCESS.INFO key` as field -> value (RESP2: a flat field/value array).
pub fn dedupe_info(con: &mut Connection, key: &str) -> std::collections::BTreeMap<String, Value> {
    let flat: Vec<Value> = q(con, &["XPROCESS.INFO", key]);
    assert!(
        flat.len().is_multiple_of(2),
        "XPROCESS.INFO {key}: {flat:?}"
    );
    flat.chunks(2)
        .map(|kv| {
            let name: String = redis::from_redis_value(&kv[0])
                .unwrap_or_else(|e| panic!("XPROCESS.INFO field name {:?}: {e}", kv[0]));
            (name, kv[1].clone())
        })
        .collect()
}

/// One integer field of `XPROCESS.INFO key`.
pub fn dedupe_info_int(con: &mut Connection, key: &str, field: &str) -> i64 {
    let info = dedupe_info(con, key);
    let value = info
        .get(field)
        .unwrap_or_else(|| panic!("XPROCESS.INFO {key} has no {field}: {info:?}"));
    redis::from_redis_value(value)
        .unwrap_or_else(|e| panic!("XPROCESS.INFO {key} {field} = {value:?}: {e}"))
}

/// How many IDs the dedupe index at `key` recorded since it was created.
pub fn recorded(con: &mut Connection, key: &str) -> i64 {
    dedupe_info_int(con, key, "recorded")
}

// ---- digests, INFO, polling --------------------------------------------------

pub fn digest(con: &mut Connection) -> String {
    q(con, &["DEBUG", "DIGEST"])
}

pub fn digest_value(con: &mut Connection, keys: &[&str]) -> Vec<String> {
    let mut args = vec!["DEBUG", "DIGEST-VALUE"];
    args.extend_from_slice(keys);
    q(con, &args)
}

/// One `field:value` line of `INFO section`.
pub fn info_field(con: &mut Connection, section: &str, field: &str) -> Option<String> {
    let info: String = q(con, &["INFO", section]);
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
}

/// Which server a test talks to: Valkey reports a fixed `redis_version`
/// (7.2.4) and its own version in `valkey_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerVersion {
    pub valkey: bool,
    pub version: (u32, u32, u32),
}

impl ServerVersion {
    /// True on Redis (not Valkey) at `major.minor` or later.
    pub fn redis_at_least(self, major: u32, minor: u32) -> bool {
        !self.valkey && (self.version.0, self.version.1) >= (major, minor)
    }
}

pub fn server_version(con: &mut Connection) -> ServerVersion {
    let valkey = info_field(con, "server", "valkey_version");
    let text = valkey
        .clone()
        .or_else(|| info_field(con, "server", "redis_version"))
        .expect("INFO server has a version");
    let mut parts = text
        .split('.')
        .map(|p| p.parse::<u32>().expect("numeric version"));
    let mut next = || parts.next().unwrap_or(0);
    ServerVersion {
        valkey: valkey.is_some(),
        version: (next(), next(), next()),
    }
}

/// Poll `cond` every 10 ms until it holds; panic after `POLL_TIMEOUT`.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + POLL_TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait until the replica's link is up and it has everything the primary
/// sent (replication offsets equal).
/// BGREWRITEAOF, and wait until the rewrite (and any it scheduled) is done.
pub fn rewrite_aof(con: &mut Connection) {
    q::<String>(con, &["BGREWRITEAOF"]);
    wait_until("the AOF rewrite", || {
        info_field(con, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
            && info_field(con, "persistence", "aof_rewrite_scheduled").as_deref() == Some("0")
    });
}

/// A primary writing an AOF (fsync always) and its replica, synced: for
/// tests that check a replica and an AOF replay against the primary.
pub fn primary_with_aof_and_replica() -> (Server, Server) {
    let primary = Server::with(
        &[],
        &[
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--repl-diskless-sync-delay",
            "0",
        ],
    );
    let port = primary.port().to_string();
    let replica = Server::with(&[], &["--replicaof", "127.0.0.1", &port]);
    wait_replica_synced(&mut primary.conn(), &mut replica.conn());
    (primary, replica)
}

pub fn wait_replica_synced(primary: &mut Connection, replica: &mut Connection) {
    wait_until("master_link_status:up", || {
        info_field(replica, "replication", "master_link_status").as_deref() == Some("up")
    });
    wait_until("replica offset to reach the primary's", || {
        let p = info_field(primary, "replication", "master_repl_offset");
        let r = info_field(replica, "replication", "slave_repl_offset");
        p.is_some() && p == r
    });
}

// ---- raw RESP ------------------------------------------------------------------

/// Encode a command as a RESP array of bulk strings.
pub fn resp_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Length of the first complete RESP2/RESP3 value in `buf`, if complete.
pub fn resp_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&buf[1..line_end]).ok()?;
    let after = line_end + 2;
    match buf.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = head.parse().ok()?;
            let count = if matches!(buf[0], b'%' | b'|') {
                2 * n
            } else {
                n
            };
            let mut pos = after;
            for _ in 0..count.max(0) {
                pos += resp_len(&buf[pos..])?;
            }
            Some(pos)
        }
        other => panic!("unknown RESP type byte {:?}", *other as char),
    }
}

/// Send one command over a raw socket and return the exact reply bytes.
pub fn raw_roundtrip(sock: &mut TcpStream, args: &[&str]) -> Vec<u8> {
    sock.write_all(&resp_command(args)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(n) = resp_len(&buf) {
            assert_eq!(n, buf.len(), "trailing bytes after the reply");
            return buf;
        }
        let n = sock.read(&mut chunk).expect("read reply");
        assert!(n > 0, "connection closed mid-reply: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

// ---- a mixed workload for replication / AOF checks -----------------------------

/// The derived dedupe key of [`mixed_workload`]'s group `g`.
pub const WORKLOAD_DEDUPE: &str = "{orders}:xprocess:g";
/// The explicit DEDUPE key of [`mixed_workload`]'s group `g2`.
pub const WORKLOAD_DEDUPE2: &str = "done";

/// [`mixed_workload_with`] on the default store: an index for the derived
/// key, a Set for the explicit one.
pub fn mixed_workload(con: &mut Connection) -> Vec<&'static str> {
    mixed_workload_with(con, Store::Index)
}

/// Run a workload touching every effect kind, duplicates, per-entry errors,
/// fencing and an explicit DEDUPE key. Group `g` records into the derived
/// key ([`WORKLOAD_DEDUPE`]) in `store` (a Set gets `TTL 600000`, an index
/// is the default for a new key, no option); group `g2` records into
/// [`WORKLOAD_DEDUPE2`] in the other kind of store, without a TTL. So both
/// stores are always exercised. Returns the keys it touched.
pub fn mixed_workload_with(con: &mut Connection, store: Store) -> Vec<&'static str> {
    let ids = pending(
        con,
        "orders",
        "g",
        "A",
        &[
            &[("user", "u1"), ("amount", "5"), ("price", "1.25")],
            &[("user", "u2"), ("amount", "7"), ("price", "0.1")],
            &[("user", "u3"), ("amount", "x"), ("price", "2")],
            &[("user", "u1"), ("amount", "1"), ("price", "3.5")],
        ],
    );
    let effects = [
        "HINCRBY",
        "totals",
        "$user",
        "$amount",
        "HINCRBYFLOAT",
        "revenue",
        "$user",
        "$price",
        "SADD",
        "buyers",
        "$user",
        "XADD",
        "audit",
        "MAXLEN",
        "~",
        "100",
        "FIELDS",
        "2",
        "src",
        "$@id",
        "user",
        "$user",
        "XADD",
        "copy",
        "MAXLEN",
        "2",
        "ENTRY",
    ];
    let run = |con: &mut Connection, opts: &[&str], ids: &[&str]| {
        let n = ids.len().to_string();
        let mut args = vec!["orders", "g"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&effects);
        args.extend_from_slice(&["IDS", &n]);
        args.extend_from_slice(ids);
        slots(&xprocess(con, &args))
    };
    // Group g: the derived key, in `store`; group g2: DEDUPE, the other one.
    let (opts, opts2): (&[&str], &[&str]) = match store {
        Store::Index => (&[], &["STORE", "SET"]),
        Store::Set => (&["STORE", "SET", "TTL", "600000"], &[]),
    };
    let with = |extra: &[&'static str]| [opts, extra].concat();
    let first = [ids[0].as_str(), &ids[1], &ids[2]];
    let r = run(con, opts, &first);
    assert_eq!(r[..2], ["1", "1"], "{r:?}");
    assert!(r[2].starts_with("ERR"), "{r:?}");
    // Retry: duplicates and the same error.
    let r = run(con, opts, &first);
    assert_eq!(r[..2], ["0", "0"], "{r:?}");
    // Fencing: the last entry is claimed by B; A is refused, B applies it.
    q::<Value>(con, &["XCLAIM", "orders", "g", "B", "0", &ids[3], "JUSTID"]);
    let r = run(con, &with(&["CONSUMER", "A"]), &[&ids[3]]);
    assert!(r[0].starts_with("NOTOWNER"), "{r:?}");
    let r = run(con, &with(&["CONSUMER", "B"]), &[&ids[3]]);
    assert_eq!(r, ["1"]);
    // A second group with an explicit dedupe key and no TTL.
    q::<String>(con, &["XGROUP", "CREATE", "orders", "g2", "0"]);
    let mut args = vec!["orders", "g2", "DEDUPE", WORKLOAD_DEDUPE2];
    args.extend_from_slice(opts2);
    args.extend_from_slice(&[
        "HINCRBY", "g2totals", "$user", "1", "XADD", "audit", "FIELDS", "1", "g2", "$@id", "IDS",
        "2", &ids[0], &ids[1],
    ]);
    let r = slots(&xprocess(con, &args));
    assert_eq!(r, ["1", "1"]);
    let other = match store {
        Store::Index => Store::Set,
        Store::Set => Store::Index,
    };
    for (key, want) in [(WORKLOAD_DEDUPE, store), (WORKLOAD_DEDUPE2, other)] {
        assert_eq!(q::<String>(con, &["TYPE", key]), want.type_name(), "{key}");
    }
    vec![
        "orders",
        "totals",
        "revenue",
        "buyers",
        "audit",
        "copy",
        "g2totals",
        WORKLOAD_DEDUPE2,
        WORKLOAD_DEDUPE,
    ]
}

/// A comparable picture of `keys`: type, content, stream groups and PEL,
/// whether a TTL is set, and DEBUG DIGEST-VALUE.
pub fn snapshot(con: &mut Connection, keys: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for &key in keys {
        let kind: String = q(con, &["TYPE", key]);
        let content = match kind.as_str() {
            "hash" => {
                let flat: Vec<String> = q(con, &["HGETALL", key]);
                let mut pairs: Vec<String> = flat.chunks(2).map(|c| c.join("=")).collect();
                pairs.sort();
                format!("{pairs:?}")
            }
            "set" => {
                let mut m: Vec<String> = q(con, &["SMEMBERS", key]);
                m.sort();
                format!("{m:?}")
            }
            "stream" => {
                // Group state without `entries-read` / `lag`: Redis itself does
                // not restore those exactly from XREADGROUP's propagation.
                let groups: Vec<Vec<Value>> = q(con, &["XINFO", "GROUPS", key]);
                let groups: Vec<String> = groups
                    .iter()
                    .map(|g| {
                        let keep = ["name", "consumers", "pending", "last-delivered-id"];
                        let pairs = g.chunks(2).filter(|kv| {
                            let k: String = redis::from_redis_value(&kv[0]).unwrap_or_default();
                            keep.contains(&k.as_str())
                        });
                        format!("{:?}", pairs.collect::<Vec<_>>())
                    })
                    .collect();
                // The PEL without idle times, for the groups that exist.
                let pels: Vec<String> = ["g", "g2"]
                    .iter()
                    .filter_map(|g| {
                        let rows = call(con, &["XPENDING", key, g, "-", "+", "100"]);
                        let rows: Vec<(String, String, i64, i64)> =
                            redis::from_redis_value(&rows).ok()?;
                        let rows: Vec<_> = rows.into_iter().map(|(i, c, _, n)| (i, c, n)).collect();
                        Some(format!("{g}:{rows:?}"))
                    })
                    .collect();
                format!("{:?} {groups:?} {pels:?}", xrange(con, key))
            }
            "xproc-idx" => {
                // All but `memory` (allocation sizes, not content).
                let mut info = dedupe_info(con, key);
                info.remove("memory");
                format!("{info:?}")
            }
            other => other.to_string(),
        };
        let has_ttl = q::<i64>(con, &["PTTL", key]) > 0;
        out.push(format!("{key}: {kind} ttl={has_ttl} {content}"));
    }
    out.extend(digest_value(con, keys));
    out
}

/// Redis' CRC-64 (Jones, reflected), which closes every DUMP payload.
pub fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut crc = 0u64;
    for &byte in data {
        crc ^= u64::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// A kill -9 during the AOF's write can tear it (Linux stops a write to a
/// file at a page boundary for a fatal signal). Redis then truncates the
/// file after the last whole command, even inside a MULTI: the next writes
/// are appended after a MULTI with no EXEC, and the load after that nests
/// the two (`MULTI calls can not be nested`) and applies part of the torn
/// transaction. What Redis does for a MULTI that ends the file whole, done
/// here for a torn one too before a restart: cut the file before that
/// MULTI, so a transaction is in the AOF whole or not at all.
fn drop_torn_transaction(dir: &Path) {
    let Some(path) = last_incr_aof(&dir.join("appendonlydir")) else {
        return;
    };
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    if let Some(cut) = torn_transaction_start(&bytes) {
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(cut as u64).unwrap();
        eprintln!(
            "{}: dropped a torn transaction at offset {cut}",
            path.display()
        );
    }
}

/// The incr file with the highest sequence number (`<name>.<n>.incr.aof`).
fn last_incr_aof(dir: &Path) -> Option<PathBuf> {
    let seq = |p: &PathBuf| -> Option<u64> {
        let name = p.file_name()?.to_str()?.strip_suffix(".incr.aof")?;
        name.rsplit('.').next()?.parse().ok()
    };
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| seq(p).is_some())
        .max_by_key(|p| seq(p))
}

/// Where the file's last MULTI starts, if the file ends inside it (no
/// EXEC, or a command cut short); `None` when it ends whole, or holds
/// anything but RESP arrays.
pub fn torn_transaction_start(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    let mut multi = None;
    while at < bytes.len() {
        let Some((name, next)) = aof_command(bytes, at) else {
            return multi; // cut short: inside a MULTI, drop from it
        };
        if name.eq_ignore_ascii_case(b"multi") {
            multi = Some(at);
        } else if name.eq_ignore_ascii_case(b"exec") {
            multi = None;
        }
        at = next;
    }
    multi
}

/// The name of the command at `at` and where the next one starts.
fn aof_command(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let line = |from: usize| -> Option<(&[u8], usize)> {
        let end = from + bytes.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((&bytes[from..end], end + 2))
    };
    let (head, mut next) = line(at)?;
    let count: usize = std::str::from_utf8(head.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    let mut name: &[u8] = &[];
    for n in 0..count {
        let (len, body) = line(next)?;
        let len: usize = std::str::from_utf8(len.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        let arg = bytes.get(body..body + len)?;
        if bytes.get(body + len..body + len + 2)? != b"\r\n" {
            return None;
        }
        if n == 0 {
            name = arg;
        }
        next = body + len + 2;
    }
    Some((name, next))
}
