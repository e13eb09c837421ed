#!/bin/bash
# watch_prefix_bench.sh: events/s to 10,000 prefix watchers on distinct prefixes (issue 16), for cetcd,
# optionally an older cetcd binary (CETCD_BEFORE, e.g. one built before a change) and Debian's etcd,
# in the same run, alternating the order of servers from round to round. Prints one line per server
# and round, then the medians and the ratios. Not part of make bench (it is a targeted check):
#   CETCD_BIN=build/cetcd CETCD_BEFORE=/tmp/old-cetcd bench/watch_prefix_bench.sh
# Knobs: ROUNDS (3), WB_ARGS (extra watchbench flags, e.g. "-txns 200 -ops 50").
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../tests/lib.sh
. "$ROOT/tests/lib.sh"
CETCD_BIN=${CETCD_BIN:-$ROOT/build/cetcd}
ROUNDS=${ROUNDS:-3}
WB_ARGS=${WB_ARGS:-}

WB=$T_TMP/watchbench
(cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$WB" ./bench/watchbench) ||
    { echo "watchbench does not build"; exit 1; }

SERVERS="cetcd etcd"
[ -n "${CETCD_BEFORE:-}" ] && SERVERS="before $SERVERS"

# run_one NAME: a fresh server, the driver against it, the server stopped; prints the driver's line
run_one() {
    local name=$1 ep pid line
    case $name in
    etcd) start_etcd || return 1; ep=$ETCD_EP pid=$ETCD_PID ;;
    before) CETCD_DIR= CETCD_BIN=$CETCD_BEFORE start_cetcd || return 1; ep=$CETCD_EP pid=$CETCD_PID ;;
    *) CETCD_DIR= start_cetcd || return 1; ep=$CETCD_EP pid=$CETCD_PID ;;
    esac
    # shellcheck disable=SC2086
    line=$("$WB" -endpoint "$ep" -pid "$pid" $WB_ARGS 2>&1 | tail -1)
    case $name in etcd) stop_etcd ;; *) stop_cetcd ;; esac
    echo "$name $line"
}

RES=$T_TMP/results
: >"$RES"
for r in $(seq 1 "$ROUNDS"); do
    order=$SERVERS
    [ $((r % 2)) -eq 0 ] && order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
    for s in $order; do
        run_one "$s" | tee -a "$RES"
    done
done

python3 - "$RES" "$SERVERS" <<'EOF'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, _, rest = line.partition(" ")
    kv = dict(re.findall(r"(\w+)=([-0-9.]+)", rest))
    if "events_per_sec" in kv:
        rows.setdefault(name, []).append((float(kv["events_per_sec"]), float(kv["cpu_us_per_event"])))
servers = sys.argv[2].split()
med = {s: (statistics.median(v[0] for v in rows[s]), statistics.median(v[1] for v in rows[s]))
       for s in servers if s in rows}
print("\n| server | events/s median (min-max) | server CPU µs per event | events/s vs etcd |")
print("|---|---|---|---|")
for s in servers:
    if s not in med:
        print("| %s | failed | | |" % s)
        continue
    eps = [v[0] for v in rows[s]]
    ratio = "%.2fx" % (med[s][0] / med["etcd"][0]) if "etcd" in med else ""
    print("| %s | %.0f (%.0f-%.0f) | %.2f | %s |" % (s, med[s][0], min(eps), max(eps), med[s][1], ratio))
if "before" in med and "cetcd" in med:
    print("\ncetcd / before: %.2fx events/s, %.2fx less CPU per event"
          % (med["cetcd"][0] / med["before"][0], med["before"][1] / med["cetcd"][1]))
EOF
t_cleanup 2>/dev/null
exit 0
