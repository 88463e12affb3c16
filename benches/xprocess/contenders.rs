//! The ways to process pending entries that are compared, and the commands
//! each one sends per entry (or per batch of entries).

use crate::wire::encode;
use crate::workload::{
    self, Effect, Entry, BOARD, DEDUPE, FUNCTION, GROUP, MAXCOUNT, STREAM, TOTALS,
};
use redis::Connection;

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

/// The effect's line of [`LUA_SCRIPT`]; the scripts of the other effects
/// replace it and nothing else.
const LUA_EFFECT_LINE: &str = "redis.call('HINCRBY', charged, entry['customer'], entry['amount'])";

/// Load [`LUA_SCRIPT`] into the server behind `con`; its SHA1 for EVALSHA.
pub fn load_script(con: &mut redis::Connection) -> String {
    load(con, LUA_SCRIPT)
}

fn load(con: &mut redis::Connection, script: &str) -> String {
    redis::cmd("SCRIPT")
        .arg(&["LOAD", script])
        .query(con)
        .expect("SCRIPT LOAD")
}

/// How an [`Effect`] is run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Way {
    /// XPROCESS (index), [`EFFECT_IDS`] IDs per call.
    XProcess,
    /// EVALSHA of [`LUA_SCRIPT`] with the effect's line, 1 entry per call.
    Lua,
    /// The bare command per entry, pipelined: no dedupe, no XACK.
    Native,
}

/// IDs per XPROCESS call of the effect contenders.
pub const EFFECT_IDS: usize = 100;

impl Effect {
    pub fn tag(self) -> &'static str {
        match self {
            Effect::HSet => "hset",
            Effect::IncrBy => "incrby",
            Effect::ZIncrBy => "zincrby",
        }
    }

    /// The effect as XPROCESS takes it.
    pub fn xprocess_args(self) -> &'static [&'static str] {
        match self {
            Effect::HSet => &[
                "HSET",
                "order:${@id}",
                "FIELDS",
                "2",
                "amount",
                "$amount",
                "customer",
                "$customer",
            ],
            Effect::IncrBy => &["INCRBY", "balance:${customer}", "$amount"],
            Effect::ZIncrBy => &["ZINCRBY", BOARD, "$amount", "$customer"],
        }
    }

    /// The same write as the bare command for one entry.
    fn native(self, e: &Entry) -> Vec<String> {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        match self {
            Effect::HSet => v(&[
                "HSET",
                &format!("order:{}", e.id),
                "amount",
                &e.amount,
                "customer",
                &e.customer,
            ]),
            Effect::IncrBy => v(&["INCRBY", &format!("balance:{}", e.customer), &e.amount]),
            Effect::ZIncrBy => v(&["ZINCRBY", BOARD, &e.amount, &e.customer]),
        }
    }

    /// [`LUA_SCRIPT`] with this effect's line instead of HINCRBY's.
    pub fn lua_script(self) -> String {
        let line = match self {
            Effect::HSet => {
                "redis.call('HSET', 'order:' .. id, 'amount', entry['amount'], \
                 'customer', entry['customer'])"
            }
            Effect::IncrBy => {
                "redis.call('INCRBY', 'balance:' .. entry['customer'], entry['amount'])"
            }
            Effect::ZIncrBy => "redis.call('ZINCRBY', charged, entry['amount'], entry['customer'])",
        };
        assert_eq!(LUA_SCRIPT.matches(LUA_EFFECT_LINE).count(), 1);
        LUA_SCRIPT.replace(LUA_EFFECT_LINE, line)
    }

    /// The script's third key (`charged`): the one key the effect names
    /// that is known before the entry is read.
    fn lua_key(self) -> &'static str {
        match self {
            Effect::ZIncrBy => BOARD,
            _ => TOTALS,
        }
    }

    /// The first words of the effect's row: what it writes.
    pub fn describe(self) -> String {
        format!("`{}`", self.xprocess_args().join(" "))
    }
}

