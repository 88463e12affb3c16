//! Every effect against the native command it is named after: the same
//! result (DEBUG DIGEST-VALUE, TTL or not), the same error reply when the
//! native command fails, and then nothing of the entry applied. An entry's
//! effects see each other as the native commands in a row would; a call's
//! deferred HINCRBY results never go stale under a later native write.

mod common;

use common::*;
use redis::Connection;

const STREAM: &str = "{o}orders";

/// One entry whose field `p` is `x`, so `${p}:k` is `x:k`: the effects run
/// on `x:...` keys, the native commands on `n:...`.
const FIELDS: &[(&str, &str)] = &[
    ("p", "x"),
    ("amt", "5"),
    ("m", "alice"),
    ("big", "9223372036854775807"),
];

/// `XPROCESS` with `effects` for one new entry, the slot of its reply.
fn process_one(con: &mut Connection, effects: &str) -> String {
    let ids = pending(con, STREAM, "g", "c1", &[FIELDS]);
    let mut args = vec![STREAM, "g", "DEDUPE", "{o}dd"];
    args.extend(effects.split(' '));
    args.extend(["IDS", "1", &ids[0]]);
    let reply = xprocess(con, &args);
    slots(&reply).remove(0)
}

/// Run native commands (`;`-separated) in a row; the first error, if any.
fn native(con: &mut Connection, commands: &str) -> Option<String> {
    for command in commands.split(" ; ").filter(|c| !c.is_empty()) {
        let args: Vec<&str> = command.split(' ').collect();
        if let Some(e) = error_text(&call(con, &args)) {
            return Some(e);
        }
    }
    None
}

/// A key's picture: its type, whether it expires, its digest.
fn picture(con: &mut Connection, key: &str) -> (String, bool, String) {
    let kind: String = q(con, &["TYPE", key]);
    let ttl: i64 = q(con, &["PTTL", key]);
    let digest = digest_value(con, &[key]).remove(0);
    (kind, ttl > 0, digest)
}

/// `setup` on both keys, then the effects (with `K` as `${p}:k`) and the
/// native commands (with `K` as `n:k`); both must end the same.
fn same_as_native(con: &mut Connection, setup: &str, effects: &str) {
    native(con, "DEL x:k n:k");
    assert_eq!(native(con, &setup.replace('K', "x:k")), None, "{setup}");
    native(con, &setup.replace('K', "n:k"));
    let before = picture(con, "x:k");
    let slot = process_one(con, &effects.replace('K', "${p}:k"));
    let expected = native(con, &native_form(effects));
    match expected {
        None => {
            assert_eq!(slot, "1", "{setup} / {effects}");
            assert_eq!(
                picture(con, "x:k"),
                picture(con, "n:k"),
                "{setup} / {effects}"
            );
        }
        Some(error) => {
            assert_eq!(slot, error, "{setup} / {effects}");
            assert_eq!(
                picture(con, "x:k"),
                before,
                "entry applied in part: {effects}"
            );
        }
    }
}

/// The native commands an effect list stands for (with the entry's fields
/// written out): `HSET key FIELDS n f v ...` is `HSET key f v ...`.
fn native_form(effects: &str) -> String {
    let mut commands: Vec<Vec<&str>> = Vec::new();
    let mut words = effects.split(' ').peekable();
    while let Some(word) = words.next() {
        if word.chars().all(|c| c.is_ascii_uppercase()) && word.len() > 2 && is_effect(word) {
            commands.push(vec![word]);
        } else if word == "FIELDS" && commands.last().is_some_and(|c| c[0] == "HSET") {
            words.next(); // numpairs
        } else {
            let value = match word {
                "$amt" => "5",
                "-$amt" => "-5",
                "$m" => "alice",
                "$big" => "9223372036854775807",
                other => other,
            };
            commands.last_mut().unwrap().push(value);
        }
    }
    let commands: Vec<String> = commands.iter().map(|c| c.join(" ")).collect();
    commands.join(" ; ").replace('K', "n:k")
}

