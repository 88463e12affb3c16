//! A call reads its entries a window at a time (src/stream/entry_cache.rs), and
//! forgets the window when it ends. Every way Redis can remove or replace
//! stream entries between two calls (or inside a call: its own XADD
//! effects) must make XPROCESS see the stream as it is, never a copy read
//! before. Nothing tells the module of those changes (it subscribes to no
//! event), so these tests fail if any entry outlives its call.

mod common;

use common::*;
use redis::Connection;

const EFFECT: [&str; 4] = ["HINCRBY", "totals", "$user", "$amount"];

/// Stream `s` with entries 1-1..=3-1 (amount 1, 2, 3 for user `u`), pending
/// for consumer c1; then entry 1-1 is processed alone, which reads ahead the
/// window 1-1..=3-1 (a cache kept between calls would serve it stale).
fn warmed(con: &mut Connection) {
    fill(con, "s", &["1", "2", "3"]);
    assert_eq!(process(con, "s", "1-1"), "1");
    assert_eq!(total(con), 1);
}

/// Add entries N-1 with amount N to `stream`, group g (created), pending for c1.
fn fill(con: &mut Connection, stream: &str, amounts: &[&str]) {
    let _ = call(con, &["XGROUP", "CREATE", stream, "g", "0", "MKSTREAM"]);
    for a in amounts {
        let id = format!("{a}-1");
        xadd_id(con, stream, &id, &[("user", "u"), ("amount", a)]);
    }
    q::<redis::Value>(
        con,
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", stream, ">"],
    );
}

fn process(con: &mut Connection, stream: &str, id: &str) -> String {
    let mut args = vec![stream, "g"];
    args.extend_from_slice(&EFFECT);
    args.extend_from_slice(&["IDS", "1", id]);
    slots(&xprocess(con, &args)).remove(0)
}

fn total(con: &mut Connection) -> i64 {
    hget(con, "totals", "u").map_or(0, |v| v.parse().unwrap())
}

/// After `change`, entry 2-1 holds amount 20 (or is gone: `expect` says).
fn check(change: impl FnOnce(&mut Connection), expect: &str, total_after: i64) {
    let srv = Server::start();
    let mut con = srv.conn();
    warmed(&mut con);
    change(&mut con);
    assert_eq!(process(&mut con, "s", "2-1"), expect);
    assert_eq!(total(&mut con), total_after);
}

/// Recreate `s` with entry 2-1 = amount 20 (after it was removed).
fn recreate(con: &mut Connection) {
    fill(con, "s", &[]);
    xadd_id(con, "s", "2-1", &[("user", "u"), ("amount", "20")]);
    q::<redis::Value>(
        con,
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"],
    );
}

const NOT_FOUND: &str = "ERR entry 2-1 not found in the stream";

#[test]
fn later_calls_read_their_own_entries() {
    let srv = Server::start();
    let mut con = srv.conn();
    warmed(&mut con);
    assert_eq!(process(&mut con, "s", "2-1"), "1");
    assert_eq!(process(&mut con, "s", "3-1"), "1");
    assert_eq!(total(&mut con), 6);
    assert_eq!(
        process(&mut con, "s", "9-1"),
        "ERR entry 9-1 not found in the stream"
    );
}

#[test]
fn xdel_is_seen() {
    check(
        |c| assert_eq!(q::<i64>(c, &["XDEL", "s", "2-1"]), 1),
        NOT_FOUND,
        1,
    );
}

#[test]
fn xtrim_is_seen() {
    check(
        |c| assert_eq!(q::<i64>(c, &["XTRIM", "s", "MINID", "3"]), 2),
        NOT_FOUND,
        1,
    );
}

#[test]
fn del_and_recreate_is_seen() {
    check(
        |c| {
            q::<i64>(c, &["DEL", "s"]);
            recreate(c);
        },
        "1",
        21,
    );
}

#[test]
fn flushall_and_recreate_is_seen() {
    check(
        |c| {
            q::<()>(c, &["FLUSHALL"]);
            recreate(c);
        },
        "1",
        20,
    );
}

#[test]
fn expiry_is_seen() {
    check(
        |c| {
            q::<i64>(c, &["PEXPIRE", "s", "1"]);
            wait_until("s expired", || !exists(c, "s"));
            recreate(c);
        },
        "1",
        21,
    );
}