/// How the FCALL contenders run [`workload::LIBRARY`]'s logic: a running
/// maximum and a count per customer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Call {
    /// XPROCESS (index) with the function as its effect
    /// ([`FCALL_EFFECT`]), this many IDs per call.
    XProcess(usize),
    /// EVALSHA of [`LUA_SCRIPT`] with the function's lines inline instead of
    /// HINCRBY's ([`fcall_lua_script`]), 1 entry per call.
    Lua,
    /// The bare FCALL per entry, pipelined: no dedupe, no XACK.
    Native,
}

/// The FCALL effect of [`Call::XProcess`].
pub const FCALL_EFFECT: [&str; 6] = [
    "FCALL",
    FUNCTION,
    "1",
    "{payments}:m:${customer}",
    "1",
    "$amount",
];

/// [`LUA_SCRIPT`] with the lines of [`workload::LIBRARY`]'s function inline
/// instead of HINCRBY's: SISMEMBER, XRANGE, the logic, SADD, XACK.
pub fn fcall_lua_script() -> String {
    let lines = format!(
        "local key, v = '{MAXCOUNT}' .. entry['customer'], tonumber(entry['amount'])
local cur = tonumber(redis.call('HGET', key, 'max') or '-inf')
if v > cur then redis.call('HSET', key, 'max', entry['amount']) end
redis.call('HINCRBY', key, 'count', 1)"
    );
    assert_eq!(LUA_SCRIPT.matches(LUA_EFFECT_LINE).count(), 1);
    LUA_SCRIPT.replace(LUA_EFFECT_LINE, &lines)
}

impl Call {
    fn tag(self) -> String {
        match self {
            Call::XProcess(k) => format!("fcall{k}"),
            Call::Lua => "fcall-lua".into(),
            Call::Native => "fcall-native".into(),
        }
    }
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
    /// One of the newer effects, one way (not in [`ALL`]: BENCH_ONLY names
    /// them, see [`EFFECTS`]).
    Effect(Effect, Way),
    /// XPROCESS (index), [`EFFECT_IDS`] IDs per call, whose one effect never
    /// applies (`WHEN $amount MISSING`): the call without an effect's work,
    /// to tell what an effect adds.
    NoEffect,
    /// The function of [`workload::LIBRARY`], one way (not in [`ALL`]:
    /// BENCH_ONLY names them, see [`FCALLS`]).
    Fcall(Call),
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

/// The effect contenders, run when BENCH_ONLY names them (or `effects`, all
/// of them): `make bench` counts their instructions under callgrind
/// (scripts/bench-callgrind.sh effects), which its timings cannot settle on
/// a shared machine.
pub const EFFECTS: [Contender; 10] = [
    Contender::Effect(Effect::HSet, Way::XProcess),
    Contender::Effect(Effect::HSet, Way::Lua),
    Contender::Effect(Effect::HSet, Way::Native),
    Contender::Effect(Effect::IncrBy, Way::XProcess),
    Contender::Effect(Effect::IncrBy, Way::Lua),
    Contender::Effect(Effect::IncrBy, Way::Native),
    Contender::Effect(Effect::ZIncrBy, Way::XProcess),
    Contender::Effect(Effect::ZIncrBy, Way::Lua),
    Contender::Effect(Effect::ZIncrBy, Way::Native),
    Contender::NoEffect,
];

/// The FCALL contenders, run when BENCH_ONLY names them (or `fcall`, all of
/// them): `make bench` counts their instructions under callgrind
/// (scripts/bench-callgrind.sh fcall).
pub const FCALLS: [Contender; 4] = [
    Contender::Fcall(Call::XProcess(1)),
    Contender::Fcall(Call::XProcess(EFFECT_IDS)),
    Contender::Fcall(Call::Lua),
    Contender::Fcall(Call::Native),
];

/// The never-applied effect of [`Contender::NoEffect`].
const NO_EFFECT: [&str; 6] = ["WHEN", "$amount", "MISSING", "SADD", "never", "$customer"];

impl Contender {
    pub fn name(self) -> String {
        match self {
            Contender::XProcess(k, store) => {
                format!("XPROCESS {}, {k} ID{} per call", store.label(), plural(k))
            }
            Contender::Lua => "Lua script (EVALSHA), 1 entry per call".into(),
            Contender::Naive => "naive pipeline HINCRBY+SADD+XACK (not atomic)".into(),
            Contender::Xack => "bare XACK, 1 ID per call (floor)".into(),
            Contender::Effect(e, Way::XProcess) => {
                format!(
                    "XPROCESS (index) {}, {EFFECT_IDS} IDs per call",
                    e.describe()
                )
            }
            Contender::Effect(e, Way::Lua) => {
                format!(
                    "Lua script with {}, 1 entry per call",
                    e.tag().to_uppercase()
                )
            }
            Contender::Effect(e, Way::Native) => {
                format!("bare {} per entry, pipelined", e.tag().to_uppercase())
            }
            Contender::NoEffect => format!(
                "XPROCESS (index) `{}`, {EFFECT_IDS} IDs per call",
                NO_EFFECT.join(" ")
            ),
            Contender::Fcall(Call::XProcess(k)) => format!(
                "XPROCESS (index) `{}`, {k} ID{} per call",
                FCALL_EFFECT.join(" "),
                plural(k)
            ),
            Contender::Fcall(Call::Lua) => {
                "Lua script with the function's logic inline, 1 entry per call".into()
            }
            Contender::Fcall(Call::Native) => format!("bare FCALL {FUNCTION} per entry, pipelined"),
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
            Contender::Effect(e, Way::XProcess) => format!("{}{EFFECT_IDS}", e.tag()),
            Contender::Effect(e, Way::Lua) => format!("{}-lua", e.tag()),
            Contender::Effect(e, Way::Native) => format!("{}-native", e.tag()),
            Contender::NoEffect => format!("noeffect{EFFECT_IDS}"),
            Contender::Fcall(call) => call.tag(),
        }
    }

