//! Redis Cluster: a real cluster on localhost (`redis-cli --cluster create`,
//! three primaries with one replica each), workers on hash-tagged streams
//! spread over the shards, and live slot migrations of streams being
//! processed while a producer appends: one with `redis-cli --cluster
//! reshard`, three with CLUSTER SETSLOT + MIGRATE key by key. At the end
//! every stream must show exactly-once effects on whichever node owns its
//! slot (and on that node's replica).
//!
//! The client is our own: it follows MOVED (updating its slot map) and ASK
//! (ASKING first), and retries TRYAGAIN.
//!
//! Migrating key by key opens windows in which some keys of a slot are on the
//! target and others still on the source. The derived dedupe key is not an
//! argument of XPROCESS, so Redis' routing does not see it: a second test
//! builds each window on purpose and checks that XPROCESS neither applies an
//! entry twice nor records it in a second dedupe store.
//!
//! Both tests run once per dedupe store: the dedupe index (the default for a
//! new dedupe key, moved by MIGRATE as a DUMP payload of the module type) and
//! a plain Set (`STORE SET` on every call). A Set is read with SMEMBERS; an
//! index, which cannot be listed, with XPROCESS.EXISTS over the produced IDs
//! and XPROCESS.INFO's `recorded` (records of other IDs), and once
//! everything is processed it must be one range without holes.

mod common;

use common::rng::Rng;

