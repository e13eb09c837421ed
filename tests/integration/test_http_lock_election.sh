#!/bin/bash
# test_http_lock_election.sh: the JSON gateway's Lock and Election paths (/v3/lock/lock, unlock,
# /v3/election/campaign, proclaim, leader, observe, resign) with curl, each request sent to Debian's
# etcd and to cetcd and the answers compared (ids normalized): a second Lock waits until the first is
# unlocked, a Lock whose client goes leaves no key, Campaign waits behind the leader, Observe streams
# the leaders, errors in etcd's JSON shape. Then the same services with auth on (etcdctl lock as a user
# with and without permission, a wait that ends as the user), and, on cetcd only, a bcrypt hash asked
# for through the gateway that does not hold up the loop.
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C

b64() { printf '%s' "$1" | base64 -w0; }

# post URL DATA [curl args]: sets CODE and BODY.
post() {
    local url=$1 data=$2
    shift 2
    BODY=$(curl -s -m 10 -D "$T_TMP/hdr" -X POST --data-binary "$data" "$@" "$url")
    CODE=$(awk 'NR==1 {print $2}' "$T_TMP/hdr")
}

# norm: ids and term differ between two servers, and so do leases the server picked (a key made
# for one ends in its id in hex); keys sorted, so field order is ignored. One value a line.
norm() {
    jq -S -c 'walk(if type == "object" then
        with_entries(if (.key | test("^(cluster_id|member_id|raft_term)$")) then .value = "X"
            elif .key == "lease" and (.value | tostring | test("^[0-9]{6,}$")) then .value = "LEASE"
            elif .key == "key" and (.value | type) == "string" then
                .value = (.value | @base64d | sub("/[0-9a-f]{6,}$"; "/LEASE"))
            else . end)
        else . end)' 2>/dev/null || echo "NOT JSON: $1"
}

# gw NAME PATH JSON [curl args]: the same request to etcd and cetcd; status and normalized body match.
gw() {
    local name=$1 path=$2 data=$3 want
    shift 3
    post "http://$ETCD_EP$path" "$data" "$@"
    want="$CODE $(norm <<<"$BODY")"
    post "http://$CETCD_EP$path" "$data" "$@"
    t_eq "gateway $name (same as etcd)" "$want" "$CODE $(norm <<<"$BODY")"
}

# on_both NAME FN: runs FN EP OUT against each server (OUT: a file for what it saw); outputs match.
on_both() {
    local name=$1 fn=$2 ep
    for ep in "$ETCD_EP" "$CETCD_EP"; do
        : >"$T_TMP/both.$ep"
        "$fn" "$ep" "$T_TMP/both.$ep"
    done
    t_eq "$name (same as etcd)" "$(cat "$T_TMP/both.$ETCD_EP")" "$(cat "$T_TMP/both.$CETCD_EP")"
}

# say OUT LABEL: appends "LABEL CODE <normalized body>" to OUT. FailedPrecondition is 412 from etcd
# 3.4's gateway, 400 from 3.5's (grpc-gateway 1.16) and cetcd.
say() {
    [ "$CODE" = 412 ] && CODE=400
    echo "$2 $CODE $(norm <<<"$BODY")" >>"$1"
}

grant() { post "http://$1/v3/lease/grant" "{\"TTL\":300,\"ID\":$2}"; }

start_etcd || { t_fail "start etcd"; t_finish; exit 1; }
start_cetcd || { t_fail "start cetcd"; t_finish; exit 1; }

# ---------- Lock ----------
gw "lock, a new session lease" /v3/lock/lock "{\"name\":\"$(b64 l0)\"}"

# A lock held, a second one of the same name waits; it gets the lock when the first is unlocked.
lock_wait() {
    local ep=$1 out=$2 pid
    grant "$ep" 1001
    grant "$ep" 1002
    post "http://$ep/v3/lock/lock" "{\"name\":\"$(b64 w)\",\"lease\":1001}"
    say "$out" "first lock:"
    curl -s -m 10 -X POST --data-binary "{\"name\":\"$(b64 w)\",\"lease\":1002}" "http://$ep/v3/lock/lock" \
        >"$T_TMP/second" &
    pid=$!
    sleep 0.5
    kill -0 "$pid" 2>/dev/null && echo "second lock waits" >>"$out"
    post "http://$ep/v3/lock/unlock" "{\"key\":\"$(b64 w/3e9)\"}"
    say "$out" "unlock:"
    wait "$pid"
    BODY=$(cat "$T_TMP/second") CODE=-
    say "$out" "second lock:"
}
on_both "lock: a second lock waits until unlock" lock_wait

