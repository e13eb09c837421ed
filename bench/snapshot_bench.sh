#!/usr/bin/env bash
# snapshot_bench.sh: snapshot save and restore of a large store (1M keys by default), cetcd against
# etcd, on the same machine in the same run (issue 14): time, peak RSS of the server during the save and
# of the restore, file sizes, and how long a read waits on cetcd while a snapshot streams. Writes its
# section of bench/RESULTS.md between its own markers, leaving the rest of the file as it is.
#   BENCH_SNAP_KEYS (1000000), BENCH_SNAP_VAL (100 bytes), BENCH_RESULTS (bench/RESULTS.md)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

N=${BENCH_SNAP_KEYS:-1000000}
VAL=${BENCH_SNAP_VAL:-100}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/RESULTS.md}
side_by_side_setup snapbench "${BENCH_DATA_DIR:-$CACHE_DIR}" # a million keys: not in /tmp

ctl() { local ep=$1; shift; ETCDCTL_API=3 etcdctl --endpoints "$ep" --command-timeout=600s "$@"; }
healthy() { # EP PID: waits until etcdctl endpoint health passes
    local i
    for i in $(seq 1 600); do
        ctl "$1" endpoint health >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
secs() { awk -v s="$1" 'BEGIN {printf "%.2f s", s}'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {print b - a}'; }

# start KIND DIR: sets SRV_PID, SRV_EP
start() {
    local cp pp
    cp=$(port); pp=$(port)
    SRV_EP=127.0.0.1:$cp
    if [ "$1" = cetcd ]; then
        "$CETCD" --data-dir "$2" --listen-client-urls "http://$SRV_EP" --advertise-client-urls "http://$SRV_EP" \
            >>"$W/cetcd.log" 2>&1 &
    else
        "$REF" --name "${3:-b}" --data-dir "$2" --listen-client-urls "http://$SRV_EP" --advertise-client-urls "http://$SRV_EP" \
            --listen-peer-urls "http://127.0.0.1:${4:-$pp}" --initial-advertise-peer-urls "http://127.0.0.1:${4:-$pp}" \
            --initial-cluster "${3:-b}=http://127.0.0.1:${4:-$pp}" >>"$W/etcd.log" 2>&1 &
    fi
    SRV_PID=$!
    PIDS+=("$SRV_PID")
}

# probe EP SECONDS OUT: ranges through the JSON gateway on one keep-alive connection; writes p50, p99, max ms
probe() {
    /usr/bin/python3 - "$@" <<'EOF' &
import http.client, json, sys, time
host, port = sys.argv[1].split(":")
c = http.client.HTTPConnection(host, int(port))
body = json.dumps({"key": "a2V5"})  # "key"
lat, end = [], time.time() + float(sys.argv[2])
while time.time() < end:
    t = time.time()
    c.request("POST", "/v3/kv/range", body, {"Content-Type": "application/json"})
    c.getresponse().read()
    lat.append((time.time() - t) * 1000)
    time.sleep(0.002)
lat.sort()
open(sys.argv[3], "w").write("%.2f %.2f %.2f %d" % (lat[len(lat) // 2], lat[int(len(lat) * .99)], lat[-1], len(lat)))
EOF
    PROBE_PID=$!
}

declare -A R
for kind in cetcd etcd; do
    log "$kind: loading $N keys of $VAL bytes"
    start "$kind" "$W/src-$kind"
    healthy "$SRV_EP" "$SRV_PID" || die "$kind did not start"
    t0=$(now)
    "$BENCHMARK" --endpoints "$SRV_EP" --clients 64 --conns 8 put --total "$N" --key-space-size "$N" \
        --sequential-keys --key-size 16 --val-size "$VAL" >"$W/$kind-load.log" 2>&1 || die "$kind: load failed"
    R[$kind,load]=$(elapsed "$t0")
    R[$kind,rss_loaded]=$(rss_kib "$SRV_PID")
    echo 5 >"/proc/$SRV_PID/clear_refs" # peak RSS from here on: the save's
    [ "$kind" = cetcd ] && probe "$SRV_EP" 3 "$W/idle.probe" && wait "$PROBE_PID"
    t0=$(now)
    ctl "$SRV_EP" snapshot save "$W/$kind.db" >"$W/$kind-save.log" 2>&1 || die "$kind: snapshot save failed"
    R[$kind,save]=$(elapsed "$t0")
    R[$kind,save_hwm]=$(hwm_kib "$SRV_PID")
    R[$kind,size]=$(stat -c %s "$W/$kind.db")
    R[$kind,srcdisk]=$(du -sk "$W/src-$kind" | cut -f1)
    stop "$SRV_PID"
    ETCDCTL_API=3 etcdctl snapshot status "$W/$kind.db" -w json >"$W/$kind.status" 2>/dev/null
done
# reads on cetcd while it streams a snapshot, for as long as the save took above
log "cetcd: reads during a save"
start cetcd "$W/src-cetcd"
healthy "$SRV_EP" "$SRV_PID" || die "cetcd did not restart"
probe "$SRV_EP" "$(awk -v s="${R[cetcd,save]}" 'BEGIN {printf "%.1f", s}')" "$W/save.probe"
ctl "$SRV_EP" snapshot save "$W/again.db" >/dev/null 2>&1
wait "$PROBE_PID"
stop "$SRV_PID"

# restore: each tool's own snapshot with its own restore, then the crossings; then start and count
restore() { # NAME SNAPSHOT KIND(cetcd|etcd) DIR
    local t0
    t0=$(now)
    if [ "$3" = cetcd ]; then
        /usr/bin/time -f "%M" -o "$W/$1.time" "$CETCD" --restore "$2" --data-dir "$4" >"$W/$1.log" 2>&1
    else
        local pp
        pp=$(port)
        /usr/bin/time -f "%M" -o "$W/$1.time" env ETCDCTL_API=3 etcdctl snapshot restore "$2" --name b \
            --data-dir "$4" --initial-cluster "b=http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
            >"$W/$1.log" 2>&1
        echo "$pp" >"$4.peer"
    fi
    local rc=$?
    R[$1,restore]=$(elapsed "$t0")
    R[$1,restore_rss]=$(tail -1 "$W/$1.time")
    [ $rc -eq 0 ] || { R[$1,restore]=failed; return; }
    t0=$(now)
    if [ "$3" = cetcd ]; then start cetcd "$4"; else start etcd "$4" b "$(cat "$4.peer")"; fi
    healthy "$SRV_EP" "$SRV_PID" || { R[$1,start]=failed; return; }
    R[$1,start]=$(elapsed "$t0")
    R[$1,count]=$(ctl "$SRV_EP" get "" --prefix --keys-only --limit 1 -w json | sed -E 's/.*"count":([0-9]+).*/\1/')
    R[$1,rss]=$(rss_kib "$SRV_PID")
    stop "$SRV_PID"
}
log "restores"
restore cc "$W/cetcd.db" cetcd "$W/r-cc"
restore ee "$W/etcd.db" etcd "$W/r-ee"
restore ec "$W/etcd.db" cetcd "$W/r-ec"
restore ce "$W/cetcd.db" etcd "$W/r-ce"

read -r ip50 ip99 imax icount <"$W/idle.probe"
read -r sp50 sp99 smax scount <"$W/save.probe"
{
    echo "<!-- snapshot bench (bench/snapshot_bench.sh): this section is rewritten by that script only -->"
    echo "## Snapshot save and restore, $N keys"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), git commit $(git -C "$REPO_DIR" rev-parse --short HEAD), $(nproc) cores,"
    echo "  load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared: compare only within a run)"
    echo "- data: $N keys of 16 bytes with $VAL-byte values, one put each (benchmark put --sequential-keys, 64 clients),"
    echo "  fsync on; both snapshots are etcd's format (a bbolt file and its sha256), so every restore below is valid"
    echo
    echo "| step | cetcd | etcd |"
    echo "|---|---|---|"
    echo "| load $N puts | $(secs "${R[cetcd,load]}") | $(secs "${R[etcd,load]}") |"
    echo "| server RSS after the load | $(mib "${R[cetcd,rss_loaded]}") | $(mib "${R[etcd,rss_loaded]}") |"
    echo "| data dir after the load | $(mib "${R[cetcd,srcdisk]}") | $(mib "${R[etcd,srcdisk]}") |"
    echo "| \`etcdctl snapshot save\` (wall) | $(secs "${R[cetcd,save]}") | $(secs "${R[etcd,save]}") |"
    echo "| server peak RSS during the save | $(mib "${R[cetcd,save_hwm]}") | $(mib "${R[etcd,save_hwm]}") |"
    echo "| snapshot file | $(mib $((R[cetcd,size] / 1024))) | $(mib $((R[etcd,size] / 1024))) |"
    echo "| restore of its own snapshot (\`cetcd --restore\` / \`etcdctl snapshot restore\`) | $(secs "${R[cc,restore]}") | $(secs "${R[ee,restore]}") |"
    echo "| peak RSS of that restore | $(mib "${R[cc,restore_rss]}") | $(mib "${R[ee,restore_rss]}") |"
    echo "| start on the restored dir to healthy | $(secs "${R[cc,start]}") | $(secs "${R[ee,start]}") |"
    echo "| keys served after it / RSS | ${R[cc,count]} / $(mib "${R[cc,rss]}") | ${R[ee,count]} / $(mib "${R[ee,rss]}") |"
    echo "| restore of the other's snapshot (etcd's into cetcd / cetcd's into etcd) | $(secs "${R[ec,restore]}") | $(secs "${R[ce,restore]}") |"
    echo "| peak RSS of that restore | $(mib "${R[ec,restore_rss]}") | $(mib "${R[ce,restore_rss]}") |"
    echo "| keys served after it | ${R[ec,count]} | ${R[ce,count]} |"
    echo
    echo "A range through cetcd's JSON gateway every 2 ms on one connection: p50 / p99 / max ${ip50} / ${ip99} / ${imax} ms"
    echo "idle, ${sp50} / ${sp99} / ${smax} ms while a snapshot streams ($scount ranges): the save runs in slices from the"
    echo "loop (a counting pass, then pages as the client drains them), so reads go on."
    echo "<!-- end snapshot bench -->"
} >"$W/section.md"
cat "$W/section.md"
write_section snapshot "$W/section.md"
log "wrote the snapshot section of $RESULTS"