    /// Entries handled by one call (one latency sample).
    pub fn batch(self) -> usize {
        match self {
            Contender::XProcess(k, _) => k,
            Contender::Effect(_, Way::XProcess) | Contender::NoEffect => EFFECT_IDS,
            Contender::Fcall(Call::XProcess(k)) => k,
            _ => 1,
        }
    }

    /// The Lua script this contender runs (loaded by every one, as before).
    pub fn script(self) -> String {
        match self {
            Contender::Effect(e, _) => e.lua_script(),
            Contender::Fcall(_) => fcall_lua_script(),
            _ => LUA_SCRIPT.to_string(),
        }
    }

    /// Load [`Contender::script`] (and, for the FCALL contenders, FUNCTION
    /// LOAD [`workload::LIBRARY`]); the script's SHA1.
    pub fn load_script(self, con: &mut Connection) -> String {
        if let Contender::Fcall(_) = self {
            workload::load_library(con);
        }
        load(con, &self.script())
    }

    /// The commands whose INFO commandstats usec is this contender's server
    /// time (top-level commands only).
    pub fn top_level(self) -> &'static [&'static str] {
        match self {
            Contender::XProcess(..) => &["xprocess"],
            Contender::Lua => &["evalsha"],
            Contender::Naive => &["hincrby", "sadd", "xack"],
            Contender::Xack => &["xack"],
            Contender::Effect(_, Way::XProcess) | Contender::NoEffect => &["xprocess"],
            Contender::Effect(_, Way::Lua) => &["evalsha"],
            Contender::Effect(Effect::HSet, Way::Native) => &["hset"],
            Contender::Effect(Effect::IncrBy, Way::Native) => &["incrby"],
            Contender::Effect(Effect::ZIncrBy, Way::Native) => &["zincrby"],
            Contender::Fcall(Call::XProcess(_)) => &["xprocess"],
            Contender::Fcall(Call::Lua) => &["evalsha"],
            Contender::Fcall(Call::Native) => &["fcall"],
        }
    }

