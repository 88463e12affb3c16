#!/usr/bin/env python3
"""The consumer loop of benches/xprocess/consumer_loop.rs with redis-py.

One loop, one connection, against a server whose stream `payments` holds
new entries for the group `billing` (created at `$` before they were added):
the client takes and processes them COUNT at a time, each request waiting
for its reply as a worker does, until the server says nothing is left.
Prints one line of JSON: the entries done, the wall time of the loop, the
requests written and this thread's CPU time.

Loops (--loop):
  ack          XREADGROUP COUNT 100, then XACK of the IDs read (the
               at-least-once floor: no effect, no dedupe)
  read         XPROCESS ... CONSUMER c HINCRBY ... READ COUNT 100
  read-counts  the same with REPLY COUNTS
  ids          XREADGROUP COUNT 100, then XPROCESS ... IDS k id...
  lua          XREADGROUP COUNT 100, then EVALSHA of the Lua script per
               entry, the calls in one pipeline (--lua-script: the script
               of benches/xprocess/contenders.rs, LUA_SCRIPT)

Every reply is checked as it comes: every entry applied (1, or the counts),
XACK acked all, at most COUNT entries per request and --entries in all.

Usage: consumer_loop.py --port 6379 --loop read --entries 100000
With --handshake the script connects (and loads the Lua script), prints
`ready`, and starts the loop when a line arrives on stdin: the benchmark
starts its clocks and profilers then.
"""

import argparse
import json
import sys
import time

import redis

STREAM = "payments"
GROUP = "billing"
CONSUMER = "worker-1"
TOTALS = "totals"
DEDUPE = "{payments}:xprocess:billing"
EFFECT = ("HINCRBY", TOTALS, "$customer", "$amount")
LOOPS = ("ack", "read", "read-counts", "ids", "lua")


def fail(what):
    raise SystemExit(f"consumer_loop.py: {what}")


def take(r, count, left):
    """XREADGROUP the next entries: their IDs (none when nothing is left)."""
    reply = r.xreadgroup(GROUP, CONSUMER, {STREAM: ">"}, count=count)
    if not reply:
        return []
    [[name, entries]] = reply
    if name != STREAM.encode():
        fail(f"XREADGROUP: stream {name!r}")
    if len(entries) > min(count, left):
        fail(f"XREADGROUP: {len(entries)} entries with {left} left")
    return [entry_id for entry_id, _fields in entries]


def loop_ack(r, count, n):
    done = trips = 0
    while True:
        ids = take(r, count, n - done)
        trips += 1
        if not ids:
            return done, trips
        acked = r.xack(STREAM, GROUP, *ids)
        trips += 1
        if acked != len(ids):
            fail(f"XACK acked {acked} of {len(ids)}")
        done += len(ids)


def loop_ids(r, count, n):
    done = trips = 0
    while True:
        ids = take(r, count, n - done)
        trips += 1
        if not ids:
            return done, trips
        reply = r.execute_command("XPROCESS", STREAM, GROUP, *EFFECT, "IDS", len(ids), *ids)
        trips += 1
        if len(reply) != len(ids) or any(v != 1 for v in reply):
            fail(f"XPROCESS IDS: not every entry replied 1: {reply!r}")
        done += len(ids)


def loop_lua(r, count, n, sha):
    done = trips = 0
    pipe = r.pipeline(transaction=False)
    while True:
        ids = take(r, count, n - done)
        trips += 1
        if not ids:
            return done, trips
        for entry_id in ids:
            pipe.evalsha(sha, 3, STREAM, DEDUPE, TOTALS, GROUP, entry_id)
        reply = pipe.execute()
        trips += 1
        if any(v != 1 for v in reply):
            fail(f"EVALSHA: not every entry replied 1: {reply!r}")
        done += len(ids)


def loop_read(r, count, n):
    read = ("XPROCESS", STREAM, GROUP, "CONSUMER", CONSUMER, *EFFECT, "READ", "COUNT", count)
    done = trips = 0
    while True:
        reply = r.execute_command(*read)
        trips += 1
        if not reply:
            return done, trips
        if len(reply) > min(count, n - done):
            fail(f"READ: {len(reply)} entries with {n - done} left")
        for entry_id, outcome in reply:
            if outcome != 1:
                fail(f"READ: entry {entry_id!r} replied {outcome!r}")
        done += len(reply)


def loop_read_counts(r, count, n):
    read = ("XPROCESS", STREAM, GROUP, "CONSUMER", CONSUMER, *EFFECT, "READ", "COUNT", count,
            "REPLY", "COUNTS")
    done = trips = 0
    while True:
        reply = r.execute_command(*read)
        trips += 1
        if not reply:  # the empty array: nothing left, whatever REPLY says
            return done, trips
        # A map in RESP3, a flat field/value array in RESP2.
        counts = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))
        counts = {k.decode() if isinstance(k, bytes) else k: v for k, v in counts.items()}
        want = {"applied": min(count, n - done), "duplicates": 0, "dead-lettered": 0,
                "failed": 0, "errors": []}
        if counts != want:
            fail(f"READ REPLY COUNTS: {counts!r}, expected {want!r}")
        done += counts["applied"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--loop", choices=LOOPS, required=True)
    ap.add_argument("--entries", type=int, required=True,
                    help="new entries in the stream: the loop must do them all")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--lua-script", help="file of the Lua script (--loop lua)")
    ap.add_argument("--handshake", action="store_true",
                    help="print `ready`, start on a line on stdin")
    args = ap.parse_args()

    r = redis.Redis(host=args.host, port=args.port, protocol=2)
    r.ping()
    sha = None
    if args.loop == "lua":
        if not args.lua_script:
            fail("--loop lua needs --lua-script")
        with open(args.lua_script) as f:
            sha = r.script_load(f.read())
    if args.handshake:
        print("ready", flush=True)
        if not sys.stdin.readline():
            fail("stdin closed before the start")

    n, count = args.entries, args.count
    cpu0, t0 = time.thread_time(), time.perf_counter()
    if args.loop == "ack":
        done, trips = loop_ack(r, count, n)
    elif args.loop == "ids":
        done, trips = loop_ids(r, count, n)
    elif args.loop == "lua":
        done, trips = loop_lua(r, count, n, sha)
    elif args.loop == "read":
        done, trips = loop_read(r, count, n)
    else:
        done, trips = loop_read_counts(r, count, n)
    seconds, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
    if done != n:
        fail(f"{done} entries done, expected {n}")

    print(json.dumps({
        "loop": args.loop,
        "entries": done,
        "seconds": seconds,
        "entries_per_s": done / seconds if seconds > 0 else 0.0,
        "requests": trips,
        "client_cpu_seconds": cpu,
        "python": sys.version.split()[0],
        "redis_py": redis.__version__,
        "hiredis": bool(getattr(redis.utils, "HIREDIS_AVAILABLE", False)),
    }), flush=True)


if __name__ == "__main__":
    main()
