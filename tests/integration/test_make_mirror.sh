#!/bin/bash
# test_make_mirror.sh: the way out of cetcd into a real etcd cluster: `etcdctl make-mirror` copies
# cetcd's keys into Debian's etcd, then follows live puts and deletes until stopped.
. "$(dirname "$0")/../lib.sh"

start_cetcd || { t_fail "cetcd starts"; t_finish; exit 1; }
start_etcd || { t_fail "etcd starts"; t_finish; exit 1; }
for i in $(seq 1 50); do ctl "$CETCD_EP" put "mirror/$i" "v$i" >/dev/null; done

ETCDCTL_API=3 etcdctl --endpoints "$CETCD_EP" make-mirror --prefix mirror/ "$ETCD_EP" >"$T_TMP/mirror.out" 2>&1 &
MIRROR_PID=$!
T_PIDS+=("$MIRROR_PID")

# waits up to 10 s for etcd to hold n keys under mirror/
wait_count() {
    local i
    for i in $(seq 1 100); do
        [ "$(ctl "$ETCD_EP" get mirror/ --prefix --keys-only | grep -c mirror/)" == "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

wait_count 50 && t_pass "initial copy: 50 keys" || t_fail "initial copy: 50 keys" "$(tail -3 "$T_TMP/mirror.out")"
for i in $(seq 51 60); do ctl "$CETCD_EP" put "mirror/$i" "v$i" >/dev/null; done
ctl "$CETCD_EP" del mirror/1 >/dev/null
ctl "$CETCD_EP" put mirror/2 changed >/dev/null
wait_count 59 && t_pass "live puts and a delete follow" || t_fail "live puts and a delete follow"
for i in $(seq 1 50); do
    [ "$(ctl "$ETCD_EP" get mirror/2 --print-value-only)" == "changed" ] && break
    sleep 0.1
done
t_eq "an update follows" "changed" "$(ctl "$ETCD_EP" get mirror/2 --print-value-only)"
t_eq "values copied" "$(ctl "$CETCD_EP" get mirror/ --prefix | md5sum)" "$(ctl "$ETCD_EP" get mirror/ --prefix | md5sum)"
kill "$MIRROR_PID" 2>/dev/null
wait "$MIRROR_PID" 2>/dev/null
t_finish