    pub fn applies_effects(self) -> bool {
        !matches!(self, Contender::Xack | Contender::NoEffect)
    }

    pub fn has_dedupe(self) -> bool {
        !matches!(
            self,
            Contender::Xack | Contender::Effect(_, Way::Native) | Contender::Fcall(Call::Native)
        )
    }

    /// Check the server's state after `done` were processed.
    pub fn verify(self, con: &mut Connection, done: &[Entry], who: &str) {
        match self {
            Contender::Effect(e, way) => {
                workload::verify_effect(con, done, e, way != Way::Native, self.has_dedupe(), who)
            }
            Contender::Fcall(call) => {
                workload::verify_maxcount(con, done, call != Call::Native, self.has_dedupe(), who)
            }
            Contender::NoEffect => {
                workload::verify(con, done, false, true, who);
                let n: u64 = redis::cmd("EXISTS").arg("never").query(con).unwrap();
                assert_eq!(n, 0, "{who}: the effect that never applies was applied");
            }
            _ => workload::verify(con, done, self.applies_effects(), self.has_dedupe(), who),
        }
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
        match self {
            // HSET replies 2 (new fields), INCRBY the balance, ZINCRBY a
            // score, the function the customer's count.
            Contender::Naive | Contender::Effect(_, Way::Native) => None,
            Contender::Fcall(Call::Native) => None,
            _ => Some(n as i64),
        }
    }

    /// Append the commands for one batch (`entries.len() <= batch()`).
    pub fn encode_batch(self, out: &mut Vec<u8>, entries: &[Entry], sha: &str) {
        match self {
            Contender::XProcess(_, store) => {
                let effect = ["HINCRBY", TOTALS, "$customer", "$amount"];
                encode_xprocess(out, entries, &["STORE", store.token()], &effect);
            }
            Contender::Effect(e, Way::XProcess) => {
                encode_xprocess(out, entries, &[], e.xprocess_args())
            }
            Contender::NoEffect => encode_xprocess(out, entries, &[], &NO_EFFECT),
            Contender::Fcall(Call::XProcess(_)) => {
                debug_assert!(FCALL_EFFECT[3].starts_with(MAXCOUNT));
                encode_xprocess(out, entries, &[], &FCALL_EFFECT)
            }
            Contender::Fcall(Call::Lua) => {
                let id = &entries[0].id;
                let args = ["EVALSHA", sha, "3", STREAM, DEDUPE, TOTALS, GROUP, id];
                encode(out, &args.map(str::as_bytes));
            }
            Contender::Fcall(Call::Native) => {
                let e = &entries[0];
                let key = format!("{MAXCOUNT}{}", e.customer);
                // Redis' FCALL has no numargs: the arguments follow the keys.
                let args = ["FCALL", FUNCTION, "1", &key, &e.amount];
                encode(out, &args.map(str::as_bytes));
            }
            Contender::Effect(e, Way::Lua) => {
                let id = &entries[0].id;
                let args = ["EVALSHA", sha, "3", STREAM, DEDUPE, e.lua_key(), GROUP, id];
                encode(out, &args.map(str::as_bytes));
            }
            Contender::Effect(e, Way::Native) => {
                let args = e.native(&entries[0]);
                let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
                encode(out, &args);
            }
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

/// `XPROCESS payments billing <options> <effect> IDS n <ids>`.
fn encode_xprocess(out: &mut Vec<u8>, entries: &[Entry], options: &[&str], effect: &[&str]) {
    let n = entries.len().to_string();
    let mut args: Vec<&[u8]> = vec![b"XPROCESS", STREAM.as_bytes(), GROUP.as_bytes()];
    args.extend(options.iter().chain(effect).map(|s| s.as_bytes()));
    args.extend([b"IDS".as_slice(), n.as_bytes()]);
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
