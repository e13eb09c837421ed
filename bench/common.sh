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
