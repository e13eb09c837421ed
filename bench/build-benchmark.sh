#!/usr/bin/env bash
# build-benchmark.sh: builds etcd's own `benchmark` tool (tools/benchmark, not in any binary
# package) offline from Debian's etcd source package plus Debian's Go libraries, into the cache
# dir only (never into the repo). Prints the binary's path; a no-op once it is built.
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OUT="$CACHE_DIR/benchmark"
if [ -x "$OUT" ] && "$OUT" --help >/dev/null 2>&1; then
    echo "$OUT"
    exit 0
fi

apt_install golang-go golang-etcd-server-dev dpkg-dev etcd-server
T0=$(date +%s)

# --- private apt state whose only sources are the system's Debian sources turned into deb-src
APT="$CACHE_DIR/apt"
mkdir -p "$APT/etc/sources.list.d" "$APT/etc/preferences.d" "$APT/state/lists/partial" \
         "$APT/cache/archives/partial" "$APT/src"
/usr/bin/python3 "$BENCH_DIR/debsrc.py" /etc/apt >"$APT/etc/sources.list"
[ -s "$APT/etc/sources.list" ] || die "could not derive any deb-src entry from /etc/apt"
APT_OPTS=(
    -o "Dir::Etc::sourcelist=$APT/etc/sources.list"
    -o "Dir::Etc::sourceparts=$APT/etc/sources.list.d"
    -o "Dir::Etc::preferencesparts=$APT/etc/preferences.d"
    -o "Dir::State=$APT/state"
    -o "Dir::State::Lists=$APT/state/lists"
    -o "Dir::Cache=$APT/cache"
    -o "Dir::State::status=/var/lib/dpkg/status"
)
[ "$(id -u)" -eq 0 ] && APT_OPTS+=(-o "APT::Sandbox::User=root")
log "fetching Debian source index into private apt state $APT"
apt-get -qq "${APT_OPTS[@]}" update >&2

# the source version matching the installed etcd-server (its libraries are the ones we link)
VER=$(dpkg-query -W -f='${source:Version}' etcd-server 2>/dev/null || true)
cd "$APT/src"
rm -rf etcd-src ./*.dsc ./*.tar.* 2>/dev/null || true
if [ -n "$VER" ] && apt-get -qq "${APT_OPTS[@]}" source --download-only "etcd=$VER" >&2; then
    :
else
    log "etcd=$VER not in the source index, taking the newest etcd source"
    apt-get -qq "${APT_OPTS[@]}" source --download-only etcd >&2
fi
DSC=$(find . -maxdepth 1 -name "etcd_*.dsc" -printf "%f\n" | sort | tail -1)
dpkg-source --no-check -x "$DSC" etcd-src >&2
SRC="$APT/src/etcd-src"
[ -d "$SRC/tools/benchmark" ] || die "no tools/benchmark in $DSC"

# --- GOPATH layout: put tools/benchmark where its own imports say the module lives
# (3.4: module go.etcd.io/etcd, imports go.etcd.io/etcd/clientv3 ...; Debian's
# golang-etcd-server-dev provides exactly that tree in /usr/share/gocode/src).
MOD=$(awk '$1=="module"{print $2; exit}' "$SRC/go.mod" 2>/dev/null || true)
[ -n "$MOD" ] || MOD=go.etcd.io/etcd
GOP="$CACHE_DIR/gopath"
rm -rf "$GOP"
mkdir -p "$GOP/src/$MOD/tools"
cp -r "$SRC/tools/benchmark" "$GOP/src/$MOD/tools/"
if [ ! -d "/usr/share/gocode/src/$MOD" ] && [ -d /usr/share/gocode/src/go.etcd.io/etcd ]; then
    # a v3-suffixed tree against Debian's unsuffixed libraries: rewrite the imports
    log "rewriting imports $MOD -> go.etcd.io/etcd"
    find "$GOP/src/$MOD/tools/benchmark" -name '*.go' -exec sed -i "s#\"$MOD/#\"go.etcd.io/etcd/#g" {} +
fi
log "building $MOD/tools/benchmark (GO111MODULE=off)"
cd "$GOP/src/$MOD/tools/benchmark"
GO111MODULE=off GOFLAGS="" GOPATH="$GOP:/usr/share/gocode" GOCACHE="$CACHE_DIR/gocache" \
    go build -o "$OUT.tmp" . >&2
mv "$OUT.tmp" "$OUT"
echo "etcd source $(basename "$DSC" .dsc), module $MOD, built in $(( $(date +%s) - T0 ))s on $(date -u +%FT%TZ)" \
    >"$CACHE_DIR/benchmark.buildinfo"
log "$(cat "$CACHE_DIR/benchmark.buildinfo")"
echo "$OUT"
