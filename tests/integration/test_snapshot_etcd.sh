#!/bin/bash
# test_snapshot_etcd.sh: the way out of cetcd into a real etcd cluster and back, by snapshot (issue 14):
# cetcd loaded with keys, history, a compaction and leases; `etcdctl snapshot save` from it, `snapshot
# status`, `snapshot restore` three times and a 3-member Debian etcd cluster started on the result; every
# key at several revisions, the compaction revision and the leases with their keys compared; then a
# snapshot of that cluster restored into cetcd and compared the same way. The same both ways with auth
# on (users, roles, permissions, passwords). Also: damaged, truncated and unhashed files are refused and
# leave no data dir behind.
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C

c() {
    local ep=$1; shift
    OUT=$(ETCDCTL_API=3 timeout 30 etcdctl --endpoints "$ep" --dial-timeout=2s --command-timeout=20s "$@" \
        2>"$T_TMP/stderr")
    RC=$?
    ERR=$(grep -v '^{"level"' "$T_TMP/stderr" | tail -1)
}

# txn_puts EP PREFIX N FROM: one txn of N puts (one revision, sub-revisions 0..N-1).
txn_puts() {
    local i
    { echo; for i in $(seq "$4" $(($4 + $3 - 1))); do echo "put $2$i v$i-$RANDOM"; done; echo; echo; } |
        ETCDCTL_API=3 etcdctl --endpoints "$1" txn >/dev/null 2>&1
}

# jq 1.6 reads numbers as doubles: lease ids are quoted first so they keep their 64 bits
qjq() { sed -E 's/"(lease|ID|id)":([0-9]+)/"\1":"\2"/g' | jq "$@"; }

# state EP REVS...: what a server answers, as comparable text: the current revision, every key at each
# of REVS, the compaction edge, and the leases (id, granted TTL, keys).
state() {
    local ep=$1 rev id; shift
    c "$ep" get "" --prefix -w json --limit 1
    echo "revision $(jq '.header.revision' <<<"$OUT")"
    for rev in "$@"; do
        c "$ep" get "" --prefix -w json --rev "$rev"
        echo "at $rev: rc $RC $(qjq -c '[.kvs[]? | [.key, .create_revision, .mod_revision, .version, .value, (.lease // 0)]] | (length|tostring) + " " + tostring' <<<"$OUT")"
    done
    c "$ep" get "" --prefix --rev $((COMPACT - 1))
    echo "below the compaction: rc $RC $ERR"
    c "$ep" lease list
    for id in $(grep -v found <<<"$OUT" | sort); do
        c "$ep" lease timetolive "$id" --keys -w json
        echo "lease $id: $(jq -c '[."granted-ttl", ([.keys[]?] | sort)]' <<<"$OUT")"
    done
}

