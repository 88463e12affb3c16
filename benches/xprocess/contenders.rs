//! The ways to process pending entries that are compared, and the commands
//! each one sends per entry (or per batch of entries).

use crate::wire::encode;
use crate::workload::{Entry, DEDUPE, GROUP, STREAM, TOTALS};

/// The script from docs/performance.md ("The Lua script it replaces"), without
/// its comments.
pub const LUA_SCRIPT: &str = r#"
local stream, dedupe, charged = KEYS[1], KEYS[2], KEYS[3]
local group, id = ARGV[1], ARGV[2]
if redis.call('SISMEMBER', dedupe, id) == 1 then
  redis.call('XACK', stream, group, id)
  return 0
end
local found = redis.call('XRANGE', stream, id, id)
if #found == 0 then
  return redis.error_reply('ERR entry ' .. id .. ' not found in the stream')
end
local entry, kv = {}, found[1][2]
for i = 1, #kv, 2 do entry[kv[i]] = kv[i + 1] end
redis.call('HINCRBY', charged, entry['customer'], entry['amount'])
redis.call('SADD', dedupe, id)
redis.call('XACK', stream, group, id)
return 1
"#;

/// Load [`LUA_SCRIPT`] into the server behind `con`; its SHA1 for EVALSHA.
pub fn load_script(con: &mut redis::Connection) -> String {
    redis::cmd("SCRIPT")
        .arg(&["LOAD", LUA_SCRIPT])
        .query(con)
        .expect("SCRIPT LOAD")
}

/// XPROCESS's dedupe store (`STORE INDEX | SET`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Store {
    Index,
    Set,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Contender {
    /// XPROCESS with this many IDs per call, on this store.
    XProcess(usize, Store),
    /// EVALSHA of [`LUA_SCRIPT`], one entry per call.
    Lua,
    /// HINCRBY + SADD + XACK per entry, not atomic.
    Naive,
    /// XACK of one ID per call: the floor.
    Xack,
}

pub const ALL: [Contender; 9] = [
    Contender::XProcess(1, Store::Index),
    Contender::XProcess(10, Store::Index),
    Contender::XProcess(100, Store::Index),
    Contender::XProcess(1, Store::Set),
    Contender::XProcess(10, Store::Set),
    Contender::XProcess(100, Store::Set),
    Contender::Lua,
    Contender::Naive,
    Contender::Xack,
];

impl Contender {
    pub fn name(self) -> String {
        match self {
            Contender::XProcess(k, store) => {
                format!("XPROCESS {}, {k} ID{} per call", store.label(), plural(k))
            }
            Contender::Lua => "Lua script (EVALSHA), 1 entry per call".into(),
            Contender::Naive => "naive pipeline HINCRBY+SADD+XACK (not atomic)".into(),
            Contender::Xack => "bare XACK, 1 ID per call (floor)".into(),
        }
    }

    /// Short name for BENCH_ONLY and progress lines.
    pub fn tag(self) -> String {
        match self {
            Contender::XProcess(k, Store::Index) => format!("xprocess{k}"),
            Contender::XProcess(k, Store::Set) => format!("xprocess{k}-set"),
            Contender::Lua => "lua".into(),
            Contender::Naive => "naive".into(),
            Contender::Xack => "xack".into(),
        }
    }

    /// Entries handled by one call (one latency sample).
    pub fn batch(self) -> usize {
        match self {
            Contender::XProcess(k, _) => k,
            _ => 1,
        }
    }

    /// The commands whose INFO commandstats usec is this contender's server
    /// time (top-level commands only).
    pub fn top_level(self) -> &'static [&'static str] {
        match self {
            Contender::XProcess(..) => &["xprocess"],
            Contender::Lua => &["evalsha"],
            Contender::Naive => &["hincrby", "sadd", "xack"],
            Contender::Xack => &["xack"],
        }
    }

    pub fn applies_effects(self) -> bool {
        self != Contender::Xack
    }

    pub fn has_dedupe(self) -> bool {
        self != Contender::Xack
    }

    /// Commands sent for one batch of entries.
    pub fn commands_per_batch(self) -> u64 {
        match self {
            Contender::Naive => 3,
            _ => 1,
        }
    }

    /// Sum of the integer replies for `n` fresh entries, where it is
    /// meaningful (each entry replies 1); the naive HINCRBY returns totals.
    pub fn expected_int_sum(self, n: usize) -> Option<i64> {
        (self != Contender::Naive).then_some(n as i64)
    }

    /// Append the commands for one batch (`entries.len() <= batch()`).
    pub fn encode_batch(self, out: &mut Vec<u8>, entries: &[Entry], sha: &str) {
        match self {
            Contender::XProcess(_, store) => encode_xprocess(out, entries, store),
            Contender::Lua => {
                let id = &entries[0].id;
                let args = ["EVALSHA", sha, "3", STREAM, DEDUPE, TOTALS, GROUP, id];
                encode(out, &args.map(str::as_bytes));
            }
            Contender::Naive => {
                let e = &entries[0];
                encode(
                    out,
                    &["HINCRBY", TOTALS, &e.customer, &e.amount].map(str::as_bytes),
                );
                encode(out, &["SADD", DEDUPE, &e.id].map(str::as_bytes));
                encode(out, &["XACK", STREAM, GROUP, &e.id].map(str::as_bytes));
            }
            Contender::Xack => {
                encode(
                    out,
                    &["XACK", STREAM, GROUP, &entries[0].id].map(str::as_bytes),
                );
            }
        }
    }
}

impl Store {
    fn label(self) -> &'static str {
        match self {
            Store::Index => "(index)",
            Store::Set => "(Set)",
        }
    }

    fn token(self) -> &'static str {
        match self {
            Store::Index => "INDEX",
            Store::Set => "SET",
        }
    }
}

fn encode_xprocess(out: &mut Vec<u8>, entries: &[Entry], store: Store) {
    let n = entries.len().to_string();
    let mut args: Vec<&[u8]> = [
        STREAM,
        GROUP,
        "STORE",
        store.token(),
        "HINCRBY",
        TOTALS,
        "$customer",
        "$amount",
        "IDS",
        &n,
    ]
    .iter()
    .map(|s| s.as_bytes())
    .collect();
    args.insert(0, b"XPROCESS");
    args.extend(entries.iter().map(|e| e.id.as_bytes()));
    encode(out, &args);
}

fn plural(k: usize) -> &'static str {
    if k == 1 {
        ""
    } else {
        "s"
    }
}
