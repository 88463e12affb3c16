//! The data: N stream entries `customer <one of 100> amount <1..=1000>`, all
//! delivered to one consumer so they are pending, and the end-state checks.

use crate::wire;
use redis::Connection;
use std::collections::HashMap;

/// The effects added after HINCRBY, each measured three ways (`make bench`'s
/// callgrind section, scripts/bench-callgrind.sh): XPROCESS with 100 IDs per
/// call, the Lua script with this effect instead of HINCRBY, and the bare
/// command per entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Effect {
    /// `HSET order:${@id} FIELDS 2 amount $amount customer $customer`: a new
    /// hash per entry.
    HSet,
    /// `INCRBY balance:${customer} $amount`: one string per customer.
    IncrBy,
    /// `ZINCRBY board $amount $customer`: one sorted set of 100 members.
    ZIncrBy,
}

/// The sorted set of [`Effect::ZIncrBy`].
pub const BOARD: &str = "board";

/// The Redis Function of the FCALL contenders (`make bench`'s fcall
/// section, scripts/bench-callgrind.sh fcall), FUNCTION LOADed at setup: a
/// running maximum and a count per customer, a read-modify-write no native
/// effect expresses. The Lua contender runs the same lines inline.
pub const LIBRARY: &str = "#!lua name=bench
redis.register_function('maxcount', function(keys, args)
  local v = tonumber(args[1])
  local cur = tonumber(redis.call('HGET', keys[1], 'max') or '-inf')
  if v > cur then redis.call('HSET', keys[1], 'max', args[1]) end
  return redis.call('HINCRBY', keys[1], 'count', 1)
end)
";
/// The function of [`LIBRARY`].
pub const FUNCTION: &str = "maxcount";
/// The hash [`FUNCTION`] keeps per customer: this prefix, then the customer.
pub const MAXCOUNT: &str = "{payments}:m:";

pub const STREAM: &str = "payments";
pub const GROUP: &str = "billing";
pub const CONSUMER: &str = "worker-1";
pub const TOTALS: &str = "totals";
/// The name XPROCESS derives from STREAM and GROUP; the Lua script and the
/// naive pipeline use the same set.
pub const DEDUPE: &str = "{payments}:xprocess:billing";

const CUSTOMERS: u64 = 100;
/// Entry `i` gets the ID `BASE_MS + i` (milliseconds) `-0`.
const BASE_MS: u64 = 1_700_000_000_000;
/// Entries per XREADGROUP call when making them pending.
const READ_CHUNK: u64 = 10_000;

pub struct Entry {
    pub id: String,
    pub customer: String,
    pub amount: String,
}

/// Entries `first .. first + count`, deterministic.
pub fn entries(first: u64, count: u64) -> Vec<Entry> {
    (first..first + count)
        .map(|i| Entry {
            id: format!("{}-0", BASE_MS + i),
            customer: format!("customer-{:03}", i.wrapping_mul(7919) % CUSTOMERS),
            amount: (i.wrapping_mul(104_729) % 1000 + 1).to_string(),
        })
        .collect()
}

/// XADD the entries, then XREADGROUP them all as CONSUMER, pipelined.
pub fn make_pending(con: &mut Connection, port: u16, entries: &[Entry]) {
    let mut out = encode_xadds(con, entries);
    let reads = (entries.len() as u64).div_ceil(READ_CHUNK);
    let chunk = READ_CHUNK.to_string();
    for _ in 0..reads {
        let args = [
            "XREADGROUP",
            "GROUP",
            GROUP,
            CONSUMER,
            "COUNT",
            &chunk,
            "STREAMS",
            STREAM,
            ">",
        ];
        wire::encode(&mut out, &args.map(str::as_bytes));
    }
    let (_, summary) = wire::pipeline(port, &out, entries.len() as u64 + reads);
    assert_eq!(summary.errors, 0, "preparing the stream failed");
}

/// XADD the entries, pipelined, new for GROUP (nothing is read).
pub fn add_new(con: &mut Connection, port: u16, entries: &[Entry]) {
    let out = encode_xadds(con, entries);
    let (_, summary) = wire::pipeline(port, &out, entries.len() as u64);
    assert_eq!(summary.errors, 0, "preparing the stream failed");
}

/// Create GROUP at `$` (if not there yet), then the XADDs of `entries`.
fn encode_xadds(con: &mut Connection, entries: &[Entry]) -> Vec<u8> {
    let _: redis::Value = redis::cmd("XGROUP")
        .arg(&["CREATE", STREAM, GROUP, "$", "MKSTREAM"])
        .query(con)
        .unwrap_or(redis::Value::Nil); // BUSYGROUP on the second batch
    let mut out = Vec::with_capacity(entries.len() * 96);
    for e in entries {
        let args = [
            "XADD",
            STREAM,
            &e.id,
            "customer",
            &e.customer,
            "amount",
            &e.amount,
        ];
        wire::encode(&mut out, &args.map(str::as_bytes));
    }
    out
}

