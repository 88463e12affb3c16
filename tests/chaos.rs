//! Chaos test: exactly-once effects while everything fails.
//!
//! Producers append `customer`/`amount` entries to a stream; consumers read
//! them with XREADGROUP and process them with XPROCESS while, at random, they
//! crash holding a batch, lose the reply of a call and send it again, and
//! recover each other's abandoned work with XAUTOCLAIM. Meanwhile the server
//! (`appendonly yes`, `appendfsync always`) is `kill -9`ed and restarted from
//! its AOF. At the end every entry must be acked, the totals must equal the
//! produced amounts exactly, the receipts stream must hold one receipt per
//! entry and the dedupe store exactly the processed IDs.
//!
//! The XPROCESS run is made once per dedupe store: the dedupe index (the
//! default for a new dedupe key; half the calls also name it with
//! `STORE INDEX`) and a plain Set (`STORE SET` on every call). A Set is read
//! with SMEMBERS; an index, which cannot be listed, with XPROCESS.EXISTS over
//! the stream's IDs and XPROCESS.INFO's `recorded` (records of other IDs),
//! and once everything is processed it must be one range without holes.
//!
//! With business keys (`KEY $pseq` on the index), producers also retry: an
//! XADD whose reply was lost is sent again, and some are sent twice on
//! purpose, so one payment (`pseq`) may sit in the stream as several
//! entries. Every payment must be applied exactly once, whatever number of
//! entries it has, and every entry must still be acked and recorded.
//!
//! With READ workers (`Mode::Read`), each consumer is the one-command worker
//! loop: `XPROCESS ... CONSUMER me DEADLETTER {payments}:dead AFTER 3 ...
//! READ COUNT n CLAIM 20 BLOCK 20`, sent again and again; it crashes with
//! the call sent and its reply unread, loses replies and resends, and now
//! and then (as a worker of the two-command kind would) crashes holding a
//! batch it took with a plain XREADGROUP, which READ's CLAIM takes over.
//! Producers also write poison entries (2%), each with its own `pseq`: an
//! `amount` that is not an integer, or no `customer` field. Every good entry
//! must be applied exactly once, and every poison entry never applied and
//! dead-lettered exactly once, with its source ID, error, delivery count
//! (at least AFTER) and fields; all of them end acked and recorded.
//!
//! With a mix of effects (`Mode::Effects`), every call has templated keys
//! (under the stream's hash tag `{payments}`), WHEN conditions and the newer
//! effects instead of HINCRBY + XADD: entries are sales or refunds (`type`)
//! of a product (`sku`), and each call does
//! `WHEN $type = sale INCRBY {payments}:bal:${customer} $amount`,
//! `WHEN $type = refund INCRBY {payments}:bal:${customer} -$amount`,
//! `HSET {payments}:order:${@id} ENTRY`,
//! `WHEN $type = sale ZINCRBY {payments}:board:${@date} $amount $sku`,
//! `WHEN $type = sale WHEN $amount >= 500 SADD {payments}:big:${@date} ${@id}`,
//! `LPUSH {payments}:log:${customer} ${@id}` and
//! `PFADD {payments}:skus:${@date} $sku`. The checker recomputes from the
//! stream's entries alone what every key must hold (balances, the daily
//! boards, the orders, the big sales, each customer's log with every entry
//! exactly once, the daily sku counts; `@date` worked out here from the ID)
//! and compares it with the keyspace, key by key, with no key left over.
//!
//! With a Redis Function (`Mode::Fcall`), every call's one effect is
//! `FCALL apply 2 {payments}:m:${customer} {payments}:log:${customer} 2
//! $@id $@entry` with `DEADLETTER {payments}:dead AFTER 3`; the function
//! ([`LIBRARY`], FUNCTION LOADed once, kept by the AOF) raises before it
//! writes anything when the entry's `amount` is not an integer (a poison
//! entry, 4%; another kind of poison has no `customer`, so its keys cannot
//! be made and the function is never called), and otherwise keeps the
//! customer's running maximum, count and sum and RPUSHes the entry's ID to
//! the customer's log. Consumers mix the IDS worker (XREADGROUP /
//! XAUTOCLAIM, then XPROCESS ... IDS) and the READ worker. The checker
//! recomputes every customer's max, count and sum from the stream's good
//! entries, wants each good ID exactly once in its customer's log and no
//! poison ID anywhere, every poison entry dead-lettered exactly once, and
//! no key left over.
//!
//! With a standing processor (`Mode::Standing`) there is no consumer at
//! all: the group is defined once, `XPROCESS.DEFINE payments billing
//! DEADLETTER {payments}:dead AFTER 3` with READ mode's effects, and
//! started once, `XPROCESS.START payments billing CLAIM 20`, so the server
//! itself runs `XPROCESS ... CONSUMER xprocess READ COUNT n CLAIM 20` batch
//! after batch. Producers write READ mode's entries, poison ones included,
//! while the server is killed and restarted from its AOF, the last kill
//! once production is over (no XADD wakes the processor then: its own
//! periodic turns must); nothing is sent again after a restart: the
//! processor must resume from the AOF by itself. Then it must drain the
//! group (nothing pending or undelivered), with READ mode's checks: every
//! good entry applied once, every poison entry dead-lettered once (by
//! `xprocess`), all acked and recorded; and XPROCESS.LIST must show it
//! running with lag 0, `xprocess` the group's only consumer. What LIST
//! counts (reset by every restart) is read before each kill and at the
//! end, for the summary; a duplicate it counts is a violation, as a `0`
//! reply is for READ workers.
//!
//! The same run with the naive client-side pattern (HINCRBY + XADD, then XACK,
//! no dedupe) must over-count: that proves the checker sees duplicates.
//!
//! Parameters (environment, small defaults so `cargo test` stays short):
//! `CHAOS_ENTRIES` (1000), `CHAOS_KILLS` (3), `CHAOS_SEED` (random, printed),
//! `CHAOS_PRODUCERS` (2), `CHAOS_CONSUMERS` (4), `CHAOS_TIMEOUT_SECS`
//! (whole run; 60 + entries / 20), `CHAOS_DRAIN_SECS` (60).
//! The seed fixes every random choice; thread timing still varies. Every
//! mode runs at the same size (`make chaos`: 10,000 entries, 30 kills each;
//! `make chaos CHAOS_ONLY=effects` runs the tests whose name has `effects`,
//! `CHAOS_ONLY=fcall` those of the function, `CHAOS_ONLY=standing` the
//! standing processor's). The standing mode has no consumers
//! (`CHAOS_CONSUMERS` does not apply).

mod common;

use common::rng::Rng;

use common::dedupe::{index_settled, read_dedupe};
use common::{Server, Store};
use redis::{Connection, ConnectionLike, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::thread::{self, ScopedJoinHandle};
use std::time::{Duration, Instant};

const STREAM: &str = "payments";
const GROUP: &str = "billing";
const TOTALS: &str = "totals";
const RECEIPTS: &str = "receipts";
/// The derived dedupe key of `payments` / `billing`.
const DEDUPE: &str = "{payments}:xprocess:billing";
/// READ mode: the dead-letter stream.
const DEAD: &str = "{payments}:dead";
const CUSTOMERS: u64 = 16;
const MAX_AMOUNT: u64 = 1000;
/// Effects mode: the products (`sku`), the share of refunds among entries,
/// and the amount from which a sale is big.
const SKUS: u64 = 8;
const REFUND_PCT: u64 = 20;
const BIG_AMOUNT: i64 = 500;
/// Effects mode: the keys the effects write, `{payments}:<kind>:<name>`.
const BALANCE: &str = "{payments}:bal:";
const ORDER: &str = "{payments}:order:";
const BOARD: &str = "{payments}:board:";
const BIG: &str = "{payments}:big:";
const LOG: &str = "{payments}:log:";
const SKU_COUNT: &str = "{payments}:skus:";
/// Effects mode: a scratch key of the checker (an HLL of the expected skus).
const SCRATCH: &str = "chaos:expected-skus";
/// Fcall mode: the function's library, FUNCTION LOADed when the server
/// starts (the AOF keeps it). `apply` takes the customer's hash and log as
/// keys and the entry's ID and field/value pairs as arguments; it raises
/// before any write when `amount` is not a non-negative integer.
const LIBRARY: &str = "#!lua name=chaos
redis.register_function('apply', function(keys, args)
  local amount
  for i = 2, #args - 1, 2 do
    if args[i] == 'amount' then amount = args[i + 1] end
  end
  if not amount or not string.match(amount, '^%d+$') then
    return redis.error_reply('ERR bad amount')
  end
  local v = tonumber(amount)
  local cur = tonumber(redis.call('HGET', keys[1], 'max') or '-inf')
  if v > cur then redis.call('HSET', keys[1], 'max', amount) end
  redis.call('HINCRBY', keys[1], 'count', 1)
  redis.call('HINCRBY', keys[1], 'sum', v)
  redis.call('RPUSH', keys[2], args[1])
  return 1
end)
";
/// Fcall mode: the customer's hash of the function (`max`, `count`, `sum`;
/// its log is under [`LOG`]), and the error the function raises.
const MAXCOUNT: &str = "{payments}:m:";
const FCALL_BAD_AMOUNT_ERROR: &str = "ERR bad amount";
/// Fcall mode, per produced entry: a poison entry.
const FCALL_POISON_PCT: u64 = 4;
/// Fcall mode, per loop of a consumer: a READ call instead of the IDS worker.
const FCALL_READ_PCT: u64 = 30;

/// Largest XREADGROUP / XAUTOCLAIM batch.
const MAX_BATCH: u64 = 5;
/// Per batch: the consumer crashes holding it (it stays pending).
const CRASH_PCT: u64 = 5;
/// Per call: its reply is lost and the identical call is sent again.
const LOST_REPLY_PCT: u64 = 10;
/// Per fetch: recover abandoned entries with XAUTOCLAIM instead of reading.
const CLAIM_PCT: u64 = 20;
/// Of those claims: with min-idle 0, stealing batches still being processed.
const STEAL_PCT: u64 = 25;
/// XAUTOCLAIM min-idle otherwise: small, so recovery is quick.
const MIN_IDLE_MS: u64 = 20;
/// Keyed mode, per XADD: the producer takes the reply for lost (a timeout)
/// and sends the same payment again.
const PRODUCER_RETRY_PCT: u64 = 15;
/// READ mode, per produced entry: a poison entry that can never be applied.
const POISON_PCT: u64 = 2;
/// READ mode: `DEADLETTER ... AFTER` this many deliveries.
const DEAD_AFTER: u64 = 3;
/// READ mode: `CLAIM` min-idle and `BLOCK` timeout of every READ call.
const READ_CLAIM_MS: u64 = 20;
const READ_BLOCK_MS: u64 = 20;
/// READ mode, per loop: crash holding a batch taken with a plain XREADGROUP
/// (abandoned work, for some READ's CLAIM to take over).
const HOLD_PCT: u64 = 2;
/// Standing mode: the consumer a processor reads as when START names none.
const PROCESSOR_CONSUMER: &str = "xprocess";
/// READ mode: the per-entry error of a poison entry with a bad `amount`.
const BAD_AMOUNT_ERROR: &str = "ERR value is not an integer or out of range";
/// Naive mode, per entry: crash after its effects, before the XACK.
const NAIVE_CRASH_AFTER_EFFECT_PCT: u64 = 3;
/// Resends of a call whose connection broke before the consumer gives up on
/// the batch (it stays pending and is recovered by XAUTOCLAIM).
const MAX_RESENDS: usize = 5;
/// A server that cannot be reached for this long is dead, not restarting.
const UNREACHABLE: Duration = Duration::from_secs(15);
/// How often the main thread looks for a crash report in the server log.
const WATCH_EVERY: Duration = Duration::from_millis(50);

// ---- parameters and randomness ----------------------------------------------

#[derive(Clone, Debug)]
struct Params {
    entries: usize,
    kills: usize,
    seed: u64,
    producers: usize,
    consumers: usize,
    timeout: Duration,
    drain_timeout: Duration,
}

fn env_num(name: &str, default: u64) -> u64 {
    // Unset or empty (e.g. an exported but blank make variable): the default.
    match std::env::var(name).unwrap_or_default().trim() {
        "" => default,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    }
}

impl Params {
    fn from_env() -> Params {
        let entries = env_num("CHAOS_ENTRIES", 1000).max(1) as usize;
        Params {
            entries,
            kills: env_num("CHAOS_KILLS", 3) as usize,
            seed: env_num("CHAOS_SEED", time_seed()),
            producers: env_num("CHAOS_PRODUCERS", 2).max(1) as usize,
            consumers: env_num("CHAOS_CONSUMERS", 4).max(1) as usize,
            timeout: Duration::from_secs(env_num("CHAOS_TIMEOUT_SECS", 60 + entries as u64 / 20)),
            drain_timeout: Duration::from_secs(env_num("CHAOS_DRAIN_SECS", 60)),
        }
    }
}

/// A fresh seed per run (printed), so repeated runs explore more.
fn time_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    nanos ^ ((std::process::id() as u64) << 32)
}

