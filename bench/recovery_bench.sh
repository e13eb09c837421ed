#!/usr/bin/env bash
# recovery_bench.sh: restart time and memory of a store of N keys (1M by default), cetcd against Debian's etcd in
# the same run (issue 16 items 3 and 4): exec → listening, exec → first answered serializable Range, RSS once
# ready, RSS per key over the idle RSS on an empty dir, data dir size. Writes its section of bench/RESULTS.md.
#   RECOVERY_KEYS (1000000), RECOVERY_BIG=1 (also 10,000,000 keys: a long fill), RECOVERY_ROUNDS (3 restarts each),
#   RECOVERY_REUSE (0: fill both data dirs anew; 1: reuse both filled dirs kept in the cache; etcd: reuse etcd's
#   and refill cetcd's), RECOVERY_CACHE ($CACHE_DIR/recovery), RECOVERY_QUOTA (--quota-backend-bytes of both, 16 GiB:
#   10M keys of 256 bytes pass the 2 GiB default), CETCD_BIN (build/cetcd), BENCH_RESULTS
set -uo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KEYS=${RECOVERY_KEYS:-1000000}
ROUNDS=${RECOVERY_ROUNDS:-3}
REUSE=${RECOVERY_REUSE:-0}
QUOTA=${RECOVERY_QUOTA:-17179869184}
STORE=${RECOVERY_CACHE:-$CACHE_DIR/recovery}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/RESULTS.md}
KEY0=00000000000000000000000000000000 # benchmark's --sequential-keys key 0: varint 0, zero-padded to 16 bytes
SIZES=("$KEYS")
[ "${RECOVERY_BIG:-0}" = 1 ] && [ "$KEYS" != 10000000 ] && SIZES+=(10000000)
mkdir -p "$STORE"
side_by_side_setup recoverybench

