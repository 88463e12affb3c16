//! Stream entry IDs (`ms-seq`) and their text.

use crate::numbers::{format_u64, parse_u64_digits};
use std::fmt;

/// A stream entry ID (`ms-seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// Strict form accepted by XACK: `ms-seq` or `ms` (seq 0); no `-`, `+`, `$`.
    pub fn parse(s: &[u8]) -> Option<StreamId> {
        let (ms, seq) = match s.iter().position(|&b| b == b'-') {
            Some(dash) => (&s[..dash], Some(&s[dash + 1..])),
            None => (s, None),
        };
        let ms = parse_u64_digits(ms)?;
        let seq = match seq {
            Some(seq) => parse_u64_digits(seq)?,
            None => 0,
        };
        Some(StreamId { ms, seq })
    }

    /// The next ID an auto-generated XADD could take at the earliest.
    pub fn next(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (u64::MAX, u64::MAX) => None,
            (ms, u64::MAX) => Some(StreamId { ms: ms + 1, seq: 0 }),
            (ms, seq) => Some(StreamId { ms, seq: seq + 1 }),
        }
    }

    /// The ID just below this one, `None` for `0-0`.
    pub fn prev(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (0, 0) => None,
            (ms, 0) => Some(StreamId {
                ms: ms - 1,
                seq: u64::MAX,
            }),
            (ms, seq) => Some(StreamId { ms, seq: seq - 1 }),
        }
    }
}

impl StreamId {
    /// `ms-seq` text, formatted on the stack (IDs are formatted several
    /// times per entry: for SMISMEMBER, SADD, XACK and `$@id`).
    pub fn text(self) -> IdText {
        let mut out = IdText {
            buf: [0; 41],
            len: 0,
        };
        out.push_u64(self.ms);
        out.buf[out.len] = b'-';
        out.len += 1;
        out.push_u64(self.seq);
        out
    }
}

/// The text of a [`StreamId`]: at most 20 + 1 + 20 bytes.
#[derive(Clone, Copy)]
pub struct IdText {
    buf: [u8; 41],
    len: usize,
}

impl IdText {
    fn push_u64(&mut self, n: u64) {
        let mut buf = [0; 20];
        let digits = format_u64(n, &mut buf);
        self.buf[self.len..self.len + digits.len()].copy_from_slice(digits);
        self.len += digits.len();
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and '-' are ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}
