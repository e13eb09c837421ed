#!/usr/bin/env bash
# h2load_bench.sh: put and range with a load generator cheaper per request than either server (issue 16, "the client
# limit"): on 2 shared cores etcd's Go `benchmark` saturates before cetcd does, so each workload also runs from nghttp2's
# h2load posting one prepared gRPC body, the same bytes to cetcd and to Debian's etcd, next to the Go tool in the same run.
# Also watch events/s: from bench/watchload.c (C, cheaper per event than either server) to 1000 watchers on one key, and
# to one prefix watcher while 64 clients write under the prefix, the latter also from bench/watchbench (Go). Writes its
# section of bench/RESULTS.md between its own markers, leaving the rest of the file as it is (make bench-h2load).
#   BENCH_H2_ROUNDS (5), BENCH_H2_PUT (20000, put 64/8), BENCH_H2_PUT_1 (3000, put 1/1), BENCH_H2_RANGE (200000,
#   range 64/8 from h2load), BENCH_H2_RANGE_1 (30000, range 1/1), BENCH_H2_GO_RANGE (30000, range 64/8 from the Go
#   tool), BENCH_H2_WATCH (20000 puts watched by watchbench), BENCH_H2_WL (3000 puts to 1000 watchers),
#   BENCH_H2_WL_PREFIX (100000 puts to 1 prefix watcher), BENCH_H2_ROWS (an extended regex: only the workloads whose
#   "name|spec" line below matches run, and RESULTS is left as it is), CETCD_BIN (build/cetcd), BENCH_RESULTS
#   (bench/RESULTS.md), BENCH_DATA_DIR (/tmp), BENCH_CETCD_DESC (how the section names the cetcd binary)
set -uo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=${BENCH_H2_ROUNDS:-5}
PUT=${BENCH_H2_PUT:-20000}
PUT1=${BENCH_H2_PUT_1:-3000}
RANGE=${BENCH_H2_RANGE:-200000}
RANGE1=${BENCH_H2_RANGE_1:-30000}
GORANGE=${BENCH_H2_GO_RANGE:-30000}
WATCH=${BENCH_H2_WATCH:-20000}
WL=${BENCH_H2_WL:-3000}
WLP=${BENCH_H2_WL_PREFIX:-100000}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/RESULTS.md}
apt_install nghttp2-client curl etcd-client
side_by_side_setup h2loadbench
WB=$W/watchbench
(cd "$REPO_DIR" && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$WB" ./bench/watchbench) ||
    die "bench/watchbench does not build"
WLOAD=$W/watchload
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$WLOAD" "$BENCH_DIR/watchload.c" -lnghttp2 || die "bench/watchload.c does not build"

ctl() { local ep=$1; shift; ETCDCTL_API=3 etcdctl --endpoints "$ep" --dial-timeout=2s --command-timeout=10s "$@"; }
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; } # utime + stime of PID
HZ=$(getconf CLK_TCK)
revision() { ctl "$1" endpoint status -w json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])'; }

# --- the request bodies: the gRPC length prefix (flag 0, 4-byte big-endian length) and then the protobuf
KEY=h2load/key
/usr/bin/python3 - "$W" "$KEY" <<'EOF' || die "could not write the request bodies"
import struct, sys
d, key = sys.argv[1], sys.argv[2].encode()
def varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)
def lenfield(no, b): return varint(no << 3 | 2) + varint(len(b)) + b
def grpc(msg): return b"\0" + struct.pack(">I", len(msg)) + msg
bodies = {
    "put": lenfield(1, key) + lenfield(2, b"v" * 256),      # PutRequest key=1 value=2
    "range_l": lenfield(1, key),                            # RangeRequest key=1
    "range_s": lenfield(1, key) + varint(7 << 3) + b"\1",   # ... serializable=7
}
for name, msg in bodies.items():
    open("%s/%s.bin" % (d, name), "wb").write(grpc(msg))
EOF
GRPC_H=(-H 'content-type: application/grpc' -H 'te: trailers')

# cpu_run FILE CMD...: runs CMD and writes its utime+stime in seconds to FILE (from wait4's rusage, finer than
# /usr/bin/time's hundredths); returns CMD's status
cpu_run() {
    /usr/bin/python3 -c '
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
open(sys.argv[1], "w").write("%.6f\n" % (ru.ru_utime + ru.ru_stime))
sys.exit(os.waitstatus_to_exitcode(status))' "$@"
}

