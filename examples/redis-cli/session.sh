#!/usr/bin/env bash
# An XPROCESS consumer worker as a redis-cli session: the same loop as the
# Python, Node.js and Rust workers, one redis-cli call per loop step.
#
# At start-up it stores the group's definition with XPROCESS.DEFINE (every
# worker the same one), then loops on one command without effects:
# XPROCESS ... READ takes entries for this consumer (first those another
# consumer left pending for --min-idle-ms, then new ones), applies the
# definition's effects to each exactly once (add the amount to the
# customer's total and append a receipt), acks it, and moves an entry that
# failed --max-deliveries times to the dead-letter stream, all in one atomic
# step. Every option can also be given in the environment as XP_<NAME>
# (--block-ms -> XP_BLOCK_MS). Stops on SIGINT/SIGTERM, or with
# --until-idle-ms N after N ms without progress, then prints one summary
# line.
set -euo pipefail

host=${XP_HOST:-127.0.0.1} port=${XP_PORT:-6379}
stream=${XP_STREAM:-payments} group=${XP_GROUP:-billing} me=${XP_CONSUMER:-worker-$$}
totals=${XP_TOTALS:-totals} receipts=${XP_RECEIPTS:-receipts}
dead_letter=${XP_DEAD_LETTER:-} max_deliveries=${XP_MAX_DELIVERIES:-3} count=${XP_COUNT:-10}
block_ms=${XP_BLOCK_MS:-1000} min_idle_ms=${XP_MIN_IDLE_MS:-60000} until_idle_ms=${XP_UNTIL_IDLE_MS:-0}
while (($# >= 2)); do
    case $1 in
    --host) host=$2 ;; --port) port=$2 ;; --stream) stream=$2 ;; --group) group=$2 ;;
    --consumer) me=$2 ;; --totals) totals=$2 ;; --receipts) receipts=$2 ;;
    --dead-letter) dead_letter=$2 ;; --max-deliveries) max_deliveries=$2 ;; --count) count=$2 ;;
    --block-ms) block_ms=$2 ;; --min-idle-ms) min_idle_ms=$2 ;; --until-idle-ms) until_idle_ms=$2 ;;
    *) break ;;
    esac
    shift 2
done
if (($#)); then
    echo "usage: $0 [--host|--port|--stream|--group|--consumer|--totals|--receipts|--dead-letter|--max-deliveries|--count|--block-ms|--min-idle-ms|--until-idle-ms VALUE]..." >&2
    exit 2
fi
# No dead-letter key given: <stream>:dead.
dead_letter=${dead_letter:-$stream:dead}

# Run one command, its reply in $out. Not a terminal, so redis-cli prints
# replies raw: one value per line, arrays flattened. -e: a whole-call error
# reply exits 1, and so ends this script; errors inside an array reply are
# printed in their slot like other values. Returns 1 if a Ctrl-C (SIGINT to
# the process group) killed redis-cli: the loop ends then, and the entries of
# that call are either done or still pending, never half done.
call() {
    out=$(redis-cli -e -h "$host" -p "$port" "$@") && return 0
    ((stop)) && return 1
    exit 1
}
log() { echo "$me: $*" >&2; }
now_ms() { now=${EPOCHREALTIME/[.,]/} && now=$((now / 1000)); } # sets $now

# Stop between two calls: on SIGTERM bash runs the trap once the current
# redis-cli call returns, which BLOCK keeps short.
stop=0
trap 'stop=1' INT TERM

# Group at 0: a new group processes the stream from its first entry. Without
# -e: BUSYGROUP (it exists) is fine; an unreachable server still exits 1.
redis-cli -h "$host" -p "$port" XGROUP CREATE "$stream" "$group" 0 MKSTREAM >/dev/null

# The group's definition: its options and the effects of one entry, stored
# once at the group's derived dedupe key ({payments}:xprocess:billing by
# default) and applied by every call of the group that gives no effects,
# whichever worker makes it. Every worker sends the same one at start-up. A
# redefinition replaces it for all of them, so the workers of one group must
# agree on --dead-letter, --max-deliveries, --totals and --receipts (the last
# one started wins). XPROCESS.START <stream> <group> would have the server
# run it itself, with no worker at all.
# - DEADLETTER ... AFTER: an entry that failed on its max-deliveries-th
#   delivery is appended to the dead-letter stream (with the error and its
#   fields), acked and recorded, instead of coming back forever;
# - the effects of one entry, expanded by the server from the entry's own
#   fields; keys are literal. $@id makes the receipt point at its entry.
#   Single quotes keep bash from expanding the $templates.
# An error reply (a bad definition) exits 1; a Ctrl-C meanwhile skips the
# loop.
# shellcheck disable=SC2016
call XPROCESS.DEFINE "$stream" "$group" \
    DEADLETTER "$dead_letter" AFTER "$max_deliveries" \
    HINCRBY "$totals" '$customer' '$amount' \
    XADD "$receipts" FIELDS 2 src '$@id' amount '$amount' || true

# The whole loop step, the same call every time, without effects (the server
# applies the definition's):
# - CONSUMER: the entries are taken for us (and would be fenced if we named
#   them with IDS instead of READ);
# - READ: CLAIM takes over entries pending (for anyone) for min-idle ms, a
#   consumer that crashed or stalls, or one of ours that failed; min-idle
#   must exceed the time a healthy worker needs for a call. Then new entries
#   up to COUNT. With nothing to do, BLOCK waits up to block-ms for an XADD;
#   it bounds how soon a stop request is noticed, and how late an entry that
#   just became idle enough is claimed.
step=(XPROCESS "$stream" "$group" CONSUMER "$me"
    READ COUNT "$count" CLAIM "$min_idle_ms" BLOCK "$block_ms")

applied=0 duplicates=0 dead=0 errors=0 notowner=0
now_ms
last_progress=$now
log "consuming $stream in group $group"

while ((!stop)); do
    call "${step[@]}" || break
    # One [id, outcome] pair per entry taken, flattened: an ID line, then its
    # outcome line (an error line is followed by an empty line). Nothing but
    # an empty line when BLOCK timed out.
    mapfile -t lines <<<"$out"
    values=()
    for line in "${lines[@]}"; do [[ -z $line ]] || values+=("$line"); done
    progress=0
    for ((i = 0; i + 1 < ${#values[@]}; i += 2)); do
        id=${values[i]} outcome=${values[i + 1]}
        case $outcome in
        1) applied=$((applied + 1)) progress=1 ;;
        # Already applied (by us before a crash, or by another consumer):
        # nothing happened twice, and it is acked now.
        0) duplicates=$((duplicates + 1)) progress=1 ;;
        # Failed on its max-deliveries-th delivery: in the dead-letter stream
        # now, acked, never applied.
        2) dead=$((dead + 1)) progress=1 && log "$id moved to $dead_letter" ;;
        # Another consumer owns it. READ never answers this (it has just
        # taken the entries for us); a loop on IDS can.
        NOTOWNER*) notowner=$((notowner + 1)) && log "skip $id, another consumer owns it" ;;
        # Nothing was changed and the entry stays pending for us: it comes
        # back through CLAIM after min-idle ms, and goes to the dead-letter
        # stream on its max-deliveries-th failure.
        *) errors=$((errors + 1)) && log "$id failed, left pending: $outcome" ;;
        esac
    done
    if ((progress)); then
        now_ms
        last_progress=$now
    elif now_ms && ((until_idle_ms > 0 && now - last_progress >= until_idle_ms)); then
        break
    fi
done
echo "stopped: applied=$applied duplicates=$duplicates dead=$dead errors=$errors notowner=$notowner"
