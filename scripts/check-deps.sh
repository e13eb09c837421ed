#!/bin/sh
# check-deps.sh: exits 0 when every build and test dependency is present, 1 otherwise.
# The Makefile runs scripts/install-deps.sh when this fails. libev has no pkg-config file: probe ev.h.
missing=0
[ -f /usr/include/ev.h ] || missing=1
for lib in libnghttp2 libprotobuf-c libxxhash libssl libcrypto yaml-0.1 libcrypt check; do
    pkg-config --exists "$lib" 2>/dev/null || missing=1
done
for cmd in protoc-c etcdctl etcd python3 curl jq openssl; do
    command -v "$cmd" >/dev/null 2>&1 || missing=1
done
/usr/bin/python3 -c 'import etcd3' 2>/dev/null || missing=1
/usr/bin/python3 -c 'import h2' 2>/dev/null || missing=1
[ -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ] && command -v go >/dev/null 2>&1 || missing=1
# the fuzz targets (make fuzz): clang with libFuzzer and the sanitizer runtimes (libclang-rt-14-dev),
# and llvm-symbolizer (llvm) for readable stacks
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' |
    clang -fsanitize=fuzzer,address,undefined -x c - -o /dev/null >/dev/null 2>&1 || missing=1
command -v llvm-symbolizer >/dev/null 2>&1 || missing=1
exit $missing
