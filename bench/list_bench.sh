#!/usr/bin/env bash
# list_bench.sh: large prefix Ranges (issue 16, "large ranges"), cetcd against Debian's etcd in the same run, timed
# with the real Go clientv3 (bench/listbench): one Range of a whole prefix and pages pinned to one revision, as
# kube-apiserver lists. Writes its section of bench/RESULTS.md between its own markers (make bench-list).
#   BENCH_LIST_KEYS ("20000 100000": one prefix of each size, both in each server), BENCH_LIST_VAL (1024),
#   BENCH_LIST_ROUNDS (3), BENCH_LIST_REPS (3 lists per row and round), BENCH_LIST_ROWS (see listbench -rows),
#   CETCD_BIN (build/cetcd), BENCH_RESULTS (bench/RESULTS.md), BENCH_DATA_DIR (/tmp)
set -uo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SIZES=${BENCH_LIST_KEYS:-20000 100000}
VAL=${BENCH_LIST_VAL:-1024}
ROUNDS=${BENCH_LIST_ROUNDS:-3}
REPS=${BENCH_LIST_REPS:-3}
ROWS=${BENCH_LIST_ROWS:-full-s,full-l,pages-s,pages-l,raw-s}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/RESULTS.md}
side_by_side_setup listbench

LB=$W/listbench
(cd "$REPO_DIR" && GO111MODULE=off GOFLAGS="" GOPATH=/usr/share/gocode GOCACHE="$CACHE_DIR/gocache" \
    go build -o "$LB" ./bench/listbench) || die "bench/listbench does not build"

ctl() { local ep=$1; shift; ETCDCTL_API=3 etcdctl --endpoints "$ep" --dial-timeout=2s "$@"; }

# start KIND: one fresh server (fsync on, ephemeral ports); sets PID_<KIND> and EP_<KIND>. cetcd's reply limit is
# raised to etcd's (its default, 64 MiB, refuses an unpaged list of 100k x 1 KiB with RESOURCE_EXHAUSTED).
CETCD_EXTRA=(--max-reply-bytes 2147483647 --max-reply-pool-bytes 4294967296)
start() {
    launch_server "$1" "$W/data-$1" || return 1
    printf -v "PID_$1" %s "$LAUNCHED_PID"
    printf -v "EP_$1" %s "$LAUNCHED_EP"
}

mkdir -p "$W/res"
for kind in cetcd etcd; do
    start "$kind" || die "$kind did not start (see $W/$kind.log)"
    ep_var=EP_$kind
    for n in $SIZES; do
        t0=$(date +%s.%N)
        "$LB" -endpoint "${!ep_var}" -load -prefix "/l$n/" -keys "$n" -val-size "$VAL" || die "$kind: load failed"
        log "$kind: loaded $n keys x $VAL bytes in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
    done
done

# each line of res/KIND: size row wall_median wall_min wall_max server_cpu_ms reply_MB client_cpu_ms
for r in $(seq 1 "$ROUNDS"); do
    order="cetcd etcd"
    [ $((r % 2)) -eq 0 ] && order="etcd cetcd"
    for n in $SIZES; do
        for kind in $order; do
            ep_var=EP_$kind pid_var=PID_$kind
            "$LB" -endpoint "${!ep_var}" -pid "${!pid_var}" -prefix "/l$n/" -keys "$n" -reps "$REPS" -rows "$ROWS" \
                >"$W/out.txt" || die "$kind: list of $n failed"
            sed "s/^/$n /" "$W/out.txt" >>"$W/res/$kind"
            log "round $r, $kind, $n keys: $(tr '\n' ';' <"$W/out.txt")"
        done
    done
done
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

{
    echo "<!-- list bench (bench/list_bench.sh): this section is rewritten by that script only -->"
    echo "## Large prefix ranges (make bench-list)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), git commit $(git -C "$REPO_DIR" rev-parse --short HEAD), $(nproc) cores,"
    echo "  load average at the end $LOAD (the machine may be shared: compare only within a run)"
    echo "- $("$REF" --version | head -1); cetcd ${CETCD#"$REPO_DIR"/}$(git -C "$REPO_DIR" diff --quiet HEAD -- src storage ||
        echo ' (built from a working tree with uncommitted changes)'), with --max-reply-bytes raised to etcd's"
    echo "  gRPC send limit (2 GiB - 1; its default 64 MiB refuses the unpaged 100k list); both with fsync on"
    echo "- method: each server holds one prefix per size (${SIZES// / and } keys of $VAL-byte values, written in Txns of 100"
    echo "  puts), and the Go program bench/listbench (Debian's clientv3) lists it: **full** is one Range of the whole"
    echo "  prefix (\`Get(prefix, WithPrefix())\`), **pages** are Ranges of limit 500, every page after the first at"
    echo "  the first page's revision and starting after the last key seen (as kube-apiserver pages a list);"
    echo "  -s serializable, -l linearizable; **raw** is the full serializable Range over the same gRPC connection"
    echo "  with a codec that takes the reply's bytes undecoded, so full-s minus raw-s is the Go client's decode."
    echo "  Each row: one warm-up list, then $REPS lists, their median; $ROUNDS rounds, the servers' order alternating;"
    echo "  the table gives the median of the rounds (min–max), the server's CPU (utime+stime from /proc, 10 ms ticks)"
    echo "  per list, and etcd/cetcd (above 1: cetcd is faster); the last column is the Go client's own CPU per list"
    echo
    /usr/bin/python3 - "$W/res" "$SIZES" "$ROWS" <<'EOF'
import statistics, sys
d, sizes, rows = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(",")
res = {}
for kind in ("cetcd", "etcd"):
    for l in open("%s/%s" % (d, kind)):
        f = l.split()
        if len(f) == 8:
            res.setdefault((kind, f[0], f[1]), []).append([float(x) for x in f[2:]])
def med(v):
    return statistics.median(v)
def cell(v):
    return "%.0f" % med(v) if len(v) == 1 else "%.0f (%.0f–%.0f)" % (med(v), min(v), max(v))
print("| keys × value | list | reply MB | cetcd ms | etcd ms | etcd/cetcd | cetcd CPU ms | etcd CPU ms | etcd/cetcd CPU "
      "| client CPU ms (cetcd, etcd) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for n in sizes:
    for row in rows:
        c, e = res.get(("cetcd", n, row)), res.get(("etcd", n, row))
        if not c or not e:
            continue
        cw, ew = [x[0] for x in c], [x[0] for x in e]
        cc, ec = med([x[3] for x in c]), med([x[3] for x in e])
        print("| %s × 1 KiB | %s | %.1f | %s | %s | %.2f | %.0f | %.0f | %s | %.0f, %.0f |" % (
            n, row, c[0][4], cell(cw), cell(ew), med(ew) / med(cw), cc, ec,
            "%.2f" % (ec / cc) if cc > 0 else "–", med([x[5] for x in c]), med([x[5] for x in e])))
EOF
    echo
    echo "Wall time is the client's: the server's work, the transfer and (except raw) the Go client's decode, which"
    echo "costs the same whichever server answered; the server CPU columns are the server's alone. Compare the two"
    echo "servers within this run only."
    echo "<!-- end list bench -->"
} >"$W/section.md"
cat "$W/section.md"
write_section list "$W/section.md"
log "wrote the list section of $RESULTS"
