#!/usr/bin/env bash
# An XPROCESS consumer worker as a redis-cli session: the same loop as the
# Python, Node.js and Rust workers, one redis-cli call per command.
#
# Reads new entries with XREADGROUP, takes over abandoned ones with
# XAUTOCLAIM, and applies each entry exactly once with XPROCESS: add the
# amount to the customer's total and append a receipt. Every option can also
# be given in the environment as XP_<NAME> (--block-ms -> XP_BLOCK_MS). Stops
# on SIGINT/SIGTERM, or with --until-idle-ms N after N ms without progress,
# then prints one summary line.
set -euo pipefail

host=${XP_HOST:-127.0.0.1} port=${XP_PORT:-6379}
stream=${XP_STREAM:-payments} group=${XP_GROUP:-billing} me=${XP_CONSUMER:-worker-$$}
totals=${XP_TOTALS:-totals} receipts=${XP_RECEIPTS:-receipts} count=${XP_COUNT:-10}
block_ms=${XP_BLOCK_MS:-1000} min_idle_ms=${XP_MIN_IDLE_MS:-60000} until_idle_ms=${XP_UNTIL_IDLE_MS:-0}
while (($# >= 2)); do
    case $1 in
    --host) host=$2 ;; --port) port=$2 ;; --stream) stream=$2 ;; --group) group=$2 ;;
    --consumer) me=$2 ;; --totals) totals=$2 ;; --receipts) receipts=$2 ;; --count) count=$2 ;;
    --block-ms) block_ms=$2 ;; --min-idle-ms) min_idle_ms=$2 ;; --until-idle-ms) until_idle_ms=$2 ;;
    *) break ;;
    esac
    shift 2
done
if (($#)); then
    echo "usage: $0 [--host|--port|--stream|--group|--consumer|--totals|--receipts|--count|--block-ms|--min-idle-ms|--until-idle-ms VALUE]..." >&2
    exit 2
fi

# Run one command, its reply in $out. Not a terminal, so redis-cli prints
# replies raw: one value per line, arrays flattened. -e: a whole-call error
# reply exits 1, and so ends this script; errors inside an array reply are
# printed in their slot like other values. Returns 1 if a Ctrl-C (SIGINT to
# the process group) killed redis-cli: the loop ends then, and the entries of
# that batch are either done or still pending, never half done.
call() {
    out=$(redis-cli -e -h "$host" -p "$port" "$@") && return 0
    ((stop)) && return 1
    exit 1
}
log() { echo "$me: $*" >&2; }
now_ms() { now=${EPOCHREALTIME/[.,]/} && now=$((now / 1000)); } # sets $now

# Stop between batches: on SIGTERM bash runs the trap once the current
# redis-cli call returns, which BLOCK keeps short.
stop=0
trap 'stop=1' INT TERM

# Group at 0: a new group processes the stream from its first entry. Without
# -e: BUSYGROUP (it exists) is fine; an unreachable server still exits 1.
redis-cli -h "$host" -p "$port" XGROUP CREATE "$stream" "$group" 0 MKSTREAM >/dev/null

applied=0 duplicates=0 errors=0 notowner=0 claimed=0
declare -A failed=() # IDs that failed: retried once XAUTOCLAIM hands them out again
cursor=0-0
now_ms
last_progress=$now
log "consuming $stream in group $group"

while ((!stop)); do
    # First take over entries another consumer read but did not finish within
    # min-idle ms (it crashed or stalls). min-idle must exceed the time a
    # healthy worker needs for a batch, or workers steal from each other; if
    # they do, CONSUMER fencing below still keeps it exact. JUSTID, because
    # the raw output of entries with fields could not be split back into
    # entries; XPROCESS reads the fields itself anyway. Reply: the next
    # cursor, then the claimed IDs (then the IDs of deleted entries that
    # XAUTOCLAIM dropped from the PEL: counted too, which is harmless here).
    call XAUTOCLAIM "$stream" "$group" "$me" "$min_idle_ms" "$cursor" COUNT "$count" JUSTID || break
    mapfile -t lines <<<"$out"
    cursor=${lines[0]}
    n=0
    for id in "${lines[@]:1}"; do
        [[ -n $id ]] || continue
        n=$((n + 1))
        unset "failed[$id]"
    done
    claimed=$((claimed + n))
    # Then new entries, waiting for some only if there is nothing else to do
    # (reading even when entries were claimed: a claimed entry that keeps
    # failing must not starve new ones). BLOCK stays short so a stop request
    # is noticed soon. The reply is not parsed (see JUSTID above): the
    # entries it delivers are now pending for us, and XPENDING below lists them.
    block=(BLOCK "$block_ms")
    ((n == 0)) || block=()
    call XREADGROUP GROUP "$group" "$me" COUNT "$count" "${block[@]}" STREAMS "$stream" '>' || break

    # Our pending entries (new, claimed, or left by an earlier run under the
    # same name) minus those that failed. XPENDING's extended form prints 4
    # lines per entry: ID, consumer, idle ms, deliveries.
    call XPENDING "$stream" "$group" - + $((count + ${#failed[@]})) "$me" || break
    mapfile -t lines <<<"$out"
    ids=()
    for ((i = 0; i + 3 < ${#lines[@]}; i += 4)); do
        [[ -n ${failed[${lines[i]}]:-} ]] || ids+=("${lines[i]}")
    done

    progress=0
    if ((${#ids[@]})); then
        # CONSUMER: apply an entry only while it is still pending for us. If a
        # slower worker claimed it away, we get NOTOWNER instead of applying
        # it a second time behind the new owner's back. Single quotes keep
        # bash from expanding the $templates.
        # shellcheck disable=SC2016
        call XPROCESS "$stream" "$group" CONSUMER "$me" \
            HINCRBY "$totals" '$customer' '$amount' \
            XADD "$receipts" FIELDS 2 src '$@id' amount '$amount' \
            IDS "${#ids[@]}" "${ids[@]}" || break
        # One line per ID (an error line is followed by an empty line).
        mapfile -t lines <<<"$out"
        replies=()
        for line in "${lines[@]}"; do [[ -z $line ]] || replies+=("$line"); done
        for i in "${!ids[@]}"; do
            id=${ids[i]} reply=${replies[i]}
            case $reply in
            1) applied=$((applied + 1)) progress=1 ;;
            # Already applied (by us before a crash, or by another consumer):
            # nothing happened twice, and it is acked now.
            0) duplicates=$((duplicates + 1)) progress=1 ;;
            NOTOWNER*) notowner=$((notowner + 1)) && log "skip $id, another consumer owns it" ;;
            # Nothing was changed and the entry stays pending: it is retried
            # when XAUTOCLAIM hands it out again after min-idle.
            *) errors=$((errors + 1)) failed[$id]=1 && log "$id failed, left pending: $reply" ;;
            esac
        done
    fi
    if ((progress)); then
        now_ms
        last_progress=$now
    elif now_ms && ((until_idle_ms > 0 && now - last_progress >= until_idle_ms)); then
        break
    fi
done
echo "stopped: applied=$applied duplicates=$duplicates errors=$errors notowner=$notowner claimed=$claimed"
