//! RESP3: the same reply array of integers and nested errors.

mod common;

use common::*;
use redis::Value;

fn two_streams(con: &mut redis::Connection) {
    for stream in ["s2", "s3"] {
        xadd_id(con, stream, "1-1", &[("user", "a"), ("amount", "1")]);
        xadd_id(con, stream, "1-2", &[("user", "b")]);
        q::<String>(con, &["XGROUP", "CREATE", stream, "g", "0"]);
    }
}

#[test]
fn resp3_reply_matches_resp2() {
    let srv = Server::start();
    let mut c2 = srv.conn();
    let mut c3 = srv.conn_resp3();
    // Really RESP3: a hash comes back as a map.
    q::<i64>(&mut c2, &["HSET", "h", "f", "v"]);
    assert!(matches!(
        q::<Value>(&mut c3, &["HGETALL", "h"]),
        Value::Map(_)
    ));
    two_streams(&mut c2);
    let args = |s: &'static str| {
        [
            s, "g", "HINCRBY", "t", "$user", "$amount", "IDS", "4", "1-1", "1-1", "1-2", "9-9",
        ]
    };
    let r2 = xprocess(&mut c2, &args("s2"));
    let r3 = xprocess(&mut c3, &args("s3"));
    let want = [
        "1",
        "0",
        "ERR entry 1-2 has no field 'amount'",
        "ERR entry 9-9 not found in the stream",
    ];
    assert_eq!(slots(&r2), want);
    assert_eq!(slots(&r3), want);
    assert_eq!(r2, r3);
    // Whole-call errors too.
    let e = xprocess(&mut c3, &["nope", "g", "SADD", "s", "m", "IDS", "1", "1-1"]);
    assert_eq!(err(&e), "NOGROUP No such key 'nope' or consumer group 'g'");
    assert!(matches!(
        xprocess(&mut c3, &["s3", "g", "SADD", "x", "m", "IDS", "1", "1-1"]),
        Value::Array(_)
    ));
}

#[test]
fn resp3_wire_format() {
    let srv = Server::start();
    let mut con = srv.conn();
    xadd_id(&mut con, "s", "1-1", &[("user", "a"), ("amount", "1")]);
    xadd_id(&mut con, "s", "1-2", &[("user", "b")]);
    q::<String>(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]);

    let mut sock = srv.tcp();
    let hello = raw_roundtrip(&mut sock, &["HELLO", "3"]);
    assert_eq!(hello[0], b'%', "HELLO 3 did not answer a map");
    let reply = raw_roundtrip(
        &mut sock,
        &[
            "XPROCESS", "s", "g", "HINCRBY", "t", "$user", "$amount", "IDS", "3", "1-1", "1-1",
            "1-2",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "*3\r\n:1\r\n:0\r\n-ERR entry 1-2 has no field 'amount'\r\n"
    );
    // A field name with CR LF is escaped: the error stays one line.
    let reply = raw_roundtrip(
        &mut sock,
        &[
            "XPROCESS", "s", "g", "SADD", "x", "$a\r\nb", "IDS", "1", "1-2",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "*1\r\n-ERR entry 1-2 has no field 'a??b'\r\n"
    );
    let reply = raw_roundtrip(
        &mut sock,
        &["XPROCESS", "nope", "g", "SADD", "x", "m", "IDS", "1", "1-1"],
    );
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "-NOGROUP No such key 'nope' or consumer group 'g'\r\n"
    );
}
