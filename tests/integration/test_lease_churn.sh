#!/bin/bash
# test_lease_churn.sh: what lease churn leaves on disk, seen from outside with etcdctl. 20,000 leases
# are granted and revoked (every other one with a key put under it) by python3-etcd3 (etcdctl
# would cost one process per call); then etcdctl compacts to the current revision and defrags, and
# the data dir (and endpoint status' dbSize) must hold at most 512 KiB, before and after a clean
# restart and a kill -9 restart, with the revision, the compaction, no lease and no key surviving;
# three more put + defrag leave no segment files behind (at most 3 files). The same churn runs on
# Debian's etcd for its numbers and the etcdctl outputs, which must match.
# Then the issue's repro, on etcd and cetcd, outputs compared step by step: put a 1; put b 2;
# del b; compact 4; defrag; restart (clean, and kill -9); get a is a=1, put d 4 works, revision >= 4.
# LEASE_CHURN_N changes the number of leases; LEASE_CHURN_ETCD=0 skips the churn on etcd.
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C

N=${LEASE_CHURN_N:-20000}
LIMIT=$((512 * 1024))

# churn EP N: N leases granted and revoked, 200 in flight at a time; a key under every other one.
# Prints "granted G keys K revoked R"; exits non-zero on any error.
churn() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import sys
import grpc
from etcd3 import etcdrpc as pb
ep, n = sys.argv[1], int(sys.argv[2])
ch = grpc.insecure_channel(ep)
lease, kv = pb.LeaseStub(ch), pb.KVStub(ch)
granted = keys = revoked = 0
B = 200
for base in range(0, n, B):
    grants = [lease.LeaseGrant.future(pb.LeaseGrantRequest(TTL=600), 30) for _ in range(base, min(n, base + B))]
    ids = [f.result().ID for f in grants]
    granted += len(ids)
    puts = [kv.Put.future(pb.PutRequest(key=b"churn/%08d" % (base + i), value=b"v" * 100, lease=lid), 30)
            for i, lid in enumerate(ids) if (base + i) % 2 == 0]
    for f in puts:
        f.result()
    keys += len(puts)
    for f in [lease.LeaseRevoke.future(pb.LeaseRevokeRequest(ID=lid), 30) for lid in ids]:
        f.result()
    revoked += len(ids)
print("granted %d keys %d revoked %d" % (granted, keys, revoked))
PY
}

# c EP args...: etcdctl; OUT is stdout, ERR the last stderr line (the "Error: ..." one), RC the status.
c() {
    local ep=$1; shift
    OUT=$(ETCDCTL_API=3 timeout 60 etcdctl --endpoints "$ep" --dial-timeout=2s --command-timeout=50s "$@" \
        2>"$T_TMP/stderr")
    RC=$?
    ERR=$(grep -v '^{"level"' "$T_TMP/stderr" | tail -1)
}

# revision EP / db_size EP / count EP PREFIX: one number, or etcdctl's error line when it fails.
revision() { c "$1" get rev-probe -w json; [ $RC = 0 ] && jq '.header.revision' <<<"$OUT" || echo "$ERR"; }
db_size() { c "$1" endpoint status -w json; [ $RC = 0 ] && jq '.[0].Status.dbSize' <<<"$OUT" || echo "$ERR"; }
count() { c "$1" get --prefix "$2" --keys-only -w json; [ $RC = 0 ] && jq '(.kvs // []) | length' <<<"$OUT" || echo "$ERR"; }
is_le() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -le "$2" ] && echo yes || echo "no: $1"; }
kib() { echo "$(( ($1 + 1023) / 1024 )) KiB"; }

# on_disk LABEL: checks cetcd's data dir and dbSize against LIMIT; prints the numbers.
on_disk() {
    local bytes files db
    bytes=$(dir_bytes "$CETCD_DIR"); files=$(dir_files "$CETCD_DIR"); db=$(db_size "$CETCD_EP")
    echo "  cetcd $1: data dir $bytes bytes in $files files, endpoint status dbSize $db"
    t_eq "$1: data dir holds <= 512 KiB (has $(kib "$bytes"))" yes "$(is_le "$bytes" $LIMIT)"
    t_eq "$1: endpoint status dbSize <= 512 KiB" yes "$(is_le "$db" $LIMIT)"
}

