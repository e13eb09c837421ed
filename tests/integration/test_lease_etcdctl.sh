#!/bin/bash
# test_lease_etcdctl.sh: etcdctl's lease commands (grant, revoke, keep-alive, timetolive --keys, list,
# put --lease) run as one fixed scenario against Debian's real etcd and against cetcd, each on a fresh
# server; every step's stdout, stderr and exit code must match once what legitimately differs is
# normalized: lease ids (each server picks its own; renamed L1, L2... in order of appearance, hex and
# decimal alike), cluster/member ids, raft term, a remaining TTL within 5 s of its granted TTL, and the order of a
# lease's keys (Go map order in etcd).
# Then cetcd alone: leases survive a restart (and a kill -9) with their keys, are renewed for their
# full TTL (plus etcd's 1 s election-timeout extension) when the server comes back, and then expire.
# LEASE_SELFTEST=1 runs etcd against etcd to check the normalizer.
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C

SCEN_PID=
EP=


# lease_norm: over a whole scenario transcript, renames lease ids by order of first appearance and
# accepts a remaining TTL in [granted-5, granted]; sorts a lease's keys.
lease_norm() {
    /usr/bin/python3 -c '
import re, sys
names = {}
def name(v):
    v &= (1 << 64) - 1
    if v not in names:
        names[v] = "L%d" % (len(names) + 1)
    return names[v]
def fix(line):
    line = re.sub(r"\b[0-9a-f]{16}\b", lambda m: name(int(m.group(0), 16)), line)
    line = re.sub(r"\"(ID|id|lease)\":(-?[1-9][0-9]*)", lambda m: "\"%s\":%s" % (m.group(1), name(int(m.group(2)))), line)
    m = re.search(r"TTL\((\d+)s\), remaining\((-?\d+)s\)", line)
    if m and int(m.group(1)) - 5 <= int(m.group(2)) <= int(m.group(1)):
        line = line.replace("remaining(%ss)" % m.group(2), "remaining(OK)")
    m = re.search(r"\"ttl\":(-?\d+),\"granted-ttl\":(\d+)", line)
    if m and int(m.group(2)) > 0 and int(m.group(2)) - 5 <= int(m.group(1)) <= int(m.group(2)):
        line = line.replace(m.group(0), "\"ttl\":OK,\"granted-ttl\":%s" % m.group(2))
    # etcd lists the keys of a lease in Go map order (random), cetcd sorted: compare them as sets
    line = re.sub(r"attached keys\(\[([^]]*)\]\)", lambda m: "attached keys([%s])" % " ".join(sorted(m.group(1).split())), line)
    line = re.sub(r"\"keys\":\[([^]]*)\]", lambda m: "\"keys\":[%s]" % ",".join(sorted(m.group(1).split(","))), line)
    return line
for line in sys.stdin:
    sys.stdout.write(fix(line))
'
}

# si NAME STDIN etcdctl-args...: one step; its raw stdout stays in $T_TMP/out for the scenario to read.
si() {
    local name=$1 input=$2 rc; shift 2
    echo "## $name"
    if [ -n "$SCEN_PID" ] && ! kill -0 "$SCEN_PID" 2>/dev/null; then echo "SERVER DEAD"; return; fi
    printf '%s' "$input" | timeout "${STEP_TIMEOUT:-8}" env ETCDCTL_API=3 etcdctl --endpoints "$EP" \
        --dial-timeout=2s --command-timeout=3s "$@" >"$T_TMP/out" 2>"$T_TMP/err"
    rc=$?
    norm <"$T_TMP/out"
    norm <"$T_TMP/err" | sed 's/^/E: /'
    echo "rc=$rc"
}
s() { si "$1" "" "${@:2}"; }
# the lease id (hex) of the last step's "lease ID granted with TTL(...)" line
last_id() { awk '/^lease [0-9a-f]+ granted/ {print $2}' "$T_TMP/out"; }

