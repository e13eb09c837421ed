# tests/k8s/lib.sh: a Kubernetes 1.20 control plane on loopback (kube-apiserver, controller-manager,
# scheduler, hollow kubelets from kubemark) over cetcd or Debian's etcd, for e2e.sh, bench.sh and
# scale.sh. Sourced. The binaries come from scripts/k8s-build.sh's cache; nothing here downloads.
# Every process started is recorded and stopped by PID (k8s_stop_all, also on EXIT); every wait is
# bounded. Work dirs live under the cache dir, not /tmp: each hollow node gets a private /tmp (kubemark
# 1.20 hard-codes its fake CRI socket at /tmp/kubelet_remote.sock) and its own /etc/hosts.
# shellcheck shell=bash

K8S_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
K8S_CACHE=${K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cetcd-k8s}
K8S_BIN=${K8S_BIN:-$K8S_CACHE/bin}
CETCD_BIN=${CETCD_BIN:-$K8S_ROOT/build/cetcd}
ETCD_BIN=${ETCD_BIN:-$(command -v etcd || echo /usr/bin/etcd)}
K8S_MANIFESTS="$K8S_ROOT/tests/k8s/manifests"
K8S_PIDS=()
K8S_NODE_PIDS=()
# the hollow kubelet's ECR credential provider asks the AWS SDK for credentials, whose default chain
# ends with the EC2 metadata service (a link-local address): this makes the chain fail without a packet
export AWS_EC2_METADATA_DISABLED=true

