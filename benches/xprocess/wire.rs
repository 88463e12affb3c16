//! Raw RESP over a TcpStream: the fastest client path. A writer thread streams
//! the whole prepared command buffer while the reader counts replies, so the
//! server never waits for the client (like `redis-cli --pipe`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Append one command as a RESP array of bulk strings.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// What a stream of replies contained.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Top-level replies.
    pub replies: u64,
    /// Error values at any depth.
    pub errors: u64,
    /// Sum of integer values at any depth.
    pub int_sum: i64,
}

impl Summary {
    fn add(&mut self, o: Summary) {
        self.replies += o.replies;
        self.errors += o.errors;
        self.int_sum += o.int_sum;
    }
}

fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[1..end], end + 2))
}

fn int(digits: &[u8]) -> i64 {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad RESP number {:?}", String::from_utf8_lossy(digits)))
}

/// Parse one complete RESP2 value at the start of `buf`: its length and what
/// it held (`replies` is 0 here). `None` if incomplete.
pub fn parse(buf: &[u8]) -> Option<(usize, Summary)> {
    let (head, after) = line(buf)?;
    let mut s = Summary::default();
    match buf[0] {
        b'+' => Some((after, s)),
        b'-' => {
            s.errors = 1;
            Some((after, s))
        }
        b':' => {
            s.int_sum = int(head);
            Some((after, s))
        }
        b'$' => {
            let n = int(head);
            let end = if n < 0 { after } else { after + n as usize + 2 };
            (buf.len() >= end).then_some((end, s))
        }
        b'*' => {
            let mut pos = after;
            for _ in 0..int(head).max(0) {
                let (len, inner) = parse(&buf[pos..])?;
                s.add(inner);
                pos += len;
            }
            Some((pos, s))
        }
        other => panic!("unexpected RESP type byte {:?}", other as char),
    }
}

pub fn connect(port: u16) -> TcpStream {
    let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_nodelay(true).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    sock
}

/// Read until `count` top-level replies have arrived.
fn read_replies(sock: &mut TcpStream, count: u64) -> Summary {
    let mut total = Summary::default();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 1 << 20];
    while total.replies < count {
        let n = sock.read(&mut chunk).expect("read replies");
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let mut pos = 0;
        while total.replies < count {
            let Some((len, s)) = parse(&buf[pos..]) else {
                break;
            };
            total.add(Summary { replies: 1, ..s });
            pos += len;
        }
        buf.drain(..pos);
    }
    assert!(buf.is_empty(), "unexpected extra reply bytes");
    total
}

/// Send `payload` (holding `count` commands) on a fresh connection, writing
/// from a second thread, and read all replies. Returns the wall time from
/// the first byte written to the last reply read.
pub fn pipeline(port: u16, payload: &[u8], count: u64) -> (Duration, Summary) {
    let mut reader = connect(port);
    let mut writer = reader.try_clone().unwrap();
    std::thread::scope(|scope| {
        let start = Instant::now();
        scope.spawn(move || {
            for chunk in payload.chunks(64 * 1024) {
                writer.write_all(chunk).expect("write commands");
            }
        });
        let summary = read_replies(&mut reader, count);
        (start.elapsed(), summary)
    })
}

/// Write `chunks` on `sock` from a second thread, each in one write, while
/// this thread reads the `count` replies to the commands in them (a producer
/// that never waits for the server). Returns the time from `start` to the
/// last reply.
pub fn produce(
    sock: TcpStream,
    chunks: &[Vec<u8>],
    count: u64,
    start: Instant,
) -> (Duration, Summary) {
    let mut reader = sock;
    let mut writer = reader.try_clone().unwrap();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for chunk in chunks {
                writer.write_all(chunk).expect("write commands");
            }
        });
        let summary = read_replies(&mut reader, count);
        (start.elapsed(), summary)
    })
}

