#!/usr/bin/env bash
# Instructions per entry of the benchmark's timed phases, counted by callgrind:
# `cargo bench --bench xprocess` with every redis-server run under
# `valgrind --tool=callgrind`, the counters zeroed when a timed phase starts
# and dumped when it ends (BENCH_PROFILE, see benches/xprocess/profile.rs), so
# everything the server does for the phase is counted (reading the socket,
# parsing, the commands, the replies) and nothing else. Instruction counts do
# not depend on the machine's load, unlike the timings of `make bench`.
#
# Usage: scripts/bench-callgrind.sh [BENCH_ONLY tags, default: loop]
#   e.g. scripts/bench-callgrind.sh loop-read,loop-ids
#        scripts/bench-callgrind.sh xprocess1,xprocess100,lua
# Entries per phase: N (default 5000; callgrind runs about 50x slower).
# Needs valgrind (callgrind_control) and the release module (cargo build --release).
set -euo pipefail

only=${1:-loop}
n=${N:-5000}
server=$(command -v "${REDIS_SERVER:-redis-server}")
command -v callgrind_control >/dev/null || { echo "callgrind_control not found: install valgrind" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/xprocess-callgrind.XXXXXX")

cat >"$dir/server.sh" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$dir/cg.%p.out $server "\$@"
EOF
cat >"$dir/profile.sh" <<EOF
#!/bin/bash
# \$1: the server's pid, \$2: the phase's tag. SIGINT ends the phase.
callgrind_control -z "\$1" >/dev/null
trap 'callgrind_control --dump="\$2" "\$1" >/dev/null; echo "\$2 \$1" >>$dir/dumps; exit 0' INT
while :; do sleep 0.05; done
EOF
chmod +x "$dir/server.sh" "$dir/profile.sh"

cd "$(dirname "$0")/.."
REDIS_SERVER="$dir/server.sh" BENCH_ONLY="$only" BENCH_ROUNDS=1 BENCH_N="$n" BENCH_LOOP_N="$n" \
    BENCH_LATENCY_CALLS=1 BENCH_PROFILE="$dir/profile.sh {pid} {tag}" \
    cargo bench --bench xprocess >"$dir/bench.out" 2>"$dir/bench.err" ||
    { tail -20 "$dir/bench.err" >&2; exit 1; }

echo "instructions per entry, whole server, N = $n ($("$server" --version | cut -d' ' -f1-3)):"
while read -r tag pid; do
    total=$(awk '/^summary:/ {print $2}' "$dir/cg.$pid.out.1")
    printf '  %-16s %8d\n' "$tag" $((total / n))
done <"$dir/dumps"
echo "profiles: $dir/cg.<pid>.out.1 (callgrind_annotate --inclusive=yes <file>); pids: $dir/dumps"
