#!/bin/bash
# tests/k8s/e2e.sh [cetcd] [etcd]: a real Kubernetes 1.20 control plane (apiserver with a short
# --etcd-compaction-interval, controller-manager, scheduler, 3 hollow kubelets) on loopback over cetcd
# and then over Debian's etcd, each on a fresh data dir (fsync on), with the same kubectl steps:
# namespaces, ConfigMaps, a chunked list, a Deployment scaled to 5 available replicas, a rolling update,
# `kubectl get -w` seeing the changes, namespace deletion; then that the apiserver's compactor ran
# (compact_rev_key advanced, the store refuses reads below it); then the store again with https only and
# client certificates required, the apiserver over it with its etcd client certificate, and the steps
# that need no nodes (skipped when the cetcd binary has no --cert-file). Prints ok/FAIL per step and
# "N passed, N failed". Needs scripts/k8s-build.sh's binaries (make k8s-e2e builds them once).
# K8S_KEEP=1 keeps the work dirs (logs, data); they are kept anyway for a store whose steps failed.
cd "$(dirname "$0")/../.." || exit 1
source tests/k8s/lib.sh
source tests/k8s/steps.sh

PASSED=0; FAILED=0; SKIPPED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/       /'; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "skip - $*"; }
trap 'k8s_stop_all' EXIT
trap 'k8s_stop_all; exit 130' INT TERM

if ! k8s_have_binaries; then
    fail "Kubernetes binaries in $K8S_BIN" "run scripts/k8s-build.sh first (make k8s-e2e does)"
    echo "$PASSED passed, $FAILED failed"; exit 1
fi
[ -x "$CETCD_BIN" ] || { fail "cetcd binary $CETCD_BIN"; echo "$PASSED passed, $FAILED failed"; exit 1; }

# step STORE NAME FUNC: runs FUNC, timed, and reports it.
step() {
    local store=$1 name=$2 fn=$3 t0
    STEP_ERR=; STEP_INFO=
    t0=$(now)
    if "$fn"; then
        ok "[$store] $name ($(since "$t0") s${STEP_INFO:+; $STEP_INFO})"
        return 0
    fi
    fail "[$store] $name ($(since "$t0") s)" "$STEP_ERR"
    STORE_FAILED=1
    return 1
}

run_store() {
    local store=$1 t0
    STORE_FAILED=0
    k8s_workdir || { fail "[$store] work dir and certificates"; return; }
    t0=$(now)
    if k8s_up "$store" 3; then
        ok "[$store] control plane up: store, apiserver ready in ${APISERVER_READY_S%???????} s, 3 hollow nodes Ready ($(since "$t0") s)"
    else
        fail "[$store] control plane up" "$(tail -3 "$K8S_WORK/apiserver.log" 2>/dev/null)"
        k8s_stop_all; K8S_KEEP=1 k8s_cleanup_work; return
    fi
    step "$store" "create 10 namespaces" step_namespaces
    watch_start
    step "$store" "create 50 ConfigMaps" step_configmaps
    step "$store" "chunked list (--chunk-size=7)" step_chunked_list
    step "$store" "Deployment scaled to 5 available replicas" step_deploy
    step "$store" "rolling update of 5 to completion" step_rolling
    if watch_changes; then :; else fail "[$store] patch and delete a ConfigMap"; STORE_FAILED=1; fi
    step "$store" "kubectl get -w saw the adds, the change and the delete" watch_check
    step "$store" "delete the namespaces, wait until gone" step_delete_namespaces
    step "$store" "apiserver compactor: compact_rev_key advanced, store compacted" check_compaction
    if kill -0 "$STORE_PID" 2>/dev/null; then
        ok "[$store] store still running"
    else
        fail "[$store] store still running" "$(tail -5 "$K8S_WORK/$store.log")"; STORE_FAILED=1
    fi
    if [ "$store" = cetcd ]; then
        local bad
        bad=$(grep -E ' (warn|error|fatal) ' "$K8S_WORK/cetcd.log" | head -5)
        [ -z "$bad" ] && ok "[$store] no warning or error in cetcd's log" || fail "[$store] no warning or error in cetcd's log" "$bad"
    fi
    k8s_stop_all
    if [ "$STORE_FAILED" -ne 0 ]; then
        K8S_KEEP=1 k8s_cleanup_work
    else
        k8s_cleanup_work
    fi
}

# run_tls STORE: the store with https only and client certificates required (kubeadm's etcd flags), an
# apiserver with --etcd-cafile/--etcd-certfile/--etcd-keyfile over it, and the steps that need no nodes.
run_tls() {
    local store=$1 t0 out
    if [ "$store" = cetcd ] && ! "$CETCD_BIN" -h 2>&1 | grep -q -- '--cert-file'; then
        skip "[$store+tls] TLS between apiserver and store: this cetcd has no --cert-file"
        return
    fi
    STORE_FAILED=0
    k8s_workdir || { fail "[$store+tls] work dir and certificates"; return; }
    export K8S_STORE_TLS=1
    t0=$(now)
    if k8s_start_store "$store" && k8s_start_apiserver; then
        ok "[$store+tls] store on https with client certificates required, apiserver ready over it ($(since "$t0") s)"
    else
        fail "[$store+tls] store and apiserver over TLS" "$(tail -3 "$K8S_WORK/apiserver.log" 2>/dev/null; tail -3 "$K8S_WORK/$store.log" 2>/dev/null)"
        unset K8S_STORE_TLS; k8s_stop_all; K8S_KEEP=1 k8s_cleanup_work; return
    fi
    # a client without a certificate is turned away by the store
    out=$(ETCDCTL_API=3 timeout 20 etcdctl --endpoints "https://$STORE_EP" --cacert "$K8S_WORK/pki/etcd-ca.crt" \
        --dial-timeout=2s --command-timeout=4s get --prefix /registry/ --keys-only --limit 1 2>&1)
    if [ $? -ne 0 ]; then ok "[$store+tls] a client without a certificate is refused"; else
        fail "[$store+tls] a client without a certificate is refused" "$out"; STORE_FAILED=1; fi
    step "$store+tls" "create 10 namespaces" step_namespaces
    watch_start
    step "$store+tls" "create 50 ConfigMaps" step_configmaps
    step "$store+tls" "chunked list (--chunk-size=7)" step_chunked_list
    if watch_changes; then :; else fail "[$store+tls] patch and delete a ConfigMap"; STORE_FAILED=1; fi
    step "$store+tls" "kubectl get -w saw the adds, the change and the delete" watch_check
    step "$store+tls" "apiserver compactor over TLS: compact_rev_key advanced, store compacted" check_compaction
    unset K8S_STORE_TLS
    k8s_stop_all
    if [ "$STORE_FAILED" -ne 0 ]; then K8S_KEEP=1 k8s_cleanup_work; else k8s_cleanup_work; fi
}

stores=("$@")
[ ${#stores[@]} -eq 0 ] && stores=(cetcd etcd)
for s in "${stores[@]}"; do
    case "$s" in
        cetcd|etcd) run_store "$s"; run_tls "$s" ;;
        *) echo "unknown store $s (cetcd or etcd)"; exit 2 ;;
    esac
done
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
