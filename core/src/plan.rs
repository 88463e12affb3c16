//! Planning: what one entry's effects will do, validated before any runs.
//!
//! Every effect of an entry is expanded against the entry and checked against
//! the keyspace *as earlier effects of the same entry will leave it* (an
//! overlay), so an entry is either applied whole or not at all: a failing
//! second effect must not leave the first one applied.

use crate::condition::Condition;
use crate::entry::Entry;
use crate::errors::{self, ReplyError};
use crate::id::StreamId;
use crate::numbers::{parse_float, parse_i64};
use crate::request::{Effect, Trim, XAddBody};
use crate::state::{KeyKind, State};
use crate::template::Arg;
use std::borrow::Cow;

/// Bytes of an effect: borrowed from argv or the entry, or made by a template.
pub type Bytes<'r> = Cow<'r, [u8]>;

/// One validated write; arguments are passed to Redis verbatim.
#[derive(Debug, Clone, PartialEq)]
pub enum Op<'r> {
    HIncrBy {
        key: Bytes<'r>,
        field: Bytes<'r>,
        incr: Bytes<'r>,
        /// The field's value afterwards, computed while validating.
        result: i64,
    },
    HIncrByFloat {
        key: Bytes<'r>,
        field: Bytes<'r>,
        incr: Bytes<'r>,
    },
    SAdd {
        key: Bytes<'r>,
        member: Bytes<'r>,
    },
    XAdd {
        key: Bytes<'r>,
        trim: Option<Trim>,
        pairs: Vec<(Bytes<'r>, Bytes<'r>)>,
    },
}

/// A hash field's value as earlier effects of this entry leave it.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    /// Redis stores HINCRBYFLOAT results as long double text we don't
    /// reproduce, so a later HINCRBY on it is refused rather than guessed.
    Float(f64),
}

/// Changes planned so far for the current entry. Keys and fields are the
/// ops' own bytes (a clone of a borrowed one is free).
struct Overlay<'r, 'k> {
    /// Keys that keep their kind whatever they hold now.
    reserved: &'k [(&'k [u8], KeyKind)],
    kinds: Vec<(Bytes<'r>, KeyKind)>,
    fields: Vec<(Bytes<'r>, Bytes<'r>, Num)>,
    last_ids: Vec<(Bytes<'r>, StreamId)>,
}

impl<'r> Overlay<'r, '_> {
    fn kind(&self, state: &impl State, key: &[u8]) -> KeyKind {
        let reserved = self.reserved.iter().map(|(k, kind)| (*k, *kind));
        let planned = self.kinds.iter().map(|(k, kind)| (&**k, *kind));
        match reserved.chain(planned).find(|(k, _)| *k == key) {
            Some((_, kind)) => kind,
            None => state.kind(key),
        }
    }

    /// Check that `key` is missing or of `want`, and remember it becomes `want`.
    fn claim(
        &mut self,
        state: &impl State,
        key: &Bytes<'r>,
        want: KeyKind,
    ) -> Result<(), ReplyError> {
        match self.kind(state, key) {
            KeyKind::Missing => {
                self.kinds.push((key.clone(), want));
                Ok(())
            }
            kind if kind == want => Ok(()),
            _ => Err(errors::WRONGTYPE.into()),
        }
    }

    fn field(&self, key: &[u8], field: &[u8]) -> Option<Num> {
        self.fields
            .iter()
            .find(|(k, f, _)| **k == *key && **f == *field)
            .map(|(_, _, n)| *n)
    }

    fn set_field(&mut self, key: &Bytes<'r>, field: &Bytes<'r>, value: Num) {
        match self
            .fields
            .iter_mut()
            .find(|(k, f, _)| k == key && f == field)
        {
            Some(slot) => slot.2 = value,
            None => self.fields.push((key.clone(), field.clone(), value)),
        }
    }
}

