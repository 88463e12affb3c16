//! An XPROCESS consumer worker with the `redis` crate (sync API).
//!
//! At start-up it stores the group's definition with `XPROCESS.DEFINE`
//! (every worker the same one), then loops on one command without effects:
//! `XPROCESS ... READ` takes entries for this consumer (first those another
//! consumer left pending for `--min-idle-ms`, then new ones), applies the
//! definition's effects to each exactly once (add the amount to the
//! customer's total and append a receipt), acks it, and moves an entry that
//! failed `--max-deliveries` times to the dead-letter stream, all in one
//! atomic step. Options are `--name value` (see `OPTIONS`).
//! Stops on SIGINT/SIGTERM, or with `--until-idle-ms N` after N ms without
//! progress, then prints one summary line.

use redis::{Commands, ConnectionLike, RedisResult, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// `--name` and its default; `XP_NAME` in the environment overrides the
/// default (`--block-ms` -> `XP_BLOCK_MS`). No consumer means `worker-<pid>`,
/// no dead-letter key `<stream>:dead`.
#[rustfmt::skip]
const OPTIONS: [(&str, &str); 13] = [
    ("host", "127.0.0.1"), ("port", "6379"), ("stream", "payments"), ("group", "billing"),
    ("consumer", ""), ("totals", "totals"), ("receipts", "receipts"), ("dead-letter", ""),
    ("max-deliveries", "3"), ("count", "10"), ("block-ms", "1000"), ("min-idle-ms", "60000"),
    ("until-idle-ms", "0"),
];

fn options() -> HashMap<&'static str, String> {
    let mut opts: HashMap<_, _> = OPTIONS
        .iter()
        .map(|&(name, default)| {
            let env = format!("XP_{}", name.to_uppercase().replace('-', "_"));
            (
                name,
                std::env::var(env).unwrap_or_else(|_| default.to_string()),
            )
        })
        .collect();
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let name = pair[0].trim_start_matches("--");
        match (OPTIONS.iter().find(|(n, _)| *n == name), pair.get(1)) {
            (Some((n, _)), Some(v)) => opts.insert(n, v.clone()),
            _ => {
                let names: Vec<_> = OPTIONS.iter().map(|(n, _)| format!("--{n}")).collect();
                eprintln!("usage: xprocess-worker [{} VALUE]...", names.join("|"));
                std::process::exit(2);
            }
        };
    }
    if opts["consumer"].is_empty() {
        opts.insert("consumer", format!("worker-{}", std::process::id()));
    }
    if opts["dead-letter"].is_empty() {
        opts.insert("dead-letter", format!("{}:dead", opts["stream"]));
    }
    opts
}

