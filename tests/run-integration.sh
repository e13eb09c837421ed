#!/bin/bash
# run-integration.sh: runs every tests/integration/test_*.{sh,py} suite (or the ones named as
# arguments) and sums their closing "N passed, N failed" lines into one total line.
cd "$(dirname "$0")/.." || exit 1
total_pass=0; total_fail=0; status=0
# With arguments, only those suites run (make integration-asan runs some against the ASan build).
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(tests/integration/test_*)
for t in "${suites[@]}"; do
    echo "=== $t"
    case "$t" in
        *.sh) out=$(bash "$t" 2>&1) ;;
        *.py) out=$(/usr/bin/python3 "$t" 2>&1) ;;
        *) continue ;;
    esac
    rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
    [ -z "$line" ] && { f=1; p=0; echo "no summary line from $t"; }
    [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ] && f=1
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    [ "$rc" -ne 0 ] && status=1
done
echo "integration: $total_pass passed, $total_fail failed"
exit $status
