//! A primary and a replica: everything XPROCESS writes reaches the replica
//! (as MULTI/EXEC of plain commands) and both end up identical.

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
fn replica_matches_primary_after_mixed_workload() {
    let (primary, replica) = primary_and_replica();
    let mut p = primary.conn();
    let mut r = replica.conn();
    // Attach first, so the workload travels through the replication stream.
    wait_replica_synced(&mut p, &mut r);
    let keys = mixed_workload(&mut p);
    wait_replica_synced(&mut p, &mut r);

    assert_eq!(digest(&mut r), digest(&mut p), "DEBUG DIGEST differs");
    assert_eq!(snapshot(&mut r, &keys), snapshot(&mut p, &keys));
    // The generated XADD IDs are the primary's, not regenerated.
    let audit = xrange(&mut p, "audit");
    assert_eq!(audit.len(), 5);
    assert_eq!(xrange(&mut r, "audit"), audit);
    assert_eq!(xrange(&mut r, "copy"), xrange(&mut p, "copy"));
    assert_eq!(q::<i64>(&mut r, &["XLEN", "copy"]), 2);
    // The dedupe TTL reached the replica.
    let pttl: i64 = q(&mut r, &["PTTL", "{orders}:xprocess:g"]);
    assert!(pttl > 0 && pttl <= 600_000, "replica PTTL {pttl}");
    assert_eq!(q::<i64>(&mut r, &["PTTL", "done"]), -1);

    // The command itself is never replicated, its writes come as a transaction.
    let stats: String = q(&mut r, &["INFO", "commandstats"]);
    assert!(
        !stats.to_lowercase().contains("cmdstat_xprocess"),
        "XPROCESS was replicated verbatim:\n{stats}"
    );
    assert!(
        stats.contains("cmdstat_exec"),
        "no EXEC replicated:\n{stats}"
    );
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
}
