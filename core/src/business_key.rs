//! Business keys of entries (`KEY template`): the key's 128-bit xxh3 and the
//! payload fingerprint a retry must match. Pure.
//!
//! The fingerprint covers what determines the effect: by default the values
//! of the fields the call's effect templates read (so a retry that differs
//! only in, say, a `sent_at` field is still a retry; `$@id` is not a field,
//! a retry has another ID), or the fields `FINGERPRINT` names, or with
//! `FINGERPRINT ENTRY` every field/value pair. It is the low 32 bits of an
//! xxh3-64 over length-prefixed names and values.

use crate::condition::Condition;
use crate::entry::Entry;
use crate::errors::ReplyError;
use crate::request::{Effect, FingerprintOf, Request};
use crate::template::Arg;
use std::cell::RefCell;
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

/// What one call fingerprints, worked out once per call.
pub enum Fingerprinter<'a> {
    Fields(Vec<&'a [u8]>),
    Entry,
}

impl<'a> Fingerprinter<'a> {
    pub fn of(req: &Request<'a>, of: &FingerprintOf<'a>) -> Fingerprinter<'a> {
        match of {
            FingerprintOf::Entry => Fingerprinter::Entry,
            FingerprintOf::Fields(fields) => Fingerprinter::Fields(fields.clone()),
            FingerprintOf::Read => read_by(&req.effects, &req.when),
        }
    }

    /// The fingerprint of `entry`; a named field it lacks is an entry error.
    pub fn fingerprint(&self, entry: &Entry) -> Result<u32, ReplyError> {
        // One-shot xxh3 over a reused buffer: the streaming hasher costs more
        // than the few bytes it would hash.
        BUFFER.with_borrow_mut(|buf| {
            buf.clear();
            let mut pair = |name: &[u8], value: &[u8]| {
                buf.extend_from_slice(&(name.len() as u64).to_le_bytes());
                buf.extend_from_slice(name);
                buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
                buf.extend_from_slice(value);
            };
            match self {
                Fingerprinter::Entry => entry.fields.iter().for_each(|(f, v)| pair(f, v)),
                Fingerprinter::Fields(names) => {
                    for name in names {
                        let value = entry
                            .get(name)
                            .ok_or_else(|| ReplyError::missing_field(entry.id, name))?;
                        pair(name, value);
                    }
                }
            }
            Ok(xxh3_64(buf) as u32)
        })
    }
}

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The fields the effects' templates read (their keys' included), sorted
/// and unique; every field when an XADD copies the whole entry.
fn read_by<'a>(effects: &[Effect<'a>], when: &[Vec<Condition<'a>>]) -> Fingerprinter<'a> {
    let mut fields: Vec<&[u8]> = when.iter().flatten().flat_map(Condition::fields).collect();
    let mut add = |arg: &Arg<'a>| fields.extend(arg.fields());
    for effect in effects {
        effect.keys().iter().for_each(&mut add);
        match effect.args() {
            Some(args) => args.into_iter().for_each(&mut add),
            None => return Fingerprinter::Entry,
        }
    }
    fields.sort_unstable();
    fields.dedup();
    Fingerprinter::Fields(fields)
}

/// The 128-bit xxh3 a business key is remembered by.
pub fn key_hash(key: &[u8]) -> u128 {
    xxh3_128(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn plan_of(cmd: &str) -> (Request<'_>, Vec<&[u8]>) {
        let argv: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
        let req = parse(&argv).unwrap();
        let of = req.business_key.as_ref().unwrap().fingerprint.clone();
        let fields = match Fingerprinter::of(&req, &of) {
            Fingerprinter::Fields(f) => f,
            Fingerprinter::Entry => vec![b"*".as_slice()],
        };
        (req, fields)
    }

    #[test]
    fn the_default_covers_the_fields_the_effects_read() {
        let (_, f) = plan_of("XPROCESS s g KEY $pid HINCRBY t $cust $amount SADD u $cust IDS 1 1");
        assert_eq!(f, vec![b"amount".as_slice(), b"cust"]);
        let (_, f) = plan_of("XPROCESS s g KEY $pid XADD o FIELDS 1 id $@id IDS 1 1");
        assert!(f.is_empty(), "$@id is not a field");
        let (_, f) = plan_of("XPROCESS s g KEY $pid XADD o ENTRY IDS 1 1");
        assert_eq!(f, vec![b"*".as_slice()]);
        let (_, f) = plan_of("XPROCESS s g KEY $pid FINGERPRINT 2 b a SADD u x IDS 1 1");
        assert_eq!(f, vec![b"b".as_slice(), b"a"]);
    }

    #[test]
    fn fingerprints_see_only_what_they_cover() {
        let plan = Fingerprinter::Fields(vec![b"amount"]);
        let a: [(&[u8], &[u8]); 2] = [(b"amount", b"10"), (b"sent_at", b"1")];
        let b: [(&[u8], &[u8]); 2] = [(b"sent_at", b"2"), (b"amount", b"10")];
        let c: [(&[u8], &[u8]); 1] = [(b"amount", b"11")];
        let fp = |fields| plan.fingerprint(&Entry { id: "1-0", fields }).unwrap();
        assert_eq!(fp(&a), fp(&b));
        assert_ne!(fp(&a), fp(&c));
        let missing: [(&[u8], &[u8]); 0] = [];
        let err = plan.fingerprint(&Entry {
            id: "1-0",
            fields: &missing,
        });
        assert_eq!(
            err.unwrap_err().as_str(),
            "ERR entry 1-0 has no field 'amount'"
        );
        // Length prefixes: ("ab", "c") is not ("a", "bc").
        let whole = Fingerprinter::Entry;
        let x: [(&[u8], &[u8]); 1] = [(b"ab", b"c")];
        let y: [(&[u8], &[u8]); 1] = [(b"a", b"bc")];
        let fpw = |fields| whole.fingerprint(&Entry { id: "1-0", fields }).unwrap();
        assert_ne!(fpw(&x), fpw(&y));
    }
}
