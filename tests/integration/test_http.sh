#!/bin/bash
# test_http.sh: cetcd's HTTP/1.1 endpoints with curl: /health (exclude, serializable), /livez,
# /readyz, /version, /metrics (names present, counters move; also on --listen-metrics-urls) and every
# JSON gateway endpoint, compared with Debian's real etcd where the answer is deterministic.
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C

# get URL: sets CODE, CTYPE and BODY.
get() { req GET "$1"; }
post() { req POST "$1" "$2"; }
req() {
    local hdr="$T_TMP/hdr"
    if [ "$1" == POST ]; then
        BODY=$(curl -s -D "$hdr" -X POST --data-binary "$3" "$2")
    else
        BODY=$(curl -s -D "$hdr" -X "$1" "$2")
    fi
    CODE=$(awk 'NR==1 {print $2}' "$hdr")
    CTYPE=$(grep -i '^content-type:' "$hdr" | cut -d' ' -f2- | tr -d '\r')
    ALLOW=$(grep -i '^allow:' "$hdr" | cut -d' ' -f2- | tr -d '\r')
}

# norm: the ids and term that differ between two servers; keys sorted, so field order is ignored
# (etcd 3.4's gateway orders error bodies error/message/code, 3.5's error/code/message).
norm() {
    jq -S -c 'walk(if type == "object" then
        with_entries(if (.key | test("^(cluster_id|member_id|raft_term|memberID|ID|leader)$")) then .value = "X" else . end)
        else . end)' 2>/dev/null || echo "NOT JSON: $1"
}

# gw NAME PATH JSON: the same gateway request to etcd and cetcd; status and normalized body must match.
gw() {
    local name=$1 path=$2 data=$3 want
    post "http://$ETCD_EP$path" "$data"
    want="$CODE $(norm <<<"$BODY")"
    post "http://$CETCD_EP$path" "$data"
    t_eq "gateway $name (same as etcd)" "$want" "$CODE $(norm <<<"$BODY")"
}

b64() { printf '%s' "$1" | base64 -w0; }

start_etcd || { t_fail "start etcd"; t_finish; exit 1; }
METRICS_PORT=$(free_port)
start_cetcd --listen-metrics-urls "http://127.0.0.1:$METRICS_PORT" || { t_fail "start cetcd"; t_finish; exit 1; }
C=http://$CETCD_EP
MID=$(curl -s -X POST -d '{}' "$C/v3/maintenance/status" | jq -r .header.member_id)

# --- /health ---
get "$C/health"
t_eq "/health" "200 {\"health\":\"true\",\"reason\":\"\"}" "$CODE $BODY"
t_eq "/health content type (Go sniffs it as text)" "text/plain; charset=utf-8" "$CTYPE"
get "$C/health?serializable=true"
t_eq "/health?serializable=true" "200 {\"health\":\"true\",\"reason\":\"\"}" "$CODE $BODY"
req POST "$C/health" ""
t_eq "/health POST is 405 with Allow: GET" "405 GET Method Not Allowed" "$CODE $ALLOW $BODY"
post "$C/v3/maintenance/alarm" "{\"action\":\"ACTIVATE\",\"memberID\":\"$MID\",\"alarm\":\"NOSPACE\"}"
t_eq "gateway: activate NOSPACE" "200 [{\"memberID\":\"$MID\",\"alarm\":\"NOSPACE\"}]" "$CODE $(jq -c .alarms <<<"$BODY")"
get "$C/health"
t_eq "/health with NOSPACE" "503 {\"health\":\"false\",\"reason\":\"ALARM NOSPACE\"}" "$CODE $BODY"
get "$C/health?exclude=NOSPACE"
t_eq "/health?exclude=NOSPACE" "200 {\"health\":\"true\",\"reason\":\"\"}" "$CODE $BODY"
get "$C/health?exclude=CORRUPT&serializable=true"
t_eq "/health?exclude=CORRUPT still sees NOSPACE" "503" "$CODE"
get "http://127.0.0.1:$METRICS_PORT/health"
t_eq "/health on the metrics listener" "503" "$CODE"
post "$C/v3/kv/put" "{\"key\":\"$(b64 x)\",\"value\":\"$(b64 y)\"}"
t_eq "gateway put refused under NOSPACE" "429 8 etcdserver: mvcc: database space exceeded" "$CODE $(jq -r '"\(.code) \(.error)"' <<<"$BODY")"
post "$C/v3/maintenance/alarm" "{\"action\":\"DEACTIVATE\",\"memberID\":\"$MID\",\"alarm\":\"NOSPACE\"}"
get "$C/health"
t_eq "/health after disarm" "200" "$CODE"

