#!/bin/bash
# test_watch_go.sh: builds tests/go/watchcheck offline with Debian's Go clientv3 (GOPATH mode) and runs
# it against cetcd and against Debian's real etcd 3.4; both must pass. etcd 3.4 answers a progress
# request at once even while a watcher catches up (etcd bug 15220), so that one check runs on cetcd only.
source "$(dirname "$0")/../lib.sh"

if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]; then
    t_fail "go toolchain and clientv3 present" "install golang-go and golang-etcd-server-dev (scripts/install-deps.sh)"
    t_finish; exit
fi
export GOCACHE=${GOCACHE:-$ROOT/build/gocache}
if (cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$T_TMP/watchcheck" ./tests/go/watchcheck) \
    >"$T_TMP/build.log" 2>&1; then
    t_pass "watchcheck builds"
else
    t_fail "watchcheck builds" "$(tail -20 "$T_TMP/build.log")"
    t_finish; exit
fi

# run NAME ARGS...: runs watchcheck and counts its result lines as this suite's.
run() {
    local name=$1; shift
    timeout 300 "$T_TMP/watchcheck" "$@" >"$T_TMP/$name.out" 2>&1
    local rc=$?
    sed "s/^\(ok  \|FAIL\) - /\1 - $name: /" "$T_TMP/$name.out" | grep -v '^[0-9]* passed, [0-9]* failed$'
    local p f
    p=$(grep -c '^ok   - ' "$T_TMP/$name.out"); f=$(grep -c '^FAIL - ' "$T_TMP/$name.out")
    T_PASSED=$((T_PASSED + p)); T_FAILED=$((T_FAILED + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then t_fail "$name: watchcheck exited $rc" "$(tail -5 "$T_TMP/$name.out")"; fi
}

if start_cetcd --experimental-watch-progress-notify-interval 300ms; then
    run cetcd --endpoints "$CETCD_EP"
    kill -0 "$CETCD_PID" 2>/dev/null && t_pass "cetcd alive after watchcheck" || t_fail "cetcd alive after watchcheck"
    stop_cetcd
else
    t_fail "cetcd starts"
fi

if start_etcd --experimental-watch-progress-notify-interval 300ms; then
    run etcd --endpoints "$ETCD_EP" --strict-progress=false
    stop_etcd
else
    t_fail "etcd starts" "$(tail -5 "$T_TMP/etcd.log")"
fi
t_finish
