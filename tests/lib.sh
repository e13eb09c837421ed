# lib.sh: shared helpers for the shell integration tests: ephemeral ports, temp dirs, starting and
# stopping cetcd and the real etcd by PID, and the pass/fail count each suite ends with.
# Source it; call t_finish at the end (prints "N passed, N failed" and exits non-zero on failures).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CETCD_BIN=${CETCD_BIN:-$ROOT/build/cetcd}
T_PASSED=0
T_FAILED=0
T_TMP=$(mktemp -d /tmp/cetcd-test.XXXXXX)
T_PIDS=()

t_cleanup() {
    local pid
    for pid in "${T_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    rm -rf "$T_TMP"
}
trap t_cleanup EXIT

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT [PID]: waits up to 10 s for a TCP listener; gives up at once if PID has exited.
wait_port() {
    local i
    for i in $(seq 1 200); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null && return 1
        sleep 0.05
    done
    return 1
}

# start_cetcd [flags...]: sets CETCD_PID, CETCD_PORT, CETCD_EP, CETCD_DIR (reuses CETCD_DIR if set;
# otherwise a new empty dir: a port number can come back, so the dir is not named after it).
start_cetcd() {
    CETCD_PORT=$(free_port)
    [ -n "${CETCD_DIR:-}" ] || { CETCD_DIR=$(mktemp -d "$T_TMP/cetcd.XXXXXX") && rmdir "$CETCD_DIR"; }
    CETCD_EP=127.0.0.1:$CETCD_PORT
    "$CETCD_BIN" --data-dir "$CETCD_DIR" --listen-client-urls "http://$CETCD_EP" \
        --advertise-client-urls "http://$CETCD_EP" "$@" >>"$T_TMP/cetcd.log" 2>&1 &
    CETCD_PID=$!
    T_PIDS+=("$CETCD_PID")
    wait_port "$CETCD_PORT" "$CETCD_PID" || { echo "cetcd did not start:"; tail -5 "$T_TMP/cetcd.log"; return 1; }
}

stop_cetcd() {
    [ -n "${CETCD_PID:-}" ] || return 0
    kill "${1:--TERM}" "$CETCD_PID" 2>/dev/null
    wait "$CETCD_PID" 2>/dev/null
    CETCD_PID=
}

