//! Failover: a primary with a replica under load; the
//! primary is `kill -9`ed, the replica promoted with `REPLICAOF NO ONE`, and
//! the consumers move to it, recover what is pending with XAUTOCLAIM and
//! finish.
//!
//! Each round of a run: a fresh replica attaches to the current primary and
//! syncs under load; optionally the replica is cut off from the primary (a
//! partition: `REPLICAOF` to a dead port) while the primary keeps processing,
//! so there is a real unreplicated tail; then the primary is killed and the
//! replica promoted.
//!
//! Checked on the last primary: every entry of its stream has exactly one
//! receipt, per-customer totals equal the sum of the amounts of the entries in
//! its stream, the dedupe store holds exactly the stream's IDs, nothing is
//! pending. Entries whose XADD never reached the replica are lost for the
//! producer (they are not in the stream), and work the old primary did but
//! never replicated is redone once on the new one: both are counted and
//! printed, never asserted away.
//!
//! With WAIT: consumers call `WAIT 1 <timeout>` after each XPROCESS and count
//! the entries it applied (`1`) as done only when WAIT reports a replica. Every
//! entry counted as done must be on the last primary, with its receipt and
//! dedupe record, and must never have been redone after a failover.
//!
//! Every run is made once per dedupe store: the dedupe index (the default
//! for a new dedupe key) and a plain Set (`STORE SET` on every call). A Set
//! is read with SMEMBERS; an index, which cannot be listed, with
//! XPROCESS.EXISTS over the stream's IDs and XPROCESS.INFO's `recorded`
//! (records of IDs outside the stream), and once everything is processed it
//! must be one range without holes.
//!
//! Environment: `FAILOVER_ROUNDS` (3 with the index, 2 with a Set when
//! unset; both stores run the given number when set, as `make failover`
//! does), `FAILOVER_ENTRIES` (entries processed per round before the kill,
//! 300), `FAILOVER_SEED` (random, printed).

mod common;

use common::rng::Rng;

use common::dedupe::{index_settled, read_dedupe, Dedupe};
use common::{Server, Store};
use redis::{Connection, ConnectionLike, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

const STREAM: &str = "payments";
const GROUP: &str = "billing";
const TOTALS: &str = "totals";
const RECEIPTS: &str = "receipts";
const DEDUPE: &str = "{payments}:xprocess:billing";
const CONSUMERS: usize = 3;
const CUSTOMERS: u64 = 7;
/// Producer stays at most this many entries ahead of the consumers.
const MAX_BACKLOG: u64 = 200;
/// Bound for every wait in this file (failover, drain, reconnect).
const DEADLINE: Duration = Duration::from_secs(60);
/// WAIT timeout in milliseconds.
const WAIT_MS: &str = "200";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Which server is the primary now. Port 0 while a failover is in progress.
struct Shared {
    /// The dedupe store every XPROCESS call uses.
    store: Store,
    port: AtomicU16,
    epoch: AtomicU64,
    stop_producer: AtomicBool,
    stop_consumers: AtomicBool,
    produced: AtomicU64,
    /// Entries for which some consumer got `1` (any epoch).
    applied: AtomicU64,
}

fn try_connect(port: u16) -> Option<Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    con.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    // Only a primary will do: a replica would answer READONLY.
    let role: Vec<Value> = redis::cmd("ROLE").query(&mut con).ok()?;
    match role.first() {
        Some(Value::BulkString(r)) if r == b"master" => Some(con),
        _ => None,
    }
}

/// Connect to the current primary, polling through a failover. `None` once
/// the run is stopping.
fn connect(shared: &Shared, stop: &AtomicBool) -> Option<(Connection, u64)> {
    let deadline = Instant::now() + DEADLINE;
    while !stop.load(SeqCst) {
        let epoch = shared.epoch.load(SeqCst);
        let port = shared.port.load(SeqCst);
        if port != 0 {
            if let Some(con) = try_connect(port) {
                if shared.epoch.load(SeqCst) == epoch {
                    return Some((con, epoch));
                }
            }
        }
        assert!(Instant::now() < deadline, "no primary to connect to");
        thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Stops every thread of a run when dropped, also when the run panics, so
/// `thread::scope` never waits forever for them.
struct StopOnDrop<'a>(&'a Shared);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop_producer.store(true, SeqCst);
        self.0.stop_consumers.store(true, SeqCst);
    }
}

