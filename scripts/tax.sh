#!/usr/bin/env bash
# shellcheck disable=SC2016 # Markdown's backticks in single quotes
# The module's tax on the rest of the server (issue #12): instructions per
# command of the whole server, counted by callgrind, for commands that do not
# call XPROCESS, on a server without and then with the module loaded (and
# used: before each command's count, that server runs an XPROCESS READ on a
# stream `used`, so whatever a call leaves behind is there).
#
# For each server, two fresh servers are started in turn under
# `valgrind --tool=callgrind` (--save '' --appendonly no): without the module,
# then with `--loadmodule libxprocess.so`. For each command, on an emptied
# database (FLUSHALL, then the command's setup), the counters are zeroed
# (callgrind_control -z), the command is sent N times by one client in
# pipelines of P (`redis-benchmark -P 16 -c 1 -n N`, or the same RESP bytes
# from a small client below for DEL of N distinct keys), and the counters are
# dumped (callgrind_control --dump). Instructions per command = all the
# server's instructions in the dump / N, except two things callgrind is told
# not to count (--toggle-collect), both the same work with and without the
# module but not the same count from one server start to the next:
# - serverCron: it runs hz times a second of wall time, not per command, and
#   under callgrind a run takes seconds, so the machine's load would move the
#   figure by up to ~100 instructions per command;
# - the command-table lookup (lookupCommandLogic, and lookupCommandOrOriginal
#   where a command rewrites its arguments, as EXPIRE does on Redis 7.0): the
#   table's hash seed is random per start, so the collisions on the way to a
#   command's name change its cost by up to ~70 instructions per command.
# What remains varies by up to about +-25 instructions per command from run
# to run, and up to ~60 where a command's one key lands in a shared bucket:
# libc's strcasecmp takes a slower path for a string near the end of a page
# (Redis 7.0 compares every command's name with "host:" and "post"), and the
# keyspace dict's hash seed is random per start.
# Then, per command, where the added instructions go (inclusive costs, with -
# without): the command filter, the keyspace-event dispatch, the server-event
# listeners (the hooks a module can have on other clients' commands: xprocess
# has none since issue #12), the rest.
#
# Writes the tables into BENCHMARKS.md (TAX_OUT), in a section of their own
# right after the line below which `make bench` keeps everything (so each
# survives the other): one block per server, replaced when that server is
# measured again, the others kept.
#
# Usage: scripts/tax.sh [server ...]   (default: $TAX_SERVERS, else redis-7.0)
#   A server is a name of target/servers/ (redis-7.0, redis-8.0, valkey-9.1,
#   ...) or the path of a redis-server / valkey-server binary or wrapper.
# Environment: TAX_N (20000 commands per run), TAX_P (16 commands per round
#   trip; 1 shows what the module costs at each turn of the event loop), TAX_OUT (BENCHMARKS.md; set it
#   empty to only print), TAX_DIR (target/tax: the dumps, for
#   callgrind_annotate), XPROCESS_MODULE (target/release/libxprocess.so),
#   TAX_REPORT_ONLY=1 (write the tables from the dumps of the last run),
#   TAX_CASES (a subset of the cases, by tag: 'del-missing get'; with TAX_OUT
#   empty, to measure one case again on fresh servers).
# Needs valgrind (callgrind_control, callgrind_annotate).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N=${TAX_N:-20000}
OUT=${TAX_OUT-$ROOT/BENCHMARKS.md}
DIR=${TAX_DIR:-$ROOT/target/tax}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
MODULE=${XPROCESS_MODULE:-$ROOT/target/release/libxprocess.so}
P=${TAX_P:-16}
read -r -a SERVERS <<<"${*:-${TAX_SERVERS:-redis-7.0}}"

die() { echo "tax: $*" >&2; exit 1; }
log() { echo "tax: $*" >&2; }

for tool in valgrind callgrind_control callgrind_annotate; do
    command -v "$tool" >/dev/null || die "$tool not found: install valgrind (apt-get install valgrind, or make tax)"
done
[ -f "$MODULE" ] || die "module not found at $MODULE: run make build (cargo build --release)"
[ "$N" -ge "$P" ] 2>/dev/null || die "TAX_N=$N: want a number >= $P"

# A private copy of the module, so a rebuild during the run cannot mix versions.
mkdir -p "$DIR"
MODCOPY="$DIR/libxprocess.so"
cp "$MODULE" "$MODCOPY"

