//! `FCALL function numkeys key ... numargs arg ...`: a Redis Function as the
//! call's only effect, in the same atomic step as the dedupe check, the
//! record and the XACK. Its return applies the entry; its error is the
//! entry's error (not recorded, not acked, retried or dead-lettered).

mod common;

use common::*;
use redis::Connection;

const STREAM: &str = "{o}orders";

/// A library: `maxcount` keeps a running maximum and a count per key (a
/// read-modify-write no native effect expresses), checking its input
/// before it writes; `half` writes, then raises; `echo` stores its args.
const LIBRARY: &str = "#!lua name=shop
redis.register_function('maxcount', function(keys, args)
  local v = tonumber(args[1])
  if not v then return redis.error_reply('ERR amount is not a number') end
  local cur = tonumber(redis.call('HGET', keys[1], 'max') or '-inf')
  if v > cur then redis.call('HSET', keys[1], 'max', args[1]) end
  return redis.call('HINCRBY', keys[1], 'count', 1)
end)
redis.register_function('half', function(keys, args)
  redis.call('INCR', keys[1])
  return redis.error_reply('HALF wrote, then failed')
end)
redis.register_function('echo', function(keys, args)
  redis.call('RPUSH', keys[1], unpack(args))
  return #args
end)
redis.register_function{function_name='peek', flags={'no-writes'},
  callback=function(keys, args) return redis.call('SET', keys[1], 'x') end}
";

fn load(con: &mut Connection) {
    let name: String = q(con, &["FUNCTION", "LOAD", "REPLACE", LIBRARY]);
    assert_eq!(name, "shop");
}

fn entries(con: &mut Connection, rows: &[&[(&str, &str)]]) -> Vec<String> {
    pending(con, STREAM, "g", "c1", rows)
}

/// `XPROCESS {o}orders g DEDUPE {o}dd <options...> IDS n ids...`, the slots.
fn run(con: &mut Connection, options: &str, ids: &[String]) -> Vec<String> {
    let n = ids.len().to_string();
    let mut args = vec![STREAM, "g", "DEDUPE", "{o}dd"];
    args.extend(options.split(' '));
    args.extend(["IDS", &n]);
    args.extend(ids.iter().map(String::as_str));
    slots(&xprocess(con, &args))
}

const MAXCOUNT: &str = "FCALL maxcount 1 {o}m:${c} 1 $amount";

#[test]
fn a_function_applies_each_entry_once() {
    let server = Server::start();
    let mut con = server.conn();
    load(&mut con);
    let ids = entries(
        &mut con,
        &[
            &[("c", "a"), ("amount", "5")],
            &[("c", "a"), ("amount", "9")],
            &[("c", "b"), ("amount", "2")],
            &[("c", "a"), ("amount", "3")],
        ],
    );
    assert_eq!(run(&mut con, MAXCOUNT, &ids), ["1", "1", "1", "1"]);
    assert_eq!(hget(&mut con, "{o}m:a", "max").as_deref(), Some("9"));
    assert_eq!(hget(&mut con, "{o}m:a", "count").as_deref(), Some("3"));
    // A retry is a duplicate: the function is not called again.
    let calls = info_field(&mut con, "xprocess", "xprocess_effects_fcall").unwrap();
    assert_eq!(run(&mut con, MAXCOUNT, &ids), ["0", "0", "0", "0"]);
    assert_eq!(hget(&mut con, "{o}m:a", "count").as_deref(), Some("3"));
    let after = info_field(&mut con, "xprocess", "xprocess_effects_fcall").unwrap();
    assert_eq!(calls, after);
    assert!(pel(&mut con, STREAM, "g").is_empty());
}