fn cmd(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

/// What one consumer saw.
#[derive(Default)]
struct ConsumerLog {
    /// (epoch, id) for every `1` reply.
    applied: Vec<(u64, String)>,
    /// Entries applied (`1`) and confirmed by WAIT on >= 1 replica.
    confirmed: Vec<String>,
    duplicates: u64,
    reconnects: u64,
    /// Anything that must not happen (per-entry errors, bad replies).
    problems: Vec<String>,
}

const EFFECTS: [&str; 13] = [
    "HINCRBY",
    TOTALS,
    "$customer",
    "$amount",
    "XADD",
    RECEIPTS,
    "FIELDS",
    "2",
    "src",
    "$@id",
    "amount",
    "$amount",
    "IDS",
];

fn producer(shared: &Shared, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut acked = Vec::new();
    let Some((mut con, _)) = connect(shared, &shared.stop_producer) else {
        return acked;
    };
    while !shared.stop_producer.load(SeqCst) {
        // Throttle: stay close to the consumers (polling, not sleeping long).
        if shared.produced.load(SeqCst) > shared.applied.load(SeqCst) + MAX_BACKLOG {
            thread::sleep(Duration::from_millis(1));
            continue;
        }
        let customer = format!("c{}", rng.next() % CUSTOMERS);
        let amount = (1 + rng.next() % 1000).to_string();
        let add = cmd(&[
            "XADD", STREAM, "*", "customer", &customer, "amount", &amount,
        ]);
        match add.query::<String>(&mut con) {
            Ok(id) => {
                acked.push(id);
                shared.produced.fetch_add(1, SeqCst);
            }
            Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                match connect(shared, &shared.stop_producer) {
                    Some((c, _)) => con = c,
                    None => break,
                }
            }
            Err(e) => {
                // READONLY etc. while a failover is settling: reconnect.
                assert!(
                    e.code() == Some("READONLY") || e.code() == Some("LOADING"),
                    "producer XADD: {e}"
                );
                match connect(shared, &shared.stop_producer) {
                    Some((c, _)) => con = c,
                    None => break,
                }
            }
        }
    }
    acked
}

/// Process `ids` with XPROCESS (then WAIT if `use_wait`). `Err` means the
/// connection is gone.
fn process(
    con: &mut Connection,
    epoch: u64,
    ids: &[String],
    use_wait: bool,
    shared: &Shared,
    log: &mut ConsumerLog,
) -> Result<(), ()> {
    if ids.is_empty() {
        return Ok(());
    }
    let n = ids.len().to_string();
    let mut args = vec!["XPROCESS", STREAM, GROUP];
    args.extend_from_slice(shared.store.options());
    args.extend_from_slice(&EFFECTS);
    args.push(&n);
    args.extend(ids.iter().map(String::as_str));
    let reply = con.req_command(&cmd(&args)).map_err(|_| ())?;
    let Value::Array(items) = reply else {
        log.problems.push(format!("XPROCESS reply {reply:?}"));
        return Ok(());
    };
    if items.len() != ids.len() {
        log.problems
            .push(format!("{} slots for {} ids", items.len(), ids.len()));
        return Ok(());
    }
    let mut applied_now = Vec::new();
    for (id, item) in ids.iter().zip(items) {
        match item {
            Value::Int(1) => {
                log.applied.push((epoch, id.clone()));
                shared.applied.fetch_add(1, SeqCst);
                applied_now.push(id.clone());
            }
            Value::Int(0) => log.duplicates += 1,
            other => log.problems.push(format!("{id}: {other:?}")),
        }
    }
    if use_wait && !applied_now.is_empty() {
        // WAIT covers this client's writes up to its last propagated one:
        // exactly what this call applied.
        let replicas: i64 = cmd(&["WAIT", "1", WAIT_MS]).query(con).map_err(|_| ())?;
        if replicas >= 1 {
            log.confirmed.extend(applied_now);
        }
    }
    Ok(())
}

/// XAUTOCLAIM everything idle at least `min_idle` ms and process it.
fn recover(
    con: &mut Connection,
    name: &str,
    epoch: u64,
    min_idle: &str,
    use_wait: bool,
    shared: &Shared,
    log: &mut ConsumerLog,
) -> Result<(), ()> {
    let mut cursor = "0-0".to_string();
    for _ in 0..10_000 {
        let (next, ids, _deleted): (String, Vec<String>, Vec<String>) = cmd(&[
            "XAUTOCLAIM",
            STREAM,
            GROUP,
            name,
            min_idle,
            &cursor,
            "COUNT",
            "50",
            "JUSTID",
        ])
        .query(con)
        .map_err(|_| ())?;
        process(con, epoch, &ids, use_wait, shared, log)?;
        if next == "0-0" {
            return Ok(());
        }
        cursor = next;
    }
    panic!("XAUTOCLAIM scan did not finish");
}

