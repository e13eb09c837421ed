#!/bin/bash
# test_kv_etcdctl.sh: runs the same fixed etcdctl KV scenarios against Debian's real etcd and cetcd,
# each on a fresh server, and compares every step's stdout, stderr and exit code (cluster_id,
# member_id and raft_term normalized away). KV_SELFTEST=1 runs etcd against etcd to check the normalizer.
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C

SCEN_PID=   # pid of the server the running scenario talks to; steps stop early once it is gone
EP=

# s NAME etcdctl-args...: one step; stdin is /dev/null (a 1-arg put would read its value from stdin).
s() { si "$1" "" "${@:2}"; }

# si NAME STDIN etcdctl-args...: one step with the given text on stdin (for txn -i).
si() {
    local name=$1 input=$2 rc; shift 2
    echo "## $name"
    if [ -n "$SCEN_PID" ] && ! kill -0 "$SCEN_PID" 2>/dev/null; then echo "SERVER DEAD"; return; fi
    printf '%s' "$input" | timeout 8 env ETCDCTL_API=3 etcdctl --endpoints "$EP" --dial-timeout=2s \
        --command-timeout=3s "$@" >"$T_TMP/out" 2>"$T_TMP/err"
    rc=$?
    norm <"$T_TMP/out"
    norm <"$T_TMP/err" | sed 's/^/E: /'
    echo "rc=$rc"
}

# tx NAME COMPARES SUCCESS FAILURE etcdctl-args...: a step fed the text etcdctl txn -i reads:
# three blocks (compares, success ops, failure ops), each ended by a blank line.
tx() {
    local nl=$'\n' in="" b
    for b in "$2" "$3" "$4"; do
        if [ -n "$b" ]; then in+="$b$nl$nl"; else in+="$nl"; fi   # an empty block is its blank line
    done
    si "$1" "$in" "${@:5}"
}

