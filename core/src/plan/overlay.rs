//! The keyspace as earlier effects of the current entry will leave it.
//!
//! Planning checks each effect against the data as the entry's earlier
//! effects leave it, without writing anything: what those effects did is
//! kept here, in front of the server's [`State`]. Keys, fields and members
//! are the ops' own bytes (a clone of a borrowed one is free).

use super::op::Bytes;
use crate::errors::{self, ReplyError};
use crate::id::StreamId;
use crate::numbers::{parse_float, parse_i64};
use crate::request::{Beats, Exists};
use crate::state::{KeyKind, State, StringHead};

/// A value (a hash field's or a string key's) as planned so far.
#[derive(Debug, Clone)]
pub enum Value<'r> {
    Int(i64),
    /// Redis stores float results as long double text we don't reproduce,
    /// so integer arithmetic on one is refused rather than guessed.
    Float(f64),
    Text(Bytes<'r>),
    /// A string value as read from the server (its start only, if long).
    Head(StringHead),
    /// A HyperLogLog PFADD made or kept valid.
    Hll,
    /// Removed (HDEL).
    Gone,
}

/// A sorted-set write of the entry, replayed only when a score is needed.
#[derive(Debug, Clone, Copy)]
pub enum ZWrite {
    Add {
        score: f64,
        exists: Option<Exists>,
        beats: Option<Beats>,
    },
    Incr(f64),
    Remove,
}