type ReadReply = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;

fn consumer(shared: &Shared, name: &str, use_wait: bool) -> ConsumerLog {
    let mut log = ConsumerLog::default();
    let Some((mut con, mut epoch)) = connect(shared, &shared.stop_consumers) else {
        return log;
    };
    let mut last_sweep = Instant::now();
    while !shared.stop_consumers.load(SeqCst) {
        let step = (|| -> Result<(), ()> {
            if last_sweep.elapsed() > Duration::from_millis(500) {
                last_sweep = Instant::now();
                recover(&mut con, name, epoch, "1000", use_wait, shared, &mut log)?;
            }
            let read: ReadReply = cmd(&[
                "XREADGROUP",
                "GROUP",
                GROUP,
                name,
                "COUNT",
                "10",
                "BLOCK",
                "100",
                "STREAMS",
                STREAM,
                ">",
            ])
            .query(&mut con)
            .map_err(|_| ())?;
            let ids: Vec<String> = read
                .unwrap_or_default()
                .into_iter()
                .flat_map(|(_, entries)| entries.into_iter().map(|(id, _)| id))
                .collect();
            process(&mut con, epoch, &ids, use_wait, shared, &mut log)
        })();
        if step.is_err() {
            // The primary is gone: move to the new one and take over
            // everything pending there, whoever held it.
            log.reconnects += 1;
            loop {
                let Some(next) = connect(shared, &shared.stop_consumers) else {
                    return log;
                };
                (con, epoch) = next;
                if recover(&mut con, name, epoch, "0", use_wait, shared, &mut log).is_ok() {
                    break;
                }
            }
        }
    }
    log
}