# A waiting lock whose client goes (curl gives up): its key goes too, as etcd's Mutex unlocks when
# its context ends; the holder keeps the lock.
lock_gone() {
    local ep=$1 out=$2
    grant "$ep" 1003
    curl -s -m 0.5 -X POST --data-binary "{\"name\":\"$(b64 w)\",\"lease\":1003}" "http://$ep/v3/lock/lock"
    echo "curl gave up: $?" >>"$out"
    sleep 0.3
    post "http://$ep/v3/kv/range" "{\"key\":\"$(b64 w/)\",\"range_end\":\"$(b64 w0)\",\"keys_only\":true}"
    say "$out" "keys left:"
}
on_both "lock: a waiter whose client goes leaves no key" lock_gone

# A request pipelined behind a Lock that waits is served once the Lock is answered.
lock_pipelined() {
    /usr/bin/python3 - "$1" >>"$2" <<'EOF'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
def req(path, body, close=False):
    return ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s"
            % (path, len(body), "Connection: close\r\n" if close else "", body)).encode()
def call(data):
    c = socket.create_connection((host, int(port)))
    c.sendall(data)
    return c.recv(65536)
held = call(req("/v3/lock/lock", '{"name":"cA==","lease":1002}', True))  # "p": w's lease is free
s = socket.create_connection((host, int(port)))
s.sendall(req("/v3/lock/lock", '{"name":"cA==","lease":1004}') + req("/v3/kv/range", '{"key":"cC8=","range_end":"cDA=","count_only":true}', True))
time.sleep(0.5)
call(req("/v3/lock/unlock", '{"key":"cC8zZWE="}', True))
s.settimeout(5)
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
print("replies on the pipelining connection:", out.count(b"HTTP/1.1 200 OK"), b'"count":"1"' in out)
EOF
}
grant "$ETCD_EP" 1004 && grant "$CETCD_EP" 1004
on_both "lock: a request pipelined behind a waiting lock is served after it" lock_pipelined

gw "unlock a key that is not there" /v3/lock/unlock "{\"key\":\"$(b64 nothing/1)\"}"
gw "unlock the held lock" /v3/lock/unlock "{\"key\":\"$(b64 w/3ea)\"}"
gw "lock, malformed JSON" /v3/lock/lock '{"name":'
gw "lock, a lease that does not exist" /v3/lock/lock "{\"name\":\"$(b64 w)\",\"lease\":999}"
gw "unlock, malformed JSON" /v3/lock/unlock 'xx'
post "http://$CETCD_EP/v3/lock/lock" '{}' -X GET
t_eq "lock: GET is not allowed" "405" "$CODE"

# ---------- Election ----------
# Campaign, Leader, Proclaim; Observe sees the leader, its new value, and the next leader once the
# first resigns (a second Campaign waits until then); Resign; no leader left.
election() {
    local ep=$1 out=$2 pid spid e leader
    e=$(b64 e)
    grant "$ep" 2001
    grant "$ep" 2002
    post "http://$ep/v3/election/campaign" "{\"name\":\"$e\",\"value\":\"$(b64 v1)\",\"lease\":2001}"
    say "$out" "campaign:"
    leader=$(jq -c .leader <<<"$BODY")
    post "http://$ep/v3/election/leader" "{\"name\":\"$e\"}"
    say "$out" "leader:"
    timeout 2.5 curl -s --raw -N -D "$T_TMP/ohdr" -X POST --data-binary "{\"name\":\"$e\"}" \
        "http://$ep/v3/election/observe" >"$T_TMP/observe" &
    spid=$!
    sleep 0.3
    post "http://$ep/v3/election/proclaim" "{\"leader\":$leader,\"value\":\"$(b64 v2)\"}"
    say "$out" "proclaim:"
    curl -s -m 10 -X POST --data-binary "{\"name\":\"$e\",\"value\":\"$(b64 w1)\",\"lease\":2002}" \
        "http://$ep/v3/election/campaign" >"$T_TMP/second" &
    pid=$!
    sleep 0.5
    kill -0 "$pid" 2>/dev/null && echo "second campaign waits" >>"$out"
    post "http://$ep/v3/election/proclaim" "{\"leader\":$(jq -c '.rev = "1"' <<<"$leader"),\"value\":\"$(b64 x)\"}"
    say "$out" "proclaim, not the leader's revision:"
    post "http://$ep/v3/election/resign" "{\"leader\":$leader}"
    say "$out" "resign:"
    wait "$pid"
    BODY=$(cat "$T_TMP/second") CODE=-
    say "$out" "second campaign:"
    leader=$(jq -c .leader <<<"$BODY")
    sleep 0.3
    post "http://$ep/v3/election/leader" "{\"name\":\"$e\"}"
    say "$out" "leader:"
    post "http://$ep/v3/election/resign" "{\"leader\":$leader}"
    say "$out" "resign:"
    post "http://$ep/v3/election/leader" "{\"name\":\"$e\"}"
    say "$out" "leader:"
    wait "$spid"
    echo "observe: $(awk 'NR==1 {print $2}' "$T_TMP/ohdr") $(grep -ci '^transfer-encoding: chunked' "$T_TMP/ohdr")" >>"$out"
    http_chunks "$T_TMP/observe" | norm >>"$out"
}
on_both "election: campaign, leader, proclaim, observe, resign" election