ctl() { local ep=$1; shift; ETCDCTL_API=3 etcdctl --endpoints "$ep" --dial-timeout=2s "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

# argv KIND DIR PORT [EXTRA...]: the server's command line on ephemeral ports, into the array ARGV
argv() {
    local kind=$1 dir=$2 ep=127.0.0.1:$3 pp
    shift 3
    set -- --quota-backend-bytes "$QUOTA" "$@"
    if [ "$kind" = cetcd ]; then
        ARGV=("$W/cetcd" --data-dir "$dir" --listen-client-urls "http://$ep" --advertise-client-urls "http://$ep" "$@")
    else
        pp=$(port)
        ARGV=("$REF" --name b --data-dir "$dir" --listen-client-urls "http://$ep" --advertise-client-urls "http://$ep"
            --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp"
            --initial-cluster "b=http://127.0.0.1:$pp" "$@")
    fi
}

# fill KIND N: a data dir of N keys of 256 bytes in the cache (cetcd with --unsafe-no-fsync: only the fill is
# faster, the files are the same), stopped cleanly; kept while RECOVERY_REUSE says so and its stamp matches
fill() {
    local kind=$1 n=$2 dir="$STORE/$1-$2" cp pid t0 _
    local stamp="keys=$n key-size=16 val-size=256 sequential"
    if [ -f "$dir.stamp" ] && [ "$(cat "$dir.stamp")" = "$stamp" ] &&
        { [ "$REUSE" = 1 ] || [ "$REUSE" = "$kind" ]; }; then
        log "$kind: reusing $dir"
        return 0
    fi
    rm -rf "$dir" "$dir.stamp"
    cp=$(port)
    if [ "$kind" = cetcd ]; then argv cetcd "$dir" "$cp" --unsafe-no-fsync; else argv etcd "$dir" "$cp"; fi
    "${ARGV[@]}" >>"$W/fill-$kind.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 600); do
        ctl "127.0.0.1:$cp" endpoint health >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || die "$kind did not start (see $W/fill-$kind.log)"
        sleep 0.05
    done
    t0=$(now)
    "$BENCHMARK" --endpoints "127.0.0.1:$cp" --conns 8 --clients 64 put --total "$n" --key-size 16 --val-size 256 \
        --sequential-keys --key-space-size "$n" >"$W/fill-$kind.txt" 2>&1 ||
        die "$kind: fill failed: $(tail -3 "$W/fill-$kind.txt")"
    log "$kind: filled $n keys in $(since "$t0") s"
    since "$t0" >"$dir.filltime"
    kill "$pid"
    wait "$pid"
    echo "$stamp" >"$dir.stamp"
}

# probe KIND DIR MIN_BYTES: one start → ready → RSS → SIGTERM, as a JSON line on stdout
probe() {
    local cp
    cp=$(port)
    argv "$1" "$2" "$cp"
    /usr/bin/python3 "$BENCH_DIR/recovery_probe.py" "$cp" "$KEY0" "$3" "$W/$1.log" -- "${ARGV[@]}"
}

# measure N: idle on an empty dir and restart on the filled dir, $ROUNDS times each, alternating the order
measure() {
    local n=$1 r kind order line
    for r in $(seq 1 "$ROUNDS"); do
        order="cetcd etcd"
        [ $((r % 2)) -eq 0 ] && order="etcd cetcd"
        for kind in $order; do
            rm -rf "$W/empty-$kind"
            line=$(probe "$kind" "$W/empty-$kind" 1) || die "$kind: idle start failed"
            echo "$line" >>"$W/res/$kind-$n-idle"
            line=$(probe "$kind" "$STORE/$kind-$n" 256) || die "$kind: restart on $n keys failed"
            echo "$line" >>"$W/res/$kind-$n-full"
            log "$kind $n keys, round $r: $line"
        done
    done
    for kind in cetcd etcd; do
        du -sb "$STORE/$kind-$n" | cut -f1 >"$W/res/$kind-$n-du"
        cp "$STORE/$kind-$n.filltime" "$W/res/$kind-$n-fill" 2>/dev/null || echo "?" >"$W/res/$kind-$n-fill"
    done
}

mkdir -p "$W/res"
for n in "${SIZES[@]}"; do
    fill etcd "$n"
    fill cetcd "$n"
    measure "$n"
done

{
    echo "<!-- recovery bench (bench/recovery_bench.sh): this section is rewritten by that script only -->"
    echo "## Restart time and memory per key (make bench-recovery)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), git commit $(git -C "$REPO_DIR" rev-parse --short HEAD), $(nproc) cores,"
    echo "  load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared: compare only within a run)"
    echo "- $("$REF" --version | head -1); cetcd ${CETCD#"$REPO_DIR"/} (sha256 $(sha256sum "$CETCD" | cut -c1-12), built"
    echo "  $(date -u -r "$CETCD" '+%Y-%m-%d %H:%M UTC')$(git -C "$REPO_DIR" diff --quiet HEAD -- src storage ||
        echo '; the working tree has uncommitted changes in src or storage'))"
    echo "- data: \`benchmark put --total=N --key-size=16 --val-size=256 --sequential-keys --key-space-size=N --conns=8"
    echo "  --clients=64\` into a fresh server of each kind (etcd with its defaults, fsync on; cetcd with --unsafe-no-fsync for"
    echo "  a faster fill only: the files it leaves are the same), stopped with SIGTERM; each kind then restarted on its"
    echo "  dir $ROUNDS times, the order of the servers alternating, fsync on, page cache warm (nothing dropped); both"
    echo "  with --quota-backend-bytes $QUOTA (10M keys of 256 bytes pass the 2 GiB default)"
    echo "- times from the fork of the server: 'listening' is the first accepted TCP connect (etcd opens its client"
    echo "  listener before it recovers, so for etcd this says little), 'ready' the first answered serializable Range of"
    echo "  key 0 with its 256-byte value, sent by bench/recovery_probe.py, a raw HTTP/2 client polling every 1–2 ms"
    echo "  (no client start-up in the measure; its own round trip on the ready server is the 'probe' row)"
    echo "- RSS is VmRSS right when ready and 1 s later (it counts the pages of mapped files read, etcd's bbolt file"
    echo "  among them; the 'anonymous' row is RssAnon, the heap alone); per key = (RSS when ready − the same server's"
    echo "  median RSS when ready on an empty dir) / N; medians with min–max over the rounds"
    echo
    /usr/bin/python3 - "$W/res" "${SIZES[@]}" <<'EOF'
import json, statistics, sys
d, sizes = sys.argv[1], [int(x) for x in sys.argv[2:]]
def load(name):
    return [json.loads(l) for l in open("%s/%s" % (d, name)) if l.strip()]
