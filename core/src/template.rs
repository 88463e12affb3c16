//! Templates: effect arguments (key names included) taken from the entry
//! being processed.
//!
//! A whole argument may be `$name` (the entry's field `name`), `$@id`,
//! `$@ms`, `$@seq`, `$@date`, `$@hour` (the entry ID and its parts), or
//! `$$text` (the literal `$text`). Inside any argument, `${name}` and
//! `${@id}`, `${@ms}`, ... interpolate the same values, `$$` is a literal `$`,
//! and any other `$` stands for itself. A numeric argument may also be
//! `-$name`, the field's value negated. Anything else is literal. The date
//! and hour come from the ID's milliseconds (UTC), never from a clock, so
//! replicas and replays agree.

use crate::entry::Entry;
use crate::errors::{self, ReplyError};
use crate::numbers::format_u64;
use std::borrow::Cow;

/// What of the entry's ID a template stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    /// `ms-seq`.
    Id,
    Ms,
    Seq,
    /// `YYYY-MM-DD`, the UTC day of the ID's milliseconds.
    Date,
    /// `YYYY-MM-DDTHH`.
    Hour,
}

/// One piece of an interpolated argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'a> {
    Literal(&'a [u8]),
    Field(&'a [u8]),
    Meta(Meta),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg<'a> {
    Literal(&'a [u8]),
    Field(&'a [u8]),
    Meta(Meta),
    /// `-$name`: the field's value negated (numeric arguments only).
    Negated(&'a [u8]),
    /// Literal text with `${...}` pieces.
    Interpolated(Vec<Part<'a>>),
}

impl Meta {
    fn parse(name: &[u8]) -> Result<Meta, ReplyError> {
        Ok(match name {
            b"id" => Meta::Id,
            b"ms" => Meta::Ms,
            b"seq" => Meta::Seq,
            b"date" => Meta::Date,
            b"hour" => Meta::Hour,
            _ => return Err(errors::UNKNOWN_METADATA.into()),
        })
    }

    fn expand<'r>(self, entry: &Entry<'r>) -> Cow<'r, [u8]> {
        let id = entry.id.as_bytes();
        let dash = id.iter().position(|&b| b == b'-').unwrap_or(id.len());
        match self {
            Meta::Id => Cow::Borrowed(id),
            Meta::Ms => Cow::Borrowed(&id[..dash]),
            Meta::Seq => Cow::Borrowed(id.get(dash + 1..).unwrap_or_default()),
            Meta::Date | Meta::Hour => {
                let ms = std::str::from_utf8(&id[..dash])
                    .ok()
                    .and_then(|t| t.parse::<u64>().ok())
                    .unwrap_or(0);
                Cow::Owned(utc_text(ms, self == Meta::Hour))
            }
        }
    }
}

impl<'a> Arg<'a> {
    pub fn parse(arg: &'a [u8]) -> Result<Arg<'a>, ReplyError> {
        Ok(match arg {
            [b'$', b'@', meta @ ..] => Arg::Meta(Meta::parse(meta)?),
            [b'$', field @ ..] if !matches!(field.first(), Some(b'$' | b'{')) => Arg::Field(field),
            _ => literal_or_interpolated(arg)?,
        })
    }

    /// A numeric argument: a template, or `-$name`.
    pub fn parse_number(arg: &'a [u8]) -> Result<Arg<'a>, ReplyError> {
        match arg {
            [b'-', b'$', field @ ..]
                if !matches!(field.first(), None | Some(b'$' | b'@' | b'{')) =>
            {
                Ok(Arg::Negated(field))
            }
            _ => Arg::parse(arg),
        }
    }

    /// A literal argument: the same bytes in every entry, as written in argv.
    pub fn literal(&self) -> Option<&'a [u8]> {
        match *self {
            Arg::Literal(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The fields of the entry this argument reads.
    pub fn fields(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let parts: &[Part<'a>] = match self {
            Arg::Interpolated(parts) => parts,
            _ => &[],
        };
        let whole = match *self {
            Arg::Field(name) | Arg::Negated(name) => Some(name),
            _ => None,
        };
        whole
            .into_iter()
            .chain(parts.iter().filter_map(|p| match p {
                Part::Field(name) => Some(*name),
                _ => None,
            }))
    }

    /// The bytes this argument stands for in `entry`.
    pub fn expand<'r>(&self, entry: &Entry<'r>) -> Result<Cow<'r, [u8]>, ReplyError>
    where
        'a: 'r,
    {
        match self {
            Arg::Literal(bytes) => Ok(Cow::Borrowed(*bytes)),
            Arg::Field(name) => field(entry, name).map(Cow::Borrowed),
            Arg::Meta(meta) => Ok(meta.expand(entry)),
            Arg::Negated(name) => Ok(Cow::Owned(negated(field(entry, name)?))),
            Arg::Interpolated(parts) => {
                if let [Part::Literal(bytes)] = parts.as_slice() {
                    return Ok(Cow::Borrowed(*bytes));
                }
                let mut out = Vec::new();
                for part in parts {
                    match part {
                        Part::Literal(bytes) => out.extend_from_slice(bytes),
                        Part::Field(name) => out.extend_from_slice(field(entry, name)?),
                        Part::Meta(meta) => out.extend_from_slice(&meta.expand(entry)),
                    }
                }
                Ok(Cow::Owned(out))
            }
        }
    }
}

fn field<'r>(entry: &Entry<'r>, name: &[u8]) -> Result<&'r [u8], ReplyError> {
    entry
        .get(name)
        .ok_or_else(|| ReplyError::missing_field(entry.id, name))
}

/// `-` before a number's text, or taken from it (`--5` is no number).
fn negated(value: &[u8]) -> Vec<u8> {
    match value {
        [b'-', rest @ ..] => rest.to_vec(),
        [b'+', rest @ ..] => [b"-", rest].concat(),
        _ => [b"-", value].concat(),
    }
}

/// Split `arg` at `${...}` and `$$`: a plain literal when it has neither.
fn literal_or_interpolated(arg: &[u8]) -> Result<Arg<'_>, ReplyError> {
    if let [b'$', b'$', rest @ ..] = arg {
        if !rest.windows(2).any(|w| w == b"$$" || w == b"${") {
            // `$$text` is `$text`: not the argument as written, so a key
            // like it is checked per entry rather than declared.
            return Ok(Arg::Interpolated(vec![Part::Literal(&arg[1..])]));
        }
    }
    let mut parts = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < arg.len() {
        match (arg[i], arg.get(i + 1)) {
            (b'$', Some(b'$')) => {
                parts.push(Part::Literal(&arg[start..=i])); // keep one `$`
                i += 2;
                start = i;
            }
            (b'$', Some(b'{')) => {
                let len = arg[i + 2..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or(errors::UNCLOSED_TEMPLATE)?;
                parts.push(Part::Literal(&arg[start..i]));
                let name = &arg[i + 2..i + 2 + len];
                parts.push(match name {
                    [b'@', meta @ ..] => Part::Meta(Meta::parse(meta)?),
                    [] => return Err(errors::EMPTY_TEMPLATE.into()),
                    _ => Part::Field(name),
                });
                i += 2 + len + 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    parts.push(Part::Literal(&arg[start..]));
    parts.retain(|p| *p != Part::Literal(b""));
    Ok(match parts.as_slice() {
        [] => Arg::Literal(b""),
        [Part::Literal(whole)] if whole.len() == arg.len() => Arg::Literal(arg),
        _ => Arg::Interpolated(parts),
    })
}

/// `YYYY-MM-DD` (or `YYYY-MM-DDTHH`) of `ms` after the Unix epoch, UTC.
fn utc_text(ms: u64, hour: bool) -> Vec<u8> {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let mut out = Vec::with_capacity(13);
    push_padded(&mut out, y as u64, 4);
    out.push(b'-');
    push_padded(&mut out, m, 2);
    out.push(b'-');
    push_padded(&mut out, d, 2);
    if hour {
        out.push(b'T');
        push_padded(&mut out, secs % 86_400 / 3600, 2);
    }
    out
}

/// `n` in decimal, zero-padded to `width` digits.
fn push_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut buf = [0; 20];
    let digits = format_u64(n, &mut buf);
    out.extend(std::iter::repeat_n(
        b'0',
        width.saturating_sub(digits.len()),
    ));
    out.extend_from_slice(digits);
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe as i64 + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(template: &str, entry: &Entry) -> Result<String, String> {
        Arg::parse(template.as_bytes())
            .and_then(|arg| arg.expand(entry))
            .map(|bytes| String::from_utf8(bytes.into_owned()).unwrap())
            .map_err(|e| e.to_string())
    }

    const FIELDS: [(&[u8], &[u8]); 4] = [(b"a", b"1"), (b"b", b"2"), (b"a", b"3"), (b"n", b"-7")];
    const ENTRY: Entry = Entry {
        id: "1700000000123-4",
        fields: &FIELDS,
    };

    #[test]
    fn parse_recognises_each_form() {
        assert_eq!(Arg::parse(b"plain").unwrap(), Arg::Literal(b"plain"));
        assert_eq!(Arg::parse(b"$amount").unwrap(), Arg::Field(b"amount"));
        assert_eq!(Arg::parse(b"$").unwrap(), Arg::Field(b""));
        assert_eq!(Arg::parse(b"$@id").unwrap(), Arg::Meta(Meta::Id));
        assert_eq!(Arg::parse(b"$@hour").unwrap(), Arg::Meta(Meta::Hour));
        assert_eq!(Arg::parse(b"a$b").unwrap(), Arg::Literal(b"a$b"));
        assert_eq!(
            Arg::parse(b"c:${x}").unwrap(),
            Arg::Interpolated(vec![Part::Literal(b"c:"), Part::Field(b"x")])
        );
        assert!(Arg::parse(b"$@ID").is_err());
        assert!(Arg::parse(b"$@").is_err());
        assert!(Arg::parse(b"k:${@when}").is_err());
        assert!(Arg::parse(b"k:${a").is_err());
        assert!(Arg::parse(b"k:${}").is_err());
    }

    #[test]
    fn expand_reads_the_entry() {
        assert_eq!(expand("$b", &ENTRY).unwrap(), "2");
        assert_eq!(expand("$a", &ENTRY).unwrap(), "3", "the last value wins");
        assert_eq!(expand("$@id", &ENTRY).unwrap(), "1700000000123-4");
        assert_eq!(expand("$@ms", &ENTRY).unwrap(), "1700000000123");
        assert_eq!(expand("$@seq", &ENTRY).unwrap(), "4");
        assert_eq!(expand("x", &ENTRY).unwrap(), "x");
        assert_eq!(
            expand("$zz", &ENTRY).unwrap_err(),
            "ERR entry 1700000000123-4 has no field 'zz'"
        );
        assert_eq!(
            expand("c:${zz}", &ENTRY).unwrap_err(),
            "ERR entry 1700000000123-4 has no field 'zz'"
        );
    }

    #[test]
    fn interpolation_and_escapes() {
        assert_eq!(expand("customer:${b}", &ENTRY).unwrap(), "customer:2");
        assert_eq!(expand("${a}${b}", &ENTRY).unwrap(), "32");
        assert_eq!(expand("{o}:${@date}", &ENTRY).unwrap(), "{o}:2023-11-14");
        assert_eq!(expand("h:${@hour}", &ENTRY).unwrap(), "h:2023-11-14T22");
        assert_eq!(expand("$$amount", &ENTRY).unwrap(), "$amount");
        assert_eq!(expand("$$", &ENTRY).unwrap(), "$");
        assert_eq!(expand("$${b}", &ENTRY).unwrap(), "${b}");
        assert_eq!(expand("$$${b}", &ENTRY).unwrap(), "$2");
        assert_eq!(expand("a$$b", &ENTRY).unwrap(), "a$b");
        assert_eq!(expand("cost $5", &ENTRY).unwrap(), "cost $5");
    }

    #[test]
    fn negated_numbers() {
        let neg = |t: &str| {
            Arg::parse_number(t.as_bytes())
                .and_then(|a| a.expand(&ENTRY))
                .map(|b| String::from_utf8(b.into_owned()).unwrap())
        };
        assert_eq!(neg("-$b").unwrap(), "-2");
        assert_eq!(neg("-$n").unwrap(), "7");
        assert_eq!(neg("$b").unwrap(), "2");
        assert_eq!(neg("-5").unwrap(), "-5");
        assert_eq!(
            Arg::parse(b"-$b").unwrap(),
            Arg::Literal(b"-$b"),
            "only numeric arguments"
        );
    }

    #[test]
    fn dates_follow_the_utc_calendar() {
        let day = |ms: u64| String::from_utf8(utc_text(ms, true)).unwrap();
        assert_eq!(day(0), "1970-01-01T00");
        assert_eq!(day(951_782_400_000), "2000-02-29T00"); // a leap day
        assert_eq!(day(4_107_542_399_000), "2100-02-28T23"); // 2100 is no leap year
        assert_eq!(day(4_107_542_400_000), "2100-03-01T00");
        assert_eq!(day(253_402_300_799_999), "9999-12-31T23");
    }
}
