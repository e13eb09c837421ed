#!/bin/bash
# test_tls.sh: TLS and mTLS (issue 12) against cetcd and Debian's etcd alike, with certificates made
# here by openssl: kubeadm's exact etcd command line (ephemeral ports), etcdctl over https with and
# without a client certificate (and with one from another CA), HTTP/1.1 /health over TLS, the metrics
# listener's probes, a stalled handshake that blocks nobody, certificates reloaded when their files
# change, --client-crl-file, --config-file, --logger=zap's JSON lines, and cetcd's refusals (a bad file, a second member,
# --initial-cluster-state=existing).
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C ETCDCTL_API=3

# --- certificates: a CA, a server certificate for 127.0.0.1 and 127.0.0.2, a client certificate,
# and a CA and client certificate the server does not trust ---
P=$T_TMP/pki
mkdir -p "$P"
mkcert() { # NAME CA SUBJECT EXT
    openssl req -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.csr" -subj "/CN=$3" 2>/dev/null &&
        printf '%s\n' "$4" >"$P/$1.ext" &&
        openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.crt" -CAkey "$P/$2.key" -CAcreateserial \
            -out "$P/$1.crt" -days 2 -extfile "$P/$1.ext" 2>/dev/null
}
mkca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.crt" -days 2 -subj "/CN=$1" 2>/dev/null; }
SERVER_EXT=$'subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth'
if ! { mkca ca && mkca other-ca && mkcert server ca cetcd "$SERVER_EXT" &&
    mkcert client ca client "extendedKeyUsage=clientAuth" &&
    mkcert intruder other-ca intruder "extendedKeyUsage=clientAuth" &&
    mkcert server2 other-ca cetcd "$SERVER_EXT"; }; then
    t_fail "openssl made the certificates"
    t_finish
    exit 1
fi

CA=(--cacert "$P/ca.crt")
CLIENT=(--cert "$P/client.crt" --key "$P/client.key")
tctl() { # ENDPOINT args...: etcdctl over https, short timeouts
    local ep=$1
    shift
    etcdctl --endpoints "https://$ep" --dial-timeout=2s --command-timeout=4s "$@"
}