# --- load cetcd: keys, history, txns (sub-revisions), big values, deletes, leases, a compaction ---
start_cetcd || { t_fail "start cetcd"; t_finish; exit 1; }
EP=$CETCD_EP
for t in $(seq 0 39); do txn_puts "$EP" "bulk/$((t % 10))/" 120 $((t * 7)); done  # 40 revisions x 120
for i in $(seq 1 30); do c "$EP" put "hist/$((i % 6))" "v$i"; done
c "$EP" put big/1 "$(head -c 20000 /dev/zero | tr '\0' x)"                         # overflow pages
c "$EP" put big/2 "$(head -c 9000 /dev/zero | tr '\0' y)"
c "$EP" lease grant 600; L1=$(awk '{print $2}' <<<"$OUT")
c "$EP" lease grant 900; L2=$(awk '{print $2}' <<<"$OUT")
c "$EP" lease grant 300; L3=$(awk '{print $2}' <<<"$OUT")
c "$EP" lease grant 120; L4=$(awk '{print $2}' <<<"$OUT")
c "$EP" put lk/1 a --lease="$L1"; c "$EP" put lk/2 b --lease="$L1"; c "$EP" put lk/3 c --lease="$L2"
c "$EP" put lk/4 d --lease="$L4"
c "$EP" del hist/3; c "$EP" del bulk/2/ --prefix
c "$EP" get "" --prefix --limit 1 -w json; MID=$(jq '.header.revision' <<<"$OUT")
for i in $(seq 1 10); do c "$EP" put "hist/$((i % 4))" "w$i"; done
c "$EP" lease revoke "$L4"
c "$EP" get "" --prefix --limit 1 -w json; COMPACT=$(( $(jq '.header.revision' <<<"$OUT") - 8 ))
c "$EP" compact "$COMPACT"
t_eq "cetcd: compaction" "0" "$RC"
for i in $(seq 1 6); do c "$EP" put "after/$i" "z$i"; done
c "$EP" put lk/5 e --lease="$L3"; c "$EP" del after/2; c "$EP" put hist/0 last
c "$EP" get "" --prefix --limit 1 -w json; REV=$(jq '.header.revision' <<<"$OUT")
REVS="$COMPACT $((COMPACT + 1)) $((COMPACT + 5)) $((REV - 1)) $REV"
state "$EP" $REVS >"$T_TMP/want"
grep -q "^lease $L1: \[600,\[\"bGsvMQ==\",\"bGsvMg==\"\]\]$" "$T_TMP/want" && grep -q "^at $REV: rc 0 " "$T_TMP/want" &&
    t_pass "cetcd: state recorded (revision $REV, compacted at $COMPACT)" || t_fail "cetcd: state" "$(cat "$T_TMP/want")"
c "$EP" endpoint hashkv -w json; WANT_HASHKV=$(jq '.[0].HashKV.hash' <<<"$OUT")

# --- snapshot save from cetcd; etcdctl's own status ---
c "$EP" snapshot save "$T_TMP/cetcd.db"
t_eq "snapshot save from cetcd" "0 Snapshot saved at $T_TMP/cetcd.db" "$RC $OUT"
ETCDCTL_API=3 etcdctl snapshot status "$T_TMP/cetcd.db" -w json >"$T_TMP/status" 2>"$T_TMP/status.err"
t_eq "etcdctl snapshot status accepts it" "0 $REV" "$? $(jq '.revision' <"$T_TMP/status")"
ETCDCTL_API=3 etcdctl snapshot status "$T_TMP/cetcd.db" -w table 2>/dev/null | sed 's/^/       /'

# --- restore three times, start a 3-member etcd cluster ---
declare -a CPORT PPORT EPID
CLUSTER=
for m in 1 2 3; do
    CPORT[m]=$(free_port); PPORT[m]=$(free_port)
    CLUSTER+="${CLUSTER:+,}m$m=http://127.0.0.1:${PPORT[m]}"
done
for m in 1 2 3; do
    ETCDCTL_API=3 etcdctl snapshot restore "$T_TMP/cetcd.db" --name "m$m" --data-dir "$T_TMP/m$m" \
        --initial-cluster "$CLUSTER" --initial-cluster-token snaptest \
        --initial-advertise-peer-urls "http://127.0.0.1:${PPORT[m]}" >"$T_TMP/restore$m.log" 2>&1
    t_eq "etcdctl snapshot restore, member m$m" "0" "$?"
done
for m in 1 2 3; do
    etcd --name "m$m" --data-dir "$T_TMP/m$m" --listen-client-urls "http://127.0.0.1:${CPORT[m]}" \
        --advertise-client-urls "http://127.0.0.1:${CPORT[m]}" --listen-peer-urls "http://127.0.0.1:${PPORT[m]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${PPORT[m]}" --initial-cluster "$CLUSTER" \
        --initial-cluster-token snaptest >>"$T_TMP/etcd$m.log" 2>&1 &
    EPID[m]=$!
    T_PIDS+=("${EPID[m]}")
done
ALL_EPS="127.0.0.1:${CPORT[1]},127.0.0.1:${CPORT[2]},127.0.0.1:${CPORT[3]}"
for i in $(seq 1 150); do
    ETCDCTL_API=3 etcdctl --endpoints "$ALL_EPS" endpoint health >/dev/null 2>&1 && break
    sleep 0.2
