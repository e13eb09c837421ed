# tests/k8s/steps.sh: the Kubernetes steps that e2e.sh checks and bench.sh times, each a function that
# returns 0 when the step's effect is there and otherwise sets STEP_ERR. Sourced after lib.sh, with a
# cluster up (k8s_up). Every kubectl call and every wait is bounded.
# shellcheck shell=bash

STEP_ERR=
NS_LIST=$(seq -f 'e2e-%02g' 1 10)

# step_namespaces: creates the 10 namespaces (one kubectl apply) and checks they are Active.
step_namespaces() {
    kc apply -f "$K8S_MANIFESTS/namespaces.yaml" >"$K8S_WORK/step.out" 2>&1 \
        || { STEP_ERR=$(tail -3 "$K8S_WORK/step.out"); return 1; }
    local n
    n=$(kc get ns -l e2e=ns -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c Active)
    [ "$n" -eq 10 ] || { STEP_ERR="$n of 10 namespaces Active"; return 1; }
}

# step_configmaps: creates 50 ConfigMaps, 5 in each namespace (one kubectl apply), and counts them.
step_configmaps() {
    local f=$K8S_WORK/configmaps.yaml ns i=0 j payload
    payload=$(head -c 600 /dev/zero | tr '\0' 'x')
    : >"$f"
    for ns in $NS_LIST; do
        for j in 1 2 3 4 5; do
            i=$((i + 1))
            sed -e "s/NAME/cm-$j/; s/NS/$ns/; s/\"I\"/\"$i\"/; s/PAYLOAD/$payload/" \
                "$K8S_MANIFESTS/configmap.tmpl" >>"$f"
        done
    done
    kc apply -f "$f" >"$K8S_WORK/step.out" 2>&1 || { STEP_ERR=$(tail -3 "$K8S_WORK/step.out"); return 1; }
    local n
    n=$(kc get cm -A -l e2e=cm -o name | wc -l)
    [ "$n" -eq 50 ] || { STEP_ERR="$n of 50 ConfigMaps listed"; return 1; }
}

# step_chunked_list: lists every ConfigMap in pages of 7 (kubectl's --chunk-size: limit + continue, read
# from the store, not the watch cache) and checks the count and that kubectl really paged.
step_chunked_list() {
    local n pages
    kc get cm -A -l e2e=cm --chunk-size=7 -o name -v=6 >"$K8S_WORK/list.out" 2>"$K8S_WORK/list.err" \
        || { STEP_ERR=$(tail -3 "$K8S_WORK/list.err"); return 1; }
    n=$(wc -l <"$K8S_WORK/list.out")
    pages=$(grep -c 'limit=7' "$K8S_WORK/list.err")
    [ "$n" -eq 50 ] && [ "$pages" -ge 8 ] || { STEP_ERR="$n of 50 ConfigMaps in $pages pages (want >= 8)"; return 1; }
    STEP_INFO="50 ConfigMaps in $pages pages of 7"
}

# step_deploy: the Deployment with 1 replica, scaled to 5, until 5 are available (pods Running on the
# hollow nodes).
step_deploy() {
    kc apply -f "$K8S_MANIFESTS/deployment.yaml" >"$K8S_WORK/step.out" 2>&1 \
        || { STEP_ERR=$(tail -3 "$K8S_WORK/step.out"); return 1; }
    kc -n e2e-01 scale deployment/web --replicas=5 >"$K8S_WORK/step.out" 2>&1 \
        || { STEP_ERR=$(tail -3 "$K8S_WORK/step.out"); return 1; }
    KC_TIMEOUT=200 kc -n e2e-01 rollout status deployment/web --timeout=180s >"$K8S_WORK/step.out" 2>&1 \
        || { STEP_ERR=$(tail -3 "$K8S_WORK/step.out"); return 1; }
    local avail running
    avail=$(kc -n e2e-01 get deployment web -o jsonpath='{.status.availableReplicas}')
    running=$(kc -n e2e-01 get pods -l app=web --field-selector=status.phase=Running -o name | wc -l)
    [ "$avail" = 5 ] && [ "$running" -ge 5 ] || { STEP_ERR="available=$avail running=$running, want 5"; return 1; }
}