// ---- shared state -------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// `XPROCESS ... IDS n id...`: dedupe, effects and XACK in one step,
    /// remembering processed IDs in the given store.
    XProcess(Store),
    /// The same on the index with `KEY $pseq`, and producers that retry.
    Keyed,
    /// `XPROCESS ... DEADLETTER ... READ COUNT n CLAIM ms BLOCK ms` workers
    /// on the index, and producers that also write poison entries.
    Read,
    /// HINCRBY + XADD per entry, then XACK: at-least-once, over-counts.
    Naive,
    /// `XPROCESS ... IDS n id...` on the index with templated keys, WHEN
    /// conditions and a mix of effects (see [`mix_effects`]); producers
    /// write sales and refunds.
    Effects,
    /// One FCALL effect ([`fcall_effects`]) with DEADLETTER, by IDS and
    /// READ workers; producers also write poison entries.
    Fcall,
    /// No workers: the server's standing processor runs READ mode's call
    /// (XPROCESS.DEFINE once, XPROCESS.START once); producers also write
    /// poison entries.
    Standing,
}

impl Mode {
    /// Per produced entry: the chance of a poison entry.
    fn poison_pct(self) -> u64 {
        match self {
            Mode::Read | Mode::Standing => POISON_PCT,
            Mode::Fcall => FCALL_POISON_PCT,
            _ => 0,
        }
    }
}

/// Counters for the summary line.
#[derive(Default)]
struct Stats {
    kills: AtomicU64,
    uncertain_xadds: AtomicU64,
    producer_retries: AtomicU64,
    consumer_crashes: AtomicU64,
    naive_crashes_after_effect: AtomicU64,
    lost_replies_resent: AtomicU64,
    resent_after_disconnect: AtomicU64,
    abandoned_batches: AtomicU64,
    xautoclaims: AtomicU64,
    claimed_entries: AtomicU64,
    applied_replies: AtomicU64,
    duplicate_replies: AtomicU64,
    notowner_replies: AtomicU64,
    poison_produced: AtomicU64,
    dead_letter_replies: AtomicU64,
    poison_failures: AtomicU64,
    held_batches: AtomicU64,
    /// READ calls sent (Fcall mode mixes them with the IDS worker).
    read_calls: AtomicU64,
    /// Standing mode: what XPROCESS.LIST counted, read before each kill
    /// and at the end (what a server counted between the last reading and
    /// its kill is not in them: lower bounds), and the readings.
    listed_processed: AtomicU64,
    listed_duplicates: AtomicU64,
    listed_dead_lettered: AtomicU64,
    listed_errors: AtomicU64,
    list_readings: AtomicU64,
    /// Standing mode: XPROCESS.LIST's lag just before the last kill.
    lag_at_last_kill: AtomicU64,
}

fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, SeqCst);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(SeqCst)
}

/// Why a worker stops: everyone was told to (`Stop`), or something is wrong.
#[derive(Debug)]
enum Halt {
    Stop,
    Fatal(String),
}

type Res<T> = Result<T, Halt>;

fn fatal<T>(msg: impl Into<String>) -> Res<T> {
    Err(Halt::Fatal(msg.into()))
}

struct Shared {
    p: Params,
    mode: Mode,
    port: u16,
    deadline: Instant,
    /// Set when the run is over or a thread failed: every loop checks it.
    stop: AtomicBool,
    /// XADDs confirmed to a producer so far (paces the killer).
    produced: AtomicUsize,
    stats: Stats,
    /// How many XPROCESS replies said `1` (applied) per entry ID (and, with
    /// business keys, per payment): never > 1.
    applied: Mutex<HashMap<String, u32>>,
    /// READ mode: how many replies said `2` (dead-lettered) per entry ID.
    dead: Mutex<HashMap<String, u32>>,
    /// Exactly-once violations seen by clients (reported at the end).
    violations: Mutex<Vec<String>>,
}

impl Shared {
    /// `Err` when the workers must stop: told to, or out of time.
    fn check(&self) -> Res<()> {
        if self.stop.load(SeqCst) {
            return Err(Halt::Stop);
        }
        if Instant::now() > self.deadline {
            return fatal(format!("run deadline of {:?} passed", self.p.timeout));
        }
        Ok(())
    }

    fn violation(&self, msg: String) {
        self.violations.lock().unwrap().push(msg);
    }

    /// The consumer workers to run: none in standing mode.
    fn workers(&self) -> usize {
        match self.mode {
            Mode::Standing => 0,
            _ => self.p.consumers,
        }
    }

    /// The consumers that may take entries: the workers, or in standing
    /// mode the processor alone.
    fn consumer_names(&self) -> Vec<String> {
        match self.mode {
            Mode::Standing => vec![PROCESSOR_CONSUMER.to_string()],
            _ => (0..self.p.consumers)
                .map(|i| format!("consumer-{i}"))
                .collect(),
        }
    }
}

// ---- a client that survives server kills ------------------------------------

fn cmd(args: &[String]) -> redis::Cmd {
    let mut c = redis::cmd(&args[0]);
    for a in &args[1..] {
        c.arg(a);
    }
    c
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// One connection, reopened on demand after a failure. A call's outcome is
/// `Some(reply)` or `None`: the connection broke (or the server was still
/// loading), so the client cannot know whether the command ran.
struct Client<'a> {
    sh: &'a Shared,
    con: Option<Connection>,
}

impl<'a> Client<'a> {
    fn new(sh: &'a Shared) -> Client<'a> {
        Client { sh, con: None }
    }

    fn con(&mut self) -> Res<&mut Connection> {
        if self.con.is_none() {
            self.con = Some(connect(self.sh)?);
        }
        Ok(self.con.as_mut().unwrap())
    }

    fn call(&mut self, args: &[String]) -> Res<Option<Value>> {
        match self.con()?.req_command(&cmd(args)) {
            Ok(Value::ServerError(e)) if e.code() == "LOADING" => {
                self.hang_up();
                Ok(None)
            }
            Ok(v) => Ok(Some(v)),
            Err(_) => {
                self.hang_up();
                Ok(None)
            }
        }
    }

    /// Send a command and drop the connection without reading the reply.
    fn send_and_hang_up(&mut self, args: &[String]) -> Res<()> {
        let packed = cmd(args).get_packed_command();
        let _ = self.con()?.send_packed_command(&packed);
        self.hang_up();
        Ok(())
    }

    fn hang_up(&mut self) {
        self.con = None;
    }
}

/// Connect, polling while the server is down or loading its AOF. A restart
/// takes well under a second: a server gone for longer has crashed.
fn connect(sh: &Shared) -> Res<Connection> {
    let since = Instant::now();
    loop {
        sh.check()?;
        if let Some(con) = try_connect(sh.port) {
            return Ok(con);
        }
        if since.elapsed() > UNREACHABLE {
            return fatal(format!("server unreachable for {UNREACHABLE:?}"));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn try_connect(port: u16) -> Option<Connection> {
    let url = format!("redis://127.0.0.1:{port}/");
    let mut con = redis::Client::open(url)
        .ok()?
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    con.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    con.set_write_timeout(Some(Duration::from_secs(10))).ok()?;
    // PING rejects a server still loading (-LOADING) and the rare TCP
    // self-connect (a client socket bound to the server's port while it is
    // down echoes its own PING); dropping it frees the port for the restart.
    let pong: String = redis::cmd("PING").query(&mut con).ok()?;
    (pong == "PONG").then_some(con)
}

// ---- producers -----------------------------------------------------------------

/// One produced payment. `id` is `None` when the XADD's reply was lost:
/// whether it exists is settled by reading the stream at the end (`pseq` is
/// unique per payment). With retries (keyed mode) a payment may have been
/// added several times: `ids` are all the confirmed ones, `sends` counts
/// the XADDs. A poison entry (READ mode) is written as `poison` says.
#[derive(Clone, Debug)]
struct Produced {
    pseq: String,
    customer: String,
    amount: i64,
    poison: Option<Poison>,
    /// Effects mode: `type` (sale or refund) and `sku`.
    extra: Vec<(String, String)>,
    id: Option<String>,
    ids: Vec<String>,
    sends: u32,
}

/// How a poison entry can never be applied.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Poison {
    /// `amount` is `<n>.50`: HINCRBY refuses it (the function too).
    BadAmount,
    /// No `customer` field: the `$customer` template cannot be expanded.
    NoCustomer,
}

impl Poison {
    /// The per-entry error XPROCESS gives entry `id` in `mode`.
    fn error(self, id: &str, mode: Mode) -> String {
        match self {
            Poison::BadAmount if mode == Mode::Fcall => FCALL_BAD_AMOUNT_ERROR.to_string(),
            Poison::BadAmount => BAD_AMOUNT_ERROR.to_string(),
            Poison::NoCustomer => format!("ERR entry {id} has no field 'customer'"),
        }
    }

    /// The poison an entry's fields make it, if any.
    fn of(customer: Option<&str>, amount: &str) -> Option<Poison> {
        match (customer, amount.parse::<i64>()) {
            (None, _) => Some(Poison::NoCustomer),
            (_, Err(_)) => Some(Poison::BadAmount),
            _ => None,
        }
    }
}

impl Produced {
    /// The entry's fields as the producer writes them.
    fn fields(&self) -> Vec<(String, String)> {
        let mut f = vec![("pseq".to_string(), self.pseq.clone())];
        if self.poison != Some(Poison::NoCustomer) {
            f.push(("customer".into(), self.customer.clone()));
        }
        let amount = match self.poison {
            Some(Poison::BadAmount) => format!("{}.50", self.amount),
            _ => self.amount.to_string(),
        };
        f.push(("amount".into(), amount));
        f.extend(self.extra.iter().cloned());
        f
    }
}

fn producer(sh: &Shared, idx: usize, quota: usize) -> Res<Vec<Produced>> {
    let mut rng = Rng::stream(sh.p.seed, 1000 + idx as u64);
    let mut cl = Client::new(sh);
    let mut out = Vec::with_capacity(quota);
    let mut confirmed = 0;
    while confirmed < quota {
        sh.check()?;
        let mut e = Produced {
            pseq: format!("p{idx}-{}", out.len()),
            customer: format!("c{:02}", rng.below(CUSTOMERS)),
            amount: 1 + rng.below(MAX_AMOUNT) as i64,
            poison: None,
            extra: Vec::new(),
            id: None,
            ids: Vec::new(),
            sends: 0,
        };
        // Only READ and Fcall modes draw here: other modes' seeds repeat
        // as before.
        let pct = sh.mode.poison_pct();
        if pct > 0 && rng.chance(pct) {
            e.poison = Some(*rng.pick(&[Poison::BadAmount, Poison::NoCustomer]));
            bump(&sh.stats.poison_produced, 1);
        }
        if sh.mode == Mode::Effects {
            let kind = if rng.chance(REFUND_PCT) {
                "refund"
            } else {
                "sale"
            };
            let sku = format!("sku{}", rng.below(SKUS));
            e.extra = vec![("type".into(), kind.into()), ("sku".into(), sku)];
        }
        let mut args = strings(&["XADD", STREAM, "*"]);
        args.extend(e.fields().into_iter().flat_map(|(f, v)| [f, v]));
        loop {
            e.sends += 1;
            match cl.call(&args)? {
                Some(Value::BulkString(id)) => {
                    let id = String::from_utf8_lossy(&id).into_owned();
                    e.id.get_or_insert_with(|| id.clone());
                    e.ids.push(id);
                }
                Some(other) => return fatal(format!("XADD replied {other:?}")),
                None => bump(&sh.stats.uncertain_xadds, 1),
            }
            // A keyed producer retries a payment whose reply it lost (or,
            // now and then, took for lost), as real producers do.
            let lost = e.ids.is_empty() || rng.chance(PRODUCER_RETRY_PCT);
            if sh.mode != Mode::Keyed || !lost || e.sends >= 3 {
                break;
            }
            bump(&sh.stats.producer_retries, 1);
        }
        if e.id.is_some() {
            confirmed += 1;
            sh.produced.fetch_add(1, SeqCst);
        }
        out.push(e);
    }
    Ok(out)
}

// ---- consumers -----------------------------------------------------------------

#[derive(Clone, Debug)]
struct Entry {
    id: String,
    pseq: String,
    customer: String,
    amount: String,
    /// A poison entry (Fcall mode), as its fields tell.
    poison: Option<Poison>,
}

/// Entries of an XREADGROUP / XAUTOCLAIM reply: `[[id, [field, value, ...]]]`.
/// With `poison` (Fcall mode) an entry may be a poison one: no `customer`,
/// or an `amount` that is not an integer.
fn parse_entries(rows: Vec<(String, Vec<String>)>, poison: bool) -> Res<Vec<Entry>> {
    rows.into_iter()
        .map(|(id, flat)| {
            let field = |name: &str| {
                flat.chunks(2)
                    .find(|kv| kv[0] == name && kv.len() == 2)
                    .map(|kv| kv[1].clone())
            };
            let (pseq, customer, amount) = (field("pseq"), field("customer"), field("amount"));
            match (pseq, amount) {
                (Some(pseq), Some(amount)) if poison || customer.is_some() => Ok(Entry {
                    id,
                    pseq,
                    poison: Poison::of(customer.as_deref(), &amount).filter(|_| poison),
                    customer: customer.unwrap_or_default(),
                    amount,
                }),
                _ => fatal(format!("entry {id} lacks customer/amount: {flat:?}")),
            }
        })
        .collect()
}

/// One per-ID slot of an XPROCESS reply.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    Applied,
    Duplicate,
    NotOwner,
    /// Fcall mode: `2`, a poison entry dead-lettered.
    DeadLettered,
    /// Fcall mode: a poison entry's error (it stays pending).
    Failed,
}

struct Consumer<'a> {
    sh: &'a Shared,
    me: String,
    rng: Rng,
    cl: Client<'a>,
    /// XAUTOCLAIM scan position.
    cursor: String,
    /// The last XREADGROUP found nothing new: recover abandoned work next.
    idle: bool,
}

fn consumer(sh: &Shared, idx: usize) -> Res<()> {
    let mut c = Consumer {
        sh,
        me: format!("consumer-{idx}"),
        rng: Rng::stream(sh.p.seed, 2000 + idx as u64),
        cl: Client::new(sh),
        cursor: "0-0".into(),
        idle: false,
    };
    match c.run() {
        Err(Halt::Stop) => Ok(()),
        other => other,
    }
}

impl Consumer<'_> {
    fn run(&mut self) -> Res<()> {
        if self.sh.mode == Mode::Read {
            return self.run_read();
        }
        loop {
            self.sh.check()?;
            // Fcall mode mixes the two workers: now and then a READ call.
            if self.sh.mode == Mode::Fcall && self.rng.chance(FCALL_READ_PCT) {
                self.read_once()?;
                continue;
            }
            let batch = self.fetch()?;
            if batch.is_empty() {
                continue;
            }
            if self.rng.chance(CRASH_PCT) {
                self.crash();
                continue;
            }
            match self.sh.mode {
                Mode::XProcess(store) => self.process_xprocess(store, &batch)?,
                Mode::Keyed | Mode::Effects | Mode::Fcall => {
                    self.process_xprocess(Store::Index, &batch)?
                }
                Mode::Naive => self.process_naive(&batch)?,
                Mode::Read => unreachable!("READ workers run run_read"),
                Mode::Standing => unreachable!("standing mode has no workers"),
            }
        }
    }

