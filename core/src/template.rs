//! Templates: effect arguments taken from the entry being processed.
//!
//! `$name` is the entry's field `name`, `$@id` the entry's ID, `$$x` the
//! literal `$x`; anything else is literal. Key names are never templates.

use crate::entry::Entry;
use crate::errors::{self, ReplyError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    Literal(&'a [u8]),
    Field(&'a [u8]),
    EntryId,
}

impl<'a> Arg<'a> {
    pub fn parse(arg: &'a [u8]) -> Result<Arg<'a>, ReplyError> {
        Ok(match arg {
            [b'$', b'$', ..] => Arg::Literal(&arg[1..]),
            [b'$', b'@', meta @ ..] if meta == b"id" => Arg::EntryId,
            [b'$', b'@', ..] => return Err(errors::UNKNOWN_METADATA.into()),
            [b'$', field @ ..] => Arg::Field(field),
            _ => Arg::Literal(arg),
        })
    }

    /// The bytes this argument stands for in `entry`.
    pub fn expand<'r>(&self, entry: &Entry<'r>) -> Result<&'r [u8], ReplyError>
    where
        'a: 'r,
    {
        match *self {
            Arg::Literal(bytes) => Ok(bytes),
            Arg::EntryId => Ok(entry.id.as_bytes()),
            Arg::Field(name) => entry
                .get(name)
                .ok_or_else(|| ReplyError::missing_field(entry.id, name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_recognises_each_form() {
        assert_eq!(Arg::parse(b"plain").unwrap(), Arg::Literal(b"plain"));
        assert_eq!(Arg::parse(b"$amount").unwrap(), Arg::Field(b"amount"));
        assert_eq!(Arg::parse(b"$").unwrap(), Arg::Field(b""));
        assert_eq!(Arg::parse(b"$$amount").unwrap(), Arg::Literal(b"$amount"));
        assert_eq!(Arg::parse(b"$$").unwrap(), Arg::Literal(b"$"));
        assert_eq!(Arg::parse(b"$@id").unwrap(), Arg::EntryId);
        assert_eq!(Arg::parse(b"a$b").unwrap(), Arg::Literal(b"a$b"));
        assert!(Arg::parse(b"$@ID").is_err());
        assert!(Arg::parse(b"$@").is_err());
    }

    #[test]
    fn expand_reads_the_entry() {
        let fields: [(&[u8], &[u8]); 3] = [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")];
        let entry = Entry {
            id: "5-1",
            fields: &fields,
        };
        assert_eq!(Arg::Field(b"b").expand(&entry).unwrap(), b"2");
        assert_eq!(Arg::Field(b"a").expand(&entry).unwrap(), b"3");
        assert_eq!(Arg::EntryId.expand(&entry).unwrap(), b"5-1");
        assert_eq!(Arg::Literal(b"x").expand(&entry).unwrap(), b"x");
        assert_eq!(
            Arg::Field(b"zz").expand(&entry).unwrap_err().as_str(),
            "ERR entry 5-1 has no field 'zz'"
        );
    }
}