# --- the server, its client tools -------------------------------------------

# Sets SERVER (what to run), NAME (redis-7.0), PRODUCT (redis|valkey),
# VERSION (7.0.15), CLI (array), BENCH (array), BENCH_VERSION.
resolve() {
    local s=$1 dir root f
    if [ -d "$ROOT/target/servers/$s" ]; then
        dir="$ROOT/target/servers/$s"
        SERVER=""
        for f in "$dir"/*-server; do [ -x "$f" ] && SERVER=$f && break; done
        [ -n "$SERVER" ] || die "$s: no *-server in $dir (make servers TEST_SERVERS=$s)"
    elif [ -x "$s" ]; then
        SERVER=$(cd "$(dirname "$s")" && pwd)/$(basename "$s")
        dir=$(dirname "$SERVER")
    elif command -v "$s" >/dev/null; then
        SERVER=$(command -v "$s")
        dir=$(dirname "$SERVER")
    else
        die "$s: not a name of target/servers/ nor a server binary (make servers TEST_SERVERS=$s)"
    fi
    case "$(basename "$SERVER")" in
    valkey*) PRODUCT=valkey ;;
    *) PRODUCT=redis ;;
    esac
    VERSION=$("$SERVER" --version | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p')
    [ -n "$VERSION" ] || die "$SERVER --version: no version"
    NAME="$PRODUCT-$(echo "$VERSION" | cut -d. -f1-2)"
    if [ -x "$dir/$PRODUCT-cli" ]; then CLI=("$dir/$PRODUCT-cli"); else CLI=(redis-cli); fi
    # The matching benchmark client: the unpacked packages' own (run by their
    # loader, as the wrappers of install-servers.sh do), else one on PATH.
    root="$dir/root"
    if [ -x "$root/usr/bin/$PRODUCT-benchmark" ] && [ -e "$root/usr/lib64/ld-linux-x86-64.so.2" ]; then
        BENCH=("$root/usr/lib64/ld-linux-x86-64.so.2" --inhibit-cache
            --library-path "$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu"
            "$root/usr/bin/$PRODUCT-benchmark")
    elif [ -x "$dir/$PRODUCT-benchmark" ]; then
        BENCH=("$dir/$PRODUCT-benchmark")
    elif command -v "$PRODUCT-benchmark" >/dev/null; then
        BENCH=("$(command -v "$PRODUCT-benchmark")")
    else
        BENCH=(redis-benchmark)
    fi
    BENCH_VERSION=$("${BENCH[@]}" --version | head -1)
}

free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    die "no free port"
}

PID=""
stop_server() {
    [ -n "$PID" ] || return 0
    "${CLI[@]}" -p "$PORT" shutdown nosave >/dev/null 2>&1 || kill "$PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
    PID=""
}
trap stop_server EXIT

# start_server <dumps dir> [server args...]: a fresh server under callgrind.
# --trace-children: the servers of target/servers are shell wrappers that exec
# the binary (same pid).
start_server() {
    local out=$1
    shift
    PORT=$(free_port)
    mkdir -p "$out"
    rm -f "$out"/cg.*
    valgrind --tool=callgrind --trace-children=yes --toggle-collect=serverCron --toggle-collect=lookupCommandLogic \
        --toggle-collect=lookupCommandOrOriginal --collect-atstart=yes \
        --callgrind-out-file="$out/cg.%p.out" \
        "$SERVER" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --dir "$out" "$@" >"$out/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 600); do
        if [ "$("${CLI[@]}" -p "$PORT" ping 2>/dev/null)" = PONG ]; then return; fi
        kill -0 "$PID" 2>/dev/null || { tail -20 "$out/server.log" >&2; die "the server did not start"; }
        sleep 0.1
    done
    die "the server did not answer within 60 s"
}

cli() { "${CLI[@]}" -p "$PORT" "$@" >/dev/null; }

# RESP of one command.
resp() {
    local a
    printf '*%d\r\n' $#
    for a in "$@"; do printf '$%d\r\n%s\r\n' ${#a} "$a"; done
}

# `DEL <prefix>:0` ... `DEL <prefix>:N-1`, P per round trip, as
# redis-benchmark -P $P -c 1 sends its commands; every reply must be
# :<deleted> (1, or 0 for missing keys).
del_keys() {
    local prefix=$1 deleted=$2 i j line batch key ok=0
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    for ((i = 0; i < N; i += P)); do
        batch=""
        for ((j = i; j < i + P && j < N; j++)); do
            key="$prefix:$j"
            batch+=$'*2\r\n$3\r\nDEL\r\n$'"${#key}"$'\r\n'"$key"$'\r\n'
        done
        printf '%s' "$batch" >&3
        for ((j = i; j < i + P && j < N; j++)); do
            read -r line <&3
            [ "$line" = ":$deleted"$'\r' ] && ok=$((ok + 1))
        done
    done
    exec 3>&-
    [ "$ok" = "$N" ] || die "DEL $prefix:*: $ok of $N replies were :$deleted"
}

# Create <prefix>:0 ... <prefix>:N-1 with `<command> <key> <args...>`.
populate() {
    local prefix=$1 command=$2
    shift 2
    local i
    for ((i = 0; i < N; i++)); do resp "$command" "$prefix:$i" "$@"; done >"$OUTDIR/populate.resp"
    "${CLI[@]}" -p "$PORT" --pipe <"$OUTDIR/populate.resp" >/dev/null
}

bench() { "${BENCH[@]}" -p "$PORT" -P "$P" -c 1 -n "$N" -q "$@" >/dev/null; }

# The commands: tag | what the table says | setup | run.
ALL_CASES='set get hincrby lpush xadd xadd-used expire del-missing del-string del-hash xadd-followed'
read -r -a CASES <<<"${TAX_CASES:-$ALL_CASES}"
for tag in "${CASES[@]}"; do
    [[ " $ALL_CASES " == *" $tag "* ]] || die "TAX_CASES: no case $tag (cases: $ALL_CASES)"
done
# A partial table must not replace a server's whole block in BENCHMARKS.md.
[ -z "${TAX_CASES:-}" ] || [ -z "$OUT" ] || die "TAX_CASES: set TAX_OUT= too (a subset only prints)"
label() {
    case $1 in
    set) echo '`SET k v`' ;;
    get) echo '`GET k`' ;;
    hincrby) echo '`HINCRBY h f 1`' ;;
    lpush) echo '`LPUSH l v`' ;;
    xadd) echo '`XADD bench * f v` (a stream XPROCESS never touched)' ;;
    xadd-used) echo '`XADD used * f v` (the stream XPROCESS just read, with its group)' ;;
    expire) echo '`EXPIRE k 100` (k a string)' ;;
    del-missing) echo "\`DEL m:i\`, i = 0..N-1: each key missing" ;;
    del-string) echo "\`DEL k:i\`, i = 0..N-1: each deletes an existing string" ;;
    del-hash) echo "\`DEL h:i\`, i = 0..N-1: each deletes an existing hash (one field)" ;;
    xadd-followed) echo '`XADD proc * f v` (a stream with a stopped processor: the module follows stream events)' ;;
    esac
}
setup() {
    case $1 in
    get | expire) cli set k v ;;
    del-string) populate k SET v ;;
    del-hash) populate h HSET f v ;;
    xadd-followed) follow_proc ;;
    esac
}

# A stream `proc` whose group has a processor, started (so the module
# follows stream events from then on) and stopped (so that what XADD pays
# is the event hook, not the processing); without the module, the same
# stream and as many keys.
follow_proc() {
    cli xgroup create proc g '$' mkstream
    if [ -n "$USED" ]; then
        cli xprocess.define proc g sadd seen '$f'
        cli xprocess.start proc g
        cli xprocess.stop proc g
    else
        cli set '{proc}:xprocess:g' x
    fi
}
run() {
    case $1 in
    set) bench SET k v ;;
    get) bench GET k ;;
    hincrby) bench HINCRBY h f 1 ;;
    lpush) bench LPUSH l v ;;
    xadd) bench XADD bench '*' f v ;;
    xadd-used) bench XADD used '*' f v ;;
    expire) bench EXPIRE k 100 ;;
    del-missing) del_keys m 0 ;;
    del-string) del_keys k 1 ;;
    del-hash) del_keys h 1 ;;
    xadd-followed) bench XADD proc '*' f v ;;
    esac
}

# Instructions in a dump.
dump_total() { awk '/^summary:/ {print $2}' "$1"; }

# Before each count, on both servers: a stream `used` with a group g and
# one entry, read and acked by consumer c, and the keys that applying it
# wrote. With the module, one XPROCESS READ does all that (SADD to `seen`, the
# entry recorded in the dedupe index `{used}:xprocess:g`), so the module has
# worked before every count; without it, the same stream state and as many
# keys come from plain commands (a key lookup costs more in a database that
# is not empty, whatever the keys hold).
prepare_used() {
    local id
    cli xgroup create used g '$' mkstream
    id=$("${CLI[@]}" -p "$PORT" xadd used '*' f v)
    if [ -n "$USED" ]; then
        [ "$("${CLI[@]}" -p "$PORT" xprocess used g consumer c sadd seen '$f' read | head -1)" = "$id" ] ||
            die "XPROCESS READ did not take $id"
    else
        cli xreadgroup group g c count 1 streams used '>'
        cli xack used g "$id"
        cli sadd seen v
        cli set '{used}:xprocess:g' x
    fi
}

# measure <variant> [server args...]: one fresh server, every case; writes
# $OUTDIR/<variant>.tsv (tag, instructions per command, commands).
measure() {
    local variant=$1 tag before after n dump total
    shift
    USED=""
    [ "$variant" = with ] && USED=1
    local out="$OUTDIR/$variant"
    start_server "$out" "$@"
    : >"$OUTDIR/$variant.tsv"
    for tag in "${CASES[@]}"; do
        cli flushall
        prepare_used
        setup "$tag"
        before=$("${CLI[@]}" -p "$PORT" info stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p')
        callgrind_control -z "$PID" >/dev/null 2>&1
        run "$tag"
        callgrind_control --dump="$tag" "$PID" >/dev/null 2>&1
        after=$("${CLI[@]}" -p "$PORT" info stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p')
        n=$((after - before - 1)) # the first INFO counts once done
        [ "$n" -ge "$N" ] || die "$tag: the server processed $n commands, expected $N"
        dump=$(grep -l "^desc: Trigger: dump $tag\$" "$out"/cg."$PID".out.* | head -1)
        [ -n "$dump" ] || die "$tag: no callgrind dump in $out"
        mv "$dump" "$out/$tag.callgrind"
        rm -f "$out/$tag.incl"
        total=$(dump_total "$out/$tag.callgrind")
        printf '%s\t%s\t%s\n' "$tag" $((total / N)) "$n" >>"$OUTDIR/$variant.tsv"
        log "$NAME $variant $tag: $((total / N)) instructions per command ($n commands)"
    done
    stop_server
}

# --- the report -------------------------------------------------------------

BEGIN_PREFIX='<!-- make tax: begin'
BEGIN_LINE='<!-- make tax: begin. Generated by `make tax` (scripts/tax.sh); a server'"'"'s block is replaced when it is measured again. -->'
END_LINE='<!-- make tax: end -->'
BENCH_MARKER='<!-- Generated above this line by `cargo bench --bench xprocess`; everything below it is kept. -->'

# The block of the current server: heading, what was run, the table.
server_block() {
    local tag without with
    echo "<!-- tax: $NAME -->"
    echo "### $([ "$PRODUCT" = valkey ] && echo Valkey || echo Redis) $VERSION"
    echo
    echo "Measured $DATE with \`make tax\`: \`$(basename "$SERVER")\` $VERSION ($("$SERVER" --version | cut -d' ' -f4- | sed 's/ build=.*//')), client $BENCH_VERSION, valgrind $(valgrind --version | sed 's/valgrind-//'), N = $N, P = $P commands per round trip, xprocess at $REV."
    echo
    echo "| command | without | with the module | cost |"
    echo "|---|---:|---:|---:|"
    while IFS=$'\t' read -r tag without _; do
        IFS=$'\t' read -r _ with _ < <(grep "^$tag"$'\t' "$OUTDIR/with.tsv")
        printf '| %s | %s | %s | %s |\n' "$(label "$tag")" "$(group "$without")" "$(group "$with")" \
            "$(awk -v a="$without" -v b="$with" 'BEGIN {printf "%+.1f%% (%+d)", (b - a) * 100 / a, b - a}')"
    done <"$OUTDIR/without.tsv"
    echo
    echo "Where the added instructions go, per command: inclusive costs, with the module - without, of"
    echo "the hooks a module can have on other clients' commands (xprocess has none until a standing processor has run, then stream keyspace events): the command filter"
    echo "(\`moduleCallCommandFilters\`), the keyspace-event dispatch (\`moduleNotifyKeyspaceEvent\`: the walk of the"
    echo "subscriber list, and the callbacks' context), the server-event listeners"
    echo "(\`moduleFireServerEvent\`); and the rest."
    echo
    echo "| command | added | command filter | keyspace events | server events | rest |"
    echo "|---|---:|---:|---:|---:|---:|"
    for tag in "${CASES[@]}"; do breakdown "$tag"; done
    echo
    echo "<!-- /tax: $NAME -->"
}

