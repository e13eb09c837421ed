#!/usr/bin/env bash
# tls_bench.sh: put and range over TLS with client certificates (issue 12), cetcd against Debian's etcd in
# the same run, plus put 1/1 and 64/8 over plaintext on the same servers so each one's TLS cost shows. Writes its
# section of bench/RESULTS.md between its own markers, leaving the rest of the file as it is (make bench-tls).
#   BENCH_TLS_ROUNDS (3), BENCH_TLS_TOTAL (20000, the 64/8 rows), BENCH_TLS_TOTAL_1 (2000, the 1/1 rows),
#   CETCD_BIN (build/cetcd), BENCH_RESULTS (bench/RESULTS.md), BENCH_DATA_DIR (/tmp)
set -uo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=${BENCH_TLS_ROUNDS:-3}
TOTAL=${BENCH_TLS_TOTAL:-20000}
TOTAL1=${BENCH_TLS_TOTAL_1:-2000}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/RESULTS.md}
side_by_side_setup tlsbench

# --- certificates: a CA, a server certificate for 127.0.0.1 and localhost, a client certificate
P=$W/pki
mkdir -p "$P"
mkca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.crt" -days 2 -subj "/CN=$1" 2>/dev/null; }
mkcert() { # NAME SUBJECT EXT
    openssl req -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.csr" -subj "/CN=$2" 2>/dev/null &&
        printf '%s\n' "$3" >"$P/$1.ext" &&
        openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial \
            -out "$P/$1.crt" -days 2 -extfile "$P/$1.ext" 2>/dev/null
}
mkca ca && mkcert server server $'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth' &&
    mkcert client client "extendedKeyUsage=clientAuth" || die "openssl could not make the certificates"
TLSC=(--cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key")
TLSS=(--cert-file "$P/server.crt" --key-file "$P/server.key" --trusted-ca-file "$P/ca.crt" --client-cert-auth=true)

ctl() { ETCDCTL_API=3 etcdctl --endpoints "https://$TLS_EP" "${TLSC[@]}" --dial-timeout=2s --command-timeout=10s "$@"; }
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; } # utime + stime of PID
HZ=$(getconf CLK_TCK)

