#!/bin/bash
# test_auth_etcdctl.sh: etcdctl's user, role and auth commands and the permission checks of every
# service, run as the same fixed scenarios against Debian's real etcd and cetcd (each on a fresh server)
# and compared step by step (stdout, stderr, exit code; ids, hashes and tokens normalized), including a
# restart and a compaction + defragment that must keep the auth state. Then cetcd-only checks of what
# etcdctl 3.4 cannot show (AuthStatus, the token header, token expiry, the JSON gateway's /v3/auth
# paths, etcd 3.5 rules that 3.4 lacks). AUTH_SELFTEST=1 runs etcd against etcd.
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C

SCEN_PID=
EP=
KIND=

# ids, hashes and snapshot sizes differ between two servers; the rest must not
norm_auth() {
    norm | sed -E \
        -e 's/\b[0-9a-f]{16}\b/LEASE/g; s/"ts":[^,]*,/"ts":T,/g' \
        -e 's/"(hash|hash_revision)":[0-9]+/"\1":H/g' \
        -e 's/^(\| +[^|]+\| +)[0-9]+( +\| +)[0-9]+( +\| +)[0-9]+( +\|)$/\1H\2R\3C\4/'
}

# s NAME etcdctl-args...: one step; stdin is empty.
s() { si "$1" "" "${@:2}"; }

# si NAME STDIN etcdctl-args...: one step with text on stdin (txn -i, user passwd --interactive=false).
si() {
    local name=$1 input=$2 rc; shift 2
    echo "## $name"
    if [ -n "$SCEN_PID" ] && ! kill -0 "$SCEN_PID" 2>/dev/null; then echo "SERVER DEAD"; return; fi
    printf '%s' "$input" | timeout 10 env ETCDCTL_API=3 etcdctl --endpoints "$EP" --dial-timeout=2s \
        --command-timeout=4s "$@" >"$T_TMP/out" 2>"$T_TMP/err"
    rc=$?
    norm_auth <"$T_TMP/out"
    norm_auth <"$T_TMP/err" | sed 's/^/E: /' | ${ERR_ORDER:-cat}
    echo "rc=$rc"
}

# su NAME etcdctl-args...: a step whose stderr lines come from two goroutines of etcdctl in either
# order (snapshot save logs "fetching snapshot" while its stream reader logs the failure): sorted.
su() { ERR_ORDER=sort si "$1" "" "${@:2}"; }

# sr NAME etcdctl-args...: a step whose output names the server (ids, versions, sizes): only its
# errors and exit code are compared.
sr() {
    echo "## $1"
    timeout 10 env ETCDCTL_API=3 etcdctl --endpoints "$EP" --dial-timeout=2s --command-timeout=4s "${@:2}" \
        </dev/null >/dev/null 2>"$T_TMP/err"
    echo "rc=$?"
    norm_auth <"$T_TMP/err" | sed 's/^/E: /'
}

# tx NAME COMPARES SUCCESS FAILURE etcdctl-args...: etcdctl txn -i fed three blocks.
tx() {
    local nl=$'\n' in="" b
    for b in "$2" "$3" "$4"; do
        if [ -n "$b" ]; then in+="$b$nl$nl"; else in+="$nl"; fi
    done
    si "$1" "$in" "${@:5}"
}

R=(--user root:rootpw)
A=(--user alice:apw)
B=(--user bob:bpw)