    /// The one-command worker loop: READ (claim idle entries, read new
    /// ones, process them, dead-letter poison) again and again. A call whose
    /// connection broke is simply followed by the next one.
    fn run_read(&mut self) -> Res<()> {
        loop {
            self.sh.check()?;
            self.read_once()?;
        }
    }

    /// One turn of the READ worker: now and then a crash holding a batch
    /// taken with XREADGROUP, else one READ call (which may crash, or lose
    /// its reply and be sent again).
    fn read_once(&mut self) -> Res<()> {
        if self.rng.chance(HOLD_PCT) {
            return self.hold_and_crash();
        }
        let count = 1 + self.rng.below(MAX_BATCH);
        let args = read_args(&self.me, self.rng.chance(50), count, self.sh.mode);
        bump(&self.sh.stats.read_calls, 1);
        if self.rng.chance(CRASH_PCT) {
            // Crash mid-loop: the READ runs, its reply is never read.
            bump(&self.sh.stats.consumer_crashes, 1);
            return self.cl.send_and_hang_up(&args);
        }
        if let Some(v) = self.maybe_lose_reply(&args)? {
            self.record_read(&v, count)?;
        }
        match self.cl.call(&args)? {
            Some(v) => self.record_read(&v, count)?,
            None => bump(&self.sh.stats.resent_after_disconnect, 1),
        }
        Ok(())
    }

    /// Crash holding entries taken with a plain XREADGROUP (a worker of the
    /// two-command kind): they stay pending for this consumer, delivered
    /// once more, until some READ's CLAIM takes them over.
    fn hold_and_crash(&mut self) -> Res<()> {
        bump(&self.sh.stats.held_batches, 1);
        let count = (1 + self.rng.below(MAX_BATCH)).to_string();
        let args = strings(&[
            "XREADGROUP",
            "GROUP",
            GROUP,
            &self.me,
            "COUNT",
            &count,
            "STREAMS",
            STREAM,
            ">",
        ]);
        self.cl.call(&args)?;
        self.crash();
        Ok(())
    }

    /// Check and count one READ reply: at most `count` `[id, outcome]`
    /// pairs, each ID once, outcomes `1`, `2` or a poison entry's error.
    fn record_read(&self, reply: &Value, count: u64) -> Res<()> {
        let Value::Array(items) = reply else {
            return fatal(format!("READ whole-call reply {reply:?}"));
        };
        if items.len() as u64 > count {
            return fatal(format!("READ COUNT {count} replied {reply:?}"));
        }
        let stats = &self.sh.stats;
        let mut seen = HashSet::new();
        for item in items {
            let (id, outcome) = match item {
                Value::Array(pair) if pair.len() == 2 => match conv::<String>(&pair[0]) {
                    Ok(id) => (id, &pair[1]),
                    Err(e) => return fatal(format!("READ pair {item:?}: {e}")),
                },
                other => return fatal(format!("READ element {other:?} in {reply:?}")),
            };
            if !seen.insert(id.clone()) {
                return fatal(format!("READ replied {id} twice: {reply:?}"));
            }
            match outcome {
                Value::Int(1) => {
                    bump(&stats.applied_replies, 1);
                    self.note_applied(&id);
                }
                Value::Int(2) => {
                    bump(&stats.dead_letter_replies, 1);
                    self.note_dead(&id);
                }
                // READ takes only pending or new entries, and processing
                // one acks it in the same step: none can be done already.
                Value::Int(0) => {
                    bump(&stats.duplicate_replies, 1);
                    self.sh.violation(format!(
                        "{}: READ replied 0 for {id}: a processed entry was still pending or new",
                        self.me
                    ));
                }
                Value::ServerError(_) => {
                    let text = common::error_text(outcome).unwrap_or_default();
                    let poison = [Poison::BadAmount, Poison::NoCustomer];
                    if !poison.iter().any(|p| p.error(&id, self.sh.mode) == text) {
                        return fatal(format!("READ slot for {id}: {text}"));
                    }
                    bump(&stats.poison_failures, 1);
                }
                other => return fatal(format!("READ slot for {id}: {other:?}")),
            }
        }
        Ok(())
    }

    /// A `2` reply: never twice for one entry, never for an applied one.
    fn note_dead(&self, id: &str) {
        let mut dead = self.sh.dead.lock().unwrap();
        let n = dead.entry(id.to_string()).or_insert(0);
        *n += 1;
        let n = *n;
        drop(dead);
        if n > 1 {
            let msg = format!("{}: XPROCESS replied 2 for {id} {n} times", self.me);
            self.sh.violation(msg);
        }
        if self.sh.applied.lock().unwrap().contains_key(id) {
            let msg = format!("{}: XPROCESS replied 2 for {id}, applied before", self.me);
            self.sh.violation(msg);
        }
    }

    /// Crash holding whatever was read: it stays pending in the group until
    /// someone's XAUTOCLAIM takes it. The consumer comes back with its name.
    fn crash(&mut self) {
        bump(&self.sh.stats.consumer_crashes, 1);
        self.cl.hang_up();
        self.cursor = "0-0".into();
    }

    fn fetch(&mut self) -> Res<Vec<Entry>> {
        let count = (1 + self.rng.below(MAX_BATCH)).to_string();
        if self.idle || self.rng.chance(CLAIM_PCT) {
            self.idle = false;
            return self.autoclaim(&count);
        }
        let args = strings(&[
            "XREADGROUP",
            "GROUP",
            GROUP,
            &self.me,
            "COUNT",
            &count,
            "BLOCK",
            "20",
            "STREAMS",
            STREAM,
            ">",
        ]);
        // A lost reply may still have delivered entries: they are pending
        // for this consumer and XAUTOCLAIM recovers them.
        let Some(reply) = self.cl.call(&args)? else {
            return Ok(Vec::new());
        };
        type Read = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;
        let read: Read = redis::from_redis_value(&reply)
            .or_else(|e| fatal(format!("XREADGROUP reply {reply:?}: {e}")))?;
        let rows = read.into_iter().flatten().flat_map(|(_, rows)| rows);
        let entries = parse_entries(rows.collect(), self.sh.mode == Mode::Fcall)?;
        self.idle = entries.is_empty();
        Ok(entries)
    }

    fn autoclaim(&mut self, count: &str) -> Res<Vec<Entry>> {
        let min_idle = if self.rng.chance(STEAL_PCT) {
            0
        } else {
            MIN_IDLE_MS
        };
        let args = strings(&[
            "XAUTOCLAIM",
            STREAM,
            GROUP,
            &self.me,
            &min_idle.to_string(),
            &self.cursor,
            "COUNT",
            count,
        ]);
        let Some(reply) = self.cl.call(&args)? else {
            return Ok(Vec::new());
        };
        type Claim = (String, Vec<(String, Vec<String>)>, Vec<String>);
        let (cursor, rows, deleted): Claim = redis::from_redis_value(&reply)
            .or_else(|e| fatal(format!("XAUTOCLAIM reply {reply:?}: {e}")))?;
        if !deleted.is_empty() {
            return fatal(format!("XAUTOCLAIM found deleted entries {deleted:?}"));
        }
        self.cursor = cursor;
        bump(&self.sh.stats.xautoclaims, 1);
        bump(&self.sh.stats.claimed_entries, rows.len() as u64);
        parse_entries(rows, self.sh.mode == Mode::Fcall)
    }

    /// Maybe lose the reply of `args`: either read it and ignore it, or send
    /// the call and hang up before the reply. Returns the ignored reply.
    fn maybe_lose_reply(&mut self, args: &[String]) -> Res<Option<Value>> {
        if !self.rng.chance(LOST_REPLY_PCT) {
            return Ok(None);
        }
        bump(&self.sh.stats.lost_replies_resent, 1);
        if self.rng.chance(50) {
            self.cl.call(args)
        } else {
            self.cl.send_and_hang_up(args)?;
            Ok(None)
        }
    }

    /// Send `args` until a reply arrives (the connection breaks when the
    /// server is killed). `None`: gave up, the batch stays pending.
    fn call_until_answered(&mut self, args: &[String]) -> Res<Option<Value>> {
        for attempt in 0..MAX_RESENDS {
            if attempt > 0 {
                bump(&self.sh.stats.resent_after_disconnect, 1);
            }
            if let Some(v) = self.cl.call(args)? {
                return Ok(Some(v));
            }
        }
        bump(&self.sh.stats.abandoned_batches, 1);
        Ok(None)
    }

    fn process_xprocess(&mut self, store: Store, batch: &[Entry]) -> Res<()> {
        // Half the calls fence with CONSUMER; without it, racing claimers
        // both call and the dedupe store alone must keep it exactly-once.
        let fenced = self.rng.chance(50);
        // The index is the default: half the calls name it anyway, so both
        // spellings must find the same records.
        let mut options = match store {
            _ if self.sh.mode == Mode::Keyed => &["KEY", "$pseq"][..],
            Store::Index if self.rng.chance(50) => &["STORE", "INDEX"][..],
            _ => store.options(),
        }
        .to_vec();
        let after = DEAD_AFTER.to_string();
        if self.sh.mode == Mode::Fcall {
            options.extend(["DEADLETTER", DEAD, "AFTER", &after]);
        }
        let effects = match self.sh.mode {
            Mode::Effects => mix_effects(),
            Mode::Fcall => fcall_effects(),
            _ => effects(),
        };
        let consumer = fenced.then_some(self.me.as_str());
        let args = xprocess_args(consumer, &options, &effects, batch);
        let first = match self.maybe_lose_reply(&args)? {
            Some(v) => Some(self.record(&v, batch)?),
            None => None,
        };
        let Some(reply) = self.call_until_answered(&args)? else {
            return Ok(());
        };
        let again = self.record(&reply, batch)?;
        if let Some(first) = first {
            self.check_resend(batch, &first, &again);
        }
        Ok(())
    }

    /// The same call sent again: whatever the first one applied,
    /// dead-lettered or found done must now be reported as a duplicate.
    fn check_resend(&self, batch: &[Entry], first: &[Slot], again: &[Slot]) {
        for ((e, a), b) in batch.iter().zip(first).zip(again) {
            let done = matches!(a, Slot::Applied | Slot::Duplicate | Slot::DeadLettered);
            if done && *b != Slot::Duplicate {
                self.sh.violation(format!(
                    "{}: resent call for {} replied {b:?} after {a:?}",
                    self.me, e.id
                ));
            }
        }
    }

