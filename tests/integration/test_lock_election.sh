#!/bin/bash
# test_lock_election.sh: the Lock and Election services. tests/go/lockcheck (Debian's Go clientv3 with
# v3lockpb / v3electionpb, built offline) runs its checks against cetcd and Debian's etcd 3.4; then the
# same etcdctl lock / elect scenarios, mixed with gRPC Lock and Election calls of lockcheck, run on a
# fresh etcd and a fresh cetcd and every step's output is compared (lease ids normalized).
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C

if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]; then
    t_fail "go toolchain and clientv3 present" "install golang-go and golang-etcd-server-dev (scripts/install-deps.sh)"
    t_finish; exit
fi
export GOCACHE=${GOCACHE:-$ROOT/build/gocache}
LC=$T_TMP/lockcheck
if (cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$LC" ./tests/go/lockcheck) \
    >"$T_TMP/build.log" 2>&1; then
    t_pass "lockcheck builds"
else
    t_fail "lockcheck builds" "$(tail -20 "$T_TMP/build.log")"
    t_finish; exit
fi

# check NAME ARGS...: runs the lockcheck suite and counts its result lines as this suite's.
check() {
    local name=$1; shift
    timeout 120 "$LC" "$@" >"$T_TMP/$name.out" 2>/dev/null
    local rc=$? p f
    sed "s/^\(ok  \|FAIL\) - /\1 - $name: /" "$T_TMP/$name.out" | grep -v '^[0-9]* passed, [0-9]* failed$'
    p=$(grep -c '^ok   - ' "$T_TMP/$name.out"); f=$(grep -c '^FAIL - ' "$T_TMP/$name.out")
    T_PASSED=$((T_PASSED + p)); T_FAILED=$((T_FAILED + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then t_fail "$name: lockcheck exited $rc" "$(tail -5 "$T_TMP/$name.out")"; fi
}

if start_cetcd; then
    check cetcd -endpoints "$CETCD_EP"
    kill -0 "$CETCD_PID" 2>/dev/null && t_pass "cetcd alive after lockcheck" || t_fail "cetcd alive after lockcheck"
    stop_cetcd
else
    t_fail "cetcd starts"
fi
# etcd 3.4's Lock answers a waiter whose lease expired as if it held the lock (3.5 and cetcd: an error)
if start_etcd; then
    check etcd -endpoints "$ETCD_EP" -etcd35=false
    stop_etcd
else
    t_fail "etcd starts"
fi

# ---------- etcdctl lock / elect beside the services ----------

EP=
SCEN_PID=
norm_ids() { sed -E 's#/[0-9a-f]{6,16}$#/LEASE#'; }
# lc ARGS...: one step of lockcheck. A deadline shows as DeadlineExceeded (the client's timer) or, from
# etcd's server when it ends the call first, as Unknown with the same message: either is "deadline".
lc() { "$LC" -endpoints "$EP" "$@" 2>/dev/null | sed 's/^error: [A-Za-z]* context deadline exceeded$/error: deadline/'; }
# bg OUT etcdctl-args...: etcdctl in the background (BG_PID is its own pid, so that it gets the signal).
bg() {
    local out=$1; shift
    ETCDCTL_API=3 etcdctl --endpoints "$EP" --dial-timeout=2s "$@" </dev/null >"$out" 2>/dev/null &
    BG_PID=$!
}

# wait_lines FILE N: until FILE has N lines (5 s at most).
wait_lines() {
    local i
    for i in $(seq 1 100); do
        [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

scenario() {
    echo "## lock with a command"
    ctl "$EP" lock s1 echo hello
    ctl "$EP" lock s1 -- sh -c 'echo "key ${ETCD_LOCK_KEY%/*}/"'

    echo "## etcdctl holds the lock: a Lock call waits"
    bg "$T_TMP/hold.out" lock s2
    local hold=$BG_PID
    wait_lines "$T_TMP/hold.out" 1
    norm_ids <"$T_TMP/hold.out"
    lc -mode lock -name s2 -timeout 700ms
    echo "## etcdctl unlocks: the Lock call gets the lock"
    kill -INT "$hold"; wait "$hold"
    echo "etcdctl rc=$?"
    lc -mode lock -name s2 -timeout 5s

    echo "## a Lock call holds the lock: etcdctl lock waits"
    lc -mode hold -name s3 -hold 1500ms >"$T_TMP/svc.out" &
    local svc=$!
    wait_lines "$T_TMP/svc.out" 1
    ctl "$EP" lock s3 echo got
    echo "the service had unlocked first: $(grep -c unlocked "$T_TMP/svc.out")"
    wait "$svc"

    echo "## etcdctl elect leads"
    bg "$T_TMP/observe.out" elect -l s4
    local obs=$BG_PID
    bg "$T_TMP/elect.out" elect s4 p1
    local el=$BG_PID
    wait_lines "$T_TMP/elect.out" 2
    norm_ids <"$T_TMP/elect.out"
    lc -mode leader -name s4
    echo "## a Campaign call waits behind it"
    lc -mode campaign -name s4 -value p2 -timeout 700ms
    echo "## etcdctl resigns: the Campaign call leads"
    kill -INT "$el"; wait "$el"
    echo "etcdctl rc=$?"
    lc -mode campaign -name s4 -value p2 -timeout 5s
    sleep 0.3
    kill "$obs"; wait "$obs" 2>/dev/null
    echo "## etcdctl elect -l saw"
    norm_ids <"$T_TMP/observe.out"
    echo "## keys left"
    ctl "$EP" get --prefix s --keys-only
}

run_on() {
    local kind=$1 out=$2
    start_fresh "$kind" "$out" || return 1
    scenario >"$out" 2>&1
    if kill -0 "$SCEN_PID" 2>/dev/null; then echo "## alive"; echo yes; else echo "## alive"; echo no; fi >>"$out"
    if [ "$kind" = etcd ]; then stop_etcd; else stop_cetcd; fi
}

block() { awk -v n="## $2" '$0 == n {on=1; next} /^## / {on=0} on' "$1"; }

ref=$T_TMP/ref; got=$T_TMP/got
run_on etcd "$ref"
run_on cetcd "$got"
if grep -q '^## start:' "$got" || grep -q '^## start:' "$ref"; then
    t_fail "servers start" "$(tail -5 "$T_TMP/cetcd.log" 2>/dev/null)"
else
    while IFS= read -r n; do
        t_eq "etcdctl and services: $n (same as etcd)" "$(block "$ref" "$n")" "$(block "$got" "$n")"
    done < <(grep '^## ' "$ref" | cut -c4-)
    # a broken reference would compare empty to empty
    t_eq "reference: the Lock call got the lock after etcdctl" "locked" \
        "$(block "$ref" "etcdctl unlocks: the Lock call gets the lock" | grep -x locked)"
    t_eq "reference: etcdctl elect -l saw both leaders" "p1 p2" \
        "$(block "$ref" "etcdctl elect -l saw" | grep -E '^p[12]$' | tr '\n' ' ' | sed 's/ $//')"
fi
t_finish
