#!/bin/bash
# test_auto_compaction.sh: --auto-compaction-mode / --auto-compaction-retention (issue 12), as etcd 3.4
# runs them: revision mode keeps the last N revisions (checked here every second with the cetcd-only
# --cetcd-auto-compaction-interval instead of etcd's 5 minutes), periodic mode keeps a time window (2s,
# run on cetcd and on the real etcd alike), the settings from flags, ETCD_* and a config file, and the
# values etcd refuses, refused with exit code 2.
source "$(dirname "$0")/../lib.sh"

[ -x "$CETCD_BIN" ] || echo "note: $CETCD_BIN does not exist; every test will fail"

# at EP REV: "ok" if key k reads at revision REV, else etcdctl's error line.
at() {
    local out
    out=$(ctl "$1" get k --rev="$2" --print-value-only 2>&1) && { echo ok; return; }
    printf '%s\n' "$out" | grep -o 'required revision has been compacted\|required revision is a future revision' |
        head -1 || echo "$out"
}
C="required revision has been compacted"

# wait_compacted EP REV SECONDS: waits until REV reads as compacted.
wait_compacted() {
    local i
    for i in $(seq 1 $(($3 * 10))); do
        [ "$(at "$1" "$2")" = "$C" ] && return 0
        sleep 0.1
    done
    return 1
}

current_rev() { ctl "$1" get k -w json | grep -o '"revision":[0-9]*' | head -1 | cut -d: -f2; }
compactions() { grep -c "completed auto $1 compaction" "$T_TMP/cetcd.log"; }

# --- bad values: exit 2 and one line on cetcd; etcd refuses each too (it exits 1) ---
bad() {
    local name=$1 out rc eout erc port pport; shift
    port=$(free_port)
    out=$(cd "$T_TMP" && timeout 5 env "${ENVS[@]}" "$CETCD_BIN" --data-dir "$T_TMP/bad" \
        --listen-client-urls "http://127.0.0.1:$port" "$@" 2>&1 </dev/null); rc=$?
    t_eq "$name: cetcd exits 2" 2 "$rc"
    t_eq "$name: one line" 1 "$(printf '%s\n' "$out" | grep -c '')"
    case "$out" in *compaction*) t_pass "$name: the message names the setting" ;;
        *) t_fail "$name: the message names the setting" "$out" ;; esac
    [ -n "${NO_ETCD:-}" ] && return
    pport=$(free_port)
    eout=$(cd "$T_TMP" && rm -rf ebad && timeout 5 env "${ENVS[@]}" etcd --data-dir ebad \
        --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
        --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "default=http://127.0.0.1:$pport" "$@" 2>&1 </dev/null); erc=$?
    if [ "$erc" -ne 0 ] && [ "$erc" -ne 124 ]; then t_pass "$name: etcd refuses it too"
    else t_fail "$name: etcd refuses it too" "rc $erc: $(printf '%s\n' "$eout" | tail -2)"; fi
}
ENVS=()
bad "unknown mode" --auto-compaction-mode=hourly --auto-compaction-retention=1
bad "retention abc" --auto-compaction-retention=abc
bad "retention -1" --auto-compaction-retention=-1
bad "retention 1.5 (no unit)" --auto-compaction-retention=1.5
bad "empty mode with a duration" --auto-compaction-mode= --auto-compaction-retention=5m
ENVS=(ETCD_AUTO_COMPACTION_RETENTION=1x)
bad "ETCD_AUTO_COMPACTION_RETENTION=1x"
ENVS=()
NO_ETCD=1 bad "negative duration (etcd takes it and compacts without pause)" --auto-compaction-retention=-5m
NO_ETCD=1 bad "negative cetcd interval" --auto-compaction-mode=revision --auto-compaction-retention=5 \
    --cetcd-auto-compaction-interval=-1s
