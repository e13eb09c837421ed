#!/bin/bash
# test_http_lease_watch.sh: the JSON gateway's lease paths (/v3/lease/grant, revoke, timetolive, leases,
# their /v3/kv/lease/ twins, keepalive) and /v3/watch with curl, each request sent to Debian's etcd and
# to cetcd and the answers compared (ids normalized): the streams' lines, and their framing (chunked,
# one {"result": ...} object and a newline per chunk, as etcd's grpc-gateway writes them).
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C

b64() { printf '%s' "$1" | base64 -w0; }

# post URL DATA: sets CODE and BODY.
post() {
    BODY=$(curl -s -D "$T_TMP/hdr" -X POST --data-binary "$2" "$1")
    CODE=$(awk 'NR==1 {print $2}' "$T_TMP/hdr")
}

# norm: the ids and term that differ between two servers, and the TTL left of a lease granted 30 s
# (it depends on when the request lands); keys sorted, so field order is ignored. One value a line.
norm() {
    jq -S -c 'walk(if type == "object" then
        with_entries(if (.key | test("^(cluster_id|member_id|raft_term|ID)$")) then .value = "X"
            elif .key == "TTL" and (.value | tostring | test("^(1[5-9]|2[0-9])$")) then .value = "LEFT"
            else . end)
        else . end)' 2>/dev/null || echo "NOT JSON: $1"
}

# gw NAME PATH JSON: the same request to etcd and cetcd; status and normalized body must match.
gw() {
    local name=$1 path=$2 data=$3 want
    post "http://$ETCD_EP$path" "$data"
    want="$CODE $(norm <<<"$BODY")"
    post "http://$CETCD_EP$path" "$data"
    t_eq "gateway $name (same as etcd)" "$want" "$CODE $(norm <<<"$BODY")"
}

# stream NAME PATH BODY WRITES: POST BODY to PATH on both servers (curl --raw, stopped after 1.5 s),
# running the function WRITES against each while the stream is open; the chunks must match.
stream() {
    local name=$1 path=$2 body=$3 writes=$4 ep out want pid
    for ep in "$ETCD_EP" "$CETCD_EP"; do
        out=$T_TMP/stream.$ep
        rm -f "$T_TMP/shdr"
        timeout 1.5 curl -s --raw -N -D "$T_TMP/shdr" -X POST --data-binary "$body" "http://$ep$path" >"$out" &
        pid=$!
        sleep 0.4
        [ -n "$writes" ] && "$writes" "$ep"
        wait "$pid"
        echo "$(awk 'NR==1 {print $2}' "$T_TMP/shdr" 2>/dev/null) $(grep -ci '^transfer-encoding: chunked' "$T_TMP/shdr" 2>/dev/null)" >"$out.n"
        http_chunks "$out" | norm >>"$out.n"
    done
    t_eq "stream $name (same as etcd)" "$(cat "$T_TMP/stream.$ETCD_EP.n")" "$(cat "$T_TMP/stream.$CETCD_EP.n")"
}

start_etcd || { t_fail "start etcd"; t_finish; exit 1; }
start_cetcd || { t_fail "start cetcd"; t_finish; exit 1; }
C=http://$CETCD_EP

# ---------- leases ----------
gw "lease grant with an ID" /v3/lease/grant '{"TTL":30,"ID":1234}'
gw "lease grant, the server's ID" /v3/lease/grant '{"TTL":20}'
# etcd 3.4's gateway answers FailedPrecondition with 412, 3.5's (grpc-gateway 1.16) and cetcd with 400
post "http://$ETCD_EP/v3/lease/grant" '{"TTL":30,"ID":1234}'
want=$(jq -S -c . <<<"$BODY")
post "$C/v3/lease/grant" '{"TTL":30,"ID":1234}'
t_eq "gateway lease grant, ID taken (etcd's body; 400 as etcd 3.5)" "400 $want" "$CODE $(jq -S -c . <<<"$BODY")"
gw "lease grant, TTL too large" /v3/lease/grant '{"TTL":"9000000001","ID":5}'
gw "put with the lease" /v3/kv/put "{\"key\":\"$(b64 lk)\",\"value\":\"$(b64 v)\",\"lease\":\"1234\"}"
gw "lease timetolive with keys" /v3/lease/timetolive '{"ID":1234,"keys":true}'
gw "kv/lease/timetolive" /v3/kv/lease/timetolive '{"ID":"1234"}'
gw "lease timetolive, no lease" /v3/lease/timetolive '{"ID":999}'
gw "lease leases" /v3/lease/leases '{}'
gw "kv/lease/leases" /v3/kv/lease/leases ''
post "$C/v3/lease/leases" '{}'
t_eq "cetcd's leases hold 1234" '["1234"]' "$(jq -c '[.leases[].ID | select(. == "1234")]' <<<"$BODY")"
gw "lease grant, TTL below the minimum" /v3/lease/grant '{"TTL":1,"ID":77}'
sleep 3.5
gw "the lease of TTL 1 (granted 2) has expired" /v3/lease/timetolive '{"ID":77}'