# --- /livez, /readyz ---
get "$C/livez"
t_eq "/livez" "200 ok" "$CODE $BODY"
get "$C/livez?verbose"
t_eq "/livez?verbose" "$(printf '[+]serializable_read ok\nok')" "$BODY"
get "$C/readyz?verbose"
t_eq "/readyz?verbose (checks sorted by name)" \
    "$(printf '[+]data_corruption ok\n[+]linearizable_read ok\n[+]serializable_read ok\nok')" "$BODY"
get "$C/readyz/linearizable_read"
t_eq "/readyz/linearizable_read" "200 ok" "$CODE $BODY"
get "$C/livez/nope"
t_eq "/livez/nope is not found" "404" "$CODE"
post "$C/v3/maintenance/alarm" "{\"action\":\"ACTIVATE\",\"memberID\":\"$MID\",\"alarm\":\"CORRUPT\"}"
get "$C/readyz"
t_eq "/readyz with CORRUPT" "503 $(printf '[+]data_corruption failed'| tr + -): alarm activated: CORRUPT" \
    "$CODE $(head -1 <<<"$BODY")"
get "$C/readyz?exclude=data_corruption"
t_eq "/readyz?exclude=data_corruption" "200 ok" "$CODE $BODY"
get "$C/livez"
t_eq "/livez ignores CORRUPT" "200" "$CODE"
get "$C/health"
t_eq "/health with CORRUPT" "503 {\"health\":\"false\",\"reason\":\"ALARM CORRUPT\"}" "$CODE $BODY"
post "$C/v3/maintenance/alarm" "{\"action\":\"DEACTIVATE\",\"memberID\":\"$MID\",\"alarm\":\"CORRUPT\"}"
get "$C/readyz"
t_eq "/readyz after disarm" "200" "$CODE"

# --- /version ---
get "$C/version"
t_eq "/version" "200 application/json {\"etcdserver\":\"3.5.17\",\"etcdcluster\":\"3.5.0\"}" "$CODE $CTYPE $BODY"
get "http://$ETCD_EP/version"
t_eq "/version has etcd's fields" "$(jq -c keys <<<"$BODY")" "$(curl -s "$C/version" | jq -c keys)"

# --- /metrics ---
metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n {print $2}'; }
get "$C/metrics"
t_eq "/metrics content type" "200 text/plain; version=0.0.4; charset=utf-8" "$CODE $CTYPE"
missing=""
for n in etcd_server_has_leader etcd_server_is_leader etcd_mvcc_db_total_size_in_bytes \
    etcd_mvcc_db_total_size_in_use_in_bytes etcd_debugging_mvcc_keys_total etcd_mvcc_put_total \
    etcd_mvcc_delete_total etcd_mvcc_txn_total etcd_mvcc_range_total etcd_disk_wal_fsync_duration_seconds \
    etcd_network_client_grpc_received_bytes_total etcd_network_client_grpc_sent_bytes_total \
    grpc_server_handled_total process_resident_memory_bytes etcd_server_quota_backend_bytes; do
    grep -q "^# TYPE $n " <<<"$BODY" || missing+=" $n"
    curl -s "http://$ETCD_EP/metrics" | grep -q "^# TYPE $n " || missing+=" (etcd lacks $n)"
