#!/bin/bash
# roll_loop_turns.sh: shows what the log's segment rolls cost the event loop (issue 16, item 5): puts
# of 100 KB values, so that a 64 MiB segment rolls every ~650 puts, against a fresh server, then its
# cetcd_loop_turn_longest_seconds and the loop-turn histogram (turns counted per bucket, not cumulative).
# Usage: [CLIENTS=16 CONNS=4] scripts/roll_loop_turns.sh [path/to/cetcd] [puts]   (default build/cetcd,
# 6000 puts: ~9 rolls)
# Needs etcd's benchmark tool (BENCHMARK, default ~/.cache/cetcd-bench/benchmark; bench/build-benchmark.sh).
set -eu
BIN=${1:-build/cetcd}
PUTS=${2:-6000}
BENCHMARK=${BENCHMARK:-$HOME/.cache/cetcd-bench/benchmark}
[ -x "$BIN" ] && [ -x "$BENCHMARK" ] || { echo "usage: $0 path/to/cetcd [puts]; needs $BENCHMARK" >&2; exit 2; }

TMP=$(mktemp -d /tmp/roll-turns.XXXXXX)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
EP=127.0.0.1:$PORT
"$BIN" --data-dir "$TMP/data" --listen-client-urls "http://$EP" --advertise-client-urls "http://$EP" \
    --quota-backend-bytes 8589934592 >"$TMP/cetcd.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do curl -sf "http://$EP/health" >/dev/null && break; sleep 0.05; done

"$BENCHMARK" --endpoints "$EP" --conns "${CONNS:-4}" --clients "${CLIENTS:-16}" put --total "$PUTS" --val-size 100000 \
    --key-space-size "$PUTS" --sequential-keys >"$TMP/bench.out" 2>&1
curl -s "http://$EP/metrics" >"$TMP/metrics"
echo "puts: $PUTS of 100000 B; segment files: $(ls "$TMP/data" | grep -c '\.log$')"
grep -E '^ *(Requests/sec|Slowest|Average):' "$TMP/bench.out" | sed 's/^ */bench /'
awk '$1 == "cetcd_loop_turn_longest_seconds" {printf "longest loop turn: %.2f ms\n", $2 * 1000}' "$TMP/metrics"
awk 'index($1, "cetcd_loop_turn_duration_seconds_bucket{") == 1 {
        le = $1; sub(/.*le="/, "", le); sub(/"}/, "", le)
        printf "turns <= %-8s %d\n", le, $2 - prev; prev = $2 }' "$TMP/metrics"
