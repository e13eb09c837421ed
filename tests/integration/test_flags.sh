#!/bin/bash
# test_flags.sh: the command line behaves like etcd's where it matters to scripts: bad flags and a bad
# data dir exit with code 2 and a one-line message, --version exits 0, and --max-txn-ops (flag, =form and
# ETCD_MAX_TXN_OPS) really limits a txn. The --max-txn-ops limit is cross-checked on real etcd;
# --max-reply-bytes (cetcd-only) really limits a reply.
source "$(dirname "$0")/../lib.sh"

# runbin NAME args...: runs cetcd briefly (it must exit by itself); sets RC, OUT (stdout+stderr), LINES.
# An ephemeral client URL comes first, so that a cetcd that wrongly starts never takes port 2379.
runbin() {
    local name=$1; shift
    OUT=$(cd "$T_TMP" && timeout 5 "$CETCD_BIN" --listen-client-urls "http://127.0.0.1:$(free_port)" "$@" 2>&1 </dev/null)
    RC=$?
    LINES=$(printf '%s' "$OUT" | grep -c '')
    [ "$RC" -eq 124 ] && OUT="(still running after 5 s) $OUT"
}

# bad_usage NAME args...: expects exit code 2 and exactly one line of output.
bad_usage() {
    local name=$1; shift
    runbin "$name" "$@"
    t_eq "$name: exit code 2" 2 "$RC"
    if [ "$LINES" -eq 1 ]; then t_pass "$name: one-line message"
    else t_fail "$name: one-line message" "$LINES lines: $(printf '%s' "$OUT" | head -5)"; fi
}

[ -x "$CETCD_BIN" ] || echo "note: $CETCD_BIN does not exist; every test will fail"
DD=$T_TMP/flagdir

bad_usage "unknown flag" --data-dir "$DD" --no-such-flag
case "$OUT" in *no-such-flag*) t_pass "unknown flag: message names the flag" ;;
    *) t_fail "unknown flag: message names the flag" "$OUT" ;; esac
bad_usage "unknown flag =form" --no-such-flag=1 --data-dir "$DD"
bad_usage "stray argument" --data-dir "$DD" stray
bad_usage "--max-txn-ops abc" --data-dir "$DD" --max-txn-ops abc
case "$OUT" in *max-txn-ops*) t_pass "--max-txn-ops abc: message names the flag" ;;
    *) t_fail "--max-txn-ops abc: message names the flag" "$OUT" ;; esac
bad_usage "--max-txn-ops=12x" --data-dir "$DD" --max-txn-ops=12x
bad_usage "--max-txn-ops=-5" --data-dir "$DD" --max-txn-ops=-5
bad_usage "--max-txn-ops without value" --data-dir "$DD" --max-txn-ops
OUT_ENV=$(cd "$T_TMP" && ETCD_MAX_TXN_OPS=abc timeout 5 "$CETCD_BIN" --data-dir "$DD" \
    --listen-client-urls "http://127.0.0.1:$(free_port)" 2>&1 </dev/null); RC_ENV=$?
t_eq "ETCD_MAX_TXN_OPS=abc: exit code 2" 2 "$RC_ENV"
t_eq "ETCD_MAX_TXN_OPS=abc: one-line message" 1 "$(printf '%s' "$OUT_ENV" | grep -c '')"
[ -e "$DD" ] && t_fail "bad flags create no data dir" "$(ls -la "$DD")" || t_pass "bad flags create no data dir"

runbin "--version" --version
t_eq "--version: exit code 0" 0 "$RC"
if printf '%s' "$OUT" | grep -qE '[0-9]+\.[0-9]+\.[0-9]+'; then t_pass "--version: prints a version"
else t_fail "--version: prints a version" "$OUT"; fi
runbin "--help" --help
t_eq "--help: exit code 0" 0 "$RC"

# a data dir that is a regular file: exit 2, one line, the file untouched
REG=$T_TMP/regular-file
printf 'precious\n' >"$REG"
bad_usage "data dir is a regular file" --data-dir "$REG"
case "$OUT" in *regular-file*) t_pass "data dir is a regular file: message names the path" ;;
    *) t_fail "data dir is a regular file: message names the path" "$OUT" ;; esac
t_eq "data dir is a regular file: file untouched" "precious" "$(cat "$REG")"

# a data dir we may not write (skipped as root: root can write anywhere)
if [ "$(id -u)" -ne 0 ]; then
    RO=$T_TMP/readonly; mkdir -p "$RO"; chmod 500 "$RO"
    bad_usage "unwritable data dir" --data-dir "$RO/data"
fi