# start_kubeadm KIND DIR: etcd or cetcd with kubeadm's command line for a Kind control plane, its
# ports ephemeral. Sets EP (127.0.0.1), EP2 (127.0.0.2), MEP (metrics) and PID.
start_kubeadm() {
    local cport pport mport bin=$1
    cport=$(free_port) pport=$(free_port) mport=$(free_port)
    [ "$bin" = cetcd ] && bin=$CETCD_BIN
    EP=127.0.0.1:$cport EP2=127.0.0.2:$cport MEP=127.0.0.1:$mport
    "$bin" --advertise-client-urls=https://127.0.0.2:$cport --cert-file="$P/server.crt" \
        --client-cert-auth=true --data-dir="$2" --experimental-initial-corrupt-check=true \
        --experimental-watch-progress-notify-interval=5s \
        --initial-advertise-peer-urls=https://127.0.0.1:$pport \
        --initial-cluster=kind-control-plane=https://127.0.0.1:$pport --key-file="$P/server.key" \
        --listen-client-urls=https://127.0.0.1:$cport,https://127.0.0.2:$cport \
        --listen-metrics-urls=http://127.0.0.1:$mport --listen-peer-urls=https://127.0.0.1:$pport \
        --name=kind-control-plane --peer-cert-file="$P/server.crt" --peer-client-cert-auth=true \
        --peer-key-file="$P/server.key" --peer-trusted-ca-file="$P/ca.crt" --snapshot-count=10000 \
        --trusted-ca-file="$P/ca.crt" >>"$T_TMP/$1.log" 2>&1 &
    PID=$!
    T_PIDS+=("$PID")
    wait_port "$cport" "$PID" && wait_port "$mport" "$PID" || return 1
    local i
    for i in $(seq 1 100); do
        tctl "$EP" "${CA[@]}" "${CLIENT[@]}" endpoint health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

stop_pid() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# a TCP connection that sends the first bytes of a ClientHello and then nothing: held by a Python
# process for SECS seconds; prints "closed" if the server closed it before then
stall() { # PORT SECS
    /usr/bin/python3 - "$1" "$2" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a record header and part of a hello
s.settimeout(float(sys.argv[2]))
try:
    print("closed" if s.recv(1) == b"" else "data")
except socket.timeout:
    print("open")
except OSError:
    print("closed")
EOF
}

for kind in etcd cetcd; do
    D=$(mktemp -d "$T_TMP/$kind.XXXXXX")
    if ! start_kubeadm $kind "$D/data"; then
        t_fail "$kind: starts with kubeadm's command line" "$(tail -5 "$T_TMP/$kind.log")"
        continue
    fi
    t_pass "$kind: starts with kubeadm's command line"
    out=$(tctl "$EP" "${CA[@]}" "${CLIENT[@]}" put k v 2>&1 && tctl "$EP2" "${CA[@]}" "${CLIENT[@]}" get k 2>&1)
    t_eq "$kind: etcdctl --cacert --cert --key put, get on the second URL" $'OK\nk\nv' "$out"
    tctl "$EP" "${CA[@]}" get k >/dev/null 2>&1
    t_eq "$kind: without a client certificate: refused" 1 "$?"
    tctl "$EP" "${CA[@]}" --cert "$P/intruder.crt" --key "$P/intruder.key" get k >/dev/null 2>&1
    t_eq "$kind: a client certificate from another CA: refused" 1 "$?"
    out=$(curl -s --max-time 5 --cacert "$P/ca.crt" -o /dev/null -w '%{http_code}' https://$EP/health)
    t_eq "$kind: curl without a client certificate: no answer" 000 "$out"
    out=$(curl -s --max-time 5 --http1.1 --cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key" \
        https://$EP/health | jq -c .health)
    t_eq "$kind: HTTP/1.1 /health over TLS" '"true"' "$out"
    out=$(curl -s --max-time 5 --cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key" \
        https://$EP/health | jq -c .health)
    t_eq "$kind: /health over TLS, curl's ALPN (h2, http/1.1)" '"true"' "$out"
    out=$(curl -s --max-time 5 --http1.1 --cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key" \
        -X POST -d '{"key":"aw=="}' https://$EP/v3/kv/range | jq -r '.kvs[0].value')
    t_eq "$kind: the JSON gateway over TLS" dg== "$out"
    for probe in '/health?exclude=NOSPACE&serializable=true' '/health?serializable=false'; do
        out=$(curl -s --max-time 5 -w '\n%{http_code}' "http://$MEP$probe" | jq -r '.health? // .' | tr '\n' ' ')
        t_eq "$kind: kubeadm's probe $probe on the metrics port" 'true 200 ' "$out"
    done
    out=$(curl -s --max-time 5 "http://$MEP/metrics" | grep -c '^etcd_server_has_leader')
    t_eq "$kind: /metrics on the metrics port" 1 "$out"
    out=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST -d '{"key":"aw=="}' "http://$MEP/v3/kv/range")
    t_eq "$kind: the metrics port does not serve the client API" 404 "$out"

    # a handshake stalled half-way holds no one up, and its connection is closed by the server
    stall "${EP##*:}" 20 >"$D/stall.out"
    SPID=$!
    sleep 0.3
    start=$(date +%s%N)
    out=$(tctl "$EP" "${CA[@]}" "${CLIENT[@]}" get k --print-value-only 2>&1)
    ms=$((($(date +%s%N) - start) / 1000000))
    t_eq "$kind: a stalled handshake blocks no other client" v "$out"
    [ "$ms" -lt 3000 ] && t_pass "$kind: the other client was served in $ms ms" ||
        t_fail "$kind: the other client took $ms ms"
    if [ $kind = cetcd ]; then
        wait "$SPID"
        t_eq "cetcd: the stalled handshake is closed by its deadline (10 s)" closed "$(cat "$D/stall.out")"
    else
        kill "$SPID" 2>/dev/null
        wait "$SPID" 2>/dev/null
    fi
    stop_pid "$PID"
done

# --- certificates reloaded when their files change (etcd reads them on each handshake) ---
for kind in etcd cetcd; do
    D=$(mktemp -d "$T_TMP/reload-$kind.XXXXXX")
    cp "$P/server.crt" "$P/server.key" "$D/"
    port=$(free_port)
    bin=$CETCD_BIN
    [ $kind = etcd ] && bin=etcd
    "$bin" --data-dir "$D/data" --listen-client-urls "https://127.0.0.1:$port" \
        --advertise-client-urls "https://127.0.0.1:$port" --cert-file "$D/server.crt" --key-file "$D/server.key" \
        >>"$T_TMP/reload-$kind.log" 2>&1 &
    PID=$!
    T_PIDS+=("$PID")
    wait_port "$port" "$PID"
    tctl 127.0.0.1:$port "${CA[@]}" put r 1 >/dev/null 2>&1
    t_eq "$kind: TLS without client certificates (no --client-cert-auth)" 0 "$?"
    cp "$P/server2.key" "$D/server.key.new" && cp "$P/server2.crt" "$D/server.crt.new"
    mv "$D/server.key.new" "$D/server.key" && mv "$D/server.crt.new" "$D/server.crt"
    out=$(tctl 127.0.0.1:$port --cacert "$P/other-ca.crt" get r --print-value-only 2>&1)
    t_eq "$kind: a new certificate in the files is served to the next connection" 1 "$out"
    tctl 127.0.0.1:$port "${CA[@]}" get r >/dev/null 2>&1
    t_eq "$kind: and the old one no longer" 1 "$?"
    stop_pid "$PID"
done

# --- --client-crl-file: a revoked client certificate is refused, another one from the CA is not ---
mkcert revoked ca revoked "extendedKeyUsage=clientAuth"
mkdir -p "$P/crl" && : >"$P/crl/index.txt" && echo 1000 >"$P/crl/crlnumber"
printf '[ca]\ndefault_ca=d\n[d]\ndatabase=%s\ncrlnumber=%s\ndefault_md=sha256\ndefault_crl_days=2\n' \
    "$P/crl/index.txt" "$P/crl/crlnumber" >"$P/crl/ca.cnf"
openssl ca -config "$P/crl/ca.cnf" -keyfile "$P/ca.key" -cert "$P/ca.crt" -revoke "$P/revoked.crt" >/dev/null 2>&1
openssl ca -config "$P/crl/ca.cnf" -keyfile "$P/ca.key" -cert "$P/ca.crt" -gencrl -out "$P/ca.crl" >/dev/null 2>&1
for kind in etcd cetcd; do
    port=$(free_port)
    bin=$CETCD_BIN
    [ $kind = etcd ] && bin=etcd
    "$bin" --data-dir "$T_TMP/crl-$kind" --listen-client-urls "https://127.0.0.1:$port" \
        --advertise-client-urls "https://127.0.0.1:$port" --cert-file "$P/server.crt" --key-file "$P/server.key" \
        --trusted-ca-file "$P/ca.crt" --client-cert-auth --client-crl-file "$P/ca.crl" >>"$T_TMP/crl-$kind.log" 2>&1 &
    PID=$!
    T_PIDS+=("$PID")
    wait_port "$port" "$PID"
    tctl 127.0.0.1:$port "${CA[@]}" --cert "$P/revoked.crt" --key "$P/revoked.key" get k >/dev/null 2>&1
    t_eq "$kind: --client-crl-file: a revoked client certificate is refused" 1 "$?"
    tctl 127.0.0.1:$port "${CA[@]}" "${CLIENT[@]}" put k v >/dev/null 2>&1
    t_eq "$kind: --client-crl-file: a certificate not revoked is served" 0 "$?"
    stop_pid "$PID"
done

# --- cetcd alone: plain and TLS listeners at once, --auto-tls, versions, refusals ---
D=$(mktemp -d "$T_TMP/misc.XXXXXX")
p1=$(free_port) p2=$(free_port)
"$CETCD_BIN" --data-dir "$D/a" --listen-client-urls "http://127.0.0.1:$p1,https://127.0.0.1:$p2" --auto-tls \
    --tls-min-version TLS1.3 >>"$T_TMP/misc.log" 2>&1 &
PID=$!
T_PIDS+=("$PID")
wait_port "$p2" "$PID"
out=$(ctl 127.0.0.1:$p1 put m 1 2>&1 && tctl 127.0.0.1:$p2 --insecure-transport=false --insecure-skip-tls-verify \
    get m --print-value-only 2>&1)
t_eq "cetcd: plain and TLS listeners at once, --auto-tls" $'OK\n1' "$out"
out=$(openssl s_client -connect 127.0.0.1:$p2 -tls1_2 </dev/null 2>&1 | grep -c 'BEGIN CERTIFICATE')
t_eq "cetcd: --tls-min-version TLS1.3 refuses TLS 1.2" 0 "$out"
out=$(openssl s_client -connect 127.0.0.1:$p2 -tls1_3 -alpn h2 </dev/null 2>&1 | grep -E '^ALPN protocol')
t_eq "cetcd: ALPN h2 for a gRPC client" "ALPN protocol: h2" "$out"
out=$(grep -oE 'lib(ssl|crypto)\.so\.3' /proc/$PID/maps | sort -u | tr '\n' ' ')
t_eq "cetcd: with TLS flags, OpenSSL is loaded" "libcrypto.so.3 libssl.so.3 " "$out"
stop_pid "$PID"
# OpenSSL is loaded only for TLS (tls_lib.h), libyaml only for --config-file (yaml_lib.h), libcrypt
# by the first password hash (auth_hash.c): a server started from plain flags maps none of them
CETCD_DIR=$D/plain start_cetcd
out=$(grep -oE 'lib(ssl|crypto|yaml|crypt)[^/]*$' /proc/$CETCD_PID/maps | sort -u)
t_eq "cetcd: from plain flags, none of OpenSSL, libyaml and libcrypt is mapped" "" "$out"
ctl "$CETCD_EP" user add hash-me:pw >/dev/null 2>&1
out=$(grep -oE 'libcrypt\.so\.1' /proc/$CETCD_PID/maps | sort -u)
t_eq "cetcd: libcrypt is loaded by the first password hash" libcrypt.so.1 "$out"
stop_cetcd

# --- --logger=zap: etcd's JSON lines, to every --log-outputs ---
for kind in etcd cetcd; do
    port=$(free_port) pport=$(free_port)
    bin=$CETCD_BIN
    [ $kind = etcd ] && bin=etcd
    "$bin" --data-dir "$D/log-$kind" --listen-client-urls "http://127.0.0.1:$port" \
        --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$pport" \
        --initial-advertise-peer-urls "http://127.0.0.1:$pport" --initial-cluster "default=http://127.0.0.1:$pport" \
        --logger=zap --log-outputs="stderr,$D/$kind-zap.log" 2>"$D/$kind-zap.err" &
    PID=$!
    T_PIDS+=("$PID")
    wait_port "$port" "$PID"
    sleep 0.3
    stop_pid "$PID"
    keys=$(jq -c '[.level, .ts, .caller, .msg] | map(type)' "$D/$kind-zap.log" 2>&1 | sort -u)
    t_eq "$kind: --logger=zap: every line JSON with level, ts, caller, msg" '["string","string","string","string"]' "$keys"
    t_eq "$kind: --log-outputs: the same lines on stderr and in the file" "$(head -3 "$D/$kind-zap.log")" \
        "$(grep '^{' "$D/$kind-zap.err" | head -3)"
    ts=$(head -1 "$D/$kind-zap.log" | jq -r .ts | grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})$')
    t_eq "$kind: ts in ISO 8601 with milliseconds" 1 "$ts"
done

# --- --config-file: etcd's YAML (kubeadm-like settings, TLS in client-transport-security); flags
# beside it are ignored, as in etcd ---
for kind in etcd cetcd; do
    port=$(free_port) pport=$(free_port) mport=$(free_port)
    bin=$CETCD_BIN
    [ $kind = etcd ] && bin=etcd
    cat >"$D/$kind.yaml" <<EOF
name: 'node-a'
data-dir: $D/cfg-$kind
listen-client-urls: https://127.0.0.1:$port
advertise-client-urls: https://127.0.0.1:$port
listen-peer-urls: http://127.0.0.1:$pport
initial-advertise-peer-urls: http://127.0.0.1:$pport
initial-cluster: node-a=http://127.0.0.1:$pport
initial-cluster-state: 'new'
listen-metrics-urls: http://127.0.0.1:$mport
snapshot-count: 10000
client-transport-security:
  cert-file: $P/server.crt
  key-file: $P/server.key
  client-cert-auth: true
  trusted-ca-file: $P/ca.crt
  auto-tls: false
EOF
    "$bin" --config-file "$D/$kind.yaml" --listen-client-urls "http://127.0.0.1:$(free_port)" \
        >>"$T_TMP/cfg-$kind.log" 2>&1 &
    PID=$!
    T_PIDS+=("$PID")
    wait_port "$port" "$PID"
    out=$(tctl 127.0.0.1:$port "${CA[@]}" "${CLIENT[@]}" put c 1 2>&1)
    t_eq "$kind: --config-file: TLS and mTLS from client-transport-security, flags beside it ignored" OK "$out"
    tctl 127.0.0.1:$port "${CA[@]}" get c >/dev/null 2>&1
    t_eq "$kind: --config-file: client-cert-auth: true refuses a client without a certificate" 1 "$?"
    out=$(curl -s --max-time 5 "http://127.0.0.1:$mport/health" | jq -r .health)
    t_eq "$kind: --config-file: the metrics listener" true "$out"
    if [ $kind = cetcd ]; then
        grep -q 'libyaml-0\.so' /proc/$PID/maps && t_pass "cetcd: --config-file: libyaml is loaded for it" ||
            t_fail "cetcd: --config-file: libyaml is loaded for it"
    fi
    stop_pid "$PID"
done

refused() { # NAME EXPECTED-SUBSTRING flags...: cetcd exits 2 with one line containing the substring
    local name=$1 want=$2 out rc
    shift 2
    out=$(timeout 10 "$CETCD_BIN" --data-dir "$D/r" "$@" 2>&1)
    rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -qF -- "$want" <<<"$out"; then
        t_pass "cetcd refuses: $name"
    else
        t_fail "cetcd refuses: $name (exit $rc)" "$out"
    fi
}
HTTPS=(--listen-client-urls "https://127.0.0.1:$(free_port)")
refused "a missing --cert-file" "$D/nope.crt" "${HTTPS[@]}" --cert-file "$D/nope.crt" --key-file "$P/server.key"
refused "a key that is not the certificate's" "$P/client.key" "${HTTPS[@]}" --cert-file "$P/server.crt" \
    --key-file "$P/client.key"
refused "a --trusted-ca-file that is no certificate" "$P/server.ext" "${HTTPS[@]}" --cert-file "$P/server.crt" \
    --key-file "$P/server.key" --trusted-ca-file "$P/server.ext" --client-cert-auth
refused "https without certificates" "--cert-file" "${HTTPS[@]}"
refused "a missing --peer-cert-file" "$D/peer.crt" --peer-cert-file "$D/peer.crt"
refused "a second member in --initial-cluster" "make-mirror" --name a --initial-cluster a=http://127.0.0.1:1,b=http://127.0.0.1:2
refused "--initial-cluster-state=existing" "make-mirror" --initial-cluster-state=existing
refused "an unknown cipher suite" "TLS_NOPE" "${HTTPS[@]}" --auto-tls --cipher-suites TLS_NOPE
printf 'name: [a\n' >"$D/bad.yaml"
refused "a config file that is not YAML" "$D/bad.yaml" --config-file "$D/bad.yaml"
refused "a config file that does not exist" "$D/none.yaml" --config-file "$D/none.yaml"
refused "a --log-outputs file that cannot be opened" "$D/no/such.log" --logger=zap --log-outputs "$D/no/such.log"
# TLS flags while OpenSSL cannot be loaded, or a config file while libyaml cannot: /dev/null mounted
# over the library the loader would find (in the directory of the libc it gives openssl(1)), in a
# private mount namespace that only cetcd sees (needs root and unshare; skipped without them)
cat >"$T_TMP/without-lib" <<'EOF'
#!/bin/sh
exec unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$HIDE_LIB" "$REAL_BIN" "$@"
EOF
chmod +x "$T_TMP/without-lib"
libdir=$(ldd "$(command -v openssl)" | awk '$1 == "libc.so.6" {print $3}')
libdir=${libdir%/*}
printf 'name: hidden\n' >"$D/ok.yaml"
for lib in libssl.so.3 libcrypto.so.3 libyaml-0.so.2; do
    if [ ! -e "$libdir/$lib" ] || ! unshare -m true 2>/dev/null; then
        echo "skip - cetcd refuses: $lib missing (no unshare here, or no $libdir/$lib to hide)"
        continue
    fi
    if [ $lib = libyaml-0.so.2 ]; then
        want="reading YAML needs $lib, which cannot be loaded" flags=(--config-file "$D/ok.yaml")
    else
        want="TLS needs OpenSSL 3's $lib, which cannot be loaded" flags=("${HTTPS[@]}" --auto-tls)
    fi
    HIDE_LIB=$libdir/$lib REAL_BIN=$CETCD_BIN CETCD_BIN=$T_TMP/without-lib refused "$lib missing" "$want" \
        "${flags[@]}"
done
# libcrypt is opened by the first password hash: without it the server runs, and a user add fails
# with etcd's Internal error, the reason in the log
if [ -e "$libdir/libcrypt.so.1" ] && unshare -m true 2>/dev/null; then
    CETCD_DIR=$D/nocrypt HIDE_LIB=$libdir/libcrypt.so.1 REAL_BIN=$CETCD_BIN CETCD_BIN=$T_TMP/without-lib \
        start_cetcd
    out=$(ctl "$CETCD_EP" user add nocrypt:pw 2>&1)
    grep -q "bcrypt hashing failed" <<<"$out" && t_pass "cetcd without libcrypt.so.1: user add fails" ||
        t_fail "cetcd without libcrypt.so.1: user add fails" "$out"
    grep -q "bcrypt needs libcrypt.so.1, which cannot be loaded" "$T_TMP/cetcd.log" &&
        t_pass "cetcd without libcrypt.so.1: the log says why" ||
        t_fail "cetcd without libcrypt.so.1: the log says why" "$(tail -3 "$T_TMP/cetcd.log")"
    stop_cetcd
else
    echo "skip - cetcd without libcrypt.so.1 (no unshare here, or no $libdir/libcrypt.so.1 to hide)"
fi

t_finish