# start KIND DIR: one fresh server (fsync on, ephemeral ports); sets SPID[KIND] and SEP[KIND]
declare -A SPID SEP
start() {
    launch_server "$1" "$2" || return 1
    SPID[$1]=$LAUNCHED_PID SEP[$1]=$LAUNCHED_EP
}

# workloads: name | h2 BODY METHOD CLIENTS STREAMS_PER_CLIENT N, or go BENCHMARK-ARGS (with --total), or watch N, or
# wl key|prefix PUTS [PUTS_PER_SECOND]
WORKLOADS=(
    "put 64/8|h2 put Put 8 8 $PUT"
    "put 64/8|go put --clients 64 --conns 8 --val-size 256 --key-space-size 100000 --total $PUT"
    "put 1/1|h2 put Put 1 1 $PUT1"
    "put 1/1|go put --clients 1 --conns 1 --val-size 256 --key-space-size 100000 --total $PUT1"
    "range s 64/8|h2 range_s Range 8 8 $RANGE"
    "range s 64/8|go range $KEY --consistency s --clients 64 --conns 8 --total $GORANGE"
    "range l 64/8|h2 range_l Range 8 8 $RANGE"
    "range l 64/8|go range $KEY --consistency l --clients 64 --conns 8 --total $GORANGE"
    "range s 1/1|h2 range_s Range 1 1 $RANGE1"
    "range s 1/1|go range $KEY --consistency s --clients 1 --conns 1 --total $RANGE1"
    "range l 1/1|h2 range_l Range 1 1 $RANGE1"
    "range l 1/1|go range $KEY --consistency l --clients 1 --conns 1 --total $RANGE1"
    "watch: 1000 watchers on one key, events/s|wl key $WL"
    "watch: 1000 watchers on one key, 500 puts at 5000/s (make bench's Go run), events/s|wl key 500 5000"
    "watch: events/s to 1 prefix watcher, 64 writers / 8 conns|wl prefix $WLP"
    "watch: events/s to 1 prefix watcher, 64 writers / 8 conns|watch $WATCH"
)
ALL_ROWS=1
if [ -n "${BENCH_H2_ROWS:-}" ]; then
    kept=()
    for w in "${WORKLOADS[@]}"; do grep -qE -- "$BENCH_H2_ROWS" <<<"$w" && kept+=("$w"); done
    [ ${#kept[@]} -gt 0 ] || die "BENCH_H2_ROWS=$BENCH_H2_ROWS matches no workload"
    WORKLOADS=("${kept[@]}") ALL_ROWS=""
fi

# sanity EP BODY METHOD: one request by curl; fails unless grpc-status is 0; prints the response body's length
sanity() {
    curl -sv --http2-prior-knowledge "${GRPC_H[@]}" --data-binary "@$W/$2.bin" -o "$W/sanity.out" \
        "http://$1/etcdserverpb.KV/$3" 2>"$W/sanity.err" || return 1
    grep -qi '^< grpc-status: 0' "$W/sanity.err" || { log "$3 answered $(grep -i grpc- "$W/sanity.err")"; return 1; }
    stat -c %s "$W/sanity.out"
}

# run_h2 KIND BODY METHOD CLIENTS STREAMS N: h2load, then checks that every reply succeeded: a put run must raise the
# revision by exactly N; a range run must bring N times the bytes of the sanity request's reply (an error carries no
# message, only trailers); prints "req/s client_cpu_s"
run_h2() {
    local kind=$1 body=$2 method=$3 c=$4 m=$5 n=$6 ep=${SEP[$1]} rev0 len="" out ok data rps
    if [ "$method" = Put ]; then rev0=$(revision "$ep"); else len=$(sanity "$ep" "$body" "$method") || return 1; fi
    cpu_run "$W/client.time" h2load "${GRPC_H[@]}" -d "$W/$body.bin" -n "$n" -c "$c" -m "$m" \
        "http://$ep/etcdserverpb.KV/$method" >"$W/out.txt" 2>&1 || { log "h2load: $(tail -3 "$W/out.txt")"; return 1; }
    out=$(cat "$W/out.txt")
    ok=$(awk '/^requests:/ {print $8, $10, $12, $14}' <<<"$out")          # succeeded failed errored timeout
    [ "$ok" = "$n 0 0 0" ] || { log "h2load $kind $method: requests $ok"; return 1; }
    grep -q "^status codes: $n 2xx" <<<"$out" || { log "h2load $kind: $(grep '^status' <<<"$out")"; return 1; }
    if [ "$method" = Put ]; then
        [ $(($(revision "$ep") - rev0)) -eq "$n" ] || { log "$kind: revision $rev0 -> $(revision "$ep"), not +$n"; return 1; }
    else
        data=$(sed -nE 's/^traffic:.* \(([0-9]+)\) data$/\1/p' <<<"$out")
        [ "$data" = $((n * len)) ] || { log "$kind $body: $data bytes of replies, not $n x $len"; return 1; }
    fi
    rps=$(sed -nE 's/^finished in .*, ([0-9.]+) req\/s.*/\1/p' <<<"$out")
    echo "$rps $(cat "$W/client.time")"
}

# run_go KIND ARGS...: etcd's benchmark tool; prints "req/s client_cpu_s"
run_go() {
    local kind=$1 rps
    shift
    cpu_run "$W/client.time" "$BENCHMARK" --endpoints "${SEP[$kind]}" "$@" >"$W/out.txt" 2>&1 ||
        { log "benchmark: $(tail -3 "$W/out.txt")"; return 1; }
    ! grep -q "Error distribution" "$W/out.txt" || { log "benchmark $kind $*: $(grep -A3 'Error dist' "$W/out.txt")"; return 1; }
    rps=$(tr '\r' '\n' <"$W/out.txt" | awk '/Requests\/sec:/ {print $2}')
    echo "$rps $(cat "$W/client.time")"
}

# run_watch KIND N: bench/watchbench with one watcher on one prefix and 64 writers over 8 connections putting under
# it; it waits for all N events; prints "events/s client_cpu_s"
run_watch() {
    local kind=$1 n=$2 line
    line=$(cpu_run "$W/client.time" "$WB" -endpoint "${SEP[$kind]}" -pid "${SPID[$kind]}" \
        -prefixes 1 -streams 1 -conns 8 -writers 64 -ops 1 -txns "$n" 2>&1 | tail -1)
    grep -q "^events=$n " <<<"$line" || { log "watchbench $kind: $line"; return 1; }
    echo "$(sed -E 's/.*events_per_sec=([0-9.]+).*/\1/' <<<"$line") $(cat "$W/client.time")"
}

# wl_events MODE PUTS: the events a watchload run must count: 1000 watchers see every put; one prefix watcher, one each
wl_events() { if [ "$1" = key ]; then echo $((1000 * $2)); else echo "$2"; fi; }

# run_wl KIND MODE PUTS [RATE]: bench/watchload. key: 1000 watchers on one key (2 connections x 5 Watch streams x 100 watchers,
# as make bench's Go run), prefix: 1 watcher on /wl/ and a new key under it per put; the puts from 8 connections with 8
# in flight on each (at most RATE a second if given), 8-byte values to the one key and 256-byte ones under the prefix;
# it waits for every event. Prints "events/s client_cpu_s"
run_wl() {
    local kind=$1 mode=$2 puts=$3 line args=(-c 2 -s 5 -w 100 -k watchload/key -v 8 -r "${4:-0}")
    [ "$mode" = prefix ] && args=(-c 1 -s 1 -w 1 -p -k /wl/ -v 256)
    line=$(cpu_run "$W/client.time" "$WLOAD" -h "${SEP[$kind]%:*}" -P "${SEP[$kind]##*:}" "${args[@]}" -n "$puts" \
        -C 8 -m 8 -t 120 2>&1 | tail -1)
    grep -q "^events=$(wl_events "$mode" "$puts") .* puts=$puts " <<<"$line" || { log "watchload $kind $mode: $line"; return 1; }
    echo "$(sed -E 's/.*events_per_sec=([0-9.]+).*/\1/' <<<"$line") $(cat "$W/client.time")"
}

# run_workload KIND IDX: appends "rate server_us_per_op client_us_per_op" to $W/res/IDX.KIND
run_workload() {
    local kind=$1 idx=$2 name spec t0 t1 res n srv
    IFS='|' read -r name spec <<<"${WORKLOADS[$idx]}"
    # shellcheck disable=SC2086
    set -- $spec
    t0=$(ticks "${SPID[$kind]}")
    case $1 in
    h2) n=$6; res=$(run_h2 "$kind" "$2" "$3" "$4" "$5" "$6") || return 1 ;;
    go) n=${*: -1}; shift; res=$(run_go "$kind" "$@") || return 1 ;;
    watch) n=$2; res=$(run_watch "$kind" "$2") || return 1 ;;
    wl) n=$(wl_events "$2" "$3"); res=$(run_wl "$kind" "$2" "$3" "${4:-}") || return 1 ;;
    esac
    t1=$(ticks "${SPID[$kind]}")
    read -r rate ccpu <<<"$res"
    srv=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$n" 'BEGIN {printf "%.2f", d / hz / n * 1e6}')
    awk -v r="$rate" -v s="$srv" -v c="$ccpu" -v n="$n" 'BEGIN {printf "%s %s %.2f\n", r, s, c / n * 1e6}' \
        >>"$W/res/$idx.$kind"
    log "$kind $name (${spec%% *}): $(tail -1 "$W/res/$idx.$kind") (req/s, server µs/op, client µs/op)"
}

