#!/bin/bash
# test_idle_text.sh: the functions an idle server runs sit together at the start of its text
# (scripts/idle-text.sh, idle RSS of issue 16): an idle server that answered one health check maps
# well under all of its text, and scripts/idle-text.list still names every function that path runs
# (a function added to the start or idle path and not listed lands among the cold ones and costs RSS);
# and it runs no more threads than the loop and the sync thread.
source "$(dirname "$0")/../lib.sh"

[ -x "$CETCD_BIN" ] || echo "note: $CETCD_BIN does not exist; every test will fail"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LIST=$ROOT/scripts/idle-text.list

# the text is laid out from the list: main (.text.startup) first, then the listed functions
first=$(nm -n "$CETCD_BIN" | awk '$2 ~ /^[tT]$/ && $3 !~ /^_/ { print $3; exit }')
t_eq "layout: the text starts with main" "main" "$first"

# an idle server that answered one `etcdctl endpoint health` (bench/bench.py's "RSS idle" row)
start_cetcd
etcdctl --endpoints "$CETCD_EP" endpoint health >/dev/null 2>&1
t_eq "etcdctl endpoint health" 0 "$?"
sleep 1
bin=$(realpath "$CETCD_BIN")
read -r size rss < <(awk -v b="$bin" '
    /^[0-9a-f]+-[0-9a-f]+ / { cur = ($2 == "r-xp" && $6 == b) }
    cur && $1 == "Size:" { s = $2 } cur && $1 == "Rss:" { r = $2 }
    END { print s + 0, r + 0 }' "/proc/$CETCD_PID/smaps")
# before the layout all of it (328 of 328 KiB); with it 112-176 KiB: the listed ~110 KiB in the kernel's
# 64 KiB windows or folios. A function the path runs and the list misses costs a window or more wherever
# it lands (three took it to 304 KiB), so the bound is 2/3.
if [ "$size" -gt 0 ] && [ $((rss * 3)) -lt $((size * 2)) ]; then
    t_pass "idle server maps under 2/3 of its text ($rss of $size KiB)"
else
    t_fail "idle server maps under 2/3 of its text ($rss of $size KiB)" "a stale scripts/idle-text.list?"
fi
# the loop and the sync thread: the password hashing threads start with the first hash (auth_hash.c)
t_eq "idle server: 2 threads" 2 "$(ls "/proc/$CETCD_PID/task" | wc -l)"
stop_cetcd

# the list names every function the idle path runs (callgrind; skipped without valgrind)
if command -v valgrind >/dev/null; then
    "$ROOT/scripts/idle-text.sh" profile "$CETCD_BIN" >"$T_TMP/profile.list" 2>"$T_TMP/profile.err"
    t_eq "idle-text.sh profile: exit 0" 0 "$?"
    missing=$(grep -vxF -f "$LIST" "$T_TMP/profile.list" | grep -v '^ \*\|^/\*')
    t_eq "scripts/idle-text.list lists what the idle path runs (else: scripts/idle-text.sh profile build/cetcd scripts/idle-text.list > l; mv l scripts/idle-text.list)" \
        "" "$missing"
else
    echo "note: no valgrind; the list's completeness is not checked"
fi

t_finish