done
t_eq "/metrics has etcd's metric names and types" "" "$missing"
t_eq "etcd_server_has_leader 1, is_leader 1" "1 1" "$(metric "$C" etcd_server_has_leader) $(metric "$C" etcd_server_is_leader)"
P0=$(metric "$C" etcd_mvcc_put_total); D0=$(metric "$C" etcd_mvcc_delete_total); T0=$(metric "$C" etcd_mvcc_txn_total)
F0=$(metric "$C" etcd_disk_wal_fsync_duration_seconds_count); R0=$(metric "$C" etcd_network_client_grpc_received_bytes_total)
K0=$(metric "$C" etcd_debugging_mvcc_keys_total)
H='grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}'
G0=$(metric "$C" "$H")
ctl "$CETCD_EP" put m1 v >/dev/null; ctl "$CETCD_EP" put m2 v >/dev/null; ctl "$CETCD_EP" del m1 >/dev/null
ctl "$CETCD_EP" txn <<<$'\nput m3 v\nput m4 v\n\n' >/dev/null
t_eq "put/delete/txn counters move (a txn counts its puts too)" "$((P0 + 4)) $((D0 + 1)) $((T0 + 1))" \
    "$(metric "$C" etcd_mvcc_put_total) $(metric "$C" etcd_mvcc_delete_total) $(metric "$C" etcd_mvcc_txn_total)"
t_eq "keys gauge" "$((K0 + 3))" "$(metric "$C" etcd_debugging_mvcc_keys_total)"
t_eq "grpc_server_handled_total Put OK" "$((${G0:-0} + 2))" "$(metric "$C" "$H")"
[ "$(metric "$C" etcd_disk_wal_fsync_duration_seconds_count)" -ge $((F0 + 4)) ] && t_pass "fsync histogram counts commits" \
    || t_fail "fsync histogram counts commits"
[ "$(metric "$C" etcd_network_client_grpc_received_bytes_total)" -gt "$R0" ] && t_pass "received bytes move" \
    || t_fail "received bytes move"
t_eq "/metrics on the metrics listener" "$(metric "$C" etcd_mvcc_put_total)" \
    "$(metric "http://127.0.0.1:$METRICS_PORT" etcd_mvcc_put_total)"
ctl "$CETCD_EP" del --prefix m >/dev/null

# --- the JSON gateway, against etcd (both servers start at revision 1 and get the same requests) ---
ctl "$ETCD_EP" put m1 v >/dev/null; ctl "$ETCD_EP" put m2 v >/dev/null; ctl "$ETCD_EP" del m1 >/dev/null
ctl "$ETCD_EP" txn <<<$'\nput m3 v\nput m4 v\n\n' >/dev/null; ctl "$ETCD_EP" del --prefix m >/dev/null
# (cetcd made its alarm requests too, which do not change the revision)
gw "put" /v3/kv/put "{\"key\":\"$(b64 foo)\",\"value\":\"$(b64 bar)\"}"
gw "put prev_kv" /v3/kv/put "{\"key\":\"$(b64 foo)\",\"value\":\"$(b64 baz)\",\"prev_kv\":true}"
gw "put prevKv (lowerCamel)" /v3/kv/put "{\"key\":\"$(b64 foo)\",\"value\":\"$(b64 qux)\",\"prevKv\":true}"
gw "put foo2 lease 0" /v3/kv/put "{\"key\":\"$(b64 foo2)\",\"value\":\"$(b64 2)\",\"lease\":\"0\"}"
gw "range" /v3/kv/range "{\"key\":\"$(b64 foo)\"}"
gw "range prefix" /v3/kv/range "{\"key\":\"$(b64 foo)\",\"range_end\":\"$(b64 fop)\"}"
gw "range count_only" /v3/kv/range "{\"key\":\"$(b64 foo)\",\"range_end\":\"$(b64 fop)\",\"count_only\":true}"
gw "range limit, sort by enum name" /v3/kv/range \
    "{\"key\":\"$(b64 f)\",\"range_end\":\"AA==\",\"limit\":1,\"sort_order\":\"DESCEND\",\"sort_target\":\"KEY\"}"