k8s_log() { printf '[k8s %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

k8s_free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

k8s_have_binaries() {
    local t
    for t in kube-apiserver kube-controller-manager kube-scheduler kubectl kubemark; do
        [ -x "$K8S_BIN/$t" ] || return 1
    done
}

# k8s_workdir: a fresh work dir (K8S_WORK) under the cache with certs, a token file and a kubeconfig.
k8s_workdir() {
    mkdir -p "$K8S_CACHE/run"
    K8S_WORK=$(mktemp -d "$K8S_CACHE/run/run.XXXXXX")
    local w=$K8S_WORK
    mkdir -p "$w/pki"
    (
        cd "$w/pki" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=cetcd-e2e-ca" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >san.ext
        openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 2 \
            -extfile san.ext 2>/dev/null
        openssl genrsa -out sa.key 2048 2>/dev/null
        openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
        # the store's own CA, server certificate and the apiserver's client certificate (kubeadm's
        # etcd/ca, etcd/server, apiserver-etcd-client), for K8S_STORE_TLS=1
        openssl req -x509 -newkey rsa:2048 -nodes -keyout etcd-ca.key -out etcd-ca.crt -days 2 \
            -subj "/CN=etcd-ca" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout etcd-server.key -out etcd-server.csr -subj "/CN=store" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >etcd-server.ext
        openssl x509 -req -in etcd-server.csr -CA etcd-ca.crt -CAkey etcd-ca.key -CAcreateserial \
            -out etcd-server.crt -days 2 -extfile etcd-server.ext 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout etcd-client.key -out etcd-client.csr \
            -subj "/O=system:masters/CN=kube-apiserver-etcd-client" 2>/dev/null
        printf 'extendedKeyUsage=clientAuth\n' >etcd-client.ext
        openssl x509 -req -in etcd-client.csr -CA etcd-ca.crt -CAkey etcd-ca.key -CAcreateserial \
            -out etcd-client.crt -days 2 -extfile etcd-client.ext 2>/dev/null
    ) || return 1
    K8S_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '%s,admin,admin,system:masters\n' "$K8S_TOKEN" >"$w/pki/tokens.csv"
}

# k8s_kubeconfig PORT: writes $K8S_WORK/kubeconfig for https://127.0.0.1:PORT with the admin token.
k8s_kubeconfig() {
    cat >"$K8S_WORK/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://127.0.0.1:$1
    certificate-authority: $K8S_WORK/pki/ca.crt
users:
- name: admin
  user:
    token: $K8S_TOKEN
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
EOF
}

# kc ARGS...: kubectl against the test cluster, bounded in time.
kc() { timeout "${KC_TIMEOUT:-120}" "$K8S_BIN/kubectl" --kubeconfig "$K8S_WORK/kubeconfig" --request-timeout=60s "$@"; }

k8s_wait_port() {  # PORT PID [tries of 50 ms]
    local i
    for i in $(seq 1 "${3:-200}"); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# k8s_store_url: the store's URL (https with K8S_STORE_TLS=1), from STORE_EP.
k8s_store_url() { if [ -n "${K8S_STORE_TLS:-}" ]; then echo "https://$STORE_EP"; else echo "http://$STORE_EP"; fi; }

# k8s_start_store KIND [extra flags]: cetcd or etcd on fresh ephemeral ports and data dir (fsync on).
# With K8S_STORE_TLS=1: https only, client certificates required (kubeadm's flags). Sets STORE_EP,
# STORE_PID, STORE_DIR, STORE_KIND.
k8s_start_store() {
    STORE_KIND=$1; shift
    local cport pport p=$K8S_WORK/pki tls=() url
    cport=$(k8s_free_port)
    STORE_EP=127.0.0.1:$cport
    STORE_DIR=${K8S_STORE_DIR:-$K8S_WORK/$STORE_KIND.data}
    url=$(k8s_store_url)
    if [ -n "${K8S_STORE_TLS:-}" ]; then
        tls=(--cert-file "$p/etcd-server.crt" --key-file "$p/etcd-server.key" --client-cert-auth=true
             --trusted-ca-file "$p/etcd-ca.crt")
    fi
    if [ "$STORE_KIND" = etcd ]; then
        pport=$(k8s_free_port)
        "$ETCD_BIN" --name k8s --data-dir "$STORE_DIR" --listen-client-urls "$url" \
            --advertise-client-urls "$url" --listen-peer-urls "http://127.0.0.1:$pport" \
            --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
            --initial-cluster "k8s=http://127.0.0.1:$pport" "${tls[@]}" "$@" >>"$K8S_WORK/etcd.log" 2>&1 &
    else
        "$CETCD_BIN" --name k8s --data-dir "$STORE_DIR" --listen-client-urls "$url" \
            --advertise-client-urls "$url" "${tls[@]}" "$@" >>"$K8S_WORK/cetcd.log" 2>&1 &
    fi
    STORE_PID=$!
    K8S_PIDS+=("$STORE_PID")
    k8s_wait_port "$cport" "$STORE_PID" 600 || { k8s_log "$STORE_KIND did not listen"; return 1; }
    local i
    for i in $(seq 1 100); do
        ectl endpoint health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    k8s_log "$STORE_KIND not healthy"
    return 1
}

k8s_stop_store() {
    [ -n "${STORE_PID:-}" ] || return 0
    kill -TERM "$STORE_PID" 2>/dev/null
    local i
    for i in $(seq 1 100); do kill -0 "$STORE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$STORE_PID" 2>/dev/null
    wait "$STORE_PID" 2>/dev/null
    STORE_PID=
}

# ectl ARGS...: etcdctl against the store.
ectl() {
    local tls=()
    [ -n "${K8S_STORE_TLS:-}" ] && tls=(--cacert "$K8S_WORK/pki/etcd-ca.crt" --cert "$K8S_WORK/pki/etcd-client.crt"
        --key "$K8S_WORK/pki/etcd-client.key")
    ETCDCTL_API=3 timeout 60 etcdctl --endpoints "$(k8s_store_url)" --command-timeout=30s "${tls[@]}" "$@"
}

# k8s_exec_apiserver [extra flags]: starts the apiserver over $STORE_EP and returns at once. Sets
# APISERVER_PID, APISERVER_PORT, APISERVER_T0 (exec time) and writes the kubeconfig.
k8s_exec_apiserver() {
    APISERVER_PORT=$(k8s_free_port)
    k8s_kubeconfig "$APISERVER_PORT"
    local p=$K8S_WORK/pki tls=()
    [ -n "${K8S_STORE_TLS:-}" ] && tls=(--etcd-cafile "$p/etcd-ca.crt" --etcd-certfile "$p/etcd-client.crt"
        --etcd-keyfile "$p/etcd-client.key")
    APISERVER_T0=$(now)
    "$K8S_BIN/kube-apiserver" "${tls[@]}" \
        --etcd-servers "$(k8s_store_url)" --etcd-compaction-interval "${K8S_COMPACTION_INTERVAL:-20s}" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
        --cert-dir "$K8S_WORK/apiserver-certs" \
        --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
        --client-ca-file "$p/ca.crt" --token-auth-file "$p/tokens.csv" \
        --authorization-mode RBAC \
        --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-cluster-ip-range 10.96.0.0/24 --endpoint-reconciler-type none \
        --profiling=false --logtostderr --v=1 "$@" >>"$K8S_WORK/apiserver.log" 2>&1 &
    APISERVER_PID=$!
    K8S_PIDS+=("$APISERVER_PID")
}

# k8s_start_apiserver [extra flags]: k8s_exec_apiserver, then waits until /readyz says ok (bounded by
# K8S_READY_TIMEOUT, 180 s). Sets APISERVER_READY_S.
k8s_start_apiserver() {
    k8s_exec_apiserver "$@"
    local deadline=$(( $(date +%s) + ${K8S_READY_TIMEOUT:-180} ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        kill -0 "$APISERVER_PID" 2>/dev/null || { k8s_log "apiserver exited"; tail -5 "$K8S_WORK/apiserver.log" >&2; return 1; }
        if [ "$(KC_TIMEOUT=5 kc get --raw /readyz 2>/dev/null)" = ok ]; then
            APISERVER_READY_S=$(echo "$(now) - $APISERVER_T0" | bc)
            return 0
        fi
        sleep 0.1
    done
    k8s_log "apiserver not ready in ${K8S_READY_TIMEOUT:-180} s"
    return 1
}

# k8s_stop_pid PID: TERM, up to 10 s, then KILL; forgets the PID.
k8s_stop_pid() {
    local i p keep=()
    kill -TERM "$1" 2>/dev/null
    for i in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    for p in "${K8S_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    K8S_PIDS=("${keep[@]}")
}

k8s_start_controllers() {
    "$K8S_BIN/kube-controller-manager" --kubeconfig "$K8S_WORK/kubeconfig" \
        --authentication-kubeconfig "$K8S_WORK/kubeconfig" --authorization-kubeconfig "$K8S_WORK/kubeconfig" \
        --port 0 --secure-port 0 --bind-address 127.0.0.1 \
        --service-account-private-key-file "$K8S_WORK/pki/sa.key" --root-ca-file "$K8S_WORK/pki/ca.crt" \
        --cluster-signing-cert-file "$K8S_WORK/pki/ca.crt" --cluster-signing-key-file "$K8S_WORK/pki/ca.key" \
        --profiling=false --logtostderr --v=1 "$@" >"$K8S_WORK/controller-manager.log" 2>&1 &
    K8S_PIDS+=($!)
    "$K8S_BIN/kube-scheduler" --kubeconfig "$K8S_WORK/kubeconfig" \
        --authentication-kubeconfig "$K8S_WORK/kubeconfig" --authorization-kubeconfig "$K8S_WORK/kubeconfig" \
        --port 0 --secure-port 0 --bind-address 127.0.0.1 \
        --profiling=false --logtostderr --v=1 >"$K8S_WORK/scheduler.log" 2>&1 &
    K8S_PIDS+=($!)
}

# k8s_start_nodes N: N hollow kubelets, each in its own mount namespace with a private /tmp and an
# /etc/hosts that names the node (so no lookup of its name leaves the machine).
k8s_start_nodes() {
    local i d name
    for i in $(seq 1 "$1"); do
        name=hollow-node-$i
        d=$K8S_WORK/$name
        mkdir -p "$d/tmp"
        { cat /etc/hosts; echo "127.0.0.1 $name"; } >"$d/hosts"
        unshare --mount --propagation private /bin/sh -c '
            mount --bind "$1/tmp" /tmp && mount --bind "$1/hosts" /etc/hosts || exit 97
            shift; exec "$@"' sh "$d" \
            "$K8S_BIN/kubemark" --morph kubelet --name "$name" --kubeconfig "$K8S_WORK/kubeconfig" \
            --kubelet-port "$(k8s_free_port)" --kubelet-read-only-port 0 \
            --node-labels "cetcd-e2e=hollow" --logtostderr --v=1 >"$K8S_WORK/$name.log" 2>&1 &
        K8S_PIDS+=($!)
        K8S_NODE_PIDS+=($!)
    done
}

# k8s_wait_nodes N: waits (bounded) until N nodes are Ready.
k8s_wait_nodes() {
    local deadline=$(( $(date +%s) + ${2:-180} )) n
    while [ "$(date +%s)" -lt "$deadline" ]; do
        n=$(KC_TIMEOUT=10 kc get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
            2>/dev/null | grep -c True)
        [ "$n" -ge "$1" ] && return 0
        sleep 1
    done
    return 1
}

# k8s_up KIND NODES: store, apiserver, controllers, scheduler and NODES hollow nodes, all Ready.
k8s_up() {
    k8s_start_store "$1" || return 1
    k8s_start_apiserver || return 1
    k8s_start_controllers
    k8s_start_nodes "$2"
    k8s_wait_nodes "$2" 240 || { k8s_log "nodes not Ready"; return 1; }
    # the default service account exists once the controller-manager runs (pods need it)
    local i
    for i in $(seq 1 120); do
        KC_TIMEOUT=10 kc -n default get serviceaccount default >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    k8s_log "no default service account"
    return 1
}

# k8s_stop_all: stops every process started here, by PID (TERM, then KILL after 10 s).
k8s_stop_all() {
    local pid i
    for pid in "${K8S_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for i in $(seq 1 100); do
        local alive=0
        for pid in "${K8S_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${K8S_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    K8S_PIDS=()
    K8S_NODE_PIDS=()
    STORE_PID=
}

# k8s_cleanup_work: removes the work dir (logs are kept under K8S_KEEP_LOGS when set, or on failure
# by the caller).
k8s_cleanup_work() {
    [ -n "${K8S_WORK:-}" ] && [ -d "$K8S_WORK" ] || return 0
    if [ -n "${K8S_KEEP:-}" ]; then
        k8s_log "work dir kept: $K8S_WORK"
    else
        rm -rf "$K8S_WORK"
    fi
}

# now: seconds since the epoch with nanoseconds; since T0: seconds elapsed, 2 decimals
now() { date +%s.%N; }
since() { printf '%.2f' "$(echo "$(now) - $1" | bc)"; }