#[test]
fn a_functions_error_is_the_entrys_error() {
    let server = Server::start();
    let mut con = server.conn();
    load(&mut con);
    let ids = entries(
        &mut con,
        &[
            &[("c", "a"), ("amount", "x")],
            &[("c", "a"), ("amount", "4")],
        ],
    );
    assert_eq!(
        run(&mut con, MAXCOUNT, &ids),
        ["ERR amount is not a number", "1"]
    );
    // Not recorded, not acked: retried, and dead-lettered once delivered enough.
    assert!(!processed(&mut con, "{o}dd", &ids[0]));
    assert_eq!(pel(&mut con, STREAM, "g").len(), 1);
    assert_eq!(
        run(
            &mut con,
            &format!("DEADLETTER {{o}}dead AFTER 1 {MAXCOUNT}"),
            &ids[..1]
        ),
        ["2"]
    );
    let dead = xrange(&mut con, "{o}dead");
    assert_eq!(dead.len(), 1);
    assert!(pel(&mut con, STREAM, "g").is_empty());
    // Writes a function made before raising stand, as in Redis.
    let more = entries(&mut con, &[&[("c", "z")]]);
    assert_eq!(
        run(&mut con, "FCALL half 1 {o}n 0", &more),
        ["HALF wrote, then failed"]
    );
    assert_eq!(q::<String>(&mut con, &["GET", "{o}n"]), "1");
    let errors = info_field(&mut con, "xprocess", "xprocess_fcall_errors").unwrap();
    assert_eq!(errors, "3");
}

#[test]
fn entry_arguments_reach_the_function() {
    let server = Server::start();
    let mut con = server.conn();
    load(&mut con);
    let ids = entries(&mut con, &[&[("c", "a"), ("amount", "7")]]);
    assert_eq!(
        run(
            &mut con,
            "FCALL echo 1 {o}l:${c} 3 $@entry $@id -${amount}",
            &ids
        ),
        ["1"]
    );
    let list: Vec<String> = q(&mut con, &["LRANGE", "{o}l:a", "0", "-1"]);
    assert_eq!(list, ["c", "a", "amount", "7", ids[0].as_str(), "-7"]);
}

/// A missing function, FUNCTION FLUSH between calls, a no-writes function
/// that writes: per-entry errors, the entries stay pending, nothing lost.
#[test]
fn functions_that_cannot_run_leave_the_entries_pending() {
    let server = Server::start();
    let mut con = server.conn();
    let ids = entries(&mut con, &[&[("c", "a"), ("amount", "1")]]);
    assert_eq!(run(&mut con, MAXCOUNT, &ids), ["ERR Function not found"]);
    load(&mut con);
    let slot = run(&mut con, "FCALL peek 1 {o}p 0", &ids).remove(0);
    assert!(slot.contains("Write commands are not allowed"), "{slot}");
    q::<String>(&mut con, &["FUNCTION", "FLUSH"]);
    assert_eq!(run(&mut con, MAXCOUNT, &ids), ["ERR Function not found"]);
    assert_eq!(pel(&mut con, STREAM, "g").len(), 1);
    load(&mut con);
    assert_eq!(run(&mut con, MAXCOUNT, &ids), ["1"]);
}

#[test]
fn fcall_syntax_and_key_checks() {
    let server = Server::start();
    let mut con = server.conn();
    load(&mut con);
    let ids = entries(&mut con, &[&[("c", "a"), ("amount", "1"), ("k", STREAM)]]);
    let whole = |con: &mut Connection, options: &str| {
        let n = ids.len().to_string();
        let mut args = vec![STREAM, "g", "DEDUPE", "{o}dd"];
        args.extend(options.split(' '));
        args.extend(["IDS", &n, &ids[0]]);
        err(&xprocess(con, &args))
    };
    assert_eq!(
        whole(&mut con, "FCALL maxcount 1 {o}m 1 $amount SADD {o}s x"),
        "ERR syntax error, FCALL must be the call's only effect"
    );
    assert_eq!(
        whole(&mut con, "SADD {o}s x FCALL maxcount 1 {o}m 1 $amount"),
        "ERR syntax error, FCALL must be the call's only effect"
    );
    assert!(whole(&mut con, "FCALL maxcount -1 1 $amount").contains("numkeys"));
    assert!(whole(&mut con, "FCALL maxcount 50 {o}m 1").contains("numkeys"));
    assert!(whole(&mut con, "FCALL maxcount 1 {o}m 40 $amount").contains("numargs"));
    assert!(whole(&mut con, "FCALL maxcount 1 {o}dd 0").contains("may not target"));
    assert!(whole(&mut con, &format!("FCALL maxcount 1 {STREAM} 0")).contains("may not target"));
    let slot = run(&mut con, "FCALL maxcount 1 $k 1 $amount", &ids).remove(0);
    assert!(slot.contains("which is the stream"), "{slot}");
    let keys: Vec<String> = q(
        &mut con,
        &[
            "COMMAND",
            "GETKEYS",
            "XPROCESS",
            STREAM,
            "g",
            "FCALL",
            "f",
            "2",
            "{o}a",
            "{o}b:${c}",
            "0",
            "IDS",
            "1",
            "1-1",
        ],
    );
    assert_eq!(keys, [STREAM, "{o}a"]);
}