scenario_lease() {
    local L L2 S K
    s grant_100          lease grant 100
    s grant_1_raised     -w json lease grant 1
    s grant_0_raised     lease grant 0
    s grant_too_large    lease grant 9000000001
    s grant_max          lease grant 9000000000
    s grant_not_number   lease grant abc
    s grant_60           lease grant 60
    L=$(last_id)
    s put_k1             put --lease="$L" k1 v1
    s put_k2             put --lease="$L" k2 v2
    s put_k3_plain       put k3 v3
    s get_k1_json        -w json get k1
    s ttl                lease timetolive "$L"
    s ttl_keys           lease timetolive "$L" --keys
    s ttl_keys_json      -w json lease timetolive "$L" --keys
    s ttl_json           -w json lease timetolive "$L"
    s keepalive_once     lease keep-alive --once "$L"
    s keepalive_once_js  -w json lease keep-alive --once "$L"
    STEP_TIMEOUT=2 s keepalive_stream lease keep-alive "$L"
    s put_unknown_lease  put --lease=1234abcd x y
    s put_k3_attach      put --lease="$L" k3 v3b
    s put_k2_detach      put k2 v2b
    s put_k2_ignore      put --ignore-lease k2 v2c
    s ttl_keys_after     lease timetolive "$L" --keys
    s revoke             lease revoke "$L"
    s get_after_revoke   -w json get --prefix k
    s revoke_again       lease revoke "$L"
    s ttl_revoked        lease timetolive "$L"
    s ttl_revoked_keys   lease timetolive "$L" --keys
    s ttl_revoked_json   -w json lease timetolive "$L"
    s keepalive_revoked  lease keep-alive --once "$L"
    s revoke_unknown     lease revoke 1234abcd
    s grant_30           lease grant 30
    L2=$(last_id)
    s revoke_empty_json  -w json lease revoke "$L2"
    # expiry: S expires by itself; K is kept alive by a keep-alive stream for longer than its TTL
    s grant_short        lease grant 2
    S=$(last_id)
    s put_e1             put --lease="$S" e1 x
    s put_e2             put --lease="$S" e2 y
    s grant_kept         lease grant 2
    K=$(last_id)
    s put_kept           put --lease="$K" kept z
    timeout 5 env ETCDCTL_API=3 etcdctl --endpoints "$EP" lease keep-alive "$K" >/dev/null 2>&1 &
    local kpid=$!
    sleep 4
    s get_e_expired      get --prefix e
    s ttl_expired        lease timetolive "$S" --keys
    s keepalive_expired  lease keep-alive --once "$S"
    s kept_alive         lease timetolive "$K" --keys
    s get_kept           get kept
    s expiry_one_rev     -w json get k3
    wait "$kpid"
    sleep 3.5
    s kept_expired       lease timetolive "$K"
    s get_kept_gone      get kept
    s list               lease list
    s list_json          -w json lease list
}

SCENARIOS=(lease)

run_on() {
    local kind=$1 scen=$2 out=$3
    start_fresh "$kind" "$out" || return 1
    "scenario_$scen" 2>&1 | lease_norm >"$out"
    [ -n "${LEASE_KEEP:-}" ] && cp "$out" "$LEASE_KEEP.$kind.$scen"
    if kill -0 "$SCEN_PID" 2>/dev/null; then echo "## alive"; echo yes; else echo "## alive"; echo no; fi >>"$out"
    if [ "$kind" = etcd ]; then stop_etcd; else stop_cetcd; fi
    SCEN_PID=
}

block() { awk -v n="## $2" '$0 == n {on=1; next} /^## / {on=0} on' "$1"; }

other=cetcd
[ "${LEASE_SELFTEST:-0}" = 1 ] && other=etcd
[ "$other" = cetcd ] && [ ! -x "$CETCD_BIN" ] && echo "note: $CETCD_BIN does not exist; every step will fail"

