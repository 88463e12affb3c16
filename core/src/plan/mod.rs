//! Planning: what one entry's effects will do, validated before any runs.
//!
//! Every effect of an entry is expanded against the entry and checked
//! against the keyspace *as earlier effects of the same entry will leave
//! it* (the [`overlay`]), with the native command's own rules and error
//! replies, so an entry is either applied whole or not at all: a failing
//! second effect must not leave the first one applied.

mod op;
mod overlay;
#[cfg(test)]
mod tests;

pub use op::{Bytes, Native, Op, Touch};

use crate::condition::Condition;
use crate::entry::Entry;
use crate::errors::{self, ReplyError};
use crate::id::StreamId;
use crate::numbers::{parse_float, parse_i64, parse_score, MAX_FLOAT_CHARS};
use crate::request::{Beats, Effect, End, Exists, FcallArg, Pairs};
use crate::state::{KeyKind, State};
use crate::template::Arg;
use overlay::{Overlay, Value, ZWrite, HLL_HEADER, HLL_SPARSE_READ};
use std::borrow::Cow;

/// The longest string value read to check a number (longer ones are not).
const NUMBER_LIMIT: usize = MAX_FLOAT_CHARS + 1;

/// Keys no template may make: the stream, the dedupe key, the dead-letter key.
pub struct KeyRules<'k> {
    /// Keys that keep their kind throughout the call whether or not they
    /// exist yet (the dedupe set must stay a set).
    pub reserved: &'k [(&'k [u8], KeyKind)],
    /// Keys an effect must never write.
    pub forbidden: &'k [&'k [u8]],
}

/// What planning one effect looks at.
struct Planner<'p, 'r, 'k, S> {
    entry: &'p Entry<'r>,
    state: &'p S,
    rules: &'p KeyRules<'k>,
    overlay: Overlay<'r, 'k>,
}

/// Plan `effects` for `entry`: those whose conditions (`when`, by index)
/// all hold. Conditions read `state` as it is before the entry, never the
/// overlay, so it makes no difference that they are decided on the way.
pub fn plan_entry<'r>(
    effects: &'r [Effect<'r>],
    when: &'r [Vec<Condition<'r>>],
    entry: &Entry<'r>,
    state: &impl State,
    rules: &KeyRules,
) -> Result<Vec<Op<'r>>, ReplyError> {
    let mut planner = Planner {
        entry,
        state,
        rules,
        overlay: Overlay::new(rules.reserved),
    };
    let mut ops = Vec::with_capacity(effects.len());
    for (n, effect) in effects.iter().enumerate() {
        let conditions = when.get(n).map_or(&[][..], Vec::as_slice);
        if all_hold(conditions, entry, state)? {
            ops.push(planner.effect(effect)?);
        }
    }
    Ok(ops)
}