scenario_kv() {
    s put_a          put a 1
    s put_b          put b 22
    s put_c          put c 333
    s put_foo        put foo bar
    s put_foo1       put foo/1 x
    s put_foo2       put foo/2 y
    s put_fop        put fop z
    s put_a_again    put a 1b
    s put_json       -w json put d 4444
    s put_fields     -w fields put e 5
    s get_a          get a
    s get_a_json     -w json get a
    s get_a_fields   -w fields get a
    s get_missing    get nope
    s get_missing_js -w json get nope
    s get_range      get a c
    s get_range_js   -w json get a d
    s get_range_empty get c a
    s get_prefix     get --prefix foo
    s get_prefix_js  -w json get --prefix foo
    s get_prefix_f   -w fields get --prefix foo/
    s get_all_prefix get --prefix ""
    s get_fromkey    get --from-key d
    s get_fromkey_js -w json get --from-key foo/
    s get_fromkey_all get --from-key ""
    s get_fromkey_end get --from-key zzz
    s get_limit1     get --prefix "" --limit 1
    s get_limit2_js  -w json get --prefix "" --limit 2
    s get_limit_all  -w json get --prefix foo --limit 3
    s get_limit_more -w json get --prefix foo --limit 4
    s get_limit0     get --prefix foo --limit 0
    s get_limit_neg  get --prefix foo --limit=-1
    local t o
    for t in KEY VERSION CREATE MODIFY VALUE; do
        for o in ASCEND DESCEND; do
            s "sort_${t}_$o" get --prefix "" --sort-by=$t --order=$o
        done
        s "sort_${t}_default" get --prefix "" --sort-by=$t
    done
    s sort_order_only     get --prefix "" --order=DESCEND
    s sort_lower          get --prefix fo --sort-by=value --order=descend
    s sort_limit_js       -w json get --prefix "" --sort-by=VALUE --order=DESCEND --limit 2
    s sort_mod_limit      get --prefix "" --sort-by=MODIFY --order=DESCEND --limit 3
    s sort_bad_target     get a --sort-by=bogus
    s sort_bad_order      get a --order=sideways
    s keys_only           get --prefix "" --keys-only
    s keys_only_js        -w json get --prefix foo --keys-only
    s keys_only_fields    -w fields get a --keys-only
    s value_only          get --prefix foo --print-value-only
    s value_only_one      get a --print-value-only
    s keys_and_values_only get --prefix foo --keys-only --print-value-only
    s consistency_s       get --prefix foo --consistency=s
    s consistency_s_js    -w json get a --consistency=s
    s consistency_bad     get a --consistency=x
    s rev_2               get a --rev=2
    s rev_8               get a --rev=8
    s rev_9               get a --rev=9
    s rev_prefix_5        get --prefix "" --rev=5
    s rev_prefix_5_js     -w json get --prefix "" --rev=5
    s rev_current         -w json get a --rev=11
    s rev_future          get a --rev=12
    s rev_future_far      get a --rev=100000
    s rev_future_js       -w json get --prefix "" --rev=12
    s rev_limit_sort      get --prefix "" --rev=6 --limit 2 --sort-by=CREATE --order=DESCEND
    s rev_keys_only       get --prefix "" --rev=4 --keys-only
    s get_empty_key       get ""
    s put_empty_key       put "" x
    s put_empty_key_js    -w json put "" x
    s put_prevkv          put a 1c --prev-kv
    s put_prevkv_new      put newkey v --prev-kv
    s put_prevkv_js       -w json put a 1d --prev-kv
    s put_prevkv_fields   -w fields put b 23 --prev-kv
    s put_ignore_value    put c --ignore-value
    s get_after_ignore    -w json get c
    s put_ignore_val_prev put c --ignore-value --prev-kv
    s put_ignore_missing  put nothere --ignore-value
    s put_ignore_with_val put c v --ignore-value
    s put_ignore_lease    put d 4445 --ignore-lease
    s put_ignore_lease_missing put nothere v --ignore-lease
    s put_ignore_lease_noval put d --ignore-lease
    s put_ignore_both     put d --ignore-value --ignore-lease
    s put_bad_lease       put k v --lease=1234abcd
    s put_bad_lease_hex   put k v --lease=zz
    s put_one_arg         put onlykey
    s put_empty_value     put emptyval ""
    s get_empty_value     get emptyval
    s get_empty_value_js  -w json get emptyval
    s put_space_key       put "key with spaces" "value with spaces"
    s put_unicode         put "ключ-🔑" "значение ✓"
    s put_binary          put $'\x01\xfe\xff' $'bin\x02val'
    s put_newline         put $'line1\nline2' $'v1\nv2'
    s put_dash_key        put -- -dash value
    s get_space           get "key with spaces"
    s get_unicode         get "ключ-🔑"
    s get_unicode_js      -w json get "ключ-🔑"
    s get_binary_hex      --hex get $'\x01\xfe\xff'
    s get_binary_raw      get $'\x01\xfe\xff'
    s get_binary_js       -w json get --prefix $'\x01'
    s get_newline         get $'line1\nline2'
    s get_dash            get -- -dash
    s put_ff              put $'\xff' ff
    s put_ffff            put $'\xff\xff' ffff
    s put_feff            put $'\xfe\xff' feff
    s get_prefix_ff       --hex get --prefix $'\xff'
    s get_prefix_feff     --hex get --prefix $'\xfe\xff'
    s get_prefix_fe       -w json get --prefix $'\xfe' --keys-only
    s get_fromkey_fe      --hex get --from-key $'\xfe'
    s del_prefix_ff       del --prefix $'\xff' --prev-kv --hex
    s put_long_key        put "$(printf 'L%.0s' $(seq 1 3000))" long
    s get_long_prefix     -w json get --prefix LLL --keys-only
    s del_long            del --prefix LLL
    s get_all_hex         --hex get --prefix ""
    s get_all_js          -w json get --prefix ""
    s del_one             del a
    s del_missing         del a
    s del_prevkv          del b --prev-kv
    s del_prevkv_js       -w json del c --prev-kv
    s del_prevkv_fields   -w fields del d --prev-kv
    s del_range           del e foo/2
    s del_range_prevkv    del foo/2 fop --prev-kv
    s del_prefix          del --prefix fo --prev-kv
    s del_prefix_none     del --prefix fo
    s del_fromkey         del --from-key n --prev-kv
    s del_empty_key       del ""
    s del_json_none       -w json del zzz
    s get_after_dels      -w json get --prefix ""
    s rev_before_dels     get --prefix "" --rev=11
    s rev_deleted_key     get a --rev=20
    s put_after_del       -w json put a again
    s get_recreated       -w json get a
    s del_all_prefix      del --prefix "" --prev-kv
    s get_none_left       -w json get --prefix ""
    s del_all_again       -w json del --from-key ""
}