# both servers run through a round; each workload goes to one and then the other, the order flipping from workload to
# workload and round to round, so that load from elsewhere on the shared machine hits both alike. The first put run
# writes the key the ranges read (a 256-byte value).
mkdir -p "$W/res"
for r in $(seq 1 "$ROUNDS"); do
    log "round $r"
    for kind in cetcd etcd; do start "$kind" "$W/data-$kind-$r" || die "$kind did not start (see $W/$kind.log)"; done
    for i in "${!WORKLOADS[@]}"; do
        order="cetcd etcd"
        [ $(((r + i) % 2)) -eq 0 ] && order="etcd cetcd"
        for kind in $order; do run_workload "$kind" "$i" || die "$kind: ${WORKLOADS[$i]} failed"; done
    done
    for kind in cetcd etcd; do stop "${SPID[$kind]}"; done
    rm -rf "$W/data-cetcd-$r" "$W/data-etcd-$r"
done

# --- the section: medians with min-max over rounds, and the ratios
for i in "${!WORKLOADS[@]}"; do
    IFS='|' read -r name spec <<<"${WORKLOADS[$i]}"
    echo "$name|${spec%% *}" >"$W/res/$i.name"
done
{
    echo "<!-- h2load bench (bench/h2load_bench.sh): this section is rewritten by that script only -->"
    echo "## With a cheaper load generator: h2load (make bench-h2load)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), git commit $(git -C "$REPO_DIR" rev-parse --short HEAD), $(nproc) cores,"
    echo "  load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared: compare only within a run)"
    echo "- $("$REF" --version | head -1); cetcd ${BENCH_CETCD_DESC:-${CETCD#"$REPO_DIR"/}$(git -C "$REPO_DIR" diff --quiet \
        HEAD -- src storage || echo ' (built from a working tree with uncommitted changes)')}; both with fsync on, both up through a round,"
    echo "  each workload run on one and then the other, the order alternating; $ROUNDS rounds of fresh servers"
    echo "- method: $(h2load --version | head -1) (Debian's nghttp2-client, one thread) posts one prepared gRPC body"
    echo "  (the 5-byte length prefix and the protobuf), the same file to both servers, with \`content-type: application/grpc\`"
    echo "  and \`te: trailers\`: a Put of a 256-byte value to one key ($PUT at 64/8: \`-c 8 -m 8\`, $PUT1 at 1/1), and a"
    echo "  Range of that key, serializable or linearizable ($RANGE at 64/8, $RANGE1 at 1/1). h2load counts HTTP 200s and"
    echo "  gRPC errors come in trailers, so each run is checked apart: after a put run the revision must have grown by"
    echo "  exactly the count; before a range run one request by curl must answer grpc-status 0, and the run must"
    echo "  receive the count times that reply's bytes (an error reply carries no message). Next to each, etcd's Go"
    echo "  \`benchmark\` tool on the same workload (puts over 100k keys; $GORANGE ranges at 64/8). The watch row is"
    echo "  bench/watchbench: one watcher on the prefix \`/wb/00000/\` and 64 Go clients over 8 connections putting $WATCH"
    echo "  times under it; events/s from the first put to the last event received. The watchload rows are"
    echo "  bench/watchload.c (C, nghttp2, one thread): it opens the watchers over Watch streams, waits until each is"
    echo "  created, then puts from 8 connections with 8 in flight on each and counts the \`events\` entries of every"
    echo "  WatchResponse until it has them all, which the script checks (puts x watchers): 1000 watchers on one key"
    echo "  (2 connections x 5 streams x 100, as \`make bench\`'s Go run) and $WL puts of 8-byte values as fast as they"
    echo "  complete, or 500 at 5000 a second as \`make bench\` has the Go tool put them, and one watcher"
    echo "  on \`/wl/\` with $WLP puts of 256-byte values, each to its own key under it; events/s from the first put to"
    echo "  the last event. Its client CPU covers its puts too"
    echo
    /usr/bin/python3 - "$W/res" "${#WORKLOADS[@]}" <<'EOF'
import statistics, sys
d, n = sys.argv[1], int(sys.argv[2])
def f(x):
    return "%.0f" % x if x >= 100 else "%.2f" % x if x < 10 else "%.1f" % x
def cell(v):
    return "%s (%s–%s)" % (f(statistics.median(v)), f(min(v)), f(max(v)))
label = {"h2": "h2load", "go": "Go benchmark", "watch": "Go watchbench", "wl": "watchload (C)"}
pair = {"h2": "go", "wl": "watch"}  # each cheap client's row and the Go one of the same workload
med, raw = {}, {}
print("| workload | client | cetcd req/s | etcd req/s | cetcd ÷ etcd | server CPU µs/op cetcd | server CPU µs/op etcd | "
      "etcd ÷ cetcd CPU | client CPU µs/op with cetcd / etcd |")
print("|---|---|---|---|---|---|---|---|---|")
for i in range(n):
    name, client = open("%s/%d.name" % (d, i)).read().strip().split("|")
    cols = {}
    for k in ("cetcd", "etcd"):
        rows = [list(map(float, l.split())) for l in open("%s/%d.%s" % (d, i, k)) if l.strip()]
        cols[k] = list(zip(*rows))  # rate, server us/op, client us/op
    m = {k: [statistics.median(x) for x in v] for k, v in cols.items()}
    med[(name, client)] = m
    raw[(name, client)] = cols
    c, e = cols["cetcd"], cols["etcd"]
    print("| %s | %s | %s | %s | %.2f× | %s | %s | %.2f× | %s / %s |" % (
        name, label[client], cell(c[0]), cell(e[0]), m["cetcd"][0] / m["etcd"][0], cell(c[1]), cell(e[1]),
        m["etcd"][1] / m["cetcd"][1], f(m["cetcd"][2]), f(m["etcd"][2])))
print()
print("Req/s and CPU are medians (min–max) over the rounds; 'cetcd ÷ etcd' divides the req/s medians, 'etcd ÷ cetcd CPU' "
      "the server CPU medians (utime+stime of the server process from /proc/PID/stat around the run, ÷ requests); "
      "client CPU is the load generator's own utime+stime per request. The watch row counts events, not requests.")
print()
print("| workload | cetcd ÷ etcd req/s, h2load or watchload | cetcd ÷ etcd req/s, Go | client CPU µs/op with cetcd, "
      "h2load or watchload / Go | cetcd's server CPU µs/op, h2load or watchload / Go run |")
print("|---|---|---|---|---|")
for (name, client), m in med.items():
    if client not in pair or (name, pair[client]) not in med:
        continue
    g = med[(name, pair[client])]
    print("| %s | %.2f× | %.2f× | %s / %s | %s / %s |" % (
        name, m["cetcd"][0] / m["etcd"][0], g["cetcd"][0] / g["etcd"][0], f(m["cetcd"][2]), f(g["cetcd"][2]),
        f(m["cetcd"][1]), f(g["cetcd"][1])))
print()
# the reading, from the medians
names = lambda xs: ", ".join("%s (%s)" % (n, label[c]) for n, c in xs) or "none"
cheap = [k for k, m in med.items() if "1/1" not in k[0] and m["cetcd"][2] < m["cetcd"][1]]
bound = [k for k, m in med.items() if "1/1" not in k[0] and m["cetcd"][2] >= m["cetcd"][1]]
wide = [k for k, m in med.items() if any(max(v[0]) > 1.5 * min(v[0]) and max(v[1]) < 1.5 * min(v[1])
                                         for v in raw[k].values())]
print("Reading: the load generator spent less CPU per request than cetcd on %s; it spent as much or more on %s, "
      "where it and cetcd share the 2 cores, so there the req/s ratio is a floor of the servers' difference and the "
      "server-CPU-per-op columns compare the servers themselves. A 1/1 row has one request in flight: it measures a "
      "round trip, and for a put one fdatasync on the shared disk, more than either server's CPU." % (
          names(cheap), names(bound)))
if wide:
    print()
    print("On %s the rate of the rounds spread more than 1.5× (min–max above) while the server CPU per op stayed "
          "within 1.5×: those runs waited (for other work on the machine, or the disk) rather than computed, so read "
          "them as ranges and their ratios as rough." % names(wide))
EOF
    echo "<!-- end h2load bench -->"
} >"$W/section.md"
cat "$W/section.md"
[ -n "$ALL_ROWS" ] || { log "BENCH_H2_ROWS chose some workloads: $RESULTS left as it is"; exit 0; }
write_section h2load "$W/section.md"
log "wrote the h2load section of $RESULTS"
