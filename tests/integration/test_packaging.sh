#!/bin/bash
# test_packaging.sh: what ships besides the binary (issue 12): `make install`/`uninstall` with DESTDIR
# and PREFIX, the man page made from `cetcd -h` (renders, names every flag), the systemd unit
# (systemd-analyze verify), and the Docker image's entrypoint, run here without Docker: invoked as
# `etcd` with the flags kubeadm writes into its etcd static pod, it must start cetcd and answer
# etcdctl over TLS. The Dockerfile's runtime packages are checked against what the binary links.
source "$(dirname "$0")/../lib.sh"

[ -x "$CETCD_BIN" ] || echo "note: $CETCD_BIN does not exist; every test will fail"
BUILD_DIR=$(dirname "$CETCD_BIN")
DEST=$T_TMP/dest

# --- make install / uninstall (the binary is taken as built: -o keeps make from rebuilding it; the
# man page is made again from it) ---
rm -f "$BUILD_DIR/cetcd.1"
make -s -C "$ROOT" -o "$CETCD_BIN" BUILD="$BUILD_DIR" install DESTDIR="$DEST" PREFIX=/usr \
    >"$T_TMP/install.log" 2>&1
t_eq "make install: exit 0" 0 "$?"
[ -x "$DEST/usr/bin/cetcd" ] && t_pass "make install: usr/bin/cetcd, executable" ||
    t_fail "make install: usr/bin/cetcd, executable" "$(cat "$T_TMP/install.log"; find "$DEST")"
MAN=$DEST/usr/share/man/man1/cetcd.1
[ -f "$MAN" ] && t_pass "make install: usr/share/man/man1/cetcd.1" ||
    t_fail "make install: usr/share/man/man1/cetcd.1" "$(find "$DEST")"
t_eq "make install: the installed binary is the built one" "$(sha256sum <"$CETCD_BIN")" \
    "$(sha256sum <"$DEST/usr/bin/cetcd" 2>/dev/null)"
t_eq "make install: files only under DESTDIR/PREFIX" "$DEST/usr/bin/cetcd
$MAN" "$(find "$DEST" -type f | sort)"

# --- the man page: renders without warnings, and names every flag of `cetcd -h` ---
if command -v man >/dev/null; then
    MANWIDTH=200 man -l "$MAN" >"$T_TMP/man.txt" 2>"$T_TMP/man.err"
    t_eq "man -l renders the page" "0:" "$?:$(cat "$T_TMP/man.err")"
else
    sed -e 's/\\-/-/g' -e 's/^\.SH //' "$MAN" >"$T_TMP/man.txt" # section heads as man shows them
    echo "info: no man here: man -l not run; the roff is checked below instead"
fi
if command -v groff >/dev/null; then
    t_eq "groff -ww: no warnings" "" "$(groff -man -ww -z "$MAN" 2>&1)"
