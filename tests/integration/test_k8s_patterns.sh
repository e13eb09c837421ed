#!/bin/bash
# test_k8s_patterns.sh: builds tests/go/k8spatterns offline with Debian's Go clientv3 (GOPATH mode) and
# runs it against cetcd and against Debian's real etcd, each on a fresh server: the storage patterns of
# newer kube-apiservers (Txn create/update/delete on ModRevision, pinned paged lists with count and more,
# count-only and keys-only ranges, the compactor's Txn on compact_rev_key, one lease for many keys,
# RequestProgress, UNIMPLEMENTED for unknown methods, the health check under 64 writers). Both must
# pass, and their transcripts (revisions, flags, counts, keys of the deterministic part) must match.
# etcd 3.4.23 reports a version below 3.5.13, so the version floor is checked on cetcd only.
source "$(dirname "$0")/../lib.sh"

if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]; then
    t_fail "go toolchain and clientv3 present" "install golang-go and golang-etcd-server-dev (scripts/install-deps.sh)"
    t_finish; exit
fi
export GOCACHE=${GOCACHE:-$ROOT/build/gocache}
if (cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode timeout 300 go build -o "$T_TMP/k8spatterns" \
        ./tests/go/k8spatterns) >"$T_TMP/build.log" 2>&1; then
    t_pass "k8spatterns builds"
else
    t_fail "k8spatterns builds" "$(tail -20 "$T_TMP/build.log")"
    t_finish; exit
fi

# run NAME ARGS...: runs k8spatterns and counts its result lines as this suite's.
run() {
    local name=$1; shift
    timeout 180 "$T_TMP/k8spatterns" "$@" >"$T_TMP/$name.out" 2>&1
    local rc=$?
    sed -n "s/^\(ok  \|FAIL\) - /\1 - $name: /p; /^       (/p" "$T_TMP/$name.out"
    local p f
    p=$(grep -c '^ok   - ' "$T_TMP/$name.out"); f=$(grep -c '^FAIL - ' "$T_TMP/$name.out")
    T_PASSED=$((T_PASSED + p)); T_FAILED=$((T_FAILED + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then t_fail "$name: k8spatterns exited $rc" "$(tail -5 "$T_TMP/$name.out")"; fi
}

if start_cetcd; then
    run cetcd --endpoints "$CETCD_EP" --transcript "$T_TMP/cetcd.tr"
    kill -0 "$CETCD_PID" 2>/dev/null && t_pass "cetcd alive after k8spatterns" || t_fail "cetcd alive after k8spatterns"
    stop_cetcd
else
    t_fail "cetcd starts"
fi

if start_etcd; then
    run etcd --endpoints "$ETCD_EP" --transcript "$T_TMP/etcd.tr" --min-version ""
    stop_etcd
else
    t_fail "etcd starts" "$(tail -5 "$T_TMP/etcd.log")"
fi

if [ -s "$T_TMP/cetcd.tr" ] && [ -s "$T_TMP/etcd.tr" ]; then
    t_eq "same revisions, flags, counts and keys as etcd" "$(cat "$T_TMP/etcd.tr")" "$(cat "$T_TMP/cetcd.tr")"
else
    t_fail "same revisions, flags, counts and keys as etcd" "a transcript is missing"
fi
t_finish
