//! An XPROCESS consumer worker with the `redis` crate (sync API).
//!
//! Reads new entries with XREADGROUP, takes over abandoned ones with
//! XAUTOCLAIM, and applies each entry exactly once with XPROCESS: add the
//! amount to the customer's total and append a receipt. Options are
//! `--name value` (see `OPTIONS`).
//! Stops on SIGINT/SIGTERM, or with `--until-idle-ms N` after N ms without
//! progress, then prints one summary line.

use redis::streams::{StreamAutoClaimOptions, StreamAutoClaimReply};
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{Commands, ConnectionLike, RedisResult, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// `--name` and its default; `XP_NAME` in the environment overrides the
/// default (`--block-ms` -> `XP_BLOCK_MS`). No consumer means `worker-<pid>`.
#[rustfmt::skip]
const OPTIONS: [(&str, &str); 11] = [
    ("host", "127.0.0.1"), ("port", "6379"), ("stream", "payments"), ("group", "billing"),
    ("consumer", ""), ("totals", "totals"), ("receipts", "receipts"), ("count", "10"),
    ("block-ms", "1000"), ("min-idle-ms", "60000"), ("until-idle-ms", "0"),
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
    opts
}

fn main() -> RedisResult<()> {
    let o = options();
    let num = |name: &str| -> u64 { o[name].parse().expect("option must be a number") };
    let (stream, group, me) = (&o["stream"], &o["group"], &o["consumer"]);

    // Stop between batches, never in the middle of one: a batch either gets
    // its XPROCESS reply or stays pending for XAUTOCLAIM to recover.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).expect("install signal handler");
    }

    let url = format!("redis://{}:{}/", o["host"], o["port"]);
    let mut con = redis::Client::open(url)?.get_connection()?;
    // Group at 0: a new group processes the stream from its first entry.
    let created: RedisResult<()> = con.xgroup_create_mkstream(stream, group, "0");
    if let Err(e) = created {
        if e.code() != Some("BUSYGROUP") {
            return Err(e);
        }
    }

    // The effects of one entry, expanded by the server from the entry's own
    // fields; keys are literal. $@id makes the receipt point at its entry.
    #[rustfmt::skip]
    let effects = [
        "HINCRBY", &o["totals"], "$customer", "$amount",
        "XADD", &o["receipts"], "FIELDS", "2", "src", "$@id", "amount", "$amount",
    ];
    let (count, block) = (num("count") as usize, num("block-ms") as usize);
    let (min_idle, until_idle) = (num("min-idle-ms"), num("until-idle-ms") as u128);
    let read_opts = || StreamReadOptions::default().group(group, me).count(count);
    let (read, read_block) = (read_opts(), read_opts().block(block));
    let (mut applied, mut duplicates, mut errors, mut notowner, mut claimed) = (0, 0, 0, 0, 0);
    let mut cursor = "0-0".to_string();
    let mut last_progress = Instant::now();
    eprintln!("{me}: consuming {stream} in group {group}");

    while !stop.load(Ordering::Relaxed) {
        // First take over entries another consumer read but did not finish
        // within min-idle ms (it crashed or stalls). min-idle must exceed the
        // time a healthy worker needs for a batch, or workers steal from each
        // other; if they do, CONSUMER fencing below still keeps it exact.
        let opts = StreamAutoClaimOptions::default().count(count);
        let reply: StreamAutoClaimReply =
            con.xautoclaim_options(stream, group, me, min_idle, &cursor, opts)?;
        cursor = reply.next_stream_id;
        let mut ids: Vec<String> = reply.claimed.into_iter().map(|e| e.id).collect();
        claimed += ids.len();
        // Then new entries, waiting for some only if there is nothing else to
        // do (reading even when entries were claimed: a claimed entry that
        // keeps failing must not starve new ones). BLOCK stays short so a
        // stop request is noticed soon.
        let read = if ids.is_empty() { &read_block } else { &read };
        let reply: Option<StreamReadReply> = con.xread_options(&[stream], &[">"], read)?;
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            ids.extend(key.ids.into_iter().map(|e| e.id));
        }

        let mut progress = false;
        if !ids.is_empty() {
            // CONSUMER: apply an entry only while it is still pending for us.
            // If a slower worker claimed it away, we get NOTOWNER instead of
            // applying it a second time behind the new owner's back.
            let mut cmd = redis::cmd("XPROCESS");
            cmd.arg(stream)
                .arg(group)
                .arg("CONSUMER")
                .arg(me)
                .arg(&effects[..]);
            cmd.arg("IDS").arg(ids.len()).arg(&ids);
            // Not cmd.query(): it turns an error anywhere in the reply into an
            // error for the whole call. req_command keeps the per-entry errors.
            let replies = match con.req_command(&cmd)? {
                Value::Array(replies) => replies,
                Value::ServerError(e) => return Err(e.into()),
                other => panic!("unexpected XPROCESS reply {other:?}"),
            };
            for (id, reply) in ids.iter().zip(replies) {
                progress |= matches!(reply, Value::Int(_));
                match reply {
                    Value::Int(1) => applied += 1,
                    // Already applied (by us before a crash, or by another
                    // consumer): nothing happened twice, and it is acked now.
                    Value::Int(0) => duplicates += 1,
                    Value::ServerError(e) if e.code() == "NOTOWNER" => {
                        notowner += 1;
                        eprintln!("{me}: skip {id}, another consumer owns it");
                    }
                    // Nothing was changed and the entry stays pending: it is
                    // retried when XAUTOCLAIM hands it out again after min-idle.
                    other => {
                        errors += 1;
                        eprintln!("{me}: {id} failed, left pending: {other:?}");
                    }
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
        "stopped: applied={applied} duplicates={duplicates} errors={errors} \
         notowner={notowner} claimed={claimed}"
    );
    Ok(())
}