# Users and roles while auth is off: every management call and its errors.
scenario_manage() {
    s enable_no_root       auth enable
    s add_root             user add root --new-user-password=rootpw
    s add_alice            user add alice:apw
    s add_dup              user add alice --new-user-password=other
    s add_empty            user add "" --new-user-password=x
    s add_nopw             user add certonly --no-password
    s add_bob              user add bob --new-user-password=bpw
    s list_users           user list
    s list_users_js        -w json user list
    s get_alice            user get alice
    s get_alice_js         -w json user get alice
    s get_missing          user get nobody
    s role_add_ro          role add ro
    s role_add_rw          role add rw
    s role_add_dup         role add ro
    s role_add_empty       role add ""
    s role_list            role list
    s role_list_js         -w json role list
    s grant_prefix         role grant-permission ro read /a/ --prefix
    s grant_key            role grant-permission rw write /b/k
    s grant_range          role grant-permission rw readwrite /c/1 /c/5
    s grant_fromkey        role grant-permission rw read /z --from-key
    s grant_all            role grant-permission rw read "" --from-key
    s grant_update         role grant-permission rw readwrite /b/k
    s grant_second_end     role grant-permission rw write /c/1 /c/3
    s grant_missing_role   role grant-permission nope read /x
    s grant_bad_type       role grant-permission rw admin /x
    s role_get_rw          role get rw
    s role_get_rw_js       -w json role get rw
    s role_get_missing     role get nope
    s revoke_fromkey       role revoke-permission rw /z --from-key
    s revoke_again         role revoke-permission rw /z --from-key
    s revoke_range         role revoke-permission rw /c/1 /c/3
    s revoke_missing_role  role revoke-permission nope /x
    s role_get_after       role get rw
    s grant_role           user grant-role alice ro
    s grant_role_again     user grant-role alice ro
    s grant_role_rw        user grant-role alice rw
    s grant_role_missing   user grant-role alice nope
    s grant_role_nouser    user grant-role nobody ro
    s grant_root_role      user grant-role bob root
    s get_alice_detail     user get alice --detail
    s get_bob              user get bob
    s revoke_role          user revoke-role alice rw
    s revoke_role_again    user revoke-role alice rw
    s revoke_role_nouser   user revoke-role nobody rw
    s revoke_root_role     user revoke-role bob root
    si passwd_alice "newpw"$'\n' user passwd alice --interactive=false
    si passwd_missing "x"$'\n' user passwd nobody --interactive=false
    s role_delete_rw       role delete rw
    s role_delete_again    role delete rw
    s role_list_after      role list
    s get_alice_after      user get alice
    s delete_certonly      user delete certonly
    s delete_again         user delete certonly
    s delete_root_off      user delete root
    s add_root_again       user add root --new-user-password=rootpw
    s authenticate_off     "${R[@]}" get /a
    s root_role_missing    role get root
    s enable_grants_root   auth enable
    s role_get_root        "${R[@]}" role get root
    s user_get_root        "${R[@]}" user get root
    s list_after_enable    "${R[@]}" role list
    s disable              "${R[@]}" auth disable
    s disable_again        auth disable
}

# Setup for the scenarios that run with auth on: root, alice (read /a/), bob (readwrite [/c/1, /c/5),
# write /b/k, readwrite /l/), carol (no role).
auth_setup() {
    local c=(timeout 10 env ETCDCTL_API=3 etcdctl --endpoints "$EP" --command-timeout=4s)
    {
        "${c[@]}" user add root --new-user-password=rootpw
        "${c[@]}" user add alice --new-user-password=apw
        "${c[@]}" user add bob --new-user-password=bpw
        "${c[@]}" user add carol --new-user-password=cpw
        "${c[@]}" role add ro
        "${c[@]}" role add rw
        "${c[@]}" role grant-permission ro read /a/ --prefix
        "${c[@]}" role grant-permission rw readwrite /c/1 /c/5
        "${c[@]}" role grant-permission rw write /b/k
        "${c[@]}" role grant-permission rw readwrite /l/ --prefix
        "${c[@]}" user grant-role alice ro
        "${c[@]}" user grant-role bob rw
        "${c[@]}" put /a/x 1
        "${c[@]}" put /b/x 1
        "${c[@]}" put /c/2 1
        "${c[@]}" auth enable
    } >/dev/null 2>&1
}