gw "leader, none" /v3/election/leader "{\"name\":\"$(b64 nobody)\"}"
gw "proclaim without a leader" /v3/election/proclaim "{\"value\":\"$(b64 v)\"}"
gw "resign without a leader" /v3/election/resign '{}'
gw "resign a key that is not there" /v3/election/resign \
    "{\"leader\":{\"name\":\"$(b64 e)\",\"key\":\"$(b64 e/1)\",\"rev\":\"3\",\"lease\":\"1\"}}"
gw "proclaim a key that is not there" /v3/election/proclaim \
    "{\"leader\":{\"name\":\"$(b64 e)\",\"key\":\"$(b64 e/1)\",\"rev\":\"3\",\"lease\":\"2001\"},\"value\":\"$(b64 v)\"}"
gw "campaign, malformed JSON" /v3/election/campaign '{"name"'
gw "observe, malformed JSON" /v3/election/observe '[1'

# ---------- with auth ----------
# alice may read and write /locks/, bob nothing: etcdctl lock as each, a wait that ends as alice (the
# steps after it run as her), and the gateway's Lock with and without her token.
auth_setup() {
    local ep=$1
    {
        ctl "$ep" user add root:rootpw
        ctl "$ep" user grant-role root root
        ctl "$ep" user add alice:pw
        ctl "$ep" user add bob:pw
        ctl "$ep" role add locker
        ctl "$ep" role grant-permission locker --prefix=true readwrite /locks/
        ctl "$ep" user grant-role alice locker
        ctl "$ep" auth enable
    } >/dev/null 2>&1
}
auth_setup "$ETCD_EP"
auth_setup "$CETCD_EP"

# ctlw EP args...: etcdctl, its client's retry warnings cut to their error
ctlw() {
    ctl "$@" 2>&1 | sed -E 's/^\{"level":"warn".*"error":"(.*)"\}$/WARN: \1/'
    return "${PIPESTATUS[0]}"
}