# yaml_ports FILE: a config file's own ephemeral ports and data dir (flags do not count beside it)
yaml_ports() {
    local c p
    c=$(free_port); p=$(free_port)
    printf 'data-dir: %s\nlisten-client-urls: http://127.0.0.1:%s\nadvertise-client-urls: http://127.0.0.1:%s\n' \
        "$1.data" "$c" "$c" >"$1"
    printf 'listen-peer-urls: http://127.0.0.1:%s\ninitial-advertise-peer-urls: http://127.0.0.1:%s\n' "$p" "$p" >>"$1"
    printf 'initial-cluster: default=http://127.0.0.1:%s\n' "$p" >>"$1"
}
yaml_ports "$T_TMP/nomode.yaml"
printf 'auto-compaction-retention: 5m\n' >>"$T_TMP/nomode.yaml"
bad "config file: a duration and no mode" --config-file "$T_TMP/nomode.yaml"

# --- revision mode, retention 10, looked at every second ---
start_cetcd --auto-compaction-mode=revision --auto-compaction-retention=10 --cetcd-auto-compaction-interval=1s
for i in $(seq 1 30); do ctl "$CETCD_EP" put k "v$i" >/dev/null; done # revisions 2..31
t_eq "revision: 31 revisions written" 31 "$(current_rev "$CETCD_EP")"
wait_compacted "$CETCD_EP" 20 5 && t_pass "revision: revision 20 (31 - 10 - 1) compacted within 5 s" ||
    t_fail "revision: revision 20 (31 - 10 - 1) compacted within 5 s" "$(at "$CETCD_EP" 20)"
t_eq "revision: revision 21 (31 - 10) is kept" ok "$(at "$CETCD_EP" 21)"
t_eq "revision: revision 31 is kept" ok "$(at "$CETCD_EP" 31)"
W=$(timeout 3 etcdctl --endpoints "$CETCD_EP" watch k --rev=5 2>&1 | head -3)
case "$W" in *compacted*) t_pass "revision: a watch from revision 5 is canceled as compacted" ;;
    *) t_fail "revision: a watch from revision 5 is canceled as compacted" "$W" ;; esac
n=$(compactions revision)
sleep 2.5
t_eq "revision: no new compaction while the revision stands still" "$n" "$(compactions revision)"
for i in $(seq 1 5); do ctl "$CETCD_EP" put k "w$i" >/dev/null; done # 32..36
wait_compacted "$CETCD_EP" 25 5 && t_pass "revision: after 5 more writes, revision 25 compacted" ||
    t_fail "revision: after 5 more writes, revision 25 compacted" "$(at "$CETCD_EP" 25)"
t_eq "revision: revision 26 is kept" ok "$(at "$CETCD_EP" 26)"
if grep -q "starting auto revision compaction (revision 26, revision-compaction-retention 10)" "$T_TMP/cetcd.log"
then t_pass "revision: logged as etcd's compactor logs it"
else t_fail "revision: logged as etcd's compactor logs it" "$(grep 'auto revision' "$T_TMP/cetcd.log" | tail -3)"; fi
restart_cetcd # the compaction is in the log: it survives a restart (no auto compaction flags now)
t_eq "revision: after a restart revision 25 is still compacted" "$C" "$(at "$CETCD_EP" 25)"
t_eq "revision: after a restart revision 26 is kept" ok "$(at "$CETCD_EP" 26)"
stop_cetcd

# --- the same from ETCD_* (env) and from a config file ---
unset CETCD_DIR
ETCD_AUTO_COMPACTION_MODE=revision ETCD_AUTO_COMPACTION_RETENTION=3 ETCD_CETCD_AUTO_COMPACTION_INTERVAL=500ms \
    start_cetcd
for i in $(seq 1 8); do ctl "$CETCD_EP" put k "v$i" >/dev/null; done # 2..9
wait_compacted "$CETCD_EP" 5 4 && t_pass "env: revision 5 (9 - 3 - 1) compacted" ||
    t_fail "env: revision 5 (9 - 3 - 1) compacted" "$(at "$CETCD_EP" 5)"
