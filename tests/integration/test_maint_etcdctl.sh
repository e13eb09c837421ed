#!/bin/bash
# test_maint_etcdctl.sh: etcdctl's maintenance and cluster commands against cetcd (endpoint status,
# health, hashkv, alarms and the NOSPACE quota path, defrag, snapshot save and restore, member and
# move-leader), each compared with Debian's real etcd where the output is deterministic.
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C

# c EP args...: etcdctl; sets OUT (stdout), ERR (last stderr line, the "Error: ..." one) and RC.
c() {
    local ep=$1; shift
    OUT=$(ETCDCTL_API=3 timeout 20 etcdctl --endpoints "$ep" --dial-timeout=2s --command-timeout=10s "$@" \
        2>"$T_TMP/stderr")
    RC=$?
    ERR=$(grep -v '^{"level"' "$T_TMP/stderr" | tail -1)
}

member_hex() { ETCDCTL_API=3 etcdctl --endpoints "$1" member list | cut -d, -f1; }
hex2dec() { /usr/bin/python3 -c "print(int('$1', 16))"; }

# ids EP: normalizes the member id (hex and decimal) and the endpoint out of stdin.
ids() {
    local hex dec
    hex=$(member_hex "$1")
    dec=$(hex2dec "$hex")
    sed -e "s/$hex/MEMBERHEX/g; s/$dec/MEMBERDEC/g; s#http://$1#EP#g; s#$1#EP#g"
}

# both NAME args...: runs the command on etcd and cetcd (an argument SELF becomes that server's member
# id); passes if stdout (ids normalized), the error line and the exit code are the same.
both() {
    local name=$1 ep want got; shift
    for ep in "$ETCD_EP" "$CETCD_EP"; do
        local self args=()
        self=$(member_hex "$ep")
        for a in "$@"; do [ "$a" == SELF ] && args+=("$self") || args+=("$a"); done
        c "$ep" "${args[@]}"
        got=$(printf '%s\n%s\nrc=%s' "$OUT" "$ERR" "$RC" | ids "$ep")
        [ "$ep" == "$ETCD_EP" ] && want=$got
    done
    t_eq "$name (same as etcd)" "$want" "$got"
}

start_etcd || { echo "etcd did not start"; t_fail "start etcd"; t_finish; exit 1; }
start_cetcd || { t_fail "start cetcd"; t_finish; exit 1; }
MID_HEX=$(ETCDCTL_API=3 etcdctl --endpoints "$CETCD_EP" member list | cut -d, -f1)
MID_DEC=$(hex2dec "$MID_HEX")

# --- endpoint status / health ---
c "$CETCD_EP" put k v
c "$CETCD_EP" endpoint status -w json
ST=$OUT
t_eq "status: version" '"3.5.17"' "$(jq '.[0].Status.version' <<<"$ST")"
t_eq "status: leader is this member" "$(jq '.[0].Status.header.member_id' <<<"$ST")" "$(jq '.[0].Status.leader' <<<"$ST")"
t_eq "status: raft term as header" "$(jq '.[0].Status.header.raft_term' <<<"$ST")" "$(jq '.[0].Status.raftTerm' <<<"$ST")"
t_eq "status: raftIndex follows the revision" "$(jq '.[0].Status.header.revision' <<<"$ST")" "$(jq '.[0].Status.raftIndex' <<<"$ST")"
t_eq "status: dbSize and dbSizeInUse > 0" "true" "$(jq '.[0].Status.dbSize > 0 and .[0].Status.dbSizeInUse > 0' <<<"$ST")"
c "$ETCD_EP" endpoint status -w json
t_eq "status: same fields as etcd" "$(jq -c '.[0].Status | keys' <<<"$OUT")" "$(jq -c '.[0].Status | keys' <<<"$ST")"
c "$CETCD_EP" endpoint status
t_eq "status table: leader true, learner false, no errors" \
    "$MID_HEX, 3.5.17, true, false, 2" "$(cut -d, -f2,3,5,6,7 <<<"$OUT" | sed 's/^ //; s/, *$//')"
c "$CETCD_EP" endpoint health
t_eq "endpoint health" "0 healthy" "$RC $(grep -o 'is healthy' <<<"$OUT$ERR" | cut -d' ' -f2)"

