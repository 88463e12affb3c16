//! `XPROCESS.PATCH`, the text form of an index change: how every change of
//! an index reaches replicas and the AOF (inside the MULTI/EXEC of the call
//! that made it), and how an AOF rewrite writes a whole index.
//!
//! ```text
//! XPROCESS.PATCH key stream recorded lost lo hi [start end gap ...]
//! ```
//! Replaces the ranges within `lo..=hi` with the given ones and sets the
//! counters: explicit values only, so replaying it needs no stream and gives
//! the same index on every server.

use super::ranges::{Index, Patch, Range};
use crate::numbers::parse_u64_digits;
use crate::parse::StreamId;

pub const COMMAND: &str = "XPROCESS.PATCH";

/// Ranges per command when an AOF rewrite writes a whole index.
const AOF_CHUNK: usize = 512;

/// The arguments after the command name.
pub fn to_args(key: &[u8], stream: &[u8], patch: &Patch) -> Vec<Vec<u8>> {
    let mut args = Vec::with_capacity(6 + 3 * patch.ranges.len());
    args.push(key.to_vec());
    args.push(stream.to_vec());
    args.push(patch.recorded.to_string().into_bytes());
    args.push(patch.lost.to_string().into_bytes());
    args.push(patch.lo.text().as_bytes().to_vec());
    args.push(patch.hi.text().as_bytes().to_vec());
    for r in &patch.ranges {
        args.push(r.start.text().as_bytes().to_vec());
        args.push(r.end.text().as_bytes().to_vec());
        args.push(r.gap.to_string().into_bytes());
    }
    args
}

/// A parsed `XPROCESS.PATCH` (arguments after the command name).
pub struct Parsed<'a> {
    pub key: &'a [u8],
    pub stream: &'a [u8],
    pub patch: Patch,
}

pub fn parse<'a>(args: &[&'a [u8]]) -> Result<Parsed<'a>, &'static str> {
    const BAD: &str = "ERR invalid XPROCESS.PATCH arguments";
    if args.len() < 6 || !(args.len() - 6).is_multiple_of(3) {
        return Err(BAD);
    }
    let num = |a: &[u8]| parse_u64_digits(a).ok_or(BAD);
    let id = |a: &[u8]| StreamId::parse(a).ok_or(BAD);
    let ranges = args[6..]
        .chunks(3)
        .map(|r| {
            Ok(Range {
                start: id(r[0])?,
                end: id(r[1])?,
                gap: num(r[2])?,
            })
        })
        .collect::<Result<Vec<_>, &str>>()?;
    Ok(Parsed {
        key: args[0],
        stream: args[1],
        patch: Patch {
            recorded: num(args[2])?,
            lost: num(args[3])?,
            lo: id(args[4])?,
            hi: id(args[5])?,
            ranges,
        },
    })
}

/// A whole index as patches that rebuild it from nothing, in order.
pub fn rebuild(index: &Index) -> Vec<Patch> {
    let chunks: Vec<&[Range]> = index.ranges().chunks(AOF_CHUNK).collect();
    if chunks.is_empty() {
        let zero = StreamId { ms: 0, seq: 0 };
        return vec![patch_of(zero, zero, &[], index)];
    }
    chunks
        .iter()
        .map(|c| patch_of(c[0].start, c[c.len() - 1].end, c, index))
        .collect()
}

fn patch_of(lo: StreamId, hi: StreamId, ranges: &[Range], index: &Index) -> Patch {
    Patch {
        lo,
        hi,
        ranges: ranges.to_vec(),
        recorded: index.recorded,
        lost: index.lost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::ranges::tests::{id, MemStream};
    use crate::index::ranges::Touched;

    #[test]
    fn args_round_trip_and_rebuild_gives_the_same_index() {
        let mut s = MemStream((1..=3000).map(id).collect());
        let mut index = Index::new(b"st");
        for ms in (1..=3000).filter(|ms| ms % 3 != 0) {
            index.record(id(ms), &mut s, &mut Touched::default());
        }
        let patches = rebuild(&index);
        assert_eq!(patches.len(), 2, "1000 ranges in chunks of 512");
        let mut copy = Index::new(b"st");
        for p in &patches {
            let args = to_args(b"k", b"st", p);
            let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let parsed = parse(&argv).unwrap();
            assert_eq!((parsed.key, parsed.stream), (&b"k"[..], &b"st"[..]));
            assert_eq!(&parsed.patch, p);
            copy.apply(&parsed.patch).unwrap();
        }
        assert_eq!(copy, index);
        let empty = Index::new(b"st");
        let mut copy = Index::new(b"st");
        for p in rebuild(&empty) {
            copy.apply(&p).unwrap();
        }
        assert_eq!(copy, empty);
    }

    #[test]
    fn malformed_arguments_are_refused() {
        for bad in [
            "k s 1 0 1-0",
            "k s 1 0 1-0 2-0 1-0",
            "k s x 0 1-0 2-0",
            "k s 1 0 1-0 + 1-0 2-0 0",
            "k s 1 0 1-0 2-0 1-0 2-0 -1",
        ] {
            let argv: Vec<&[u8]> = bad.split(' ').map(str::as_bytes).collect();
            assert!(parse(&argv).is_err(), "{bad}");
        }
    }
}
