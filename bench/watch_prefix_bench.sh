#!/bin/bash
# watch_prefix_bench.sh: events/s to 10,000 prefix watchers on distinct prefixes (issue 16), for cetcd,
# optionally an older cetcd binary (CETCD_BEFORE, e.g. one built before a change) and Debian's etcd,
# in the same run, alternating the order of servers from round to round. Two workloads: Txns of 50
# puts (the index's cost dominates) and single puts from 64 writers (the commit path's does). Prints
# one line per run, then medians and ratios; with WB_RESULTS=bench/RESULTS.md also writes that table
# into the file between its own markers. Not part of make bench (a targeted check):
#   CETCD_BIN=build/cetcd CETCD_BEFORE=/tmp/old-cetcd bench/watch_prefix_bench.sh
# Knobs: ROUNDS (3), WB_ARGS (extra watchbench flags for both workloads, e.g. "-prefixes 2000"),
# CETCD_LABEL and BEFORE_LABEL (how the table names the two cetcd binaries).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../tests/lib.sh
. "$ROOT/tests/lib.sh"
CETCD_BIN=${CETCD_BIN:-$ROOT/build/cetcd}
ROUNDS=${ROUNDS:-3}
WB_ARGS=${WB_ARGS:-}
WB_RESULTS=${WB_RESULTS:-}
export WB_ARGS CETCD_LABEL=${CETCD_LABEL:-cetcd} BEFORE_LABEL=${BEFORE_LABEL:-cetcd before (CETCD_BEFORE)}

WB=$T_TMP/watchbench
(cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$WB" ./bench/watchbench) ||
    { echo "watchbench does not build"; exit 1; }

SERVERS="cetcd etcd"
[ -n "${CETCD_BEFORE:-}" ] && SERVERS="before $SERVERS"
declare -A MODE_ARGS=([txn50]="-ops 50 -txns 1000 -writers 8" [put]="-ops 1 -txns 4000 -writers 64")

# run_one MODE NAME: a fresh server, the driver against it, the server stopped; prints the driver's line
run_one() {
    local mode=$1 name=$2 ep pid line
    case $name in
    etcd) start_etcd || return 1; ep=$ETCD_EP pid=$ETCD_PID ;;
    before) CETCD_DIR= CETCD_BIN=$CETCD_BEFORE start_cetcd || return 1; ep=$CETCD_EP pid=$CETCD_PID ;;
    *) CETCD_DIR= start_cetcd || return 1; ep=$CETCD_EP pid=$CETCD_PID ;;
    esac
    # shellcheck disable=SC2086
    line=$("$WB" -endpoint "$ep" -pid "$pid" ${MODE_ARGS[$mode]} $WB_ARGS 2>&1 | tail -1)
    case $name in etcd) stop_etcd ;; *) stop_cetcd ;; esac
    echo "$mode $name $line"
}

RES=$T_TMP/results
: >"$RES"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s)
for mode in txn50 put; do
    for r in $(seq 1 "$ROUNDS"); do
        order=$SERVERS
        [ $((r % 2)) -eq 0 ] && order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
        for s in $order; do
            run_one "$mode" "$s" | tee -a "$RES"
        done
    done
done

python3 - "$RES" "$SERVERS" "$ROUNDS" "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(($(date +%s) - T0))" \
    "$WB_RESULTS" <<'EOF'
import datetime, os, re, statistics, sys
res, servers, rounds, load0, load1, secs, out = sys.argv[1:8]
servers = servers.split()
rows = {}
for line in open(res):
    mode, name, rest = (line.split(" ", 2) + ["", ""])[:3]
    kv = dict(re.findall(r"(\w+)=([-0-9.]+)", rest))
    if "events_per_sec" in kv:
        rows.setdefault((mode, name), []).append((float(kv["events_per_sec"]), float(kv["cpu_us_per_event"])))
label = {"txn50": "Txns of 50 puts, 8 writers", "put": "single puts, 64 writers"}
names = {"before": os.environ["BEFORE_LABEL"], "cetcd": os.environ["CETCD_LABEL"], "etcd": "etcd 3.4.23"}
lines = ["| workload | server | events/s, median (min-max) | server CPU per event | events/s vs etcd |",
         "|---|---|---|---|---|"]
for mode in ("txn50", "put"):
    med = {s: statistics.median(v[0] for v in rows[(mode, s)]) for s in servers if (mode, s) in rows}
    for s in servers:
        v = rows.get((mode, s))
        if not v:
            lines.append("| %s | %s | failed | | |" % (label[mode], names[s]))
            continue
        eps = [x[0] for x in v]
        ratio = "%.2fx" % (med[s] / med["etcd"]) if "etcd" in med else ""
        lines.append("| %s | %s | %.0f (%.0f-%.0f) | %.1f µs | %s |" % (
            label[mode], names[s], med[s], min(eps), max(eps), statistics.median(x[1] for x in v), ratio))
table = "\n".join(lines)
print("\n" + table)
if not out:
    sys.exit(0)
begin = "<!-- watch-prefix:begin (written by bench/watch_prefix_bench.sh) -->"
end = "<!-- watch-prefix:end -->"
section = "\n".join([
    begin,
    "### Watch: 10,000 prefix watchers on distinct prefixes (bench/watch_prefix_bench.sh)",
    "",
    "10,000 watchers, one per prefix `/wb/NNNNN/`, over 100 gRPC watch streams on 10 connections; every "
    "put is under one random prefix, so each event matches exactly one watcher. Events/s is from the "
    "first write to the last event received; server CPU from /proc over the same span. A fresh server "
    "per run, %s rounds alternating the order, fsync on. Run on %s in %s s on 2 shared cores, "
    "load average %s at the start, %s at the end.%s"
    % (rounds, datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), secs,
       load0, load1, (" Extra driver flags: `%s`." % os.environ["WB_ARGS"]) if os.environ.get("WB_ARGS") else ""),
    "",
    table,
    end])
try:
    text = open(out).read()
except FileNotFoundError:
    text = ""
i, j = text.find(begin), text.find(end)
if i >= 0 and j > i:
    text = text[:i] + section + text[j + len(end):]
else:
    text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
open(out, "w").write(text)
print("wrote " + out)
EOF
t_cleanup 2>/dev/null
exit 0
