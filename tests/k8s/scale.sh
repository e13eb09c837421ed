#!/bin/bash
# tests/k8s/scale.sh: 100k ConfigMaps of 1 KiB under /registry/ (K8S_SCALE_N), in cetcd and in Debian's
# etcd side by side (both running, fsync on), then K8S_SCALE_RUNS rounds (3), alternating the order, of:
# the apiserver's start-up until its watch cache holds every ConfigMap (exec to the first answer of a
# resourceVersion=0 list, which waits for the cache's initial list of 100k in pages of 10,000), a full
# list (one request, read from the store) and a chunked list (limit=500 with continue, as kubectl does).
#
# How the objects get in: the apiserver writes one ConfigMap (protobuf, as it stores them); scaletool
# copies it straight into the store under 99,999 other names of the same length (so the protobuf
# lengths hold), in Txns of 100 puts from 8 clients. The apiserver decodes them like its own (the lists
# below count every one, and one is read back through kubectl). Writing JSON would work too (the
# apiserver's storage codec recognizes JSON), but protobuf is what a real cluster's store holds.
# Each round also times the store alone doing the same reads (scaletool range: one Range of all, pages
# of 500 and of 10,000 pinned to the first page's revision) and takes the apiserver's own measure of
# its ConfigMap list calls (etcd_request_duration_seconds) and, from /proc, the CPU time the store and
# the apiserver spent in each step, to say which steps are bound by the store at all. cetcd runs with
# a reply budget that fits the one-request list of all (~127 MB; its default is 64 MiB a reply, issue
# 11): K8S_SCALE_CETCD_FLAGS, default --max-reply-bytes 256 MiB and --max-reply-pool-bytes 1 GiB. A
# step that fails is counted and shown as failed in the table.
# Medians into bench/RESULTS.md between its "k8s-scale" markers (K8S_BENCH_RESULTS moves it).
cd "$(dirname "$0")/../.." || exit 1
source tests/k8s/lib.sh
trap 'k8s_stop_all' EXIT
trap 'k8s_stop_all; exit 130' INT TERM

N=${K8S_SCALE_N:-100000}
RUNS=${K8S_SCALE_RUNS:-3}
OUT=${K8S_BENCH_RESULTS:-bench/RESULTS.md}
k8s_have_binaries || { echo "no Kubernetes binaries in $K8S_BIN: run scripts/k8s-build.sh"; exit 1; }
[ -x "$CETCD_BIN" ] || { echo "no cetcd at $CETCD_BIN"; exit 1; }
TOOL=$K8S_CACHE/scaletool
GOCACHE=${GOCACHE:-$K8S_CACHE/gocache-tests} GO111MODULE=off GOPATH=/usr/share/gocode \
    timeout 300 go build -o "$TOOL" ./tests/k8s/scaletool || { echo "scaletool does not build"; exit 1; }
FAILED=0
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
DATA=$(mktemp "$K8S_CACHE/scale.XXXXXX.tsv")
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(now)
k8s_workdir || exit 1
PATH_CM=/api/v1/namespaces/scale/configmaps

# cpu PID: the process's CPU time so far (user + system), in seconds
TICK=$(getconf CLK_TCK)
cpu() { awk -v t="$TICK" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# cpu_row STORE ROUND KEY PID T0: the CPU seconds PID spent since T0 (from cpu), as a row of DATA
cpu_row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(echo "$(cpu "$4") - $5" | bc)" >>"$DATA"; }

# list ARGS...: scaletool list against the running apiserver; prints "items pages bytes seconds".
list() {
    "$TOOL" list -server "https://127.0.0.1:$APISERVER_PORT" -token "$K8S_TOKEN" -ca "$K8S_WORK/pki/ca.crt" \
        -path "$PATH_CM" "$@"
}

# cetcd-only: etcd has no reply limit below gRPC's 2 GiB message size
read -r -a CETCD_FLAGS <<<"${K8S_SCALE_CETCD_FLAGS:---max-reply-bytes 268435456 --max-reply-pool-bytes 1073741824}"
# which cetcd this is, for the section's text (the repo's commit, unless the caller says)
CETCD_BUILT=${K8S_SCALE_CETCD_BUILT:-commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src storage 2>/dev/null || echo " plus the work tree's uncommitted changes")}

