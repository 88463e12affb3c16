#!/usr/bin/env python3
"""An XPROCESS consumer worker with redis-py.

At start-up it stores the group's definition with XPROCESS.DEFINE (every
worker the same one), then loops on one command without effects:
XPROCESS ... READ takes entries for this consumer (first those another
consumer left pending for --min-idle-ms, then new ones), applies the
definition's effects to each exactly once (add the amount to the customer's
total and append a receipt), acks it, and moves an entry that failed
--max-deliveries times to the dead-letter stream, all in one atomic step.
Every option can also be given in the environment as XP_<NAME> (--block-ms
-> XP_BLOCK_MS). Stops on SIGINT/SIGTERM, or with --until-idle-ms N after N
ms without progress, then prints one summary line.
"""
import argparse
import os
import signal
import sys
import time

import redis


def options():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [
        ("host", "127.0.0.1"), ("port", 6379), ("stream", "payments"),
        ("group", "billing"), ("consumer", f"worker-{os.getpid()}"),
        ("totals", "totals"), ("receipts", "receipts"), ("dead-letter", ""),
        ("max-deliveries", 3), ("count", 10), ("block-ms", 1000),
        ("min-idle-ms", 60000), ("until-idle-ms", 0),
    ]:
        env = "XP_" + name.upper().replace("-", "_")
        p.add_argument("--" + name, type=type(default), default=type(default)(os.environ.get(env, default)))
    o = p.parse_args()
    # No dead-letter key given: <stream>:dead.
    o.dead_letter = o.dead_letter or f"{o.stream}:dead"
    return o


def main():
    o = options()
    me = o.consumer
    # Stop between two calls, never in the middle of one: a call applies and
    # acks its entries or leaves them pending, all at once, even if we die.
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))

    # No socket timeout (the default): a READ ... BLOCK call holds the
    # connection for up to --block-ms, as XREADGROUP ... BLOCK does.
    r = redis.Redis(host=o.host, port=o.port, decode_responses=True)
    try:
        # Group at 0: a new group processes the stream from its first entry.
        r.xgroup_create(o.stream, o.group, id="0", mkstream=True)
    except redis.ResponseError as e:
        if not str(e).startswith("BUSYGROUP"):
            raise

    # The group's definition: its options and the effects of one entry,
    # stored once at the group's derived dedupe key
    # ({payments}:xprocess:billing by default) and applied by every call of
    # the group that gives no effects, whichever worker makes it. Every worker
    # sends the same one at start-up. A redefinition replaces it for all of
    # them, so the workers of one group must agree on --dead-letter,
    # --max-deliveries, --totals and --receipts (the last one started wins).
    # XPROCESS.START <stream> <group> would have the server run it itself,
    # with no worker at all.
    # - DEADLETTER ... AFTER: an entry that failed on its max-deliveries-th
    #   delivery is appended to the dead-letter stream (with the error and
    #   its fields), acked and recorded, instead of coming back forever;
    # - the effects of one entry, expanded by the server from the entry's own
    #   fields; keys are literal. $@id makes the receipt point at its entry.
    r.execute_command("XPROCESS.DEFINE", o.stream, o.group,
                      "DEADLETTER", o.dead_letter, "AFTER", o.max_deliveries,
                      "HINCRBY", o.totals, "$customer", "$amount",
                      "XADD", o.receipts, "FIELDS", 2, "src", "$@id", "amount", "$amount")

    # The whole loop step, the same call every time, without effects (the
    # server applies the definition's):
    # - CONSUMER: the entries are taken for us (and would be fenced if we
    #   named them with IDS instead of READ);
    # - READ: CLAIM takes over entries pending (for anyone) for min-idle ms,
    #   a consumer that crashed or stalls, or one of ours that failed; min-idle
    #   must exceed the time a healthy worker needs for a call. Then new
    #   entries up to COUNT. With nothing to do, BLOCK waits up to block-ms
    #   for an XADD; it bounds how soon a stop request is noticed, and how
    #   late an entry that just became idle enough is claimed.
    call = ["XPROCESS", o.stream, o.group, "CONSUMER", me,
            "READ", "COUNT", o.count, "CLAIM", o.min_idle_ms, "BLOCK", o.block_ms]
    stats = dict.fromkeys(["applied", "duplicates", "dead", "errors", "notowner"], 0)
    last_progress = time.monotonic()
    print(f"{me}: consuming {o.stream} in group {o.group}", file=sys.stderr)

    while not stop:
        # One [id, outcome] pair per entry taken; an empty list when BLOCK
        # timed out. A whole-call error (NOGROUP, WRONGTYPE...) raises and
        # stops us. redis-py returns a per-entry error as an exception object
        # in its slot instead of raising it.
        progress = False
        for entry_id, outcome in r.execute_command(*call):
            if outcome == 1:
                stats["applied"] += 1
            elif outcome == 0:
                # Already applied (by us before a crash, or by another
                # consumer): nothing happened twice, and it is acked now.
                stats["duplicates"] += 1
            elif outcome == 2:
                # Failed on its max-deliveries-th delivery: in the dead-letter
                # stream now, acked, never applied.
                stats["dead"] += 1
                print(f"{me}: {entry_id} moved to {o.dead_letter}", file=sys.stderr)
            elif str(outcome).startswith("NOTOWNER"):
                # Another consumer owns it. READ never answers this (it has
                # just taken the entries for us); a loop on IDS can.
                stats["notowner"] += 1
                print(f"{me}: skip {entry_id}, another consumer owns it", file=sys.stderr)
            else:
                # Nothing was changed and the entry stays pending for us: it
                # comes back through CLAIM after min-idle ms, and goes to the
                # dead-letter stream on its max-deliveries-th failure.
                stats["errors"] += 1
                print(f"{me}: {entry_id} failed, left pending: {outcome}", file=sys.stderr)
            progress |= outcome in (0, 1, 2)
        if progress:
            last_progress = time.monotonic()
        elif o.until_idle_ms and (time.monotonic() - last_progress) * 1000 >= o.until_idle_ms:
            break

    print("stopped: " + " ".join(f"{k}={v}" for k, v in stats.items()), flush=True)


if __name__ == "__main__":
    main()
