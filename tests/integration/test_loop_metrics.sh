#!/bin/bash
# test_loop_metrics.sh: cetcd's own /metrics for its event loop (issue 16): the histogram of loop-turn
# durations and the longest turn, in Prometheus form, under cetcd_* names that etcd does not use;
# the count grows with requests, the buckets are cumulative and the longest turn lies in the bucket
# the histogram puts it in; also served on --listen-metrics-urls.
source "$(dirname "$0")/../lib.sh"
export LC_ALL=C

H=cetcd_loop_turn_duration_seconds
G=cetcd_loop_turn_longest_seconds
METRICS_PORT=$(free_port)
start_cetcd --listen-metrics-urls "http://127.0.0.1:$METRICS_PORT" || { t_fail "start cetcd"; t_finish; exit 1; }
start_etcd || { t_fail "start etcd"; t_finish; exit 1; }
C=http://$CETCD_EP

metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n {print $2}'; }
# the value of one series in the text saved in $BODY
val() { awk -v n="$1" '$1 == n {print $2}' <<<"$BODY"; }

BODY=$(curl -s "$C/metrics")
t_eq "histogram and gauge types" "histogram gauge" \
    "$(awk -v h="$H" -v g="$G" '$1 == "#" && $2 == "TYPE" && ($3 == h || $3 == g) {printf "%s%s", s, $4; s=" "}' <<<"$BODY")"
t_eq "buckets 0.0001 to 1 and +Inf" "0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 +Inf" \
    "$(grep -o "^${H}_bucket{le=\"[^\"]*\"}" <<<"$BODY" | sed 's/.*le="\(.*\)"}/\1/' | paste -sd' ')"
ETCD_NAMES=$(curl -s "http://$ETCD_EP/metrics" | awk '$1 == "#" && $2 == "TYPE" {print $3}')
[ -n "$ETCD_NAMES" ] && t_pass "etcd's /metrics read" || t_fail "etcd's /metrics read"
t_eq "no etcd metric is named cetcd_*" "" "$(grep '^cetcd_' <<<"$ETCD_NAMES")"

N0=$(metric "$C" "${H}_count")
for i in $(seq 1 20); do ctl "$CETCD_EP" put "lm$i" v >/dev/null; done
BODY=$(curl -s "$C/metrics")
N1=$(val "${H}_count")
[ -n "$N0" ] && [ "$N1" -ge $((N0 + 20)) ] && t_pass "count grows with requests ($N0 -> $N1 after 20 puts)" \
    || t_fail "count grows with requests" "$N0 -> $N1"
t_eq "+Inf bucket equals the count" "$N1" "$(val "${H}_bucket{le=\"+Inf\"}")"
t_eq "buckets cumulative" "ok" "$(grep "^${H}_bucket" <<<"$BODY" |
    awk '{if ($2 < prev) bad = 1; prev = $2} END {print bad ? "not" : "ok"}')"
# the longest turn: > 0, at most the sum, and in the bucket the histogram gives the slowest turn
# (above the last le whose count is below the total, at most the first le that holds them all)
check=$(awk -v h="${H}_bucket" -v g="$G" -v s="${H}_sum" -v n="$N1" '
    index($1, h "{") == 1 { le = $1; sub(/.*le="/, "", le); sub(/"}/, "", le)
        if (le != "+Inf") { if ($2 < n) lo = le; else if (hi == "") hi = le } }
    $1 == g { longest = $2 } $1 == s { sum = $2 }
    END { if (longest <= 0) print "longest not > 0"
          else if (longest > sum * 1.000001) print "longest " longest " > sum " sum
          else if (lo != "" && longest <= lo + 0) print "longest " longest " <= " lo
          else if (hi != "" && longest > hi + 0) print "longest " longest " > " hi
          else print "ok" }' <<<"$BODY")
t_eq "longest turn > 0, <= sum, in the histogram's slowest bucket" "ok" "$check"
t_eq "served on the metrics listener too" "1" \
    "$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | grep -c "^# TYPE $G gauge")"

# a turn that does much (a 1 MiB value: decode, log write, reply) shows in the longest
L0=$(metric "$C" "$G")
head -c 1000000 /dev/zero | tr '\0' x >"$T_TMP/big"
ctl "$CETCD_EP" put big <"$T_TMP/big" >/dev/null
BODY=$(curl -s "$C/metrics")
L1=$(val "$G")
[ -n "$L0" ] && [ -n "$L1" ] && awk -v a="$L0" -v b="$L1" 'BEGIN {exit !(b + 0 >= a + 0)}' && t_pass "longest never goes down ($L0 -> $L1)" \
    || t_fail "longest never goes down" "$L0 -> $L1"
t_finish
