#!/usr/bin/env bash
# auth_bench.sh: put and range with auth on (simple tokens, issue 15), cetcd against Debian's etcd in the same run,
# plus put 64/8 with auth off on the same servers so each one's cost of auth shows, and the up-front cost of the
# benchmark's Authenticate calls (bcrypt). Writes its section of bench/RESULTS.md between its own markers (make bench-auth).
#   BENCH_AUTH_ROUNDS (3), BENCH_AUTH_TOTAL (20000), CETCD_BIN (build/cetcd), BENCH_RESULTS (bench/RESULTS.md),
#   BENCH_DATA_DIR (/tmp)
set -uo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=${BENCH_AUTH_ROUNDS:-3}
TOTAL=${BENCH_AUTH_TOTAL:-20000}
CONNS=8
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/RESULTS.md}
side_by_side_setup authbench

ROOTPW=rootpw-$$ BENCHPW=benchpw-$$
ctl() { local ep=$1; shift; ETCDCTL_API=3 etcdctl --endpoints "$ep" --dial-timeout=2s --command-timeout=20s "$@"; }
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; } # utime + stime of PID, all its threads
HZ=$(getconf CLK_TCK)
now() { date +%s.%N; }

# start KIND DIR: one server, auth token kind simple and the default bcrypt cost (10) on both; sets SPID[KIND], SEP[KIND]
declare -A SPID SEP
start() {
    launch_server "$1" "$2" --auth-token simple || return 1
    SPID[$1]=$LAUNCHED_PID SEP[$1]=$LAUNCHED_EP
}

# setup EP: root (role root) and bench, whose role may read and write every key: the benchmark's put keys are
# binary (a varint of a random number, zero-padded to --key-size bytes), so no prefix covers them; etcdctl turns
# --from-key '' into ["\0", "\0"), the whole key space. Auth is left off.
setup() {
    local ep=$1
    ctl "$ep" user add "root:$ROOTPW" &&
        ctl "$ep" role add root && ctl "$ep" user grant-role root root &&
        ctl "$ep" role add benchrw && ctl "$ep" role grant-permission benchrw readwrite --from-key '' &&
        ctl "$ep" user add "bench:$BENCHPW" && ctl "$ep" user grant-role bench benchrw &&
        ctl "$ep" put bench-range-key "$(printf 'r%.0s' $(seq 256))"
} >/dev/null
auth() { # KIND on|off
    local ep=${SEP[$1]}
    if [ "$2" = on ]; then
        ctl "$ep" auth enable >/dev/null || return 1
    else
        ctl "$ep" --user "root:$ROOTPW" auth disable >/dev/null || return 1
    fi
}

# workloads: name | auth on or off | benchmark arguments; the put is bench.py's put 64/8 but for the total
PUT="put --clients 64 --conns $CONNS --val-size 256 --key-space-size 100000 --total $TOTAL"
WORKLOADS=(
    "put 64/8, auth off|off|$PUT"
    "put 64/8, auth on|on|$PUT"
    "range s 64/8, auth on|on|range bench-range-key --consistency s --clients 64 --conns $CONNS --total $TOTAL"
)

# bench KIND MODE ARGS...: one benchmark run against KIND's server, as user bench when MODE is on; sets
# B_OUT (req/s, p99 ms), B_SRV (server ticks), B_CLI (client CPU s) and B_WALL (s)
bench() {
    local kind=$1 mode=$2 t0 t1 w0 user=()
    shift 2
    [ "$mode" = on ] && user=(--user "bench:$BENCHPW")
    t0=$(ticks "${SPID[$kind]}") w0=$(now)
    /usr/bin/time -f "%U %S" -o "$W/client.time" "$BENCHMARK" --endpoints "${SEP[$kind]}" "${user[@]}" "$@" \
        >"$W/out.txt" 2>&1 || { log "$kind $*: failed: $(tail -3 "$W/out.txt")"; return 1; }
    t1=$(ticks "${SPID[$kind]}")
    B_WALL=$(awk -v a="$w0" -v b="$(now)" 'BEGIN {print b - a}')
    B_SRV=$((t1 - t0))
    B_OUT=$(tr '\r' '\n' <"$W/out.txt" | awk '/Requests\/sec:/ {r = $2} /99% in/ {p = $3} END {print r, p * 1000}')
    B_CLI=$(awk '{print $1 + $2}' "$W/client.time")
}