# Who may do what once auth is on.
scenario_enforce() {
    auth_setup
    s anon_get             get /a/x
    s anon_put             put /a/x 2
    sr anon_status         endpoint status
    s bad_password         --user alice:wrong get /a/x
    s unknown_user         --user nobody:x get /a/x
    s root_put             "${R[@]}" put /a/y 2
    s root_get_all         "${R[@]}" get "" --prefix
    s alice_get            "${A[@]}" get /a/x
    s alice_get_prefix     "${A[@]}" get /a/ --prefix
    s alice_get_keys       "${A[@]}" get /a/x /a/z
    s alice_get_all        "${A[@]}" get "" --prefix
    s alice_get_over       "${A[@]}" get /a/x /b
    s alice_get_from       "${A[@]}" get /a/ --from-key
    s alice_get_b          "${A[@]}" get /b/x
    s alice_put            "${A[@]}" put /a/x 3
    s alice_del            "${A[@]}" del /a/x
    tx alice_txn_read      'value("/a/x") = "1"' 'get /a/x' 'get /a/y' "${A[@]}" txn -i
    tx alice_txn_put       'value("/a/x") = "1"' 'put /a/x 9' '' "${A[@]}" txn -i
    tx alice_txn_else_b    'value("/a/x") = "1"' 'get /a/x' 'get /b/x' "${A[@]}" txn -i
    tx alice_txn_else_put  'value("/a/x") = "1"' 'get /a/x' 'put /a/x 9' "${A[@]}" txn -i
    tx alice_txn_cmp_b     'value("/b/x") = "1"' 'get /a/x' '' "${A[@]}" txn -i
    tx alice_txn_del       '' 'del /a/x' '' "${A[@]}" txn -i
    s bob_put_in           "${B[@]}" put /c/2 x
    s bob_put_end          "${B[@]}" put /c/5 x
    s bob_put_out          "${B[@]}" put /c/7 x
    s bob_get_range        "${B[@]}" get /c/1 /c/5
    s bob_get_wider        "${B[@]}" get /c/1 /c/6
    s bob_get_sub          "${B[@]}" get /c/2 --prefix
    s bob_del_in           "${B[@]}" del /c/2
    s bob_put_wonly        "${B[@]}" put /b/k v
    s bob_get_wonly        "${B[@]}" get /b/k
    s bob_put_prev         "${B[@]}" put /b/k v2 --prev-kv
    s bob_del_prev         "${B[@]}" del /b/k --prev-kv
    s bob_del_wonly        "${B[@]}" del /b/k
    tx bob_txn_ok          'version("/c/3") = "0"' 'put /c/3 a' 'get /c/3' "${B[@]}" txn -i
    tx bob_txn_cmp_wonly   'version("/b/k") = "0"' 'put /c/3 a' '' "${B[@]}" txn -i
    s carol_get            --user carol:cpw get /a/x
    s alice_get_self       "${A[@]}" user get alice
    s alice_get_bob        "${A[@]}" user get bob
    s alice_role_own       "${A[@]}" role get ro
    s alice_role_other     "${A[@]}" role get rw
    s alice_user_list      "${A[@]}" user list
    s alice_role_list      "${A[@]}" role list
    s alice_user_add       "${A[@]}" user add eve --new-user-password=e
    s alice_role_add       "${A[@]}" role add x
    s alice_grant          "${A[@]}" role grant-permission ro readwrite /a/ --prefix
    s alice_passwd_self    "${A[@]}" user passwd alice --interactive=false
    s alice_disable        "${A[@]}" auth disable
    s alice_enable         "${A[@]}" auth enable
    s alice_compact        "${A[@]}" compaction 2
    s alice_defrag         "${A[@]}" defrag
    s alice_hashkv         "${A[@]}" endpoint hashkv
    s alice_hash           "${A[@]}" endpoint hash
    su alice_snapshot      "${A[@]}" snapshot save "$T_TMP/alice.db"
    s alice_alarm          "${A[@]}" alarm list
    sr alice_members       "${A[@]}" member list
    s alice_member_add     "${A[@]}" member add m2 --peer-urls=http://127.0.0.1:1
    s root_hashkv          "${R[@]}" -w json endpoint hashkv
    s root_defrag          "${R[@]}" defrag
    s alice_watch_b        "${A[@]}" watch /b/x
    s alice_watch_all      "${A[@]}" watch --prefix ""
    # leases: bob may revoke a lease only if he may write every key on it
    local lid
    lid=$(timeout 10 env ETCDCTL_API=3 etcdctl --endpoints "$EP" "${R[@]}" lease grant 300 2>/dev/null |
        awk '{print $2}')
    s root_put_lease       "${R[@]}" put /l/1 v --lease="$lid"
    s root_put_lease2      "${R[@]}" put /a/l v --lease="$lid"
    s bob_lease_grant      "${B[@]}" lease grant 100
    s bob_revoke           "${B[@]}" lease revoke "$lid"
    s bob_put_on_lease     "${B[@]}" put /l/2 v --lease="$lid"
    s root_revoke          "${R[@]}" lease revoke "$lid"
    s alice_revoke_gone    "${A[@]}" lease revoke "$lid"
    # root's own rules
    s root_delete_root     "${R[@]}" user delete root
    s root_revoke_root     "${R[@]}" user revoke-role root root
    s root_delete_rootrole "${R[@]}" role delete root
    si root_passwd_alice "apw2"$'\n' "${R[@]}" user passwd alice --interactive=false
    s alice_old_password   "${A[@]}" get /a/x
    s alice_new_password   --user alice:apw2 get /a/x
    s root_revoke_ro       "${R[@]}" user revoke-role alice ro
    s alice_after_revoke   --user alice:apw2 get /a/x
    s root_grant_ro        "${R[@]}" user grant-role alice ro
    s root_revoke_perm     "${R[@]}" role revoke-permission ro /a/ --prefix
    s alice_after_perm     --user alice:apw2 get /a/x
    s root_delete_alice    "${R[@]}" user delete alice
    s alice_deleted        --user alice:apw2 get /a/x
    s root_role_delete_rw  "${R[@]}" role delete rw
    s bob_after_role_del   "${B[@]}" get /c/1 /c/5
    s root_disable         "${R[@]}" auth disable
    s anon_after_disable   get /a/x
    s enable_again         auth enable
    s root_after_enable    "${R[@]}" user list
}