pub struct Overlay<'r, 'k> {
    /// Keys that keep their kind whatever they hold now.
    reserved: &'k [(&'k [u8], KeyKind)],
    kinds: Vec<(Bytes<'r>, KeyKind)>,
    /// Keys replaced or removed by this entry: the server's copy is stale.
    replaced: Vec<Bytes<'r>>,
    fields: Vec<(Bytes<'r>, Bytes<'r>, Value<'r>)>,
    strings: Vec<(Bytes<'r>, Value<'r>)>,
    zwrites: Vec<(Bytes<'r>, Bytes<'r>, ZWrite)>,
    /// Set members added (true) or removed, the last word on each.
    members: Vec<(Bytes<'r>, Bytes<'r>, bool)>,
    /// Keys HDEL, SREM or ZREM shrank: Redis removes a key they empty.
    shrunk: Vec<Bytes<'r>>,
    last_ids: Vec<(Bytes<'r>, StreamId)>,
}

impl<'r, 'k> Overlay<'r, 'k> {
    pub fn new(reserved: &'k [(&'k [u8], KeyKind)]) -> Self {
        Overlay {
            reserved,
            kinds: Vec::new(),
            replaced: Vec::new(),
            fields: Vec::new(),
            strings: Vec::new(),
            zwrites: Vec::new(),
            members: Vec::new(),
            shrunk: Vec::new(),
            last_ids: Vec::new(),
        }
    }

    pub fn kind(&self, state: &impl State, key: &[u8]) -> KeyKind {
        let reserved = self.reserved.iter().map(|(k, kind)| (*k, *kind));
        let planned = self.kinds.iter().rev().map(|(k, kind)| (&**k, *kind));
        let kind = match reserved.chain(planned).find(|(k, _)| *k == key) {
            Some((_, kind)) => kind,
            None => state.kind(key),
        };
        match self.shrunk.iter().any(|k| **k == *key) && self.emptied(state, key, kind) {
            true => KeyKind::Missing,
            false => kind,
        }
    }

    /// `key`'s fields or members were removed by this entry: whether none
    /// is left (Redis then removes the key), counted from the key's length
    /// and what the entry did to each field or member it touched.
    fn emptied(&self, state: &impl State, key: &[u8], kind: KeyKind) -> bool {
        let stale = self.stale(key);
        let len = match stale {
            true => 0,
            false => match state.len(key) {
                Some(len) => len as i64,
                None => return false,
            },
        };
        let change = |existed: bool, present: bool| i64::from(present) - i64::from(existed);
        let mine = |k: &Bytes| **k == *key;
        let delta: i64 = match kind {
            KeyKind::Hash => self
                .fields
                .iter()
                .filter(|(k, _, _)| mine(k))
                .map(|(_, f, v)| {
                    let existed = !stale && state.hash_field(key, f).is_some();
                    change(existed, !matches!(v, Value::Gone))
                })
                .sum(),
            KeyKind::Set => self
                .members
                .iter()
                .filter(|(k, _, _)| mine(k))
                .map(|(_, m, present)| change(!stale && state.is_member(key, m), *present))
                .sum(),
            KeyKind::ZSet => {
                let mut seen: Vec<&[u8]> = Vec::new();
                let mut delta = 0;
                for (_, m, _) in self.zwrites.iter().filter(|(k, _, _)| mine(k)) {
                    if seen.contains(&&**m) {
                        continue;
                    }
                    seen.push(m);
                    let existed = !stale && state.zscore(key, m).is_some();
                    delta += change(existed, self.zscore(state, key, m).is_some());
                }
                delta
            }
            _ => return false,
        };
        len + delta <= 0
    }

    /// HDEL, SREM or ZREM removed something of `key`.
    pub fn shrink(&mut self, key: &Bytes<'r>) {
        if !self.shrunk.contains(key) {
            self.shrunk.push(key.clone());
        }
    }

    /// SADD (`present`) or SREM of `member`.
    pub fn set_member(&mut self, key: &Bytes<'r>, member: &Bytes<'r>, present: bool) {
        let slot = self
            .members
            .iter_mut()
            .find(|(k, m, _)| k == key && m == member);
        match slot {
            Some(slot) => slot.2 = present,
            None => self.members.push((key.clone(), member.clone(), present)),
        }
    }

    fn stale(&self, key: &[u8]) -> bool {
        self.replaced.iter().any(|k| **k == *key)
    }

    /// Check that `key` is missing or of `want`, and remember it becomes `want`.
    pub fn claim(
        &mut self,
        state: &impl State,
        key: &Bytes<'r>,
        want: KeyKind,
    ) -> Result<(), ReplyError> {
        match self.kind(state, key) {
            // A key the entry emptied starts anew, nothing of before in it.
            KeyKind::Missing if self.shrunk.contains(key) => {
                self.replace(key, want);
                Ok(())
            }
            KeyKind::Missing => {
                self.kinds.push((key.clone(), want));
                Ok(())
            }
            kind if kind == want => Ok(()),
            _ => Err(errors::WRONGTYPE.into()),
        }
    }

    /// Check that `key` is missing or of `want` (a command that never
    /// creates it: HDEL, SREM).
    pub fn require(&self, state: &impl State, key: &[u8], want: KeyKind) -> Result<(), ReplyError> {
        match self.kind(state, key) {
            KeyKind::Missing => Ok(()),
            kind if kind == want => Ok(()),
            _ => Err(errors::WRONGTYPE.into()),
        }
    }

    /// `key` now holds `kind` (`Missing`: removed) with nothing of before.
    pub fn replace(&mut self, key: &Bytes<'r>, kind: KeyKind) {
        let gone = |k: &Bytes| k != key;
        self.fields.retain(|(k, _, _)| gone(k));
        self.strings.retain(|(k, _)| gone(k));
        self.zwrites.retain(|(k, _, _)| gone(k));
        self.members.retain(|(k, _, _)| gone(k));
        self.shrunk.retain(|k| gone(k));
        self.last_ids.retain(|(k, _)| gone(k));
        self.kinds.push((key.clone(), kind));
        if !self.stale(key) {
            self.replaced.push(key.clone());
        }
    }

    /// A hash field's value, `None` when it is missing.
    pub fn field(&self, state: &impl State, key: &[u8], field: &[u8]) -> Option<Value<'r>> {
        let mut planned = self.fields.iter().rev();
        match planned.find(|(k, f, _)| **k == *key && **f == *field) {
            Some((_, _, Value::Gone)) => None,
            Some((_, _, value)) => Some(value.clone()),
            None if self.stale(key) => None,
            None => state.hash_field(key, field).map(|v| Value::Text(v.into())),
        }
    }

    /// A hash field's value as an integer: `None` when it is missing,
    /// `Some(None)` when it is not an integer.
    pub fn field_int(&self, state: &impl State, key: &[u8], field: &[u8]) -> Option<Option<i64>> {
        let mut planned = self.fields.iter().rev();
        match planned.find(|(k, f, _)| **k == *key && **f == *field) {
            Some((_, _, Value::Gone)) => None,
            Some((_, _, value)) => Some(value.int()),
            None if self.stale(key) => None,
            None => state.hash_int(key, field),
        }
    }

    pub fn set_field(&mut self, key: &Bytes<'r>, field: &Bytes<'r>, value: Value<'r>) {
        let slot = self
            .fields
            .iter_mut()
            .find(|(k, f, _)| k == key && f == field);
        match slot {
            Some(slot) => slot.2 = value,
            None => self.fields.push((key.clone(), field.clone(), value)),
        }
    }

    /// A string key's value (at most `limit` bytes of one in the server).
    pub fn string(&self, state: &impl State, key: &[u8], limit: usize) -> Option<Value<'r>> {
        match self.strings.iter().rev().find(|(k, _)| **k == *key) {
            Some((_, value)) => Some(value.clone()),
            None if self.stale(key) => None,
            None => state.string(key, limit).map(Value::Head),
        }
    }

    pub fn set_string(&mut self, key: &Bytes<'r>, value: Value<'r>) {
        self.strings.push((key.clone(), value));
    }

    pub fn zwrite(&mut self, key: &Bytes<'r>, member: &Bytes<'r>, write: ZWrite) {
        self.zwrites.push((key.clone(), member.clone(), write));
    }

    /// A member's score as the entry's earlier writes leave it.
    pub fn zscore(&self, state: &impl State, key: &[u8], member: &[u8]) -> Option<f64> {
        let start = match self.stale(key) {
            true => None,
            false => state.zscore(key, member),
        };
        let writes = self
            .zwrites
            .iter()
            .filter(|(k, m, _)| **k == *key && **m == *member);
        writes.fold(start, |score, (_, _, write)| write.apply(score))
    }

    /// The last ID of a stream XADD writes to, as planned so far.
    pub fn last_id(&self, key: &[u8]) -> Option<StreamId> {
        let planned = self.last_ids.iter().find(|(k, _)| **k == *key);
        planned.map(|(_, id)| *id)
    }

    pub fn set_last_id(&mut self, key: &Bytes<'r>, id: StreamId) {
        match self.last_ids.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = id,
            None => self.last_ids.push((key.clone(), id)),
        }
    }
}

