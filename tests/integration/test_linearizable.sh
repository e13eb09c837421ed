#!/bin/bash
# test_linearizable.sh: a linearizability check of etcd's KV (tests/go/lincheck, built offline with
# Debian's Go clientv3 in GOPATH mode). 16 clients run puts, txns, linearizable gets and deletes over 8
# keys; the server's write log is read back with a Watch from revision 1 and the history is checked
# (the argument is at the top of tests/go/lincheck/check.go). Runs:
#   - the self-test: doctored histories (stale reads, lost acknowledged writes, two writes with one
#     revision, real-time order violated, ...) must be refused, clean ones accepted;
#   - cetcd, killed with SIGKILL (by PID) and restarted on the same data dir and port every 1-3 s;
#   - cetcd made to lose acknowledged writes (its data dir rolled back during a restart): refused;
#   - Debian's real etcd without restarts, to show that the checker accepts a real etcd's history
#     (LINCHECK_ETCD_RESTARTS=1: also with kill -9 restarts).
# LINCHECK_SECONDS (default 15) sets the cetcd run; LINCHECK_ETCD_SECONDS (default 6) the etcd one.
# lincheck holds the whole history in memory: about 1 GB of RSS per million ops (5 min: 2M ops, 1.9 GB).
# A history that fails is kept in /tmp (the FAIL line says where); `lincheck -check FILE` re-checks it.
source "$(dirname "$0")/../lib.sh"

if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]; then
    t_fail "go toolchain and clientv3 present" "install golang-go and golang-etcd-server-dev (scripts/install-deps.sh)"
    t_finish; exit
fi
export GOCACHE=${GOCACHE:-$ROOT/build/gocache}
if (cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$T_TMP/lincheck" ./tests/go/lincheck) \
    >"$T_TMP/build.log" 2>&1; then
    t_pass "lincheck builds"
else
    t_fail "lincheck builds" "$(tail -20 "$T_TMP/build.log")"
    t_finish; exit
fi

SECS=${LINCHECK_SECONDS:-15}
ETCD_SECS=${LINCHECK_ETCD_SECONDS:-6}

# run NAME ARGS...: runs lincheck and counts its result lines as this suite's.
run() {
    local name=$1; shift
    timeout $(( ${SECS%.*} + ${ETCD_SECS%.*} + 300 )) "$T_TMP/lincheck" "$@" >"$T_TMP/$name.out" 2>"$T_TMP/$name.err"
    local rc=$?
    grep -v '^[0-9]* passed, [0-9]* failed$' "$T_TMP/$name.out"
    local p f
    p=$(grep -c '^ok   - ' "$T_TMP/$name.out"); f=$(grep -c '^FAIL - ' "$T_TMP/$name.out")
    T_PASSED=$((T_PASSED + p)); T_FAILED=$((T_FAILED + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        t_fail "$name: lincheck exited $rc" "$(tail -5 "$T_TMP/$name.out"; tail -5 "$T_TMP/$name.err")"
    fi
}

run selftest -selftest

# cetcd: lincheck owns the server (started on a free port and a fresh dir, killed by PID, restarted on
# the same dir and port); at least one restart every 5 s of the run.
port=$(free_port)
min_restarts=$(( ${SECS%.*} / 5 )); [ "$min_restarts" -ge 1 ] || min_restarts=1
run cetcd -name "cetcd, kill -9 every 1-3 s" -server "$CETCD_BIN" -data-dir "$T_TMP/cetcd-data" \
    -endpoints "127.0.0.1:$port" -seconds "$SECS" -restart-min 1s -restart-max 3s \
    -min-restarts "$min_restarts" -server-log "$T_TMP/cetcd.log" -failed-history "/tmp/lincheck-cetcd-$$.json"
if grep -q '^FAIL' "$T_TMP/cetcd.out"; then
    echo "       cetcd's log (last lines):"; grep -v ' info ' "$T_TMP/cetcd.log" | tail -5 | sed 's/^/       /'
fi

# the same against a server made to lose acknowledged writes: its data dir rolled back to a copy taken
# two restarts earlier (cetcd cannot tell). The check must refuse this history.
port=$(free_port)
timeout 120 "$T_TMP/lincheck" -name "cetcd, data dir rolled back" -server "$CETCD_BIN" \
    -data-dir "$T_TMP/rollback-data" -endpoints "127.0.0.1:$port" -seconds 6 -restart-min 0.5s \
    -restart-max 1s -sabotage-rollback -server-log "$T_TMP/rollback.log" >"$T_TMP/rollback.out" 2>&1
if grep -q '^FAIL - .*linearizable: [0-9]* violation' "$T_TMP/rollback.out" && grep -q 'rolled back' "$T_TMP/rollback.out"; then
    t_pass "lost writes are seen: a data dir rolled back during a kill -9 restart is refused ($(grep -o '[0-9]* violation(s) in [0-9]* ops' "$T_TMP/rollback.out"))"
else
    t_fail "lost writes are seen: a data dir rolled back during a kill -9 restart is refused" "$(head -20 "$T_TMP/rollback.out")"
fi

if start_etcd; then
    run etcd -name "etcd $(etcd --version | awk 'NR==1 {print $3}'), no restarts" -endpoints "$ETCD_EP" \
        -seconds "$ETCD_SECS" -failed-history "/tmp/lincheck-etcd-$$.json"
    stop_etcd
else
    t_fail "etcd starts" "$(tail -5 "$T_TMP/etcd.log")"
fi

# LINCHECK_ETCD_RESTARTS=1: the real etcd with kill -9 restarts too, owned by lincheck like cetcd (to
# show that the handling of unknown ops accepts the reference's behaviour around crashes).
if [ "${LINCHECK_ETCD_RESTARTS:-0}" = 1 ]; then
    port=$(free_port); pport=$(free_port)
    run etcd-restarts -name "etcd $(etcd --version | awk 'NR==1 {print $3}'), kill -9 every 1-3 s" \
        -server "$(command -v etcd)" -server-flags "--name ref --listen-peer-urls http://127.0.0.1:$pport \
        --initial-advertise-peer-urls http://127.0.0.1:$pport --initial-cluster ref=http://127.0.0.1:$pport" \
        -data-dir "$T_TMP/etcd-restarts-data" -endpoints "127.0.0.1:$port" -seconds "$ETCD_SECS" \
        -restart-min 1s -restart-max 3s -server-log "$T_TMP/etcd-restarts.log" \
        -failed-history "/tmp/lincheck-etcd-restarts-$$.json"
    if grep -q '^FAIL' "$T_TMP/etcd-restarts.out"; then
        echo "       etcd's log (last lines):"; tail -8 "$T_TMP/etcd-restarts.log" | sed 's/^/       /'
    fi
fi
t_finish