    /// Check and count one XPROCESS reply. Only `1`, `0` and NOTOWNER are
    /// expected (every entry exists and its fields are valid), and in Fcall
    /// mode, for a poison entry only, `2` or its error.
    fn record(&self, reply: &Value, batch: &[Entry]) -> Res<Vec<Slot>> {
        let Value::Array(items) = reply else {
            return fatal(format!("XPROCESS whole-call reply {reply:?}"));
        };
        if items.len() != batch.len() {
            return fatal(format!("XPROCESS reply {reply:?} for {batch:?}"));
        }
        let stats = &self.sh.stats;
        let mut slots = Vec::with_capacity(items.len());
        for (item, e) in items.iter().zip(batch) {
            let error = e.poison.map(|p| p.error(&e.id, self.sh.mode));
            let slot = match item {
                Value::Int(1) => Slot::Applied,
                Value::Int(0) => Slot::Duplicate,
                Value::Int(2) if e.poison.is_some() => Slot::DeadLettered,
                Value::ServerError(err) if err.code() == "NOTOWNER" => Slot::NotOwner,
                Value::ServerError(_) if common::error_text(item) == error => Slot::Failed,
                other => return fatal(format!("XPROCESS slot for {e:?}: {other:?}")),
            };
            match slot {
                Slot::Applied => {
                    bump(&stats.applied_replies, 1);
                    self.note_applied(&e.id);
                    if self.sh.mode == Mode::Keyed {
                        self.note_applied(&format!("payment {}", e.pseq));
                    }
                }
                Slot::Duplicate => bump(&stats.duplicate_replies, 1),
                Slot::NotOwner => bump(&stats.notowner_replies, 1),
                Slot::DeadLettered => {
                    bump(&stats.dead_letter_replies, 1);
                    self.note_dead(&e.id);
                }
                Slot::Failed => bump(&stats.poison_failures, 1),
            }
            slots.push(slot);
        }
        Ok(slots)
    }

    fn note_applied(&self, id: &str) {
        let mut applied = self.sh.applied.lock().unwrap();
        let n = applied.entry(id.to_string()).or_insert(0);
        *n += 1;
        if *n > 1 {
            let msg = format!("{}: XPROCESS replied 1 for {id} {n} times", self.me);
            drop(applied);
            self.sh.violation(msg);
        }
        if self.sh.dead.lock().unwrap().contains_key(id) {
            let msg = format!(
                "{}: XPROCESS replied 1 for {id}, dead-lettered before",
                self.me
            );
            self.sh.violation(msg);
        }
    }

    /// The pattern XPROCESS replaces: apply, then XACK. A lost reply is
    /// resent (the client cannot tell whether it ran) and a crash after the
    /// effects leaves the entries pending, to be claimed and applied again.
    fn process_naive(&mut self, batch: &[Entry]) -> Res<()> {
        for e in batch {
            let hincrby = strings(&["HINCRBY", TOTALS, &e.customer, &e.amount]);
            let receipt = strings(&["XADD", RECEIPTS, "*", "src", &e.id, "amount", &e.amount]);
            for args in [hincrby, receipt] {
                self.maybe_lose_reply(&args)?;
                match self.call_until_answered(&args)? {
                    None => return Ok(()),
                    Some(Value::ServerError(err)) => return fatal(format!("{args:?}: {err:?}")),
                    Some(_) => {}
                }
            }
            if self.rng.chance(NAIVE_CRASH_AFTER_EFFECT_PCT) {
                bump(&self.sh.stats.naive_crashes_after_effect, 1);
                self.crash();
                return Ok(());
            }
        }
        let mut xack = strings(&["XACK", STREAM, GROUP]);
        xack.extend(batch.iter().map(|e| e.id.clone()));
        self.call_until_answered(&xack)?;
        Ok(())
    }
}

/// The effects of every call: `HINCRBY totals $customer $amount XADD
/// receipts FIELDS 2 src $@id amount $amount`.
fn effects() -> Vec<String> {
    strings(&[
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
    ])
}

/// Effects mode: templated keys under the stream's hash tag, conditions
/// and a mix of effects (what the checker recomputes, `check_effects`).
fn mix_effects() -> Vec<String> {
    let effects = [
        format!("WHEN $type = sale INCRBY {BALANCE}${{customer}} $amount"),
        format!("WHEN $type = refund INCRBY {BALANCE}${{customer}} -$amount"),
        format!("HSET {ORDER}${{@id}} ENTRY"),
        format!("WHEN $type = sale ZINCRBY {BOARD}${{@date}} $amount $sku"),
        format!("WHEN $type = sale WHEN $amount >= {BIG_AMOUNT} SADD {BIG}${{@date}} ${{@id}}"),
        format!("LPUSH {LOG}${{customer}} ${{@id}}"),
        format!("PFADD {SKU_COUNT}${{@date}} $sku"),
    ];
    let words = effects.iter().flat_map(|e| e.split(' '));
    words.map(str::to_string).collect()
}

/// Fcall mode: the call's one effect, `FCALL apply 2
/// {payments}:m:${customer} {payments}:log:${customer} 2 $@id $@entry`.
fn fcall_effects() -> Vec<String> {
    let effect = format!("FCALL apply 2 {MAXCOUNT}${{customer}} {LOG}${{customer}} 2 $@id $@entry");
    effect.split(' ').map(str::to_string).collect()
}

/// Fcall mode: FUNCTION LOAD [`LIBRARY`].
fn load_library(con: &mut Connection) {
    let name: String = common::q(con, &["FUNCTION", "LOAD", "REPLACE", LIBRARY]);
    assert_eq!(name, "chaos");
}

/// `XPROCESS payments billing [CONSUMER me] [STORE ...] <effects> IDS n id...`
fn xprocess_args(
    consumer: Option<&str>,
    options: &[&str],
    effects: &[String],
    batch: &[Entry],
) -> Vec<String> {
    let mut args = strings(&["XPROCESS", STREAM, GROUP]);
    if let Some(me) = consumer {
        args.extend(strings(&["CONSUMER", me]));
    }
    args.extend(strings(options));
    args.extend(effects.iter().cloned());
    args.push("IDS".into());
    args.push(batch.len().to_string());
    args.extend(batch.iter().map(|e| e.id.clone()));
    args
}

/// `XPROCESS payments billing CONSUMER me [STORE INDEX] DEADLETTER
/// {payments}:dead AFTER 3 <effects> READ COUNT count CLAIM 20 BLOCK 20`;
/// the effects of [`effects`], or in Fcall mode [`fcall_effects`].
fn read_args(me: &str, name_store: bool, count: u64, mode: Mode) -> Vec<String> {
    let mut args = strings(&["XPROCESS", STREAM, GROUP, "CONSUMER", me]);
    if name_store {
        args.extend(strings(&["STORE", "INDEX"]));
    }
    let after = DEAD_AFTER.to_string();
    args.extend(strings(&["DEADLETTER", DEAD, "AFTER", &after]));
    args.extend(match mode {
        Mode::Fcall => fcall_effects(),
        _ => effects(),
    });
    let (count, claim, block) = (
        count.to_string(),
        READ_CLAIM_MS.to_string(),
        READ_BLOCK_MS.to_string(),
    );
    args.extend(strings(&[
        "READ", "COUNT", &count, "CLAIM", &claim, "BLOCK", &block,
    ]));
    args
}

// ---- the standing processor ----------------------------------------------------

/// Standing mode: `DEADLETTER {payments}:dead AFTER 3` and READ mode's
/// effects, what XPROCESS.DEFINE stores (and XPROCESS.INFO shows).
fn standing_definition() -> Vec<String> {
    let after = DEAD_AFTER.to_string();
    let mut args = strings(&["DEADLETTER", DEAD, "AFTER", &after]);
    args.extend(effects());
    args
}

/// Standing mode, once before production: `XPROCESS.DEFINE payments
/// billing <definition>` and `XPROCESS.START payments billing CLAIM 20`.
/// Never sent again: after each restart the processor must resume from
/// the AOF.
fn define_and_start(con: &mut Connection) {
    let mut define = vec!["XPROCESS.DEFINE", STREAM, GROUP];
    let definition = standing_definition();
    define.extend(definition.iter().map(String::as_str));
    assert_eq!(common::call(con, &define), Value::Okay, "{define:?}");
    let claim = READ_CLAIM_MS.to_string();
    let start = ["XPROCESS.START", STREAM, GROUP, "CLAIM", &claim];
    assert_eq!(common::call(con, &start), Value::Okay, "{start:?}");
}

/// A map reply as field -> value: a flat array (RESP2) or a map (RESP3).
fn fields_of(v: &Value) -> Result<BTreeMap<String, Value>, String> {
    match v {
        Value::Array(flat) if flat.len() % 2 == 0 => flat
            .chunks(2)
            .map(|kv| Ok((conv(&kv[0])?, kv[1].clone())))
            .collect(),
        Value::Map(map) => map.iter().map(|(k, v)| Ok((conv(k)?, v.clone()))).collect(),
        other => Err(format!("not a map: {other:?}")),
    }
}

/// A field's value as text (nil as "").
fn text(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        v => conv(v).unwrap_or_else(|_| format!("{v:?}")),
    }
}

/// An array of maps (XPROCESS.LIST, XINFO CONSUMERS), each as field -> value.
fn maps(
    con: &mut dyn ConnectionLike,
    args: &[&str],
) -> Result<Vec<BTreeMap<String, Value>>, String> {
    match query(con, args)? {
        Value::Array(items) => items.iter().map(fields_of).collect(),
        other => Err(format!("{args:?}: {other:?}")),
    }
}

/// Standing mode: add what XPROCESS.LIST counts of our processor to the
/// summary's figures (the counts start again with every server). A
/// duplicate is a violation: the processor's READ takes only pending or
/// new entries, and processing one acks it in the same step. Returns
/// the lag LIST shows.
fn read_processor_counters(sh: &Shared) -> Option<u64> {
    let mut con = try_connect(sh.port)?;
    let list = maps(&mut con, &["XPROCESS.LIST"]).ok()?;
    let ours = list.iter().find(|l| {
        l.get("key").map(text).as_deref() == Some(STREAM)
            && l.get("group").map(text).as_deref() == Some(GROUP)
    });
    let Some(ours) = ours else {
        sh.violation(format!(
            "XPROCESS.LIST does not show the processor: {list:?}"
        ));
        return None;
    };
    let count = |name: &str| {
        ours.get(name)
            .and_then(|v| conv::<u64>(v).ok())
            .unwrap_or(0)
    };
    let s = &sh.stats;
    bump(&s.list_readings, 1);
    bump(&s.listed_processed, count("processed"));
    bump(&s.listed_dead_lettered, count("dead-lettered"));
    bump(&s.listed_errors, count("errors"));
    let duplicates = count("duplicates");
    bump(&s.listed_duplicates, duplicates);
    if duplicates > 0 {
        sh.violation(format!(
            "XPROCESS.LIST counted {duplicates} duplicates (a processed entry was still \
             pending or new): {ours:?}"
        ));
    }
    ours.get("lag").and_then(|v| conv(v).ok())
}

/// Standing mode: XPROCESS.LIST shows the one processor running, lag 0;
/// the group's only consumer is the processor's; XPROCESS.INFO shows the
/// definition and the START settings as they were sent before the first
/// kill.
fn check_processor(con: &mut Connection, r: &mut Report) {
    let bad = &mut r.processor_problems;
    match maps(con, &["XPROCESS.LIST"]) {
        Err(e) => bad.push(e),
        Ok(list) if list.len() != 1 => bad.push(format!("XPROCESS.LIST: {list:?}")),
        Ok(list) => {
            let expected = [
                ("key", STREAM),
                ("group", GROUP),
                ("db", "0"),
                ("consumer", PROCESSOR_CONSUMER),
                ("state", "running"),
                ("lag", "0"),
            ];
            for (field, want) in expected {
                let got = list[0].get(field).map(text);
                if got.as_deref() != Some(want) {
                    bad.push(format!("XPROCESS.LIST {field} is {got:?}, not {want:?}"));
                }
            }
        }
    }
    match maps(con, &["XINFO", "CONSUMERS", STREAM, GROUP]) {
        Err(e) => bad.push(e),
        Ok(consumers) => {
            let names: Vec<String> = consumers
                .iter()
                .map(|c| c.get("name").map(text).unwrap_or_default())
                .collect();
            if names != [PROCESSOR_CONSUMER] {
                bad.push(format!("the group's consumers are {names:?}"));
            }
        }
    }
    let info = query(con, &["XPROCESS.INFO", DEDUPE]).and_then(|v| fields_of(&v));
    match info {
        Err(e) => bad.push(e),
        Ok(info) => {
            let list = |name: &str| info.get(name).and_then(|v| conv::<Vec<String>>(v).ok());
            let definition = list("definition");
            if definition.as_ref() != Some(&standing_definition()) {
                bad.push(format!("XPROCESS.INFO definition is {definition:?}"));
            }
            let processor = list("processor").unwrap_or_default();
            let settings: BTreeMap<&str, &str> = processor
                .chunks(2)
                .filter(|kv| kv.len() == 2 && kv[0] != "COUNT")
                .map(|kv| (kv[0].as_str(), kv[1].as_str()))
                .collect();
            let claim = READ_CLAIM_MS.to_string();
            let want = BTreeMap::from([("CONSUMER", PROCESSOR_CONSUMER), ("CLAIM", &claim)]);
            if settings != want || processor.len() % 2 != 0 {
                bad.push(format!("XPROCESS.INFO processor is {processor:?}"));
            }
        }
    }
}