scenario_txn() {
    s put_k1 put k1 v1
    s put_k2 put k2 v2
    s put_k2b put k2 v2b
    tx txn_value_eq 'value("k1") = "v1"' $'put k3 v3\nget k1\ndel k2' 'put kf fail' txn -i
    tx txn_value_ne 'value("k1") = "nope"' 'put k3 v3' $'get k --prefix\nput kf fail' txn -i
    tx txn_value_ne_js 'value("k1") != "v1"' 'put k4 v4' $'get k1\nput kf2 fail' -w json txn -i
    tx txn_value_gt 'value("k1") > "v0"' 'put k5 v5' 'put kx x' txn -i
    tx txn_value_lt 'value("k1") < "v0"' 'put k5 v5' 'get k5' txn -i
    tx txn_version $'version("k1") = "1"\nversion("k2") = "0"' 'put k6 v6' 'get k2' txn -i
    tx txn_version_missing 'version("missing") = "0"' 'put k7 v7' 'get k7' txn -i
    tx txn_version_gt 'version("k3") > "0"' 'get k3' '' -w json txn -i
    tx txn_create 'create("k1") = "2"' 'get k1' 'get k2' txn -i
    tx txn_create_lt 'create("k3") < "3"' 'put ok yes' 'put ok no' txn -i
    tx txn_mod 'mod("k3") = "5"' 'put k3 v3b' 'put k3 v3c' txn -i
    tx txn_mod_gt 'mod("k3") > "100"' 'put k3 big' 'get k3' -w json txn -i
    tx txn_mod_missing 'mod("missing") = "0"' 'get missing' 'put k9 no' txn -i
    tx txn_multi_cmp_fail $'value("k1") = "v1"\nvalue("k3") = "nope"' 'put kz z' $'del k2 --prev-kv\nput k1 back' txn -i
    tx txn_multi_cmp_fail_f $'value("k1") = "back"\nmod("k1") > "0"' $'get k1 --keys-only' $'get k1' -w fields txn -i
    tx txn_empty '' '' '' txn -i
    tx txn_empty_js '' '' '' -w json txn -i
    tx txn_readonly 'value("k1") = "back"' $'get k1\nget k3' '' -w json txn -i
    tx txn_nowrite_fail 'value("k1") = "x"' 'put never x' '' -w json txn -i
    s rev_after_readonly -w json get k1
    tx txn_get_opts '' $'get k --prefix --limit=2 --sort-by=key --order=descend\nget k --prefix --keys-only\nget k1 --rev=2\nget k --from-key' '' txn -i
    tx txn_get_rev_future '' 'get k1 --rev=1000' '' txn -i
    tx txn_put_prevkv '' 'put k1 again --prev-kv' '' -w json txn -i
    tx txn_del_prefix 'version("k1") > "0"' $'del k --prefix --prev-kv' '' -w json txn -i
    s get_after_del -w json get --prefix ""
    tx txn_dup_put '' $'put d 1\nput d 2' '' txn -i
    tx txn_dup_put_del '' $'put d 1\ndel d' '' txn -i
    tx txn_put_del_range '' $'put ok 1\ndel --prefix o' '' txn -i
    tx txn_dup_fail_branch 'value("x") = "y"' 'put a 1' $'put d 1\nput d 2' txn -i
    tx txn_empty_key_put '' 'put "" v' '' txn -i
    tx txn_quoted '' $'put "spaced key" "spaced value"\nget "spaced key"' '' txn -i
    tx txn_bad_cmp 'bogus' '' '' txn -i
    tx txn_bad_op '' 'frob k' '' txn -i
    tx txn_put_del_dup '' $'put m 1\nput n 2\nget m\ndel n' '' -w json txn -i
    tx txn_put_get_del '' $'put m 1\nget m\ndel n\nget --prefix \"\"' '' -w json txn -i
    tx txn_many '' $'put t1 1\nput t2 2\nput t3 3\nput t4 4\ndel k5\nget t --prefix' '' txn -i
    tx txn_noninteractive 'value("t1") = "1"' $'put t1 one\nget t1' 'get t2' txn
    tx txn_noninteractive_js 'mod("t1") < "2"' 'put t9 nine' $'get t1\nget t2' -w json txn
    s final_state -w json get --prefix ""
}