# callgrind_annotate, run from / : in the repository it shortens the module's
# source paths and splits its functions in two, one without callers.
annotate() { (cd / && callgrind_annotate "$@" 2>/dev/null); }

# Inclusive instructions of every function of a dump: name <TAB> count.
inclusive() {
    annotate --inclusive=yes --auto=no --threshold=100 "$1" |
        awk '/^ *[0-9,]+ \(/ {
                c = $1; gsub(",", "", c); f = $0
                sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, "", f); sub(/ \[[^]]*\]$/, "", f); sub(/^[^:]*:/, "", f)
                if (!(f in seen)) {seen[f] = 1; print f "\t" c}
            }'
}

# One row of the breakdown: instructions per command added by each hook.
breakdown() {
    local tag=$1 w="$OUTDIR/without/$1" m="$OUTDIR/with/$1"
    [ -f "$w.incl" ] || inclusive "$w.callgrind" >"$w.incl"
    [ -f "$m.incl" ] || inclusive "$m.callgrind" >"$m.incl"
    local added
    added=$(($(awk -F'\t' -v t="$tag" '$1 == t {print $2}' "$OUTDIR/with.tsv") -
        $(awk -F'\t' -v t="$tag" '$1 == t {print $2}' "$OUTDIR/without.tsv")))
    awk -F'\t' -v n="$N" -v label="$(label "$tag")" -v d=moduleNotifyKeyspaceEvent -v added="$added" '
        FNR == 1 {file++}
        {v[file, $1] = $2}
        function diff(f) {return (v[2, f] - v[1, f]) / n}
        END {
            f = diff("moduleCallCommandFilters"); k = diff(d); s = diff("moduleFireServerEvent")
            printf "| %s | %+d | %+.0f | %+.0f | %+.0f | %+.0f |\n", label, added,
                f, k, s, added - f - k - s
        }' "$w.incl" "$m.incl"
}

