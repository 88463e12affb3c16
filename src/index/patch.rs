//! `XPROCESS.PATCH`, an index change as a command: how every change of an
//! index reaches replicas and the AOF (inside the MULTI/EXEC of the call that
//! made it), and how an AOF rewrite writes a whole index.
//!
//! ```text
//! XPROCESS.PATCH key stream payload
//! ```
//! Replaces the ranges within `lo..=hi` with the given ones and sets the
//! counters: explicit values only, so replaying it needs no stream and gives
//! the same index on every server. The payload is binary (a version byte,
//! then little-endian u64s: recorded, lost, lo-ms, lo-seq, hi-ms, hi-seq,
//! then start-ms, start-seq, end-ms, end-seq, gap per range): one argument
//! instead of three per range keeps replicating a call cheap.

use super::ranges::{Index, Patch, Range};
use crate::parse::StreamId;
use redis_module::{raw, Context};
use std::cell::RefCell;

pub const COMMAND: &str = "XPROCESS.PATCH";

/// The payload's format version (its first byte).
const VERSION: u8 = 1;
const HEADER: usize = 1 + 6 * 8;
const RANGE: usize = 5 * 8;

/// Ranges per command when an AOF rewrite writes a whole index.
const AOF_CHUNK: usize = 1024;

/// The arguments after the command name.
pub fn to_args(key: &[u8], stream: &[u8], patch: &Patch) -> [Vec<u8>; 3] {
    let mut payload = Vec::new();
    write_payload(patch, &mut payload);
    [key.to_vec(), stream.to_vec(), payload]
}

/// The binary payload of `patch`, appended to `out`.
fn write_payload(patch: &Patch, out: &mut Vec<u8>) {
    out.reserve(HEADER + RANGE * patch.ranges.len());
    out.push(VERSION);
    let header = [
        patch.recorded,
        patch.lost,
        patch.lo.ms,
        patch.lo.seq,
        patch.hi.ms,
        patch.hi.seq,
    ];
    for n in header {
        out.extend_from_slice(&n.to_le_bytes());
    }
    for r in &patch.ranges {
        for n in [r.start.ms, r.start.seq, r.end.ms, r.end.seq, r.gap] {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

thread_local! {
    /// The payload buffer, reused: replicating a call allocates nothing here.
    static PAYLOAD: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Replicate `XPROCESS.PATCH key stream payload` (into the current call's
/// MULTI/EXEC). The buffers go to Redis as they are (`b` format): no
/// intermediate module strings.
pub fn replicate(ctx: &Context, key: &[u8], stream: &[u8], patch: &Patch) {
    PAYLOAD.with_borrow_mut(|payload| {
        payload.clear();
        write_payload(patch, payload);
        // SAFETY: three (pointer, length) pairs for "bbb"; Redis copies them.
        unsafe {
            raw::RedisModule_Replicate.unwrap()(
                ctx.ctx,
                c"XPROCESS.PATCH".as_ptr(),
                c"bbb".as_ptr(),
                key.as_ptr(),
                key.len(),
                stream.as_ptr(),
                stream.len(),
                payload.as_ptr(),
                payload.len(),
            );
        }
    });
}

/// A parsed `XPROCESS.PATCH` (arguments after the command name).
pub struct Parsed<'a> {
    pub key: &'a [u8],
    pub stream: &'a [u8],
    pub patch: Patch,
}

pub fn parse<'a>(args: &[&'a [u8]]) -> Result<Parsed<'a>, &'static str> {
    const BAD: &str = "ERR invalid XPROCESS.PATCH arguments";
    let [key, stream, payload] = args else {
        return Err(BAD);
    };
    let body = match payload.split_first() {
        Some((&VERSION, body)) if body.len() >= HEADER - 1 => body,
        _ => return Err(BAD),
    };
    if !(body.len() - (HEADER - 1)).is_multiple_of(RANGE) {
        return Err(BAD);
    }
    let mut words = body
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()));
    let mut next = || words.next().unwrap_or_default();
    let (recorded, lost) = (next(), next());
    let lo = StreamId {
        ms: next(),
        seq: next(),
    };
    let hi = StreamId {
        ms: next(),
        seq: next(),
    };
    let count = (body.len() - (HEADER - 1)) / RANGE;
    let ranges = (0..count)
        .map(|_| Range {
            start: StreamId {
                ms: next(),
                seq: next(),
            },
            end: StreamId {
                ms: next(),
                seq: next(),
            },
            gap: next(),
        })
        .collect();
    Ok(Parsed {
        key,
        stream,
        patch: Patch {
            lo,
            hi,
            ranges,
            recorded,
            lost,
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
        let mut s = MemStream((1..=9000).map(id).collect());
        let mut index = Index::new(b"st");
        for ms in (1..=9000).filter(|ms| ms % 3 != 0) {
            index.record(id(ms), &mut s, &mut Touched::default());
        }
        let patches = rebuild(&index);
        assert_eq!(patches.len(), 3, "3000 ranges in chunks of 1024");
        let mut copy = Index::new(b"st");
        for p in &patches {
            let args = to_args(b"k", b"st", p);
            let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            assert_eq!(argv.len(), 3);
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
        let good = to_args(b"k", b"s", &rebuild(&Index::new(b"s"))[0]);
        let argv = |payload: &[u8]| parse(&[b"k", b"s", payload]).is_err();
        assert!(!argv(&good[2]));
        assert!(argv(&good[2][..good[2].len() - 1]), "truncated");
        assert!(
            argv(&[good[2].as_slice(), &[0; 39]].concat()),
            "part of a range"
        );
        assert!(
            argv(&[&[2u8][..], &good[2][1..]].concat()),
            "unknown version"
        );
        assert!(argv(b""));
        assert!(parse(&[b"k", b"s"]).is_err());
        assert!(parse(&[b"k", b"s", &good[2], b"x"]).is_err());
    }
}