# --- hashkv ---
c "$CETCD_EP" endpoint hashkv -w json
H1=$(jq '.[0].HashKV.hash' <<<"$OUT")
c "$CETCD_EP" endpoint hashkv -w json
t_eq "hashkv: stable" "$H1" "$(jq '.[0].HashKV.hash' <<<"$OUT")"
t_eq "hashkv: no compaction yet is -1 (etcd's initial compactRev)" "-1" "$(jq '.[0].HashKV.compact_revision' <<<"$OUT")"
c "$CETCD_EP" put k v2
c "$CETCD_EP" endpoint hashkv -w json
H2=$(jq '.[0].HashKV.hash' <<<"$OUT")
[ "$H1" != "$H2" ] && t_pass "hashkv: changes with a write" || t_fail "hashkv: changes with a write" "$H1 == $H2"
c "$CETCD_EP" endpoint hashkv --rev=2 -w json
t_eq "hashkv --rev at the old revision equals the old hash" "$H1" "$(jq '.[0].HashKV.hash' <<<"$OUT")"
for ep in "$ETCD_EP" "$CETCD_EP"; do c "$ep" put k v3; c "$ep" put k v4; c "$ep" compact 3; done
both "hashkv below the compaction" endpoint hashkv --rev=2
both "hashkv at a future revision" endpoint hashkv --rev=1000

# --- alarms: none ---
both "alarm list, none" alarm list
both "alarm disarm, none" alarm disarm

# --- defrag ---
both "defrag" defrag

# --- cluster ---
both "member remove self" member remove SELF
both "member remove unknown" member remove 1234
both "member promote self" member promote SELF
both "member promote unknown" member promote 1234
both "member update unknown" member update 1234 --peer-urls=http://127.0.0.1:1
both "move-leader to an unknown member" move-leader 1234
c "$CETCD_EP" move-leader "$MID_HEX"
t_eq "move-leader to itself succeeds, as in etcd" "0 Leadership transferred from $MID_HEX to $MID_HEX" "$RC $OUT"
c "$CETCD_EP" member list
t_eq "member list" "$MID_HEX, started, default, http://localhost:2380, http://$CETCD_EP, false" "$OUT"
c "$CETCD_EP" member list -w json
ML=$OUT
c "$ETCD_EP" member list -w json
t_eq "member list json: same shape as etcd" "$(jq -c '[keys, (.members[0] | keys), (.header | keys)]' <<<"$OUT")" \
    "$(jq -c '[keys, (.members[0] | keys), (.header | keys)]' <<<"$ML")"
t_eq "member list json: ID is the header's member" "$(jq '.header.member_id' <<<"$ML")" "$(jq '.members[0].ID' <<<"$ML")"
# etcd would add the member (and then wait for it); cetcd cannot grow, so it says so. The message is
# not one of etcd's, so etcdctl shows the raw gRPC status.
c "$CETCD_EP" member add m2 --peer-urls=http://127.0.0.1:2
t_eq "member add is refused clearly" "1 Error: rpc error: code = FailedPrecondition desc = \
cetcd: single-member server: membership changes are not supported" "$RC $ERR"
c "$CETCD_EP" member update "$MID_HEX" --peer-urls=http://127.0.0.1:2
t_eq "member update of this member is refused clearly" "1 Error: rpc error: code = FailedPrecondition desc = \
cetcd: single-member server: membership changes are not supported" "$RC $ERR"

# --- snapshot save, restore, serve ---
for i in $(seq 1 40); do c "$CETCD_EP" put "big/$i" "$(head -c 100000 /dev/zero | tr '\0' "$((i % 10))")"; done
c "$CETCD_EP" snapshot save "$T_TMP/snap.db"
t_eq "snapshot save" "0 Snapshot saved at $T_TMP/snap.db" "$RC $OUT"
SIZE=$(stat -c %s "$T_TMP/snap.db")
t_eq "snapshot: size % 512 == 32 (sha256 trailer, as etcdctl checks)" "32" "$((SIZE % 512))"
[ "$SIZE" -gt 4000000 ] && t_pass "snapshot: many chunks ($SIZE bytes)" || t_fail "snapshot: many chunks" "$SIZE bytes"
c "$ETCD_EP" snapshot save "$T_TMP/etcd.db"
t_eq "etcd's snapshot has the same framing" "0 32" "$RC $(($(stat -c %s "$T_TMP/etcd.db") % 512))"
"$CETCD_BIN" --restore "$T_TMP/snap.db" --data-dir "$T_TMP/restored" >"$T_TMP/restore.out" 2>&1
t_eq "restore" "0" "$?"
"$CETCD_BIN" --restore "$T_TMP/snap.db" --data-dir "$T_TMP/restored" >"$T_TMP/restore.out" 2>&1
t_eq "restore into a used data dir is refused" "2" "$?"
cp "$T_TMP/snap.db" "$T_TMP/bad.db"
printf 'X' | dd of="$T_TMP/bad.db" bs=1 seek=1000 conv=notrunc 2>/dev/null
"$CETCD_BIN" --restore "$T_TMP/bad.db" --data-dir "$T_TMP/r2" >"$T_TMP/restore.out" 2>&1
t_eq "restore of a damaged file is refused" "2 sha256 checksum mismatch" "$? $(grep -o 'sha256 checksum mismatch' "$T_TMP/restore.out")"
"$CETCD_BIN" --restore "$T_TMP/etcd.db" --data-dir "$T_TMP/r3" >"$T_TMP/restore.out" 2>&1
t_eq "restore of an etcd (bbolt) snapshot is accepted (test_snapshot_etcd.sh compares the data)" "0" "$?"
c "$CETCD_EP" get --prefix "" --keys-only
WANT_KEYS=$OUT
c "$CETCD_EP" endpoint hashkv -w json
WANT_HASH=$(jq '.[0].HashKV.hash' <<<"$OUT")
SAVED_DIR=$CETCD_DIR SAVED_EP=$CETCD_EP SAVED_PID=$CETCD_PID
CETCD_DIR=$T_TMP/restored
start_cetcd || t_fail "start cetcd on the restored dir"
c "$CETCD_EP" get --prefix "" --keys-only
t_eq "restored: same keys" "$WANT_KEYS" "$OUT"
c "$CETCD_EP" endpoint hashkv -w json
t_eq "restored: same hash" "$WANT_HASH" "$(jq '.[0].HashKV.hash' <<<"$OUT")"
c "$CETCD_EP" get big/7 --print-value-only
t_eq "restored: a value" "$(head -c 100000 /dev/zero | tr '\0' 7)" "$OUT"
stop_cetcd
CETCD_DIR=$SAVED_DIR CETCD_EP=$SAVED_EP CETCD_PID=$SAVED_PID
# a client that goes away mid-stream leaves the server fine
ETCDCTL_API=3 timeout 0.05 etcdctl --endpoints "$CETCD_EP" snapshot save "$T_TMP/cut.db" >/dev/null 2>&1
c "$CETCD_EP" endpoint health
t_eq "server fine after an abandoned snapshot" "0" "$RC"
stop_cetcd

