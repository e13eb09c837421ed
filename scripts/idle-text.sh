#!/bin/bash
# idle-text.sh: keeps the functions an idle server runs (start, one `etcdctl endpoint health`, a few
# seconds of idle) next to each other at the start of the text, so that the kernel, which maps a file's
# pages 64 KiB around each fault, maps their pages and not all of the binary's (idle RSS, issue 16).
#   scripts/idle-text.sh profile path/to/cetcd [OLD_LIST] > new-list; mv new-list scripts/idle-text.list
#     runs the server under callgrind and lists the input sections of the functions that ran (needs
#     valgrind and etcdctl), with those of OLD_LIST that still exist in the binary: a connection's end
#     takes one of several paths by timing, so one run does not see them all. Rerun it when the start or
#     the idle path changes; a stale list costs RSS only.
#   scripts/idle-text.sh ldscript LIST CC [FLAGS...] > build/cetcd.ld
#     the linker's own default script for these flags (ld --verbose) with LIST's sections placed first
#     in .text; the Makefile links the server with it. Still one .text, which valgrind needs to name
#     functions (a separate output section, as an INSERT script makes, leaves them all unnamed).
set -eu
if [ "${1:-}" = ldscript ] && [ $# -ge 3 ]; then
    LIST=$2
    shift 2
    # the default script sits between two lines of '=' in the verbose output of a trivial link
    echo 'int main(void) { return 0; }' | "$@" -x c - -o /dev/null -Wl,--verbose |
        awk -v list="$LIST" '/^=====/ { on = !on; next }
            on && index($0, "*(.text.unlikely .text.*_unlikely .text.unlikely.*)") {
                while ((getline l < list) > 0) print l; n++ }
            on { print }
            END { if (n != 1) { print "idle-text.sh: no .text statement found in ld --verbose" > "/dev/stderr"; exit 1 } }'
    exit
fi
[ "${1:-}" = profile ] || { echo "usage: $0 profile path/to/cetcd [OLD_LIST] | ldscript LIST CC [FLAGS...]" >&2; exit 2; }
BIN=${2:-build/cetcd}
OLD=${3:-}
[ -x "$BIN" ] || { echo "$0: $BIN: not built" >&2; exit 2; }
command -v valgrind >/dev/null && command -v etcdctl >/dev/null || { echo "$0: needs valgrind and etcdctl" >&2; exit 2; }

TMP=$(mktemp -d /tmp/idle-text.XXXXXX)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
EP=127.0.0.1:$PORT
# the flags bench/bench.py starts a server with for its "RSS idle" row
valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" "$BIN" --data-dir "$TMP/data" \
    --listen-client-urls "http://$EP" --advertise-client-urls "http://$EP" >"$TMP/log" 2>&1 &
PID=$!
trap 'kill -9 "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$TMP"' EXIT
ok=
for _ in $(seq 300); do
    etcdctl --endpoints "$EP" --dial-timeout=1s endpoint health >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.1
done
[ -n "$ok" ] || { echo "$0: the server did not become healthy: $(tail -3 "$TMP/log")" >&2; exit 1; }
for _ in 1 2 3; do # more connections, more of the ways one ends
    sleep 0.3
    etcdctl --endpoints "$EP" --dial-timeout=1s endpoint health >/dev/null 2>&1
done
sleep 3
# the counts so far (cg.out.1); the server is then killed, so its shutdown path is not listed
callgrind_control -d "$PID" >/dev/null 2>&1
for _ in $(seq 50); do [ -s "$TMP/cg.out.1" ] && break; sleep 0.1; done

# every function of the binary that ran: "<file>:<name> [<binary>]" in callgrind_annotate's list
FUNCS=$(callgrind_annotate --threshold=100 "$TMP/cg.out.1" | grep -F "[$(realpath "$BIN")]" |
    sed -nE 's/.*:([A-Za-z_][A-Za-z0-9_.]*) \[.*/\1/p' | sort -u)
[ -n "$FUNCS" ] || { echo "$0: no functions found in the profile" >&2; exit 1; }
if [ -n "$OLD" ]; then # OLD_LIST's functions that the binary still has
    KEPT=$(sed -nE 's/^    \*\(\.text\.unlikely\.([^)]*)\)$/\1.cold/p; s/^    \*\(\.text\.([^)]*)\)$/\1/p' "$OLD" |
        grep -vx 'startup .text.startup.\*' | sort -u | comm -12 - <(nm "$BIN" | awk '{print $NF}' | sort -u))
    FUNCS=$(printf '%s\n' $FUNCS $KEPT | sort -u)
fi

echo "/* scripts/idle-text.list: made by scripts/idle-text.sh profile, do not edit: the sections put first in"
echo " * .text (start, one etcdctl endpoint health, idle). libev and protobuf-c are not built with"
echo " * -ffunction-sections, so their text comes whole. */"
echo "    *(.text.startup .text.startup.*)"
for f in $FUNCS; do
    case $f in
    main) ;;
    *.cold) echo "    *(.text.unlikely.${f%.cold})" ;;
    *) echo "    *(.text.$f)" ;;
    esac
done
echo "    *libev.a:*(.text .text.unlikely)"
echo "    *libprotobuf-c.a:*(.text)"