done
c "$ALL_EPS" endpoint health
t_eq "3-member etcd cluster from the cetcd snapshot is healthy" "0" "$RC"
c "127.0.0.1:${CPORT[1]}" member list
t_eq "the cluster has three members" "3" "$(grep -c started <<<"$OUT")"
for m in 1 2 3; do
    state "127.0.0.1:${CPORT[m]}" $REVS >"$T_TMP/got$m"
    t_eq "etcd member m$m answers as cetcd did (keys at $REVS, compaction, leases)" "$(cat "$T_TMP/want")" "$(cat "$T_TMP/got$m")"
done
c "127.0.0.1:${CPORT[2]}" get lk/1 -w json
t_eq "a leased key keeps its lease in etcd" "$((16#$L1))" "$(qjq -r '.kvs[0].lease' <<<"$OUT")"

# --- and back: a snapshot of that cluster restored into cetcd ---
c "127.0.0.1:${CPORT[1]}" snapshot save "$T_TMP/etcd.db"
t_eq "snapshot save from the etcd cluster" "0" "$RC"
stop_cetcd
"$CETCD_BIN" --restore "$T_TMP/etcd.db" --data-dir "$T_TMP/back" >"$T_TMP/back.log" 2>&1
t_eq "cetcd --restore of the etcd cluster's snapshot" "0" "$?"
for m in 1 2 3; do kill "${EPID[m]}" 2>/dev/null; wait "${EPID[m]}" 2>/dev/null; done
CETCD_DIR=$T_TMP/back
start_cetcd || t_fail "start cetcd on the restored dir"
state "$CETCD_EP" $REVS >"$T_TMP/back.state"
t_eq "cetcd from the etcd snapshot answers as the first cetcd did" "$(cat "$T_TMP/want")" "$(cat "$T_TMP/back.state")"
c "$CETCD_EP" endpoint hashkv -w json
t_eq "round trip cetcd -> etcd -> cetcd: same HashKV" "$WANT_HASHKV" "$(jq '.[0].HashKV.hash' <<<"$OUT")"
c "$CETCD_EP" put after/new 1 -w json
t_eq "restored cetcd takes writes at the next revision" "$((REV + 1))" "$(jq '.header.revision' <<<"$OUT")"
stop_cetcd

# --- auth: users, roles, permissions and bcrypt hashes go across both ways too ---
auth_checks() { # NAME EP: anonymous refused, alice reads, alice may not write, root lists the users
    c "$2" get kx/1 --print-value-only
    t_eq "$1: anonymous get refused (auth on)" "1 Error: etcdserver: user name is empty" "$RC $ERR"
    c "$2" --user alice:alicepw get kx/1 --print-value-only
    t_eq "$1: alice reads with her password" "0 one" "$RC $OUT"
    c "$2" --user alice:alicepw put kx/2 no
    t_eq "$1: alice may not write" "1 Error: etcdserver: permission denied" "$RC $ERR"
    c "$2" --user root:rootpw user list
    t_eq "$1: the users" "alice root" "$(echo $OUT)"
}
unset CETCD_DIR
start_cetcd || t_fail "start cetcd for auth"
c "$CETCD_EP" put kx/1 one
c "$CETCD_EP" user add root:rootpw; c "$CETCD_EP" role add root; c "$CETCD_EP" user grant-role root root
c "$CETCD_EP" role add reader; c "$CETCD_EP" role grant-permission reader read kx/ --prefix
c "$CETCD_EP" user add alice:alicepw; c "$CETCD_EP" user grant-role alice reader
c "$CETCD_EP" auth enable
t_eq "cetcd: auth enabled" "0" "$RC"
c "$CETCD_EP" --user root:rootpw snapshot save "$T_TMP/auth.db"
stop_cetcd
AP=$(free_port); AC=$(free_port)
ETCDCTL_API=3 etcdctl snapshot restore "$T_TMP/auth.db" --name a --data-dir "$T_TMP/auth-etcd" \
    --initial-cluster "a=http://127.0.0.1:$AP" --initial-advertise-peer-urls "http://127.0.0.1:$AP" >/dev/null 2>&1