# step_rolling: a rolling update of the 5 replicas (a new pod template), until it completes.
step_rolling() {
    kc -n e2e-01 set env deployment/web ROUND=2 >"$K8S_WORK/step.out" 2>&1 \
        || { STEP_ERR=$(tail -3 "$K8S_WORK/step.out"); return 1; }
    KC_TIMEOUT=200 kc -n e2e-01 rollout status deployment/web --timeout=180s >"$K8S_WORK/step.out" 2>&1 \
        || { STEP_ERR=$(tail -3 "$K8S_WORK/step.out"); return 1; }
    local st rs
    st=$(kc -n e2e-01 get deployment web -o jsonpath='{.status.updatedReplicas}/{.status.availableReplicas}/{.status.replicas}/{.metadata.generation}/{.status.observedGeneration}')
    rs=$(kc -n e2e-01 get rs -l app=web -o jsonpath='{range .items[*]}{.spec.replicas}{" "}{end}')
    case "$st" in
        5/5/5/*) ;;
        *) STEP_ERR="updated/available/replicas/gen/observed = $st"; return 1 ;;
    esac
    # two ReplicaSets: the new one with 5, the old one scaled to 0
    [ "$(tr ' ' '\n' <<<"$rs" | sort -n | tr '\n' ' ')" = " 0 5 " ] || { STEP_ERR="ReplicaSet sizes: $rs"; return 1; }
}

# watch_start: `kubectl get -w` on the ConfigMaps of e2e-01, in the background (bounded by timeout).
watch_start() {
    timeout 600 "$K8S_BIN/kubectl" --kubeconfig "$K8S_WORK/kubeconfig" -n e2e-01 get cm -l e2e=cm \
        --watch-only --output-watch-events -o json >"$K8S_WORK/watch.out" 2>"$K8S_WORK/watch.err" &
    WATCH_PID=$!
    K8S_PIDS+=("$WATCH_PID")
    sleep 1
}

# watch_changes: modifies cm-1 and deletes cm-5 in e2e-01.
watch_changes() {
    kc -n e2e-01 patch cm cm-1 --type merge -p '{"data":{"index":"changed"}}' >/dev/null 2>&1 || return 1
    kc -n e2e-01 delete cm cm-5 >/dev/null 2>&1
}

# watch_check: the watch saw the 5 ADDED, the MODIFIED with the new value and the DELETED (waits up to
# 20 s).
watch_check() {
    local i a m d
    for i in $(seq 1 40); do
        a=$(grep -c '"type": *"ADDED"' "$K8S_WORK/watch.out")
        m=$(grep -c '"type": *"MODIFIED"' "$K8S_WORK/watch.out")
        d=$(grep -c '"type": *"DELETED"' "$K8S_WORK/watch.out")
        [ "$a" -ge 5 ] && [ "$m" -ge 1 ] && [ "$d" -ge 1 ] && grep -q '"index": *"changed"' "$K8S_WORK/watch.out" && break
        sleep 0.5
    done
    kill "$WATCH_PID" 2>/dev/null
    wait "$WATCH_PID" 2>/dev/null
    STEP_INFO="ADDED $a, MODIFIED $m, DELETED $d"
    [ "$a" -ge 5 ] && [ "$m" -ge 1 ] && [ "$d" -ge 1 ] || { STEP_ERR="$STEP_INFO ($(head -c 300 "$K8S_WORK/watch.err"))"; return 1; }
}

# step_delete_namespaces: deletes the 10 namespaces and waits (up to 300 s) until they are gone; the
# namespace controller must first delete everything in them (bound by its client rate limit).
step_delete_namespaces() {
    kc delete ns -l e2e=ns --wait=false >"$K8S_WORK/step.out" 2>&1 \
        || { STEP_ERR=$(tail -3 "$K8S_WORK/step.out"); return 1; }
    local deadline=$(( $(date +%s) + 300 )) n
    while [ "$(date +%s)" -lt "$deadline" ]; do
        n=$(KC_TIMEOUT=20 kc get ns -l e2e=ns -o name 2>/dev/null | wc -l)
        [ "$n" -eq 0 ] && return 0
        sleep 0.2
    done
    STEP_ERR="$n namespaces still there after 300 s"
    return 1
}

# check_compaction: the apiserver's compactor ran: compact_rev_key reached version >= 2 (its second
# round calls Compact at the revision the first round saw), and the store refuses a read below it.
check_compaction() {
    local deadline=$(( $(date +%s) + ${1:-90} )) j ver val out
    while [ "$(date +%s)" -lt "$deadline" ]; do
        j=$(ectl get compact_rev_key -w json 2>/dev/null)
        ver=$(sed -n 's/.*"version":\([0-9]*\).*/\1/p' <<<"$j")
        if [ -n "$ver" ] && [ "$ver" -ge 2 ]; then
            val=$(ectl get compact_rev_key --print-value-only)
            # the compactor puts the key, then calls Compact: a read just below is refused once it ran
            out=$(ectl get /registry/namespaces/default --rev=$((val - 1)) 2>&1)
            grep -q "compacted" <<<"$out" && break
        fi
        sleep 1
    done
    STEP_INFO="compact_rev_key version ${ver:-none}, value ${val:-none}; read at $((${val:-1} - 1)): $(tail -1 <<<"$out" | cut -c1-80)"
    [ -n "$ver" ] && [ "$ver" -ge 2 ] && grep -q "compacted" <<<"$out" || { STEP_ERR="$STEP_INFO"; return 1; }
}