auth_lock() {
    local ep=$1 out=$2 pid tok
    ctlw "$ep" --user alice:pw lock /locks/x echo alice got it >>"$out"
    echo "alice: $?" >>"$out"
    ctlw "$ep" --user bob:pw lock /locks/x echo bob got it >>"$out"
    echo "bob: $?" >>"$out"
    ctl "$ep" --user alice:pw lock /locks/y sleep 1.5 >/dev/null 2>&1 &
    pid=$!
    sleep 0.7
    ctlw "$ep" --user alice:pw lock /locks/y echo alice waited >>"$out"
    echo "alice after a wait: $?" >>"$out"
    wait "$pid"
    post "http://$ep/v3/auth/authenticate" '{"name":"alice","password":"pw"}'
    tok=$(jq -r .token <<<"$BODY")
    echo "authenticate: $CODE $([ -n "$tok" ] && [ "$tok" != null ] && echo token)" >>"$out"
    post "http://$ep/v3/lock/lock" "{\"name\":\"$(b64 /locks/g)\"}"
    say "$out" "gateway lock, no token:"
    post "http://$ep/v3/lock/lock" "{\"name\":\"$(b64 /other)\"}" -H "Authorization: $tok"
    say "$out" "gateway lock, alice, outside /locks/:"
    post "http://$ep/v3/lock/lock" "{\"name\":\"$(b64 /locks/g)\"}" -H "Authorization: $tok"
    say "$out" "gateway lock, alice:"
    post "http://$ep/v3/election/campaign" "{\"name\":\"$(b64 /locks/e)\",\"value\":\"$(b64 a)\"}" \
        -H "Authorization: $tok"
    say "$out" "gateway campaign, alice:"
    # a Lock that waits: the steps after the wait run as alice too
    post "http://$ep/v3/lease/grant" '{"TTL":300,"ID":3001}' -H "Authorization: $tok"
    post "http://$ep/v3/lease/grant" '{"TTL":300,"ID":3002}' -H "Authorization: $tok"
    post "http://$ep/v3/lock/lock" "{\"name\":\"$(b64 /locks/w)\",\"lease\":3001}" -H "Authorization: $tok"
    say "$out" "gateway lock, alice, first:"
    curl -s -m 10 -X POST -H "Authorization: $tok" --data-binary "{\"name\":\"$(b64 /locks/w)\",\"lease\":3002}" \
        "http://$ep/v3/lock/lock" >"$T_TMP/second" &
    pid=$!
    sleep 0.5
    kill -0 "$pid" 2>/dev/null && echo "alice's second lock waits" >>"$out"
    post "http://$ep/v3/lock/unlock" "{\"key\":\"$(b64 /locks/w/bb9)\"}" -H "Authorization: $tok"
    say "$out" "gateway unlock, alice:"
    wait "$pid"
    BODY=$(cat "$T_TMP/second") CODE=-
    say "$out" "gateway lock, alice, after the wait:"
    post "http://$ep/v3/election/leader" "{\"name\":\"$(b64 /locks/e)\"}" -H "Authorization: $tok"
    say "$out" "gateway leader, alice:"
    post "http://$ep/v3/auth/authenticate" '{"name":"alice","password":"wrong"}'
    say "$out" "authenticate, a wrong password:"
}
on_both "auth: lock and election as users with and without permission" auth_lock

# The gateway's UserAdd and UserChangePassword (which hash, answered later) and Authenticate with the
# new password.
auth_users() {
    local ep=$1 out=$2 rtok ctok
    post "http://$ep/v3/auth/authenticate" '{"name":"root","password":"rootpw"}'
    rtok=$(jq -r .token <<<"$BODY")
    post "http://$ep/v3/auth/user/add" '{"name":"carol","password":"c1"}' -H "Authorization: $rtok"
    say "$out" "user add:"
    post "http://$ep/v3/auth/user/add" '{"name":"carol","password":"c1"}' -H "Authorization: $rtok"
    say "$out" "user add again:"
    post "http://$ep/v3/auth/user/add" '{"name":"dave","password":"d"}'
    say "$out" "user add, no token:"
    post "http://$ep/v3/auth/user/changepw" '{"name":"carol","password":"c2"}' -H "Authorization: $rtok"
    say "$out" "change password:"
    post "http://$ep/v3/auth/user/changepw" '{"name":"nobody","password":"c2"}' -H "Authorization: $rtok"
    say "$out" "change password, no such user:"
    post "http://$ep/v3/auth/authenticate" '{"name":"carol","password":"c1"}'
    say "$out" "authenticate, the old password:"
    post "http://$ep/v3/auth/authenticate" '{"name":"carol","password":"c2"}'
    ctok=$(jq -r .token <<<"$BODY")
    echo "authenticate, the new password: $CODE $([ -n "$ctok" ] && [ "$ctok" != null ] && echo token)" >>"$out"
    post "http://$ep/v3/auth/authenticate" '{"name":"nobody","password":"x"}'
    say "$out" "authenticate, no such user:"
}
on_both "auth: the gateway's user add, change password, authenticate" auth_users
stop_etcd

# ---------- a hash asked for through the gateway runs off the loop (cetcd only) ----------
# At --bcrypt-cost 14 a hash takes about a second; a gRPC Status, asked for meanwhile, waits for none
# of it (auth_grpc_checks.py's loop check, its Authenticate sent to /v3/auth/authenticate).
stop_cetcd
unset CETCD_DIR
start_cetcd --bcrypt-cost 14 || t_fail "cetcd-only: start at cost 14"
{
    ctl "$CETCD_EP" user add root --new-user-password=rootpw
    ctl "$CETCD_EP" user grant-role root root
    ctl "$CETCD_EP" auth enable
} >/dev/null 2>&1
t_eq "cetcd-only: a gateway Authenticate hashes off the loop" \
    "authenticate_slow: True
status_meanwhile_fast: True" \
    "$(/usr/bin/python3 "$(dirname "$0")/auth_grpc_checks.py" "$CETCD_EP" gateway-loop 2>"$T_TMP/loop.err")"
cat "$T_TMP/loop.err"
stop_cetcd
t_finish