# upfront KIND: the cost of the benchmark's start with auth on: it makes --conns clients, each one
# Authenticate (a bcrypt check of the password, then a token) before it sends anything; 8 one-put clients
# here. Appends "server_ms_per_authenticate wall_s" to $W/res/auth.KIND and keeps the ticks for run_workload.
declare -A UPFRONT
upfront() {
    local kind=$1
    bench "$kind" on put --clients "$CONNS" --conns "$CONNS" --val-size 256 --key-space-size 100000 --total "$CONNS" ||
        return 1
    UPFRONT[$kind]=$B_SRV
    awk -v d="$B_SRV" -v hz="$HZ" -v n="$CONNS" -v w="$B_WALL" \
        'BEGIN {printf "%.1f %.3f\n", d / hz / n * 1e3, w}' >>"$W/res/auth.$kind"
    log "$kind: $CONNS Authenticates: $(tail -1 "$W/res/auth.$kind") (server ms each, wall s of the whole start)"
}

# run_workload KIND IDX: appends "rps p99_ms server_us_per_op client_us_per_op" to $W/res/IDX.KIND; with auth on
# the server CPU of the start's Authenticates, measured by upfront in the same round, is taken out
run_workload() {
    local kind=$1 idx=$2 name mode args n less=0
    IFS='|' read -r name mode args <<<"${WORKLOADS[$idx]}"
    n=$TOTAL
    # shellcheck disable=SC2086
    bench "$kind" "$mode" $args || return 1
    [ "$mode" = on ] && less=${UPFRONT[$kind]}
    awk -v o="$B_OUT" -v d="$B_SRV" -v l="$less" -v hz="$HZ" -v n="$n" -v c="$B_CLI" \
        'BEGIN {printf "%s %.2f %.2f\n", o, (d - l) / hz / n * 1e6, c / n * 1e6}' >>"$W/res/$idx.$kind"
    log "$kind $name: $(tail -1 "$W/res/$idx.$kind") (req/s, p99 ms, server µs/op, client µs/op)"
}