gw "range sort by enum number" /v3/kv/range "{\"key\":\"$(b64 f)\",\"range_end\":\"AA==\",\"sort_order\":2}"
gw "range missing" /v3/kv/range "{\"key\":\"$(b64 none)\"}"
gw "range at revision" /v3/kv/range "{\"key\":\"$(b64 foo)\",\"revision\":\"8\"}"
gw "range future revision" /v3/kv/range "{\"key\":\"$(b64 foo)\",\"revision\":\"1000\"}"
gw "range empty key" /v3/kv/range "{}"
gw "put empty key" /v3/kv/put "{\"key\":\"\"}"
gw "put ignore_value with a value" /v3/kv/put "{\"key\":\"$(b64 foo)\",\"value\":\"$(b64 x)\",\"ignore_value\":true}"
gw "txn success" /v3/kv/txn "{\"compare\":[{\"key\":\"$(b64 t)\",\"target\":\"VERSION\",\"result\":\"EQUAL\",\
\"version\":\"0\"}],\"success\":[{\"request_put\":{\"key\":\"$(b64 t)\",\"value\":\"$(b64 1)\"}}],\
\"failure\":[{\"request_range\":{\"key\":\"$(b64 t)\"}}]}"
gw "txn failure" /v3/kv/txn "{\"compare\":[{\"key\":\"$(b64 t)\",\"target\":\"VERSION\",\"result\":\"EQUAL\",\
\"version\":\"0\"}],\"success\":[{\"request_put\":{\"key\":\"$(b64 t)\",\"value\":\"$(b64 1)\"}}],\
\"failure\":[{\"request_range\":{\"key\":\"$(b64 t)\"}}]}"
gw "txn numbers for enums, camelCase ops" /v3/kv/txn "{\"compare\":[{\"key\":\"$(b64 t)\",\"target\":1,\
\"result\":0,\"createRevision\":\"0\"}],\"success\":[{\"requestDeleteRange\":{\"key\":\"$(b64 t)\"}}],\
\"failure\":[{\"requestDeleteRange\":{\"key\":\"$(b64 t)\",\"prev_kv\":true}},{\"request_txn\":{}}]}"
gw "txn duplicate key" /v3/kv/txn "{\"success\":[{\"request_put\":{\"key\":\"$(b64 d)\"}},\
{\"request_put\":{\"key\":\"$(b64 d)\"}}]}"
gw "deleterange prev_kv" /v3/kv/deleterange "{\"key\":\"$(b64 foo)\",\"range_end\":\"$(b64 fop)\",\"prev_kv\":true}"
gw "deleterange none" /v3/kv/deleterange "{\"key\":\"$(b64 foo)\"}"
gw "compaction" /v3/kv/compaction "{\"revision\":\"5\"}"
gw "compaction again (compacted)" /v3/kv/compaction "{\"revision\":5}"
gw "range compacted revision" /v3/kv/range "{\"key\":\"$(b64 foo)\",\"revision\":\"3\"}"
gw "empty body = empty request" /v3/kv/range ""
gw "unknown fields ignored" /v3/kv/range "{\"key\":\"$(b64 foo2)\",\"bogus\":[1,{\"x\":null}]}"
gw "null fields ignored" /v3/kv/range "{\"key\":\"$(b64 foo2)\",\"range_end\":null}"
# etcd 3.4's gateway has no /v3/maintenance/hashkv (3.5 added it): compare with /hash there.
post "$C/v3/maintenance/hashkv" "{\"revision\":\"1000\"}"
t_eq "gateway hashkv future revision" "400 $(jq -S -c . <<<'{"error":"etcdserver: mvcc: required revision is a future revision","code":11,"message":"etcdserver: mvcc: required revision is a future revision"}')" "$CODE $(jq -S -c . <<<"$BODY")"
# etcd 3.4 leaves the Alarm response's header empty; 3.5 fills it (maintenance.go), as cetcd does.
post "$C/v3/maintenance/alarm" "{}"
t_eq "gateway alarm list empty (3.5: header filled)" "200 [\"header\"] $MID" "$CODE $(jq -c keys <<<"$BODY") $(jq -r .header.member_id <<<"$BODY")"
gw "member remove unknown" /v3/cluster/member/remove "{\"ID\":\"1234\"}"
gw "member add bad URL" /v3/cluster/member/add "{\"peerURLs\":[\"bad-url\"]}"
# grpc-gateway 1.16 (etcd 3.5) maps FailedPrecondition to 400; etcd 3.4's older gateway to 412.
post "$C/v3/maintenance/transfer-leadership" "{\"targetID\":\"1234\"}"
t_eq "gateway move leader unknown" "400 9 etcdserver: bad leader transferee" "$CODE $(jq -r '"\(.code) \(.error)"' <<<"$BODY")"
post "$C/v3/maintenance/transfer-leadership" "{\"targetID\":\"$MID\"}"
t_eq "gateway move leader to itself" "200 {}" "$CODE $BODY"