fn main() -> RedisResult<()> {
    let o = options();
    let num = |name: &str| -> u64 { o[name].parse().expect("option must be a number") };
    let (stream, group, me, dead_letter) =
        (&o["stream"], &o["group"], &o["consumer"], &o["dead-letter"]);

    // Stop between two calls, never in the middle of one: a call applies and
    // acks its entries or leaves them pending, all at once, even if we die.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).expect("install signal handler");
    }

    // No read timeout (the default): a READ ... BLOCK call holds the
    // connection for up to --block-ms, as XREADGROUP ... BLOCK does.
    let url = format!("redis://{}:{}/", o["host"], o["port"]);
    let mut con = redis::Client::open(url)?.get_connection()?;
    // Group at 0: a new group processes the stream from its first entry.
    let created: RedisResult<()> = con.xgroup_create_mkstream(stream, group, "0");
    if let Err(e) = created {
        if e.code() != Some("BUSYGROUP") {
            return Err(e);
        }
    }

    // The group's definition: its options and the effects of one entry,
    // stored once at the group's derived dedupe key
    // ({payments}:xprocess:billing by default) and applied by every call of
    // the group that gives no effects, whichever worker makes it. Every
    // worker sends the same one at start-up. A redefinition replaces it for
    // all of them, so the workers of one group must agree on --dead-letter,
    // --max-deliveries, --totals and --receipts (the last one started wins).
    // XPROCESS.START <stream> <group> would have the server run it itself,
    // with no worker at all.
    // - DEADLETTER ... AFTER: an entry that failed on its max-deliveries-th
    //   delivery is appended to the dead-letter stream (with the error and
    //   its fields), acked and recorded, instead of coming back forever;
    // - the effects of one entry, expanded by the server from the entry's own
    //   fields; keys are literal. $@id makes the receipt point at its entry.
    let mut define = redis::cmd("XPROCESS.DEFINE");
    define.arg(stream).arg(group);
    define.arg("DEADLETTER").arg(dead_letter);
    define.arg("AFTER").arg(num("max-deliveries"));
    define.arg(&["HINCRBY", &o["totals"], "$customer", "$amount"]);
    define.arg(&["XADD", &o["receipts"], "FIELDS", "2"]);
    define.arg(&["src", "$@id", "amount", "$amount"]);
    define.query::<()>(&mut con)?;

    // The whole loop step, the same call every time, without effects (the
    // server applies the definition's):
    // - CONSUMER: the entries are taken for us (and would be fenced if we
    //   named them with IDS instead of READ);
    // - READ: CLAIM takes over entries pending (for anyone) for min-idle ms,
    //   a consumer that crashed or stalls, or one of ours that failed;
    //   min-idle must exceed the time a healthy worker needs for a call. Then
    //   new entries up to COUNT. With nothing to do, BLOCK waits up to
    //   block-ms for an XADD; it bounds how soon a stop request is noticed,
    //   and how late an entry that just became idle enough is claimed.
    let mut call = redis::cmd("XPROCESS");
    call.arg(stream).arg(group).arg("CONSUMER").arg(me);
    call.arg("READ").arg("COUNT").arg(num("count"));
    call.arg("CLAIM").arg(num("min-idle-ms"));
    call.arg("BLOCK").arg(num("block-ms"));
    let until_idle = num("until-idle-ms") as u128;
    let (mut applied, mut duplicates, mut dead, mut errors, mut notowner) = (0, 0, 0, 0, 0);
    let mut last_progress = Instant::now();
    eprintln!("{me}: consuming {stream} in group {group}");

    while !stop.load(Ordering::Relaxed) {
        // One [id, outcome] pair per entry taken; an empty array when BLOCK
        // timed out. Not call.query(): it turns an error anywhere in the
        // reply into an error for the whole call. req_command keeps the
        // per-entry errors in their slots; a whole-call error (NOGROUP,
        // WRONGTYPE...) stops us.
        let replies = match con.req_command(&call)? {
            Value::Array(replies) => replies,
            Value::ServerError(e) => return Err(e.into()),
            other => panic!("unexpected XPROCESS reply {other:?}"),
        };
        let mut progress = false;
        for pair in replies {
            let (id, outcome) = match pair {
                Value::Array(pair) if pair.len() == 2 => {
                    let mut pair = pair.into_iter();
                    let id: String = redis::from_owned_redis_value(pair.next().unwrap())?;
                    (id, pair.next().unwrap())
                }
                other => panic!("unexpected XPROCESS reply element {other:?}"),
            };
            progress |= matches!(outcome, Value::Int(0..=2));
            match outcome {
                Value::Int(1) => applied += 1,
                // Already applied (by us before a crash, or by another
                // consumer): nothing happened twice, and it is acked now.
                Value::Int(0) => duplicates += 1,
                // Failed on its max-deliveries-th delivery: in the dead-letter
                // stream now, acked, never applied.
                Value::Int(2) => {
                    dead += 1;
                    eprintln!("{me}: {id} moved to {dead_letter}");
                }
                // Another consumer owns it. READ never answers this (it has
                // just taken the entries for us); a loop on IDS can.
                Value::ServerError(e) if e.code() == "NOTOWNER" => {
                    notowner += 1;
                    eprintln!("{me}: skip {id}, another consumer owns it");
                }
                // Nothing was changed and the entry stays pending for us: it
                // comes back through CLAIM after min-idle ms, and goes to the
                // dead-letter stream on its max-deliveries-th failure.
                other => {
                    errors += 1;
                    eprintln!("{me}: {id} failed, left pending: {other:?}");
                }
            }
        }
        if progress {
            last_progress = Instant::now();
        } else if until_idle > 0 && last_progress.elapsed().as_millis() >= until_idle {
            break;
        }
    }
    println!(
        "stopped: applied={applied} duplicates={duplicates} dead={dead} errors={errors} \
         notowner={notowner}"
    );
    Ok(())
}
