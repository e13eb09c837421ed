#!/usr/bin/env bash
# run.sh: `make bench` entry point. Installs etcd (server+client) if missing, builds etcd's
# benchmark tool and the physical-limits probe into the cache dir, then runs bench/bench.py,
# which benchmarks build/cetcd against etcd side by side and regenerates bench/RESULTS.md.
#
# Environment: BENCH_QUICK=1 (smoke run: 1 run, small totals, result in the cache dir),
# BENCH_RUNS (default 3), BENCH_ETCDCTL_N (default 1000), BENCH_ETCDCTL_RUNS (default 1),
# BENCH_ONLY=put,range (substring filter on workload names), BENCH_DATA_DIR, BENCH_RESULTS,
# CETCD_BIN (default build/cetcd; CETCD_BIN=/usr/bin/etcd gives an etcd-vs-etcd dry run).
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

apt_install etcd-server etcd-client gcc libc6-dev python3 procps binutils
"$BENCH_DIR/build-benchmark.sh" >/dev/null

PHYS="$CACHE_DIR/physlimits"
if [ ! -x "$PHYS" ] || [ "$BENCH_DIR/physlimits.c" -nt "$PHYS" ]; then
    gcc -O2 -Wall -Wextra -o "$PHYS" "$BENCH_DIR/physlimits.c"
fi

export CACHE_DIR
exec /usr/bin/python3 "$BENCH_DIR/bench.py"