/// Business keys: a producer's retry of the same order is a duplicate, the
/// function is not called; a retry with another amount is a CONFLICT (the
/// fingerprint covers the function's arguments).
#[test]
fn business_keys_with_a_function() {
    let server = Server::start();
    let mut con = server.conn();
    load(&mut con);
    let ids = entries(
        &mut con,
        &[
            &[("c", "a"), ("order", "1"), ("amount", "5")],
            &[("c", "a"), ("order", "1"), ("amount", "5")],
            &[("c", "a"), ("order", "1"), ("amount", "6")],
        ],
    );
    let slots = run(&mut con, &format!("KEY $order {MAXCOUNT}"), &ids);
    assert_eq!(slots[..2], ["1", "0"]);
    assert!(slots[2].starts_with("CONFLICT"), "{slots:?}");
    assert_eq!(hget(&mut con, "{o}m:a", "count").as_deref(), Some("1"));
}

/// The function's writes and XPROCESS' own reach a replica and the AOF in
/// the call's one MULTI/EXEC: equal digests, and the same after kill -9.
#[test]
fn a_functions_writes_replicate_and_persist() {
    let (mut primary, replica) = primary_with_aof_and_replica();
    let mut con = primary.conn();
    let mut rcon = replica.conn();
    load(&mut con);
    wait_replica_synced(&mut con, &mut rcon);
    let rows: Vec<Vec<(&str, &str)>> = (0..50)
        .map(|i| {
            vec![
                ("c", ["a", "b", "c"][i % 3]),
                ("amount", if i % 7 == 0 { "x" } else { "4" }),
            ]
        })
        .collect();
    let rows: Vec<&[(&str, &str)]> = rows.iter().map(Vec::as_slice).collect();
    let ids = entries(&mut con, &rows);
    let slots = run(&mut con, MAXCOUNT, &ids);
    assert_eq!(slots.iter().filter(|s| *s == "1").count(), 42);
    wait_replica_synced(&mut con, &mut rcon);
    let expected = digest(&mut con);
    assert_eq!(digest(&mut rcon), expected);
    primary.kill9();
    primary.restart();
    let mut con = primary.conn();
    assert_eq!(digest(&mut con), expected);
}

/// The worker loop with a function: READ takes the entries for the
/// consumer, CONSUMER fencing refuses another consumer's entries before the
/// function runs.
#[test]
fn read_and_fencing_with_a_function() {
    let server = Server::start();
    let mut con = server.conn();
    load(&mut con);
    let ids = entries(&mut con, &[&[("c", "a"), ("amount", "2")]]);
    xadd_id(&mut con, STREAM, "*", &[("c", "a"), ("amount", "8")]);
    // c1 owns the first entry: c2 may not process it.
    let mut fenced = vec![STREAM, "g", "CONSUMER", "c2", "DEDUPE", "{o}dd"];
    fenced.extend(MAXCOUNT.split(' '));
    fenced.extend(["IDS", "1", &ids[0]]);
    assert!(slots(&xprocess(&mut con, &fenced))[0].starts_with("NOTOWNER"));
    assert!(!exists(&mut con, "{o}m:a"));
    // READ takes the new entry for c2 and applies it.
    let mut read = vec![STREAM, "g", "CONSUMER", "c2", "DEDUPE", "{o}dd"];
    read.extend(MAXCOUNT.split(' '));
    read.extend(["READ", "COUNT", "10"]);
    let reply = xprocess(&mut con, &read);
    let redis::Value::Array(rows) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(rows.len(), 1);
    assert_eq!(hget(&mut con, "{o}m:a", "max").as_deref(), Some("8"));
    assert_eq!(pel(&mut con, STREAM, "g").len(), 1, "c1's entry stays");
}

