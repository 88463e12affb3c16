#!/usr/bin/env bash
# Instructions per entry of the benchmark's timed phases, counted by callgrind:
# `cargo bench --bench xprocess` with every redis-server run under
# `valgrind --tool=callgrind`, the counters zeroed when a timed phase starts
# and dumped when it ends (BENCH_PROFILE, see benches/xprocess/profile.rs), so
# everything the server does for the phase is counted (reading the socket,
# parsing, the commands, the replies) and nothing else. Instruction counts do
# not depend on the machine's load, unlike the timings of `make bench`.
# Each phase is printed twice: the whole dump, and without serverCron (its
# inclusive cost in the dump, from callgrind_annotate), which runs ten times
# a second of wall time whatever the load, so a phase that takes longer on a
# busy machine counts more of it.
#
# Usage: scripts/bench-callgrind.sh [BENCH_ONLY tags, default: loop]
#   e.g. scripts/bench-callgrind.sh loop-read,loop-ids
#        scripts/bench-callgrind.sh xprocess1,xprocess100,lua
#        scripts/bench-callgrind.sh effects
#        scripts/bench-callgrind.sh fcall
#        scripts/bench-callgrind.sh pipe
#        scripts/bench-callgrind.sh loops
# `effects` measures the effect contenders (benches/xprocess/contenders.rs,
# EFFECTS): HSET, INCRBY and ZINCRBY each as XPROCESS with 100 IDs per call,
# as the Lua script and as the bare command, and XPROCESS whose effect never
# applies. With EFFECTS_OUT=<file> (`make bench` sets BENCHMARKS.md) it
# writes their table into that file, in a section of its own below the line
# under which `cargo bench` keeps everything, replaced when measured again.
# `fcall` measures the FCALL contenders (FCALLS): a Redis Function (a
# running maximum and a count per customer) as XPROCESS' FCALL effect at 1
# and 100 IDs per call, the same logic inline in the Lua script, and the
# bare FCALL. With FCALL_OUT=<file> it writes their table into that file,
# in a section of its own (before `make tax`'s, or at the end).
# `pipe` (or pipe-ack, pipe-read, pipe-standing) counts the pipelines of
# benches/xprocess/pipeline.rs: the phase is the producer's XADDs and the
# consumer's work at once, so an entry's count includes its XADD (the same
# in every row), and the consumer's timed-out BLOCK 1 requests or XINFO
# polls, which depend on how far the slowed server lags the producer.
# `loops` (this script's own tag, not cargo bench's) counts the consumer
# loops (loop-lua, loop-ids, loop-read, loop-read-counts, loop-ack,
# loop-standing), the pipelines (pipe-ack, pipe-read, pipe-standing) and the
# per-entry contenders xprocess1, xprocess10, xprocess100, lua and naive.
# With LOOPS_OUT=<file> (`make bench` sets BENCHMARKS.md) it writes their
# table, with ratios to the floors and to Lua and naive, into that file, in
# a section of its own right below the line under which `cargo bench` keeps
# everything, replaced when measured again.
# Entries per phase: N (default 5000; callgrind runs about 50x slower).
# REDIS_SERVER: the server binary itself (default redis-server on PATH);
# valgrind does not follow the exec of target/servers' wrappers.
# Needs valgrind (callgrind_control, callgrind_annotate) and the release
# module (cargo build --release).
set -euo pipefail

only=${1:-loop}
n=${N:-5000}
effects_out=${EFFECTS_OUT:-}
fcall_out=${FCALL_OUT:-}
loops_out=${LOOPS_OUT:-}
server=$(command -v "${REDIS_SERVER:-redis-server}")
for tool in callgrind_control callgrind_annotate; do
    command -v "$tool" >/dev/null || { echo "$tool not found: install valgrind" >&2; exit 1; }
done
if [ -n "$effects_out" ] && [ "$only" != effects ]; then
    echo "EFFECTS_OUT is for the effects table: run with the tag 'effects' alone" >&2
    exit 1
fi
if [ -n "$fcall_out" ] && [ "$only" != fcall ]; then
    echo "FCALL_OUT is for the FCALL table: run with the tag 'fcall' alone" >&2
    exit 1
