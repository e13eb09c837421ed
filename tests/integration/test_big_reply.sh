#!/bin/bash
# test_big_reply.sh: a Range reply bigger than the 32 MiB a connection may queue (h2_internal.h,
# QUEUED_HIGH) reaches a grpc-go client (etcdctl), which grants flow-control window as it reads: such
# a reply used to stall for good (the connection stopped reading, so the WINDOW_UPDATEs that would
# drain it were never seen; the 127 MB list of issue 13 hung until the apiserver's keepalive gave up).
# The same reads from Debian's etcd give the same values.
source "$(dirname "$0")/../lib.sh"

VAL=$T_TMP/val
head -c 1000000 /dev/zero | tr '\0' 'v' >"$VAL"
N=40 # 40 values of 1 MB: one reply of 40 MB, over QUEUED_HIGH and under the 64 MiB reply budget

load() {
    local i
    for i in $(seq -w 1 "$N"); do ctl "$1" put "/big/$i" <"$VAL" >/dev/null || return 1; done
}

# get EP LIMIT: the values of the first LIMIT keys under /big/ (into $T_TMP/out), as a sha256
get() {
    ETCDCTL_API=3 timeout 60 etcdctl --endpoints "$1" --command-timeout=30s get /big/ --prefix --limit "$2" \
        --print-value-only >"$T_TMP/out" 2>"$T_TMP/err"
    sha256sum <"$T_TMP/out" | cut -c1-16
}

start_cetcd || exit 1
start_etcd || exit 1
load "$CETCD_EP" && load "$ETCD_EP" || { t_fail "loading $N values of 1 MB"; t_finish; exit 1; }

for lim in 20 "$N"; do
    t0=$(date +%s.%N)
    want=$(get "$ETCD_EP" "$lim")
    t1=$(date +%s.%N)
    got=$(get "$CETCD_EP" "$lim")
    t2=$(date +%s.%N)
    bytes=$(wc -c <"$T_TMP/out")
    t_eq "a reply of $lim MB read by etcdctl: the values etcd gives ($bytes bytes read; etcd $(printf '%.2f' \
"$(echo "$t1 - $t0" | bc)") s, cetcd $(printf '%.2f' "$(echo "$t2 - $t1" | bc)") s)" "$want" "$got"
    [ "$want" = "$got" ] || { head -c 300 "$T_TMP/err"; echo; }
done
# the values really were all there (a hung or refused get would give the hash of nothing on both)
t_eq "the $N MB reply holds $N values" "$((N * 1000001))" "$bytes"
# the server is still fine for other clients
t_eq "a small read after the big ones" "vvvv" "$(ctl "$CETCD_EP" get /big/01 --print-value-only | head -c 4)"
t_finish