/// Poll `cond` every 10 ms; every 0.5 s make sure `server` is still alive
/// (a crash must not look like a slow consumer).
fn wait_for(server: &Server, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    let mut polls = 0u64;
    while !cond() {
        polls += 1;
        if polls.is_multiple_of(50) {
            assert_alive(server);
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The crash report section of a server log, if any (Redis prints one on
/// SIGSEGV/abort, a module panic that escaped included).
fn crash_report(server: &Server) -> Option<String> {
    let log = std::fs::read_to_string(server.dir().join("redis.log")).unwrap_or_default();
    let start = log
        .find("REDIS BUG REPORT START")
        .or_else(|| log.find("xprocess: panic"))?;
    let from = (start.saturating_sub(2000)..=start)
        .find(|i| log.is_char_boundary(*i))
        .unwrap_or(start);
    Some(log[from..].chars().take(20_000).collect())
}

fn assert_alive(server: &Server) {
    // A replica loading the primary's RDB answers PING with -LOADING: it is
    // alive, only busy.
    let alive = match redis::Client::open(server.url())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
    {
        Ok(_) => true,
        Err(e) => e.kind() == redis::ErrorKind::BusyLoadingError,
    };
    if !alive {
        panic!(
            "redis-server on port {} died:\n{}",
            server.port(),
            crash_report(server).unwrap_or_else(|| server.log_tail(100))
        );
    }
}

fn info_field(con: &mut Connection, field: &str) -> Option<String> {
    let info: String = cmd(&["INFO", "replication"]).query(con).ok()?;
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
}

fn start_replica(primary_port: u16) -> Server {
    let port = primary_port.to_string();
    let replica = Server::with(&[], &["--replicaof", "127.0.0.1", &port]);
    let mut con = replica.conn();
    wait_for(&replica, "the new replica's link to come up", || {
        info_field(&mut con, "master_link_status").as_deref() == Some("up")
    });
    replica
}

/// The IDs of the stream's entries.
fn stream_ids(con: &mut Connection) -> Vec<String> {
    let entries: Vec<(String, HashMap<String, String>)> =
        cmd(&["XRANGE", STREAM, "-", "+"]).query(con).unwrap();
    entries.into_iter().map(|(id, _)| id).collect()
}

// ---- a run ------------------------------------------------------------------------

struct Report {
    entries: usize,
    produced_acked: usize,
    producer_lost: usize,
    applied_replies: usize,
    redone: usize,
    duplicates: u64,
    confirmed: usize,
    unconfirmed_lost_at_failover: usize,
    reconnects: u64,
    failovers: u64,
}

/// Failovers per run: `FAILOVER_ROUNDS`, else 3 with the index and 2 with a
/// Set (one of each kind: without and after a partition), so that `make
/// test` stays short; `make failover` sets it, for both stores.
fn rounds(store: Store) -> u64 {
    env_u64(
        "FAILOVER_ROUNDS",
        match store {
            Store::Index => 3,
            Store::Set => 2,
        },
    )
}

/// One run: `rounds` failovers, every other one after a partition (or all
/// of them with `partition_every_round`), with `store` as the dedupe store.
fn run(use_wait: bool, partition_every_round: bool, store: Store) -> Report {
    let rounds = rounds(store);
    let per_round = env_u64("FAILOVER_ENTRIES", 300);
    let seed = env_u64("FAILOVER_SEED", {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        t.as_nanos() as u64
    });
    println!(
        "failover: seed {seed}, rounds {rounds}, entries per round {per_round}, wait {use_wait}, \
         store {store:?}"
    );

    let mut primary = Server::start();
    {
        let mut con = primary.conn();
        let _: () = cmd(&["XGROUP", "CREATE", STREAM, GROUP, "$", "MKSTREAM"])
            .query(&mut con)
            .unwrap();
    }
    let shared = Shared {
        store,
        port: AtomicU16::new(primary.port()),
        epoch: AtomicU64::new(0),
        stop_producer: AtomicBool::new(false),
        stop_consumers: AtomicBool::new(false),
        produced: AtomicU64::new(0),
        applied: AtomicU64::new(0),
    };
    // IDs of its stream in the new primary's dedupe store at each promotion
    // (an entry not in its stream cannot be in its store either: the store
    // holds no records of other IDs, checked at the end), and what consumers
    // had applied before it.
    let snapshots: Mutex<Vec<(u64, HashSet<String>)>> = Mutex::new(Vec::new());
    let mut old_servers = Vec::new();

    let (acked, logs) = thread::scope(|s| {
        let _stop = StopOnDrop(&shared);
        let prod = s.spawn(|| producer(&shared, seed));
        let cons: Vec<_> = (0..CONSUMERS)
            .map(|i| {
                let shared = &shared;
                s.spawn(move || consumer(shared, &format!("consumer-{i}"), use_wait))
            })
            .collect();

        let mut rng = Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15);
        for round in 0..rounds {
            let replica = start_replica(primary.port());
            let target = shared.applied.load(SeqCst) + per_round;
            wait_for(&primary, "load on the primary", || {
                shared.applied.load(SeqCst) >= target
            });
            let partition = partition_every_round || round % 2 == 1;
            if partition {
                // Cut the replica off; the primary keeps going alone.
                let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let dead_port = dead.local_addr().unwrap().port().to_string();
                drop(dead);
                let mut rc = replica.conn();
                let _: () = cmd(&["REPLICAOF", "127.0.0.1", &dead_port])
                    .query(&mut rc)
                    .unwrap();
                let target = shared.applied.load(SeqCst) + 50 + rng.next() % 100;
                wait_for(&primary, "load during the partition", || {
                    shared.applied.load(SeqCst) >= target
                });
            } else {
                // Mid-load, at a random point.
                let target = shared.applied.load(SeqCst) + rng.next() % 50;
                wait_for(&primary, "load", || shared.applied.load(SeqCst) >= target);
            }
            // Failover: kill -9 the primary, promote the replica.
            shared.port.store(0, SeqCst);
            primary.kill9();
            let mut rc = replica.conn();
            let _: () = cmd(&["REPLICAOF", "NO", "ONE"]).query(&mut rc).unwrap();
            let epoch = shared.epoch.fetch_add(1, SeqCst) + 1;
            // The producer's throttle compares its count with applied work:
            // entries lost with the old primary would stall it, so reset.
            shared.produced.store(shared.applied.load(SeqCst), SeqCst);
            let in_stream = stream_ids(&mut rc);
            let at_promotion = read_dedupe(&mut rc, store, DEDUPE, &in_stream)
                .unwrap_or_else(|e| panic!("dedupe store at promotion: {e}"))
                .found;
            snapshots.lock().unwrap().push((epoch, at_promotion));
            shared.port.store(replica.port(), SeqCst);
            println!(
                "failover {}: {} (partition: {partition}), applied so far {}",
                round + 1,
                replica.port(),
                shared.applied.load(SeqCst)
            );
            old_servers.push(std::mem::replace(&mut primary, replica));
        }
        // A little more load on the last primary, then drain.
        let target = shared.applied.load(SeqCst) + per_round / 2;
        wait_for(&primary, "load after the last failover", || {
            shared.applied.load(SeqCst) >= target
        });
        shared.stop_producer.store(true, SeqCst);
        let acked = prod.join().expect("producer panicked");
        let mut con = primary.conn();
        wait_for(&primary, "consumers to drain the stream", || {
            let pending: (u64, Value, Value, Value) =
                cmd(&["XPENDING", STREAM, GROUP]).query(&mut con).unwrap();
            let groups: Vec<HashMap<String, Value>> =
                cmd(&["XINFO", "GROUPS", STREAM]).query(&mut con).unwrap();
            let last_delivered: String =
                redis::from_redis_value(&groups[0]["last-delivered-id"]).unwrap();
            let stream: HashMap<String, Value> =
                cmd(&["XINFO", "STREAM", STREAM]).query(&mut con).unwrap();
            let last: String = redis::from_redis_value(&stream["last-generated-id"]).unwrap();
            pending.0 == 0 && last_delivered == last
        });
        shared.stop_consumers.store(true, SeqCst);
        let logs: Vec<ConsumerLog> = cons
            .into_iter()
            .map(|h| h.join().expect("consumer panicked"))
            .collect();
        (acked, logs)
    });
    for server in old_servers.iter().chain([&primary]) {
        if let Some(report) = crash_report(server) {
            panic!(
                "port {}: crash or panic in the log:\n{report}",
                server.port()
            );
        }
    }
    drop(old_servers);

    // ---- checks on the last primary -------------------------------------------
    let mut con = primary.conn();
    let problems: Vec<&String> = logs.iter().flat_map(|l| &l.problems).collect();
    assert!(problems.is_empty(), "unexpected replies: {problems:?}");

    let entries: Vec<(String, HashMap<String, String>)> =
        cmd(&["XRANGE", STREAM, "-", "+"]).query(&mut con).unwrap();
    let ids: HashSet<String> = entries.iter().map(|(id, _)| id.clone()).collect();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for (_, f) in &entries {
        *expected.entry(f["customer"].clone()).or_default() += f["amount"].parse::<i64>().unwrap();
    }
    let totals: BTreeMap<String, i64> = cmd(&["HGETALL", TOTALS]).query(&mut con).unwrap();

    let receipts: Vec<(String, HashMap<String, String>)> = cmd(&["XRANGE", RECEIPTS, "-", "+"])
        .query(&mut con)
        .unwrap();
    let mut per_src: HashMap<String, usize> = HashMap::new();
    for (_, f) in &receipts {
        *per_src.entry(f["src"].clone()).or_default() += 1;
    }
    let duplicates: Vec<_> = per_src.iter().filter(|(_, n)| **n > 1).collect();
    let lost: Vec<_> = ids.iter().filter(|id| !per_src.contains_key(*id)).collect();
    let strays: Vec<_> = per_src.keys().filter(|id| !ids.contains(*id)).collect();
    let in_stream: Vec<String> = entries.iter().map(|(id, _)| id.clone()).collect();
    let Dedupe {
        found: dedupe,
        others: dedupe_others,
    } = read_dedupe(&mut con, store, DEDUPE, &in_stream)
        .unwrap_or_else(|e| panic!("dedupe store on the last primary: {e}"));
    let pending: (u64, Value, Value, Value) =
        cmd(&["XPENDING", STREAM, GROUP]).query(&mut con).unwrap();

    // Within one epoch (one server), an entry is applied at most once.
    let mut seen: HashSet<(u64, &str)> = HashSet::new();
    let mut by_id: HashMap<&str, HashSet<u64>> = HashMap::new();
    for (epoch, id) in logs.iter().flat_map(|l| &l.applied) {
        assert!(
            seen.insert((*epoch, id)),
            "{id} applied twice on the same server (epoch {epoch})"
        );
        by_id.entry(id).or_default().insert(*epoch);
    }
    let redone = by_id.values().filter(|e| e.len() > 1).count();
    let applied_replies = seen.len();

    assert!(
        duplicates.is_empty(),
        "entries with several receipts: {duplicates:?}"
    );
    assert!(lost.is_empty(), "entries without a receipt: {lost:?}");
    assert!(
        strays.is_empty(),
        "receipts for entries not in the stream: {strays:?}"
    );
    assert_eq!(totals, expected, "totals != sum of the stream's amounts");
    assert_eq!(dedupe, ids, "dedupe store != the stream's IDs");
    assert_eq!(
        dedupe_others, 0,
        "the dedupe store records IDs that are not in the stream"
    );
    if store == Store::Index {
        let unsettled = index_settled(&mut con, DEDUPE, STREAM);
        assert!(unsettled.is_empty(), "{}", unsettled.join("\n"));
    }
    assert_eq!(pending.0, 0, "entries still pending");
    // Every entry that ended up on the last primary was applied there or
    // replicated to it as applied: it has exactly one receipt (checked above).

    // WAIT: work counted as done survived every failover and was never redone.
    let confirmed: Vec<&String> = logs.iter().flat_map(|l| &l.confirmed).collect();
    let mut confirmed_lost = Vec::new();
    for id in &confirmed {
        if !ids.contains(*id) || !dedupe.contains(*id) || per_src.get(*id) != Some(&1) {
            confirmed_lost.push(format!("{id}: not on the last primary"));
        }
        if by_id.get(id.as_str()).is_some_and(|e| e.len() > 1) {
            confirmed_lost.push(format!("{id}: confirmed by WAIT, redone after a failover"));
        }
    }
    assert!(
        confirmed_lost.is_empty(),
        "work confirmed by WAIT was lost: {confirmed_lost:?}"
    );
    if use_wait {
        assert!(!confirmed.is_empty(), "WAIT never confirmed anything");
    }

    // How much applied-but-unreplicated work each promotion dropped.
    let snapshots = snapshots.into_inner().unwrap();
    let confirmed_set: HashSet<&str> = confirmed.iter().map(|s| s.as_str()).collect();
    let mut unconfirmed_lost = 0;
    for (epoch, dedupe_at_promotion) in &snapshots {
        for (id, epochs) in &by_id {
            if epochs.contains(&(epoch - 1)) && !dedupe_at_promotion.contains(*id) {
                assert!(!confirmed_set.contains(id), "{id} confirmed but lost");
                unconfirmed_lost += 1;
            }
        }
    }
    let acked_set: HashSet<&String> = acked.iter().collect();
    let report = Report {
        entries: ids.len(),
        produced_acked: acked.len(),
        producer_lost: acked_set.iter().filter(|id| !ids.contains(**id)).count(),
        applied_replies,
        redone,
        duplicates: logs.iter().map(|l| l.duplicates).sum(),
        confirmed: confirmed.len(),
        unconfirmed_lost_at_failover: unconfirmed_lost,
        reconnects: logs.iter().map(|l| l.reconnects).sum(),
        failovers: snapshots.len() as u64,
    };
    println!(
        "failover result (wait {use_wait}, store {store:?}): failovers {}, entries on the last primary {}, \
         producer XADDs acked {} (lost with a dead primary {}), `1` replies {}, \
         redone after a failover {}, applied-but-unreplicated at promotion {}, \
         `0` replies {}, confirmed by WAIT {}, consumer reconnects {}; \
         duplicates 0, lost 0",
        report.failovers,
        report.entries,
        report.produced_acked,
        report.producer_lost,
        report.applied_replies,
        report.redone,
        report.unconfirmed_lost_at_failover,
        report.duplicates,
        report.confirmed,
        report.reconnects,
    );
    report
}

/// Kill -9 the primary mid-load (every other round after a partition),
/// promote the replica, finish there: no effect applied twice, nothing lost
/// from what the last primary holds.
/// With the dedupe index, the default store.
#[test]
fn failover_applies_every_entry_once() {
    let r = run(false, false, Store::Index);
    assert_eq!(r.failovers, rounds(Store::Index));
    assert!(r.entries > 0);
}

/// The same with a plain Set as the dedupe store (`STORE SET`).
#[test]
fn failover_applies_every_entry_once_with_a_set() {
    let r = run(false, false, Store::Set);
    assert_eq!(r.failovers, rounds(Store::Set));
    assert!(r.entries > 0);
}

/// Consumers WAIT for one replica after each XPROCESS: everything WAIT
/// confirmed survives the failover (with a partition before every kill, so
/// there is always an unreplicated tail that WAIT did not confirm).
#[test]
fn failover_keeps_work_confirmed_by_wait() {
    let r = run(true, true, Store::Index);
    assert!(r.confirmed > 0);
}

/// The same with a plain Set as the dedupe store (`STORE SET`).
#[test]
fn failover_keeps_work_confirmed_by_wait_with_a_set() {
    let r = run(true, true, Store::Set);
    assert!(r.confirmed > 0);
}
