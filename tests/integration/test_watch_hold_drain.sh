#!/bin/bash
# test_watch_hold_drain.sh: events held back while a watcher's connection was busy (src/watch/watch_hold.c)
# go out as soon as the connection has drained, even when it drained all at once within the turn's own
# write and no other event comes after: 1000 watchers and 500 puts from bench/watchload.c (its -F writes
# one HTTP/2 frame at a time), where the last tenth of the events used to wait ~37 s for an unrelated
# wake-up of the loop. Each run must get all 500,000 events within seconds, from cetcd and from etcd.
source "$(dirname "$0")/../lib.sh"

WL=$T_TMP/watchload
if cc -std=c11 -O2 -o "$WL" "$ROOT/bench/watchload.c" -lnghttp2 2>"$T_TMP/cc.log"; then
    t_pass "bench/watchload.c builds"
else
    t_fail "bench/watchload.c builds" "$(tail -5 "$T_TMP/cc.log")"
    t_finish
    exit
fi

# runs NAME PORT: three runs of 1000 watchers x 500 puts, each within 10 s
runs() {
    local i line
    for i in 1 2 3; do
        line=$("$WL" -P "$2" -k "hold/$i" -n 500 -C 1 -m 4 -F -t 10 2>&1 | tail -1)
        if [[ $line == events=500000\ * ]]; then
            t_pass "$1: run $i, every event of 1000 watchers x 500 puts (${line#* * * seconds=}"
        else
            t_fail "$1: run $i, every event of 1000 watchers x 500 puts" "$line"
        fi
    done
}

start_cetcd || { t_fail "cetcd starts"; t_finish; exit; }
runs cetcd "$CETCD_PORT"
kill -0 "$CETCD_PID" 2>/dev/null && t_pass "cetcd alive" || t_fail "cetcd alive"
stop_cetcd
start_etcd || { t_fail "etcd starts"; t_finish; exit; }
runs etcd "${ETCD_EP##*:}"
t_finish