# responses whose values differ by design (sizes, hashes, ids, version): same fields as etcd
same_keys() {
    local name=$1 path=$2 filter=$3 want
    post "http://$ETCD_EP$path" "{}"; want=$(jq -c "$filter" <<<"$BODY")
    post "$C$path" "{}"
    t_eq "gateway $name: same fields as etcd" "$want" "$(jq -c "$filter" <<<"$BODY")"
}
same_keys "status" /v3/maintenance/status '[keys - ["dbSizeQuota", "downgradeInfo"]]'  # 3.4 lacks those two
same_keys "hash" /v3/maintenance/hash 'keys'
same_keys "member list" /v3/cluster/member/list '[keys, (.members[0] | keys)]'
post "$C/v3/cluster/member/list" "{}"
t_eq "gateway member list: this member" "$MID default http://$CETCD_EP" \
    "$(jq -r '.members[0] | "\(.ID) \(.name) \(.clientURLs[0])"' <<<"$BODY")"
post "$C/v3/maintenance/status" "{}"
t_eq "gateway status: version, leader, quota" "3.5.17 $MID 2147483648" \
    "$(jq -r '"\(.version) \(.leader) \(.dbSizeQuota)"' <<<"$BODY")"
post "$C/v3/maintenance/hashkv" "{}"
t_eq "gateway hashkv fields" '["compact_revision","hash","hash_revision","header"]' "$(jq -c keys <<<"$BODY")"

# gateway errors of its own
post "$C/v3/kv/range" '{"key":'
t_eq "malformed JSON: 400, code 3" "400 3 unexpected EOF" "$CODE $(jq -r '"\(.code) \(.error)"' <<<"$BODY")"
post "$C/v3/kv/range" '{"key":"!!notbase64"}'
t_eq "bad base64: 400, code 3" "400 3" "$CODE $(jq -r .code <<<"$BODY")"
post "$C/v3/kv/range" '{"key":"Zm9v","limit":"ten"}'
t_eq "bad int64: 400" "400" "$CODE"
post "$C/v3/kv/range" '[1]'
t_eq "not an object: 400" "400" "$CODE"
post "$C/v3/kv/range" "$(printf '%0.s[' $(seq 1 2000))"
t_eq "deep nesting: 400, server fine" "400 200" "$CODE $(curl -s -o /dev/null -w '%{http_code}' "$C/health")"
req GET "$C/v3/kv/range"
t_eq "GET on a gateway path: 405" "405" "$CODE"
post "$C/v3/kv/nope" "{}"
t_eq "unknown gateway path: 404" "404" "$CODE"
post "$C/v3/kv/put" "{\"key\":\"$(b64 '<&>')\",\"value\":\"$(head -c 3000 /dev/urandom | base64 -w0)\"}"
post "$C/v3/kv/range" "{\"key\":\"$(b64 '<&>')\"}"
t_eq "binary value round trip" "$(b64 '<&>')" "$(jq -r '.kvs[0].key' <<<"$BODY")"

stop_cetcd
stop_etcd
t_finish