# --max-txn-ops 2: a 3-op txn fails with etcd's error, a 2-op txn works. etcd first, as the reference.
txn_ops() {   # txn_ops EP N: a txn with N puts, printed outputs + exit code
    local i ops=""
    for i in $(seq 1 "$2"); do ops+="put op$i v$i"$'\n'; done
    printf '\n%s\n\n' "$ops" | ETCDCTL_API=3 timeout 10 etcdctl --endpoints "$1" --command-timeout=3s txn -i 2>&1 |
        grep -v '^{"level"' | grep -v -e '^compares:' -e '^success requests' -e '^failure requests'
    echo "rc=${PIPESTATUS[1]}"
}
EXP3=$'Error: etcdserver: too many operations in txn request\nrc=1'
if start_etcd --max-txn-ops 2; then
    t_eq "etcd --max-txn-ops 2: 3-op txn refused" "$EXP3" "$(txn_ops "$ETCD_EP" 3)"
    REF2=$(txn_ops "$ETCD_EP" 2)
    stop_etcd
else
    t_fail "etcd starts with --max-txn-ops 2" "$(tail -5 "$T_TMP/etcd.log")"
fi

for form in "flag" "=form" "env"; do
    unset CETCD_DIR
    case $form in
        flag) start_cetcd --max-txn-ops 2 ;;
        =form) start_cetcd --max-txn-ops=2 ;;
        env) ETCD_MAX_TXN_OPS=2 start_cetcd ;;
    esac || { t_fail "cetcd starts with max-txn-ops 2 ($form)" "$(tail -5 "$T_TMP/cetcd.log")"; continue; }
    t_eq "max-txn-ops 2 ($form): 3-op txn refused" "$EXP3" "$(txn_ops "$CETCD_EP" 3)"
    t_eq "max-txn-ops 2 ($form): 2-op txn works" "${REF2:-$'SUCCESS\n\nOK\n\nOK\nrc=0'}" "$(txn_ops "$CETCD_EP" 2)"
    stop_cetcd
done

# the default stays etcd's 128
unset CETCD_DIR
if start_cetcd; then
    t_eq "default: 128-op txn works" "rc=0" "$(txn_ops "$CETCD_EP" 128 | tail -1)"
    t_eq "default: 129-op txn refused" "$EXP3" "$(txn_ops "$CETCD_EP" 129)"
    stop_cetcd
else
    t_fail "cetcd starts with default flags" "$(tail -5 "$T_TMP/cetcd.log")"
fi

# --max-reply-bytes and --max-reply-pool-bytes (cetcd-only): bounds checked, and the limit is the flag's
bad_usage "--max-reply-bytes below 1 MiB" --data-dir "$DD" --max-reply-bytes 1000
bad_usage "--max-reply-pool-bytes below --max-reply-bytes" --data-dir "$DD" \
    --max-reply-bytes 4194304 --max-reply-pool-bytes 2097152
reply_range() { # three values of 400,000 bytes: a 1.2 MB reply
    head -c 300000 /dev/zero | base64 -w0 | head -c 400000 >"$T_TMP/value"
    for k in r1 r2 r3; do etcdctl --endpoints="$CETCD_EP" put "$k" <"$T_TMP/value" >/dev/null; done
    printf "%s " "$(etcdctl --endpoints="$CETCD_EP" get r1 r4 --keys-only 2>&1 | grep -c r)"
    etcdctl --endpoints="$CETCD_EP" get r1 r4 2>&1 | grep -o -E "code = [A-Za-z]+|^r[0-9]" | sort -u | tr '\n' ' '
}
unset CETCD_DIR
if start_cetcd --max-reply-bytes 1048576; then
    t_eq "--max-reply-bytes 1048576: a 1.2 MB range refused, keys-only served" \
        "3 code = ResourceExhausted " "$(reply_range)"
    t_eq "--max-reply-bytes 1048576: a delete whose prev_kvs take 1.2 MB refused, nothing deleted" \
        "code = ResourceExhausted 3" "$(etcdctl --endpoints="$CETCD_EP" del r1 r4 --prev-kv 2>&1 |
            grep -o -E "code = [A-Za-z]+" | sort -u) $(etcdctl --endpoints="$CETCD_EP" get r1 r4 --keys-only | grep -c r)"
    t_eq "--max-reply-bytes 1048576: the same delete without prev_kv" "3" \
        "$(etcdctl --endpoints="$CETCD_EP" del r1 r4)"
    stop_cetcd
else t_fail "cetcd starts with --max-reply-bytes" "$(tail -5 "$T_TMP/cetcd.log")"; fi
unset CETCD_DIR
if ETCD_MAX_REPLY_BYTES=2097152 start_cetcd; then
    t_eq "ETCD_MAX_REPLY_BYTES=2097152: the 1.2 MB range served" "3 r1 r2 r3 " "$(reply_range)"
    stop_cetcd
else t_fail "cetcd starts with ETCD_MAX_REPLY_BYTES" "$(tail -5 "$T_TMP/cetcd.log")"; fi

t_finish