// ---- the killer ----------------------------------------------------------------

/// `kill -9` and restart the server `kills` times, paced by production so
/// the kills spread over the run: kill `i` happens once a random number of
/// entries has been produced, plus a few ms so it lands inside some call.
fn killer(sh: &Shared, server: &Mutex<Server>) -> Res<()> {
    let mut rng = Rng::stream(sh.p.seed, 999);
    let span = (sh.p.entries as u64 * 95 / 100).max(1);
    let mut at: Vec<usize> = (0..sh.p.kills).map(|_| rng.below(span) as usize).collect();
    at.sort_unstable();
    if sh.mode == Mode::Standing {
        // The last kill once production is over: no XADD follows to wake
        // the restarted processor, its periodic turns alone must resume it
        // (the poison entries still short of AFTER deliveries, any backlog).
        if let Some(last) = at.last_mut() {
            *last = sh.p.entries;
        }
    }
    for threshold in at {
        while sh.produced.load(SeqCst) < threshold {
            sh.check()?;
            thread::sleep(Duration::from_millis(2));
        }
        thread::sleep(Duration::from_millis(rng.below(20)));
        sh.check()?;
        if sh.mode == Mode::Standing {
            // What this server's processor counted dies with it: read it.
            let lag = read_processor_counters(sh);
            sh.stats.lag_at_last_kill.store(lag.unwrap_or(0), SeqCst);
        }
        server.lock().unwrap().restart();
        bump(&sh.stats.kills, 1);
    }
    Ok(())
}

// ---- running threads -------------------------------------------------------------

/// Run a worker body: a failure or a panic tells everyone else to stop, so
/// no thread waits forever for one that died.
fn guarded<T>(sh: &Shared, name: &str, body: impl FnOnce() -> Res<T>) -> Result<T, String> {
    struct StopOnUnwind<'a>(&'a AtomicBool);
    impl Drop for StopOnUnwind<'_> {
        fn drop(&mut self) {
            if thread::panicking() {
                self.0.store(true, SeqCst);
            }
        }
    }
    let _guard = StopOnUnwind(&sh.stop);
    body().map_err(|halt| {
        sh.stop.store(true, SeqCst);
        match halt {
            Halt::Stop => format!("{name}: stopped before finishing"),
            Halt::Fatal(msg) => format!("{name}: {msg}"),
        }
    })
}

fn join<T>(handle: ScopedJoinHandle<'_, Result<T, String>>) -> Result<T, String> {
    handle.join().unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into());
        Err(format!("thread panicked: {msg}"))
    })
}

/// Everything produced (confirmed or not), and the errors of all threads.
fn run_workers(sh: &Shared, server: &Mutex<Server>) -> (Vec<Produced>, Vec<String>) {
    thread::scope(|s| {
        let killer = s.spawn(|| guarded(sh, "killer", || killer(sh, server)));
        let producers: Vec<_> = (0..sh.p.producers)
            .map(|i| {
                let quota =
                    sh.p.entries / sh.p.producers + usize::from(i < sh.p.entries % sh.p.producers);
                s.spawn(move || guarded(sh, "producer", || producer(sh, i, quota)))
            })
            .collect();
        let consumers: Vec<_> = (0..sh.workers())
            .map(|i| s.spawn(move || guarded(sh, "consumer", || consumer(sh, i))))
            .collect();
        let mut errors = Vec::new();
        // Watch for a server crash (not a kill): fail fast with its report.
        while !(killer.is_finished() && producers.iter().all(|h| h.is_finished())) {
            if let Some(crash) = crash_report(server) {
                sh.stop.store(true, SeqCst);
                errors.push(crash);
                break;
            }
            thread::sleep(WATCH_EVERY);
        }
        let mut produced = Vec::new();
        for h in producers {
            match join(h) {
                Ok(v) => produced.extend(v),
                Err(e) => errors.push(e),
            }
        }
        errors.extend(join(killer).err());
        if errors.is_empty() {
            errors.extend(drain(sh, server).err());
        }
        if errors.is_empty() && sh.mode == Mode::Standing {
            read_processor_counters(sh);
        }
        sh.stop.store(true, SeqCst);
        errors.extend(consumers.into_iter().filter_map(|h| join(h).err()));
        (produced, errors)
    })
}

/// The assertion and the command being run, if the server crashed. A
/// `kill -9` leaves no report: any report in the log is a real crash.
fn crash_report(server: &Mutex<Server>) -> Option<String> {
    let dir = server
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .dir()
        .to_path_buf();
    let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    let start = log.find("=== REDIS BUG REPORT START")?;
    let lines = log[start..].lines();
    let wanted =
        |l: &&str| l.contains("==>") || l.contains("crashed by signal") || l.starts_with("argv[");
    let report: Vec<&str> = lines.filter(wanted).collect();
    Some(format!(
        "redis-server crashed (log {}):\n{}",
        dir.join("redis.log").display(),
        report.join("\n")
    ))
}

// ---- draining ---------------------------------------------------------------------

/// Pending entries and entries never delivered to the group.
fn backlog(con: &mut dyn ConnectionLike) -> Result<(u64, u64), String> {
    let summary = query(con, &["XPENDING", STREAM, GROUP])?;
    let (pending, ..): (u64, Value, Value, Value) = conv(&summary)?;
    let last_delivered = group_field(con, "last-delivered-id")?;
    let after = format!("({last_delivered}");
    let rest = query(con, &["XRANGE", STREAM, &after, "+", "COUNT", "10000"])?;
    let rest: Vec<(String, Vec<String>)> = conv(&rest)?;
    Ok((pending, rest.len() as u64))
}

/// Production is over and the killer done: let the consumers finish (they
/// keep failing at random and recovering with XAUTOCLAIM) until nothing is
/// pending or undelivered. Polls the server; fails after the drain deadline.
fn drain(sh: &Shared, server: &Mutex<Server>) -> Result<(), String> {
    let deadline = Instant::now() + sh.p.drain_timeout;
    let mut cl = Client::new(sh);
    let mut last = (0, 0);
    while Instant::now() < deadline {
        let con = cl.con().map_err(|h| format!("drain: {h:?}"))?;
        match backlog(con) {
            Ok((0, 0)) => return Ok(()),
            Ok(b) => last = b,
            Err(e) => return Err(format!("drain: {e}")),
        }
        if sh.stop.load(SeqCst) {
            return Err("drain: a worker failed".into());
        }
        if let Some(crash) = crash_report(server) {
            return Err(crash);
        }
        thread::sleep(WATCH_EVERY);
    }
    let con = cl.con().map_err(|h| format!("drain: {h:?}"))?;
    // Standing mode: what the processor says of itself (its last error).
    let processors = match sh.mode {
        Mode::Standing => format!("; XPROCESS.LIST {:?}", query(con, &["XPROCESS.LIST"])),
        _ => String::new(),
    };
    Err(format!(
        "drain: still {} pending and {} undelivered after {:?}; XPENDING {:?}; consumers {:?}{processors}",
        last.0,
        last.1,
        sh.p.drain_timeout,
        query(con, &["XPENDING", STREAM, GROUP]),
        query(con, &["XINFO", "CONSUMERS", STREAM, GROUP]),
    ))
}

fn query(con: &mut dyn ConnectionLike, args: &[&str]) -> Result<Value, String> {
    match con.req_command(&cmd(&strings(args))) {
        Ok(Value::ServerError(e)) => Err(format!("{args:?}: {e:?}")),
        Ok(v) => Ok(v),
        Err(e) => Err(format!("{args:?}: {e}")),
    }
}

fn conv<T: redis::FromRedisValue>(v: &Value) -> Result<T, String> {
    redis::from_redis_value(v).map_err(|e| format!("unexpected reply {v:?}: {e}"))
}

/// One field of the group's XINFO GROUPS entry.
fn group_field(con: &mut dyn ConnectionLike, name: &str) -> Result<String, String> {
    let groups: Vec<Vec<Value>> = conv(&query(con, &["XINFO", "GROUPS", STREAM])?)?;
    let group = groups
        .iter()
        .find(|g| {
            g.chunks(2)
                .any(|kv| conv::<String>(&kv[1]).ok().as_deref() == Some(GROUP))
        })
        .ok_or("group missing")?;
    let kv = group
        .chunks(2)
        .find(|kv| conv::<String>(&kv[0]).ok().as_deref() == Some(name))
        .ok_or_else(|| format!("no {name} in {group:?}"))?;
    conv(&kv[1])
}

// ---- the checker --------------------------------------------------------------------

/// What the server holds, compared with what was produced. A correct
/// exactly-once run has every `Vec` empty and every count at zero.
#[derive(Debug, Default, PartialEq)]
struct Report {
    /// Entries in the stream (all produced by us).
    entries: usize,
    /// Of those, XADDs whose reply was lost to a kill.
    uncertain_present: usize,
    /// XADDs confirmed to the producer but missing or altered (durability).
    lost_entries: Vec<String>,
    /// Stream entries no producer wrote.
    unknown_entries: Vec<String>,
    pending: u64,
    undelivered: u64,
    /// Receipts beyond the first for the same source entry.
    duplicate_receipts: usize,
    missing_receipts: usize,
    /// Receipts naming no source entry, or with the wrong amount.
    bad_receipts: Vec<String>,
    /// Sum over customers of the amount counted too much / too little.
    totals_over: i64,
    totals_under: i64,
    /// Dedupe store vs. the stream's IDs (XPROCESS mode only): stream IDs
    /// it lacks, and records of IDs that are not in the stream.
    dedupe_missing: usize,
    dedupe_extra: usize,
    /// The store is not the kind asked for, cannot be read, or (an index)
    /// is not one range without holes although every entry is processed.
    dedupe_problems: Vec<String>,
    /// READ mode: poison entries in the stream, and entries of the
    /// dead-letter stream.
    poison_entries: usize,
    dead_lettered: usize,
    /// Poison entries without a dead letter, and dead letters beyond the
    /// first for the same entry.
    dead_letters_missing: usize,
    dead_letters_extra: usize,
    /// Dead letters of good or unknown entries, or not as documented
    /// (metadata, error, delivery count, fields); `2` replies for good entries.
    bad_dead_letters: Vec<String>,
    /// Poison entries with a receipt or a `1` reply.
    poison_applied: Vec<String>,
    /// Effects and Fcall modes: the sales and refunds in the stream.
    sales: usize,
    refunds: usize,
    /// Effects and Fcall modes: keys the effects wrote, all kinds together.
    effect_keys: usize,
    /// Effects and Fcall modes: entry IDs beyond the first in a customer's
    /// log, and entries missing from it.
    log_duplicates: usize,
    log_missing: usize,
    /// Effects and Fcall modes: keys that do not hold what the stream's
    /// entries make them (balances, boards, orders, big sales, sku counts,
    /// the function's hashes, log items that are no entry's), and keys no
    /// entry makes.
    effect_mismatches: Vec<String>,
    /// Standing mode: the processor not as XPROCESS.LIST, XINFO
    /// CONSUMERS and XPROCESS.INFO must show it once everything is drained.
    processor_problems: Vec<String>,
    /// Exactly-once violations seen by the clients.
    client_violations: Vec<String>,
}

impl Report {
    fn duplicates(&self) -> usize {
        self.duplicate_receipts
            + usize::from(self.totals_over > 0)
            + self.dedupe_extra
            + self.dead_letters_extra
            + self.log_duplicates
    }

    fn lost(&self) -> usize {
        self.lost_entries.len()
            + self.missing_receipts
            + usize::from(self.totals_under > 0)
            + self.dedupe_missing
            + self.pending as usize
            + self.undelivered as usize
            + self.dead_letters_missing
            + self.log_missing
    }

    fn is_clean(&self) -> bool {
        self.duplicates() == 0
            && self.lost() == 0
            && self.unknown_entries.is_empty()
            && self.bad_receipts.is_empty()
            && self.dedupe_problems.is_empty()
            && self.bad_dead_letters.is_empty()
            && self.poison_applied.is_empty()
            && self.effect_mismatches.is_empty()
            && self.processor_problems.is_empty()
            && self.client_violations.is_empty()
    }
}

