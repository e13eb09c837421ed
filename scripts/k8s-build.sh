#!/usr/bin/env bash
# k8s-build.sh: builds a real Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kubemark's hollow kubelets) from Debian's `kubernetes` source package,
# offline, once, into a cache dir outside the repo (default ~/.cache/cetcd-k8s; K8S_CACHE moves it).
# Nothing of Kubernetes enters the repo. Prints the bin dir; a no-op once every binary is there.
#
# How (issue 13): the source comes from a private apt state whose only sources are the system's own
# Debian sources turned into deb-src (bench/debsrc.py, as bench/build-benchmark.sh does for etcd);
# the tree (1.20.2 with vendor/) is linked to $GOPATH/src/k8s.io/kubernetes and built in GOPATH mode
# (module mode fails on it); pkg/generated/openapi, missing from the tarball, is generated first with
# the vendored openapi-gen. Long: ~10 min cold on 2 cores; run it under `nice` on a shared machine.
set -euo pipefail
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cetcd-k8s}"
BIN="$CACHE_DIR/bin"
mkdir -p "$BIN"
export CETCD_BENCH_CACHE="$CACHE_DIR"   # bench/common.sh's helpers, pointed at our cache
# shellcheck source=bench/common.sh
. "$REPO_DIR/bench/common.sh"
log() { printf '[k8s-build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

TARGETS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubemark)
have_all() {
    local t
    for t in "${TARGETS[@]}"; do [ -x "$BIN/$t" ] || return 1; done
}
if have_all && [ "${1:-}" != "--force" ]; then
    echo "$BIN"
    exit 0
fi

apt_install golang-go dpkg-dev etcd-server etcd-client
T0=$(date +%s)

# --- the source package, through a private apt state (no mirror named here: debsrc.py derives the
# deb-src lines from /etc/apt/sources.list{,.d/})
SRC="$CACHE_DIR/src/kubernetes"
if [ ! -f "$SRC/.unpacked" ]; then
    APT="$CACHE_DIR/apt"
    mkdir -p "$APT/etc/sources.list.d" "$APT/etc/preferences.d" "$APT/state/lists/partial" \
             "$APT/cache/archives/partial" "$CACHE_DIR/src"
    /usr/bin/python3 "$REPO_DIR/bench/debsrc.py" /etc/apt >"$APT/etc/sources.list"
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
    log "fetching Debian's source index into the private apt state $APT"
    apt-get -qq "${APT_OPTS[@]}" update >&2
    cd "$CACHE_DIR/src"
    rm -rf kubernetes ./*.dsc ./*.tar.* 2>/dev/null || true
    log "apt-get source --download-only kubernetes"
    apt-get -qq "${APT_OPTS[@]}" source --download-only kubernetes >&2
    DSC=$(find . -maxdepth 1 -name "kubernetes_*.dsc" -printf "%f\n" | sort | tail -1)
    [ -n "$DSC" ] || die "no kubernetes .dsc downloaded"
    log "unpacking $DSC"
    dpkg-source --no-check -x "$DSC" kubernetes >&2
    [ -d "$SRC/vendor" ] && [ -d "$SRC/cmd/kube-apiserver" ] || die "$DSC has no vendor/ or cmd/kube-apiserver"
    basename "$DSC" .dsc >"$SRC/.unpacked"
fi
SRCVER=$(cat "$SRC/.unpacked")

# --- GOPATH mode: the tree at $GOPATH/src/k8s.io/kubernetes (a symlink; vendor/ resolves from there)
GOP="$CACHE_DIR/gopath"
mkdir -p "$GOP/src/k8s.io"
ln -sfn "$SRC" "$GOP/src/k8s.io/kubernetes"
K="$GOP/src/k8s.io/kubernetes"
export GO111MODULE=off CGO_ENABLED=0 GOFLAGS="" GOPATH="$GOP" GOCACHE="$CACHE_DIR/gocache"
VERSION_PKG=k8s.io/kubernetes/vendor/k8s.io/component-base/version
GITVER=$(sed -n 's/^kubernetes_\(.*\)$/\1/p' <<<"$SRCVER")
GITVER="v${GITVER##*really}"; GITVER="${GITVER%%-*}"
LDFLAGS="-s -w -X $VERSION_PKG.gitVersion=$GITVER -X $VERSION_PKG.gitMajor=1 \
-X $VERSION_PKG.gitMinor=$(cut -d. -f2 <<<"$GITVER") -X $VERSION_PKG.gitTreeState=clean"
cd "$K"

# --- pkg/generated/openapi/zz_generated.openapi.go: the vendored openapi-gen over every package
# tagged +k8s:openapi-gen=true (as the upstream Makefile's generated_files rules do)
OPENAPI="$K/pkg/generated/openapi/zz_generated.openapi.go"
if [ ! -s "$OPENAPI" ]; then
    log "building openapi-gen"
    go build -o "$BIN/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen >&2
    log "listing the packages tagged +k8s:openapi-gen="
    # as Makefile.generated_files does: every dir with Go files outside vendor/ (staging/src named as
    # vendor/), files with a '// +k8s:' tag that hold '+k8s:openapi-gen=', less code-generator and
    # sample-apiserver
    PKGS=$(find -H . -not \( \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune \) \
            -type f -name '*.go' -print0 \
        | xargs -0 grep -l '^// *+k8s:' | xargs grep -l '+k8s:openapi-gen=' \
        | sed 's|^\./||; s|/[^/]*$||; s|^staging/src/|vendor/|' \
        | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' \
        | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
    [ -n "$PKGS" ] || die "no package tagged +k8s:openapi-gen=true"
    log "generating $OPENAPI from $(tr ',' '\n' <<<"$PKGS" | wc -l) packages"
    mkdir -p "$(dirname "$OPENAPI")"
    "$BIN/openapi-gen" --logtostderr -v 1 \
        --go-header-file vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
        --input-dirs "$PKGS" \
        --output-base "$GOP/src" \
        --output-package k8s.io/kubernetes/pkg/generated/openapi \
        --output-file-base zz_generated.openapi \
        --report-filename "$CACHE_DIR/openapi-violations.list" >"$CACHE_DIR/openapi-gen.log" 2>&1 \
        || { tail -20 "$CACHE_DIR/openapi-gen.log" >&2; die "openapi-gen failed"; }
    [ -s "$OPENAPI" ] || die "openapi-gen wrote no $OPENAPI (log: $CACHE_DIR/openapi-gen.log)"
fi

# --- the binaries
for t in "${TARGETS[@]}"; do
    [ -x "$BIN/$t" ] && [ "${1:-}" != "--force" ] && continue
    log "building $t"
    t1=$(date +%s)
    go build -ldflags "$LDFLAGS" -o "$BIN/$t.tmp" "./cmd/$t" >&2
    mv "$BIN/$t.tmp" "$BIN/$t"
    log "built $t in $(( $(date +%s) - t1 ))s"
done
have_all || die "some binary is missing in $BIN"
echo "$SRCVER ($GITVER), go $(go env GOVERSION), built in $(( $(date +%s) - T0 ))s on $(date -u +%FT%TZ)" \
    >"$CACHE_DIR/build.info"
log "$(cat "$CACHE_DIR/build.info")"
echo "$BIN"