# 12345 -> 12,345
group() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }

section_head() {
    cat <<'EOF'
## Module tax (issue #12)

What loading the module costs commands that do not call XPROCESS, in
instructions per command of the whole server, counted by callgrind. `make
tax` (scripts/tax.sh) starts a fresh server under `valgrind --tool=callgrind`
(`--save '' --appendonly no`) without the module, then another with
`--loadmodule target/release/libxprocess.so`, and runs each command below on
it, on an emptied database (FLUSHALL; then an entry on a stream `used`,
taken and applied by one `XPROCESS used g CONSUMER c SADD seen $f READ`, so
the module has worked before every count, and without the module the same
stream state and keys made by XREADGROUP, XACK, SADD and SET; then `SET k v`
before GET and EXPIRE, and N strings `k:i` or hashes `h:i` before the DELs,
all outside the count):
counters zeroed (`callgrind_control -z`), the command sent N times by one
client in pipelines of P (`redis-benchmark -P <P> -c 1 -n <N> <command>`, the
server's own benchmark client; for the DELs of N distinct keys, the same RESP
bytes, P per round trip, from a client in the script: redis-benchmark
repeats one key, and a lookup of one missing key compares it with every key
in its bucket of the keyspace, which depends on the dict's hash seed, random
at each start: ±60 instructions per command from one start to the next,
where N distinct missing keys average it out), counters dumped
(`callgrind_control --dump`). Instructions per command = everything the
server ran in between / N, except what callgrind is told not to count
(`--toggle-collect`): `serverCron`, which runs `hz` times a second of wall
time rather than per command (under callgrind its share moves with the
machine's load, by up to ~100 instructions per command), and the
command-table lookup (`lookupCommandLogic`, `lookupCommandOrOriginal`), whose
cost depends on the table's hash seed, random at each start (up to ~70
instructions per command). What remains varies by up to about ±25
instructions per command from run to run with where the heap puts a
command's name (Redis 7.0's `strcasecmp` of it with "host:" and "post" is
slower near the end of a page), and by up to ~60 with whether its one key
shares a keyspace bucket with another (the dict's hash seed).
The cost is with / without - 1, and the difference.
P is 16 unless `TAX_P` says otherwise. The dumps stay in target/tax/ for
`callgrind_annotate`; `make tax TAX_SERVERS='redis-7.0 redis-8.0 valkey-9.1'`
measures several servers.
EOF
}