fi
if [ -n "$loops_out" ] && [ "$only" != loops ]; then
    echo "LOOPS_OUT is for the loops table: run with the tag 'loops' alone" >&2
    exit 1
fi

# The rows of the loops table: tag, its kind (what its ratios compare it
# with: `loop` the floor loop-ack, `pipe` the floor pipe-ack, `call` Lua and
# naive), then its name as the tables of `cargo bench` give it.
loops_rows() {
    printf '%s\t%s\t%s\n' \
        loop-lua loop 'XREADGROUP COUNT 100 + EVALSHA per entry (Lua script, pipelined)' \
        loop-ids loop 'XREADGROUP COUNT 100 + XPROCESS ... IDS 100 id...' \
        loop-read loop 'XPROCESS ... READ COUNT 100' \
        loop-read-counts loop 'XPROCESS ... READ COUNT 100 REPLY COUNTS' \
        loop-ack loop 'XREADGROUP COUNT 100 + XACK 100 IDs (at-least-once floor)' \
        loop-standing loop 'XPROCESS.START COUNT 100 (standing processor, no worker)' \
        pipe-ack pipe 'XREADGROUP COUNT 100 BLOCK 1 + XACK (at-least-once floor)' \
        pipe-read pipe 'XPROCESS ... READ COUNT 100 BLOCK 1 (worker)' \
        pipe-standing pipe 'XPROCESS.START COUNT 100 (standing processor, no worker)' \
        xprocess1 call 'XPROCESS (index), 1 ID per call' \
        xprocess10 call 'XPROCESS (index), 10 IDs per call' \
        xprocess100 call 'XPROCESS (index), 100 IDs per call' \
        lua call 'Lua script (EVALSHA), 1 entry per call' \
        naive call 'naive pipeline HINCRBY+SADD+XACK (not atomic)'
}
bench_only=$only
if [ "$only" = loops ]; then
    bench_only=$(loops_rows | cut -f1 | paste -sd,)
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/xprocess-callgrind.XXXXXX")

cat >"$dir/server.sh" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$dir/cg.%p.out $server "\$@"
EOF
cat >"$dir/profile.sh" <<EOF
#!/bin/bash
# \$1: the server's pid, \$2: the phase's tag, \$3: the file to create once
# the counters are zeroed (the phase starts then). SIGINT ends the phase.
# The trap is set first: a SIGINT that came while callgrind_control runs
# would be lost otherwise.
trap 'callgrind_control --dump="\$2" "\$1" >/dev/null; echo "\$2 \$1" >>$dir/dumps; exit 0' INT
callgrind_control -z "\$1" >/dev/null
touch "\$3"
while :; do sleep 0.05; done
EOF
chmod +x "$dir/server.sh" "$dir/profile.sh"

cd "$(dirname "$0")/.."
# Without BENCH_OUT: that run's own tables (timings under callgrind) must not
# replace the file `make bench BENCH_OUT=...` has just written; this script
# writes its sections itself (EFFECTS_OUT, FCALL_OUT, LOOPS_OUT).
env -u BENCH_OUT REDIS_SERVER="$dir/server.sh" BENCH_ONLY="$bench_only" BENCH_ROUNDS=1 BENCH_N="$n" BENCH_LOOP_N="$n" BENCH_PIPE_N="$n" BENCH_PY_N="$n" \
    BENCH_LATENCY_CALLS=1 BENCH_PROFILE="$dir/profile.sh {pid} {tag} {ready}" \
    cargo bench --bench xprocess >"$dir/bench.out" 2>"$dir/bench.err" ||
    { tail -20 "$dir/bench.err" >&2; exit 1; }

