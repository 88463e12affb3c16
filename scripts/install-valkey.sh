#!/usr/bin/env bash
# Install valkey-server (Valkey 8) from Debian's backports, for running the
# xprocess test suite against Valkey as well as Redis.
#
# Usage (as root, or as a user with sudo): bash scripts/install-valkey.sh
#
# - Does nothing (exit 0) when `valkey-server` is already on PATH.
# - The backports source is derived from the machine's own Debian source entry
#   (the one apt uses for "<codename>", e.g. bookworm): same URIs, Components,
#   Signed-By and options, only the suite becomes "<codename>-backports".
#   No mirror address is written in this repository. If apt already has the
#   backports suite configured, no source is added.
# - The new entry goes to /etc/apt/sources.list.d/<codename>-backports.sources
#   (or .list when the Debian entry is a one-line sources.list entry).
# - Installing the package does not start a system valkey-server service (the
#   tests start their own servers on free ports): unless a policy-rc.d already
#   exists, a temporary one denies service starts during the install.
#
# Environment: VALKEY_PACKAGE (default valkey-server).
set -euo pipefail

PACKAGE="${VALKEY_PACKAGE:-valkey-server}"

log() { printf 'install-valkey: %s\n' "$*"; }
die() { printf 'install-valkey: error: %s\n' "$*" >&2; exit 1; }
run() { printf '+ %s\n' "$*"; "$@"; }

if command -v valkey-server >/dev/null 2>&1; then
    log "valkey-server already installed: $(command -v valkey-server)"
    log "$(valkey-server --version)"
    exit 0
fi

if [ "$(id -u)" = 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
else
    die "not root and no sudo: cannot install packages"
fi
export DEBIAN_FRONTEND=noninteractive

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script is for Debian"
[ -r /etc/os-release ] || die "/etc/os-release missing: cannot tell the Debian release"
# shellcheck disable=SC1091
. /etc/os-release
[ "${ID:-}" = debian ] || die "not Debian (ID=${ID:-unknown}): install Valkey 8 yourself"
CODENAME="${VERSION_CODENAME:-}"
[ -n "$CODENAME" ] || die "VERSION_CODENAME not set in /etc/os-release"
BACKPORTS="$CODENAME-backports"
log "Debian ${VERSION_ID:-?} ($CODENAME); Valkey comes from $BACKPORTS"

# One line per deb index target apt knows: Origin|Release|Site|Sourcesentry.
targets() {
    # shellcheck disable=SC2016 # $(FIELD) is apt's format syntax, not the shell's
    apt-get indextargets --format '$(ORIGIN)|$(RELEASE)|$(SITE)|$(SOURCESENTRY)|$(TARGET_OF)' 2>/dev/null \
        | awk -F'|' '$5 == "deb"' | sort -u
}
# Debian's own archive: Origin "Debian"; backports say "Debian Backports".
debian_target() { targets | awk -F'|' -v r="$1" '($1 == "Debian" || $1 == "Debian Backports") && $2 == r' | head -n1; }

if [ -z "$(debian_target "$CODENAME")" ]; then
    log "no package lists for Debian $CODENAME yet: running apt-get update"
    run "${SUDO[@]}" apt-get update
fi

if [ -n "$(debian_target "$BACKPORTS")" ]; then
    log "apt already has Debian $BACKPORTS: $(debian_target "$BACKPORTS" | cut -d'|' -f3,4)"
else
    entry="$(debian_target "$CODENAME")"
    [ -n "$entry" ] || die "no Debian $CODENAME entry in apt's sources: cannot derive $BACKPORTS"
    site="$(cut -d'|' -f3 <<<"$entry")"      # e.g. http://deb.debian.org/debian
    where="$(cut -d'|' -f4 <<<"$entry")"     # file:N (deb822: paragraph N; one-line: line N)
    file="${where%:*}"
    [ -r "$file" ] || die "cannot read $file (the Debian $CODENAME source entry)"
    log "deriving $BACKPORTS from the Debian $CODENAME entry in $where (URI $site)"

    case "$file" in
    *.sources)
        dest="/etc/apt/sources.list.d/$BACKPORTS.sources"
        # The first enabled deb paragraph of $file whose Suites has $CODENAME
        # and whose URIs has $site; print it with Suites replaced, Types set
        # to deb, comments dropped. Continuation lines (leading blank) belong
        # to the field before them (e.g. an inline Signed-By key).
        new="$(awk -v suite="$CODENAME" -v bp="$BACKPORTS" -v site="$site" '
            function add(f, v) {
                if (f == "suites") suites = suites " " v; else if (f == "types") types = types " " v
                else if (f == "uris") uris = uris " " v; else if (f == "enabled") enabled = enabled v
            }
            function flush(   i, ok, fld) {
                if (n == 0 || done) { n = 0; return }
                ok = (suites ~ ("(^|[ \t])" suite "([ \t]|$)")) && (types ~ /(^|[ \t])deb([ \t]|$)/) \
                     && (enabled !~ /^[ \t]*no[ \t]*$/)
                m = split(uris, u, /[ \t]+/); hit = 0
                for (i = 1; i <= m; i++) { x = u[i]; sub(/\/+$/, "", x); if (x == site) hit = 1 }
                if (ok && hit) {
                    for (i = 1; i <= n; i++) {
                        fld = key[i]
                        if (fld == "suites") { if (head[i]) print "Suites: " bp }
                        else if (fld == "types") { if (head[i]) print "Types: deb" }
                        else if (fld != "enabled") print text[i]
                    }
                    done = 1
                }
                n = 0; suites = types = uris = enabled = ""
            }
            /^#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ { if (n) { text[++n] = $0; key[n] = cur; head[n] = 0; add(cur, $0) } ; next }
            {
                cur = tolower(substr($0, 1, index($0, ":") - 1))
                text[++n] = $0; key[n] = cur; head[n] = 1
                add(cur, substr($0, index($0, ":") + 1))
            }
            END { flush() }
        ' "$file")"
        [ -n "$new" ] || die "no deb paragraph with Suites $CODENAME and URIs $site in $file"
        content="# Debian $BACKPORTS, derived by scripts/install-valkey.sh (xprocess)