scenario_compaction() {
    local i
    for i in 1 2 3 4 5; do s "put_k_$i" put k "v$i"; done
    s put_other put other o
    s compact_0 compaction 0
    s compact_1 compaction 1
    s compact_3 compaction 3
    s get_rev_2 get k --rev=2
    s get_rev_2_js -w json get --prefix "" --rev=2
    s get_rev_3 get k --rev=3
    s get_rev_3_js -w json get k --rev=3
    s get_rev_4 get k --rev=4
    s get_rev_cur -w json get k --rev=7
    s get_rev_future get k --rev=8
    s get_plain -w json get k
    s compact_again compaction 3
    s compact_older compaction 2
    s compact_future compaction 8
    s compact_future_far compaction 1000
    s compact_physical compaction --physical 5
    s get_rev_4_after get k --rev=4
    s get_rev_5_after get k --rev=5
    s get_prefix_after -w json get --prefix ""
    tx txn_get_compacted '' 'get k --rev=4' '' txn -i
    tx txn_get_at_compact '' 'get k --rev=5' '' txn -i
    s del_k del k --prev-kv
    s get_deleted -w json get k
    s get_before_delete get k --rev=7
    s compact_current compaction 8
    s get_at_tombstone -w json get k --rev=8
    s get_before_tomb get k --rev=7
    s put_k_new -w json put k reborn
    s get_k_new -w json get k
    s compact_physical_cur compaction --physical 9
    s get_after_all -w json get --prefix ""
    s compact_bad_arg compaction abc
    s compact_no_arg compaction
}

SCENARIOS=(kv txn compaction)

# run_on KIND SCEN OUTFILE: starts a fresh server of KIND (etcd|cetcd), runs scenario_SCEN, stops it.
run_on() {
    local kind=$1 scen=$2 out=$3
    start_fresh "$kind" "$out" || return 1
    # a read changes no revision: records the raw raft_term, which the comparison normalizes away
    RAW_TERM[$kind]=$(ETCDCTL_API=3 timeout 5 etcdctl --endpoints "$EP" -w json get raft-term-probe 2>/dev/null |
        grep -o '"raft_term":[0-9]*' | cut -d: -f2)
    "scenario_$scen" >"$out" 2>&1
    [ -n "${KV_KEEP:-}" ] && cp "$out" "$KV_KEEP.$kind.$scen"
    if kill -0 "$SCEN_PID" 2>/dev/null; then echo "## alive"; echo yes; else echo "## alive"; echo no; fi >>"$out"
    if [ "$kind" = etcd ]; then stop_etcd; else stop_cetcd; fi
    SCEN_PID=
}

# block FILE NAME: the lines of step NAME in a scenario output file.
block() { awk -v n="## $2" '$0 == n {on=1; next} /^## / {on=0} on' "$1"; }

declare -A RAW_TERM

other=cetcd
[ "${KV_SELFTEST:-0}" = 1 ] && other=etcd
[ "$other" = cetcd ] && [ ! -x "$CETCD_BIN" ] && echo "note: $CETCD_BIN does not exist; every step will fail"

for scen in "${SCENARIOS[@]}"; do
    ref=$T_TMP/ref.$scen; got=$T_TMP/got.$scen
    run_on etcd "$scen" "$ref"
    run_on "$other" "$scen" "$got"
    [ "${RAW_TERM[etcd]}" != "${RAW_TERM[$other]}" ] &&
        echo "note: raft_term differs (etcd ${RAW_TERM[etcd]:-absent}, $other ${RAW_TERM[$other]:-absent}); normalized away"
    names=$(grep '^## ' "$ref" | cut -c4-)
    if grep -q '^## start:' "$got"; then
        t_fail "$scen: $other starts" "$(tail -5 "$T_TMP/cetcd.log" 2>/dev/null)"
        continue
    fi
    while IFS= read -r n; do
        t_eq "$scen: $n" "$(block "$ref" "$n")" "$(block "$got" "$n")"
    done <<<"$names"
done

t_finish