# tag <TAB> instructions per entry, whole dump <TAB> without serverCron
while read -r tag pid; do
    file="$dir/cg.$pid.out.1"
    total=$(awk '/^summary:/ {print $2}' "$file")
    # A line of callgrind_annotate: `410,473 ( 1.22%)  ???:serverCron [binary]`.
    cron=$(callgrind_annotate --inclusive=yes --threshold=100 "$file" 2>/dev/null |
        awk 'NF >= 2 && ($NF ~ /:serverCron$/ || $(NF-1) ~ /:serverCron$/) && !found {gsub(",", "", $1); print $1; found = 1}')
    printf '%s\t%d\t%d\n' "$tag" $((total / n)) $(((total - ${cron:-0}) / n))
done <"$dir/dumps" >"$dir/per-entry.tsv"

version=$("$server" --version | cut -d' ' -f1-3)
echo "instructions per entry, whole server, N = $n ($version):"
printf '  %-16s %12s %14s\n' tag "whole dump" "without cron"
while IFS=$'\t' read -r tag whole nocron; do
    printf '  %-16s %12d %14d\n' "$tag" "$whole" "$nocron"
done <"$dir/per-entry.tsv"
echo "profiles: $dir/cg.<pid>.out.1 (callgrind_annotate --inclusive=yes <file>); pids: $dir/dumps"

case $only in
effects | fcall | loops) ;;
*) exit 0 ;;
esac