impl Value<'_> {
    /// The value as an integer, as INCRBY and HINCRBY read it.
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Text(text) => parse_i64(text),
            Value::Head(head) => parse_i64(head.whole()?),
            Value::Float(_) | Value::Hll | Value::Gone => None,
        }
    }

    /// The value as a float, as INCRBYFLOAT and HINCRBYFLOAT read it.
    pub fn float(&self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(*n as f64),
            Value::Float(f) => Some(*f),
            Value::Text(text) => parse_float(text),
            Value::Head(head) => parse_float(head.whole()?),
            Value::Hll | Value::Gone => None,
        }
    }

    /// A sparse HyperLogLog known only by its header: read it whole to
    /// check its registers.
    pub fn sparse_head(&self) -> bool {
        match self {
            Value::Head(head) => head.whole().is_none() && head.head.get(4) == Some(&1),
            _ => false,
        }
    }

    /// Whether a HyperLogLog's registers are sound, as PFADD needs them:
    /// a sparse one's opcodes must cover exactly its 16384 registers (Redis
    /// answers INVALIDOBJ otherwise). A dense one always is; a sparse one
    /// longer than [`HLL_SPARSE_READ`] is not read.
    pub fn hll_registers_ok(&self) -> bool {
        let bytes: &[u8] = match self {
            Value::Text(text) => text,
            Value::Head(head) => match head.whole() {
                Some(bytes) => bytes,
                None => return true,
            },
            _ => return true,
        };
        bytes.get(4) != Some(&1) || sparse_covers_registers(&bytes[HLL_HEADER..])
    }

    /// Whether PFADD takes the value as a HyperLogLog (Redis checks the
    /// header, and the length of a dense one).
    pub fn is_hll(&self) -> bool {
        match self {
            Value::Hll => true,
            Value::Text(text) => hll_header(text, text.len()),
            Value::Head(head) => hll_header(&head.head, head.len),
            Value::Int(_) | Value::Float(_) | Value::Gone => false,
        }
    }
}

/// How much of a sparse HyperLogLog planning reads to check its registers
/// (Redis promotes one to dense at `hll-sparse-max-bytes`, 3000 by default).
pub const HLL_SPARSE_READ: usize = 1 << 16;

/// The bytes of a HyperLogLog header that PFADD checks.
pub const HLL_HEADER: usize = 16;
/// A dense HyperLogLog's length: the header and 16384 6-bit registers.
const HLL_DENSE: usize = HLL_HEADER + 16384 * 6 / 8;

/// A sparse HyperLogLog's opcodes (ZERO `00xxxxxx`, XZERO `01xxxxxx
/// xxxxxxxx`, VAL `1vvvvvxx`) cover exactly 16384 registers.
fn sparse_covers_registers(mut ops: &[u8]) -> bool {
    let mut registers = 0usize;
    while let Some(&op) = ops.first() {
        let (run, used) = match op >> 6 {
            0 => (usize::from(op & 0x3f) + 1, 1),
            1 => match ops.get(1) {
                Some(&low) => ((usize::from(op & 0x3f) << 8 | usize::from(low)) + 1, 2),
                None => return false,
            },
            _ => (usize::from(op & 0x3) + 1, 1),
        };
        registers += run;
        if registers > 16384 {
            return false;
        }
        ops = &ops[used..];
    }
    registers == 16384
}

fn hll_header(head: &[u8], len: usize) -> bool {
    len >= HLL_HEADER
        && head.starts_with(b"HYLL")
        && match head.get(4) {
            Some(0) => len == HLL_DENSE,
            Some(1) => true,
            _ => false,
        }
}

impl ZWrite {
    /// ZADD's, ZINCRBY's and ZREM's rules for one member.
    fn apply(self, current: Option<f64>) -> Option<f64> {
        let (new, exists, beats) = match self {
            ZWrite::Remove => return None,
            ZWrite::Incr(by) => return Some(current.unwrap_or(0.0) + by),
            ZWrite::Add {
                score,
                exists,
                beats,
            } => (score, exists, beats),
        };
        match current {
            None if exists == Some(Exists::Xx) => None,
            None => Some(new),
            Some(old) => {
                let keep = exists == Some(Exists::Nx)
                    || (beats == Some(Beats::Gt) && new <= old)
                    || (beats == Some(Beats::Lt) && new >= old);
                Some(if keep { old } else { new })
            }
        }
    }
}
