#!/bin/bash
# test_watch_etcdctl.sh: runs the same etcdctl watch scenarios (history with --rev, --prefix, ranges,
# --prev-kv, json headers, compaction, live watches, interactive `watch -i`) against Debian's real etcd
# and cetcd, each on a fresh server, and compares every step's output (ids and raft term normalized).
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C

EP=
SCEN_PID=


ctl_q() { timeout 8 env ETCDCTL_API=3 etcdctl --endpoints "$EP" --dial-timeout=2s --command-timeout=3s "$@"; }

# w NAME SECONDS etcdctl-args...: a watch that runs SECONDS and is then stopped (history replay).
w() {
    local name=$1 secs=$2; shift 2
    echo "## $name"
    if ! kill -0 "$SCEN_PID" 2>/dev/null; then echo "SERVER DEAD"; return; fi
    timeout "$secs" env ETCDCTL_API=3 etcdctl --endpoints "$EP" --dial-timeout=2s "$@" \
        >"$T_TMP/out" 2>"$T_TMP/err" </dev/null
    echo "rc=$?"
    norm <"$T_TMP/out"
    norm <"$T_TMP/err" | grep -v '^{"level"' | sed 's/^/E: /'
}

# live NAME WRITES etcdctl-args...: starts the watch, waits for it, runs the function WRITES, stops it.
live() {
    local name=$1 writes=$2 pid; shift 2
    echo "## $name"
    ETCDCTL_API=3 etcdctl --endpoints "$EP" --dial-timeout=2s "$@" >"$T_TMP/out" 2>"$T_TMP/err" </dev/null &
    pid=$!
    sleep 1
    "$writes" >/dev/null 2>&1
    sleep 0.7
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    norm <"$T_TMP/out"
}

# inter NAME WRITES SCRIPT: `etcdctl watch -i` fed SCRIPT (lines), WRITES run while it is open.
inter() {
    local name=$1 writes=$2 script=$3 pid
    echo "## $name"
    { printf '%s\n' "$script"; sleep 2.5; } |
        ETCDCTL_API=3 etcdctl --endpoints "$EP" --dial-timeout=2s watch -i >"$T_TMP/out" 2>"$T_TMP/err" &
    pid=$!
    sleep 1
    "$writes" >/dev/null 2>&1
    wait "$pid" 2>/dev/null
    norm <"$T_TMP/out"
}

writes_live() {
    ctl_q put foo live1
    ctl_q put foo/x live2
    ctl_q put other o
    ctl_q del foo
    ctl_q txn <<<$'\nput foo/y 1\nput foo/z 2\n\n'
    ctl_q del --prefix foo/
}

writes_inter() {
    ctl_q put foo i1
    ctl_q put bar b1
    ctl_q put foo i2
    ctl_q del foo
}

scenario_watch() {
    {
    ctl_q put foo 1 && ctl_q put foo 2 && ctl_q put fop 3 && ctl_q put foo/a x && ctl_q del foo
    ctl_q put bar b && ctl_q txn <<<$'\nput foo/b 1\nput foo/c 2\nput bar b2\n\n'
    ctl_q del --prefix foo/ && ctl_q put foo 3
    } >/dev/null
    w hist_key 1.5 watch foo --rev=1
    w hist_key_prev 1.5 watch foo --rev=1 --prev-kv
    w hist_key_json 1.5 -w json watch foo --rev=2
    w hist_prefix 1.5 watch --prefix foo --rev=1
    w hist_prefix_prev 1.5 watch --prefix foo --rev=1 --prev-kv
    w hist_prefix_json 1.5 -w json watch --prefix foo --rev=1 --prev-kv
    w hist_range 1.5 watch foo/ foo/c --rev=1
    w hist_range_json 1.5 -w json watch bar foo --rev=3
    w hist_all 1.5 watch --prefix "" --rev=1
    w hist_all_json 1.5 -w json watch --prefix "" --rev=5
    w hist_mid 1.5 watch --prefix "" --rev=8
    w hist_current 1.5 watch --prefix "" --rev=11
    w hist_future 1.5 watch --prefix "" --rev=100
    w hist_hex 1.5 --hex watch foo --rev=1
    live live_prefix writes_live watch --prefix foo
    live live_prefix_prev writes_live watch --prefix foo --prev-kv
    live live_json writes_live -w json watch foo
    live live_rev_old writes_live watch --prefix fo --rev=12
    inter inter_key writes_inter "watch foo"
    inter inter_prefix_rev writes_inter "watch --prefix f --rev 1 --prev-kv"
    inter inter_bad writes_inter "watch"
    ctl_q compact 6 >/dev/null
    w compacted 1.5 watch foo --rev=2
    w compacted_json 1.5 -w json watch foo --rev=3
    w compacted_edge 1.5 watch --prefix "" --rev=6
}

# run_on KIND OUTFILE
run_on() {
    local kind=$1 out=$2
    start_fresh "$kind" "$out" || return 1
    scenario_watch >"$out" 2>&1
    if kill -0 "$SCEN_PID" 2>/dev/null; then echo "## alive"; echo yes; else echo "## alive"; echo no; fi >>"$out"
    if [ "$kind" = etcd ]; then stop_etcd; else stop_cetcd; fi
}

block() { awk -v n="## $2" '$0 == n {on=1; next} /^## / {on=0} on' "$1"; }

other=cetcd
[ "${WATCH_SELFTEST:-0}" = 1 ] && other=etcd
ref=$T_TMP/ref; got=$T_TMP/got
run_on etcd "$ref"
run_on "$other" "$got"
[ -n "${WATCH_KEEP:-}" ] && cp "$ref" "$WATCH_KEEP.etcd" && cp "$got" "$WATCH_KEEP.$other"
if grep -q '^## start:' "$got" || grep -q '^## start:' "$ref"; then
    t_fail "servers start" "$(tail -5 "$T_TMP/cetcd.log" 2>/dev/null)"
else
    while IFS= read -r n; do
        t_eq "watch: $n" "$(block "$ref" "$n")" "$(block "$got" "$n")"
    done < <(grep '^## ' "$ref" | cut -c4-)
    # the history steps must have seen events at all (a broken reference would compare empty to empty)
    t_eq "reference saw history" yes "$(block "$ref" hist_all | grep -q '^foo/c$' && echo yes)"
    t_eq "reference saw live events" yes "$(block "$ref" live_prefix | grep -q '^live2$' && echo yes)"
fi
t_finish
