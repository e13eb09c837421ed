#!/bin/bash
# test_disk_full.sh: a full disk is met with an answer, not a lost write (issue 11). Under
# --disk-reserve-bytes free space the server refuses writes with etcd's "database space exceeded",
# raises NOSPACE and keeps serving reads; every acknowledged write survives kill -9. On a small tmpfs
# (when this machine lets the test mount one) the disk really fills; with the reserve off, the failed
# log write stops the server and still loses nothing acknowledged.
source "$(dirname "$0")/../lib.sh"

# etcdctl's own retry warnings (JSON lines) are left out
E() { ETCDCTL_API=3 etcdctl --endpoints "$CETCD_EP" --command-timeout=10s "$@" 2>&1 | grep -v '^{"level"'; }

# 1. a reserve larger than any disk: the first write is refused, reads and deletes of nothing still work
unset CETCD_DIR
start_cetcd --disk-reserve-bytes 1152921504606846976 || t_fail "start with a huge reserve"
t_eq "huge reserve: put refused with etcd's quota error" "Error: etcdserver: mvcc: database space exceeded" "$(E put a 1)"
t_eq "huge reserve: NOSPACE raised" "1" "$(E alarm list | grep -c 'alarm:NOSPACE')"
t_eq "huge reserve: reads served" "0" "$(E get a --count-only -w json >/dev/null; echo $?)"
grep -q "under --disk-reserve-bytes" "$T_TMP/cetcd.log" && t_pass "huge reserve: the log says why" ||
    t_fail "huge reserve: the log says why" "$(tail -3 "$T_TMP/cetcd.log")"
stop_cetcd

# 2. a real, small file system
MNT=$T_TMP/small
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=12m tmpfs "$MNT" 2>/dev/null; then
    echo "info: cannot mount a tmpfs here (not root, or no permission): the real-disk checks are skipped"
    t_finish
fi
trap 'umount "$MNT" 2>/dev/null; t_cleanup' EXIT
head -c 150000 /dev/urandom | base64 -w0 >"$T_TMP/value" # 200 KB

# fill KIND: puts k1, k2, ... until one fails; sets ACKED (the last acknowledged index) and LAST_ERR
fill() {
    ACKED=0; LAST_ERR=
    for i in $(seq 1 200); do
        out=$(E put "k$i" <"$T_TMP/value")
        if [ "$out" != OK ]; then LAST_ERR=$out; return; fi
        ACKED=$i
    done
}
# intact N: every k1..kN holds the value
intact() {
    local want; want=$(wc -c <"$T_TMP/value")
    local i bad=0
    for i in $(seq 1 "$1"); do
        [ "$(E get "k$i" --print-value-only | tr -d '\n' | wc -c)" = "$want" ] || bad=$((bad + 1))
    done
    echo "$bad"
}

CETCD_DIR=$MNT/reserve
start_cetcd --disk-reserve-bytes 2097152 || t_fail "start on the tmpfs"
fill
t_eq "tmpfs, 2 MiB reserve: writes end with etcd's quota error" "Error: etcdserver: mvcc: database space exceeded" "$LAST_ERR"
echo "info: $ACKED puts of 200 KB acknowledged on a 12 MiB tmpfs; $(df -k --output=avail "$MNT" | tail -1) KiB left"
[ "$ACKED" -ge 30 ] && t_pass "tmpfs: most of the disk was used ($ACKED puts)" || t_fail "tmpfs: most of the disk was used" "$ACKED"
t_eq "tmpfs: the server still serves reads" "0" "$(intact "$ACKED")"
t_eq "tmpfs: a small put is refused too" "Error: etcdserver: mvcc: database space exceeded" "$(E put small v)"
stop_cetcd -KILL
start_cetcd --disk-reserve-bytes 2097152 || t_fail "restart on the full tmpfs" "$(tail -3 "$T_TMP/cetcd.log")"
t_eq "tmpfs: after kill -9 and restart, every acknowledged put is intact" "0" "$(intact "$ACKED")"
t_eq "tmpfs: NOSPACE is still raised after the restart" "1" "$(E alarm list | grep -c NOSPACE)"
stop_cetcd
rm -rf "$MNT/reserve"

# 3. the reserve off: the disk really fills and the log write fails
CETCD_DIR=$MNT/noreserve
start_cetcd --disk-reserve-bytes 0 || t_fail "start on the tmpfs without a reserve"
PID=$CETCD_PID
fill
sleep 0.5
kill -0 "$PID" 2>/dev/null && t_fail "no reserve: the server stops on a failed log write" "still running after: $LAST_ERR" ||
    t_pass "no reserve: the server stops on a failed log write"
grep -q "No space left on device" "$T_TMP/cetcd.log" && t_pass "no reserve: it says the disk is full" ||
    t_fail "no reserve: it says the disk is full" "$(tail -3 "$T_TMP/cetcd.log")"
echo "info: $ACKED puts acknowledged before the log write failed ($LAST_ERR)"
stop_cetcd -KILL 2>/dev/null
rm -f "$MNT/filler" # nothing else to free: the restart must cope with the full disk itself
start_cetcd --disk-reserve-bytes 0 || t_fail "no reserve: restart on the full tmpfs" "$(tail -3 "$T_TMP/cetcd.log")"
t_eq "no reserve: after the restart, every acknowledged put is intact" "0" "$(intact "$ACKED")"
stop_cetcd
t_finish