/// Round-trip times of `units`, sent one after the other on one connection;
/// each unit is `(bytes, commands in it)` (a unit of several commands is one
/// write and one wait, e.g. the naive pipeline of one entry).
pub fn latencies(port: u16, units: &[(Vec<u8>, u64)]) -> (Vec<Duration>, Summary) {
    let mut sock = connect(port);
    let mut total = Summary::default();
    let times = units
        .iter()
        .map(|(bytes, count)| {
            let start = Instant::now();
            sock.write_all(bytes).expect("write command");
            total.add(read_replies(&mut sock, *count));
            start.elapsed()
        })
        .collect();
    (times, total)
}

/// One RESP2 value, borrowing its strings from the read buffer.
#[derive(Debug)]
pub enum Resp<'a> {
    /// A status reply (`+OK`, or a map's field name in RESP2 from some
    /// commands, e.g. READ ... REPLY COUNTS).
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Int(i64),
    /// `None`: the null bulk string.
    Bulk(Option<&'a [u8]>),
    /// `None`: the null array (e.g. XREADGROUP with nothing to read).
    Array(Option<Vec<Resp<'a>>>),
}

impl Resp<'_> {
    /// The elements of an array; the null array has none.
    pub fn items(&self) -> &[Resp<'_>] {
        match self {
            Resp::Array(Some(items)) => items,
            Resp::Array(None) => &[],
            other => other.unexpected("an array"),
        }
    }

    pub fn bulk(&self) -> &[u8] {
        match self {
            Resp::Bulk(Some(b)) => b,
            other => other.unexpected("a bulk string"),
        }
    }

    /// The text of a bulk string or a status reply.
    pub fn text(&self) -> &[u8] {
        match self {
            Resp::Bulk(Some(b)) | Resp::Simple(b) => b,
            other => other.unexpected("a string"),
        }
    }

    fn unexpected(&self, wanted: &str) -> ! {
        match self {
            Resp::Error(e) => panic!(
                "expected {wanted}, got the error {}",
                String::from_utf8_lossy(e)
            ),
            other => panic!("expected {wanted}, got {other:?}"),
        }
    }
}

/// Parse one complete RESP2 value at the start of `buf`: its length and the
/// value. `None` if incomplete.
pub fn parse_value(buf: &[u8]) -> Option<(usize, Resp<'_>)> {
    let (head, after) = line(buf)?;
    match buf[0] {
        b'+' => Some((after, Resp::Simple(head))),
        b'-' => Some((after, Resp::Error(head))),
        b':' => Some((after, Resp::Int(int(head)))),
        b'$' => {
            let n = int(head);
            if n < 0 {
                return Some((after, Resp::Bulk(None)));
            }
            let end = after + n as usize;
            (buf.len() >= end + 2).then(|| (end + 2, Resp::Bulk(Some(&buf[after..end]))))
        }
        b'*' => {
            let n = int(head);
            if n < 0 {
                return Some((after, Resp::Array(None)));
            }
            let mut items = Vec::with_capacity(n as usize);
            let mut pos = after;
            for _ in 0..n {
                let (len, item) = parse_value(&buf[pos..])?;
                items.push(item);
                pos += len;
            }
            Some((pos, Resp::Array(Some(items))))
        }
        other => panic!("unexpected RESP type byte {:?}", other as char),
    }
}

/// A connection for a request/reply loop: write a request, read its replies
/// one at a time (the worker loops of consumer_loop.rs).
pub struct Conn {
    sock: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` already parsed.
    pos: usize,
}

impl Conn {
    pub fn new(port: u16) -> Conn {
        Conn {
            sock: connect(port),
            buf: Vec::with_capacity(1 << 20),
            pos: 0,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).expect("write request");
    }

    /// Wait for the next reply and hand it to `f`.
    pub fn reply<T>(&mut self, f: impl FnOnce(&Resp<'_>) -> T) -> T {
        loop {
            if let Some((len, value)) = parse_value(&self.buf[self.pos..]) {
                let out = f(&value);
                self.pos += len;
                return out;
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            let have = self.buf.len();
            self.buf.resize(have + (64 << 10), 0);
            let n = self.sock.read(&mut self.buf[have..]).expect("read reply");
            assert!(n > 0, "server closed the connection");
            self.buf.truncate(have + n);
        }
    }
}