t_eq "etcdctl snapshot restore of an auth-enabled cetcd snapshot" "0" "$?"
etcd --name a --data-dir "$T_TMP/auth-etcd" --listen-client-urls "http://127.0.0.1:$AC" \
    --advertise-client-urls "http://127.0.0.1:$AC" --listen-peer-urls "http://127.0.0.1:$AP" \
    --initial-advertise-peer-urls "http://127.0.0.1:$AP" --initial-cluster "a=http://127.0.0.1:$AP" >>"$T_TMP/etcd-auth.log" 2>&1 &
APID=$!
T_PIDS+=("$APID")
wait_port "$AC" "$APID"
for i in $(seq 1 100); do c "127.0.0.1:$AC" --user root:rootpw endpoint health && break; sleep 0.1; done
auth_checks "etcd from cetcd's snapshot" "127.0.0.1:$AC"
c "127.0.0.1:$AC" --user root:rootpw snapshot save "$T_TMP/auth-back.db"
kill "$APID"; wait "$APID" 2>/dev/null
"$CETCD_BIN" --restore "$T_TMP/auth-back.db" --data-dir "$T_TMP/auth-back" >"$T_TMP/auth-back.log" 2>&1
t_eq "cetcd --restore of the auth-enabled etcd snapshot" "0" "$?"
CETCD_DIR=$T_TMP/auth-back
start_cetcd || t_fail "start cetcd on the auth-enabled restore"
auth_checks "cetcd from etcd's snapshot" "$CETCD_EP"
stop_cetcd

# --- refused: damaged, truncated, unhashed, damaged inside with a matching hash ---
refused() { # NAME FILE WANT_MESSAGE
    "$CETCD_BIN" --restore "$2" --data-dir "$T_TMP/bad" >"$T_TMP/bad.log" 2>&1
    local rc=$? left
    left=$(ls -d "$T_TMP"/bad* 2>/dev/null | grep -v 'bad.log' | tr '\n' ' ')
    if [ $rc -eq 2 ] && grep -q "$3" "$T_TMP/bad.log" && [ -z "$left" ]; then
        t_pass "$1: refused, nothing written ($(head -c 150 "$T_TMP/bad.log"))"
    else
        t_fail "$1" "rc $rc, left: $left, said: $(cat "$T_TMP/bad.log")"
    fi
}
cp "$T_TMP/etcd.db" "$T_TMP/flip.db"
printf 'X' | dd of="$T_TMP/flip.db" bs=1 seek=20000 conv=notrunc 2>/dev/null
refused "a flipped byte" "$T_TMP/flip.db" "sha256 checksum mismatch"
head -c $(($(stat -c %s "$T_TMP/cetcd.db") - 5000)) "$T_TMP/cetcd.db" >"$T_TMP/trunc.db"
refused "a truncated file" "$T_TMP/trunc.db" "not a snapshot\|truncated"
head -c $(($(stat -c %s "$T_TMP/cetcd.db") - 32)) "$T_TMP/cetcd.db" >"$T_TMP/nohash.db"
refused "no sha256 trailer" "$T_TMP/nohash.db" "without its sha256 trailer"
# damage inside the database, then a correct sha256 over the damage: the structure checks catch it
/usr/bin/python3 - "$T_TMP/cetcd.db" "$T_TMP/inner.db" <<'EOF'
import hashlib, sys
d = bytearray(open(sys.argv[1], "rb").read()[:-32])
pg = 4096
for p in range(4, len(d) // pg):  # the first branch page: point one child out of the file
    if d[p * pg + 8] == 0x01:
        d[p * pg + 16 + 8: p * pg + 16 + 16] = (10**9).to_bytes(8, "little")
        break
open(sys.argv[2], "wb").write(bytes(d) + hashlib.sha256(d).digest())
EOF
refused "a damaged page under a matching sha256" "$T_TMP/inner.db" "out of bounds"

t_finish