fi
FLAGS=$("$CETCD_BIN" -h | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
missing=$(for f in $FLAGS; do grep -qF -- "$f" "$T_TMP/man.txt" || echo "$f"; done)
t_eq "the page names all $(echo "$FLAGS" | wc -l) flags of cetcd -h" "" "$missing"
grep -q '^NAME' "$T_TMP/man.txt" && grep -q 'cetcd - a single-node server' "$T_TMP/man.txt" &&
    t_pass "the page has its NAME line" || t_fail "the page has its NAME line" "$(head -5 "$T_TMP/man.txt")"

# --- the systemd unit ---
UNIT=$T_TMP/cetcd.service
sed "s|^ExecStart=/usr/local/bin/cetcd|ExecStart=$DEST/usr/bin/cetcd|" "$ROOT/scripts/cetcd.service" >"$UNIT"
grep -q "^ExecStart=$DEST/usr/bin/cetcd$" "$UNIT" && t_pass "unit: ExecStart is /usr/local/bin/cetcd" ||
    t_fail "unit: ExecStart is /usr/local/bin/cetcd" "$(grep ExecStart "$ROOT/scripts/cetcd.service")"
for want in Type=simple User=cetcd StateDirectory=cetcd Restart=on-failure LimitNOFILE=65536 \
    ETCD_DATA_DIR=/var/lib/cetcd; do
    grep -q "$want" "$UNIT" && t_pass "unit: $want" || t_fail "unit: $want"
done
if command -v systemd-analyze >/dev/null; then
    # the man page of Documentation= is looked up too: the one just installed
    out=$(MANPATH=$DEST/usr/share/man systemd-analyze verify "$UNIT" 2>&1)
    t_eq "systemd-analyze verify: clean" "0:" "$?:$out"
else
    awk '/^\[/ {next} /^#/ || /^$/ {next} !/^[A-Za-z]+=/ {bad = 1; print} END {exit bad}' "$UNIT" &&
        t_pass "unit: every line a section, comment or Key=value (no systemd-analyze here)" ||
        t_fail "unit: every line a section, comment or Key=value"
fi

# --- the Docker image's entrypoint, as `etcd`, with kubeadm's flags over TLS ---
ENTRY=$ROOT/scripts/docker-entrypoint.sh
sh -n "$ENTRY" && t_pass "entrypoint: sh -n" || t_fail "entrypoint: sh -n"
mkdir -p "$T_TMP/bin" "$T_TMP/pki"
ln -s "$ENTRY" "$T_TMP/bin/etcd"
PKI=$T_TMP/pki
(
    cd "$PKI" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=etcd-ca"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >both.ext
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    for c in server:both peer:both healthcheck-client:client; do
        openssl req -newkey rsa:2048 -nodes -keyout "${c%%:*}.key" -out "${c%%:*}.csr" -subj "/CN=${c%%:*}"
        openssl x509 -req -in "${c%%:*}.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "${c%%:*}.crt" \
            -days 2 -extfile "${c#*:}.ext"
    done
) >/dev/null 2>&1
CPORT=$(free_port); PPORT=$(free_port); MPORT=$(free_port)
NODE=kind-control-plane
# kubeadm's etcd.yaml command (v1.27 as Kind runs it), ports and paths made local
CETCD_BIN=$DEST/usr/bin/cetcd "$T_TMP/bin/etcd" \
    --advertise-client-urls=https://127.0.0.1:$CPORT \
    --cert-file="$PKI/server.crt" \
    --client-cert-auth=true \
    --data-dir="$T_TMP/var-lib-etcd" \
    --experimental-initial-corrupt-check=true \
    --experimental-watch-progress-notify-interval=5s \
    --initial-advertise-peer-urls=https://127.0.0.1:$PPORT \
    --initial-cluster=$NODE=https://127.0.0.1:$PPORT \
    --key-file="$PKI/server.key" \
    --listen-client-urls=https://127.0.0.1:$CPORT \
    --listen-metrics-urls=http://127.0.0.1:$MPORT \
    --listen-peer-urls=https://127.0.0.1:$PPORT \
    --name=$NODE \
    --peer-cert-file="$PKI/peer.crt" \
    --peer-client-cert-auth=true \
    --peer-key-file="$PKI/peer.key" \
    --peer-trusted-ca-file="$PKI/ca.crt" \
    --snapshot-count=10000 \
    --trusted-ca-file="$PKI/ca.crt" >"$T_TMP/entry.log" 2>&1 &
EPID=$!
T_PIDS+=("$EPID")
wait_port "$CPORT" "$EPID" && t_pass "entrypoint as etcd: kubeadm's flags start cetcd" ||
    t_fail "entrypoint as etcd: kubeadm's flags start cetcd" "$(tail -5 "$T_TMP/entry.log")"
TLS=(--endpoints "https://127.0.0.1:$CPORT" --cacert "$PKI/ca.crt" --cert "$PKI/healthcheck-client.crt"
    --key "$PKI/healthcheck-client.key")
ctl_tls() { ETCDCTL_API=3 etcdctl --command-timeout=5s "${TLS[@]}" "$@"; }
out=$(ctl_tls endpoint health 2>&1)
case "$out" in *"is healthy"*) t_pass "entrypoint as etcd: etcdctl endpoint health (TLS client cert)" ;;
    *) t_fail "entrypoint as etcd: etcdctl endpoint health (TLS client cert)" "$out" ;; esac
ctl_tls put /registry/ns/default v1 >/dev/null 2>&1
t_eq "entrypoint as etcd: put and get" "v1" "$(ctl_tls get /registry/ns/default --print-value-only 2>&1)"
t_eq "entrypoint as etcd: member list names the kubeadm node" "$NODE" \
    "$(ctl_tls member list 2>&1 | awk -F', ' '{print $3}')"