t_eq "env: revision 6 is kept" ok "$(at "$CETCD_EP" 6)"
stop_cetcd
unset CETCD_DIR
PORT=$(free_port)
cat >"$T_TMP/conf.yaml" <<EOF
data-dir: $T_TMP/confdir
listen-client-urls: http://127.0.0.1:$PORT
auto-compaction-mode: revision
auto-compaction-retention: "4"
cetcd-auto-compaction-interval: 500ms
EOF
"$CETCD_BIN" --config-file "$T_TMP/conf.yaml" >>"$T_TMP/cetcd.log" 2>&1 &
CPID=$!
T_PIDS+=("$CPID")
wait_port "$PORT" "$CPID"
for i in $(seq 1 8); do ctl "127.0.0.1:$PORT" put k "v$i" >/dev/null; done
wait_compacted "127.0.0.1:$PORT" 4 4 && t_pass "config file: revision 4 (9 - 4 - 1) compacted" ||
    t_fail "config file: revision 4 (9 - 4 - 1) compacted" "$(at "127.0.0.1:$PORT" 4)"
t_eq "config file: revision 5 is kept" ok "$(at "127.0.0.1:$PORT" 5)"
kill "$CPID"; wait "$CPID" 2>/dev/null

# --- periodic, retention 2s, on etcd and on cetcd: one write every ~0.25 s for 6 s ---
periodic() {
    local ep=$1 i latest
    for i in $(seq 1 24); do ctl "$ep" put k "p$i" >/dev/null; sleep 0.2; done
    latest=$(current_rev "$ep")
    echo "first write (revision 2): $(at "$ep" 2)"
    echo "latest revision: $(at "$ep" "$latest")"
    echo "2 writes ago: $(at "$ep" $((latest - 2)))"
    sleep 5 # no writes: within 2 windows the compaction reaches the latest revision
    echo "after 5 s idle, latest: $(at "$ep" "$latest")"
    echo "after 5 s idle, latest - 1: $(at "$ep" $((latest - 1)))"
}
EXPECT="first write (revision 2): $C
latest revision: ok
2 writes ago: ok
after 5 s idle, latest: ok
after 5 s idle, latest - 1: $C"
unset CETCD_DIR
start_cetcd --auto-compaction-retention=2s
t_eq "periodic 2s: cetcd" "$EXPECT" "$(periodic "$CETCD_EP")"
if grep -q "completed auto periodic compaction (revision [0-9]*, compact-period 2s" "$T_TMP/cetcd.log"
then t_pass "periodic: logged as etcd's compactor logs it"
else t_fail "periodic: logged as etcd's compactor logs it" "$(grep 'periodic' "$T_TMP/cetcd.log" | tail -3)"; fi
stop_cetcd
if start_etcd --auto-compaction-retention=2s; then
    t_eq "periodic 2s: etcd" "$EXPECT" "$(periodic "$ETCD_EP")"
    stop_etcd
else
    t_fail "periodic 2s: etcd started" "$(tail -3 "$T_TMP/etcd.log")"
fi

# --- off: retention 0 (the default), and a config file's whole number with no mode (etcd: off) ---
unset CETCD_DIR
yaml_ports "$T_TMP/off.yaml"
printf 'auto-compaction-retention: "1"\n' >>"$T_TMP/off.yaml"
start_cetcd --auto-compaction-retention=0
for i in $(seq 1 3); do ctl "$CETCD_EP" put k "o$i" >/dev/null; done
t_eq "retention 0: revision 2 is kept" ok "$(at "$CETCD_EP" 2)"
stop_cetcd
OFF=$(timeout 2 "$CETCD_BIN" --config-file "$T_TMP/off.yaml" 2>&1 </dev/null | grep -c 'auto compaction:')
t_eq "config file, \"1\" and no mode: no compactor (as etcd)" 0 "$OFF"

t_finish