# from the Debian $CODENAME entry in $file.
$new"
        ;;
    *)
        dest="/etc/apt/sources.list.d/$BACKPORTS.list"
        line="${where##*:}"
        src="$(sed -n "${line}p" "$file")"
        # deb [options] URI suite component...: replace the suite field.
        new="$(awk -v suite="$CODENAME" -v bp="$BACKPORTS" '{
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            i++                      # the URI
            if ($1 != "deb" || $i != suite) exit 1
            $i = bp; print
        }' <<<"$src")" || die "line $line of $file is not a 'deb ... $CODENAME ...' entry: $src"
        content="# Debian $BACKPORTS, derived by scripts/install-valkey.sh (xprocess)
# from line $line of $file.
$new"
        ;;
    esac

    log "writing $dest:"
    printf '%s\n' "$content" | sed 's/^/    /'
    printf '%s\n' "$content" | "${SUDO[@]}" tee "$dest" >/dev/null
    run "${SUDO[@]}" apt-get update
    [ -n "$(debian_target "$BACKPORTS")" ] || die "apt-get update did not pick up Debian $BACKPORTS from $dest"
fi

log "apt-cache policy $PACKAGE:"
apt-cache policy "$PACKAGE" | sed 's/^/    /'
version="$(apt-cache madison "$PACKAGE" | awk -F'|' -v bp="$BACKPORTS" '$3 ~ ("[ /]" bp "/") { gsub(/ /, "", $2); print $2; exit }')"
[ -n "$version" ] || die "$PACKAGE is not in Debian $BACKPORTS"
log "$PACKAGE $version from $BACKPORTS"
case "$version" in
8.*) ;;
*) log "warning: $PACKAGE $version is not Valkey 8" ;;
esac

# Keep the package's service from starting (it would take port 6379, maybe
# already used by the packaged redis-server): the tests start their own.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    log "temporarily installing $policy (exit 101) so the valkey-server service is not started"
    printf '#!/bin/sh\n# temporary, from xprocess scripts/install-valkey.sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    trap '"${SUDO[@]}" rm -f "$policy"; echo "install-valkey: removed the temporary $policy"' EXIT
fi

run "${SUDO[@]}" apt-get install -y --no-install-recommends -t "$BACKPORTS" "$PACKAGE"

command -v valkey-server >/dev/null 2>&1 || die "valkey-server not on PATH after installing $PACKAGE"
log "installed: $(command -v valkey-server): $(valkey-server --version)"