fn is_effect(word: &str) -> bool {
    [
        "HINCRBY",
        "HINCRBYFLOAT",
        "HSET",
        "HSETNX",
        "HDEL",
        "SET",
        "INCRBY",
        "INCRBYFLOAT",
        "DEL",
        "SADD",
        "SREM",
        "ZADD",
        "ZINCRBY",
        "ZREM",
        "PFADD",
        "LPUSH",
        "RPUSH",
        "PEXPIRE",
    ]
    .contains(&word)
}

const HLL: &str = "PFADD K a b c";

/// (setup, effects): one case each, the effects as native as can be.
const CASES: &[(&str, &str)] = &[
    ("", "INCRBY K $amt"),
    ("SET K 10", "INCRBY K -$amt"),
    ("SET K abc", "INCRBY K 1"),
    ("SET K 9223372036854775807", "INCRBY K 1"),
    ("SET K 1", "INCRBY K $big"),
    ("HSET K f 1", "INCRBY K 1"),
    ("SET K 2", "INCRBYFLOAT K 1.5"),
    ("SET K 1e308", "INCRBYFLOAT K -inf"),
    ("", "INCRBYFLOAT K inf"),
    ("", "INCRBYFLOAT K abc"),
    ("", "SET K $m"),
    ("SET K old", "SET K $m NX"),
    ("", "SET K $m XX"),
    ("SET K old", "SET K $m XX PX 100000"),
    ("HSET K f 1", "SET K $m"),
    ("", "SET K v PX 0"),
    ("", "SET K v PX abc"),
    ("", "SET K v PX 9223372036854775807"),
    ("", "HSET K FIELDS 2 a $amt b $m"),
    ("HSET K a 1 c 3", "HSET K FIELDS 1 a 2"),
    ("SET K s", "HSET K FIELDS 1 a 2"),
    ("HSET K a 1", "HSETNX K a 9"),
    ("HSET K a 1", "HSETNX K b 9"),
    ("HSET K a 1 b 2", "HDEL K a"),
    ("HSET K a 1", "HDEL K a"),
    ("SET K s", "HDEL K a"),
    ("HSET K a 1", "DEL K"),
    ("", "DEL K"),
    ("SADD K a b", "SREM K a"),
    ("SET K s", "SREM K a"),
    ("SET K s", "SADD K a"),
    ("", "ZADD K 5 $m"),
    ("ZADD K 5 alice", "ZADD K NX 7 $m"),
    ("ZADD K 5 alice", "ZADD K XX GT 7 $m"),
    ("ZADD K 5 alice", "ZADD K GT 3 $m"),
    ("ZADD K 5 alice", "ZADD K LT 3 $m"),
    ("", "ZADD K XX 3 $m"),
    ("", "ZADD K abc $m"),
    ("", "ZADD K 1e400 $m"),
    ("ZADD K 5 alice", "ZINCRBY K $amt $m"),
    ("ZADD K +inf alice", "ZINCRBY K -inf $m"),
    ("ZADD K +inf alice", "ZINCRBY K +inf $m"),
    ("", "ZINCRBY K abc $m"),
    ("SET K s", "ZINCRBY K 1 $m"),
    ("ZADD K 1 alice 2 bob", "ZREM K $m"),
    ("ZADD K 1 alice", "ZREM K $m"),
    ("SET K s", "ZREM K $m"),
    ("", "PFADD K $m"),
    (HLL, "PFADD K $m"),
    ("SET K abc", "PFADD K $m"),
    ("SET K HYLLabcdefghijklmnop", "PFADD K $m"),
    ("", "LPUSH K $m"),
    ("RPUSH K a", "RPUSH K $m"),
    ("SET K s", "LPUSH K $m"),
    ("SET K s", "PEXPIRE K 100000"),
    ("SET K s", "PEXPIRE K 0"),
    ("SET K s", "PEXPIRE K -1"),
    ("", "PEXPIRE K 100000"),
    ("SET K s", "PEXPIRE K 9223372036854775807"),
    ("SET K s", "PEXPIRE K abc"),
    ("", "HINCRBY K f $amt"),
    ("HSET K f 1.5", "HINCRBYFLOAT K f $amt"),
    // A sparse HyperLogLog whose opcodes cover no registers.
    ("SET K HYLL\x01\0\0\0\0\0\0\0\0\0\0\0", "PFADD K $m"),
];