/// Redis runs one script at a time: XPROCESS with FCALL called from a
/// script or a function is refused whole (Redis would abort on a script
/// started inside a script), and the server stays up.
#[test]
fn fcall_inside_a_script_is_refused() {
    let server = Server::start();
    let mut con = server.conn();
    load(&mut con);
    let ids = entries(&mut con, &[&[("c", "a"), ("amount", "1")]]);
    let script = format!(
        "return redis.call('XPROCESS', KEYS[1], 'g', 'DEDUPE', '{{o}}dd', 'FCALL', 'maxcount', \
         '1', '{{o}}m', '1', '$amount', 'IDS', '1', '{}')",
        ids[0]
    );
    let reply = call(&mut con, &["EVAL", &script, "1", STREAM]);
    let text = err(&reply);
    assert!(
        text.contains("cannot run inside a script or a function"),
        "{text}"
    );
    q::<String>(
        &mut con,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=outer\nredis.register_function('outer', function(keys, args) \
             return redis.call('XPROCESS', keys[1], 'g', 'DEDUPE', '{o}dd', 'FCALL', \
             'maxcount', '1', '{o}m', '1', '$amount', 'IDS', '1', args[1]) end)",
        ],
    );
    let reply = call(&mut con, &["FCALL", "outer", "1", STREAM, &ids[0]]);
    assert!(
        err(&reply).contains("cannot run inside a script"),
        "{reply:?}"
    );
    assert_eq!(q::<String>(&mut con, &["PING"]), "PONG");
    assert_eq!(run(&mut con, MAXCOUNT, &ids), ["1"]);
}

/// The function runs as the caller: what it does is checked against the
/// caller's ACL (commands and keys), like an FCALL the caller sent.
#[test]
fn the_function_runs_with_the_callers_acl() {
    let server = Server::start();
    let mut con = server.conn();
    load(&mut con);
    q::<String>(
        &mut con,
        &["FUNCTION", "LOAD", "#!lua name=w\nredis.register_function('w', function(keys, args) return redis.call('SET', 'secret', 'pwned') end)"],
    );
    let ids = entries(&mut con, &[&[("c", "a"), ("amount", "1")]]);
    for rules in ["~{o}* +@all -fcall", "~{o}* +@all"] {
        let mut setuser = vec!["ACL", "SETUSER", "u", "reset", "on", ">pw"];
        setuser.extend(rules.split(' '));
        q::<String>(&mut con, &setuser);
        let mut u = server.conn_as("u", "pw");
        let slot = run(&mut u, "FCALL w 1 {o}k 0", &ids).remove(0);
        assert!(
            slot.starts_with("NOPERM")
                || slot.contains("permission")
                || slot.contains("can't access"),
            "{rules}: {slot}"
        );
        assert!(!exists(&mut con, "secret"), "{rules}");
        assert_eq!(pel(&mut con, STREAM, "g").len(), 1);
    }
    // With the permissions, the same call applies.
    q::<String>(&mut con, &["ACL", "SETUSER", "u", "~*", "+@all"]);
    let mut u = server.conn_as("u", "pw");
    assert_eq!(run(&mut u, "FCALL w 1 {o}k 0", &ids), ["1"]);
    assert!(exists(&mut con, "secret"));
}

/// READ BLOCK: the call waits, and the entry that wakes it is applied
/// through the function.
#[test]
fn read_block_with_a_function() {
    let server = Server::start();
    let mut con = server.conn();
    load(&mut con);
    q::<String>(
        &mut con,
        &["XGROUP", "CREATE", STREAM, "g", "$", "MKSTREAM"],
    );
    let port = server.port();
    let waiter = std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut con = client.get_connection().unwrap();
        let mut args = vec![STREAM, "g", "CONSUMER", "c2", "DEDUPE", "{o}dd"];
        args.extend(MAXCOUNT.split(' '));
        args.extend(["READ", "BLOCK", "5000"]);
        xprocess(&mut con, &args)
    });
    wait_until("the call blocks", || {
        info_field(&mut con, "xprocess", "xprocess_blocked_clients").as_deref() == Some("1")
    });
    xadd_id(&mut con, STREAM, "*", &[("c", "a"), ("amount", "6")]);
    let reply = waiter.join().unwrap();
    assert!(
        matches!(reply, redis::Value::Array(ref rows) if rows.len() == 1),
        "{reply:?}"
    );
    assert_eq!(hget(&mut con, "{o}m:a", "max").as_deref(), Some("6"));
}