pub fn pending_count(con: &mut Connection) -> u64 {
    let summary: (u64, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
        .arg(&[STREAM, GROUP])
        .query(con)
        .expect("XPENDING");
    summary.0
}

/// The state after processing `done` (with effects or not): per-customer
/// totals, empty PEL, one dedupe member per entry.
pub fn verify(con: &mut Connection, done: &[Entry], effects: bool, dedupe: bool, who: &str) {
    let pending = pending_count(con);
    assert_eq!(pending, 0, "{who}: {pending} entries still pending");
    let totals: HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(TOTALS)
        .query(con)
        .expect("HGETALL");
    let expected = if effects {
        expected_totals(done)
    } else {
        HashMap::new()
    };
    assert!(totals == expected, "{who}: wrong totals");
    let want = if dedupe { done.len() as u64 } else { 0 };
    assert_eq!(recorded(con), want, "{who}: IDs in the dedupe store");
}

/// The state after `done` were processed with one of the newer effects:
/// what it wrote (every order hash; each balance and board score the sum of
/// its customer's amounts), the PEL (empty, or all of `done` still pending
/// for the bare commands), the dedupe store (one member per entry, or none).
pub fn verify_effect(
    con: &mut Connection,
    done: &[Entry],
    effect: Effect,
    acked: bool,
    dedupe: bool,
    who: &str,
) {
    let pending = pending_count(con);
    let want = if acked { 0 } else { done.len() as u64 };
    assert_eq!(pending, want, "{who}: entries pending");
    let sums = expected_totals(done);
    match effect {
        Effect::HSet => {
            let mut pipe = redis::pipe();
            for e in done {
                pipe.cmd("HGETALL").arg(format!("order:{}", e.id));
            }
            let orders: Vec<HashMap<String, String>> = pipe.query(con).expect("HGETALL");
            for (e, order) in done.iter().zip(orders) {
                let want = HashMap::from([
                    ("amount".to_string(), e.amount.clone()),
                    ("customer".to_string(), e.customer.clone()),
                ]);
                assert_eq!(order, want, "{who}: order:{}", e.id);
            }
        }
        Effect::IncrBy => {
            for (customer, sum) in &sums {
                let got: i64 = redis::cmd("GET")
                    .arg(format!("balance:{customer}"))
                    .query(con)
                    .expect("GET");
                assert_eq!(got, *sum, "{who}: balance:{customer}");
            }
        }
        Effect::ZIncrBy => {
            let board: Vec<(String, f64)> = redis::cmd("ZRANGE")
                .arg(&[BOARD, "0", "-1", "WITHSCORES"])
                .query(con)
                .expect("ZRANGE");
            let board: HashMap<String, i64> =
                board.into_iter().map(|(m, s)| (m, s as i64)).collect();
            assert!(board == sums, "{who}: wrong board");
        }
    }
    let want = if dedupe { done.len() as u64 } else { 0 };
    assert_eq!(recorded(con), want, "{who}: IDs in the dedupe store");
}

/// FUNCTION LOAD [`LIBRARY`] (REPLACE: loaded by every contender).
pub fn load_library(con: &mut Connection) {
    let name: String = redis::cmd("FUNCTION")
        .arg(&["LOAD", "REPLACE", LIBRARY])
        .query(con)
        .expect("FUNCTION LOAD");
    assert_eq!(name, "bench");
}

/// The state after `done` were processed by [`FUNCTION`] (or its logic
/// inline): every customer's hash holds the largest of its amounts and the
/// number of its entries, and no other such hash exists; the PEL empty (or
/// all of `done` still pending for the bare FCALL), the dedupe store one
/// member per entry (or none).
pub fn verify_maxcount(con: &mut Connection, done: &[Entry], acked: bool, dedupe: bool, who: &str) {
    let pending = pending_count(con);
    let want = if acked { 0 } else { done.len() as u64 };
    assert_eq!(pending, want, "{who}: entries pending");
    let mut expected: HashMap<String, (i64, i64)> = HashMap::new();
    for e in done {
        let amount: i64 = e.amount.parse().unwrap();
        let (max, count) = expected.entry(e.customer.clone()).or_insert((i64::MIN, 0));
        *max = (*max).max(amount);
        *count += 1;
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{MAXCOUNT}*"))
        .query(con)
        .expect("KEYS");
    assert_eq!(keys.len(), expected.len(), "{who}: hashes of the function");
    let mut pipe = redis::pipe();
    for customer in expected.keys() {
        pipe.cmd("HGETALL").arg(format!("{MAXCOUNT}{customer}"));
    }
    let hashes: Vec<HashMap<String, i64>> = pipe.query(con).expect("HGETALL");
    for ((customer, (max, count)), got) in expected.iter().zip(hashes) {
        let want = HashMap::from([("max".to_string(), *max), ("count".to_string(), *count)]);
        assert_eq!(got, want, "{who}: {MAXCOUNT}{customer}");
    }
    let want = if dedupe { done.len() as u64 } else { 0 };
    assert_eq!(recorded(con), want, "{who}: IDs in the dedupe store");
}

/// IDs the dedupe store holds: SCARD of a Set, `recorded` of an index.
fn recorded(con: &mut Connection) -> u64 {
    let kind: String = redis::cmd("TYPE").arg(DEDUPE).query(con).unwrap();
    if kind != "xproc-idx" {
        return redis::cmd("SCARD").arg(DEDUPE).query(con).unwrap();
    }
    let info: Vec<redis::Value> = redis::cmd("XPROCESS.INFO").arg(DEDUPE).query(con).unwrap();
    info.chunks(2)
        .find_map(|kv| {
            let name: String = redis::from_redis_value(&kv[0]).ok()?;
            (name == "recorded").then(|| redis::from_redis_value(&kv[1]).ok())?
        })
        .expect("XPROCESS.INFO recorded")
}

fn expected_totals(done: &[Entry]) -> HashMap<String, i64> {
    let mut totals = HashMap::new();
    for e in done {
        *totals.entry(e.customer.clone()).or_insert(0) += e.amount.parse::<i64>().unwrap();
    }
    totals
}

/// MEMORY USAGE of the dedupe store (SAMPLES 0: exact) per recorded ID.
pub fn dedupe_bytes_per_entry(con: &mut Connection) -> f64 {
    let bytes: u64 = redis::cmd("MEMORY")
        .arg(&["USAGE", DEDUPE, "SAMPLES", "0"])
        .query(con)
        .expect("MEMORY USAGE");
    bytes as f64 / recorded(con) as f64
}
