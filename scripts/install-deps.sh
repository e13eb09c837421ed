#!/bin/sh
# install-deps.sh: installs with apt-get what cetcd needs to build and test; safe to run again.
# Called by the Makefile when scripts/check-deps.sh finds something missing.
set -e
PKGS="build-essential pkg-config libev-dev libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler
      libxxhash-dev libssl-dev openssl libyaml-dev libcrypt-dev check etcd-client etcd-server python3 python3-etcd3 python3-h2 curl jq procps
      golang-go golang-etcd-server-dev clang libclang-rt-14-dev llvm"
need=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing:$need"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need