out=$(ETCDCTL_API=3 etcdctl --command-timeout=3s --endpoints "https://127.0.0.1:$CPORT" --cacert "$PKI/ca.crt" \
    get x 2>&1)
[ $? -ne 0 ] && t_pass "entrypoint as etcd: a client without a certificate is refused" ||
    t_fail "entrypoint as etcd: a client without a certificate is refused" "$out"
# the static pod's probes: /health?exclude=NOSPACE&serializable=true, or /livez and /readyz, on the metrics port
t_eq "entrypoint as etcd: the liveness probe (metrics port)" '{"health":"true","reason":""}' \
    "$(curl -s "http://127.0.0.1:$MPORT/health?exclude=NOSPACE&serializable=true")"
for p in livez readyz; do # newer kubeadm's probes
    t_eq "entrypoint as etcd: /$p on the metrics port" 200 \
        "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/$p")"
done
kill "$EPID"; wait "$EPID" 2>/dev/null
t_eq "entrypoint as etcd: SIGTERM stops it cleanly" 0 "$?"

# the other ways in: flags alone or `etcd ...` as arguments, --version, another command passed through
ver=$("$DEST/usr/bin/cetcd" --version)
t_eq "entrypoint: --version runs cetcd" "$ver" "$(CETCD_BIN=$DEST/usr/bin/cetcd "$ENTRY" --version)"
t_eq "entrypoint: etcd --version runs cetcd" "$ver" "$(CETCD_BIN=$DEST/usr/bin/cetcd "$ENTRY" etcd --version)"
t_eq "entrypoint: etcdctl runs as given" "$(etcdctl version)" "$(ETCDCTL_API=3 "$ENTRY" etcdctl version)"
CETCD_BIN=$DEST/usr/bin/cetcd "$T_TMP/bin/etcd" --no-such-flag >/dev/null 2>&1
t_eq "entrypoint as etcd: a bad flag exits 2, as cetcd" 2 "$?"

# --- the Dockerfile (not built here: no Docker daemon) ---
DF=$ROOT/Dockerfile
grep -q '^FROM debian:12-slim AS build' "$DF" && [ "$(grep -c '^FROM debian:12-slim' "$DF")" -eq 2 ] &&
    t_pass "Dockerfile: Debian 12 slim, build and runtime stages" || t_fail "Dockerfile: Debian 12 slim stages"
runtime=$(awk '/^FROM/ {n++} n == 2' "$DF")
missing=""
for lib in $(ldd "$CETCD_BIN" | awk '$3 ~ /^\// {print $3}'); do
    real=$(readlink -f "$lib")
    pkg=$(dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || dpkg -S "$lib" 2>/dev/null)
    pkg=${pkg%%:*}
    [ -z "$pkg" ] || [ "$pkg" = libc6 ] && continue
    printf '%s\n' "$runtime" | grep -qw -- "$pkg" || missing="$missing $pkg"
done
t_eq "Dockerfile: the runtime stage installs every library package cetcd links" "" "$missing"
# and those it loads at run time (ldd does not list them): found by the sonames in the sources
missing=""
for so in $(grep -ohE '"lib[a-z0-9_-]+\.so\.[0-9]+"' "$ROOT"/src/*/*.c | tr -d '"' | sort -u); do
    pkg=$(dpkg -S "/usr/lib/x86_64-linux-gnu/$so" 2>/dev/null || dpkg -S "/lib/x86_64-linux-gnu/$so" 2>/dev/null)
    pkg=${pkg%%:*}
    [ -n "$pkg" ] || { missing="$missing ?$so"; continue; }
    printf '%s\n' "$runtime" | grep -qw -- "$pkg" || missing="$missing $pkg"
done
t_eq "Dockerfile: the runtime stage installs every library cetcd loads at run time" "" "$missing"
for want in etcd-client 'ln -s docker-entrypoint.sh /usr/local/bin/etcd' \
    'ENTRYPOINT \["/usr/local/bin/docker-entrypoint.sh"\]'; do
    printf '%s\n' "$runtime" | grep -q -- "$want" && t_pass "Dockerfile: $want" || t_fail "Dockerfile: $want"
done

# --- uninstall ---
make -s -C "$ROOT" -o "$CETCD_BIN" BUILD="$BUILD_DIR" uninstall DESTDIR="$DEST" PREFIX=/usr >/dev/null 2>&1
t_eq "make uninstall: no file left" "" "$(find "$DEST" -type f)"

t_finish
