//! ACL key permissions (Redis' own check on argv keys, the module's check on
//! the derived dedupe key) and cluster slot routing.

mod common;

use common::*;

const DEDUPE: &str = "{orders}:xprocess:g";

fn acl_setup(srv: &Server, rules: &[&str]) -> (redis::Connection, Vec<String>) {
    let mut admin = srv.conn();
    let ids = pending(
        &mut admin,
        "orders",
        "g",
        "c1",
        &[&[("user", "u"), ("amount", "5")]],
    );
    let mut args = vec!["ACL", "SETUSER", "u", "on", ">p"];
    args.extend_from_slice(rules);
    q::<String>(&mut admin, &args);
    (admin, ids)
}

#[test]
fn acl_denies_derived_dedupe_key_without_write_permission() {
    let srv = Server::start();
    let (mut admin, ids) = acl_setup(&srv, &["~orders", "~totals", "+@all"]);
    let mut user = srv.conn_as("u", "p");
    let before = digest(&mut admin);
    let r = xprocess(
        &mut user,
        &[
            "orders", "g", "HINCRBY", "totals", "$user", "$amount", "IDS", "1", &ids[0],
        ],
    );
    assert_eq!(
        err(&r),
        format!("NOPERM this user has no permissions to write the dedupe key '{DEDUPE}'")
    );
    assert_eq!(digest(&mut admin), before);
    assert_eq!(
        owner(&mut admin, "orders", "g", &ids[0]).as_deref(),
        Some("c1")
    );
}

#[test]
fn acl_read_only_permission_on_dedupe_key_is_not_enough() {
    let srv = Server::start();
    let (mut admin, ids) = acl_setup(&srv, &["~orders", "~totals", "%R~{orders}*", "+@all"]);
    let mut user = srv.conn_as("u", "p");
    let before = digest(&mut admin);
    let r = xprocess(
        &mut user,
        &[
            "orders", "g", "HINCRBY", "totals", "$user", "$amount", "IDS", "1", &ids[0],
        ],
    );
    assert!(err(&r).starts_with("NOPERM"), "{r:?}");
    assert_eq!(digest(&mut admin), before);
}