/// Keys no template may make: the stream, the dedupe key, the dead-letter key.
pub struct KeyRules<'k> {
    /// Keys that keep their kind throughout the call whether or not they
    /// exist yet (the dedupe set must stay a set).
    pub reserved: &'k [(&'k [u8], KeyKind)],
    /// Keys an effect must never write.
    pub forbidden: &'k [&'k [u8]],
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
    let mut overlay = Overlay {
        reserved: rules.reserved,
        kinds: Vec::new(),
        fields: Vec::new(),
        last_ids: Vec::new(),
    };
    let mut ops = Vec::with_capacity(effects.len());
    for (n, effect) in effects.iter().enumerate() {
        let conditions = when.get(n).map_or(&[][..], Vec::as_slice);
        if all_hold(conditions, entry, state)? {
            ops.push(plan_effect(effect, entry, state, rules, &mut overlay)?);
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

/// An effect's key for this entry; a templated one is checked here, per
/// entry, as a literal one was for the whole call.
fn effect_key<'r>(
    key: &'r Arg<'r>,
    entry: &Entry<'r>,
    state: &impl State,
    rules: &KeyRules,
) -> Result<Bytes<'r>, ReplyError> {
    let expanded = key.expand(entry)?;
    if key.literal().is_none() {
        if rules.forbidden.contains(&&*expanded) {
            return Err(ReplyError::reserved_key(entry.id, &expanded));
        }
        state.check_key(&expanded, entry.id, true)?;
    }
    Ok(expanded)
}

fn plan_effect<'r>(
    effect: &'r Effect<'r>,
    entry: &Entry<'r>,
    state: &impl State,
    rules: &KeyRules,
    overlay: &mut Overlay<'r, '_>,
) -> Result<Op<'r>, ReplyError> {
    let key = effect_key(effect.key(), entry, state, rules)?;
    match effect {
        Effect::HIncrBy { field, incr, .. } => {
            let (field, incr) = (field.expand(entry)?, incr.expand(entry)?);
            plan_hincrby(key, field, incr, state, overlay)
        }
        Effect::HIncrByFloat { field, incr, .. } => {
            let (field, incr) = (field.expand(entry)?, incr.expand(entry)?);
            plan_hincrbyfloat(key, field, incr, state, overlay)
        }
        Effect::SAdd { member, .. } => {
            let member = member.expand(entry)?;
            overlay.claim(state, &key, KeyKind::Set)?;
            Ok(Op::SAdd { key, member })
        }
        Effect::XAdd { trim, body, .. } => {
            let pairs = match body {
                XAddBody::Entry => entry
                    .fields
                    .iter()
                    .map(|(f, v)| (Cow::Borrowed(*f), Cow::Borrowed(*v)))
                    .collect(),
                XAddBody::Fields(pairs) => pairs
                    .iter()
                    .map(|(f, v)| Ok((f.expand(entry)?, v.expand(entry)?)))
                    .collect::<Result<_, ReplyError>>()?,
            };
            plan_xadd_id(&key, state, overlay)?;
            Ok(Op::XAdd {
                key,
                trim: *trim,
                pairs,
            })
        }
    }
}

fn plan_hincrby<'r>(
    key: Bytes<'r>,
    field: Bytes<'r>,
    incr: Bytes<'r>,
    state: &impl State,
    overlay: &mut Overlay<'r, '_>,
) -> Result<Op<'r>, ReplyError> {
    let by = parse_i64(&incr).ok_or(errors::NOT_INTEGER)?;
    overlay.claim(state, &key, KeyKind::Hash)?;
    let current = match overlay.field(&key, &field) {
        Some(Num::Int(v)) => v,
        Some(Num::Float(_)) => return Err(errors::HASH_NOT_INTEGER.into()),
        None => match state.hash_field(&key, &field) {
            None => 0,
            Some(text) => parse_i64(&text).ok_or(errors::HASH_NOT_INTEGER)?,
        },
    };
    let sum = current.checked_add(by).ok_or(errors::OVERFLOW)?;
    overlay.set_field(&key, &field, Num::Int(sum));
    Ok(Op::HIncrBy {
        key,
        field,
        incr,
        result: sum,
    })
}