#[test]
fn each_effect_ends_as_its_native_command() {
    let server = Server::start();
    let mut con = server.conn();
    for (setup, effects) in CASES {
        same_as_native(&mut con, setup, effects);
    }
}

/// Redis adds floats in `long double`, whose range is wider than a
/// double's; planning computes in `f64`, so a sum past 1.8e308 is refused
/// (with the error Redis gives for an infinite one) although Redis would
/// store it: stricter, never looser, and the entry is left whole.
#[test]
fn float_sums_past_a_double_are_refused() {
    let server = Server::start();
    let mut con = server.conn();
    for effects in ["INCRBYFLOAT K 1e308", "HINCRBYFLOAT K f 1e308"] {
        native(&mut con, "DEL x:k n:k");
        let setup = match effects.starts_with('H') {
            true => "HSET K f 1e308",
            false => "SET K 1e308",
        };
        native(&mut con, &setup.replace('K', "x:k"));
        native(&mut con, &setup.replace('K', "n:k"));
        let before = picture(&mut con, "x:k");
        let slot = process_one(&mut con, &effects.replace('K', "${p}:k"));
        assert_eq!(slot, "ERR increment would produce NaN or Infinity");
        assert_eq!(picture(&mut con, "x:k"), before);
        assert_eq!(
            native(&mut con, &native_form(effects)),
            None,
            "Redis stores it"
        );
    }
}

/// Effects of one entry see the earlier ones as the commands in a row would,
/// and an entry refused by a later effect leaves nothing of the earlier ones.
const SEQUENCES: &[(&str, &str)] = &[
    ("", "SET K 5 INCRBY K 2"),
    ("", "INCRBY K 1 HSET K FIELDS 1 a b"),
    ("HSET K a 1", "DEL K INCRBY K 1"),
    ("", "HSET K FIELDS 1 a x HINCRBY K a 1"),
    ("", "HSET K FIELDS 1 a 7 HINCRBY K a 1"),
    ("", "ZADD K 5 $m ZINCRBY K 1 $m"),
    ("", "ZADD K +inf $m ZINCRBY K -inf $m"),
    ("ZADD K +inf alice", "DEL K ZINCRBY K -inf $m"),
    ("ZADD K 1 alice", "ZADD K GT +inf $m ZINCRBY K -inf $m"),
    ("ZADD K +inf alice", "ZREM K $m ZINCRBY K -inf $m"),
    ("", "SET K abc PFADD K $m"),
    ("", "PFADD K $m INCRBY K 1"),
    ("SET K s", "PEXPIRE K 0 LPUSH K $m"),
    ("SET K s", "PEXPIRE K 100 LPUSH K $m"),
    ("HSET K a 1", "HDEL K a HSETNX K a 2"),
    ("HSET K a 1", "HSETNX K a 2 HINCRBY K a 1"),
    ("", "INCRBYFLOAT K 1.5 INCRBY K 1"),
    ("", "SET K 1 SET K 2 NX"),
    ("", "SET K 9223372036854775806 INCRBY K 1 INCRBY K 1"),
    ("", "RPUSH K a SADD K b"),
    // A key HDEL, SREM or ZREM empties is removed: SET NX then applies.
    (
        "HSET K only 1",
        "HDEL K only SET K v NX HSET K FIELDS 1 a b",
    ),
    ("HSET K only 1", "HDEL K only SET K v NX INCRBY K 1"),
    ("HSET K a 1 b 2", "HDEL K a SET K v NX HSET K FIELDS 1 c d"),
    ("HSET K a 1", "HSET K FIELDS 1 b 2 HDEL K a SET K v NX"),
    ("SADD K only", "SREM K only SET K v NX SADD K m"),
    ("SADD K only", "SADD K m SREM K only SET K v NX"),
    ("SADD K only", "SREM K only SADD K m SET K v XX"),
    ("ZADD K 1 alice", "ZREM K $m SET K v NX ZADD K 1 $m"),
    ("ZADD K 1 alice", "ZREM K $m ZADD K XX 2 $m SET K v NX"),
    ("HSET K only 1", "HDEL K only SADD K m SADD K n"),
];

