# common.sh: shared settings and helpers for the bench/ scripts (sourced, not run).
# Keeps the cache location and the apt-install helper in one place so every script agrees.
# shellcheck shell=bash

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
export REPO_DIR
CACHE_DIR="${CETCD_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cetcd-bench}"
mkdir -p "$CACHE_DIR"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# apt_install PKG...: installs only the packages that are not installed yet.
apt_install() {
    local need="" p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
    done
    [ -z "$need" ] && return 0
    log "installing:$need"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >&2
}

# side_by_side_setup NAME [BASE]: how each script that runs cetcd and etcd side by side begins. Sets
# CETCD (the built server; also copied to $W/cetcd), BENCHMARK (etcd's tool), W (a work dir under BASE,
# default $BENCH_DATA_DIR or /tmp, removed at exit after every PID in PIDS is stopped) and REF: Debian's
# etcd copied under another name, so that nobody's broad kill of "etcd" stops it mid-run.
side_by_side_setup() {
    CETCD=${CETCD_BIN:-$REPO_DIR/build/cetcd}
    [ -x "$CETCD" ] || die "no $CETCD: make first"
    BENCHMARK=$("$BENCH_DIR/build-benchmark.sh") || die "could not build etcd's benchmark tool"
    W=$(mktemp -d "${2:-${BENCH_DATA_DIR:-/tmp}}/$1.XXXXXX")
    REF="$W/refkv"
    cp "$(command -v etcd)" "$REF" || die "no etcd"
    cp "$CETCD" "$W/cetcd" || die "cannot copy $CETCD"
    PIDS=()
    trap side_by_side_cleanup EXIT
}

side_by_side_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$W"
}

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# write_section NAME FILE: puts FILE (which begins with "<!-- NAME bench ..." and ends with
# "<!-- end NAME bench -->") in place of that section of $RESULTS, or at its end the first time; the
# rest of the file stays byte for byte.
write_section() {
    touch "$RESULTS"
    /usr/bin/python3 - "$RESULTS" "$2" "$1" <<'PY'
import re, sys
path, sec, name = sys.argv[1], open(sys.argv[2]).read(), re.escape(sys.argv[3])
text = open(path).read()
pat = re.compile(r"<!-- %s bench .*?<!-- end %s bench -->\n?" % (name, name), re.S)
text = pat.sub(lambda m: sec, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + sec
open(path, "w").write(text)
PY
}

# launch_server KIND DIR [FLAG...]: one server of KIND (cetcd, or Debian's etcd copied to $REF) on DIR, with
# ephemeral ports and fsync on, its output in $W/KIND.log; FLAGs go to both kinds, and the array CETCD_EXTRA (if
# set) to cetcd alone. Waits until `endpoint health` answers. Sets LAUNCHED_PID and LAUNCHED_EP; the PID also goes
# into PIDS, stopped at exit. Returns 1 if the server died or never answered.
launch_server() {
    local kind=$1 dir=$2 cp pp i
    shift 2
    cp=$(port) pp=$(port)
    LAUNCHED_EP=127.0.0.1:$cp
    if [ "$kind" = cetcd ]; then
        "$W/cetcd" --data-dir "$dir" --listen-client-urls "http://$LAUNCHED_EP" \
            --advertise-client-urls "http://$LAUNCHED_EP" "$@" "${CETCD_EXTRA[@]}" >>"$W/cetcd.log" 2>&1 &
    else
        "$REF" --name b --data-dir "$dir" --listen-client-urls "http://$LAUNCHED_EP" \
            --advertise-client-urls "http://$LAUNCHED_EP" --listen-peer-urls "http://127.0.0.1:$pp" \
            --initial-advertise-peer-urls "http://127.0.0.1:$pp" --initial-cluster "b=http://127.0.0.1:$pp" \
            "$@" >>"$W/etcd.log" 2>&1 &
    fi
    LAUNCHED_PID=$!
    PIDS+=("$LAUNCHED_PID")
    for i in $(seq 1 300); do
        ETCDCTL_API=3 etcdctl --endpoints "$LAUNCHED_EP" --dial-timeout=2s endpoint health >/dev/null 2>&1 && return 0
        kill -0 "$LAUNCHED_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
