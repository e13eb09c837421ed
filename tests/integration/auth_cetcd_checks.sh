# auth_cetcd_checks.sh: the cetcd-only part of test_auth_etcdctl.sh (sourced by it, after the
# comparison with etcd): what etcdctl 3.4 cannot show, and etcd 3.5's rules where Debian's etcd 3.4
# differs (each named below), checked against fixed expectations.

# cx ARGS...: etcdctl against the cetcd of start_cetcd; stdout and stderr (warnings dropped) and rc.
cx() {
    timeout 15 env ETCDCTL_API=3 etcdctl --endpoints "$CETCD_EP" --dial-timeout=2s --command-timeout=8s "$@" \
        </dev/null 2>&1 | grep -v '"level":"warn"' | sed -E 's/\b[0-9a-f]{16}\b/LEASE/g'
    echo "rc=${PIPESTATUS[0]}"
}

cetcd_setup() {
    {
        cx user add root --new-user-password=rootpw
        cx user add alice --new-user-password=apw
        cx role add ro
        cx role grant-permission ro read /a/ --prefix
        cx user grant-role alice ro
        cx put /a/x 1
        cx put /b/x 1
        cx auth enable
    } >/dev/null
}

unset CETCD_DIR
start_cetcd --bcrypt-cost 4 --auth-token-ttl 2 || t_fail "cetcd-only: start"
cetcd_setup

# etcd 3.5's rules (Debian's etcd 3.4 has none of these)
t_eq "cetcd-only: 3.5 refuses an empty permission range" \
    "Error: etcdserver: invalid auth management
rc=1" "$(cx --user root:rootpw role grant-permission ro read /c/5 /c/1)"
t_eq "cetcd-only: 3.5 refuses a password over 72 bytes (bcrypt)" \
    "Error: rpc error: code = Unknown desc = bcrypt: password length exceeds 72 bytes
rc=1" "$(cx --user root:rootpw user add long --new-user-password="$(printf 'p%.0s' $(seq 73))")"
t_eq "cetcd-only: 3.5 takes a password of 72 bytes" \
    "User long72 created
rc=0" "$(cx --user root:rootpw user add long72 --new-user-password="$(printf 'p%.0s' $(seq 72))")"
t_eq "cetcd-only: 3.5 refuses a grant without a permission (etcd 3.4 crashes)" \
    '{"error":"etcdserver: permission not given","code":3,"message":"etcdserver: permission not given"}' \
    "$(curl -s -m 10 -H "Authorization: $(curl -s -m 10 -X POST -d '{"name":"root","password":"rootpw"}' \
        "http://$CETCD_EP/v3/auth/authenticate" | sed -nE 's/.*"token":"([^"]*)".*/\1/p')" \
        -X POST -d '{"name":"ro"}' "http://$CETCD_EP/v3/auth/role/grant")"
lid=$(ETCDCTL_API=3 etcdctl --endpoints "$CETCD_EP" --user root:rootpw lease grant 300 2>/dev/null |
    awk 'NR==1 {print $2}')
cx --user root:rootpw put /b/l v --lease="$lid" >/dev/null
t_eq "cetcd-only: 3.5 checks lease timetolive --keys (read on every key)" \
    "Error: etcdserver: permission denied
rc=2" "$(cx --user alice:apw lease timetolive "$lid" --keys)"
t_eq "cetcd-only: lease timetolive without keys needs nothing" \
    "rc=0" "$(cx --user alice:apw lease timetolive "$lid" | tail -1)"
t_eq "cetcd-only: a prefix watch inside the permission is served" \
    "rc=124" "$(timeout 2 env ETCDCTL_API=3 etcdctl --endpoints "$CETCD_EP" --user alice:apw watch --prefix /a/ \
        >/dev/null 2>&1; echo "rc=$?")"
t_eq "cetcd-only: --bcrypt-cost 4 is the cost of the stored hashes" \
    "yes" "$(grep -aqF '$2b$04$' "$CETCD_DIR"/*.log && echo yes || echo no)"

t_eq "cetcd-only: gRPC checks (AuthStatus, token metadata, nested txn)" \
    "token_format: True
status_root: ok enabled=1 revision=9
status_anon: INVALID_ARGUMENT etcdserver: user name is empty
status_alice: PERMISSION_DENIED etcdserver: permission denied
range_token: ok count=1
range_authorization: ok count=1
range_bogus: UNAUTHENTICATED etcdserver: invalid auth token
range_too_long: UNAUTHENTICATED etcdserver: invalid auth token
range_denied: PERMISSION_DENIED etcdserver: permission denied
nested_txn_put: PERMISSION_DENIED etcdserver: permission denied
nested_txn_read: ok True
watch_prefix: created
watch_from_key: canceled rpc error: code = PermissionDenied desc = etcdserver: permission denied
after_passwd: UNAUTHENTICATED etcdserver: invalid auth token" \
    "$(/usr/bin/python3 "$(dirname "$0")/auth_grpc_checks.py" "$CETCD_EP" main 2>&1)"
t_eq "cetcd-only: --auth-token-ttl 2: an idle token expires, a used one lives" \
    "busy_token: ok
idle_token: UNAUTHENTICATED etcdserver: invalid auth token" \
    "$(/usr/bin/python3 "$(dirname "$0")/auth_grpc_checks.py" "$CETCD_EP" expiry 2>&1)"

# tokens live in memory, as etcd's: a restart ends them; the auth state stays
tok=$(curl -s -m 10 -X POST -d '{"name":"root","password":"rootpw"}' "http://$CETCD_EP/v3/auth/authenticate" |
    sed -nE 's/.*"token":"([^"]*)".*/\1/p')
restart_cetcd
t_eq "cetcd-only: a token does not outlive a restart" \
    '{"error":"etcdserver: invalid auth token","code":16,"message":"etcdserver: invalid auth token"}' \
    "$(curl -s -m 10 -H "Authorization: $tok" -X POST -d '{}' "http://$CETCD_EP/v3/auth/user/list")"
stop_cetcd

# a slow hash runs off the loop: Status is answered while Authenticate hashes at cost 14
unset CETCD_DIR
start_cetcd --bcrypt-cost 14 || t_fail "cetcd-only: start at cost 14"
{
    cx user add root --new-user-password=rootpw
    cx user grant-role root root
    cx role add root
    cx auth enable
} >/dev/null
t_eq "cetcd-only: bcrypt runs off the loop" \
    "authenticate_slow: True
status_meanwhile_fast: True" \
    "$(/usr/bin/python3 "$(dirname "$0")/auth_grpc_checks.py" "$CETCD_EP" loop 2>"$T_TMP/loop.err")"
cat "$T_TMP/loop.err"
stop_cetcd