def one(name):
    return open("%s/%s" % (d, name)).read().strip()
def f(x):
    return "%.0f" % x if x >= 100 else "%.1f" % x if x >= 10 else "%.2f" % x if x >= 0.1 else "%.3f" % x
def cell(v):
    return f(v[0]) if len(v) == 1 else "%s (%s–%s)" % (f(statistics.median(v)), f(min(v)), f(max(v)))
def ratio(c, e):
    c, e = statistics.median(c), statistics.median(e)
    return "%.2f" % (e / c) if c else "–"
print("| | cetcd | etcd | etcd / cetcd |")
print("|---|---|---|---|")
def row(name, c, e):
    print("| %s | %s | %s | %s |" % (name, cell(c), cell(e), ratio(c, e)))
idle = {k: load("%s-%d-idle" % (k, sizes[0])) for k in ("cetcd", "etcd")}
for n in sizes:
    full = {k: load("%s-%d-full" % (k, n)) for k in ("cetcd", "etcd")}
    idle_med = {k: statistics.median(x["rss_ready_kib"] for x in idle[k]) for k in idle}
    col = lambda k, f: [f(x) for x in full[k]]
    for label, fn in (("exec → listening, s", lambda x: x["listen_s"]),
                      ("exec → first Range answered, s", lambda x: x["ready_s"]),
                      ("RSS when ready, MiB", lambda x: x["rss_ready_kib"] / 1024),
                      ("RSS 1 s later, MiB", lambda x: x["rss_settled_kib"] / 1024),
                      ("of the RSS when ready, anonymous (not file-mapped), MiB", lambda x: x["anon_ready_kib"] / 1024)):
        row("%s keys: %s" % (format(n, ","), label), col("cetcd", fn), col("etcd", fn))
    row("%s keys: RSS per key over idle, B" % format(n, ","),
        [(x["rss_ready_kib"] - idle_med["cetcd"]) * 1024 / n for x in full["cetcd"]],
        [(x["rss_ready_kib"] - idle_med["etcd"]) * 1024 / n for x in full["etcd"]])
    row("%s keys: SIGTERM → exit, s" % format(n, ","), col("cetcd", lambda x: x["stop_s"]),
        col("etcd", lambda x: x["stop_s"]))
    row("%s keys: data dir, MB" % format(n, ","), [int(one("cetcd-%d-du" % n)) / 1e6],
        [int(one("etcd-%d-du" % n)) / 1e6])
    fills = [one("%s-%d-fill" % (k, n)) for k in ("cetcd", "etcd")]
    print("| %s keys: fill, s (cetcd without fsync; from an earlier run if reused) | %s | %s | |" % (
        format(n, ","), fills[0], fills[1]))
for label, fn in (("empty dir: exec → first Range answered, s", lambda x: x["ready_s"]),
                  ("empty dir: idle RSS when ready, MiB", lambda x: x["rss_ready_kib"] / 1024),
                  ("empty dir: idle RSS 1 s later, MiB", lambda x: x["rss_settled_kib"] / 1024),
                  ("probe: one Range on the ready server, ms", lambda x: x["probe_s"] * 1000)):
    row(label, [fn(x) for x in idle["cetcd"]], [fn(x) for x in idle["etcd"]])
print()
idle_rss = statistics.median(x["rss_ready_kib"] for x in idle["cetcd"])
for n in sizes:
    full = load("cetcd-%d-full" % n)
    ready = statistics.median(x["ready_s"] for x in full)
    per_key = statistics.median((x["rss_ready_kib"] - idle_rss) * 1024 / n for x in full)
    print("- issue 16 targets for cetcd at %s keys: ready in %.2f s (target %.1f s); %.0f B of RSS per key (target "
          "116 B with 16-byte keys)" % (format(n, ","), ready, 0.5 * n / 1e6, per_key))
print("- idle RSS of cetcd on an empty dir: %.1f MiB (target 2.5 MiB)" % (idle_rss / 1024))
EOF
    echo "<!-- end recovery bench -->"
} >"$W/section.md"
cat "$W/section.md"
write_section recovery "$W/section.md"
log "wrote the recovery section of $RESULTS"