# start_etcd [flags...]: Debian's real etcd on ephemeral client and peer ports. Sets ETCD_PID, ETCD_EP.
start_etcd() {
    local cport pport
    cport=$(free_port); pport=$(free_port)
    ETCD_EP=127.0.0.1:$cport
    ETCD_DIR=$(mktemp -d "$T_TMP/etcd.XXXXXX")   # always fresh: a port number can come back
    etcd --name ref --data-dir "$ETCD_DIR" --listen-client-urls "http://$ETCD_EP" \
        --advertise-client-urls "http://$ETCD_EP" --listen-peer-urls "http://127.0.0.1:$pport" \
        --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "ref=http://127.0.0.1:$pport" "$@" >>"$T_TMP/etcd.log" 2>&1 &
    ETCD_PID=$!
    T_PIDS+=("$ETCD_PID")
    wait_port "$cport" "$ETCD_PID" || return 1
    local i
    for i in $(seq 1 100); do
        ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" endpoint health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

stop_etcd() {
    [ -n "${ETCD_PID:-}" ] || return 0
    kill "$ETCD_PID" 2>/dev/null
    wait "$ETCD_PID" 2>/dev/null
    ETCD_PID=
}

# start_fresh KIND OUT: a new etcd or cetcd (fresh data dir) for a scenario that runs on both; sets
# EP and SCEN_PID. On failure writes the reason to OUT, where the comparison will show it.
start_fresh() {
    if [ "$1" = etcd ]; then
        start_etcd || { echo "## start: etcd did not start" >"$2"; return 1; }
        EP=$ETCD_EP; SCEN_PID=$ETCD_PID
    else
        unset CETCD_DIR
        start_cetcd || { echo "## start: cetcd did not start" >"$2"; return 1; }
        EP=$CETCD_EP; SCEN_PID=$CETCD_PID
    fi
}

# ctl ENDPOINT args...: etcdctl v3 against one endpoint.
ctl() {
    local ep=$1; shift
    ETCDCTL_API=3 etcdctl --endpoints "$ep" --command-timeout=5s "$@"
}

# norm: removes what legitimately differs between two servers in etcdctl output: ids, raft term,
# the client's retry warnings' noise and the endpoint ($EP, set by the suite). Suites may redefine it.
norm() {
    sed -E \
        -e 's/^\{"level":"warn".*"error":"(.*)"\}$/WARN: \1/' \
        -e 's/"cluster_id":[1-9][0-9]*/"cluster_id":CID/g; s/"member_id":[1-9][0-9]*/"member_id":MID/g' \
        -e 's/"raft_term":[1-9][0-9]*/"raft_term":RT/g' \
        -e 's/^"ClusterID" : [1-9][0-9]*$/"ClusterID" : CID/; s/^"MemberID" : [1-9][0-9]*$/"MemberID" : MID/' \
        -e 's/^"RaftTerm" : [1-9][0-9]*$/"RaftTerm" : RT/' \
        -e "s/$EP/EP/g"
}

t_pass() { T_PASSED=$((T_PASSED + 1)); echo "ok   - $1"; }
t_fail() { T_FAILED=$((T_FAILED + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/       /'; }

# t_eq NAME EXPECTED ACTUAL
t_eq() {
    if [ "$2" == "$3" ]; then t_pass "$1"; else t_fail "$1" "$(diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | head -20)"; fi
}

t_finish() {
    echo "$T_PASSED passed, $T_FAILED failed"
    [ "$T_FAILED" -eq 0 ]
}

# restart_cetcd [SIG]: stops the cetcd of start_cetcd (SIGTERM, or e.g. -KILL) and starts it again on
# the same data dir (a new port: CETCD_EP and CETCD_PID change).
restart_cetcd() {
    stop_cetcd "${1:--TERM}"
    start_cetcd
}

# restart_etcd [SIG]: stops the etcd of start_etcd and starts it again on the same data dir, client
# port and peer URL (read from member list before the stop). ETCD_PID changes.
restart_etcd() {
    local peer i
    peer=$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" member list 2>/dev/null | awk -F', ' 'NR==1 {print $4}')
    [ -n "$peer" ] || return 1
    kill "${1:--TERM}" "$ETCD_PID" 2>/dev/null
    wait "$ETCD_PID" 2>/dev/null
    etcd --name ref --data-dir "$ETCD_DIR" --listen-client-urls "http://$ETCD_EP" \
        --advertise-client-urls "http://$ETCD_EP" --listen-peer-urls "$peer" \
        --initial-advertise-peer-urls "$peer" --initial-cluster "ref=$peer" >>"$T_TMP/etcd.log" 2>&1 &
    ETCD_PID=$!
    T_PIDS+=("$ETCD_PID")
    wait_port "${ETCD_EP##*:}" "$ETCD_PID" || return 1
    for i in $(seq 1 100); do
        ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" endpoint health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# dir_bytes DIR / dir_files DIR: the sum of the sizes of the regular files under DIR / their number.
dir_bytes() { find "$1" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
dir_files() { find "$1" -type f 2>/dev/null | wc -l; }

# http_chunks FILE: a raw chunked HTTP body (curl --raw) as one line per chunk, each "<json>\n" checked
# to be exactly one JSON object and a newline (as etcd's gateway streams); ends with "END" if the zero
# chunk closed the stream.
http_chunks() {
    /usr/bin/python3 - "$1" <<'EOF'
import json, sys
d = open(sys.argv[1], 'rb').read()
while d:
    n, _, d = d.partition(b'\r\n')
    size = int(n, 16)
    if size == 0:
        print('END')
        break
    chunk, d = d[:size], d[size + 2:]
    if not chunk.endswith(b'\n') or chunk.count(b'\n') != 1:
        print('BAD CHUNK ' + repr(chunk))
        continue
    print(json.dumps(json.loads(chunk), sort_keys=True, separators=(',', ':')))
EOF
}
