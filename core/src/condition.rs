//! Conditions: `WHEN condition` before an effect applies it only to the
//! entries for which the condition holds.
//!
//! ```text
//! condition := $field (= | !=) value
//!            | $field (< | <= | > | >=) number
//!            | $field (EXISTS | MISSING)
//!            | KEY key (EXISTS | MISSING)
//! ```
//! `value`, `number` and `key` are templates. A missing field is no error
//! in a condition: `=` and the numeric comparisons are false, `!=` is true.
//! A field that is not a number in a numeric comparison is the entry's
//! error. Every condition of an entry is decided against the data as it is
//! before the entry's first effect runs, so an entry's plan is fixed before
//! anything is written.

use crate::entry::Entry;
use crate::errors::{self, ReplyError};
use crate::numbers::parse_float;
use crate::state::{KeyKind, State};
use crate::template::Arg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition<'a> {
    /// `$field op value`.
    Field {
        field: &'a [u8],
        op: Compare,
        value: Arg<'a>,
    },
    /// `$field EXISTS` (`exists`) or `$field MISSING`.
    FieldPresent { field: &'a [u8], exists: bool },
    /// `KEY key EXISTS` (`exists`) or `KEY key MISSING`.
    KeyPresent { key: Arg<'a>, exists: bool },
}

impl Compare {
    fn parse(token: &[u8]) -> Option<Compare> {
        Some(match token {
            b"=" => Compare::Eq,
            b"!=" => Compare::Ne,
            b"<" => Compare::Lt,
            b"<=" => Compare::Le,
            b">" => Compare::Gt,
            b">=" => Compare::Ge,
            _ => return None,
        })
    }

    fn numeric(self) -> bool {
        !matches!(self, Compare::Eq | Compare::Ne)
    }
}

/// EXISTS (true) or MISSING (false).
fn presence(token: &[u8]) -> Option<bool> {
    if token.eq_ignore_ascii_case(b"EXISTS") {
        Some(true)
    } else if token.eq_ignore_ascii_case(b"MISSING") {
        Some(false)
    } else {
        None
    }
}

impl<'a> Condition<'a> {
    /// Parse a condition from the arguments after `WHEN`; the number of
    /// arguments it took.
    pub fn parse(args: &[&'a [u8]]) -> Result<(Condition<'a>, usize), ReplyError> {
        let [first, second, rest @ ..] = args else {
            return Err(errors::BAD_CONDITION.into());
        };
        if first.eq_ignore_ascii_case(b"KEY") {
            let exists = rest.first().and_then(|t| presence(t));
            let exists = exists.ok_or(errors::BAD_CONDITION)?;
            let key = Arg::parse(second)?;
            return Ok((Condition::KeyPresent { key, exists }, 3));
        }
        let Arg::Field(field) = Arg::parse(first)? else {
            return Err(errors::BAD_CONDITION.into());
        };
        if let Some(exists) = presence(second) {
            return Ok((Condition::FieldPresent { field, exists }, 2));
        }
        let op = Compare::parse(second).ok_or(errors::BAD_CONDITION)?;
        let raw = rest.first().ok_or(errors::BAD_CONDITION)?;
        let value = match op.numeric() {
            true => Arg::parse_number(raw)?,
            false => Arg::parse(raw)?,
        };
        if let (true, Some(literal)) = (op.numeric(), value.literal()) {
            parse_float(literal).ok_or(errors::BAD_CONDITION_NUMBER)?;
        }
        Ok((Condition::Field { field, op, value }, 3))
    }

    /// The fields of the entry this condition reads.
    pub fn fields(&self) -> Vec<&'a [u8]> {
        match self {
            Condition::Field { field, value, .. } => {
                std::iter::once(*field).chain(value.fields()).collect()
            }
            Condition::FieldPresent { field, .. } => vec![*field],
            Condition::KeyPresent { key, .. } => key.fields().collect(),
        }
    }

    /// Whether the condition holds for `entry`, against `state` as it is
    /// before the entry's first effect.
    pub fn holds(&self, entry: &Entry, state: &impl State) -> Result<bool, ReplyError> {
        match self {
            Condition::FieldPresent { field, exists } => Ok(entry.get(field).is_some() == *exists),
            Condition::KeyPresent { key, exists } => {
                let name = key.expand(entry)?;
                if key.literal().is_none() {
                    state.check_key(&name, entry.id, false)?;
                }
                Ok((state.kind(&name) != KeyKind::Missing) == *exists)
            }
            Condition::Field { field, op, value } => {
                let Some(actual) = entry.get(field) else {
                    return Ok(*op == Compare::Ne);
                };
                let wanted = value.expand(entry)?;
                if !op.numeric() {
                    return Ok((actual == &*wanted) == (*op == Compare::Eq));
                }
                let actual = parse_float(actual).ok_or(errors::NOT_A_NUMBER)?;
                let wanted = parse_float(&wanted).ok_or(errors::NOT_A_NUMBER)?;
                Ok(match op {
                    Compare::Lt => actual < wanted,
                    Compare::Le => actual <= wanted,
                    Compare::Gt => actual > wanted,
                    _ => actual >= wanted,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::StreamId;

    struct Keys(&'static [&'static [u8]]);

    impl State for Keys {
        fn kind(&self, key: &[u8]) -> KeyKind {
            match self.0.contains(&key) {
                true => KeyKind::Hash,
                false => KeyKind::Missing,
            }
        }
        fn hash_field(&self, _: &[u8], _: &[u8]) -> Option<Vec<u8>> {
            None
        }
        fn stream_last_id(&self, _: &[u8]) -> StreamId {
            StreamId::MAX
        }
    }

    const FIELDS: [(&[u8], &[u8]); 3] =
        [(b"type", b"refund"), (b"amount", b"12.5"), (b"who", b"x")];
    const ENTRY: Entry = Entry {
        id: "1-1",
        fields: &FIELDS,
    };

    fn holds(condition: &str) -> Result<bool, String> {
        let args: Vec<&[u8]> = condition.split(' ').map(str::as_bytes).collect();
        let (c, used) = Condition::parse(&args).map_err(|e| e.to_string())?;
        assert_eq!(used, args.len(), "{condition}");
        c.holds(&ENTRY, &Keys(&[b"order:x"]))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn comparisons() {
        assert_eq!(holds("$type = refund"), Ok(true));
        assert_eq!(holds("$type != refund"), Ok(false));
        assert_eq!(holds("$amount > 10"), Ok(true));
        assert_eq!(holds("$amount <= 12.5"), Ok(true));
        assert_eq!(holds("$amount < 12.5"), Ok(false));
        assert_eq!(holds("$amount >= -$amount"), Ok(true));
        assert_eq!(holds("$type = ${who}"), Ok(false));
        assert_eq!(
            holds("$type > 1"),
            Err("ERR value is not a number".to_string())
        );
    }

    #[test]
    fn a_missing_field_is_no_error() {
        assert_eq!(holds("$nope = a"), Ok(false));
        assert_eq!(holds("$nope != a"), Ok(true));
        assert_eq!(holds("$nope > 1"), Ok(false));
        assert_eq!(holds("$nope MISSING"), Ok(true));
        assert_eq!(holds("$type exists"), Ok(true));
    }

    #[test]
    fn keys() {
        assert_eq!(holds("KEY order:${who} EXISTS"), Ok(true));
        assert_eq!(holds("KEY order:y MISSING"), Ok(true));
        assert_eq!(
            holds("KEY order:${nope} EXISTS"),
            Err("ERR entry 1-1 has no field 'nope'".to_string())
        );
    }

    #[test]
    fn bad_conditions() {
        for bad in [
            "$type",
            "$type ~ a",
            "type = a",
            "KEY k",
            "KEY k THERE",
            "$a < many",
        ] {
            assert!(holds(bad).is_err(), "{bad}");
        }
    }
}