for scen in "${SCENARIOS[@]}"; do
    ref=$T_TMP/ref.$scen; got=$T_TMP/got.$scen
    run_on etcd "$scen" "$ref"
    run_on "$other" "$scen" "$got"
    if grep -q '^## start:' "$got"; then
        t_fail "$scen: $other starts" "$(tail -5 "$T_TMP/cetcd.log" 2>/dev/null)"
        continue
    fi
    names=$(grep '^## ' "$ref" | cut -c4-)
    while IFS= read -r n; do
        t_eq "$scen: $n" "$(block "$ref" "$n")" "$(block "$got" "$n")"
    done <<<"$names"
done

[ "$other" = etcd ] && t_finish && exit

# ---------- cetcd alone: restart, kill -9, expiry after restart ----------

c() { ctl "$CETCD_EP" "$@" 2>&1; }
gid() { awk '/^lease [0-9a-f]+ granted/ {print $2}'; }

unset CETCD_DIR
start_cetcd || { t_fail "restart: cetcd starts"; t_finish; exit; }
L=$(c lease grant 3 | gid)
K=$(c lease grant 600 | gid)
c put --lease="$L" rk short >/dev/null
c put --lease="$K" rk2 long >/dev/null
c put --lease="$K" rk3 long >/dev/null
stop_cetcd
sleep 3.2   # longer than L's TTL: etcd renews leases on start, so L must still be there
start_cetcd || { t_fail "restart: cetcd restarts on the same data dir"; t_finish; exit; }
out=$(c lease timetolive "$L" --keys)
if [[ "$out" =~ ^lease\ $L\ granted\ with\ TTL\(3s\),\ remaining\(([0-9]+)s\),\ attached\ keys\(\[rk\]\)$ ]] &&
    [ "${BASH_REMATCH[1]}" -ge 2 ] && [ "${BASH_REMATCH[1]}" -le 4 ]; then
    t_pass "restart: short lease renewed for its TTL (+1 s) with its key"
else
    t_fail "restart: short lease renewed for its TTL (+1 s) with its key" "$out"
fi
t_eq "restart: its key is still there" "rk
short" "$(c get rk)"
t_eq "restart: long lease keeps its keys" "lease $K granted with TTL(600s), remaining(600s), attached keys([rk2 rk3])" \
    "$(c lease timetolive "$K" --keys)"
t_eq "restart: lease list" "found 2 leases
$L
$K" "$(c lease list)"
sleep 4.5
t_eq "restart: short lease expired after restart" "lease $L already expired" "$(c lease timetolive "$L")"
t_eq "restart: its key is gone" "" "$(c get rk)"
t_eq "restart: other lease's keys stay" "rk2
rk3" "$(c get --prefix rk --keys-only | grep .)"

# kill -9 right after the replies: acknowledged grants, puts and revokes are durable
M=$(c lease grant 600 | gid)
N=$(c lease grant 600 | gid)
c put --lease="$M" mk v >/dev/null
c put --lease="$N" nk v >/dev/null
c lease revoke "$N" >/dev/null
stop_cetcd -KILL
start_cetcd || { t_fail "kill -9: cetcd restarts"; t_finish; exit; }
t_eq "kill -9: granted lease and its key survive" "lease $M granted with TTL(600s), remaining(600s), attached keys([mk])" \
    "$(c lease timetolive "$M" --keys)"
t_eq "kill -9: revoked lease stays revoked" "lease $N already expired" "$(c lease timetolive "$N")"
t_eq "kill -9: revoked lease's key stays deleted" "" "$(c get nk)"
t_eq "kill -9: keep-alive after restart" "lease $M keepalived with TTL(600)" "$(c lease keep-alive --once "$M")"
t_eq "kill -9: new grant gets a new id" "1" "$(c lease grant 50 | gid | grep -vc "^$M$")"
stop_cetcd

t_finish
