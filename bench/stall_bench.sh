#!/usr/bin/env bash
# stall_bench.sh: put 64/8 latency while large lists, sorted pages, a Compact and a Defragment of a large store run, against the
# same put on the idle store (issue 16, "no stop-the-world"), cetcd against Debian's etcd in the same run. Writes its section of
# bench/RESULTS.md between its own markers, leaving the rest of the file as it is (make bench-stall).
#   BENCH_STALL_KEYS (1000000), BENCH_STALL_VERSIONS (2: each key written this many times, so compaction has
#   history to drop), BENCH_STALL_LISTS (5 lists, and 5 sorted pages, during a put run), BENCH_STALL_ROUNDS (2), BENCH_STALL_TOTAL (40000 puts per measured run), CETCD_BIN
#   (build/cetcd), BENCH_RESULTS (bench/RESULTS.md), BENCH_DATA_DIR (/tmp)
set -uo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KEYS=${BENCH_STALL_KEYS:-1000000}
VERSIONS=${BENCH_STALL_VERSIONS:-2}
ROUNDS=${BENCH_STALL_ROUNDS:-2}
TOTAL=${BENCH_STALL_TOTAL:-40000}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/RESULTS.md}
side_by_side_setup stallbench

ctl() { local ep=$1; shift; ETCDCTL_API=3 etcdctl --endpoints "$ep" --dial-timeout=2s --command-timeout=600s "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }

# start KIND DIR: one fresh server (fsync on, ephemeral ports); sets PID and EP
start() {
    launch_server "$1" "$2" || return 1
    PID=$LAUNCHED_PID EP=$LAUNCHED_EP
}
revision() { ctl "$1" endpoint status -w json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])'; }
dbsize() { ctl "$1" endpoint status -w json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["dbSize"])'; }