use common::dedupe::{index_settled, read_dedupe, store_info, Dedupe};
use common::*;
use redis::{Connection, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GROUP: &str = "g";
/// Cluster setup and agreement after a migration.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a partly migrated slot is held, so workers run into it.
const WINDOW: Duration = Duration::from_millis(300);
/// Entries idle for this long are taken over with XAUTOCLAIM.
const CLAIM_IDLE_MS: &str = "100";

// ---- slots -------------------------------------------------------------------

/// CRC16/XMODEM, Redis Cluster's key hash.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash slot of `key` (hash tag rule included).
fn key_slot(key: &str) -> u16 {
    let b = key.as_bytes();
    let tag = b.iter().position(|&c| c == b'{').and_then(|open| {
        let rest = &b[open + 1..];
        let close = rest.iter().position(|&c| c == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tag.unwrap_or(b)) % 16384
}

// ---- replies -----------------------------------------------------------------

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        Value::Int(i) => i.to_string(),
        Value::ServerError(_) => error_text(v).unwrap(),
        other => format!("{other:?}"),
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        _ => &[],
    }
}

/// IDs of a list of stream entries (`[[id, [field, value, ...]], ...]`).
fn entry_ids(v: &Value) -> Vec<String> {
    items(v)
        .iter()
        .filter_map(|e| items(e).first().map(text))
        .collect()
}

/// Field `name` of a flat `[field, value, ...]` array.
fn field(flat: &[Value], name: &str) -> Option<String> {
    flat.chunks(2)
        .find(|kv| kv.len() == 2 && text(&kv[0]) == name)
        .map(|kv| text(&kv[1]))
}

/// The same error with entry IDs blanked, to count errors by kind.
fn error_kind(e: &str) -> String {
    e.split(' ')
        .map(|w| {
            let w = w.trim_matches('\'');
            if w.contains('-') && w.split('-').all(|p| p.bytes().all(|c| c.is_ascii_digit())) {
                "<id>"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn connect(port: u16) -> Connection {
    let con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to port {port}: {e}"));
    con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    con
}

fn ok(con: &mut Connection, args: &[&str]) {
    let v = call(con, args);
    assert!(
        matches!(&v, Value::Okay) || text(&v) == "OK",
        "{args:?}: {v:?}"
    );
}

// ---- the cluster ---------------------------------------------------------------

struct Cluster {
    nodes: Vec<Server>,
}

impl Cluster {
    /// `primaries` primaries with `replicas` replicas each, all slots
    /// assigned by `redis-cli --cluster create`, agreed on by every node.
    fn start(primaries: usize, replicas: usize) -> Cluster {
        let config = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        ];
        let nodes: Vec<Server> = (0..primaries * (1 + replicas))
            .map(|_| Server::with(&[], &config))
            .collect();
        let cluster = Cluster { nodes };
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(cluster.ports().iter().map(|p| format!("127.0.0.1:{p}")));
        args.extend([
            "--cluster-replicas".into(),
            replicas.to_string(),
            "--cluster-yes".into(),
        ]);
        let out = run_redis_cli(&args);
        assert!(
            out.contains("All 16384 slots covered"),
            "redis-cli --cluster create:\n{out}"
        );
        cluster.wait_agreement(primaries, replicas);
        cluster
    }

    fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(Server::port).collect()
    }

    fn id(&self, port: u16) -> String {
        q(&mut connect(port), &["CLUSTER", "MYID"])
    }

    /// Slot -> (primary port, replica ports) as node `port` sees it.
    fn slot_map(port: u16) -> Vec<(u16, Vec<u16>)> {
        let mut map = vec![(0, Vec::new()); 16384];
        let slots = call(&mut connect(port), &["CLUSTER", "SLOTS"]);
        for range in items(&slots) {
            let r = items(range);
            let (Value::Int(from), Value::Int(to)) = (&r[0], &r[1]) else {
                panic!("CLUSTER SLOTS: {slots:?}");
            };
            let node_port = |n: &Value| match items(n).get(1) {
                Some(Value::Int(p)) => *p as u16,
                _ => panic!("CLUSTER SLOTS node: {n:?}"),
            };
            let primary = node_port(&r[2]);
            let replicas: Vec<u16> = r[3..].iter().map(node_port).collect();
            for slot in *from..=*to {
                map[slot as usize] = (primary, replicas.clone());
            }
        }
        map
    }

    fn owner(&self, slot: u16) -> u16 {
        Cluster::slot_map(self.nodes[0].port())[slot as usize].0
    }

    fn primaries(&self) -> Vec<u16> {
        let mut p: Vec<u16> = Cluster::slot_map(self.nodes[0].port())
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    /// Every node: `cluster_state:ok` and the same slot map, with all slots
    /// covered by `primaries` primaries having `replicas` replicas each.
    fn wait_agreement(&self, primaries: usize, replicas: usize) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        loop {
            let maps: Vec<_> = self
                .ports()
                .into_iter()
                .map(|p| {
                    let info: String = q(&mut connect(p), &["CLUSTER", "INFO"]);
                    (info.contains("cluster_state:ok"), Cluster::slot_map(p))
                })
                .collect();
            let first = &maps[0].1;
            let owners: HashSet<u16> = first.iter().map(|(p, _)| *p).collect();
            let agreed = maps.iter().all(|(ok, m)| *ok && m == first)
                && !owners.contains(&0)
                && owners.len() == primaries
                && first.iter().all(|(_, r)| r.len() == replicas);
            if agreed {
                return;
            }
            let last = format!(
                "states {:?}, owners {owners:?}",
                maps.iter().map(|(ok, _)| *ok).collect::<Vec<_>>()
            );
            assert!(
                Instant::now() < deadline,
                "cluster did not agree within {CLUSTER_TIMEOUT:?}: {last}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until every node sees `port` as the owner of `slot`.
    fn wait_owner(&self, slot: u16, port: u16) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        while !self
            .ports()
            .into_iter()
            .all(|p| Cluster::slot_map(p)[slot as usize].0 == port)
        {
            assert!(
                Instant::now() < deadline,
                "nodes did not agree that port {port} owns slot {slot}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The keys of `slot` stored on node `port` (no redirection involved).
    fn keys_in_slot(port: u16, slot: u16) -> Vec<String> {
        let mut keys: Vec<String> = q(
            &mut connect(port),
            &["CLUSTER", "GETKEYSINSLOT", &slot.to_string(), "1000"],
        );
        keys.sort();
        keys
    }
}

/// Run redis-cli with `args`, bounded in time; returns stdout + stderr.
fn run_redis_cli(args: &[String]) -> String {
    let bin = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
    let mut child = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let errs = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = out.join().unwrap() + &errs.join().unwrap();
    match status {
        Some(s) if s.success() => text,
        Some(s) => panic!("{bin} {args:?} failed ({s}):\n{text}"),
        None => panic!("{bin} {args:?} timed out:\n{text}"),
    }
}

// ---- a cluster-aware client ----------------------------------------------------

#[derive(Default)]
struct Redirects {
    moved: AtomicU64,
    ask: AtomicU64,
    tryagain: AtomicU64,
}

/// Talks to the slot owner, follows MOVED (updating its slot map) and ASK
/// (ASKING before the retry), and retries TRYAGAIN / CLUSTERDOWN.
struct Client {
    slots: Vec<u16>,
    cons: HashMap<u16, Connection>,
    redirects: Arc<Redirects>,
}

impl Client {
    fn new(seed: u16, redirects: Arc<Redirects>) -> Client {
        Client {
            slots: Cluster::slot_map(seed)
                .into_iter()
                .map(|(p, _)| p)
                .collect(),
            cons: HashMap::new(),
            redirects,
        }
    }

    fn con(&mut self, port: u16) -> &mut Connection {
        self.cons.entry(port).or_insert_with(|| connect(port))
    }

    /// Run `args`, routed by `key`.
    fn run(&mut self, key: &str, args: &[&str]) -> Value {
        let slot = key_slot(key);
        let mut port = self.slots[slot as usize];
        let mut asking = false;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let con = self.con(port);
            if asking {
                ok(con, &["ASKING"]);
            }
            let v = call(con, args);
            let Some(e) = error_text(&v) else {
                return v;
            };
            let words: Vec<&str> = e.split(' ').collect();
            let target = |w: &str| -> u16 { w.rsplit(':').next().unwrap().parse().unwrap() };
            match words[0] {
                "MOVED" => {
                    port = target(words[2]);
                    self.slots[slot as usize] = port;
                    asking = false;
                    self.redirects.moved.fetch_add(1, Ordering::Relaxed);
                }
                "ASK" => {
                    port = target(words[2]);
                    asking = true;
                    self.redirects.ask.fetch_add(1, Ordering::Relaxed);
                }
                "TRYAGAIN" | "CLUSTERDOWN" => {
                    port = self.slots[slot as usize];
                    asking = false;
                    self.redirects.tryagain.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
                _ => return v,
            }
            assert!(
                Instant::now() < deadline,
                "{args:?}: still redirected after 15 s, last reply {e}"
            );
        }
    }
}

// ---- workers and producers -------------------------------------------------------

/// One stream and its effect keys, all with the same hash tag, and the
/// dedupe store its XPROCESS calls use.
#[derive(Clone)]
struct Keys {
    stream: String,
    totals: String,
    receipts: String,
    dedupe: String,
    store: Store,
}

impl Keys {
    fn new(tag: &str, store: Store) -> Keys {
        Keys {
            stream: format!("{{{tag}}}:pay"),
            totals: format!("{{{tag}}}:totals"),
            receipts: format!("{{{tag}}}:receipts"),
            // The derived name, see docs/reference.md, "The dedupe key".
            dedupe: format!("{{{tag}}}:pay:xprocess:{GROUP}"),
            store,
        }
    }

    fn slot(&self) -> u16 {
        key_slot(&self.stream)
    }

    /// XPROCESS with CONSUMER: add `amount` to the `sum` field of `totals`
    /// and write one receipt per entry.
    fn xprocess_args(&self, consumer: Option<&str>, ids: &[String]) -> Vec<String> {
        let mut args: Vec<String> = vec!["XPROCESS".into(), self.stream.clone(), GROUP.into()];
        if let Some(consumer) = consumer {
            args.extend(["CONSUMER".to_string(), consumer.to_string()]);
        }
        args.extend(self.store.options().iter().map(|s| s.to_string()));
        if self.store == Store::Index {
            // The index also remembers business keys: they must move with
            // the slot like the ranges.
            args.extend(["KEY".to_string(), "$pid".to_string()]);
        }
        args.extend(
            [
                "HINCRBY",
                &self.totals,
                "sum",
                "$amount",
                "XADD",
                &self.receipts,
                "FIELDS",
                "2",
                "src",
                "$@id",
                "amount",
                "$amount",
                "IDS",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args.push(ids.len().to_string());
        args.extend(ids.iter().cloned());
        args
    }
}

/// What the workers of one stream saw.
#[derive(Default)]
struct Tally {
    /// Entry ID -> number of `1` replies it got.
    applied: HashMap<String, u32>,
    calls: u64,
    duplicates: u64,
    fenced: u64,
    /// Per-entry errors other than NOTOWNER, by kind.
    errors: BTreeMap<String, u64>,
    /// Repeated calls (a client retrying after a lost reply).
    resends: u64,
    /// Entries a repeated call answered with NOTOWNER instead of `0`.
    resend_fenced: Vec<String>,
    /// Whole-call errors.
    call_errors: BTreeMap<String, u64>,
    claimed: u64,
    dropped_batches: u64,
}

struct Shared {
    stop_producing: AtomicBool,
    stop_working: AtomicBool,
    redirects: Arc<Redirects>,
    tallies: Vec<Mutex<Tally>>,
    /// Per stream: (entry ID, amount) in production order.
    produced: Vec<Mutex<Vec<(String, i64)>>>,
}

fn producer(shared: Arc<Shared>, streams: Vec<Keys>, seed: u16) {
    let mut client = Client::new(seed, shared.redirects.clone());
    let mut n: i64 = 0;
    while !shared.stop_producing.load(Ordering::Relaxed) {
        for (i, keys) in streams.iter().enumerate() {
            n += 1;
            let amount = (n * 7919) % 97 + 1;
            let amount_text = amount.to_string();
            let n_text = n.to_string();
            // A business key unique across producers (KEY $pid).
            let pid = format!("{seed}-{n}");
            let v = client.run(
                &keys.stream,
                &[
                    "XADD",
                    &keys.stream,
                    "*",
                    "amount",
                    &amount_text,
                    "n",
                    &n_text,
                    "pid",
                    &pid,
                ],
            );
            assert!(error_text(&v).is_none(), "XADD {}: {v:?}", keys.stream);
            shared.produced[i].lock().unwrap().push((text(&v), amount));
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// XAUTOCLAIM abandoned entries, XREADGROUP new ones, XPROCESS them with
/// CONSUMER; now and then drop a batch (a crash before XPROCESS) or send the
/// same XPROCESS twice (a retry after a lost reply).
fn worker(shared: Arc<Shared>, index: usize, keys: Keys, consumer: String, seed: u16) {
    let mut client = Client::new(seed, shared.redirects.clone());
    let mut rng = Rng::new(
        0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) * 0x1000_0001) ^ consumer.len() as u64,
    );
    let tally = &shared.tallies[index];
    while !shared.stop_working.load(Ordering::Relaxed) {
        let claimed = client.run(
            &keys.stream,
            &[
                "XAUTOCLAIM",
                &keys.stream,
                GROUP,
                &consumer,
                CLAIM_IDLE_MS,
                "0-0",
                "COUNT",
                "20",
            ],
        );
        let claimed_ids = items(&claimed).get(1).map(entry_ids).unwrap_or_default();
        tally.lock().unwrap().claimed += claimed_ids.len() as u64;
        process_batch(&mut client, &keys, &consumer, &claimed_ids, false, tally);

        let read = client.run(
            &keys.stream,
            &[
                "XREADGROUP",
                "GROUP",
                GROUP,
                &consumer,
                "COUNT",
                "20",
                "BLOCK",
                "20",
                "STREAMS",
                &keys.stream,
                ">",
            ],
        );
        if let Some(e) = error_text(&read) {
            *tally.lock().unwrap().call_errors.entry(e).or_default() += 1;
            continue;
        }
        let ids: Vec<String> = items(&read)
            .iter()
            .flat_map(|s| items(s).get(1).map(entry_ids).unwrap_or_default())
            .collect();
        if ids.is_empty() {
            continue;
        }
        if rng.below(25) == 0 {
            tally.lock().unwrap().dropped_batches += 1;
            continue; // "crashed": someone XAUTOCLAIMs them later
        }
        let resend = rng.below(8) == 0;
        process_batch(&mut client, &keys, &consumer, &ids, resend, tally);
    }
}

fn process_batch(
    client: &mut Client,
    keys: &Keys,
    consumer: &str,
    ids: &[String],
    resend: bool,
    tally: &Mutex<Tally>,
) {
    if ids.is_empty() {
        return;
    }
    let args = keys.xprocess_args(Some(consumer), ids);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = client.run(&keys.stream, &argv);
    let mut t = tally.lock().unwrap();
    t.calls += 1;
    let Value::Array(replies) = &first else {
        *t.call_errors.entry(text(&first)).or_default() += 1;
        return;
    };
    assert_eq!(replies.len(), ids.len(), "{first:?}");
    let mut applied_now = Vec::new();
    for (id, r) in ids.iter().zip(replies) {
        match r {
            Value::Int(1) => {
                *t.applied.entry(id.clone()).or_default() += 1;
                applied_now.push(id.clone());
            }
            Value::Int(0) => t.duplicates += 1,
            _ => {
                let e = error_text(r).unwrap_or_else(|| format!("{r:?}"));
                if e.starts_with("NOTOWNER") {
                    t.fenced += 1;
                } else {
                    *t.errors.entry(error_kind(&e)).or_default() += 1;
                }
            }
        }
    }
    if !resend || applied_now.is_empty() {
        return;
    }
    drop(t);
    // The same call again, as a client does when the reply was lost: every
    // entry it applied must now be a duplicate.
    let again = client.run(&keys.stream, &argv);
    let mut t = tally.lock().unwrap();
    t.resends += 1;
    let Value::Array(replies) = &again else {
        *t.call_errors.entry(text(&again)).or_default() += 1;
        return;
    };
    for (id, r) in ids.iter().zip(replies) {
        if !applied_now.contains(id) {
            continue;
        }
        match r {
            Value::Int(0) => t.duplicates += 1,
            Value::Int(1) => *t.applied.entry(id.clone()).or_default() += 1,
            _ => {
                let e = error_text(r).unwrap_or_else(|| format!("{r:?}"));
                if e.starts_with("NOTOWNER") {
                    t.resend_fenced.push(id.clone());
                } else {
                    *t.errors.entry(error_kind(&e)).or_default() += 1;
                }
            }
        }
    }
}

// ---- migration -----------------------------------------------------------------

/// Move `slot` from primary `from` to primary `to`: IMPORTING / MIGRATING,
/// then MIGRATE the keys one by one in `order` (holding each partial state
/// for `WINDOW` while the workers run), then whatever else the slot holds,
/// then SETSLOT NODE on every primary. Problems are added to `findings`.
fn migrate_slot(
    cluster: &Cluster,
    slot: u16,
    from: u16,
    to: u16,
    order: &[&str],
    findings: &mut Vec<String>,
) {
    let slot_text = slot.to_string();
    let (from_id, to_id) = (cluster.id(from), cluster.id(to));
    let (mut src, mut dst) = (connect(from), connect(to));
    ok(
        &mut dst,
        &["CLUSTER", "SETSLOT", &slot_text, "IMPORTING", &from_id],
    );
    ok(
        &mut src,
        &["CLUSTER", "SETSLOT", &slot_text, "MIGRATING", &to_id],
    );
    for key in order {
        std::thread::sleep(WINDOW);
        migrate_key(&mut src, &mut dst, from, to, slot, key, findings);
    }
    std::thread::sleep(WINDOW);
    // Anything left (or created on the source again during the windows).
    for _ in 0..10 {
        let left = Cluster::keys_in_slot(from, slot);
        if left.is_empty() {
            break;
        }
        for key in &left {
            if order.contains(&key.as_str()) {
                findings.push(format!(
                    "slot {slot}: key '{key}' was created again on the source (port {from}) \
                     after it had been migrated to port {to}"
                ));
            }
            migrate_key(&mut src, &mut dst, from, to, slot, key, findings);
        }
    }
    assert!(
        Cluster::keys_in_slot(from, slot).is_empty(),
        "slot {slot} not emptied on port {from}"
    );
    ok(
        &mut dst,
        &["CLUSTER", "SETSLOT", &slot_text, "NODE", &to_id],
    );
    ok(
        &mut src,
        &["CLUSTER", "SETSLOT", &slot_text, "NODE", &to_id],
    );
    for p in cluster.primaries() {
        if p != from && p != to {
            ok(
                &mut connect(p),
                &["CLUSTER", "SETSLOT", &slot_text, "NODE", &to_id],
            );
        }
    }
    cluster.wait_owner(slot, to);
}

/// `MIGRATE 127.0.0.1 <to> "" 0 5000 [REPLACE] KEYS <key>` on `src`.
fn migrate(src: &mut Connection, to: u16, key: &str, replace: bool) -> Value {
    let to_text = to.to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", &to_text, "", "0", "5000"];
    if replace {
        args.push("REPLACE");
    }
    args.extend(["KEYS", key]);
    call(src, &args)
}

/// MIGRATE one key (no REPLACE: a key already on the target is a finding).
/// On BUSYKEY for a dedupe store, the two are settled on the target (see
/// `settle_busy_dedupe`) so the rest of the run can still be checked; the
/// finding stays.
fn migrate_key(
    src: &mut Connection,
    dst: &mut Connection,
    from: u16,
    to: u16,
    slot: u16,
    key: &str,
    findings: &mut Vec<String>,
) {
    let reply = text(&migrate(src, to, key, false));
    if reply == "OK" || reply == "NOKEY" {
        return;
    }
    // TYPE on the migrating source answers for a key it still has.
    if reply.contains("BUSYKEY") {
        if let Some(store) = Store::of_type(&text(&call(src, &["TYPE", key]))) {
            let how = settle_busy_dedupe(src, dst, to, key, store);
            findings.push(format!(
                "slot {slot}: MIGRATE of '{key}' from port {from} to port {to} failed with \
                 '{reply}': the target already had a dedupe {store:?} of that name created \
                 during the migration; {how}"
            ));
            return;
        }
    }
    panic!("MIGRATE {key} from {from} to {to}: {reply}");
}

/// The dedupe store `key` is on the migrating source `src` and (created
/// during the migration) on the importing target `dst` too: leave one on
/// the target so a run can go on to its checks, and say what was done. Two
/// Sets are merged; an index cannot be merged by hand, so the source's
/// replaces the target's (MIGRATE REPLACE), whose records are lost.
fn settle_busy_dedupe(
    src: &mut Connection,
    dst: &mut Connection,
    to: u16,
    key: &str,
    store: Store,
) -> String {
    match store {
        Store::Set => {
            let on_source: Vec<String> = q(src, &["SMEMBERS", key]);
            ok(dst, &["ASKING"]);
            let on_target: Vec<String> = q(dst, &["SMEMBERS", key]);
            for chunk in on_source.chunks(500) {
                let mut args = vec!["SADD", key];
                args.extend(chunk.iter().map(String::as_str));
                ok(dst, &["ASKING"]);
                q::<i64>(dst, &args);
            }
            q::<i64>(src, &["DEL", key]);
            format!(
                "the target's set had {} members, the source's {} (merged to go on)",
                on_target.len(),
                on_source.len()
            )
        }
        Store::Index => {
            let recorded = |con: &mut Connection, asking: bool| {
                if asking {
                    ok(con, &["ASKING"]);
                }
                store_info(con, key).map(|i| i.get("recorded").cloned().unwrap_or_default())
            };
            let (on_source, on_target) = (recorded(src, false), recorded(dst, true));
            let reply = text(&migrate(src, to, key, true));
            assert_eq!(reply, "OK", "MIGRATE REPLACE {key}");
            format!(
                "the target's index had recorded {on_target:?} IDs, the source's {on_source:?} \
                 (an index cannot be merged: the source's replaced the target's to go on)"
            )
        }
    }
}

// ---- checks --------------------------------------------------------------------

/// Exactly-once checks of one stream on the node that owns its slot, and
/// on that node's replica.
fn check_stream(
    cluster: &Cluster,
    keys: &Keys,
    produced: &[(String, i64)],
    tally: &Tally,
    problems: &mut Vec<String>,
) {
    let owner = cluster.owner(keys.slot());
    let mut con = connect(owner);
    let mut fail = |what: String| problems.push(format!("{} (port {owner}): {what}", keys.stream));

    let ids: Vec<String> = produced.iter().map(|(id, _)| id.clone()).collect();
    let expected_sum: i64 = produced.iter().map(|(_, a)| a).sum();
    let in_stream = entry_ids(&call(&mut con, &["XRANGE", &keys.stream, "-", "+"]));
    if in_stream != ids {
        fail(format!(
            "stream holds {} entries, {} were produced",
            in_stream.len(),
            ids.len()
        ));
    }
    let sum: Option<String> = q(&mut con, &["HGET", &keys.totals, "sum"]);
    let sum: i64 = sum.as_deref().unwrap_or("0").parse().unwrap();
    if sum != expected_sum {
        fail(format!(
            "totals sum {sum}, produced amounts sum to {expected_sum}"
        ));
    }
    let receipts = call(&mut con, &["XRANGE", &keys.receipts, "-", "+"]);
    let mut per_entry: HashMap<String, u32> = HashMap::new();
    let amounts: HashMap<&str, i64> = produced.iter().map(|(i, a)| (i.as_str(), *a)).collect();
    for r in items(&receipts) {
        let fields = items(&items(r)[1]);
        let src = field(fields, "src").unwrap_or_default();
        let amount = field(fields, "amount").unwrap_or_default();
        if amounts.get(src.as_str()).map(i64::to_string) != Some(amount.clone()) {
            fail(format!("receipt for '{src}' has amount {amount}"));
        }
        *per_entry.entry(src).or_default() += 1;
    }
    let extra: Vec<_> = per_entry.iter().filter(|(_, &n)| n > 1).collect();
    let missing = ids.iter().filter(|i| !per_entry.contains_key(*i)).count();
    if !extra.is_empty() || missing > 0 || per_entry.len() != ids.len() {
        fail(format!(
            "{} receipts for {} entries: {} entries without one, more than one for {extra:?}",
            items(&receipts).len(),
            ids.len(),
            missing
        ));
    }
    let summary = call(&mut con, &["XPENDING", &keys.stream, GROUP]);
    if text(&items(&summary)[0]) != "0" {
        fail(format!("PEL not empty: {summary:?}"));
    }
    // The dedupe records, on the owner of the slot.
    let dedupe = read_dedupe(&mut con, keys.store, &keys.dedupe, &ids);
    match &dedupe {
        Ok(d) if d.found.len() == ids.len() && d.others == 0 => {}
        Ok(d) => fail(format!(
            "dedupe {:?} records {} of the {} processed IDs ({} missing from it) and {} extra",
            keys.store,
            d.found.len(),
            ids.len(),
            ids.len() - d.found.len(),
            d.others
        )),
        Err(e) => fail(e.clone()),
    }
    if keys.store == Store::Index {
        for p in index_settled(&mut con, &keys.dedupe, &keys.stream) {
            fail(p);
        }
    }
    let pids = business_keys(&mut con, keys);
    if keys.store == Store::Index {
        let missing = keys_missing(&mut con, keys, &pids);
        if missing > 0 {
            fail(format!(
                "{missing} of {} business keys not remembered",
                pids.len()
            ));
        }
    }
    let twice: Vec<_> = tally.applied.iter().filter(|(_, &n)| n > 1).collect();
    let never = ids
        .iter()
        .filter(|i| !tally.applied.contains_key(*i))
        .count();
    if !twice.is_empty() || never > 0 {
        fail(format!(
            "XPROCESS replied 1 more than once for {twice:?}, never for {never} entries"
        ));
    }
    for p in cluster.primaries() {
        let stray = Cluster::keys_in_slot(p, keys.slot());
        if p != owner && !stray.is_empty() {
            fail(format!("port {p}, not the owner, still holds {stray:?}"));
        }
    }
    // The owner's replica has the same picture.
    let replicas = &Cluster::slot_map(owner)[keys.slot() as usize].1;
    for &r in replicas {
        let mut rc = connect(r);
        wait_replica_synced(&mut con, &mut rc);
        ok(&mut rc, &["READONLY"]);
        let rsum: Option<String> = q(&mut rc, &["HGET", &keys.totals, "sum"]);
        let rlen: i64 = q(&mut rc, &["XLEN", &keys.receipts]);
        let rdedupe = read_dedupe(&mut rc, keys.store, &keys.dedupe, &ids);
        if rsum.as_deref() != Some(sum.to_string().as_str())
            || rlen != items(&receipts).len() as i64
            || rdedupe != dedupe
        {
            let count = |d: &Result<Dedupe, String>| match d {
                Ok(d) => format!(
                    "{} of the processed IDs and {} other",
                    d.found.len(),
                    d.others
                ),
                Err(e) => e.clone(),
            };
            fail(format!(
                "replica {r}: sum {rsum:?}, {rlen} receipts, dedupe IDs: {} (owner: {})",
                count(&rdedupe),
                count(&dedupe)
            ));
        }
        if keys.store == Store::Index {
            for p in index_settled(&mut rc, &keys.dedupe, &keys.stream) {
                fail(format!("replica {r}: {p}"));
            }
            let missing = keys_missing(&mut rc, keys, &pids);
            if missing > 0 {
                fail(format!(
                    "replica {r}: {missing} of {} business keys not remembered",
                    pids.len()
                ));
            }
        }
    }
}

/// The `pid`s of the stream's entries.
fn business_keys(con: &mut Connection, keys: &Keys) -> Vec<String> {
    let entries = call(con, &["XRANGE", &keys.stream, "-", "+"]);
    items(&entries)
        .iter()
        .filter_map(|e| field(items(&items(e)[1]), "pid"))
        .collect()
}

/// How many of `pids` the dedupe index does not remember.
fn keys_missing(con: &mut Connection, keys: &Keys, pids: &[String]) -> usize {
    pids.chunks(500)
        .map(|chunk| {
            let mut args = vec!["XPROCESS.EXISTS", keys.dedupe.as_str(), "KEY"];
            args.extend(chunk.iter().map(String::as_str));
            let flags: Vec<i64> = q(con, &args);
            flags.iter().filter(|f| **f != 1).count()
        })
        .sum()
}

// ---- tests ---------------------------------------------------------------------

#[test]
fn key_slot_matches_the_server() {
    let cluster = Cluster::start(3, 0);
    let mut con = connect(cluster.ports()[0]);
    for key in [
        "{s1}:pay",
        "{s1}:pay:xprocess:g",
        "pay",
        "a{b",
        "{}x",
        "x{}{y}",
        "{a}{b}",
    ] {
        let server: i64 = q(&mut con, &["CLUSTER", "KEYSLOT", key]);
        assert_eq!(i64::from(key_slot(key)), server, "{key}");
    }
}

/// The live run: 4 streams over 3 shards, 2 workers each, one producer;
/// the slot of one stream makes a round trip (dedupe store first), the slot
/// of another moves with its dedupe store last, a fifth moves with
/// `redis-cli --cluster reshard`. With the dedupe index, the default store.
#[test]
fn exactly_once_across_live_slot_migrations() {
    live_slot_migrations(Store::Index);
}

/// The same with a plain Set as the dedupe store (`STORE SET`).
#[test]
fn exactly_once_across_live_slot_migrations_with_a_set() {
    live_slot_migrations(Store::Set);
}

fn live_slot_migrations(store: Store) {
    let started = Instant::now();
    let cluster = Cluster::start(3, 1);
    let primaries = cluster.primaries();
    let seed = cluster.ports()[0];

    // Pick tags so every primary owns at least one stream, plus one more.
    let mut streams: Vec<Keys> = Vec::new();
    let mut covered = HashSet::new();
    for n in 1.. {
        let keys = Keys::new(&format!("s{n}"), store);
        let owner = cluster.owner(keys.slot());
        if covered.insert(owner) || (covered.len() == primaries.len() && streams.len() < 4) {
            streams.push(keys);
        }
        if streams.len() == 4 && covered.len() == primaries.len() {
            break;
        }
    }
    // A fifth stream whose slot is the lowest one of its primary, so that
    // `redis-cli --cluster reshard --cluster-slots 1` moves exactly it.
    let map = Cluster::slot_map(seed);
    let lowest: HashSet<u16> = primaries
        .iter()
        .map(|&p| map.iter().position(|(o, _)| *o == p).unwrap() as u16)
        .collect();
    let resharded = (1..)
        .map(|n| Keys::new(&format!("r{n}"), store))
        .find(|k| lowest.contains(&k.slot()))
        .unwrap();
    streams.push(resharded);
    let redirects = Arc::new(Redirects::default());
    let mut setup = Client::new(seed, redirects.clone());
    for keys in &streams {
        let v = setup.run(
            &keys.stream,
            &["XGROUP", "CREATE", &keys.stream, GROUP, "$", "MKSTREAM"],
        );
        assert_eq!(text(&v), "OK", "{v:?}");
    }

    // CROSSSLOT: an effect key of another stream's slot, or a DEDUPE key
    // elsewhere, is refused before anything runs.
    {
        let (a, b) = (&streams[0], &streams[1]);
        let id = text(&setup.run(
            &a.stream,
            &["XADD", &a.stream, "*", "amount", "1", "pid", "crossslot"],
        ));
        let crossing: [&[&str]; 2] = [
            &[
                "XPROCESS", &a.stream, GROUP, "HINCRBY", &b.totals, "sum", "$amount", "IDS", "1",
                &id,
            ],
            &[
                "XPROCESS",
                &a.stream,
                GROUP,
                "DEDUPE",
                "elsewhere",
                "HINCRBY",
                &a.totals,
                "sum",
                "$amount",
                "IDS",
                "1",
                &id,
            ],
        ];
        for args in crossing {
            let v = setup.run(&a.stream, args);
            let e = err(&v);
            assert!(
                e.starts_with("CROSSSLOT Keys in request don't hash to the same slot"),
                "{args:?}: {e}"
            );
        }
        let mut owner = connect(cluster.owner(a.slot()));
        assert!(!exists(&mut owner, &a.totals));
        assert!(!exists(&mut owner, &a.dedupe));
        // Not produced by the producer: remove it again.
        q::<i64>(&mut owner, &["XDEL", &a.stream, &id]);
    }

    let shared = Arc::new(Shared {
        stop_producing: AtomicBool::new(false),
        stop_working: AtomicBool::new(false),
        redirects: redirects.clone(),
        tallies: streams.iter().map(|_| Mutex::default()).collect(),
        produced: streams.iter().map(|_| Mutex::default()).collect(),
    });
    let mut threads = Vec::new();
    {
        let (shared, streams) = (shared.clone(), streams.clone());
        threads.push(std::thread::spawn(move || producer(shared, streams, seed)));
    }
    for (i, keys) in streams.iter().enumerate() {
        for w in ["a", "b"] {
            let (shared, keys) = (shared.clone(), keys.clone());
            let consumer = format!("worker-{i}{w}");
            threads.push(std::thread::spawn(move || {
                worker(shared, i, keys, consumer, seed)
            }));
        }
    }
    // Let the effect keys and dedupe stores come into being.
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    while shared
        .tallies
        .iter()
        .any(|t| t.lock().unwrap().applied.len() < 50)
    {
        assert!(Instant::now() < deadline, "workers made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }

    let mut findings = Vec::new();
    let mut moves = Vec::new();
    let t_migrations = Instant::now();
    // Stream 4 with redis-cli --cluster reshard: it MIGRATEs up to
    // --cluster-pipeline (default 10) keys per call, so the four keys of the
    // tag move together and no window opens.
    let k = &streams[4];
    let from = cluster.owner(k.slot());
    let to = *primaries.iter().find(|&&p| p != from).unwrap();
    let out = run_redis_cli(&[
        "--cluster".into(),
        "reshard".into(),
        format!("127.0.0.1:{from}"),
        "--cluster-from".into(),
        cluster.id(from),
        "--cluster-to".into(),
        cluster.id(to),
        "--cluster-slots".into(),
        "1".into(),
        "--cluster-yes".into(),
    ]);
    assert!(
        out.contains(&format!("Moving slot {} from", k.slot())),
        "reshard did not move slot {}:\n{out}",
        k.slot()
    );
    cluster.wait_owner(k.slot(), to);
    moves.push(format!(
        "{} slot {}: {from} -> {to} (redis-cli --cluster reshard)",
        k.stream,
        k.slot()
    ));
    // Stream 0: dedupe store first, stream last; then back home the same way.
    let k = &streams[0];
    let home = cluster.owner(k.slot());
    let away = *primaries.iter().find(|&&p| p != home).unwrap();
    let dedupe_first = [&k.dedupe[..], &k.totals, &k.receipts, &k.stream];
    migrate_slot(&cluster, k.slot(), home, away, &dedupe_first, &mut findings);
    moves.push(format!(
        "{} slot {}: {home} -> {away} (dedupe store first)",
        k.stream,
        k.slot()
    ));
    migrate_slot(&cluster, k.slot(), away, home, &dedupe_first, &mut findings);
    moves.push(format!(
        "{} slot {}: {away} -> {home} (dedupe store first)",
        k.stream,
        k.slot()
    ));
    // Stream 1: stream and effect keys first, the dedupe store last.
    let k = &streams[1];
    let from = cluster.owner(k.slot());
    let to = *primaries.iter().find(|&&p| p != from).unwrap();
    let dedupe_last = [&k.stream[..], &k.totals, &k.receipts, &k.dedupe];
    migrate_slot(&cluster, k.slot(), from, to, &dedupe_last, &mut findings);
    moves.push(format!(
        "{} slot {}: {from} -> {to} (dedupe store last)",
        k.stream,
        k.slot()
    ));

    let migrations_took = t_migrations.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    shared.stop_producing.store(true, Ordering::Relaxed);
    let producer_thread = threads.remove(0);
    producer_thread.join().expect("producer panicked");

    // Drain: every produced entry delivered and nothing pending.
    let mut client = Client::new(seed, redirects.clone());
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    let mut drained = false;
    while Instant::now() < deadline {
        drained = streams.iter().enumerate().all(|(i, keys)| {
            let last = shared.produced[i]
                .lock()
                .unwrap()
                .last()
                .map(|(id, _)| id.clone());
            let summary = client.run(&keys.stream, &["XPENDING", &keys.stream, GROUP]);
            let groups = client.run(&keys.stream, &["XINFO", "GROUPS", &keys.stream]);
            let delivered = items(&groups)
                .first()
                .and_then(|g| field(items(g), "last-delivered-id"));
            text(&items(&summary)[0]) == "0" && delivered == last
        });
        if drained {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    shared.stop_working.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("worker panicked");
    }

    let mut problems = Vec::new();
    if !drained {
        problems.push("streams not drained within the deadline".to_string());
    }
    let mut summary = Vec::new();
    for (i, keys) in streams.iter().enumerate() {
        let produced = shared.produced[i].lock().unwrap();
        let tally = shared.tallies[i].lock().unwrap();
        check_stream(&cluster, keys, &produced, &tally, &mut problems);
        summary.push(format!(
            "{} (slot {}, now on {}): {} entries, {} calls, {} applied, {} duplicates, \
             {} fenced, {} claimed, {} dropped batches, {} resends ({} answered NOTOWNER \
             instead of 0), errors {:?}, call errors {:?}",
            keys.stream,
            keys.slot(),
            cluster.owner(keys.slot()),
            produced.len(),
            tally.calls,
            tally.applied.values().sum::<u32>(),
            tally.duplicates,
            tally.fenced,
            tally.claimed,
            tally.dropped_batches,
            tally.resends,
            tally.resend_fenced.len(),
            tally.errors,
            tally.call_errors,
        ));
    }
    let report = format!(
        "dedupe store: {store:?}\nmigrations: {moves:#?}\nredirects: {} MOVED, {} ASK, {} TRYAGAIN/CLUSTERDOWN\n{}\n\
         findings: {findings:#?}\nproblems: {problems:#?}\nmigrations took {migrations_took:?}, \
         runtime {:?}",
        redirects.moved.load(Ordering::Relaxed),
        redirects.ask.load(Ordering::Relaxed),
        redirects.tryagain.load(Ordering::Relaxed),
        summary.join("\n"),
        started.elapsed()
    );
    eprintln!("{report}");
    assert!(findings.is_empty() && problems.is_empty(), "{report}");
}

/// Both windows of a key-by-key migration, built on purpose, with the calls
/// a worker sends in them: a retry of an entry already processed (without
/// CONSUMER, which the README allows) and a new pending entry (with
/// CONSUMER). Neither may be applied unless its dedupe record lands in the
/// one dedupe store of the stream; afterwards the store must migrate cleanly
/// and every entry be applied exactly once. With the dedupe index, the
/// default store.
#[test]
fn migration_windows_never_apply_twice() {
    migration_windows(Store::Index);
}

/// The same with a plain Set as the dedupe store (`STORE SET`).
#[test]
fn migration_windows_never_apply_twice_with_a_set() {
    migration_windows(Store::Set);
}

fn migration_windows(store: Store) {
    let cluster = Cluster::start(3, 0);
    let keys = Keys::new("w", store);
    let slot = keys.slot();
    let slot_text = slot.to_string();
    let a = cluster.owner(slot);
    let others: Vec<u16> = cluster
        .primaries()
        .into_iter()
        .filter(|&p| p != a)
        .collect();
    let (b, c) = (others[0], others[1]);
    let mut log: Vec<String> = Vec::new();
    let mut findings: Vec<String> = Vec::new();
    let where_keys = |ports: &[u16]| -> String {
        ports
            .iter()
            .map(|&p| format!("port {p}: {:?}", Cluster::keys_in_slot(p, slot)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let run = |con: &mut Connection, asking: bool, args: &[String]| -> Value {
        if asking {
            ok(con, &["ASKING"]);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        call(con, &argv)
    };
    let sum = |con: &mut Connection, asking: bool| -> i64 {
        if asking {
            ok(con, &["ASKING"]);
        }
        let v: Option<String> = q(con, &["HGET", &keys.totals, "sum"]);
        v.map_or(0, |s| s.parse().unwrap())
    };
    let setslot = |port: u16, args: &[&str]| {
        let mut full = vec!["CLUSTER", "SETSLOT", &slot_text];
        full.extend_from_slice(args);
        ok(&mut connect(port), &full);
    };
    let finish_move = |to: u16| {
        let id = cluster.id(to);
        for p in cluster.primaries() {
            setslot(p, &["NODE", &id]);
        }
        cluster.wait_owner(slot, to);
    };
    let migrate = |from: u16, to: u16, key: &str| -> String {
        text(&call(
            &mut connect(from),
            &[
                "MIGRATE",
                "127.0.0.1",
                &to.to_string(),
                "",
                "0",
                "5000",
                "KEYS",
                key,
            ],
        ))
    };

    // On a: e1 processed; e2, e3, e4 pending for c1.
    let mut ca = connect(a);
    let amounts = [("amount", "10"), ("pid", "w1")];
    let ids = pending(
        &mut ca,
        &keys.stream,
        GROUP,
        "c1",
        &[
            &amounts,
            &[("amount", "20"), ("pid", "w2")],
            &[("amount", "40"), ("pid", "w3")],
            &[("amount", "80"), ("pid", "w4")],
        ],
    );
    let plain = |id: &str| keys.xprocess_args(None, &[id.to_string()]);
    let fenced = |id: &str| keys.xprocess_args(Some("c1"), &[id.to_string()]);
    assert_eq!(slots(&run(&mut ca, false, &fenced(&ids[0]))), ["1"]);
    assert_eq!(sum(&mut ca, false), 10);

    // Window A: the dedupe store already on b, stream and effect keys still
    // on a. Redis serves XPROCESS on a (all its declared keys are there).
    setslot(b, &["IMPORTING", &cluster.id(a)]);
    setslot(a, &["MIGRATING", &cluster.id(b)]);
    assert_eq!(migrate(a, b, &keys.dedupe), "OK");
    let placement = where_keys(&[a, b]);
    let retry = run(&mut ca, false, &plain(&ids[0]));
    let fresh = run(&mut ca, false, &fenced(&ids[1]));
    let after = where_keys(&[a, b]);
    log.push(format!(
        "window A ({placement}), on port {a}: retry of processed {} without CONSUMER -> {retry:?}; \
         pending {} with CONSUMER -> {fresh:?}; keys afterwards {after}; sum on {a} = {}",
        ids[0],
        ids[1],
        sum(&mut ca, false)
    ));
    for (what, v) in [
        ("retry of a processed entry", &retry),
        ("new entry", &fresh),
    ] {
        if matches!(v, Value::Array(r) if r.contains(&Value::Int(1))) {
            findings.push(format!(
                "window A: {what} was applied on port {a} while the dedupe store was on port {b}: \
                 {v:?}; keys now {after}"
            ));
        }
    }
    if Cluster::keys_in_slot(a, slot).contains(&keys.dedupe) {
        findings.push(format!(
            "window A: a second dedupe store '{}' was created on port {a}: {after}",
            keys.dedupe
        ));
    }
    // Complete the move to b.
    for key in [&keys.totals, &keys.receipts, &keys.stream] {
        assert_eq!(migrate(a, b, key), "OK", "{key}");
    }
    let left = Cluster::keys_in_slot(a, slot);
    for key in &left {
        let r = migrate(a, b, key);
        findings.push(format!(
            "window A: '{key}' left on port {a} after the planned keys moved; MIGRATE -> {r}"
        ));
    }
    finish_move(b);
    let mut cb = connect(b);
    let expected_after_a = 10 + 20; // e1 once, e2 once
    let r = run(&mut cb, false, &plain(&ids[0]));
    log.push(format!(
        "after the move to {b}: retry of {} -> {r:?}",
        ids[0]
    ));
    let r = run(&mut cb, false, &fenced(&ids[1]));
    log.push(format!(
        "after the move to {b}: {} with CONSUMER -> {r:?}",
        ids[1]
    ));
    let s = sum(&mut cb, false);
    if s != expected_after_a {
        findings.push(format!(
            "after window A: sum {s} on port {b}, expected {expected_after_a} (e1 and e2 once)"
        ));
    }

    // Window B: stream and effect keys already on c, the dedupe store still
    // on b. Redis sends XPROCESS from b to c with ASK.
    setslot(c, &["IMPORTING", &cluster.id(b)]);
    setslot(b, &["MIGRATING", &cluster.id(c)]);
    for key in [&keys.stream, &keys.totals, &keys.receipts] {
        assert_eq!(migrate(b, c, key), "OK", "{key}");
    }
    let placement = where_keys(&[b, c]);
    let redirected = run(&mut cb, false, &plain(&ids[0]));
    assert!(
        error_text(&redirected).is_some_and(|e| e.starts_with(&format!("ASK {slot} "))),
        "XPROCESS on {b} with its keys on {c}: {redirected:?}"
    );
    let mut cc = connect(c);
    let before = sum(&mut cc, true);
    let retry = run(&mut cc, true, &plain(&ids[0]));
    let fresh = run(&mut cc, true, &fenced(&ids[2]));
    let after = where_keys(&[b, c]);
    let now = sum(&mut cc, true);
    log.push(format!(
        "window B ({placement}), ASK from {b}, ASKING + XPROCESS on port {c}: retry of processed {} \
         without CONSUMER -> {retry:?}; pending {} with CONSUMER -> {fresh:?}; keys afterwards \
         {after}; sum on {c} {before} -> {now}",
        ids[0], ids[2]
    ));
    for (what, v) in [
        ("retry of a processed entry", &retry),
        ("new entry", &fresh),
    ] {
        if matches!(v, Value::Array(r) if r.contains(&Value::Int(1))) {
            findings.push(format!(
                "window B: {what} was applied on port {c} while the dedupe store was on port {b}: \
                 {v:?}; keys now {after}; sum {before} -> {now}"
            ));
        }
    }
    let last = migrate(b, c, &keys.dedupe);
    log.push(format!(
        "window B: MIGRATE of the dedupe store {b} -> {c}: {last}"
    ));
    if last != "OK" {
        findings.push(format!(
            "window B: MIGRATE '{}' from port {b} to port {c} failed: {last} (keys: {after})",
            keys.dedupe
        ));
        // Settle on c to reach a consistent end state; the finding stays.
        let how = settle_busy_dedupe(&mut cb, &mut cc, c, &keys.dedupe, store);
        log.push(format!("window B: {how}"));
    }
    finish_move(c);

    // Settle: every entry processed (duplicates are harmless), then each
    // must have been applied exactly once in total.
    let mut cc = connect(c);
    for id in &ids[2..] {
        let r = run(&mut cc, false, &fenced(id));
        log.push(format!(
            "after the move to {c}: {id} with CONSUMER -> {r:?}"
        ));
    }
    let s = sum(&mut cc, false);
    let receipts: i64 = q(&mut cc, &["XLEN", &keys.receipts]);
    let (mut dedupe, others) = match read_dedupe(&mut cc, store, &keys.dedupe, &ids) {
        Ok(d) => (d.found.into_iter().collect::<Vec<_>>(), d.others),
        Err(e) => {
            findings.push(format!("end state on port {c}: {e}"));
            (Vec::new(), 0)
        }
    };
    dedupe.sort();
    let unsettled = match store {
        Store::Index => index_settled(&mut cc, &keys.dedupe, &keys.stream),
        Store::Set => Vec::new(),
    };
    let pel = pel(&mut cc, &keys.stream, GROUP);
    log.push(format!(
        "end on port {c}: sum {s}, {receipts} receipts, dedupe {store:?} {dedupe:?} and {others} \
         other IDs, PEL {pel:?}"
    ));
    if s != 150 || receipts != 4 || dedupe != ids || others != 0 || !pel.is_empty() {
        findings.push(format!(
            "end state on port {c}: sum {s} (expected 150), {receipts} receipts (expected 4), \
             dedupe {store:?} {dedupe:?} and {others} other IDs (expected {ids:?} only), \
             PEL {pel:?}"
        ));
    }
    findings.extend(unsettled);
    let report = format!("{log:#?}\nfindings: {findings:#?}");
    eprintln!("{report}");
    assert!(findings.is_empty(), "{report}");
}

/// A READ blocked on a stream whose slot moves to another node is released
/// (with a redirect, or an error once its stream has left the node) rather
/// than left waiting on a key the node no longer serves; the new owner then
/// serves the READ.
#[test]
fn a_blocked_read_is_released_when_its_slot_moves() {
    let cluster = Cluster::start(3, 0);
    let stream = "{blk}s";
    let slot = key_slot(stream);
    let a = cluster.owner(slot);
    let b = cluster.primaries().into_iter().find(|&p| p != a).unwrap();
    let mut con = connect(a);
    ok(
        &mut con,
        &["XGROUP", "CREATE", stream, GROUP, "$", "MKSTREAM"],
    );
    let read = [
        "XPROCESS",
        stream,
        GROUP,
        "CONSUMER",
        "w",
        "SADD",
        "{blk}done",
        "$@id",
        "READ",
        "BLOCK",
        "0",
    ];
    // connect() gives up reading after 10 s: a client never released fails.
    let handle = std::thread::spawn(move || call(&mut connect(a), &read));
    let blocked = |con: &mut Connection| info_field(con, "xprocess", "xprocess_blocked_clients");
    wait_until("the READ to block", || {
        blocked(&mut con).as_deref() == Some("1")
    });
    let mut findings = Vec::new();
    migrate_slot(&cluster, slot, a, b, &[stream], &mut findings);
    assert!(findings.is_empty(), "{findings:?}");
    let out = handle.join().unwrap();
    let e = err(&out);
    // Which of the two depends on whether the node still held the stream
    // when the key was signalled (MIGRATE moves it, then the slot follows).
    let moved_on =
        "TRYAGAIN the stream's slot moved to another node while the call waited, retry it there";
    assert!(
        e.starts_with(&format!("MOVED {slot} ")) || e == moved_on,
        "released with {e}"
    );
    wait_until("the client to be freed", || {
        blocked(&mut con).as_deref() == Some("0")
    });
    let mut on_b = connect(b);
    let id: String = q(&mut on_b, &["XADD", stream, "*", "a", "1"]);
    let out = call(&mut on_b, &read);
    assert!(format!("{out:?}").contains(&id), "{out:?}");
    let done: bool = q(&mut on_b, &["SISMEMBER", "{blk}done", &id]);
    assert!(done);
}

/// A standing processor follows its slot: while a producer appends, the
/// slot moves key by key (the effect keys first, so that a source that ran
/// on would make them again, then the definition, then the stream). Every
/// entry is applied once, on whichever node holds the slot, and the
/// processor runs on the new owner, not on the old one.
#[test]
fn a_standing_processor_follows_its_slot() {
    let cluster = Cluster::start(3, 1);
    let stream = "{proc}orders";
    let derived = "{proc}orders:xprocess:g";
    let slot = key_slot(stream);
    let redirects = Arc::new(Redirects::default());
    let mut client = Client::new(cluster.nodes[0].port(), redirects.clone());
    let setup: [&[&str]; 3] = [
        &["XGROUP", "CREATE", stream, GROUP, "$", "MKSTREAM"],
        &[
            "XPROCESS.DEFINE",
            stream,
            GROUP,
            "HINCRBY",
            "{proc}totals:${cur}",
            "n",
            "$amount",
            "RPUSH",
            "{proc}applied",
            "$n",
        ],
        &["XPROCESS.START", stream, GROUP, "CLAIM", "200"],
    ];
    for args in setup {
        let v = client.run(stream, args);
        assert!(error_text(&v).is_none(), "{args:?}: {v:?}");
    }
    // The producer appends until the slot has moved, so that the processor
    // runs through every window of the migration.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (seed, redirects, stop) = (cluster.nodes[0].port(), redirects.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut client = Client::new(seed, redirects);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let text = n.to_string();
                let v = client.run(
                    stream,
                    &["XADD", stream, "*", "n", &text, "cur", "eur", "amount", "1"],
                );
                assert!(error_text(&v).is_none(), "XADD: {v:?}");
                n += 1;
                std::thread::sleep(Duration::from_micros(500));
            }
            n
        })
    };
    let from = cluster.owner(slot);
    let to = cluster
        .primaries()
        .into_iter()
        .find(|&p| p != from)
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut findings = Vec::new();
    // The totals first: a templated key (Redis routes by the stream alone),
    // of a hash HINCRBY writes through the key API (RPUSH goes through
    // RedisModule_Call, which Redis checks).
    let order = ["{proc}totals:eur", "{proc}applied", derived, stream];
    migrate_slot(&cluster, slot, from, to, &order, &mut findings);
    stop.store(true, Ordering::Relaxed);
    let total = producer.join().unwrap();
    let mut on_to = connect(to);
    wait_until("every entry applied on the new owner", || {
        q::<u64>(&mut on_to, &["LLEN", "{proc}applied"]) >= total
    });
    let applied: Vec<String> = q(&mut on_to, &["LRANGE", "{proc}applied", "0", "-1"]);
    let unique: HashSet<&String> = applied.iter().collect();
    assert_eq!(
        (applied.len(), unique.len()),
        (total as usize, total as usize)
    );
    let sum: String = q(&mut on_to, &["HGET", "{proc}totals:eur", "n"]);
    assert_eq!(sum, total.to_string());
    assert!(findings.is_empty(), "{findings:?}");
    let running: Vec<Value> = q(&mut on_to, &["XPROCESS.LIST"]);
    assert_eq!(running.len(), 1, "the new owner runs it");
    let left: Vec<Value> = q(&mut connect(from), &["XPROCESS.LIST"]);
    assert!(left.is_empty(), "the old owner forgot it: {left:?}");
    let replica = Cluster::slot_map(to)[slot as usize].1[0];
    let mut on_replica = connect(replica);
    wait_replica_synced(&mut on_to, &mut on_replica);
    let keys = [stream, derived, "{proc}applied", "{proc}totals:eur"];
    assert_eq!(
        digest_value(&mut on_replica, &keys),
        digest_value(&mut on_to, &keys)
    );
}