# start KIND DIR: one server with an https:// and an http:// client listener; sets PID, TLS_EP, PLAIN_EP
# and the same in SPID[KIND], STLS[KIND], SPLAIN[KIND]
declare -A SPID STLS SPLAIN
start() {
    local tp hp pp i
    tp=$(port) hp=$(port) pp=$(port)
    TLS_EP=127.0.0.1:$tp PLAIN_EP=127.0.0.1:$hp
    local urls="https://$TLS_EP,http://$PLAIN_EP"
    if [ "$1" = cetcd ]; then
        "$W/cetcd" --data-dir "$2" --listen-client-urls "$urls" --advertise-client-urls "https://$TLS_EP" \
            "${TLSS[@]}" >>"$W/cetcd.log" 2>&1 &
    else
        "$REF" --name b --data-dir "$2" --listen-client-urls "$urls" --advertise-client-urls "https://$TLS_EP" \
            --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
            --initial-cluster "b=http://127.0.0.1:$pp" "${TLSS[@]}" >>"$W/etcd.log" 2>&1 &
    fi
    PID=$!
    PIDS+=("$PID")
    SPID[$1]=$PID STLS[$1]=$TLS_EP SPLAIN[$1]=$PLAIN_EP
    for i in $(seq 1 300); do
        ctl endpoint health >/dev/null 2>&1 && return 0
        kill -0 "$PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# workloads: name | tls or plain | benchmark arguments (the total comes from the name's count)
WORKLOADS=(
    "put 1/1|tls|put --clients 1 --conns 1 --val-size 256 --key-space-size 100000 --total $TOTAL1"
    "put 64/8|tls|put --clients 64 --conns 8 --val-size 256 --key-space-size 100000 --total $TOTAL"
    "range l 64/8|tls|range bench-range-key --consistency l --clients 64 --conns 8 --total $TOTAL"
    "range s 64/8|tls|range bench-range-key --consistency s --clients 64 --conns 8 --total $TOTAL"
    "put 1/1 plaintext|plain|put --clients 1 --conns 1 --val-size 256 --key-space-size 100000 --total $TOTAL1"
    "put 64/8 plaintext|plain|put --clients 64 --conns 8 --val-size 256 --key-space-size 100000 --total $TOTAL"
)
total_of() { sed -E 's/.*--total ([0-9]+).*/\1/' <<<"$1"; }

# run_workload KIND IDX: one benchmark run against KIND's running server; appends
# "rps p99_ms server_us_per_op client_us_per_op" to $W/res/IDX.KIND
run_workload() {
    local kind=$1 idx=$2 name mode args ep t0 t1 out n
    IFS='|' read -r name mode args <<<"${WORKLOADS[$idx]}"
    n=$(total_of "$args")
    local extra=()
    if [ "$mode" = tls ]; then ep=${STLS[$kind]} extra=("${TLSC[@]}"); else ep=${SPLAIN[$kind]}; fi
    t0=$(ticks "${SPID[$kind]}")
    # shellcheck disable=SC2086
    /usr/bin/time -f "%U %S" -o "$W/client.time" "$BENCHMARK" --endpoints "$ep" "${extra[@]}" $args \
        >"$W/out.txt" 2>&1 || { log "$kind $name failed: $(tail -3 "$W/out.txt")"; return 1; }
    t1=$(ticks "${SPID[$kind]}")
    out=$(tr '\r' '\n' <"$W/out.txt" | awk '/Requests\/sec:/ {r = $2} /99% in/ {p = $3} END {print r, p * 1000}')
    read -r cu cs <"$W/client.time"
    awk -v o="$out" -v d=$((t1 - t0)) -v hz="$HZ" -v n="$n" -v cu="$cu" -v cs="$cs" \
        'BEGIN {printf "%s %.2f %.2f\n", o, d / hz / n * 1e6, (cu + cs) / n * 1e6}' >>"$W/res/$idx.$kind"
    log "$kind $name: $(tail -1 "$W/res/$idx.$kind") (req/s, p99 ms, server µs/op, client µs/op)"
}

# both servers run through a round; each workload goes to one and then the other, the order flipping from
# workload to workload and round to round, so that load from elsewhere on a shared machine hits both alike
mkdir -p "$W/res"
for r in $(seq 1 "$ROUNDS"); do
    log "round $r"
    for kind in cetcd etcd; do
        start "$kind" "$W/data-$kind-$r" || die "$kind did not start over TLS (see $W/$kind.log)"
        ctl put bench-range-key "$(printf 'r%.0s' $(seq 256))" >/dev/null || die "$kind: put over TLS failed"
    done
    for i in "${!WORKLOADS[@]}"; do
        order="cetcd etcd"
        [ $(((r + i) % 2)) -eq 0 ] && order="etcd cetcd"
        for kind in $order; do run_workload "$kind" "$i" || die "$kind: benchmark failed"; done
    done
    for kind in cetcd etcd; do stop "${SPID[$kind]}"; done
    rm -rf "$W/data-cetcd-$r" "$W/data-etcd-$r"
done

# --- the section: medians with min-max over rounds, and the ratios
for i in "${!WORKLOADS[@]}"; do echo "${WORKLOADS[$i]%%|*}" >"$W/res/$i.name"; done
{
    echo "<!-- tls bench (bench/tls_bench.sh): this section is rewritten by that script only -->"
    echo "## Over TLS (make bench-tls)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), git commit $(git -C "$REPO_DIR" rev-parse --short HEAD), $(nproc) cores,"
    echo "  load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared: compare only within a run)"
    echo "- $("$REF" --version | head -1); cetcd ${CETCD#"$REPO_DIR"/}$(git -C "$REPO_DIR" diff --quiet HEAD -- src storage ||
        echo ' (built from a working tree with uncommitted changes)'); both with fsync on,"
    echo "  each one process serving an https:// listener (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth:"
    echo "  mTLS, RSA 2048 certificates made by openssl) and an http:// one; etcd's \`benchmark\` tool with"
    echo "  --cacert/--cert/--key; $ROUNDS rounds of fresh servers, both up through a round, each workload run on one and"
    echo "  then the other, the order alternating; puts of 256-byte values over 100k keys, ranges of one key;"
    echo "  totals: $TOTAL1 for 1/1, $TOTAL for 64/8"
    echo
    /usr/bin/python3 - "$W/res" "${#WORKLOADS[@]}" <<'EOF'
import os, statistics, sys
d, n = sys.argv[1], int(sys.argv[2])
wide = []  # rows whose req/s spread over rounds is wide: read them as a range
def load(i, kind):
    rows = [list(map(float, l.split())) for l in open("%s/%d.%s" % (d, i, kind)) if l.strip()]
    return list(zip(*rows))  # rps, p99, server us/op, client us/op
def f(x):
    return "%.0f" % x if x >= 100 else "%.2f" % x if x < 10 else "%.1f" % x
def cell(v):
    return "%s (%s–%s)" % (f(statistics.median(v)), f(min(v)), f(max(v)))
med = {}
print("| workload | cetcd req/s | etcd req/s | cetcd advantage | p99 ms cetcd / etcd | server CPU µs/op cetcd | "
      "server CPU µs/op etcd | CPU advantage | client CPU µs/op cetcd / etcd |")
print("|---|---|---|---|---|---|---|---|---|")
for i in range(n):
    name = open("%s/%d.name" % (d, i)).read().strip()
    c, e = load(i, "cetcd"), load(i, "etcd")
    m = {k: [statistics.median(x) for x in v] for k, v in (("cetcd", c), ("etcd", e))}
    med[name] = m
    spread = lambda v: max(v) / min(v) if min(v) > 0 else float("inf")
    if max(spread(c[0]), spread(e[0])) > 1.5 and max(spread(c[2]), spread(e[2])) < 1.5:
        wide.append(name)
    print("| %s | %s | %s | %.2f× | %s / %s | %s | %s | %.2f× | %s / %s |" % (
        name, cell(c[0]), cell(e[0]), m["cetcd"][0] / m["etcd"][0], f(m["cetcd"][1]), f(m["etcd"][1]),
        cell(c[2]), cell(e[2]), m["etcd"][2] / m["cetcd"][2], f(m["cetcd"][3]), f(m["etcd"][3])))
for c in ("1/1", "64/8"):
    t, p = med["put " + c], med["put %s plaintext" % c]
    tls_rate = {k: t[k][0] / p[k][0] for k in t}   # TLS req/s as a share of plaintext req/s
    tls_cpu = {k: t[k][2] / p[k][2] for k in t}    # TLS CPU per op over plaintext CPU per op
    print("| put %s, TLS ÷ plaintext (req/s; server CPU per op) | %.2f× | %.2f× | | | %.2f× | %.2f× | | |" % (
        c, tls_rate["cetcd"], tls_rate["etcd"], tls_cpu["cetcd"], tls_cpu["etcd"]))
print()
print("'cetcd advantage' is cetcd's req/s ÷ etcd's, 'CPU advantage' etcd's server CPU per op ÷ cetcd's (utime+stime of "
      "the server process from /proc over the run, ÷ requests); client CPU is the benchmark tool's (utime+stime), per "
      "request; p99 and client CPU are medians over rounds.")
print()
# the reading, from the medians
def cores(x):  # client + cetcd CPU per second of the run
    return (med[x]["cetcd"][2] + med[x]["cetcd"][3]) * med[x]["cetcd"][0] / 1e6
loadavg, ncpu = float(open("/proc/loadavg").read().split()[0]), os.cpu_count()
u = med["put 1/1"]
r1 = u["cetcd"][0] / u["etcd"][0]
print("Reading: put 1/1 has one request in flight, so it measures a TLS round trip plus an fdatasync per put: %.2f× "
      "in req/s%s, while etcd spends %.1f× cetcd's CPU per put." % (
          r1, ", both servers mostly waiting on the disk" if 0.75 < r1 < 1.33 else "", u["etcd"][2] / u["cetcd"][2]))
bound = [x for x in med if "1/1" not in x and med[x]["cetcd"][3] > med[x]["cetcd"][2]]
if bound:
    print("The Go benchmark client runs on the same %d cores%s, and on %s it spent more CPU per request than cetcd did "
          "(%s): there the client, not cetcd, is most of the CPU the run waits for (the rest is other work on the "
          "machine and, for puts, the disk), so the req/s ratio is a floor of cetcd's advantage and the "
          "CPU-per-op columns are the fairer comparison." % (
              ncpu, " (shared with other work in this run: load average %.1f)" % loadavg if loadavg > ncpu else "",
              ", ".join(bound), "; ".join(
                  "%s: %s vs %s µs, %.2f cores together" % (x, f(med[x]["cetcd"][3]), f(med[x]["cetcd"][2]),
                                                            cores(x)) for x in bound)))
if wide:
    print("On %s the req/s of the rounds spread more than 1.5× (min–max above) while the CPU per op stayed put: those "
          "runs waited rather than computed (for other work on the machine%s), so read them as ranges and their ratios "
          "as rough." % (", ".join(wide), "; a 1/1 put also for its fdatasync on a shared disk" if any(
              "put 1/1" in x for x in wide) else ""))
t, p = med["put 64/8"], med["put 64/8 plaintext"]
tls_rate = {k: t[k][0] / p[k][0] for k in t}
tls_cpu = {k: t[k][2] / p[k][2] for k in t}
gap = tls_cpu["etcd"] / tls_cpu["cetcd"]
print("Over TLS put 64/8 keeps %.0f%% of its plaintext req/s on cetcd%s and %.0f%% on etcd; the server CPU per put "
      "grows %.2f× on cetcd and %.2f× on etcd%s" % (
      100 * tls_rate["cetcd"], " (its TLS cost is within this run's noise)" if tls_rate["cetcd"] > 0.95 else "",
      100 * tls_rate["etcd"], tls_cpu["cetcd"], tls_cpu["etcd"],
      ", which fits etcd 3.4 serving gRPC over TLS through Go's net/http HTTP/2 server and grpc-go's ServeHTTP "
      "(embed/serve.go), not grpc-go's own transport as on its plaintext listener, while cetcd keeps one nghttp2 path with OpenSSL "
      "under it." if gap > 1.5 else "."))
EOF
    echo "<!-- end tls bench -->"
} >"$W/section.md"
cat "$W/section.md"
write_section tls "$W/section.md"
log "wrote the TLS section of $RESULTS"