# put64 EP OUT: the measured put, 64 clients over 8 connections, $TOTAL puts of 256-byte values over the loaded keys
put64() {
    "$BENCHMARK" --endpoints "$1" --clients 64 --conns 8 put --val-size 256 --key-space-size "$KEYS" \
        --total "$TOTAL" >"$2" 2>&1
}
# "req/s p99_ms slowest_ms seconds" from a benchmark output
parse() { tr '\r' '\n' <"$1" | awk '/Requests\/sec:/ {r = $2} /99% in/ {p = $3} /Slowest:/ {s = $2} /Total:/ {t = $2}
    END {printf "%s %.2f %.2f %.2f\n", r, p * 1000, s * 1000, t}'; }

# during EP TIMES OP...: a put run, and 0.3 s into it (its clients connected) the etcdctl command OP, TIMES times
# one after the other; prints the put run's "req/s p99 max seconds" and then how long the OPs took, in seconds
during() {
    local ep=$1 times=$2 bpid t0 took i
    shift 2
    put64 "$ep" "$W/during.txt" &
    bpid=$!
    sleep 0.3
    t0=$(now)
    for i in $(seq 1 "$times"); do
        ctl "$ep" "$@" >/dev/null || die "etcdctl $* failed"
    done
    took=$(since "$t0")
    wait "$bpid" || die "put during $1 failed"
    echo "$(parse "$W/during.txt") $took"
}

# the lists of the lists row: the first 100,000 keys of the store (keys only, and etcd's count of every key)
LISTS=${BENCH_STALL_LISTS:-5}

# round KIND R: load a fresh server with KEYS keys x VERSIONS, then the idle put run, then a put run with the
# lists started 0.3 s into it, then one with compact --physical, then one with defrag; appends to $W/res/KIND
#   idle: rps p99 max s | compact: rps p99 max s op_s | defrag: rps p99 max s op_s | db_before db_after |
#   lists: rps p99 max s op_s | sorted pages: rps p99 max s op_s
round() {
    local kind=$1 r=$2 t0 rev idle comp defr db0
    start "$kind" "$W/data-$kind-$r" || die "$kind did not start (see $W/$kind.log)"
    t0=$(now)
    "$BENCHMARK" --endpoints "$EP" --clients 256 --conns 16 put --sequential-keys --key-space-size "$KEYS" \
        --total $((KEYS * VERSIONS)) >"$W/load.txt" 2>&1 || die "$kind: load failed: $(tail -3 "$W/load.txt")"
    log "$kind round $r: loaded $KEYS keys x $VERSIONS in $(since "$t0") s"
    put64 "$EP" "$W/idle.txt" || die "$kind: idle put failed"
    idle=$(parse "$W/idle.txt")
    lists=$(during "$EP" "$LISTS" get "" --prefix --keys-only --limit 100000)
    sorted=$(during "$EP" "$LISTS" get "" --prefix --limit 10 --sort-by=MODIFY --order=DESCEND)
    rev=$(revision "$EP") db0=$(dbsize "$EP")
    comp=$(during "$EP" 1 compact --physical "$rev")
    defr=$(during "$EP" 1 defrag)
    echo "$idle $comp $defr $db0 $(dbsize "$EP") $lists $sorted" >>"$W/res/$kind"
    log "$kind round $r: idle [$idle] lists [$lists] sorted [$sorted] compact [$comp] defrag [$defr]" \
        "(req/s p99 max run_s [op_s])"
    stop "$PID"
    rm -rf "$W/data-$kind-$r"
}

mkdir -p "$W/res"
for r in $(seq 1 "$ROUNDS"); do
    order="cetcd etcd"
    [ $((r % 2)) -eq 0 ] && order="etcd cetcd"
    for kind in $order; do round "$kind" "$r"; done
done

{
    echo "<!-- stall bench (bench/stall_bench.sh): this section is rewritten by that script only -->"
    echo "## Put latency during large lists, Compact and Defragment (make bench-stall)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), git commit $(git -C "$REPO_DIR" rev-parse --short HEAD), $(nproc) cores,"
    echo "  load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared: compare only within a run)"
    echo "- $("$REF" --version | head -1); cetcd ${CETCD#"$REPO_DIR"/}$(git -C "$REPO_DIR" diff --quiet HEAD -- src storage ||
        echo ' (built from a working tree with uncommitted changes)'); both with fsync on, one fresh server per round"
    echo "- each round: $KEYS keys each written $VERSIONS times (8-byte values, \`benchmark put --sequential-keys\`,"
    echo "  256 clients), then \`benchmark put\` 64 clients / 8 connections, $TOTAL puts of 256-byte values over those keys"
    echo "  on the idle store; then the same put run with $LISTS lists one after the other started 0.3 s into it (\`etcdctl get \"\""
    echo "  --prefix --keys-only --limit 100000\`: 100,000 keys and the count of all); then the same with $LISTS sorted pages"
    echo "  (\`etcdctl get \"\" --prefix --limit 10 --sort-by=MODIFY --order=DESCEND\`: the 10 keys written last, of all);"
    echo "  then the same put run with"
    echo "  \`etcdctl compact --physical <revision after the idle run>\` started"
    echo "  0.3 s into it, then the same put run with \`etcdctl defrag\` started 0.3 s into it; $ROUNDS rounds, the order of"
    echo "  the servers alternating; medians with min–max; 'max' is the benchmark's slowest single put; the compact and"
    echo "  defrag times are how long etcdctl waited for the answer: cetcd answers Compact once the compaction revision is"
    echo "  recorded and prunes its index in background slices afterwards, and answers Defragment when its log run ends"
    echo
    /usr/bin/python3 - "$W/res" <<'EOF'
import statistics, sys
d = sys.argv[1]
cols = {}
for kind in ("cetcd", "etcd"):
    rows = [list(map(float, l.split())) for l in open("%s/%s" % (d, kind)) if l.strip()]
    cols[kind] = list(zip(*rows))
def f(x):
    return "%.0f" % x if x >= 100 else "%.2f" % x if x < 10 else "%.1f" % x
def cell(v):
    return f(v[0]) if len(v) == 1 else "%s (%s–%s)" % (f(statistics.median(v)), f(min(v)), f(max(v)))
names = ["idle: put req/s", "idle: put p99 ms", "idle: put max ms", "idle: put run s",
         "during compact: put req/s", "during compact: put p99 ms", "during compact: put max ms",
         "during compact: put run s", "compact --physical s",
         "during defrag: put req/s", "during defrag: put p99 ms", "during defrag: put max ms",
         "during defrag: put run s", "defrag s", "db size before, MB", "db size after defrag, MB",
         "during lists: put req/s", "during lists: put p99 ms", "during lists: put max ms",
         "during lists: put run s", "lists s (all of them)",
         "during sorted pages: put req/s", "during sorted pages: put p99 ms", "during sorted pages: put max ms",
         "during sorted pages: put run s", "sorted pages s (all of them)"]
print("| | cetcd | etcd |")
print("|---|---|---|")
for i, n in enumerate(names):
    c, e = cols["cetcd"][i], cols["etcd"][i]
    if "MB" in n:
        c, e = [x / 1e6 for x in c], [x / 1e6 for x in e]
    print("| %s | %s | %s |" % (n, cell(c), cell(e)))
print()
m = {k: [statistics.median(x) for x in v] for k, v in cols.items()}
for k in ("cetcd", "etcd"):
    x = m[k]
    def cov(run, op):
        return "all of it" if op + 0.3 <= run else "about its first %.1f s of %.1f" % (max(0, run - 0.3), op)
    print("- %s: during compact, p99 %.2f× idle, max %.2f× idle, req/s %.2f× idle (the put run saw %s); "
          "during defrag, p99 %.2f× idle, max %.2f× idle, req/s %.2f× idle (the put run saw %s)." % (
              k, x[5] / x[1], x[6] / x[2], x[4] / x[0], cov(x[7], x[8]),
              x[10] / x[1], x[11] / x[2], x[9] / x[0], cov(x[12], x[13])))
    print("- %s: during the lists, p99 %.2f× idle, max %.2f× idle, req/s %.2f× idle (the put run saw %s)." % (
        k, x[17] / x[1], x[18] / x[2], x[16] / x[0], cov(x[19], x[20])))
    print("- %s: during the sorted pages, p99 %.2f× idle, max %.2f× idle, req/s %.2f× idle (the put run saw %s)." % (
        k, x[22] / x[1], x[23] / x[2], x[21] / x[0], cov(x[24], x[25])))
EOF
    echo
    echo "The machine is shared (the load average above counts other work too), so a single slow put may be anyone's;"
    echo "read the p99 and max rows as ranges over the rounds, and compare the two servers within this run only."
    echo "<!-- end stall bench -->"
} >"$W/section.md"
cat "$W/section.md"
write_section stall "$W/section.md"
log "wrote the stall section of $RESULTS"