# state LABEL REV: after a restart: the revision is REV, reading below it is compacted, no lease and
# no churn key is back, and the next put gets REV+1.
state() {
    t_eq "$1: revision kept" "$2" "$(revision "$CETCD_EP")"
    c "$CETCD_EP" get churn/00000000 --rev=$(($2 - 1))
    t_eq "$1: read below the compaction is compacted" "Error: etcdserver: mvcc: required revision has been compacted rc=1" "$ERR rc=$RC"
    c "$CETCD_EP" lease list
    t_eq "$1: no lease came back" "found 0 leases" "$OUT"
    t_eq "$1: no churn key came back" 0 "$(count "$CETCD_EP" churn/)"
}

# --- 1. cetcd: churn, compact, defrag, sizes, restarts ---
start_cetcd || { t_fail "cetcd starts" "$(tail -5 "$T_TMP/cetcd.log")"; t_finish; exit 1; }
echo "  cetcd fresh: data dir $(dir_bytes "$CETCD_DIR") bytes in $(dir_files "$CETCD_DIR") files"
t0=$(date +%s.%N)
got=$(churn "$CETCD_EP" "$N" 2>&1)
t_eq "cetcd: $N leases granted and revoked by python3-etcd3 ($(awk -v a="$t0" -v b="$(date +%s.%N)" \
    'BEGIN {printf "%.1f s", b - a}'))" "granted $N keys $((N / 2)) revoked $N" "$got"
echo "  cetcd after churn: data dir $(dir_bytes "$CETCD_DIR") bytes in $(dir_files "$CETCD_DIR") files, dbSize $(db_size "$CETCD_EP")"
c "$CETCD_EP" lease list
CETCD_LEASES=$OUT
t_eq "cetcd: no lease left" "found 0 leases" "$OUT"
t_eq "cetcd: no churn key left" 0 "$(count "$CETCD_EP" churn/)"
REV=$(revision "$CETCD_EP")
CHURN_REV=$REV
t_eq "cetcd: one revision per put and per revoke with a key" $((1 + N)) "$REV"
c "$CETCD_EP" compact "$REV"
t_eq "cetcd: etcdctl compact $REV" "compacted revision $REV rc=0" "$OUT rc=$RC"
c "$CETCD_EP" defrag
t_eq "cetcd: etcdctl defrag" "Finished defragmenting etcd member[$CETCD_EP] rc=0" "$OUT rc=$RC"
on_disk "after compact + defrag"
for i in 1 2 3; do c "$CETCD_EP" put "between-defrags" "$i"; c "$CETCD_EP" defrag; done
c "$CETCD_EP" del between-defrags
files=$(dir_files "$CETCD_DIR")
t_eq "three more put + defrag: the data dir keeps at most 3 files (LOCK and segments; has $files)" yes "$(is_le "$files" 3)"
REV=$(revision "$CETCD_EP")
c "$CETCD_EP" compact "$REV"
c "$CETCD_EP" defrag
on_disk "after those, compact $REV + defrag"
restart_cetcd -TERM || t_fail "restart (SIGTERM)" "$(tail -5 "$T_TMP/cetcd.log")"
on_disk "after a clean restart"
state "after a clean restart" "$REV"
c "$CETCD_EP" put after-restart x -w json
t_eq "after a clean restart: the next put gets revision $((REV + 1))" "$((REV + 1))" "$(jq '.header.revision' <<<"$OUT")"
restart_cetcd -KILL || t_fail "restart (SIGKILL)" "$(tail -5 "$T_TMP/cetcd.log")"
on_disk "after kill -9"
c "$CETCD_EP" get after-restart
t_eq "after kill -9: the put is there" "after-restart x rc=0" "$(echo $OUT $ERR) rc=$RC"
stop_cetcd