#[test]
fn acl_allows_with_write_permission_on_dedupe_key() {
    let srv = Server::start();
    let (mut admin, ids) = acl_setup(&srv, &["~orders", "~totals", "~{orders}:*", "+@all"]);
    let mut user = srv.conn_as("u", "p");
    let r = xprocess(
        &mut user,
        &[
            "orders", "g", "HINCRBY", "totals", "$user", "$amount", "IDS", "1", &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    assert_eq!(hget(&mut admin, "totals", "u").as_deref(), Some("5"));
    assert!(processed(&mut admin, DEDUPE, &ids[0]));
}

/// XPROCESS.EXISTS and XPROCESS.INFO read the dedupe key, XPROCESS.FORGET
/// writes it: Redis checks the key like any argv key.
#[test]
fn acl_applies_to_the_store_commands() {
    let srv = Server::start();
    let (mut admin, ids) = acl_setup(&srv, &["~orders", "~totals", "%R~{orders}:*", "+@all"]);
    let r = xprocess(
        &mut admin,
        &[
            "orders", "g", "HINCRBY", "totals", "$user", "$amount", "IDS", "1", &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    q::<String>(
        &mut admin,
        &["ACL", "SETUSER", "none", "on", ">p", "~orders", "+@all"],
    );
    let mut reader = srv.conn_as("u", "p");
    let mut none = srv.conn_as("none", "p");
    let before = digest(&mut admin);
    // Read-only access: EXISTS and INFO, not FORGET.
    let r: Vec<i64> = q(&mut reader, &["XPROCESS.EXISTS", DEDUPE, &ids[0]]);
    assert_eq!(r, [1]);
    assert_eq!(recorded(&mut reader, DEDUPE), 1);
    let r = call(&mut reader, &["XPROCESS.FORGET", DEDUPE, &ids[0]]);
    assert!(err(&r).starts_with("NOPERM"), "{r:?}");
    // No access: none of them.
    for cmd in [
        &["XPROCESS.EXISTS", DEDUPE, &ids[0]][..],
        &["XPROCESS.INFO", DEDUPE],
        &["XPROCESS.FORGET", DEDUPE, &ids[0]],
    ] {
        let r = call(&mut none, cmd);
        assert!(err(&r).starts_with("NOPERM"), "{cmd:?}: {r:?}");
    }
    assert_eq!(digest(&mut admin), before);
    assert!(processed(&mut admin, DEDUPE, &ids[0]));
}

#[test]
fn acl_denies_effect_key_and_explicit_dedupe_key() {
    let srv = Server::start();
    let (mut admin, ids) = acl_setup(
        &srv,
        &["~orders", "~totals", "~{orders}:*", "~mydedupe", "+@all"],
    );
    let mut user = srv.conn_as("u", "p");
    let before = digest(&mut admin);
    // No permission on the effect key `secret`.
    let r = xprocess(
        &mut user,
        &[
            "orders", "g", "HINCRBY", "totals", "$user", "$amount", "SADD", "secret", "$user",
            "IDS", "1", &ids[0],
        ],
    );
    assert!(err(&r).starts_with("NOPERM"), "{r:?}");
    // No permission on the explicit DEDUPE key.
    let r = xprocess(
        &mut user,
        &[
            "orders", "g", "DEDUPE", "other", "HINCRBY", "totals", "$user", "$amount", "IDS", "1",
            &ids[0],
        ],
    );
    assert!(err(&r).starts_with("NOPERM"), "{r:?}");
    assert_eq!(digest(&mut admin), before);
    // With an allowed explicit DEDUPE key it works.
    let r = xprocess(
        &mut user,
        &[
            "orders", "g", "DEDUPE", "mydedupe", "HINCRBY", "totals", "$user", "$amount", "IDS",
            "1", &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
}

fn cluster() -> Server {
    let srv = Server::with(
        &[],
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ],
    );
    let mut con = srv.conn();
    q::<String>(&mut con, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    wait_until("cluster_state:ok", || {
        let info: String = q(&mut con, &["CLUSTER", "INFO"]);
        info.contains("cluster_state:ok")
    });
    srv
}

fn slot(con: &mut redis::Connection, key: &str) -> i64 {
    q(con, &["CLUSTER", "KEYSLOT", key])
}

#[test]
fn cluster_crossslot_and_hash_tags() {
    let srv = cluster();
    let mut con = srv.conn();
    let ids = pending(
        &mut con,
        "{o}orders",
        "g",
        "c1",
        &[
            &[("user", "u"), ("amount", "2")],
            &[("user", "v"), ("amount", "3")],
        ],
    );
    assert_ne!(slot(&mut con, "{o}orders"), slot(&mut con, "totals"));
    let before = digest(&mut con);
    let r = xprocess(
        &mut con,
        &[
            "{o}orders",
            "g",
            "HINCRBY",
            "totals",
            "$user",
            "$amount",
            "IDS",
            "1",
            &ids[0],
        ],
    );
    assert!(err(&r).starts_with("CROSSSLOT"), "{r:?}");
    // An explicit DEDUPE key in another slot is routed too.
    let r = xprocess(
        &mut con,
        &[
            "{o}orders",
            "g",
            "DEDUPE",
            "done",
            "HINCRBY",
            "{o}totals",
            "$user",
            "$amount",
            "IDS",
            "1",
            &ids[0],
        ],
    );
    assert!(err(&r).starts_with("CROSSSLOT"), "{r:?}");
    assert_eq!(digest(&mut con), before);

    // Same hash tag everywhere: works, and the derived key shares the slot.
    let r = xprocess(
        &mut con,
        &[
            "{o}orders",
            "g",
            "HINCRBY",
            "{o}totals",
            "$user",
            "$amount",
            "SADD",
            "{o}buyers",
            "$user",
            "XADD",
            "{o}log",
            "ENTRY",
            "IDS",
            "2",
            &ids[0],
            &ids[1],
        ],
    );
    assert_eq!(slots(&r), ["1", "1"]);
    let dedupe = "{o}orders:xprocess:g";
    assert_eq!(
        processed_flags(&mut con, dedupe, &[&ids[0], &ids[1]]),
        [true, true]
    );
    assert_eq!(q::<String>(&mut con, &["TYPE", dedupe]), "xproc-idx");
    assert_eq!(slot(&mut con, dedupe), slot(&mut con, "{o}orders"));
    assert_eq!(hget(&mut con, "{o}totals", "v").as_deref(), Some("3"));
}

#[test]
fn cluster_derived_key_without_hash_tag_shares_the_slot() {
    let srv = cluster();
    let mut con = srv.conn();
    let ids = pending(&mut con, "orders", "g", "c1", &[&[("user", "u")]]);
    // `{orders}x` hashes like `orders`.
    let r = xprocess(
        &mut con,
        &[
            "orders",
            "g",
            "SADD",
            "{orders}x",
            "$user",
            "IDS",
            "1",
            &ids[0],
        ],
    );
    assert_eq!(slots(&r), ["1"]);
    assert!(processed(&mut con, DEDUPE, &ids[0]));
    assert_eq!(slot(&mut con, DEDUPE), slot(&mut con, "orders"));
}