fn plan_hincrbyfloat<'r>(
    key: Bytes<'r>,
    field: Bytes<'r>,
    incr: Bytes<'r>,
    state: &impl State,
    overlay: &mut Overlay<'r, '_>,
) -> Result<Op<'r>, ReplyError> {
    let by = parse_float(&incr).ok_or(errors::NOT_FLOAT)?;
    if by.is_infinite() {
        return Err(errors::FLOAT_NAN_OR_INF.into());
    }
    overlay.claim(state, &key, KeyKind::Hash)?;
    let current = match overlay.field(&key, &field) {
        Some(Num::Int(v)) => v as f64,
        Some(Num::Float(v)) => v,
        None => match state.hash_field(&key, &field) {
            None => 0.0,
            Some(text) => parse_float(&text).ok_or(errors::HASH_NOT_FLOAT)?,
        },
    };
    let sum = current + by;
    if !sum.is_finite() {
        return Err(errors::NAN_OR_INF.into());
    }
    overlay.set_field(&key, &field, Num::Float(sum));
    Ok(Op::HIncrByFloat { key, field, incr })
}

/// An auto-generated ID must still exist after every XADD of this entry.
fn plan_xadd_id<'r>(
    key: &Bytes<'r>,
    state: &impl State,
    overlay: &mut Overlay<'r, '_>,
) -> Result<(), ReplyError> {
    let existed = overlay.kind(state, key) == KeyKind::Stream;
    overlay.claim(state, key, KeyKind::Stream)?;
    let slot = overlay.last_ids.iter().position(|(k, _)| k == key);
    let last = match slot {
        Some(i) => overlay.last_ids[i].1,
        None if existed => state.stream_last_id(key),
        None => StreamId { ms: 0, seq: 0 },
    };
    let next = last.next().ok_or(errors::STREAM_EXHAUSTED)?;
    match slot {
        Some(i) => overlay.last_ids[i].1 = next,
        None => overlay.last_ids.push((key.clone(), next)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use std::collections::HashMap;

    /// In-memory keyspace: kinds, hash fields and stream last IDs.
    #[derive(Default)]
    struct Mem {
        kinds: HashMap<Vec<u8>, KeyKind>,
        fields: HashMap<(Vec<u8>, Vec<u8>), Vec<u8>>,
        last_ids: HashMap<Vec<u8>, StreamId>,
    }

    impl State for Mem {
        fn kind(&self, key: &[u8]) -> KeyKind {
            *self.kinds.get(key).unwrap_or(&KeyKind::Missing)
        }
        fn hash_field(&self, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
            self.fields.get(&(key.to_vec(), field.to_vec())).cloned()
        }
        fn stream_last_id(&self, key: &[u8]) -> StreamId {
            self.last_ids[key]
        }
    }

    impl Mem {
        fn hash(mut self, key: &str, field: &str, value: &str) -> Self {
            self.kinds.insert(key.into(), KeyKind::Hash);
            self.fields.insert((key.into(), field.into()), value.into());
            self
        }
        fn kind(mut self, key: &str, kind: KeyKind) -> Self {
            self.kinds.insert(key.into(), kind);
            self
        }
    }

    const FIELDS: [(&[u8], &[u8]); 3] = [(b"cust", b"alice"), (b"amount", b"7"), (b"f", b"1.5")];
    const ENTRY: Entry<'static> = Entry {
        id: "1-1",
        fields: &FIELDS,
    };

    /// Plan the effects of `cmd` (effects only, IDS appended) for ENTRY.
    fn plan(cmd: &str, state: &Mem) -> Result<Vec<String>, String> {
        let line = format!("XPROCESS s g {cmd} IDS 1 1-1");
        let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let req = parse(&argv).unwrap();
        let reserved = [(&b"dd"[..], KeyKind::Set)];
        let rules = KeyRules {
            reserved: &reserved,
            forbidden: &[b"s", b"dd"],
        };
        plan_entry(&req.effects, &req.when, &ENTRY, state, &rules)
            .map(|ops| ops.iter().map(|op| format!("{op:?}")).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn templates_are_expanded_into_ops() {
        let ops = plan("HINCRBY totals $cust $amount XADD o ENTRY", &Mem::default()).unwrap();
        assert_eq!(ops.len(), 2);
        assert!(ops[0].contains("[97, 108, 105, 99, 101]"), "{}", ops[0]); // alice
        assert!(ops[1].contains("pairs"));
    }

    #[test]
    fn wrong_type_targets_are_refused() {
        let state = Mem::default()
            .kind("str", KeyKind::Other)
            .kind("st", KeyKind::Stream);
        for cmd in [
            "HINCRBY str f 1",
            "SADD str m",
            "XADD str ENTRY",
            "SADD st m",
            "HINCRBY dd f 1",
        ] {
            assert_eq!(plan(cmd, &state).unwrap_err(), errors::WRONGTYPE, "{cmd}");
        }
    }

    #[test]
    fn a_failing_second_effect_refuses_the_whole_entry() {
        let state = Mem::default();
        assert_eq!(
            plan("HINCRBY h a 1 HINCRBY h b x", &state).unwrap_err(),
            errors::NOT_INTEGER
        );
        // The first effect makes `k` a hash, so the second cannot treat it as a set.
        assert_eq!(
            plan("HINCRBY k a 1 SADD k m", &state).unwrap_err(),
            errors::WRONGTYPE
        );
    }

    #[test]
    fn integer_overflow_counts_earlier_effects() {
        let state = Mem::default().hash("h", "f", "9223372036854775800");
        assert!(plan("HINCRBY h f 7", &state).is_ok());
        assert_eq!(plan("HINCRBY h f 8", &state).unwrap_err(), errors::OVERFLOW);
        assert_eq!(
            plan("HINCRBY h f 4 HINCRBY h f 4", &state).unwrap_err(),
            errors::OVERFLOW
        );
        let neg = Mem::default().hash("h", "f", "-9223372036854775807");
        assert_eq!(plan("HINCRBY h f -2", &neg).unwrap_err(), errors::OVERFLOW);
    }

    #[test]
    fn hash_values_must_be_numbers() {
        let state = Mem::default().hash("h", "f", "abc").hash("g", "f", "1.5");
        assert_eq!(
            plan("HINCRBY h f 1", &state).unwrap_err(),
            errors::HASH_NOT_INTEGER
        );
        assert_eq!(
            plan("HINCRBY g f 1", &state).unwrap_err(),
            errors::HASH_NOT_INTEGER
        );
        assert_eq!(
            plan("HINCRBYFLOAT h f 1", &state).unwrap_err(),
            errors::HASH_NOT_FLOAT
        );
        assert!(plan("HINCRBYFLOAT g f $f", &state).is_ok());
        assert_eq!(
            plan("HINCRBYFLOAT x y 1 HINCRBY x y 1", &state).unwrap_err(),
            errors::HASH_NOT_INTEGER
        );
    }

    #[test]
    fn float_results_must_be_finite() {
        let state = Mem::default().hash("h", "f", "1e308");
        assert_eq!(
            plan("HINCRBYFLOAT h f 1e308", &state).unwrap_err(),
            errors::NAN_OR_INF
        );
        assert_eq!(
            plan("HINCRBYFLOAT h g inf", &state).unwrap_err(),
            errors::FLOAT_NAN_OR_INF
        );
        assert_eq!(
            plan("HINCRBYFLOAT h g nan", &state).unwrap_err(),
            errors::NOT_FLOAT
        );
        assert_eq!(
            plan("HINCRBYFLOAT h g 1e308 HINCRBYFLOAT h g 1e308", &state).unwrap_err(),
            errors::NAN_OR_INF
        );
    }

    #[test]
    fn missing_template_field_is_an_entry_error() {
        let err = plan("SADD s $nope", &Mem::default()).unwrap_err();
        assert_eq!(err, "ERR entry 1-1 has no field 'nope'");
    }

    #[test]
    fn xadd_refuses_an_exhausted_stream() {
        let mut state = Mem::default().kind("o", KeyKind::Stream);
        state.last_ids.insert(b"o".to_vec(), StreamId::MAX);
        assert_eq!(
            plan("XADD o ENTRY", &state).unwrap_err(),
            errors::STREAM_EXHAUSTED
        );
        let almost = StreamId {
            ms: u64::MAX,
            seq: u64::MAX - 1,
        };
        state.last_ids.insert(b"o".to_vec(), almost);
        assert!(plan("XADD o ENTRY", &state).is_ok());
        assert_eq!(
            plan("XADD o ENTRY XADD o ENTRY", &state).unwrap_err(),
            errors::STREAM_EXHAUSTED
        );
        assert!(plan("XADD new ENTRY XADD new ENTRY", &state).is_ok());
    }
}
