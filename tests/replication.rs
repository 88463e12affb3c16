//! A primary and a replica: everything XPROCESS writes reaches the replica
//! (as MULTI/EXEC of plain commands, with the dedupe record as `SADD` for a
//! Set and as the internal `XPROCESS.PATCH` for an index) and both end up
//! identical.

mod common;

use common::*;

fn primary_and_replica() -> (Server, Server) {
    // No diskless-sync delay: the first sync starts at once.
    let primary = Server::with(&[], &["--repl-diskless-sync-delay", "0"]);
    let port = primary.port().to_string();
    let replica = Server::with(&[], &["--replicaof", "127.0.0.1", &port]);
    (primary, replica)
}

#[test]
fn replica_matches_primary_after_mixed_workload_index() {
    replica_matches_primary(Store::Index);
}

#[test]
fn replica_matches_primary_after_mixed_workload_set() {
    replica_matches_primary(Store::Set);
}

/// [`mixed_workload_with`] `store` on a primary with an attached replica.
fn replica_matches_primary(store: Store) {
    let (primary, replica) = primary_and_replica();
    let mut p = primary.conn();
    let mut r = replica.conn();
    // Attach first, so the workload travels through the replication stream.
    wait_replica_synced(&mut p, &mut r);
    let keys = mixed_workload_with(&mut p, store);
    wait_replica_synced(&mut p, &mut r);

    assert_eq!(digest(&mut r), digest(&mut p), "DEBUG DIGEST differs");
    assert_eq!(snapshot(&mut r, &keys), snapshot(&mut p, &keys));
    // The generated XADD IDs are the primary's, not regenerated.
    let audit = xrange(&mut p, "audit");
    assert_eq!(audit.len(), 5);
    assert_eq!(xrange(&mut r, "audit"), audit);
    assert_eq!(xrange(&mut r, "copy"), xrange(&mut p, "copy"));
    assert_eq!(q::<i64>(&mut r, &["XLEN", "copy"]), 2);
    // The dedupe TTL of a Set reached the replica; an index has none.
    let pttl: i64 = q(&mut r, &["PTTL", WORKLOAD_DEDUPE]);
    match store {
        Store::Set => assert!(pttl > 0 && pttl <= 600_000, "replica PTTL {pttl}"),
        Store::Index => assert_eq!(pttl, -1, "replica PTTL of the index"),
    }
    assert_eq!(q::<i64>(&mut r, &["PTTL", WORKLOAD_DEDUPE2]), -1);
    // The replica answers XPROCESS.EXISTS like the primary, for both stores.
    let ids: Vec<String> = xrange(&mut p, "orders").into_iter().map(|e| e.0).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for key in [WORKLOAD_DEDUPE, WORKLOAD_DEDUPE2] {
        let want = processed_flags(&mut p, key, &ids);
        assert!(
            want.contains(&true) && want.contains(&false),
            "{key}: {want:?}"
        );
        assert_eq!(processed_flags(&mut r, key, &ids), want, "{key}");
    }

    // The command itself is never replicated, its writes come as a
    // transaction; the index's records as XPROCESS.PATCH (there is an index
    // under one of the two keys whatever `store` is).
    let stats: String = q(&mut r, &["INFO", "commandstats"]);
    assert!(
        !stats.to_lowercase().contains("cmdstat_xprocess:"),
        "XPROCESS was replicated verbatim:\n{stats}"
    );
    assert!(
        stats.contains("cmdstat_xprocess.patch:"),
        "no XPROCESS.PATCH replicated:\n{stats}"
    );
    assert!(
        stats.contains("cmdstat_exec"),
        "no EXEC replicated:\n{stats}"
    );
    // Only the Set under the derived key has a TTL, sent as PEXPIREAT.
    assert_eq!(
        stats.contains("cmdstat_pexpireat:"),
        store == Store::Set,
        "PEXPIREAT replicated (or not) with a dedupe {store:?}:\n{stats}"
    );
}

#[test]
fn forget_reaches_the_replica() {
    for store in [Store::Index, Store::Set] {
        let (primary, replica) = primary_and_replica();
        let mut p = primary.conn();
        let mut r = replica.conn();
        wait_replica_synced(&mut p, &mut r);
        let ids = pending(
            &mut p,
            "orders",
            "g",
            "c1",
            &[&[("n", "1")], &[("n", "2")], &[("n", "3")]],
        );
        let opts: &[&str] = match store {
            Store::Index => &[],
            Store::Set => &["STORE", "SET"],
        };
        let mut args = vec!["orders", "g"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[
            "HINCRBY", "t", "n", "$n", "IDS", "3", &ids[0], &ids[1], &ids[2],
        ]);
        assert_eq!(slots(&xprocess(&mut p, &args)), ["1", "1", "1"]);
        let dedupe = "{orders}:xprocess:g";
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let forgotten: i64 = q(&mut p, &["XPROCESS.FORGET", dedupe, ids[1]]);
        assert_eq!(forgotten, 1);
        wait_replica_synced(&mut p, &mut r);
        assert_eq!(q::<String>(&mut r, &["TYPE", dedupe]), store.type_name());
        assert_eq!(
            processed_flags(&mut r, dedupe, &ids),
            [true, false, true],
            "{store:?}"
        );
        assert_eq!(digest(&mut r), digest(&mut p), "{store:?}");
        // Applied again on the primary, recorded again on the replica.
        assert_eq!(slots(&xprocess(&mut p, &args)), ["0", "1", "0"]);
        wait_replica_synced(&mut p, &mut r);
        assert_eq!(
            processed_flags(&mut r, dedupe, &ids),
            [true, true, true],
            "{store:?}"
        );
        assert_eq!(hget(&mut r, "t", "n").as_deref(), Some("8"));
        assert_eq!(digest(&mut r), digest(&mut p), "{store:?}");
    }
}

#[test]
fn replica_refuses_xprocess() {
    let (primary, replica) = primary_and_replica();
    let mut p = primary.conn();
    let mut r = replica.conn();
    wait_replica_synced(&mut p, &mut r);
    let ids = pending(&mut p, "orders", "g", "c1", &[&[("user", "a")]]);
    wait_replica_synced(&mut p, &mut r);
    let before = digest(&mut r);
    let reply = xprocess(
        &mut r,
        &["orders", "g", "SADD", "s", "$user", "IDS", "1", &ids[0]],
    );
    assert!(err(&reply).starts_with("READONLY"), "{reply:?}");
    assert_eq!(digest(&mut r), before);
    // The store commands: reading works, FORGET is a write.
    assert_eq!(
        processed_flags(&mut r, "{orders}:xprocess:g", &[&ids[0]]),
        [false]
    );
    let applied = xprocess(
        &mut p,
        &["orders", "g", "SADD", "s", "$user", "IDS", "1", &ids[0]],
    );
    assert_eq!(slots(&applied), ["1"]);
    wait_replica_synced(&mut p, &mut r);
    let before_forget = digest(&mut r);
    assert_eq!(recorded(&mut r, "{orders}:xprocess:g"), 1);
    let reply = call(&mut r, &["XPROCESS.FORGET", "{orders}:xprocess:g", &ids[0]]);
    assert!(err(&reply).starts_with("READONLY"), "{reply:?}");
    assert!(processed(&mut r, "{orders}:xprocess:g", &ids[0]));
    assert_eq!(digest(&mut r), before_forget);
}