fn xrange_all(con: &mut Connection, key: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut out: Vec<(String, HashMap<String, String>)> = Vec::new();
    let mut start = "-".to_string();
    loop {
        let page: Vec<(String, Vec<String>)> =
            common::q(con, &["XRANGE", key, &start, "+", "COUNT", "1000"]);
        let Some((last, _)) = page.last() else {
            return out;
        };
        start = format!("({last}");
        out.extend(page.into_iter().map(|(id, flat)| {
            let fields = flat.chunks(2).map(|kv| (kv[0].clone(), kv[1].clone()));
            (id, fields.collect())
        }));
    }
}

/// One entry of the stream, checked against the producers' records.
struct Found {
    id: String,
    /// What must be applied exactly once: the entry, or with business keys
    /// the payment (`pseq`), whatever number of entries it has.
    unit: String,
    customer: String,
    amount: i64,
    /// A poison entry (READ mode): never applied, dead-lettered once.
    poison: Option<Poison>,
    fields: HashMap<String, String>,
}

fn reconcile(
    con: &mut Connection,
    keyed: bool,
    produced: &[Produced],
    r: &mut Report,
) -> Vec<Found> {
    let by_pseq: HashMap<&str, &Produced> = produced.iter().map(|p| (p.pseq.as_str(), p)).collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut ids: HashSet<String> = HashSet::new();
    let mut entries = Vec::new();
    for (id, f) in xrange_all(con, STREAM) {
        let pseq = f.get("pseq").cloned().unwrap_or_default();
        let Some(p) = by_pseq.get(pseq.as_str()) else {
            r.unknown_entries.push(id);
            continue;
        };
        let known_id = match keyed {
            // Every send may have added an entry; confirmed ones are listed.
            true => p.ids.contains(&id) || p.ids.len() < p.sends as usize,
            false => p.id.as_ref().is_none_or(|pid| *pid == id),
        };
        let same = f == p.fields().into_iter().collect::<HashMap<_, _>>() && known_id;
        let first = seen.insert(pseq.clone());
        if !same || (!keyed && !first) {
            r.unknown_entries.push(format!("{id} {f:?} vs {p:?}"));
            continue;
        }
        r.uncertain_present += usize::from(p.id.is_none() && first);
        r.poison_entries += usize::from(p.poison.is_some());
        ids.insert(id.clone());
        let unit = if keyed { pseq } else { id.clone() };
        entries.push(Found {
            id,
            unit,
            customer: p.customer.clone(),
            amount: p.amount,
            poison: p.poison,
            fields: f,
        });
    }
    let missing = produced
        .iter()
        .filter(|p| p.ids.iter().any(|id| !ids.contains(id)));
    r.lost_entries.extend(missing.map(|p| format!("{p:?}")));
    r.entries = entries.len();
    entries
}

/// One receipt per unit (entry, or payment with business keys), none for
/// a poison entry.
fn check_receipts(con: &mut Connection, entries: &[Found], r: &mut Report) {
    let by_id: HashMap<&str, &Found> = entries.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (rid, f) in xrange_all(con, RECEIPTS) {
        let src = f.get("src").cloned().unwrap_or_default();
        match by_id.get(src.as_str()) {
            Some(e) if e.poison.is_some() => {
                r.poison_applied
                    .push(format!("receipt {rid} of poison entry {src}"));
            }
            Some(e) if f.get("amount") == Some(&e.amount.to_string()) => {
                *count.entry(e.unit.as_str()).or_default() += 1;
            }
            _ => r.bad_receipts.push(format!("{rid} {f:?}")),
        }
    }
    r.duplicate_receipts = count.values().map(|n| n - 1).sum();
    let good = entries.iter().filter(|e| e.poison.is_none());
    let units: HashSet<&str> = good.map(|e| e.unit.as_str()).collect();
    r.missing_receipts = units.iter().filter(|u| !count.contains_key(*u)).count();
}

/// Totals: each unit's amount once.
fn check_totals(con: &mut Connection, entries: &[Found], r: &mut Report) {
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut units: HashSet<&str> = HashSet::new();
    for e in entries.iter().filter(|e| e.poison.is_none()) {
        if units.insert(e.unit.as_str()) {
            *expected.entry(e.customer.clone()).or_default() += e.amount;
        }
    }
    let actual: HashMap<String, i64> = common::q(con, &["HGETALL", TOTALS]);
    let customers: HashSet<&String> = expected.keys().chain(actual.keys()).collect();
    for c in customers {
        let diff = actual.get(c).copied().unwrap_or(0) - expected.get(c).copied().unwrap_or(0);
        if diff > 0 {
            r.totals_over += diff;
        } else {
            r.totals_under -= diff;
        }
    }
}

fn check_dedupe(con: &mut Connection, store: Store, entries: &[Found], r: &mut Report) {
    let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
    match read_dedupe(con, store, DEDUPE, &ids) {
        Ok(d) => {
            r.dedupe_missing = ids.iter().filter(|id| !d.found.contains(*id)).count();
            r.dedupe_extra = d.others as usize;
        }
        Err(e) => r.dedupe_problems.push(e),
    }
    // Every entry is processed by now (the drain succeeded).
    if store == Store::Index {
        r.dedupe_problems.extend(index_settled(con, DEDUPE, STREAM));
    }
}

/// READ mode: exactly one dead letter per poison entry, none for a good
/// one, each as documented: `@id @stream @group @consumer @error
/// @deliveries`, then the entry's fields as `$name value`. And what the
/// clients saw: no `1` for a poison entry, no `2` for a good one.
fn check_dead_letters(con: &mut Connection, sh: &Shared, entries: &[Found], r: &mut Report) {
    let by_id: HashMap<&str, &Found> = entries.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (did, f) in xrange_all(con, DEAD) {
        r.dead_lettered += 1;
        // Sorted, so that a report reads the same after the last restart.
        let shown: BTreeMap<&String, &String> = f.iter().collect();
        let src = f.get("@id").cloned().unwrap_or_default();
        let Some(e) = by_id.get(src.as_str()).filter(|e| e.poison.is_some()) else {
            r.bad_dead_letters
                .push(format!("{did} {shown:?}: not a poison entry's"));
            continue;
        };
        *count.entry(e.id.as_str()).or_default() += 1;
        if let Err(why) = dead_letter_as_documented(sh, e, &f) {
            r.bad_dead_letters.push(format!("{did} {shown:?}: {why}"));
        }
    }
    r.dead_letters_extra = count.values().map(|n| n - 1).sum();
    let poison = entries.iter().filter(|e| e.poison.is_some());
    r.dead_letters_missing = poison
        .filter(|e| !count.contains_key(e.id.as_str()))
        .count();
    let applied = sh.applied.lock().unwrap();
    for e in entries.iter().filter(|e| e.poison.is_some()) {
        if applied.contains_key(&e.id) {
            r.poison_applied
                .push(format!("READ replied 1 for poison entry {}", e.id));
        }
    }
    for id in sh.dead.lock().unwrap().keys() {
        if by_id.get(id.as_str()).is_none_or(|e| e.poison.is_none()) {
            r.bad_dead_letters
                .push(format!("READ replied 2 for {id}, not a poison entry"));
        }
    }
}