#[test]
fn an_entrys_effects_see_each_other() {
    let server = Server::start();
    let mut con = server.conn();
    for (setup, effects) in SEQUENCES {
        same_as_native(&mut con, setup, effects);
    }
}

/// A call defers its HINCRBY results to the end; a later native write of
/// the same key (another entry's HSET, DEL, PEXPIRE, HINCRBYFLOAT) must see
/// them land first, as the commands one entry after another would.
#[test]
fn deferred_increments_land_before_later_writes_of_their_key() {
    let server = Server::start();
    let mut con = server.conn();
    let kinds = [
        "add", "add", "float", "add", "set", "add", "ttl", "add", "reset", "add", "add",
    ];
    let rows: Vec<Vec<(&str, &str)>> = kinds.iter().map(|t| vec![("t", *t), ("p", "x")]).collect();
    let rows: Vec<&[(&str, &str)]> = rows.iter().map(Vec::as_slice).collect();
    let ids = pending(&mut con, STREAM, "g", "c1", &rows);
    let effects = "HINCRBY ${p}:h n 1 \
                   WHEN $t = float HINCRBYFLOAT ${p}:h f 0.5 \
                   WHEN $t = set HSET ${p}:h FIELDS 1 n 10 \
                   WHEN $t = ttl PEXPIRE ${p}:h 100000 \
                   WHEN $t = reset DEL ${p}:h";
    let mut args = vec![STREAM, "g", "DEDUPE", "{o}dd"];
    args.extend(effects.split(' '));
    let n = ids.len().to_string();
    args.extend(["IDS", &n]);
    args.extend(ids.iter().map(String::as_str));
    assert!(slots(&xprocess(&mut con, &args)).iter().all(|s| s == "1"));
    for t in kinds {
        native(&mut con, "HINCRBY n:h n 1");
        match t {
            "float" => native(&mut con, "HINCRBYFLOAT n:h f 0.5"),
            "set" => native(&mut con, "HSET n:h n 10"),
            "ttl" => native(&mut con, "PEXPIRE n:h 100000"),
            "reset" => native(&mut con, "DEL n:h"),
            _ => None,
        };
    }
    assert_eq!(picture(&mut con, "x:h"), picture(&mut con, "n:h"));
    assert_eq!(hget(&mut con, "x:h", "n").as_deref(), Some("2"));
}

#[test]
fn effects_may_not_remove_the_calls_own_keys() {
    let server = Server::start();
    let mut con = server.conn();
    pending(&mut con, STREAM, "g", "c1", &[&[("k", STREAM)]]);
    for effect in [
        "DEL {o}orders",
        "SET {o}dd x",
        "PEXPIRE {o}orders 0",
        "SREM {o}dd 1-1",
    ] {
        let mut args = vec![STREAM, "g", "CONSUMER", "c1", "DEDUPE", "{o}dd"];
        args.extend(effect.split(' '));
        args.push("READ");
        assert_eq!(
            err(&xprocess(&mut con, &args)),
            "ERR SET, DEL, PEXPIRE, SREM and FCALL may not target the stream, the dedupe key or the dead-letter key",
            "{effect}"
        );
    }
    let id: Vec<String> = pel(&mut con, STREAM, "g")
        .into_iter()
        .map(|p| p.0)
        .collect();
    let reply = xprocess(
        &mut con,
        &[
            STREAM, "g", "DEDUPE", "{o}dd", "DEL", "$k", "IDS", "1", &id[0],
        ],
    );
    assert!(
        slots(&reply)[0].contains("which is the stream"),
        "{reply:?}"
    );
    assert!(exists(&mut con, STREAM));
}