declare -A EP PID
for s in cetcd etcd; do
    STORE_DIR=$K8S_WORK/$s.data
    if [ "$s" = cetcd ]; then flags=("${CETCD_FLAGS[@]}"); else flags=(); fi
    k8s_start_store "$s" "${flags[@]}" || { fail "$s starts"; exit 1; }
    EP[$s]=$STORE_EP; PID[$s]=$STORE_PID
    k8s_start_apiserver || { fail "apiserver on $s"; exit 1; }
    kc create namespace scale >/dev/null &&
        kc -n scale create configmap cm-000000 --from-literal=payload="$(head -c 1024 /dev/zero | tr '\0' 'x')" >/dev/null \
        || { fail "template ConfigMap on $s"; exit 1; }
    k8s_stop_pid "$APISERVER_PID"
    k8s_log "$s: loading $N ConfigMaps"
    t=$("$TOOL" load -endpoints "$STORE_EP" -template /registry/configmaps/scale/cm-000000 -n "$N") \
        || { fail "load $N into $s"; exit 1; }
    printf '%s\t0\tload\t%s\n' "$s" "$t" >>"$DATA"
    c=$(ectl get /registry/configmaps/scale/ --prefix --limit 1 -w json | sed -n 's/.*"count":\([0-9]*\).*/\1/p')
    sz=$(du -sk "$STORE_DIR" | cut -f1)
    k8s_log "$s: loaded $c in $t s; data dir $((sz / 1024)) MiB"
    printf '%s\t0\tdisk\t%s\n' "$s" "$((sz / 1024))" >>"$DATA"
    [ "$c" = "$N" ] || fail "$s holds $c ConfigMaps, want $N"
done