#[test]
fn rename_over_the_stream_is_seen() {
    check(
        |c| {
            fill(c, "other", &[]);
            xadd_id(c, "other", "2-1", &[("user", "u"), ("amount", "20")]);
            q::<redis::Value>(
                c,
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "other", ">"],
            );
            q::<()>(c, &["RENAME", "other", "s"]);
        },
        "1",
        21,
    );
}

#[test]
fn restore_replace_is_seen() {
    check(
        |c| {
            fill(c, "other", &[]);
            xadd_id(c, "other", "2-1", &[("user", "u"), ("amount", "20")]);
            q::<redis::Value>(
                c,
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "other", ">"],
            );
            let dump: Vec<u8> = redis::cmd("DUMP").arg("other").query(c).unwrap();
            redis::cmd("RESTORE")
                .arg("s")
                .arg(0)
                .arg(dump)
                .arg("REPLACE")
                .query::<()>(c)
                .unwrap();
        },
        "1",
        21,
    );
}

#[test]
fn move_and_recreate_is_seen() {
    check(
        |c| {
            assert_eq!(q::<i64>(c, &["MOVE", "s", "1"]), 1);
            recreate(c);
        },
        "1",
        21,
    );
}

#[test]
fn copy_replace_is_seen() {
    check(
        |c| {
            fill(c, "other", &[]);
            xadd_id(c, "other", "2-1", &[("user", "u"), ("amount", "20")]);
            q::<redis::Value>(
                c,
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "other", ">"],
            );
            assert_eq!(q::<i64>(c, &["COPY", "other", "s", "REPLACE"]), 1);
        },
        "1",
        21,
    );
}

#[test]
fn debug_reload_is_seen() {
    // The stream is loaded anew, with its entries as they were.
    check(|c| q::<()>(c, &["DEBUG", "RELOAD"]), "1", 3);
}

/// Redis 7.0 lets XSETID move the last ID back below deleted entries, so an
/// ID can be used again with other fields; later servers refuse (their
/// XSETID checks the stream's max_deleted_entry_id), and the ID stays gone.
#[test]
fn a_reused_id_after_xdel_and_xsetid_is_seen() {
    let srv = Server::start();
    let mut con = srv.conn();
    warmed(&mut con);
    assert_eq!(q::<i64>(&mut con, &["XDEL", "s", "2-1", "3-1"]), 2);
    let setid = call(
        &mut con,
        &[
            "XSETID",
            "s",
            "1-1",
            "ENTRIESADDED",
            "3",
            "MAXDELETEDID",
            "0-0",
        ],
    );
    match error_text(&setid) {
        None => {
            xadd_id(&mut con, "s", "2-1", &[("user", "u"), ("amount", "20")]);
            assert_eq!(process(&mut con, "s", "2-1"), "1");
            assert_eq!(total(&mut con), 21);
        }
        Some(e) => {
            assert!(e.contains("max_deleted_entry_id"), "{e}");
            assert_eq!(process(&mut con, "s", "2-1"), NOT_FOUND);
            assert_eq!(total(&mut con), 1);
        }
    }
}

#[test]
fn recreation_inside_a_script_is_seen() {
    let script = "redis.call('DEL', KEYS[1]) \
        redis.call('XGROUP', 'CREATE', KEYS[1], 'g', '0', 'MKSTREAM') \
        redis.call('XADD', KEYS[1], '2-1', 'user', 'u', 'amount', '20') \
        return 1";
    check(
        |c| assert_eq!(q::<i64>(c, &["EVAL", script, "1", "s"]), 1),
        "1",
        21,
    );
}

#[test]
fn recreation_inside_multi_is_seen() {
    check(
        |c| {
            call(c, &["MULTI"]);
            call(c, &["DEL", "s"]);
            call(c, &["XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"]);
            call(c, &["XADD", "s", "2-1", "user", "u", "amount", "20"]);
            call(c, &["EXEC"]);
        },
        "1",
        21,
    );
}

/// Two XPROCESS calls in one script, the stream recreated between them: the
/// second call, though it runs in the same command, reads the new entry.
#[test]
fn recreation_between_two_calls_of_one_script_is_seen() {
    let srv = Server::start();
    let mut con = srv.conn();
    fill(&mut con, "s", &["1", "2", "3"]);
    let script = "local a = redis.call('XPROCESS', KEYS[1], 'g', \
            'HINCRBY', 'totals', '$user', '$amount', 'IDS', '2', '1-1', '3-1') \
        redis.call('DEL', KEYS[1]) \
        redis.call('XGROUP', 'CREATE', KEYS[1], 'g', '0', 'MKSTREAM') \
        redis.call('XADD', KEYS[1], '2-1', 'user', 'u', 'amount', '20') \
        local b = redis.call('XPROCESS', KEYS[1], 'g', \
            'HINCRBY', 'totals', '$user', '$amount', 'IDS', '1', '2-1') \
        return {a[1], a[2], b[1]}";
    let reply: Vec<i64> = q(&mut con, &["EVAL", script, "1", "s"]);
    assert_eq!(reply, vec![1, 1, 1]);
    assert_eq!(total(&mut con), 1 + 3 + 20);
}