# --- 2. the same churn on Debian's etcd, for its numbers and the etcdctl outputs ---
if [ "${LEASE_CHURN_ETCD:-1}" = 1 ]; then
    if start_etcd; then
        t0=$(date +%s.%N)
        got=$(churn "$ETCD_EP" "$N" 2>&1)
        echo "  etcd churn: $got ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f s", b - a}'))"
        c "$ETCD_EP" lease list
        t_eq "lease list after the churn: same as etcd" "$OUT" "$CETCD_LEASES"
        t_eq "revision after the churn: same as etcd" "$(revision "$ETCD_EP")" "$CHURN_REV"
        echo "  etcd after churn: dbSize $(db_size "$ETCD_EP")"
        c "$ETCD_EP" compact "$(revision "$ETCD_EP")"
        c "$ETCD_EP" defrag
        echo "  etcd after compact + defrag: dbSize $(db_size "$ETCD_EP"), data dir $(dir_bytes "$ETCD_DIR") bytes in $(dir_files "$ETCD_DIR") files"
        stop_etcd
    else
        t_fail "etcd starts" "$(tail -5 "$T_TMP/etcd.log")"
    fi
fi

# --- 3. the issue's repro, on both, each step's output compared ---
EP=
# step NAME etcdctl-args...: one etcdctl call; its stdout, stderr and status, normalized.
step() {
    local name=$1; shift
    echo "## $name"
    timeout 10 env ETCDCTL_API=3 etcdctl --endpoints "$EP" --dial-timeout=2s --command-timeout=5s "$@" \
        >"$T_TMP/out" 2>"$T_TMP/err"
    echo "rc=$?"
    norm <"$T_TMP/out"
    norm <"$T_TMP/err" | sed 's/^/E: /'
}

# repro KIND SIG OUT: the issue's steps on a fresh etcd or cetcd, restarted with SIG in the middle.
repro() {
    local kind=$1 sig=$2
    if [ "$kind" = etcd ]; then
        start_etcd || { echo "## start: etcd did not start" >"$3"; return; }
        EP=$ETCD_EP
    else
        unset CETCD_DIR
        start_cetcd || { echo "## start: cetcd did not start" >"$3"; return; }
        EP=$CETCD_EP
    fi
    {
        step put_a put a 1
        step put_b put b 2
        step del_b del b
        step compact compact 4
        step defrag defrag
        echo "## restart $sig"
        if [ "$kind" = etcd ]; then restart_etcd "$sig" && EP=$ETCD_EP; else restart_cetcd "$sig" && EP=$CETCD_EP; fi
        echo "rc=$?"
        step get_a get a
        step get_a_json -w json get a
        step put_d put d 4
        step get_all -w json get --prefix ""
        step get_rev3 get b --rev=3
        step get_rev4 -w json get --prefix "" --rev=4
        step compact_again compact 4
    } >"$3" 2>&1
    if [ "$kind" = etcd ]; then stop_etcd; else stop_cetcd; fi
}

block() { awk -v n="## $2" '$0 == n {on=1; next} /^## / {on=0} on' "$1"; }

for sig in -TERM -KILL; do
    ref=$T_TMP/repro.etcd$sig; got=$T_TMP/repro.cetcd$sig
    repro etcd "$sig" "$ref"
    repro cetcd "$sig" "$got"
    if grep -q '^## start:' "$got"; then t_fail "repro$sig: cetcd starts"; continue; fi
    # the issue's own checks, on cetcd alone
    t_eq "repro$sig: get a returns a=1 after the restart" $'rc=0\na\n1' "$(block "$got" get_a)"
    t_eq "repro$sig: put d 4 works after the restart" $'rc=0\nOK' "$(block "$got" put_d)"
    r=$(block "$got" get_all | sed -n 's/.*"revision":\([0-9]*\).*/\1/p')
    t_eq "repro$sig: revision after put d is >= 4" yes "$([ "${r:-0}" -ge 4 ] && echo yes || echo "no: ${r:-none}")"
    # and every step as etcd answers it
    grep -q '^## start:' "$ref" && { t_fail "repro$sig: etcd starts" "$(tail -5 "$T_TMP/etcd.log")"; continue; }
    while IFS= read -r n; do
        t_eq "repro$sig: $n (same as etcd)" "$(block "$ref" "$n")" "$(block "$got" "$n")"
    done < <(grep '^## ' "$ref" | cut -c4-)
done

t_finish