# Replace this server's block in the tax section of $OUT (creating the
# section, after the kept-tail marker of `make bench`, if needed).
write_report() {
    local block=$1 old="" section blocks name
    [ -f "$OUT" ] && old=$(cat "$OUT")
    # The existing section's blocks, in their order; this server's replaced.
    section=$(awk -v b="$BEGIN_PREFIX" -v e="$END_LINE" 'index($0, b) == 1 {on=1; next} $0 == e {on=0} on' <<<"$old")
    blocks=""
    local names
    names=$(grep -o '^<!-- tax: [^ ]* -->' <<<"$section" | awk '{print $3}' || true)
    for name in $names; do
        if [ "$name" = "$NAME" ]; then
            blocks+="$(cat "$block")"$'\n'
        else
            blocks+="$(awk -v s="<!-- tax: $name -->" -v e="<!-- /tax: $name -->" \
                '$0 == s {on=1} on {print} $0 == e {on=0}' <<<"$section")"$'\n'
        fi
        blocks+=$'\n'
    done
    grep -qxF "<!-- tax: $NAME -->" <<<"$section" || blocks+="$(cat "$block")"$'\n\n'
    {
        echo "$BEGIN_LINE"
        echo
        section_head
        echo
        printf '%s' "$blocks"
        echo "$END_LINE"
    } >"$OUTDIR/section.md"
    if grep -qF "$BEGIN_PREFIX" <<<"$old"; then
        awk -v b="$BEGIN_PREFIX" -v e="$END_LINE" -v f="$OUTDIR/section.md" '
            index($0, b) == 1 && !done {done=1; while ((getline l < f) > 0) print l; skip=1; next}
            skip && $0 == e {skip=0; next}
            !skip' <<<"$old" >"$OUT.tax-tmp"
    else
        if grep -qxF "$BENCH_MARKER" <<<"$old"; then
            # Right after the marker: `make bench` keeps everything below it.
            awk -v m="$BENCH_MARKER" -v f="$OUTDIR/section.md" '
                {print}
                $0 == m && !done {print ""; while ((getline l < f) > 0) print l; done=1}' \
                <<<"$old" >"$OUT.tax-tmp"
        else
            {
                [ -n "$old" ] && printf '%s\n\n' "$old"
                printf '%s\n\n' "$BENCH_MARKER"
                cat "$OUTDIR/section.md"
            } >"$OUT.tax-tmp"
        fi
    fi
    mv "$OUT.tax-tmp" "$OUT"
    log "wrote the $NAME table into $OUT"
}

N0=$N P0=$P
for s in "${SERVERS[@]}"; do
    N=$N0 P=$P0
    resolve "$s"
    OUTDIR="$DIR/$NAME"
    mkdir -p "$OUTDIR"
    log "$NAME: $SERVER ($VERSION), client ${BENCH[*]} ($BENCH_VERSION), N = $N"
    if [ -n "${TAX_REPORT_ONLY:-}" ] && [ -f "$OUTDIR/with.tsv" ] && [ -f "$OUTDIR/run.env" ]; then
        log "$NAME: TAX_REPORT_ONLY: the tables from the dumps of the last run"
        # shellcheck disable=SC1091
        . "$OUTDIR/run.env"
    else
        rm -f "$OUTDIR/run.env"
        measure without
        measure with --loadmodule "$MODCOPY"
        printf 'N=%s\nP=%s\nDATE=%s\nREV=%s\n' "$N" "$P" "$(date -u +%Y-%m-%d)" \
            "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" >"$OUTDIR/run.env"
        # shellcheck disable=SC1091
        . "$OUTDIR/run.env"
    fi
    server_block >"$OUTDIR/table.md"
    cat "$OUTDIR/table.md"
    [ -z "$OUT" ] || write_report "$OUTDIR/table.md"
done