stream "lease keepalive, a lease and a missing one" /v3/lease/keepalive '{"ID":1234}{"ID":999}'
stream "lease keepalive, empty body" /v3/lease/keepalive ''
stream "lease keepalive, a bad second request ends the requests" /v3/lease/keepalive '{"ID":"1234"} {"ID":"x"}'
post "$C/v3/lease/keepalive" '{"ID":"x"}'
t_eq "lease keepalive, a bad first request: 500, code 2" "500 2" "$CODE $(jq -r .code <<<"$BODY")"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "$C/v3/lease/keepalive")
t_eq "lease keepalive, GET: 405" "405" "$CODE"
curl -s -X POST -d '{"TTL":10,"ID":55}' "http://$ETCD_EP/v3/lease/grant" >/dev/null
post "$C/v3/lease/grant" '{"TTL":10,"ID":55}'
sleep 2.2
post "$C/v3/lease/keepalive" '{"ID":55}'
t_eq "lease keepalive renews the lease" "10 10" \
    "$(jq -r .result.TTL <<<"$BODY") $(curl -s -X POST -d '{"ID":55}' "$C/v3/lease/timetolive" | jq -r .TTL | sed 's/^9$/10/')"

gw "lease revoke" /v3/lease/revoke '{"ID":1234}'
gw "its key is gone" /v3/kv/range "{\"key\":\"$(b64 lk)\"}"
gw "kv/lease/revoke" /v3/kv/lease/revoke '{"ID":55}'
gw "lease revoke, no lease" /v3/lease/revoke '{"ID":1234}'

# ---------- watch ----------
writes_foo() {
    local E=http://$1
    curl -s -X POST -d "{\"key\":\"$(b64 foo)\",\"value\":\"$(b64 bar)\"}" "$E/v3/kv/put" >/dev/null
    curl -s -X POST -d "{\"key\":\"$(b64 foo)\",\"value\":\"$(b64 baz)\"}" "$E/v3/kv/put" >/dev/null
    curl -s -X POST -d "{\"key\":\"$(b64 foo/x)\",\"value\":\"$(b64 1)\"}" "$E/v3/kv/put" >/dev/null
    curl -s -X POST -d "{\"key\":\"$(b64 foo)\",\"range_end\":\"$(b64 fop)\"}" "$E/v3/kv/deleterange" >/dev/null
}
stream "watch a key with prev_kv, live" /v3/watch "{\"create_request\":{\"key\":\"$(b64 foo)\",\"prev_kv\":true}}" writes_foo
stream "watch a prefix, NOPUT" /v3/watch \
    "{\"create_request\":{\"key\":\"$(b64 foo)\",\"range_end\":\"$(b64 fop)\",\"filters\":[\"NOPUT\"]}}" writes_foo
stream "watch from a revision (history)" /v3/watch "{\"create_request\":{\"key\":\"$(b64 foo)\",\"range_end\":\"$(b64 fop)\",\"start_revision\":\"2\"}}"
stream "watch, two creates in one body" /v3/watch \
    "{\"create_request\":{\"key\":\"$(b64 a)\"}} {\"create_request\":{\"key\":\"$(b64 b)\",\"watch_id\":\"5\"}}"
stream "watch, create then cancel" /v3/watch \
    "{\"create_request\":{\"key\":\"$(b64 a)\",\"watch_id\":7}}{\"cancel_request\":{\"watch_id\":\"7\"}}"
stream "watch, progress request" /v3/watch "{\"create_request\":{\"key\":\"$(b64 a)\"}}{\"progress_request\":{}}"
stream "watch, a bad second request" /v3/watch "{\"create_request\":{\"key\":\"$(b64 a)\"}} xx" writes_foo
stream "watch, empty body: open, nothing sent" /v3/watch ''
stream "watch, an empty range" /v3/watch "{\"create_request\":{\"key\":\"$(b64 b)\",\"range_end\":\"$(b64 a)\"}}"
gw "compaction" /v3/kv/compaction '{"revision":"4"}'
stream "watch from a compacted revision" /v3/watch "{\"create_request\":{\"key\":\"$(b64 foo)\",\"start_revision\":\"2\"}}"
post "$C/v3/watch" '{"create_request":'
t_eq "watch, a bad first request: 500, code 2" "500 2 unexpected EOF" "$CODE $(jq -r '"\(.code) \(.error)"' <<<"$BODY")"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "$C/v3/watch")
t_eq "watch, GET: 405" "405" "$CODE"

# the streams' clients went away: their connections closed, and the server still delivers events
fds() { ls /proc/"$CETCD_PID"/fd | wc -l; }
FD0=$(fds)
pids=()
for i in $(seq 1 20); do
    timeout 0.5 curl -s -N -X POST -d "{\"create_request\":{\"key\":\"$(b64 gone)\"}}" "$C/v3/watch" >/dev/null &
    pids+=($!)
done
wait "${pids[@]}"
REV=$(curl -s -X POST -d "{\"key\":\"$(b64 gone)\",\"value\":\"$(b64 1)\"}" "$C/v3/kv/put" | jq -r .header.revision)
sleep 0.3
t_eq "watch streams closed by their clients are gone" "$FD0" "$(fds)"
timeout 1 curl -s -N -X POST -d "{\"create_request\":{\"key\":\"$(b64 gone)\",\"start_revision\":\"$REV\"}}" "$C/v3/watch" >"$T_TMP/w"
t_eq "a new watch stream after them" "1 1" "$(grep -c '"created":true' "$T_TMP/w") $(grep -c '"events"' "$T_TMP/w")"
# a keep-alive connection goes on after a stream that ended (curl reuses it for the second URL)
out=$(curl -s -X POST -d '{"ID":55}' "$C/v3/lease/keepalive" --next -s -X POST -d '{}' "$C/v3/lease/leases")
t_eq "keep-alive connection reused after a keepalive stream" "1 1" \
    "$(grep -c '^{"result"' <<<"$out") $(grep -c '^{"header"' <<<"$out")"
kill -0 "$CETCD_PID" 2>/dev/null && t_pass "cetcd alive" || t_fail "cetcd alive"

stop_cetcd
stop_etcd
t_finish