# field <tag> <column>: 2 = whole dump, 3 = without serverCron.
field() {
    awk -F'\t' -v t="$1" -v c="$2" '$1 == t {print $c}' "$dir/per-entry.tsv"
}
comma() { sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# The machine and software, as `cargo bench` describes them in its Setup.
machine() {
    sed -n '/^## Setup/,/^- Load average/p' "$dir/bench.out" | grep -E '^- (Date|CPU|Cores|RAM|OS|Kernel|redis-server|rustc|Module|Load average)' |
        sed -e "s|^- redis-server: .*|- redis-server: $("$server" --version) (\`$server\`, under callgrind)|"
}

bench_marker='<!-- Generated above this line by `cargo bench --bench xprocess`; everything below it is kept. -->'

# write_section <begin prefix> <end line> <where> <file>: put
# $dir/section.md into <file>, in place of its section if it has one;
# otherwise <where> says: `after-marker` (right below the line under which
# `cargo bench` keeps everything) or `before-tax` (above `make tax`'s
# section, or at the end).
write_section() {
    local begin_prefix=$1 end_line=$2 where=$3 out=$4 old=""
    [ -f "$out" ] && old=$(cat "$out")
    if grep -qF "$begin_prefix" <<<"$old"; then
        awk -v b="$begin_prefix" -v e="$end_line" -v f="$dir/section.md" '
            index($0, b) == 1 && !done {done=1; while ((getline l < f) > 0) print l; skip=1; next}
            skip && $0 == e {skip=0; next}
            !skip' <<<"$old" >"$out.section-tmp"
    elif [ "$where" = after-marker ] && grep -qxF "$bench_marker" <<<"$old"; then
        # Right after the marker: `cargo bench` keeps everything below it.
        awk -v m="$bench_marker" -v f="$dir/section.md" '
            {print}
            $0 == m && !done {print ""; while ((getline l < f) > 0) print l; done=1}' \
            <<<"$old" >"$out.section-tmp"
    elif [ "$where" = before-tax ] && grep -qxF "$bench_marker" <<<"$old" &&
        grep -q '^<!-- make tax: begin' <<<"$old"; then
        awk -v f="$dir/section.md" '
            /^<!-- make tax: begin/ && !done {while ((getline l < f) > 0) print l; print ""; done=1}
            {print}' <<<"$old" >"$out.section-tmp"
    elif [ "$where" = before-tax ] && grep -qxF "$bench_marker" <<<"$old"; then
        { printf '%s\n\n' "$old"; cat "$dir/section.md"; } >"$out.section-tmp"
    else
        {
            [ -n "$old" ] && printf '%s\n\n' "$old"
            printf '%s\n\n' "$bench_marker"
            cat "$dir/section.md"
        } >"$out.section-tmp"
    fi
    mv "$out.section-tmp" "$out"
}

# ---- the FCALL table ----------------------------------------------------------

# The rows of the FCALL table: tag, then what it is.
fcall_rows() {
    printf '%s\t%s\n' \
        fcall1 'XPROCESS `FCALL maxcount 1 {payments}:m:${customer} 1 $amount`, 1 ID per call' \
        fcall100 'XPROCESS, the same, 100 IDs per call' \
        fcall-lua 'Lua script (EVALSHA), the logic inline, 1 entry per call' \
        fcall-native 'bare `FCALL maxcount 1 {payments}:m:<c> <a>`, pipelined (no dedupe, no XACK)'
}

fcall_table() {
    local col=$1 tag what v lua nat r above
    lua=$(field fcall-lua "$col") nat=$(field fcall-native "$col")
    echo "| Contender | instructions per entry | Lua ÷ this | above the bare FCALL |"
    echo "|---|---:|---:|---:|"
    while IFS=$'\t' read -r tag what; do
        v=$(field "$tag" "$col") r="" above=""
        if [ "$tag" != fcall-native ]; then
            r="$(ratio "$lua" "$v")x" above=$(comma $((v - nat)))
        fi
        printf '| %s | %s | %s | %s |\n' "$what" "$(comma "$v")" "$r" "$above"
    done < <(fcall_rows)
}

fcall_section() {
    cat <<EOF
<!-- make bench fcall: begin. Generated by \`make bench\` (scripts/bench-callgrind.sh fcall); replaced when measured again. -->

## FCALL: a Redis Function per entry against the Lua boundary (callgrind)

A read-modify-write no native effect expresses, a running maximum and a
count per customer, as a Redis Function FUNCTION LOADed at setup
(benches/xprocess/workload.rs, \`LIBRARY\`):

\`\`\`lua
redis.register_function('maxcount', function(keys, args)
  local v = tonumber(args[1])
  local cur = tonumber(redis.call('HGET', keys[1], 'max') or '-inf')
  if v > cur then redis.call('HSET', keys[1], 'max', args[1]) end
  return redis.call('HINCRBY', keys[1], 'count', 1)
end)
\`\`\`

- XPROCESS (index store) with the effect
  \`FCALL maxcount 1 {payments}:m:\${customer} 1 \$amount\`, 1 and 100 IDs
  per call: the dedupe check, the function, the record and the XACK in one
  step per entry;
- the classic Lua boundary: EVALSHA of the script of the tables above, one
  entry per call, its \`HINCRBY\` line replaced by the same logic inline,
  nothing else (SISMEMBER of the dedupe Set, XRANGE of the entry,
  \`local key, v = '{payments}:m:' .. entry['customer'], tonumber(entry['amount'])\`,
  the HGET, HSET and HINCRBY above, SADD, XACK);
- the bare \`FCALL\` per entry, pipelined: what the function alone costs the
  server, protocol included (no dedupe, no XACK).

Entries as above (\`customer\` one of 100, \`amount\` 1 to 1000).
\`scripts/bench-callgrind.sh fcall\`: each contender once on a fresh server
under \`valgrind --tool=callgrind\`, N = $n pending entries, counters zeroed
at the first request and dumped after the last reply (everything the server
ran for the phase: reading the socket, parsing, the commands, the replies),
/ N; then the end state is checked (every customer's max and count
recomputed from the entries, no other such hash, the PEL empty, the dedupe
store complete). *Above the bare FCALL*: what each way adds per entry to
the function as a client runs it. Without serverCron (its inclusive cost
taken out: it runs ten times a second of wall time whatever the load).

$(machine)

$(fcall_table 3)

The whole dumps, serverCron included:

$(fcall_table 2)
<!-- make bench fcall: end -->
EOF
}

fcall_tables() {
    [ -n "$fcall_out" ] || return 0
    fcall_section >"$dir/section.md"
    write_section '<!-- make bench fcall: begin' '<!-- make bench fcall: end -->' before-tax "$fcall_out"
    echo "wrote the FCALL table into $fcall_out"
}

# ---- the loops table ----------------------------------------------------------

# One row per loops_rows; the ratios are of the figures without serverCron.
loops_table() {
    local tag kind what v lua nat r_floor r_lua r_nat
    lua=$(field lua 3) nat=$(field naive 3)
    echo "| Tag | Contender | instructions per entry, without serverCron | whole dump | ÷ floor | Lua ÷ XPROCESS | naive ÷ XPROCESS |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    while IFS=$'\t' read -r tag kind what; do
        v=$(field "$tag" 3) r_floor=– r_lua=– r_nat=–
        case $kind in
        loop | pipe) r_floor="$(ratio "$v" "$(field "$kind-ack" 3)")x" ;;
        call)
            if [[ $tag == xprocess* ]]; then
                r_lua="$(ratio "$lua" "$v")x" r_nat="$(ratio "$nat" "$v")x"
            fi
            ;;
        esac
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$tag" "$what" "$(comma "$v")" \
            "$(comma "$(field "$tag" 2)")" "$r_floor" "$r_lua" "$r_nat"
    done < <(loops_rows)
}

loops_section() {
    cat <<EOF
<!-- make bench loops: begin. Generated by \`make bench\` (scripts/bench-callgrind.sh loops); replaced when measured again. -->

## Instructions per entry (callgrind)

The consumer loops, the pipelines and the per-entry contenders of the
tables above, their instructions counted instead of their time: instruction
counts do not depend on the machine's load. \`scripts/bench-callgrind.sh
loops\`: each once on a fresh server under \`valgrind --tool=callgrind\`,
N = $n entries, counters zeroed when the timed phase starts and dumped when
it ends (everything the server ran for the phase: reading the socket,
parsing, the commands, the replies, a standing processor's timer), / N;
the phase's checks as in the timed runs. The per-entry contenders' phase is
the pipelined one of the Results table. *Instructions per entry* is without
serverCron (its inclusive cost taken out: it runs ten times a second of
wall time whatever the load, so a phase callgrind slows down counts more of
it); *whole dump* keeps it.

- *÷ floor*: the row ÷ its floor, loop-ack for the consumer loops and
  pipe-ack for the pipelines; below 1.00x is cheaper than the floor.
- *Lua ÷ XPROCESS*, *naive ÷ XPROCESS*: the Lua script's and the naive
  pipeline's instructions ÷ XPROCESS's, as the Ratios table orients them
  (above 1.00x XPROCESS costs the server less).
- The pipelines' figures include the producer's XADDs (the same in every
  pipeline row), and the consumer's timed-out BLOCK 1 requests or XINFO
  polls, which depend on how far the slowed server lags the producer.
- The standing processor's rows (loop-standing, pipe-standing) run with a
  50 ms processor budget (\`xprocess.processor-budget-us\`) and poll its
  progress every 50 ms under callgrind (benches/xprocess/profile.rs,
  \`keep_batch_sizes\`, \`poll_interval\`): the server runs about 50 times
  slower while both are wall-clock time, so its batches are as large as at
  full speed (COUNT 100) and the polls are not counted 50 times over.
- The redis-py loops (py-loop-*) are left out: they send the server the
  same requests as the loops here (the Lua loop's EVALSHAs in one pipeline
  too), and the server's instructions do not depend on the client.

$(machine)

$(loops_table)
<!-- make bench loops: end -->
EOF
}

loops_tables() {
    [ -n "$loops_out" ] || return 0
    # The names must be those of cargo bench's tables: warn if one changed.
    local tag kind what
    while IFS=$'\t' read -r tag kind what; do
        grep -qF "| $what |" "$dir/bench.out" ||
            echo "warning: the name of $tag, '$what', is in none of cargo bench's tables: update loops_rows" >&2
    done < <(loops_rows)
    loops_section >"$dir/section.md"
    write_section '<!-- make bench loops: begin' '<!-- make bench loops: end -->' after-marker "$loops_out"
    echo "wrote the loops table into $loops_out"
}

case $only in
fcall)
    fcall_tables
    exit 0
    ;;
loops)
    loops_tables
    exit 0
    ;;
esac

# ---- the effects table --------------------------------------------------------

effect_args() {
    case $1 in
    hset) echo 'HSET order:${@id} FIELDS 2 amount $amount customer $customer' ;;
    incrby) echo 'INCRBY balance:${customer} $amount' ;;
    zincrby) echo 'ZINCRBY board $amount $customer' ;;
    esac
}
lua_line() {
    case $1 in
    hset) echo "redis.call('HSET', 'order:' .. id, 'amount', entry['amount'], 'customer', entry['customer'])" ;;
    incrby) echo "redis.call('INCRBY', 'balance:' .. entry['customer'], entry['amount'])" ;;
    zincrby) echo "redis.call('ZINCRBY', charged, entry['amount'], entry['customer'])" ;;
    esac
}

table() {
    local col=$1 e x l nat none
    echo "| Effect (100 IDs per XPROCESS call) | XPROCESS | Lua script | Lua ÷ XPROCESS | issue target: ≥3x | the effect in XPROCESS (− no-effect call) | bare command, pipelined |"
    echo "|---|---:|---:|---:|---|---:|---:|"
    none=$(field noeffect100 "$col")
    for e in hset incrby zincrby; do
        x=$(field "${e}100" "$col") l=$(field "$e-lua" "$col") nat=$(field "$e-native" "$col")
        local r verdict
        r=$(ratio "$l" "$x")
        if awk -v r="$r" 'BEGIN {exit !(r >= 3)}'; then verdict="**met**"; else verdict="**not met**"; fi
        printf '| `%s` | %s | %s | %sx | %s | %s | %s |\n' "$(effect_args $e)" "$(comma "$x")" "$(comma "$l")" \
            "$r" "$verdict" "$(comma $((x - none)))" "$(comma "$nat")"
    done
    printf '| (no effect applied: `WHEN $amount MISSING SADD never $customer`) | %s | | | | | |\n' "$(comma "$none")"
}

section() {
    cat <<EOF
<!-- make bench effects: begin. Generated by \`make bench\` (scripts/bench-callgrind.sh effects); replaced when measured again. -->

## The newer effects: instructions per entry (callgrind)

HSET, INCRBY and ZINCRBY as XPROCESS effects at 100 IDs per call, against
the Lua script doing the same (the script of the tables above, its
\`HINCRBY\` line replaced, nothing else: SISMEMBER of the dedupe Set, XRANGE
of the entry, the command, SADD, XACK) and against the bare command sent
per entry, pipelined (no dedupe, no XACK: what the write alone costs the
server, protocol included). Effects, Lua lines and bare commands:

EOF
    local e
    for e in hset incrby zincrby; do
        printf -- '- `%s`; `%s`; `%s`\n' "$(effect_args $e)" "$(lua_line $e)" \
            "$(case $e in hset) echo 'HSET order:<id> amount <a> customer <c>' ;; incrby) echo 'INCRBY balance:<c> <a>' ;; zincrby) echo 'ZINCRBY board <a> <c>' ;; esac)"
    done
    cat <<EOF

Entries as above (\`customer\` one of 100, \`amount\` 1 to 1000), so HSET
makes a new hash per entry, INCRBY adds to one of 100 strings, ZINCRBY to
one of the 100 members of one sorted set. \`scripts/bench-callgrind.sh
effects\`: each contender once on a fresh server under
\`valgrind --tool=callgrind\`, N = $n pending entries, counters zeroed at the
first request and dumped after the last reply (everything the server ran
for the phase: reading the socket, parsing, the commands, the replies), /
N; then the end state is checked (every order hash, balance and score, the
PEL, the dedupe store). *The effect in XPROCESS* is the XPROCESS row less
the same call whose one effect never applies (\`WHEN \$amount MISSING\`: the
entry is read, its condition checked, recorded and acked): what the effect
adds per entry, templates, planning and its RedisModule_Call included
(the condition's few hundred instructions count against it).
Without serverCron (its inclusive cost taken out: it runs ten times a
second of wall time whatever the load).

$(machine)

$(table 3)

The whole dumps, serverCron included:

$(table 2)
<!-- make bench effects: end -->
EOF
}

[ -n "$effects_out" ] || exit 0
section >"$dir/section.md"
write_section '<!-- make bench effects: begin' '<!-- make bench effects: end -->' after-marker "$effects_out"
echo "wrote the effects table into $effects_out"