fn all_hold(
    conditions: &[Condition],
    entry: &Entry,
    state: &impl State,
) -> Result<bool, ReplyError> {
    for condition in conditions {
        if !condition.holds(entry, state)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn native(cmd: Native, args: Vec<Bytes>) -> Op {
    Op::Native { cmd, args }
}

impl<'r, S: State> Planner<'_, 'r, '_, S> {
    fn expand(&self, arg: &'r Arg<'r>) -> Result<Bytes<'r>, ReplyError> {
        arg.expand(self.entry)
    }

    /// An effect's key for this entry; a templated one is checked here, per
    /// entry, as a literal one was for the whole call.
    fn key(&self, key: &'r Arg<'r>) -> Result<Bytes<'r>, ReplyError> {
        let expanded = self.expand(key)?;
        if key.literal().is_none() {
            if self.rules.forbidden.contains(&&*expanded) {
                return Err(ReplyError::reserved_key(self.entry.id, &expanded));
            }
            self.state.check_key(&expanded, self.entry.id, true)?;
        }
        Ok(expanded)
    }

    fn effect(&mut self, effect: &'r Effect<'r>) -> Result<Op<'r>, ReplyError> {
        let key = match effect.key() {
            Some(key) => self.key(key)?,
            None => Cow::Borrowed(&b""[..]), // PUBLISH, FCALL
        };
        match effect {
            Effect::HIncrBy { field, incr, .. } => self.hincrby(key, field, incr),
            Effect::HIncrByFloat { field, incr, .. } => self.hincrbyfloat(key, field, incr),
            Effect::HSet { pairs, .. } => self.hset(key, pairs),
            Effect::HSetNx { field, value, .. } => self.hsetnx(key, field, value),
            Effect::HDel { field, .. } => self.hdel(key, field),
            Effect::Set {
                value, exists, px, ..
            } => self.set(key, value, *exists, px.as_ref()),
            Effect::IncrBy { incr, .. } => self.incrby(key, incr),
            Effect::IncrByFloat { incr, .. } => self.incrbyfloat(key, incr),
            Effect::Del { .. } => {
                self.overlay.replace(&key, KeyKind::Missing);
                Ok(native(Native::Del, vec![key]))
            }
            Effect::SAdd { member, .. } => {
                let member = self.expand(member)?;
                self.overlay.claim(self.state, &key, KeyKind::Set)?;
                self.overlay.set_member(&key, &member, true);
                Ok(native(Native::SAdd, vec![key, member]))
            }
            Effect::SRem { member, .. } => {
                let member = self.expand(member)?;
                self.overlay.require(self.state, &key, KeyKind::Set)?;
                self.overlay.set_member(&key, &member, false);
                self.overlay.shrink(&key);
                Ok(native(Native::SRem, vec![key, member]))
            }
            Effect::ZAdd {
                exists,
                beats,
                score,
                member,
                ..
            } => self.zadd(key, *exists, *beats, score, member),
            Effect::ZIncrBy { incr, member, .. } => self.zincrby(key, incr, member),
            Effect::ZRem { member, .. } => {
                let member = self.expand(member)?;
                self.overlay.require(self.state, &key, KeyKind::ZSet)?;
                self.overlay.zwrite(&key, &member, ZWrite::Remove);
                self.overlay.shrink(&key);
                Ok(native(Native::ZRem, vec![key, member]))
            }
            Effect::PfAdd { element, .. } => self.pfadd(key, element),
            Effect::Push { end, value, .. } => {
                self.overlay.claim(self.state, &key, KeyKind::List)?;
                let cmd = match end {
                    End::Left => Native::LPush,
                    End::Right => Native::RPush,
                };
                Ok(native(cmd, vec![key, self.expand(value)?]))
            }
            Effect::PExpire { ms, .. } => self.pexpire(key, ms),
            Effect::XAdd { trim, pairs, .. } => {
                let pairs = self.pairs(pairs)?;
                self.xadd_id(&key)?;
                Ok(Op::XAdd {
                    key,
                    trim: *trim,
                    pairs,
                })
            }
            Effect::Publish { channel, message } => self.publish(channel, message),
            Effect::FCall {
                function,
                keys,
                args,
            } => self.fcall(function, keys, args),
        }
    }

    fn pairs(&self, pairs: &'r Pairs<'r>) -> Result<Vec<(Bytes<'r>, Bytes<'r>)>, ReplyError> {
        match pairs {
            Pairs::Entry => Ok(self
                .entry
                .fields
                .iter()
                .map(|(f, v)| (Cow::Borrowed(*f), Cow::Borrowed(*v)))
                .collect()),
            Pairs::Fields(pairs) => pairs
                .iter()
                .map(|(f, v)| Ok((self.expand(f)?, self.expand(v)?)))
                .collect(),
        }
    }

    fn hincrby(
        &mut self,
        key: Bytes<'r>,
        field: &'r Arg<'r>,
        incr: &'r Arg<'r>,
    ) -> Result<Op<'r>, ReplyError> {
        let (field, incr) = (self.expand(field)?, self.expand(incr)?);
        let by = parse_i64(&incr).ok_or(errors::NOT_INTEGER)?;
        self.overlay.claim(self.state, &key, KeyKind::Hash)?;
        let current = match self.overlay.field_int(self.state, &key, &field) {
            None => 0,
            Some(value) => value.ok_or(errors::HASH_NOT_INTEGER)?,
        };
        let result = current.checked_add(by).ok_or(errors::OVERFLOW)?;
        self.overlay.set_field(&key, &field, Value::Int(result));
        Ok(Op::HIncrBy {
            key,
            field,
            incr,
            result,
        })
    }

    fn hincrbyfloat(
        &mut self,
        key: Bytes<'r>,
        field: &'r Arg<'r>,
        incr: &'r Arg<'r>,
    ) -> Result<Op<'r>, ReplyError> {
        let (field, incr) = (self.expand(field)?, self.expand(incr)?);
        let by = parse_float(&incr).ok_or(errors::NOT_FLOAT)?;
        if by.is_infinite() {
            return Err(errors::FLOAT_NAN_OR_INF.into());
        }
        self.overlay.claim(self.state, &key, KeyKind::Hash)?;
        let current = match self.overlay.field(self.state, &key, &field) {
            None => 0.0,
            Some(value) => value.float().ok_or(errors::HASH_NOT_FLOAT)?,
        };
        let sum = finite(current + by)?;
        self.overlay.set_field(&key, &field, Value::Float(sum));
        Ok(native(Native::HIncrByFloat, vec![key, field, incr]))
    }

    fn hset(&mut self, key: Bytes<'r>, pairs: &'r Pairs<'r>) -> Result<Op<'r>, ReplyError> {
        let pairs = self.pairs(pairs)?;
        self.overlay.claim(self.state, &key, KeyKind::Hash)?;
        let mut args = Vec::with_capacity(1 + 2 * pairs.len());
        args.push(key);
        for (field, value) in pairs {
            self.overlay
                .set_field(&args[0], &field, Value::Text(value.clone()));
            args.extend([field, value]);
        }
        Ok(native(Native::HSet, args))
    }

    fn hsetnx(
        &mut self,
        key: Bytes<'r>,
        field: &'r Arg<'r>,
        value: &'r Arg<'r>,
    ) -> Result<Op<'r>, ReplyError> {
        let (field, value) = (self.expand(field)?, self.expand(value)?);
        self.overlay.claim(self.state, &key, KeyKind::Hash)?;
        if self.overlay.field(self.state, &key, &field).is_none() {
            self.overlay
                .set_field(&key, &field, Value::Text(value.clone()));
        }
        Ok(native(Native::HSetNx, vec![key, field, value]))
    }

    fn hdel(&mut self, key: Bytes<'r>, field: &'r Arg<'r>) -> Result<Op<'r>, ReplyError> {
        let field = self.expand(field)?;
        // A hash HDEL empties is removed, as the overlay then says.
        self.overlay.require(self.state, &key, KeyKind::Hash)?;
        self.overlay.set_field(&key, &field, Value::Gone);
        self.overlay.shrink(&key);
        Ok(native(Native::HDel, vec![key, field]))
    }

    fn set(
        &mut self,
        key: Bytes<'r>,
        value: &'r Arg<'r>,
        exists: Option<Exists>,
        px: Option<&'r Arg<'r>>,
    ) -> Result<Op<'r>, ReplyError> {
        let value = self.expand(value)?;
        let mut args = vec![key, value];
        if let Some(px) = px {
            let ms = self.expand(px)?;
            let n = parse_i64(&ms).ok_or(errors::NOT_INTEGER)?;
            if n <= 0 || n > self.latest_expiry() {
                return Err(errors::SET_BAD_EXPIRE.into());
            }
            args.extend([Cow::Borrowed(&b"PX"[..]), ms]);
        }
        // Only NX and XX need the key's kind: a plain SET writes whatever.
        let missing = || self.overlay.kind(self.state, &args[0]) == KeyKind::Missing;
        let applies = match exists {
            Some(Exists::Nx) => missing(),
            Some(Exists::Xx) => !missing(),
            None => true,
        };
        if applies {
            self.overlay.replace(&args[0], KeyKind::String);
            let written = Value::Text(args[1].clone());
            self.overlay.set_string(&args[0], written);
        }
        args.extend(exists.map(|e| flag(e == Exists::Nx, b"NX", b"XX")));
        Ok(native(Native::Set, args))
    }

    /// The largest relative expiry Redis takes: its clock when the write
    /// runs plus the time must fit 64 bits. The write runs a little after
    /// planning reads the clock, so an hour is kept in hand (a time some
    /// 292 million years away is refused an hour early).
    fn latest_expiry(&self) -> i64 {
        const IN_HAND_MS: i64 = 3_600_000;
        i64::MAX - self.state.now_ms() - IN_HAND_MS
    }

    /// A string key's value (its first `limit` bytes), `None` when it is
    /// missing, which it then claims for a string: a key that holds a
    /// string is opened once, not once for its kind and again for its value.
    fn string(&mut self, key: &Bytes<'r>, limit: usize) -> Result<Option<Value<'r>>, ReplyError> {
        let value = self.overlay.string(self.state, key, limit);
        if value.is_none() {
            self.overlay.claim(self.state, key, KeyKind::String)?;
        }
        Ok(value)
    }

    fn incrby(&mut self, key: Bytes<'r>, incr: &'r Arg<'r>) -> Result<Op<'r>, ReplyError> {
        let incr = self.expand(incr)?;
        let by = parse_i64(&incr).ok_or(errors::NOT_INTEGER)?;
        let current = match self.string(&key, NUMBER_LIMIT)? {
            None => 0,
            Some(value) => value.int().ok_or(errors::NOT_INTEGER)?,
        };
        let result = current.checked_add(by).ok_or(errors::OVERFLOW)?;
        self.overlay.set_string(&key, Value::Int(result));
        Ok(native(Native::IncrBy, vec![key, incr]))
    }

    fn incrbyfloat(&mut self, key: Bytes<'r>, incr: &'r Arg<'r>) -> Result<Op<'r>, ReplyError> {
        let incr = self.expand(incr)?;
        let by = parse_float(&incr).ok_or(errors::NOT_FLOAT)?;
        let current = match self.string(&key, NUMBER_LIMIT)? {
            None => 0.0,
            Some(value) => value.float().ok_or(errors::NOT_FLOAT)?,
        };
        let sum = finite(current + by)?;
        self.overlay.set_string(&key, Value::Float(sum));
        Ok(native(Native::IncrByFloat, vec![key, incr]))
    }

    fn zadd(
        &mut self,
        key: Bytes<'r>,
        exists: Option<Exists>,
        beats: Option<Beats>,
        score: &'r Arg<'r>,
        member: &'r Arg<'r>,
    ) -> Result<Op<'r>, ReplyError> {
        let (text, member) = (self.expand(score)?, self.expand(member)?);
        let score = parse_score(&text).ok_or(errors::NOT_FLOAT)?;
        match exists {
            // ZADD XX never creates the key: a missing one stays missing
            // (so a later SET NX of the entry applies, as in Redis).
            Some(Exists::Xx) => self.overlay.require(self.state, &key, KeyKind::ZSet)?,
            _ => self.overlay.claim(self.state, &key, KeyKind::ZSet)?,
        }
        let write = ZWrite::Add {
            score,
            exists,
            beats,
        };
        self.overlay.zwrite(&key, &member, write);
        let mut args = vec![key];
        args.extend(exists.map(|e| flag(e == Exists::Nx, b"NX", b"XX")));
        args.extend(beats.map(|b| flag(b == Beats::Gt, b"GT", b"LT")));
        args.extend([text, member]);
        Ok(native(Native::ZAdd, args))
    }

    fn zincrby(
        &mut self,
        key: Bytes<'r>,
        incr: &'r Arg<'r>,
        member: &'r Arg<'r>,
    ) -> Result<Op<'r>, ReplyError> {
        let (text, member) = (self.expand(incr)?, self.expand(member)?);
        let by = parse_score(&text).ok_or(errors::NOT_FLOAT)?;
        self.overlay.claim(self.state, &key, KeyKind::ZSet)?;
        // Only infinities of opposite signs make NaN: read the score then only.
        if by.is_infinite() {
            let current = self.overlay.zscore(self.state, &key, &member);
            if current.is_some_and(|c| (c + by).is_nan()) {
                return Err(errors::NAN_SCORE.into());
            }
        }
        self.overlay.zwrite(&key, &member, ZWrite::Incr(by));
        Ok(native(Native::ZIncrBy, vec![key, text, member]))
    }

    fn pfadd(&mut self, key: Bytes<'r>, element: &'r Arg<'r>) -> Result<Op<'r>, ReplyError> {
        let element = self.expand(element)?;
        let mut current = self.string(&key, HLL_HEADER)?;
        if current.as_ref().is_some_and(Value::sparse_head) {
            current = self.overlay.string(self.state, &key, HLL_SPARSE_READ);
        }
        match current {
            Some(value) if !value.is_hll() => return Err(errors::NOT_HLL.into()),
            Some(value) if !value.hll_registers_ok() => return Err(errors::HLL_CORRUPT.into()),
            _ => {}
        }
        self.overlay.set_string(&key, Value::Hll);
        Ok(native(Native::PfAdd, vec![key, element]))
    }

    fn pexpire(&mut self, key: Bytes<'r>, ms: &'r Arg<'r>) -> Result<Op<'r>, ReplyError> {
        let ms = self.expand(ms)?;
        let n = parse_i64(&ms).ok_or(errors::NOT_INTEGER)?;
        if n > self.latest_expiry() {
            return Err(errors::PEXPIRE_BAD_EXPIRE.into());
        }
        // A time already past removes the key at once.
        if n <= 0 && self.overlay.kind(self.state, &key) != KeyKind::Missing {
            self.overlay.replace(&key, KeyKind::Missing);
        }
        Ok(native(Native::PExpire, vec![key, ms]))
    }

    fn publish(&self, channel: &'r Arg<'r>, message: &'r Arg<'r>) -> Result<Op<'r>, ReplyError> {
        let expanded = self.expand(channel)?;
        if channel.literal().is_none() {
            self.state.check_channel(&expanded, self.entry.id)?;
        }
        Ok(native(
            Native::Publish,
            vec![expanded, self.expand(message)?],
        ))
    }

    /// `FCALL function numkeys key ... arg ...`: the keys checked as any
    /// effect's, `$@entry` made into the entry's field/value pairs.
    fn fcall(
        &self,
        function: &'r [u8],
        keys: &'r [Arg<'r>],
        args: &'r [FcallArg<'r>],
    ) -> Result<Op<'r>, ReplyError> {
        let mut argv = Vec::with_capacity(2 + keys.len() + args.len());
        argv.push(Cow::Borrowed(function));
        argv.push(Cow::Owned(keys.len().to_string().into_bytes()));
        for key in keys {
            argv.push(self.key(key)?);
        }
        for arg in args {
            match arg {
                FcallArg::Arg(arg) => argv.push(self.expand(arg)?),
                FcallArg::Entry => argv.extend(
                    self.entry
                        .fields
                        .iter()
                        .flat_map(|(f, v)| [Cow::Borrowed(*f), Cow::Borrowed(*v)]),
                ),
            }
        }
        Ok(native(Native::FCall, argv))
    }

    /// An auto-generated ID must still exist after every XADD of this entry.
    fn xadd_id(&mut self, key: &Bytes<'r>) -> Result<(), ReplyError> {
        let existed = self.overlay.kind(self.state, key) == KeyKind::Stream;
        self.overlay.claim(self.state, key, KeyKind::Stream)?;
        let last = match self.overlay.last_id(key) {
            Some(id) => id,
            None if existed => self.state.stream_last_id(key),
            None => StreamId { ms: 0, seq: 0 },
        };
        let next = last.next().ok_or(errors::STREAM_EXHAUSTED)?;
        self.overlay.set_last_id(key, next);
        Ok(())
    }
}

/// One of a command's two exclusive options.
fn flag(first: bool, yes: &'static [u8], no: &'static [u8]) -> Bytes<'static> {
    Cow::Borrowed(if first { yes } else { no })
}

fn finite(sum: f64) -> Result<f64, ReplyError> {
    match sum.is_finite() {
        true => Ok(sum),
        false => Err(errors::NAN_OR_INF.into()),
    }
}