# --- NOSPACE: the quota raises the alarm; writes refused until disarmed ---
CETCD_DIR=
start_cetcd --quota-backend-bytes 200000 || t_fail "start cetcd with a quota"
MID_HEX=$(ETCDCTL_API=3 etcdctl --endpoints "$CETCD_EP" member list | cut -d, -f1)
MID_DEC=$(hex2dec "$MID_HEX")
V=$(head -c 30000 /dev/zero | tr '\0' x)
for i in $(seq 1 10); do c "$CETCD_EP" put "q$i" "$V"; done
t_eq "over the quota: etcd's error" "1 Error: etcdserver: mvcc: database space exceeded" "$RC $ERR"
c "$CETCD_EP" alarm list
t_eq "alarm list shows NOSPACE" "memberID:$MID_DEC alarm:NOSPACE " "$OUT"
c "$CETCD_EP" endpoint status
t_eq "status shows the alarm" "memberID:$MID_DEC alarm:NOSPACE" "$(awk -F', ' '{print $10}' <<<"$OUT" | sed 's/ *$//')"
c "$CETCD_EP" put small v
t_eq "small put refused while NOSPACE is active" "1 Error: etcdserver: mvcc: database space exceeded" "$RC $ERR"
c "$CETCD_EP" txn <<<$'\nput t1 v\n\n'
t_eq "write txn refused while NOSPACE is active" "1 Error: etcdserver: mvcc: database space exceeded" "$RC $ERR"
c "$CETCD_EP" get q1 --keys-only
t_eq "reads still served" "0 q1" "$RC $OUT"
stop_cetcd -KILL # the alarm is kept in the store, as etcd keeps its alarm bucket
start_cetcd --quota-backend-bytes 200000 || t_fail "restart cetcd with a quota"
c "$CETCD_EP" alarm list
t_eq "NOSPACE still active after kill -9 and restart" "memberID:$MID_DEC alarm:NOSPACE " "$OUT"
c "$CETCD_EP" put small v
t_eq "small put still refused after the restart" "1 Error: etcdserver: mvcc: database space exceeded" "$RC $ERR"
c "$CETCD_EP" del --prefix q
t_eq "deletes still allowed (as etcd's capped applier)" "0 6" "$RC $OUT"
REV=$(ETCDCTL_API=3 etcdctl --endpoints "$CETCD_EP" endpoint status -w json | jq '.[0].Status.header.revision')
c "$CETCD_EP" compact "$REV"
c "$CETCD_EP" defrag
c "$CETCD_EP" put small v
t_eq "still refused after defrag until disarmed" "1" "$RC"
c "$CETCD_EP" alarm disarm
t_eq "alarm disarm prints the alarm it cleared" "memberID:$MID_DEC alarm:NOSPACE " "$OUT"
c "$CETCD_EP" alarm list
t_eq "alarm list empty after disarm" "0 " "$RC $OUT"
c "$CETCD_EP" put small v
t_eq "writes work again" "0 OK" "$RC $OUT"
restart_cetcd
c "$CETCD_EP" alarm list
t_eq "no alarm after disarm and restart" "0 " "$RC $OUT"
stop_cetcd
stop_etcd
t_finish