/// The commands of a call reach a replica and the AOF in their
/// deterministic form: absolute expiry times, no relative ones.
#[test]
fn replicas_and_the_aof_get_absolute_times() {
    let (mut primary, replica) = primary_with_aof_and_replica();
    let mut con = primary.conn();
    let mut rcon = replica.conn();
    wait_replica_synced(&mut con, &mut rcon);
    let effects = "SET ${p}:s $m PX 100000 INCRBYFLOAT ${p}:f 0.1 \
                   ZINCRBY ${p}:z $amt $m PEXPIRE ${p}:z 100000 \
                   HSET ${p}:h FIELDS 1 a $amt HSETNX ${p}:h b 1 HDEL ${p}:h a \
                   LPUSH ${p}:l $m RPUSH ${p}:l $amt PFADD ${p}:p $m \
                   INCRBY ${p}:i $amt SADD ${p}:set $m SREM ${p}:set $m \
                   ZADD ${p}:z2 GT 3 $m DEL ${p}:gone PUBLISH ch $m";
    native(&mut con, "SET x:gone 1");
    for _ in 0..3 {
        assert_eq!(process_one(&mut con, effects), "1");
    }
    wait_replica_synced(&mut con, &mut rcon);
    let expected = digest(&mut con);
    assert_eq!(digest(&mut rcon), expected);
    let ttl: i64 = q(&mut rcon, &["PTTL", "x:s"]);
    assert!(ttl > 0, "replica lost SET PX: {ttl}");
    let aof = aof_text(&primary);
    assert!(
        aof.contains("PXAT") || aof.contains("pxat"),
        "SET PX not absolute"
    );
    assert!(
        aof.to_uppercase().contains("PEXPIREAT"),
        "PEXPIRE not absolute"
    );
    assert!(
        !aof.contains("\r\nPEXPIRE\r\n"),
        "a relative PEXPIRE in the AOF"
    );
    primary.kill9();
    primary.restart();
    let mut con = primary.conn();
    assert_eq!(digest(&mut con), expected);
}

/// Everything in the AOF directory, as text.
fn aof_text(server: &Server) -> String {
    let dir = server.dir().join("appendonlydir");
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        text.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.unwrap().path()).unwrap(),
        ));
    }
    text
}

/// Each effect raises the keyspace events its native command raises.
#[test]
fn effects_raise_the_native_keyspace_events() {
    let server = Server::start();
    let mut con = server.conn();
    q::<String>(
        &mut con,
        &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
    );
    let effects = "SET ${p}:s 1 INCRBY ${p}:s 2 INCRBYFLOAT ${p}:s 0.5 \
                   HSET ${p}:h FIELDS 1 a 1 HSETNX ${p}:h b 1 HDEL ${p}:h a \
                   ZADD ${p}:z 1 $m ZINCRBY ${p}:z 1 $m ZREM ${p}:z $m PFADD ${p}:p $m \
                   LPUSH ${p}:l a RPUSH ${p}:l b SADD ${p}:t a SREM ${p}:t a \
                   PEXPIRE ${p}:h 100000 DEL ${p}:s";
    let events = |con: &mut Connection, prefix: &str, run: &mut dyn FnMut(&mut Connection)| {
        let mut sub = server.conn();
        q::<Vec<redis::Value>>(
            &mut sub,
            &["PSUBSCRIBE", &format!("__keyspace@0__:{prefix}:*")],
        );
        run(con);
        native(con, &format!("PUBLISH __keyspace@0__:{prefix}:end end"));
        let mut names = Vec::new();
        loop {
            let msg = sub.recv_response().unwrap();
            let redis::Value::Array(parts) = msg else {
                continue;
            };
            let text: Vec<String> = parts
                .iter()
                .filter_map(|v| redis::from_redis_value(v).ok())
                .collect();
            let (channel, event) = (&text[2], &text[3]);
            if event == "end" {
                break;
            }
            let key = channel.split(':').skip(1).collect::<Vec<_>>().join(":");
            names.push(format!("{}:{event}", &key[prefix.len()..]));
        }
        names
    };
    let ours = events(&mut con, "x", &mut |con| {
        assert_eq!(process_one(con, effects), "1");
    });
    let theirs = events(&mut con, "n", &mut |con| {
        assert_eq!(
            native(con, &native_form(effects).replace("${p}", "n")),
            None
        );
    });
    assert_eq!(ours, theirs);
    assert!(ours.len() >= 15, "{ours:?}");
}

