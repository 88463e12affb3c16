#!/usr/bin/env python3
"""An XPROCESS consumer worker with redis-py.

Reads new entries with XREADGROUP, takes over abandoned ones with XAUTOCLAIM,
and applies each entry exactly once with XPROCESS: add the amount to the
customer's total and append a receipt. Every option can also be given in the
environment as XP_<NAME> (--block-ms -> XP_BLOCK_MS). Stops on SIGINT/SIGTERM,
or with --until-idle-ms N after N ms without progress, then prints one summary
line.
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
        ("totals", "totals"), ("receipts", "receipts"), ("count", 10),
        ("block-ms", 1000), ("min-idle-ms", 60000), ("until-idle-ms", 0),
    ]:
        env = "XP_" + name.upper().replace("-", "_")
        p.add_argument("--" + name, type=type(default), default=type(default)(os.environ.get(env, default)))
    return p.parse_args()


def main():
    o = options()
    me = o.consumer
    # Stop between batches, never in the middle of one: a batch either gets
    # its XPROCESS reply or stays pending for XAUTOCLAIM to recover.
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))

    r = redis.Redis(host=o.host, port=o.port, decode_responses=True)
    try:
        # Group at 0: a new group processes the stream from its first entry.
        r.xgroup_create(o.stream, o.group, id="0", mkstream=True)
    except redis.ResponseError as e:
        if not str(e).startswith("BUSYGROUP"):
            raise

    # The effects of one entry, expanded by the server from the entry's own
    # fields; keys are literal. $@id makes the receipt point at its entry.
    effects = ["HINCRBY", o.totals, "$customer", "$amount",
               "XADD", o.receipts, "FIELDS", 2, "src", "$@id", "amount", "$amount"]
    stats = dict.fromkeys(["applied", "duplicates", "errors", "notowner", "claimed"], 0)
    cursor = "0-0"
    last_progress = time.monotonic()
    print(f"{me}: consuming {o.stream} in group {o.group}", file=sys.stderr)

    while not stop:
        # First take over entries another consumer read but did not finish
        # within min-idle ms (it crashed or stalls). min-idle must exceed the
        # time a healthy worker needs for a batch, or workers steal from each
        # other; if they do, CONSUMER fencing below still keeps it exact.
        cursor, claimed, _deleted = r.xautoclaim(
            o.stream, o.group, me, o.min_idle_ms, cursor, count=o.count)
        ids = [entry_id for entry_id, _fields in claimed]
        stats["claimed"] += len(ids)
        # Then new entries, waiting for some only if there is nothing else to
        # do (reading even when entries were claimed: a claimed entry that
        # keeps failing must not starve new ones). BLOCK stays short so a stop
        # request is noticed soon.
        block = None if ids else o.block_ms
        reply = r.xreadgroup(o.group, me, {o.stream: ">"}, count=o.count, block=block)
        ids += [entry_id for _stream, entries in reply or [] for entry_id, _fields in entries]

        progress = False
        if ids:
            # CONSUMER: apply an entry only while it is still pending for us.
            # If a slower worker claimed it away, we get NOTOWNER instead of
            # applying it a second time behind the new owner's back. A
            # whole-call error (NOGROUP, WRONGTYPE...) raises and stops us.
            replies = r.execute_command(
                "XPROCESS", o.stream, o.group, "CONSUMER", me, *effects, "IDS", len(ids), *ids)
            # redis-py returns a per-entry error as an exception object in the
            # list instead of raising it.
            for entry_id, reply in zip(ids, replies):
                if reply == 1:
                    stats["applied"] += 1
                elif reply == 0:
                    # Already applied (by us before a crash, or by another
                    # consumer): nothing happened twice, and it is acked now.
                    stats["duplicates"] += 1
                elif str(reply).startswith("NOTOWNER"):
                    stats["notowner"] += 1
                    print(f"{me}: skip {entry_id}, another consumer owns it", file=sys.stderr)
                else:
                    # Nothing was changed and the entry stays pending: it is
                    # retried when XAUTOCLAIM hands it out again after min-idle.
                    stats["errors"] += 1
                    print(f"{me}: {entry_id} failed, left pending: {reply}", file=sys.stderr)
                progress |= reply in (0, 1)
        if progress:
            last_progress = time.monotonic()
        elif o.until_idle_ms and (time.monotonic() - last_progress) * 1000 >= o.until_idle_ms:
            break

    print("stopped: " + " ".join(f"{k}={v}" for k, v in stats.items()), flush=True)


if __name__ == "__main__":
    main()