# restart_server: stops the scenario's server (SIGTERM) and starts it again on the same data dir. For
# etcd, as lib.sh's restart_etcd but waiting for member list (endpoint health needs a user with auth on).
restart_server() {
    if [ "$KIND" != etcd ]; then
        restart_cetcd && EP=$CETCD_EP && SCEN_PID=$CETCD_PID
        return
    fi
    local peer i
    peer=$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" member list 2>/dev/null | awk -F', ' 'NR==1 {print $4}')
    [ -n "$peer" ] || return 1
    stop_etcd
    etcd --name ref --data-dir "$ETCD_DIR" --listen-client-urls "http://$ETCD_EP" \
        --advertise-client-urls "http://$ETCD_EP" --listen-peer-urls "$peer" \
        --initial-advertise-peer-urls "$peer" --initial-cluster "ref=$peer" >>"$T_TMP/etcd.log" 2>&1 &
    ETCD_PID=$!
    SCEN_PID=$ETCD_PID
    T_PIDS+=("$ETCD_PID")
    wait_port "${ETCD_EP##*:}" "$ETCD_PID" || return 1
    for i in $(seq 1 100); do
        ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" member list >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# The auth state lives through restarts, a compaction and a defragment.
scenario_durable() {
    auth_setup
    s before_users         "${R[@]}" user list
    echo "## restart"; restart_server && echo ok
    s users_after          "${R[@]}" user list
    s roles_after          "${R[@]}" role list
    s rw_after             "${R[@]}" role get rw
    s bob_roles_after      "${R[@]}" user get bob
    s anon_after           get /a/x
    s alice_after          "${A[@]}" get /a/x
    s alice_denied_after   "${A[@]}" put /a/x 2
    s bob_after            "${B[@]}" put /c/3 x
    s root_role_add        "${R[@]}" role add late
    s root_user_del        "${R[@]}" user delete carol
    local i
    for i in 1 2 3 4 5 6; do
        timeout 10 env ETCDCTL_API=3 etcdctl --endpoints "$EP" "${R[@]}" put /c/3 "v$i" >/dev/null 2>&1
    done
    s compact              "${R[@]}" compaction 8
    s defrag               "${R[@]}" defrag
    s roles_after_defrag   "${R[@]}" role list
    echo "## restart2"; restart_server && echo ok
    s users_after2         "${R[@]}" user list
    s roles_after2         "${R[@]}" role list
    s alice_after2         "${A[@]}" get /a/x
    s alice_denied2        "${A[@]}" get /c/3
    s bob_after2           "${B[@]}" get /c/3
    s carol_gone           --user carol:cpw get /a/x
    s disable              "${R[@]}" auth disable
    echo "## restart3"; restart_server && echo ok
    s anon_disabled        get /c/3
    s users_disabled       user list
}

# g NAME PATH JSON [TOKEN]: one POST to the JSON gateway (with the token as Authorization header). An
# error is shown as its gRPC code and message only: etcd 3.4's older grpc-gateway orders the fields of
# its error body differently and maps some codes to other HTTP statuses than etcd 3.5's, as cetcd does.
g() {
    local auth=() out
    [ -n "${4:-}" ] && auth=(-H "Authorization: $4")
    echo "## $1"
    out=$(curl -s -m 10 -w '\nhttp=%{http_code}' "${auth[@]}" -X POST -d "$3" "http://$EP$2")
    if [[ "$out" == '{"error":'* ]]; then
        printf '%s\n' "$out" | head -1 | sed -E 's/.*"code":([0-9]+).*/code=\1/'
        printf '%s\n' "$out" | head -1 | sed -E 's/.*"message":"([^"]*)".*/message=\1/'
    else
        printf '%s\n' "$out" | sed -E \
            -e 's/"(cluster_id|member_id|raft_term)":"[0-9]+"/"\1":"X"/g' \
            -e 's/"token":"[A-Za-z]{16}[.][0-9]+"/"token":"TOKEN"/'
    fi
}

gw_token() {
    curl -s -m 10 -X POST -d "{\"name\":\"$1\",\"password\":\"$2\"}" "http://$EP/v3/auth/authenticate" |
        sed -nE 's/.*"token":"([^"]*)".*/\1/p'
}

# The JSON gateway's /v3/auth paths (grpc-gateway's JSON; bytes in base64), and its Authorization header.
scenario_gateway() {
    g add_root     /v3/auth/user/add '{"name":"root","password":"rootpw"}'
    g add_dup      /v3/auth/user/add '{"name":"root","password":"x"}'
    g add_alice    /v3/auth/user/add '{"name":"alice","password":"apw"}'
    g add_nopw     /v3/auth/user/add '{"name":"cert","options":{"no_password":true}}'
    g role_root    /v3/auth/role/add '{"name":"root"}'
    g role_ro      /v3/auth/role/add '{"name":"ro"}'
    g grant_root   /v3/auth/user/grant '{"user":"root","role":"root"}'
    g grant_alice  /v3/auth/user/grant '{"user":"alice","role":"ro"}'
    g perm_ro      /v3/auth/role/grant '{"name":"ro","perm":{"permType":"READ","key":"L2Ev","range_end":"L2Ew"}}'
    g perm_rw      /v3/auth/role/grant '{"name":"ro","perm":{"permType":"READWRITE","key":"L3c="}}'
    g role_get     /v3/auth/role/get '{"role":"ro"}'
    g role_list    /v3/auth/role/list '{}'
    g user_get     /v3/auth/user/get '{"name":"alice"}'
    g user_list    /v3/auth/user/list '{}'
    g revoke_perm  /v3/auth/role/revoke '{"role":"ro","key":"L3c="}'
    g revoke_role  /v3/auth/user/revoke '{"name":"alice","role":"nope"}'
    g changepw     /v3/auth/user/changepw '{"name":"alice","password":"apw2"}'
    g auth_off     /v3/auth/authenticate '{"name":"root","password":"rootpw"}'
    g put_a        /v3/kv/put '{"key":"L2EveA==","value":"MQ=="}'
    g enable       /v3/auth/enable '{}'
    g anon_range   /v3/kv/range '{"key":"L2EveA=="}'
    g bad_password /v3/auth/authenticate '{"name":"root","password":"x"}'
    g authenticate /v3/auth/authenticate '{"name":"alice","password":"apw2"}'
    g nopw_auth    /v3/auth/authenticate '{"name":"cert","password":""}'
    local root alice
    root=$(gw_token root rootpw)
    alice=$(gw_token alice apw2)
    g root_range   /v3/kv/range '{"key":"L2EveA=="}' "$root"
    g alice_range  /v3/kv/range '{"key":"L2EveA=="}' "$alice"
    g alice_put    /v3/kv/put '{"key":"L2EveA==","value":"Mg=="}' "$alice"
    g alice_users  /v3/auth/user/list '{}' "$alice"
    g alice_self   /v3/auth/user/get '{"name":"alice"}' "$alice"
    g bad_token    /v3/kv/range '{"key":"L2EveA=="}' "abcdefghijklmnop.1"
    g root_hash    /v3/maintenance/hash '{}' "$alice"
    g root_delete  /v3/auth/user/delete '{"name":"root"}' "$root"
    g del_alice    /v3/auth/user/delete '{"name":"alice"}' "$root"
    g alice_gone   /v3/kv/range '{"key":"L2EveA=="}' "$alice"
    g role_del     /v3/auth/role/delete '{"role":"ro"}' "$root"
    g disable      /v3/auth/disable '{}' "$root"
    g anon_after   /v3/kv/range '{"key":"L2EveA=="}'
}

read -ra SCENARIOS <<<"${AUTH_SCENARIOS:-manage enforce durable gateway tls}"

run_on() {
    local kind=$1 scen=$2 out=$3
    KIND=$kind
    start_fresh "$kind" "$out" || return 1
    "scenario_$scen" >"$out" 2>&1
    if kill -0 "$SCEN_PID" 2>/dev/null; then echo "## alive"; echo yes; else echo "## alive"; echo no; fi >>"$out"
    if [ "$kind" = etcd ]; then stop_etcd; else stop_cetcd; fi
    SCEN_PID=
}

block() { awk -v n="## $2" '$0 == n {on=1; next} /^## / {on=0} on' "$1"; }

other=cetcd
[ "${AUTH_SELFTEST:-0}" = 1 ] && other=etcd
[ "$other" = cetcd ] && [ ! -x "$CETCD_BIN" ] && echo "note: $CETCD_BIN does not exist; every step will fail"

for scen in "${SCENARIOS[@]}"; do
    [ "$scen" = tls ] && continue # below: its servers listen on https://
    ref=$T_TMP/ref.$scen; got=$T_TMP/got.$scen
    run_on etcd "$scen" "$ref"
    run_on "$other" "$scen" "$got"
    [ -n "${AUTH_KEEP:-}" ] && cp "$ref" "$AUTH_KEEP.etcd.$scen" && cp "$got" "$AUTH_KEEP.$other.$scen"
    if grep -q '^## start:' "$got"; then
        t_fail "$scen: $other starts" "$(tail -5 "$T_TMP/cetcd.log" 2>/dev/null)"
        continue
    fi
    while IFS= read -r n; do
        t_eq "$scen: $n" "$(block "$ref" "$n")" "$(block "$got" "$n")"
    done < <(grep -a '^## ' "$ref" | cut -c4-)
done

# --- TLS client certificates: with --client-cert-auth, a call without a token is the certificate's CN ---
P=$T_TMP/pki
mkdir -p "$P"
mkcert() { # NAME CN EXT: a key and a certificate signed by the test CA
    openssl req -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.csr" -subj "/CN=$2" 2>/dev/null &&
        printf '%s\n' "$3" >"$P/$1.ext" &&
        openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial \
            -out "$P/$1.crt" -days 2 -extfile "$P/$1.ext" 2>/dev/null
}
CLIENT_EXT="extendedKeyUsage=clientAuth"
tls_ready=no
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.crt" -days 2 -subj "/CN=ca" 2>/dev/null &&
    mkcert server cetcd $'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth' &&
    mkcert root root "$CLIENT_EXT" && mkcert alice alice "$CLIENT_EXT" && mkcert nobody nobody "$CLIENT_EXT" &&
    tls_ready=yes

# tls_start KIND: the server on an https:// listener requiring client certificates; sets EP, SCEN_PID.
tls_start() {
    local port pport tls=(--cert-file "$P/server.crt" --key-file "$P/server.key" --trusted-ca-file "$P/ca.crt"
        --client-cert-auth)
    port=$(free_port)
    EP=127.0.0.1:$port
    if [ "$1" = etcd ]; then
        pport=$(free_port)
        etcd --name ref --data-dir "$(mktemp -d "$T_TMP/etcd.XXXXXX")" --listen-client-urls "https://$EP" \
            --advertise-client-urls "https://$EP" --listen-peer-urls "http://127.0.0.1:$pport" \
            --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
            --initial-cluster "ref=http://127.0.0.1:$pport" "${tls[@]}" >>"$T_TMP/etcd.log" 2>&1 &
    else
        "$CETCD_BIN" --data-dir "$(mktemp -d "$T_TMP/cetcd.XXXXXX")" --listen-client-urls "https://$EP" \
            --advertise-client-urls "https://$EP" "${tls[@]}" >>"$T_TMP/cetcd.log" 2>&1 &
    fi
    SCEN_PID=$!
    T_PIDS+=("$SCEN_PID")
    wait_port "$port" "$SCEN_PID"
}

scenario_tls() {
    local C=(--cacert "$P/ca.crt") i
    local RC=("${C[@]}" --cert "$P/root.crt" --key "$P/root.key")
    local AC=("${C[@]}" --cert "$P/alice.crt" --key "$P/alice.key")
    local NC=("${C[@]}" --cert "$P/nobody.crt" --key "$P/nobody.key")
    for i in $(seq 1 50); do
        ETCDCTL_API=3 etcdctl --endpoints "https://$EP" "${RC[@]}" member list >/dev/null 2>&1 && break
        sleep 0.1
    done
    {
        for c in "user add root --new-user-password=rootpw" "user add alice --new-user-password=apw" \
            "role add ro" "role grant-permission ro read /a/ --prefix" "user grant-role alice ro" \
            "put /a/x 1" "put /b/x 1" "auth enable"; do
            ETCDCTL_API=3 etcdctl --endpoints "$EP" "${RC[@]}" $c
        done
    } >/dev/null 2>&1
    s root_cert_users      "${RC[@]}" user list
    s root_cert_put        "${RC[@]}" put /b/y 2
    s alice_cert_get       "${AC[@]}" get /a/x
    s alice_cert_get_b     "${AC[@]}" get /b/x
    s alice_cert_put       "${AC[@]}" put /a/x 2
    s alice_cert_users     "${AC[@]}" user list
    s alice_cert_self      "${AC[@]}" user get alice
    s alice_cert_watch     "${AC[@]}" watch /b/x
    s alice_cert_defrag    "${AC[@]}" defrag
    s nobody_cert_get      "${NC[@]}" get /a/x
    s nobody_cert_users    "${NC[@]}" user list
    s token_over_cert      "${AC[@]}" --user root:rootpw user list
    s wrong_password_cert  "${RC[@]}" --user root:x user list
}

if [[ " ${SCENARIOS[*]} " != *" tls "* ]]; then
    :
elif [ "$tls_ready" = yes ]; then
    for kind in etcd "$other"; do
        out=$T_TMP/tls.$kind
        if tls_start "$kind"; then scenario_tls >"$out" 2>&1; else echo "## start: no TLS server" >"$out"; fi
        kill "$SCEN_PID" 2>/dev/null
        wait "$SCEN_PID" 2>/dev/null
        SCEN_PID=
    done
    [ -n "${AUTH_KEEP:-}" ] && cp "$T_TMP/tls.etcd" "$AUTH_KEEP.etcd.tls" && cp "$T_TMP/tls.$other" "$AUTH_KEEP.$other.tls"
    while IFS= read -r n; do
        t_eq "tls: $n" "$(block "$T_TMP/tls.etcd" "$n")" "$(block "$T_TMP/tls.$other" "$n")"
    done < <(grep -a '^## ' "$T_TMP/tls.etcd" | cut -c4-)
else
    [ "$tls_ready" = yes ] || t_fail "tls: openssl made the certificates"
fi

[ "$other" = cetcd ] && source "$(dirname "$0")/auth_cetcd_checks.sh"

t_finish