/// PUBLISH needs the caller's permission for its channel: a literal one
/// for the whole call, a templated one per entry.
#[test]
fn publish_checks_the_channel_acl() {
    let server = Server::start();
    let mut con = server.conn();
    native(&mut con, "ACL SETUSER w on >pw ~* &allowed:* +@all");
    let ids = pending(
        &mut con,
        STREAM,
        "g",
        "c1",
        &[&[("ch", "allowed:a")], &[("ch", "secret")]],
    );
    let mut w = server.conn_as("w", "pw");
    let refused = xprocess(
        &mut w,
        &[
            STREAM, "g", "DEDUPE", "{o}dd", "PUBLISH", "secret", "m", "IDS", "1", &ids[0],
        ],
    );
    assert!(err(&refused).starts_with("NOPERM"), "{refused:?}");
    let mut sub = server.conn();
    q::<Vec<redis::Value>>(&mut sub, &["SUBSCRIBE", "allowed:a"]);
    let reply = xprocess(
        &mut w,
        &[
            STREAM, "g", "DEDUPE", "{o}dd", "PUBLISH", "${ch}", "$@id", "IDS", "2", &ids[0],
            &ids[1],
        ],
    );
    let slots = slots(&reply);
    assert_eq!(slots[0], "1");
    assert!(slots[1].starts_with("NOPERM entry"), "{slots:?}");
    let msg = sub.recv_response().unwrap();
    let redis::Value::Array(parts) = msg else {
        panic!("{msg:?}")
    };
    let payload: String = redis::from_redis_value(&parts[2]).unwrap();
    assert_eq!(payload, ids[0]);
}

/// A field a deferred HINCRBY of an earlier entry makes counts when a later
/// entry's HDEL asks whether the hash is left empty.
#[test]
fn deferred_fields_keep_a_hash_from_being_emptied() {
    let server = Server::start();
    let mut con = server.conn();
    native(&mut con, "HSET x:h old 1 ; HSET n:h old 1");
    let ids = pending(&mut con, STREAM, "g", "c1", &[&[("t", "a")], &[("t", "b")]]);
    let effects = "WHEN $t = a HINCRBY x:h new 1 \
                   WHEN $t = b HDEL x:h old \
                   WHEN $t = b SET x:h v NX \
                   WHEN $t = b HSET x:h FIELDS 1 c d";
    let mut args = vec![STREAM, "g", "DEDUPE", "{o}dd"];
    args.extend(effects.split(' '));
    args.extend(["IDS", "2", &ids[0], &ids[1]]);
    assert_eq!(slots(&xprocess(&mut con, &args)), ["1", "1"]);
    native(
        &mut con,
        "HINCRBY n:h new 1 ; HDEL n:h old ; SET n:h v NX ; HSET n:h c d",
    );
    assert_eq!(picture(&mut con, "x:h"), picture(&mut con, "n:h"));
}