fn dead_letter_as_documented(
    sh: &Shared,
    e: &Found,
    f: &HashMap<String, String>,
) -> Result<(), String> {
    let field = |name: &str| f.get(name).map(String::as_str).unwrap_or("");
    let consumers = sh.consumer_names();
    if field("@stream") != STREAM || field("@group") != GROUP {
        return Err("wrong @stream or @group".into());
    }
    // Fcall mode's IDS calls without CONSUMER dead-letter without one.
    let unnamed = sh.mode == Mode::Fcall && !f.contains_key("@consumer");
    if !unnamed && !consumers.iter().any(|c| c == field("@consumer")) {
        return Err("@consumer is none of the consumers".into());
    }
    let expected = e
        .poison
        .map(|p| p.error(&e.id, sh.mode))
        .unwrap_or_default();
    if field("@error") != expected {
        return Err(format!("@error is not {expected:?}"));
    }
    match field("@deliveries").parse::<u64>() {
        Ok(n) if n >= DEAD_AFTER => {}
        _ => return Err(format!("@deliveries is not at least {DEAD_AFTER}")),
    }
    let meta = [
        "@id",
        "@stream",
        "@group",
        "@consumer",
        "@error",
        "@deliveries",
    ];
    let own: BTreeMap<String, String> = f
        .iter()
        .filter(|(k, _)| !meta.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let expected: BTreeMap<String, String> = e
        .fields
        .iter()
        .map(|(k, v)| (format!("${k}"), v.clone()))
        .collect();
    if own != expected {
        return Err(format!("its entry fields are not {expected:?}"));
    }
    Ok(())
}

/// With business keys: every payment's key is remembered.
fn check_keys(con: &mut Connection, entries: &[Found], r: &mut Report) {
    let units: HashSet<&str> = entries.iter().map(|e| e.unit.as_str()).collect();
    let units: Vec<&str> = units.into_iter().collect();
    for chunk in units.chunks(1000) {
        let mut args = vec!["XPROCESS.EXISTS", DEDUPE, "KEY"];
        args.extend_from_slice(chunk);
        let flags: Vec<i64> = common::q(con, &args);
        r.dedupe_missing += flags.iter().filter(|f| **f != 1).count();
    }
}

/// `YYYY-MM-DD`, the UTC day of an entry ID's milliseconds: what `${@date}`
/// must expand to, worked out here from the civil calendar (the inverse of
/// days-from-civil), not by the module.
fn utc_date(id: &str) -> String {
    let ms: i64 = id
        .split('-')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// What the effects of Effects mode must have made of the keyspace,
/// recomputed from the stream's entries alone: each entry applied once.
#[derive(Default)]
struct Expected {
    /// Customer: sales less refunds.
    balances: BTreeMap<String, i64>,
    /// Date: sku: the day's sales.
    boards: BTreeMap<String, BTreeMap<String, i64>>,
    /// Date: the IDs of the day's sales of at least BIG_AMOUNT.
    big: BTreeMap<String, BTreeSet<String>>,
    /// Customer: the IDs of the customer's entries (each once in its log).
    logs: BTreeMap<String, BTreeSet<String>>,
    /// Date: the skus of the day's entries.
    skus: BTreeMap<String, BTreeSet<String>>,
}

fn expected_effects(entries: &[Found], r: &mut Report) -> Expected {
    let mut x = Expected::default();
    for e in entries {
        let field = |name: &str| e.fields.get(name).cloned().unwrap_or_default();
        let (sku, date) = (field("sku"), utc_date(&e.id));
        let sale = match field("type").as_str() {
            "sale" => true,
            "refund" => false,
            other => panic!("entry {} of type {other:?}", e.id),
        };
        r.sales += usize::from(sale);
        r.refunds += usize::from(!sale);
        let signed = if sale { e.amount } else { -e.amount };
        *x.balances.entry(e.customer.clone()).or_default() += signed;
        if sale {
            let board = x.boards.entry(date.clone()).or_default();
            *board.entry(sku.clone()).or_default() += e.amount;
        }
        if sale && e.amount >= BIG_AMOUNT {
            x.big.entry(date.clone()).or_default().insert(e.id.clone());
        }
        let log = x.logs.entry(e.customer.clone()).or_default();
        log.insert(e.id.clone());
        x.skus.entry(date).or_default().insert(sku);
    }
    x
}

/// Effects mode: every key the effects write, against what the stream's
/// entries make it; any other key under their prefixes is a mismatch.
fn check_effects(con: &mut Connection, entries: &[Found], r: &mut Report) {
    let x = expected_effects(entries, r);
    let bad = &mut r.effect_mismatches;
    let mut keys: Vec<String> = common::q(con, &["KEYS", "{payments}:*"]);
    keys.retain(|k| k != DEDUPE);
    r.effect_keys = keys.len();
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for (customer, sum) in &x.balances {
        let key = format!("{BALANCE}{customer}");
        let got: Option<i64> = common::q(con, &["GET", &key]);
        if got != Some(*sum) {
            bad.push(format!("{key}: {got:?}, the entries make {sum}"));
        }
        wanted.insert(key);
    }
    for (date, want) in &x.boards {
        let key = format!("{BOARD}{date}");
        let got: Vec<(String, f64)> = common::q(con, &["ZRANGE", &key, "0", "-1", "WITHSCORES"]);
        let got: BTreeMap<String, i64> = got.into_iter().map(|(m, s)| (m, s as i64)).collect();
        if got != *want {
            bad.push(format!("{key}: {got:?}, the entries make {want:?}"));
        }
        wanted.insert(key);
    }
    for (date, want) in &x.big {
        let key = format!("{BIG}{date}");
        let got: BTreeSet<String> = common::q(con, &["SMEMBERS", &key]);
        if got != *want {
            let extra: Vec<_> = got.difference(want).collect();
            let missing: Vec<_> = want.difference(&got).collect();
            bad.push(format!("{key}: extra {extra:?}, missing {missing:?}"));
        }
        wanted.insert(key);
    }
    for (customer, ids) in &x.logs {
        let key = format!("{LOG}{customer}");
        let got: Vec<String> = common::q(con, &["LRANGE", &key, "0", "-1"]);
        let mut count: HashMap<&str, usize> = HashMap::new();
        for id in &got {
            *count.entry(id.as_str()).or_default() += 1;
        }
        for (id, n) in &count {
            if !ids.contains(*id) {
                bad.push(format!("{key}: {id} is none of the customer's entries"));
            }
            r.log_duplicates += n - 1;
        }
        r.log_missing += ids
            .iter()
            .filter(|id| !count.contains_key(id.as_str()))
            .count();
        wanted.insert(key);
    }
    for (date, skus) in &x.skus {
        // The same elements make the same HLL registers: the day's count
        // must be the expected set's, and merging that set in adds nothing.
        let key = format!("{SKU_COUNT}{date}");
        let _: i64 = common::q(con, &["DEL", SCRATCH]);
        let mut add = vec!["PFADD", SCRATCH];
        add.extend(skus.iter().map(String::as_str));
        let _: i64 = common::q(con, &add);
        let want: i64 = common::q(con, &["PFCOUNT", SCRATCH]);
        let got: i64 = common::q(con, &["PFCOUNT", &key]);
        let _: String = common::q(con, &["PFMERGE", SCRATCH, &key]);
        let merged: i64 = common::q(con, &["PFCOUNT", SCRATCH]);
        let _: i64 = common::q(con, &["DEL", SCRATCH]);
        if got != want || merged != want {
            bad.push(format!(
                "{key}: PFCOUNT {got}, {want} for the entries' skus {skus:?} ({merged} merged)"
            ));
        }
        wanted.insert(key);
    }
    // One order per entry, its fields the entry's (HSET ENTRY), pipelined.
    for chunk in entries.chunks(1000) {
        let mut pipe = redis::pipe();
        for e in chunk {
            pipe.cmd("HGETALL").arg(format!("{ORDER}{}", e.id));
        }
        let orders: Vec<HashMap<String, String>> = pipe.query(con).expect("HGETALL orders");
        for (e, order) in chunk.iter().zip(orders) {
            if order != e.fields {
                bad.push(format!(
                    "{ORDER}{}: {order:?}, the entry is {:?}",
                    e.id, e.fields
                ));
            }
            wanted.insert(format!("{ORDER}{}", e.id));
        }
    }
    for key in keys.iter().filter(|k| !wanted.contains(*k)) {
        bad.push(format!("{key}: no entry makes it"));
    }
}

/// Fcall mode: every customer's hash (`max`, `count`, `sum`) and log as
/// the stream's good entries make them, each good entry's ID once in its
/// customer's log, no poison entry's anywhere, and no key under
/// `{payments}:` but these, the dedupe key and the dead letters.
fn check_fcall(con: &mut Connection, entries: &[Found], r: &mut Report) {
    let mut hashes: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    let mut logs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.poison.is_none()) {
        let (max, count, sum) = hashes.entry(&e.customer).or_insert((i64::MIN, 0, 0));
        (*max, *count, *sum) = ((*max).max(e.amount), *count + 1, *sum + e.amount);
        logs.entry(&e.customer).or_default().insert(&e.id);
    }
    let poison: HashSet<&str> = entries
        .iter()
        .filter(|e| e.poison.is_some())
        .map(|e| e.id.as_str())
        .collect();
    let mut keys: Vec<String> = common::q(con, &["KEYS", "{payments}:*"]);
    keys.retain(|k| k != DEDUPE && k != DEAD);
    r.effect_keys = keys.len();
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for (customer, (max, count, sum)) in &hashes {
        let key = format!("{MAXCOUNT}{customer}");
        let got: BTreeMap<String, String> = common::q(con, &["HGETALL", &key]);
        let want: BTreeMap<String, String> = [("max", max), ("count", count), ("sum", sum)]
            .into_iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect();
        if got != want {
            r.effect_mismatches
                .push(format!("{key}: {got:?}, the entries make {want:?}"));
        }
        wanted.insert(key);
    }
    for (customer, ids) in &logs {
        let key = format!("{LOG}{customer}");
        let got: Vec<String> = common::q(con, &["LRANGE", &key, "0", "-1"]);
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for id in &got {
            *count.entry(id.as_str()).or_default() += 1;
        }
        for (id, n) in &count {
            if poison.contains(id) {
                r.poison_applied
                    .push(format!("{key} holds poison entry {id}"));
            } else if !ids.contains(id) {
                let msg = format!("{key}: {id} is none of the customer's entries");
                r.effect_mismatches.push(msg);
            }
            r.log_duplicates += n - 1;
        }
        r.log_missing += ids.iter().filter(|id| !count.contains_key(*id)).count();
        wanted.insert(key);
    }
    for key in keys.iter().filter(|k| !wanted.contains(*k)) {
        r.effect_mismatches
            .push(format!("{key}: no entry makes it"));
    }
}

fn check(con: &mut Connection, sh: &Shared, produced: &[Produced]) -> Report {
    let mut r = Report::default();
    let entries = reconcile(con, sh.mode == Mode::Keyed, produced, &mut r);
    (r.pending, r.undelivered) = backlog(con).unwrap_or_else(|e| panic!("{e}"));
    if !matches!(sh.mode, Mode::Effects | Mode::Fcall) {
        check_receipts(con, &entries, &mut r);
        check_totals(con, &entries, &mut r);
    }
    match sh.mode {
        Mode::XProcess(store) => check_dedupe(con, store, &entries, &mut r),
        Mode::Keyed => {
            check_dedupe(con, Store::Index, &entries, &mut r);
            check_keys(con, &entries, &mut r);
        }
        Mode::Read => {
            check_dedupe(con, Store::Index, &entries, &mut r);
            check_dead_letters(con, sh, &entries, &mut r);
        }
        Mode::Effects => {
            check_dedupe(con, Store::Index, &entries, &mut r);
            check_effects(con, &entries, &mut r);
        }
        Mode::Fcall => {
            check_dedupe(con, Store::Index, &entries, &mut r);
            check_dead_letters(con, sh, &entries, &mut r);
            check_fcall(con, &entries, &mut r);
        }
        Mode::Standing => {
            check_dedupe(con, Store::Index, &entries, &mut r);
            check_dead_letters(con, sh, &entries, &mut r);
            check_processor(con, &mut r);
        }
        Mode::Naive => {}
    }
    r.client_violations = sh.violations.lock().unwrap().clone();
    r
}

// ---- the run -----------------------------------------------------------------------

struct Outcome {
    report: Report,
    summary: String,
}

fn summary(sh: &Shared, r: &Report, elapsed: Duration) -> String {
    let s = &sh.stats;
    let extra = match sh.mode {
        Mode::XProcess(_) => String::new(),
        Mode::Keyed => format!(" producer-retries={}", get(&s.producer_retries)),
        Mode::Read => format!(
            " poison={} (sent {}) dead-lettered={} (extra {}, missing {}) \
             dead-letter-replies(2)={} poison-failures={} crashes-holding-batch={}",
            r.poison_entries,
            get(&s.poison_produced),
            r.dead_lettered,
            r.dead_letters_extra,
            r.dead_letters_missing,
            get(&s.dead_letter_replies),
            get(&s.poison_failures),
            get(&s.held_batches),
        ),
        Mode::Standing => format!(
            " poison={} (sent {}) dead-lettered={} (extra {}, missing {}) \
             processor-problems={} lag-at-last-kill={} (after production: resumed with \
             no XADD) listed (by {} XPROCESS.LIST readings, before each kill and at \
             the end; lower bounds): processed={} dead-lettered={} errors={} duplicates={}",
            r.poison_entries,
            get(&s.poison_produced),
            r.dead_lettered,
            r.dead_letters_extra,
            r.dead_letters_missing,
            r.processor_problems.len(),
            get(&s.lag_at_last_kill),
            get(&s.list_readings),
            get(&s.listed_processed),
            get(&s.listed_dead_lettered),
            get(&s.listed_errors),
            get(&s.listed_duplicates),
        ),
        Mode::Naive => format!(
            " crashes-after-effect={}",
            get(&s.naive_crashes_after_effect)
        ),
        Mode::Fcall => format!(
            " poison={} (sent {}) dead-lettered={} (extra {}, missing {}) \
             dead-letter-replies(2)={} poison-failures={} crashes-holding-batch={} \
             read-calls={} effect-keys={} log-duplicates={} log-missing={} \
             effect-mismatches={} poison-applied={}",
            r.poison_entries,
            get(&s.poison_produced),
            r.dead_lettered,
            r.dead_letters_extra,
            r.dead_letters_missing,
            get(&s.dead_letter_replies),
            get(&s.poison_failures),
            get(&s.held_batches),
            get(&s.read_calls),
            r.effect_keys,
            r.log_duplicates,
            r.log_missing,
            r.effect_mismatches.len(),
            r.poison_applied.len(),
        ),
        Mode::Effects => format!(
            " sales={} refunds={} effect-keys={} log-duplicates={} log-missing={} \
             effect-mismatches={}",
            r.sales,
            r.refunds,
            r.effect_keys,
            r.log_duplicates,
            r.log_missing,
            r.effect_mismatches.len(),
        ),
    };
    format!(
        "chaos[{:?}] seed={} entries={} (XADD reply lost: {}, of which present: {}) \
         producers={} consumers={} kills={} consumer-crashes={}{extra} \
         lost-replies-resent={} resent-after-disconnect={} abandoned-batches={} \
         xautoclaims={} claimed={} applied(1)={} duplicates-reported(0)={} notowner={} \
         duplicate-effects={} (extra receipts {}, totals over by {}) lost={} elapsed={:.1}s",
        sh.mode,
        sh.p.seed,
        r.entries,
        get(&s.uncertain_xadds),
        r.uncertain_present,
        sh.p.producers,
        sh.workers(),
        get(&s.kills),
        get(&s.consumer_crashes),
        get(&s.lost_replies_resent),
        get(&s.resent_after_disconnect),
        get(&s.abandoned_batches),
        get(&s.xautoclaims),
        get(&s.claimed_entries),
        get(&s.applied_replies),
        get(&s.duplicate_replies),
        get(&s.notowner_replies),
        r.duplicates(),
        r.duplicate_receipts,
        r.totals_over,
        r.lost(),
        elapsed.as_secs_f64(),
    )
}

fn start_server() -> Server {
    let server = Server::with(&[], &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = server.conn();
    let ok: String = common::q(
        &mut con,
        &["XGROUP", "CREATE", STREAM, GROUP, "0", "MKSTREAM"],
    );
    assert_eq!(ok, "OK");
    server
}

fn run(mode: Mode) -> Outcome {
    let p = Params::from_env();
    println!(
        "chaos[{mode:?}] params {p:?} (set CHAOS_SEED={} to repeat)",
        p.seed
    );
    let server = start_server();
    println!("chaos[{mode:?}] server dir {}", server.dir().display());
    if mode == Mode::Fcall {
        load_library(&mut server.conn());
    }
    if mode == Mode::Standing {
        define_and_start(&mut server.conn());
    }
    let started = Instant::now();
    let sh = Shared {
        mode,
        port: server.port(),
        deadline: started + p.timeout,
        stop: AtomicBool::new(false),
        produced: AtomicUsize::new(0),
        stats: Stats::default(),
        applied: Mutex::new(HashMap::new()),
        dead: Mutex::new(HashMap::new()),
        violations: Mutex::new(Vec::new()),
        p,
    };
    let server = Mutex::new(server);
    let (produced, errors) = run_workers(&sh, &server);
    let elapsed = started.elapsed();
    let mut server = server.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(
        errors.is_empty(),
        "seed {}: the run failed:\n{}",
        sh.p.seed,
        errors.join("\n")
    );
    let report = check(&mut server.conn(), &sh, &produced);
    let summary = summary(&sh, &report, elapsed);
    println!("{summary}");
    // One more kill: what the checker saw must come back from the AOF.
    server.restart();
    let again = check(&mut server.conn(), &sh, &produced);
    assert_eq!(
        report, again,
        "state changed across a kill -9 / AOF restart"
    );
    Outcome { report, summary }
}

/// With the dedupe index, the default store.
#[test]
fn xprocess_is_exactly_once_under_chaos() {
    let Outcome { report, summary } = run(Mode::XProcess(Store::Index));
    assert!(report.is_clean(), "{summary}\n{report:#?}");
}

/// With a plain Set as the dedupe store (`STORE SET`).
#[test]
fn xprocess_is_exactly_once_under_chaos_with_a_set() {
    let Outcome { report, summary } = run(Mode::XProcess(Store::Set));
    assert!(report.is_clean(), "{summary}\n{report:#?}");
}

/// With business keys, and producers that send payments twice: every
/// payment applied once, whatever number of entries it has.
#[test]
fn business_keys_are_exactly_once_under_chaos_and_producer_retries() {
    let Outcome { report, summary } = run(Mode::Keyed);
    assert!(report.is_clean(), "{summary}\n{report:#?}");
    assert!(
        !summary.contains("producer-retries=0 "),
        "no producer retried: the run proves nothing: {summary}"
    );
}

/// READ workers (the one-command loop, CLAIM and DEADLETTER) and poison
/// entries: good entries applied once, poison entries dead-lettered once.
#[test]
fn read_workers_are_exactly_once_and_dead_letter_poison_under_chaos() {
    let Outcome { report, summary } = run(Mode::Read);
    assert!(report.is_clean(), "{summary}\n{report:#?}");
    assert!(
        report.entries < 500 || report.poison_entries > 0,
        "no poison entry: the run proves nothing: {summary}"
    );
}

/// Templated keys, WHEN conditions and a mix of effects (INCRBY of sales
/// and refunds, HSET ENTRY, ZINCRBY of a daily board, SADD, LPUSH, PFADD):
/// every key as the stream's entries make it, each entry's effects once.
#[test]
fn a_mix_of_effects_with_templated_keys_and_conditions_is_exactly_once_under_chaos() {
    let Outcome { report, summary } = run(Mode::Effects);
    assert!(report.is_clean(), "{summary}\n{report:#?}");
    assert!(
        report.entries < 100 || (report.sales > 0 && report.refunds > 0),
        "no sale or no refund: the run proves little: {summary}"
    );
}

/// A Redis Function as the one effect (FCALL, with DEADLETTER), IDS and
/// READ workers, poison entries the function refuses before it writes:
/// every good entry's writes once (max, count, sum, its ID once in its
/// customer's log), every poison entry dead-lettered once, never applied.
#[test]
fn an_fcall_effect_is_exactly_once_and_dead_letters_what_it_refuses_under_chaos() {
    let Outcome { report, summary } = run(Mode::Fcall);
    assert!(report.is_clean(), "{summary}\n{report:#?}");
    assert!(
        report.entries < 500 || report.poison_entries > 0,
        "no poison entry: the run proves nothing: {summary}"
    );
}

/// No workers at all: a standing processor, defined and started once,
/// resumes by itself after every kill -9 from the AOF and drains the group;
/// good entries applied once, poison entries dead-lettered once.
#[test]
fn a_standing_processor_is_exactly_once_and_dead_letters_poison_under_chaos() {
    let Outcome { report, summary } = run(Mode::Standing);
    assert!(report.is_clean(), "{summary}\n{report:#?}");
    assert!(
        report.entries < 500 || (report.poison_entries > 0 && report.dead_lettered > 0),
        "no poison entry: the run proves nothing: {summary}"
    );
}

/// The checker must be able to see duplicates: the naive pattern produces them.
#[test]
fn naive_pattern_over_counts_under_chaos() {
    let Outcome { report, summary } = run(Mode::Naive);
    assert!(
        report.duplicate_receipts > 0 && report.totals_over > 0,
        "the checker saw no duplicate in the naive run: {summary}\n{report:#?}"
    );
    // Effects before XACK: at-least-once, so nothing may be missing.
    assert_eq!(report.lost(), 0, "{summary}\n{report:#?}");
    assert!(report.unknown_entries.is_empty() && report.bad_receipts.is_empty());
}

/// The Effects checker sees what chaos could do wrong: after one clean
/// call, one entry's effects applied a second time by hand and another's
/// log item removed must show as a duplicate, a loss and wrong keys.
#[test]
fn the_effects_checker_sees_duplicates_and_losses() {
    let server = start_server();
    let mut con = server.conn();
    for i in 0..8 {
        let (kind, amount) = if i % 4 == 3 {
            ("refund", "40")
        } else {
            ("sale", "700")
        };
        let (customer, sku, pseq) = (
            format!("c{}", i % 2),
            format!("sku{}", i % 3),
            i.to_string(),
        );
        let fields = [
            ("pseq", pseq.as_str()),
            ("customer", &customer),
            ("amount", amount),
        ];
        let fields = fields.into_iter().chain([("type", kind), ("sku", &sku)]);
        let mut args = vec!["XADD", STREAM, "*"];
        args.extend(fields.flat_map(|(f, v)| [f, v]));
        let _: String = common::q(&mut con, &args);
    }
    let read = ["XREADGROUP", "GROUP", GROUP, "w", "STREAMS", STREAM, ">"];
    let _: Value = common::q(&mut con, &read);
    let found: Vec<Found> = xrange_all(&mut con, STREAM)
        .into_iter()
        .map(|(id, fields)| Found {
            unit: id.clone(),
            customer: fields["customer"].clone(),
            amount: fields["amount"].parse().unwrap(),
            poison: None,
            id,
            fields,
        })
        .collect();
    let batch: Vec<Entry> = found
        .iter()
        .map(|f| Entry {
            id: f.id.clone(),
            pseq: f.fields["pseq"].clone(),
            customer: f.customer.clone(),
            amount: f.amount.to_string(),
            poison: None,
        })
        .collect();
    let args = xprocess_args(None, &[], &mix_effects(), &batch);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let reply = common::slots(&common::call(&mut con, &args));
    assert_eq!(reply, ["1"; 8]);
    let mut clean = Report::default();
    check_effects(&mut con, &found, &mut clean);
    assert!(clean.is_clean(), "{clean:#?}");
    assert_eq!(
        (clean.sales, clean.refunds, clean.effect_keys),
        (6, 2, 8 + 2 + 2 + 1 + 1 + 1)
    );

    let (again, gone) = (&found[0], &found[1]);
    let date = utc_date(&again.id);
    let sku = &again.fields["sku"];
    let amount = again.amount.to_string();
    let bal = format!("{BALANCE}{}", again.customer);
    let board = format!("{BOARD}{date}");
    let log = format!("{LOG}{}", again.customer);
    let _: i64 = common::q(&mut con, &["INCRBY", &bal, &amount]);
    let _: f64 = common::q(&mut con, &["ZINCRBY", &board, &amount, sku]);
    let _: i64 = common::q(&mut con, &["LPUSH", &log, &again.id]);
    let gone_log = format!("{LOG}{}", gone.customer);
    let _: i64 = common::q(&mut con, &["LREM", &gone_log, "0", &gone.id]);
    let _: String = common::q(&mut con, &["SET", &format!("{BALANCE}nobody"), "1"]);
    let mut r = Report::default();
    check_effects(&mut con, &found, &mut r);
    assert_eq!((r.log_duplicates, r.log_missing), (1, 1), "{r:#?}");
    let nobody = format!("{BALANCE}nobody");
    for key in [&bal, &board, &nobody] {
        let named = |m: &String| m.starts_with(&format!("{key}: "));
        assert!(r.effect_mismatches.iter().any(named), "{key}: {r:#?}");
    }
    assert!(!r.is_clean());
    assert_eq!(r.effect_mismatches.len(), 3, "{r:#?}");
}

/// The Fcall checker sees what chaos could do wrong: after one clean call
/// (good entries applied, two poison entries dead-lettered, the function
/// called for none of them), one entry's function call made a second time
/// by hand, another's log item removed, a poison entry's ID pushed to a
/// log and a stray key must show as a duplicate, a loss, an applied poison
/// entry and wrong keys.
#[test]
fn the_fcall_checker_sees_duplicates_losses_and_applied_poison() {
    let server = start_server();
    let mut con = server.conn();
    load_library(&mut con);
    let rows: [(Option<&str>, &str); 8] = [
        (Some("c0"), "700"),
        (Some("c1"), "40"),
        (Some("c0"), "12"),
        (Some("c1"), "7.50"),
        (None, "9"),
        (Some("c0"), "900"),
        (Some("c1"), "41"),
        (Some("c2"), "5"),
    ];
    let mut found = Vec::new();
    for (i, (customer, amount)) in rows.into_iter().enumerate() {
        let pseq = i.to_string();
        let mut args = vec!["XADD", STREAM, "*", "pseq", &pseq];
        args.extend(customer.iter().flat_map(|c| ["customer", *c]));
        args.extend(["amount", amount]);
        let id: String = common::q(&mut con, &args);
        let fields: HashMap<String, String> = args[3..]
            .chunks(2)
            .map(|kv| (kv[0].to_string(), kv[1].to_string()))
            .collect();
        found.push(Found {
            unit: id.clone(),
            customer: customer.unwrap_or("c9").to_string(),
            amount: amount.parse().unwrap_or(7),
            poison: Poison::of(customer, amount),
            id,
            fields,
        });
    }
    let read = ["XREADGROUP", "GROUP", GROUP, "w", "STREAMS", STREAM, ">"];
    let _: Value = common::q(&mut con, &read);
    let batch: Vec<Entry> = found
        .iter()
        .map(|f| Entry {
            id: f.id.clone(),
            pseq: f.fields["pseq"].clone(),
            customer: f.customer.clone(),
            amount: f.amount.to_string(),
            poison: f.poison,
        })
        .collect();
    let options = ["DEADLETTER", DEAD, "AFTER", "1"];
    let args = xprocess_args(None, &options, &fcall_effects(), &batch);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let reply = common::slots(&common::call(&mut con, &args));
    assert_eq!(reply, ["1", "1", "1", "2", "2", "1", "1", "1"]);
    let dead: Vec<(String, Vec<String>)> = common::q(&mut con, &["XRANGE", DEAD, "-", "+"]);
    assert_eq!(dead.len(), 2);
    let mut clean = Report::default();
    check_fcall(&mut con, &found, &mut clean);
    assert!(clean.is_clean(), "{clean:#?}");
    assert_eq!(clean.effect_keys, 3 + 3);
    let c0: HashMap<String, String> = common::q(&mut con, &["HGETALL", "{payments}:m:c0"]);
    let want = [("max", "900"), ("count", "3"), ("sum", "1612")];
    let want = want.map(|(f, v)| (f.to_string(), v.to_string()));
    assert_eq!(c0, HashMap::from(want));

    let (again, gone, poison) = (&found[0], &found[1], &found[3]);
    let (m, log) = (format!("{MAXCOUNT}c0"), format!("{LOG}c0"));
    let amount = again.amount.to_string();
    let call = [
        "FCALL", "apply", "2", &m, &log, &again.id, "amount", &amount,
    ];
    let _: i64 = common::q(&mut con, &call);
    let gone_log = format!("{LOG}{}", gone.customer);
    let _: i64 = common::q(&mut con, &["LREM", &gone_log, "0", &gone.id]);
    let _: i64 = common::q(&mut con, &["RPUSH", &gone_log, &poison.id]);
    let _: String = common::q(&mut con, &["SET", &format!("{MAXCOUNT}nobody"), "1"]);
    let mut r = Report::default();
    check_fcall(&mut con, &found, &mut r);
    assert_eq!((r.log_duplicates, r.log_missing), (1, 1), "{r:#?}");
    assert_eq!(r.poison_applied.len(), 1, "{r:#?}");
    let nobody = format!("{MAXCOUNT}nobody");
    for key in [&m, &nobody] {
        let named = |msg: &String| msg.starts_with(&format!("{key}: "));
        assert!(r.effect_mismatches.iter().any(named), "{key}: {r:#?}");
    }
    assert_eq!(r.effect_mismatches.len(), 2, "{r:#?}");
    assert!(!r.is_clean());
}

/// The checker's own calendar (`utc_date`) against known days.
#[test]
fn utc_dates_of_entry_ids() {
    assert_eq!(utc_date("0-0"), "1970-01-01");
    assert_eq!(utc_date("1700000000000-3"), "2023-11-14");
    assert_eq!(utc_date("951782400000-0"), "2000-02-29");
    assert_eq!(utc_date("951868799999-0"), "2000-02-29");
    assert_eq!(utc_date("951868800000-0"), "2000-03-01");
    assert_eq!(utc_date("4102444800000-0"), "2100-01-01");
}

/// Found by this harness (commit 9837592 asserted in t_stream.c): one call
/// naming entries with unread entries between them crashed the server.
#[test]
fn batch_with_gaps_between_ids() {
    let server = Server::start();
    let mut con = server.conn();
    for id in ["1-0", "2-0", "3-0", "4-0", "5-0"] {
        let _: String = common::q(&mut con, &["XADD", "s", id, "f", "x", "g", "y"]);
    }
    let _: String = common::q(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]);
    let call = [
        "s", "g", "SADD", "out", "$f", "IDS", "3", "1-0", "3-0", "5-0",
    ];
    let reply = common::slots(&common::xprocess(&mut con, &call));
    assert_eq!(reply, ["1", "1", "1"]);
    let pong: String = common::q(&mut con, &["PING"]);
    assert_eq!(pong, "PONG");
}