for r in $(seq 1 "$RUNS"); do
    if [ $((r % 2)) -eq 1 ]; then order="cetcd etcd"; else order="etcd cetcd"; fi
    for s in $order; do
        STORE_EP=${EP[$s]}; STORE_PID=${PID[$s]}
        c0=$(cpu "$STORE_PID")
        k8s_exec_apiserver
        # start-up: exec to the answer of a list at resourceVersion=1 (not 0, which goes to the store
        # while the cache is not ready) for one name: the watch cache answers it only once its initial
        # list of every ConfigMap is in
        if out=$(list -rv 1 -selector metadata.name=cm-000000 -wait 300s) && [ "${out%% *}" = 1 ]; then
            t=$(echo "$(now) - $APISERVER_T0" | bc)
            printf '%s\t%s\tstartup\t%.2f\n' "$s" "$r" "$t" >>"$DATA"
            cpu_row "$s" "$r" cpu_startup "$STORE_PID" "$c0"
            cpu_row "$s" "$r" apicpu_startup "$APISERVER_PID" 0
            k8s_log "round $r $s: watch cache filled $(printf '%.2f' "$t") s after exec"
        else
            fail "round $r $s: apiserver start-up ($out)"; k8s_stop_pid "$APISERVER_PID"; continue
        fi
        for kind in chunked full; do
            c0=$(cpu "$STORE_PID"); a0=$(cpu "$APISERVER_PID")
            if [ $kind = full ]; then out=$(list 2>"$K8S_WORK/list.err"); else out=$(list -limit 500 2>"$K8S_WORK/list.err"); fi
            if [ -z "$out" ]; then
                fail "round $r $s: $kind list: $(cut -c1-400 "$K8S_WORK/list.err")"
                printf '%s\t%s\t%s\tFAIL\n' "$s" "$r" "$kind" >>"$DATA"
                continue
            fi
            read -r items pages bytes secs <<<"$out"
            [ "$items" = "$N" ] || fail "round $r $s: $kind list returned $items, want $N"
            printf '%s\t%s\t%s\t%s\n' "$s" "$r" "$kind" "$secs" >>"$DATA"
            cpu_row "$s" "$r" "cpu_$kind" "$STORE_PID" "$c0"
            cpu_row "$s" "$r" "apicpu_$kind" "$APISERVER_PID" "$a0"
            k8s_log "round $r $s: $kind list: $items items, $pages pages, $((bytes / 1048576)) MiB, $secs s"
            [ $kind = chunked ] || continue
            # the apiserver's own measure of its ConfigMap list calls to the store so far (the cache
            # fill and the chunked list; taken before the full list,
            # which cetcd may refuse): etcd_request_duration_seconds{operation="list"}
            v=$(kc get --raw /metrics 2>/dev/null | /usr/bin/python3 -c '
import sys
s = 0.0
for line in sys.stdin:
    if line.startswith("etcd_request_duration_seconds_sum{operation=\"list\",type=\"*[]core.ConfigMap\"}"):
        s += float(line.rsplit(" ", 1)[1])
print("%.3f" % s)')
            [ -n "$v" ] && printf '%s\t%s\tapilist\t%s\n' "$s" "$r" "$v" >>"$DATA"
        done
        # the store alone, the same reads: one Range of everything, and pages of 500 and of 10,000
        for lim in 0 500 10000; do
            if out=$("$TOOL" range -endpoints "$STORE_EP" -prefix /registry/configmaps/scale/ -limit $lim 2>"$K8S_WORK/range.err"); then
                printf '%s\t%s\trange%s\t%s\n' "$s" "$r" "$lim" "${out##* }" >>"$DATA"
                k8s_log "round $r $s: store alone, limit $lim: $out"
            else
                printf '%s\t%s\trange%s\tFAIL\n' "$s" "$r" "$lim" >>"$DATA"
                fail "round $r $s: store alone, limit $lim: $(cut -c1-300 "$K8S_WORK/range.err")"
            fi
        done
        if [ "$r" = 1 ]; then
            got=$(kc -n scale get cm cm-054321 -o jsonpath='{.data.payload}' | wc -c)
            [ "$got" = 1024 ] || fail "$s: cm-054321 read back through kubectl: payload of $got bytes"
        fi
        rss=$(ps -o rss= -p "$STORE_PID" | tr -d ' ')
        printf '%s\t%s\trss\t%s\n' "$s" "$r" "$((rss / 1024))" >>"$DATA"
        k8s_stop_pid "$APISERVER_PID"
    done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
TOTAL=$(since "$T_START")
k8s_stop_all

TABLE=$(/usr/bin/python3 - "$DATA" "$N" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
n = int(sys.argv[2])
def v(store, key):
    return [float(r[3]) for r in rows if r[0] == store and r[2] == key and r[3] != "FAIL"]
def failed(store, key):
    return sum(1 for r in rows if r[0] == store and r[2] == key and r[3] == "FAIL")
out = ["| %s ConfigMaps of 1 KiB | cetcd median (min-max) | etcd median (min-max) | etcd / cetcd |" % format(n, ","),
       "|---|---|---|---|"]
for key, name, unit in [("startup", "apiserver start-up: exec to watch cache filled", "s"),
                        ("full", "full list, one request (from the store)", "s"),
                        ("chunked", "chunked list, limit=500 (%d pages from the store)" % ((n + 499) // 500), "s"),
                        ("cpu_startup", "store's CPU time in the start-up", "s"),
                        ("apicpu_startup", "apiserver's CPU time in the start-up", "s"),
                        ("cpu_full", "store's CPU time in the full list", "s"),
                        ("apicpu_full", "apiserver's CPU time in the full list", "s"),
                        ("cpu_chunked", "store's CPU time in the chunked list", "s"),
                        ("apicpu_chunked", "apiserver's CPU time in the chunked list", "s"),
                        ("apilist", "apiserver's own time in its ConfigMap list calls to the store: cache fill + chunked list (etcd_request_duration_seconds)", "s"),
                        ("range0", "store alone: one Range of all (what the full list asks)", "s"),
                        ("range500", "store alone: pages of 500 pinned to one revision (the chunked list's reads)", "s"),
                        ("range10000", "store alone: pages of 10,000 (the watch cache's initial list)", "s"),
                        ("load", "load straight into the store (Txns of 100, 8 clients)", "s"),
                        ("disk", "data dir after the load", "MiB"),
                        ("rss", "store RSS after the lists", "MiB")]:
    c, e = v("cetcd", key), v("etcd", key)
    def cell(x, f=0):
        if f:
            return "failed %d of %d" % (f, f + len(x)) + ("" if not x else "; " + cell(x))
        if not x:
            return "n/a"
        if len(x) == 1:
            return "%.2f %s" % (x[0], unit) if unit == "s" else "%d %s" % (x[0], unit)
        return "%.2f %s (%.2f-%.2f)" % (statistics.median(x), unit, min(x), max(x)) if unit == "s" else \
            "%d %s (%d-%d)" % (statistics.median(x), unit, min(x), max(x))
    ratio = "%.2fx" % (statistics.median(e) / statistics.median(c)) if c and e and statistics.median(c) > 0 else "n/a"
    out.append("| %s | %s | %s | %s |" % (name, cell(c, failed("cetcd", key)), cell(e, failed("etcd", key)), ratio))
print("\n".join(out))
EOF
)
echo "$TABLE"
# where each apiserver row's time goes (medians): the store's and the apiserver's CPU in it, and the
# store alone doing the same reads (Go clientv3 calls that also decode the reply: if anything an upper
# bound on the store's part); a row whose store CPU is under 15% of its time for both stores is named
# as not bound by the store
SHARE=$(/usr/bin/python3 - "$DATA" <<'EOF'
import statistics, sys, textwrap
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def vals(store, key):
    return [float(r[3]) for r in rows if r[0] == store and r[2] == key and r[3] != "FAIL"]
def med(store, key):
    x = [float(r[3]) for r in rows if r[0] == store and r[2] == key and r[3] != "FAIL"]
    return statistics.median(x) if x else None
def pair(key, fmt="%.2f"):
    c, e = med("cetcd", key), med("etcd", key)
    return "%s / %s s" % (fmt % c if c is not None else "n/a", fmt % e if e is not None else "n/a")
parts, bound = [], []
for key, alone, what in [("startup", "range10000", "start-up"), ("full", "range0", "full list"),
                         ("chunked", "range500", "chunked list")]:
    parts.append("%s %s, the store's CPU in it %s, the apiserver's %s, the store alone %s" %
                 (what, pair(key), pair("cpu_" + key), pair("apicpu_" + key), pair(alone)))
    if all(med(s, key) and med(s, "cpu_" + key) is not None and med(s, "cpu_" + key) < 0.15 * med(s, key)
           for s in ("cetcd", "etcd")):
        spread = max(max(vals(s, key)) - min(vals(s, key)) for s in ("cetcd", "etcd"))
        diff = abs(med("cetcd", key) - med("etcd", key))
        bound.append("the %s (the stores' medians %.2f s apart, %s the run-to-run spread of %.2f s)" %
                     (what, diff, "within" if diff <= spread else "outside", spread))
out = ["Where the time goes (medians, cetcd / etcd): " + "; ".join(parts) + "."]
if bound:
    out.append("Not bound by the store (its CPU under 15%% of the time with either store): %s. There the "
               "time is the apiserver's work (its CPU row), the client's decoding of the JSON, and "
               "waiting for a core on a shared machine. The store-alone rows compare the stores "
               "themselves." % "; ".join(bound))
print("\n\n".join(textwrap.fill(p, 100, break_on_hyphens=False) for p in out))
EOF
)
SECTION=$(cat <<EOF
<!-- k8s-scale:begin (written by tests/k8s/scale.sh: make k8s-scale) -->
### Kubernetes at scale: $N ConfigMaps (make k8s-scale)

$N ConfigMaps of 1 KiB in one namespace, in cetcd ($CETCD_BUILT, run with ${CETCD_FLAGS[*]})
and in Debian's etcd $("$ETCD_BIN" --version 2>/dev/null | sed -n 's/^etcd Version: //p') side by side (fsync on); the
objects are the apiserver's own protobuf encoding of one ConfigMap copied under other names straight
into the store. Then $RUNS rounds, alternating the order, of a kube-apiserver 1.20 started over each
store: its start-up until the ConfigMap watch cache is filled (it lists all $N from the store in pages
of 10,000), a full list (one request: one Range of $N keys) and a chunked list (limit=500 with
continue). JSON to the client, decoded by the same apiserver for both stores, so the apiserver's own
work is in every number. Run on $(date -u +%F) in ${TOTAL%.*} s on $(nproc) shared cores (load average
$LOAD0 at the start, $LOAD1 at the end).

$TABLE

The one-request list of 100k ConfigMaps of 1 KiB is a Range reply of 127 MB: over cetcd's default
reply budget of 64 MiB a reply (issue 11), which it refuses with RESOURCE_EXHAUSTED (HTTP 500 from the
apiserver). So cetcd runs here with \`${CETCD_FLAGS[*]}\`,
a cetcd-only setting: etcd has no such limit below gRPC's 2 GiB message size. Paged reads (the watch
cache's, kubectl's) fit the default budget. (Before commit 0dfc833 no reply over 32 MiB reached a
grpc-go client at all: the connection stopped reading while such a reply waited, so the client's
WINDOW_UPDATEs never came in and the apiserver's keepalive closed it after 40 s.) A "failed" cell
is a request that failed.

$SHARE
<!-- k8s-scale:end -->
EOF
)
/usr/bin/python3 - "$OUT" "$SECTION" <<'EOF'
import os, re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read() if os.path.exists(path) else ""
pat = re.compile(r"<!-- k8s-scale:begin.*?<!-- k8s-scale:end -->", re.S)
if pat.search(text):
    text = pat.sub(lambda m: section, text, count=1)
elif "<!-- k8s:end -->" in text:
    text = text.replace("<!-- k8s:end -->", "<!-- k8s:end -->\n\n" + section, 1)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
EOF
echo "table written to $OUT (raw: $DATA)"
k8s_cleanup_work
echo "scale: $FAILED failed"
[ "$FAILED" -eq 0 ]