#[test]
fn swapdb_is_seen() {
    check(
        |c| {
            q::<()>(c, &["SELECT", "1"]);
            fill(c, "s", &[]);
            xadd_id(c, "s", "2-1", &[("user", "u"), ("amount", "20")]);
            q::<redis::Value>(c, &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"]);
            q::<()>(c, &["SELECT", "0"]);
            q::<()>(c, &["SWAPDB", "0", "1"]);
        },
        "1",
        20, // `totals` moved to db 1 with the old stream
    );
}

#[test]
fn another_database_has_its_own_entries() {
    let srv = Server::start();
    let mut con = srv.conn();
    warmed(&mut con);
    q::<()>(&mut con, &["SELECT", "1"]);
    fill(&mut con, "s", &["2"]);
    // Same key name and ID, other database: its own amount 2, not db 0's.
    assert_eq!(process(&mut con, "s", "2-1"), "1");
    assert_eq!(total(&mut con), 2);
}

#[test]
fn xdel_inside_multi_is_seen() {
    let srv = Server::start();
    let mut con = srv.conn();
    fill(&mut con, "s", &["1", "2", "3"]);
    let xp = |id| {
        let mut args = vec!["XPROCESS", "s", "g"];
        args.extend_from_slice(&EFFECT);
        args.extend_from_slice(&["IDS", "1", id]);
        args
    };
    call(&mut con, &["MULTI"]);
    call(&mut con, &xp("1-1"));
    call(&mut con, &["XDEL", "s", "2-1"]);
    call(&mut con, &xp("2-1"));
    let redis::Value::Array(replies) = call(&mut con, &["EXEC"]) else {
        panic!("EXEC did not return an array");
    };
    assert_eq!(slots(&replies[0]), vec!["1".to_string()]);
    assert_eq!(slots(&replies[2]), vec![NOT_FOUND.to_string()]);
    assert_eq!(total(&mut con), 1);
}

#[test]
fn an_effect_trimming_the_source_stream_is_seen() {
    let srv = Server::start();
    let mut con = srv.conn();
    fill(&mut con, "s", &["1", "2", "3"]);
    // Entry 1-1's own effect appends to s and trims it to one entry.
    let reply = xprocess(
        &mut con,
        &[
            "s", "g", "XADD", "s", "MAXLEN", "1", "ENTRY", "IDS", "2", "1-1", "2-1",
        ],
    );
    assert_eq!(slots(&reply), vec!["1".to_string(), NOT_FOUND.to_string()]);
}

/// The group check is made by each call: anything that removed the group
/// since the last one must make it fail with NOGROUP, and change nothing.
fn nogroup_after(change: impl FnOnce(&mut Connection)) {
    let srv = Server::start();
    let mut con = srv.conn();
    warmed(&mut con);
    change(&mut con);
    let before = digest(&mut con);
    let mut args = vec!["s", "g"];
    args.extend_from_slice(&EFFECT);
    args.extend_from_slice(&["IDS", "1", "2-1"]);
    let reply = xprocess(&mut con, &args);
    assert!(err(&reply).starts_with("NOGROUP"), "{reply:?}");
    assert_eq!(digest(&mut con), before);
}

#[test]
fn xgroup_destroy_is_seen() {
    nogroup_after(|c| assert_eq!(q::<i64>(c, &["XGROUP", "DESTROY", "s", "g"]), 1));
}

#[test]
fn del_and_recreate_without_group_is_seen() {
    nogroup_after(|c| {
        q::<i64>(c, &["DEL", "s"]);
        xadd_id(c, "s", "2-1", &[("user", "u"), ("amount", "20")]);
    });
}

#[test]
fn flushall_removes_the_group() {
    nogroup_after(|c| {
        q::<()>(c, &["FLUSHALL"]);
        xadd_id(c, "s", "2-1", &[("user", "u"), ("amount", "20")]);
    });
}