# both servers run through a round; each workload goes to one and then the other, the order flipping from
# workload to workload and round to round, and the workloads themselves run backwards every other round
# (the store grows with the puts); auth is switched on or off by root before each run as the workload needs
mkdir -p "$W/res"
for r in $(seq 1 "$ROUNDS"); do
    log "round $r"
    for kind in cetcd etcd; do
        start "$kind" "$W/data-$kind-$r" || die "$kind did not start (see $W/$kind.log)"
        setup "${SEP[$kind]}" || die "$kind: setting up users and roles failed"
        if ! { auth "$kind" on && upfront "$kind" && auth "$kind" off; }; then die "$kind: the Authenticate run failed"; fi
    done
    idxs=$(seq 0 $((${#WORKLOADS[@]} - 1)))
    [ $((r % 2)) -eq 0 ] && idxs=$(seq $((${#WORKLOADS[@]} - 1)) -1 0)
    declare -A STATE=([cetcd]=off [etcd]=off)
    for i in $idxs; do
        IFS='|' read -r _ mode _ <<<"${WORKLOADS[$i]}"
        order="cetcd etcd"
        [ $(((r + i) % 2)) -eq 0 ] && order="etcd cetcd"
        for kind in $order; do
            if [ "${STATE[$kind]}" != "$mode" ]; then
                auth "$kind" "$mode" || die "$kind: auth $mode failed"
                STATE[$kind]=$mode
            fi
            run_workload "$kind" "$i" || die "$kind: benchmark failed"
        done
    done
    for kind in cetcd etcd; do stop "${SPID[$kind]}"; done
    rm -rf "$W/data-cetcd-$r" "$W/data-etcd-$r"
done

# --- the section: medians with min-max over rounds, and the ratios
for i in "${!WORKLOADS[@]}"; do echo "${WORKLOADS[$i]%%|*}" >"$W/res/$i.name"; done
{
    echo "<!-- auth bench (bench/auth_bench.sh): this section is rewritten by that script only -->"
    echo "## With auth on (make bench-auth)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), git commit $(git -C "$REPO_DIR" rev-parse --short HEAD), $(nproc) cores,"
    echo "  load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared: compare only within a run)"
    echo "- $("$REF" --version | head -1); cetcd ${CETCD#"$REPO_DIR"/}$(git -C "$REPO_DIR" diff --quiet HEAD -- src storage ||
        echo ' (built from a working tree with uncommitted changes)'); both with fsync on, plaintext,"
    echo "  \`--auth-token simple\` and the default bcrypt cost (10); users root (role root) and bench, whose role has"
    echo "  readwrite on the whole key space (\`role grant-permission --from-key ''\`: the benchmark's put keys are 8 binary"
    echo "  bytes, a varint of a random number, so no prefix covers them); \`auth enable\`, and \`auth disable\` by root for"
    echo "  the auth-off row, on the same servers; etcd's \`benchmark --user bench:…\`; $ROUNDS rounds of fresh servers, each"
    echo "  workload run on one and then the other, the order alternating, and the workloads backwards every other"
    echo "  round; puts of 256-byte values over 100k keys (bench.py's put 64/8), ranges of one key; $TOTAL requests a run"
    echo
    /usr/bin/python3 - "$W/res" "${#WORKLOADS[@]}" "$CONNS" "$TOTAL" <<'EOF'
import os, statistics, sys
d, n, conns, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def load(name):
    rows = [list(map(float, l.split())) for l in open("%s/%s" % (d, name)) if l.strip()]
    return list(zip(*rows))
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
    c, e = load("%d.cetcd" % i), load("%d.etcd" % i)
    m = {k: [statistics.median(x) for x in v] for k, v in (("cetcd", c), ("etcd", e))}
    med[name] = m
    print("| %s | %s | %s | %.2f× | %s / %s | %s | %s | %.2f× | %s / %s |" % (
        name, cell(c[0]), cell(e[0]), m["cetcd"][0] / m["etcd"][0], f(m["cetcd"][1]), f(m["etcd"][1]),
        cell(c[2]), cell(e[2]), m["etcd"][2] / m["cetcd"][2], f(m["cetcd"][3]), f(m["etcd"][3])))
on, off = med["put 64/8, auth on"], med["put 64/8, auth off"]
rate = {k: on[k][0] / off[k][0] for k in on}
cpu = {k: on[k][2] / off[k][2] for k in on}
print("| put 64/8, auth on ÷ off (req/s; server CPU per op) | %.2f× | %.2f× | | | %.2f× | %.2f× | | |" % (
    rate["cetcd"], rate["etcd"], cpu["cetcd"], cpu["etcd"]))
ua, ue = load("auth.cetcd"), load("auth.etcd")
print("| start of a run with auth on: %d Authenticates (bcrypt cost 10), server CPU ms each; wall s of the start | "
      "%s ms; %s s | %s ms; %s s | | | | | | |" % (conns, cell(ua[0]), f(statistics.median(ua[1])), cell(ue[0]),
                                                  f(statistics.median(ue[1]))))
print()
print("'cetcd advantage' is cetcd's req/s ÷ etcd's, 'CPU advantage' etcd's server CPU per op ÷ cetcd's (utime+stime of "
      "the server process, all its threads, from /proc over the run, ÷ requests); with auth on, the server CPU of the "
      "run's %d Authenticates, measured in the same round by a run of %d one-put clients (last row), is taken out, so "
      "the per-op columns are the steady state; client CPU is the benchmark tool's (utime+stime), per request; p99 and "
      "client CPU are medians over rounds. The benchmark authenticates once per connection, not per client "
      "(tools/benchmark/cmd/util.go: mustCreateConn per --conns, the 64 clients share them), before its clock starts, "
      "so req/s and p99 leave the start out." % (conns, conns))
print()
loadavg, ncpu = float(open("/proc/loadavg").read().split()[0]), os.cpu_count()
am = {k: statistics.median(v[0]) for k, v in (("cetcd", ua), ("etcd", ue))}
print("Reading: with auth on, put 64/8 keeps %.0f%% of its auth-off req/s on cetcd and %.0f%% on etcd, and its server "
      "CPU per put changes %.2f× on cetcd and %.2f× on etcd." % (
          100 * rate["cetcd"], 100 * rate["etcd"], cpu["cetcd"], cpu["etcd"]))
if rate["cetcd"] >= 0.9 and cpu["cetcd"] <= 1.2:
    print("On cetcd a request's auth work (a simple token looked up, a permission checked against the user's merged "
          "key ranges in memory) is within this run's noise.")
else:
    print("On cetcd a request's auth work (a simple token looked up, a permission checked against the user's merged "
          "key ranges in memory) shows in these numbers.")
if rate["etcd"] < 0.8:
    print("etcd 3.4 checks each put's permission in its apply loop by reading the user from bbolt under the "
          "backend's batch-transaction lock (auth/store.go isOpPermitted, whose own comment says it 'would be costly'), "
          "which fits its drop.")
print("The up-front cost is the password check: one Authenticate is %s ms of server CPU on cetcd and %s ms on etcd "
      "(bcrypt at cost 10), %d of them per benchmark run, %s ms and %s ms in all, made one connection after another "
      "(the start takes %s s and %s s); spread over %d requests that would be %.1f and %.1f µs a request, %.0f%% and "
      "%.0f%% of the steady server CPU of a put with auth on%s." % (
          f(am["cetcd"]), f(am["etcd"]), conns, f(am["cetcd"] * conns), f(am["etcd"] * conns),
          f(statistics.median(ua[1])), f(statistics.median(ue[1])), total,
          am["cetcd"] * conns * 1e3 / total, am["etcd"] * conns * 1e3 / total,
          100 * am["cetcd"] * conns * 1e3 / total / on["cetcd"][2], 100 * am["etcd"] * conns * 1e3 / total / on["etcd"][2],
          ": on cetcd the %d password checks at the start cost more server CPU than the %d puts after them" % (conns, total)
          if am["cetcd"] * conns * 1e3 > total * on["cetcd"][2] else ""))
print("Both servers check one permission here (the bench role's single range), the cheapest case for each.")
spread = lambda v: max(v) / min(v) if min(v) > 0 else float("inf")
wide = []
for i in range(n):
    name = open("%s/%d.name" % (d, i)).read().strip()
    c, e = load("%d.cetcd" % i), load("%d.etcd" % i)
    if max(spread(c[0]), spread(e[0])) > 1.5 and max(spread(c[2]), spread(e[2])) < 1.5:
        wide.append(name)
if wide:
    print("On %s the req/s of the rounds spread more than 1.5× (min–max above) while the CPU per op stayed put: those "
          "runs waited rather than computed (for other work on the machine, and for puts the disk), so read their req/s "
          "as ranges and their ratios as rough." % ", ".join(wide))
bound = [x for x in med if med[x]["cetcd"][3] > med[x]["cetcd"][2]]
if bound:
    print("The Go benchmark client runs on the same %d cores%s, and on %s it spent more CPU per request than cetcd did "
          "(%s): there the client, not cetcd, is most of the CPU the run waits for (the rest is other work on the "
          "machine and, for puts, the disk), so the req/s ratio is a floor of cetcd's advantage and the "
          "CPU-per-op columns are the fairer comparison." % (
              ncpu, " (shared with other work in this run: load average %.1f)" % loadavg if loadavg > ncpu else "",
              ", ".join(bound), "; ".join(
                  "%s: %s vs %s µs" % (x, f(med[x]["cetcd"][3]), f(med[x]["cetcd"][2])) for x in bound)))
EOF
    echo "<!-- end auth bench -->"
} >"$W/section.md"
cat "$W/section.md"
write_section auth "$W/section.md"
log "wrote the auth section of $RESULTS"
