#!/usr/bin/env bash
# tools/run-tests.sh — runs the GoogleTest binary and ends with one plain summary line,
# "N passed, N failed, N skipped", read by CI. Exit status is the test binary's.
set -uo pipefail
binary="$1"
# a short OpenMP spin, as the rankclip program uses (engine/parallel.cpp): the suite stays fast
# when something else runs on the machine
if [ -z "${OMP_WAIT_POLICY:-}" ] && [ -z "${GOMP_SPINCOUNT:-}" ]; then export GOMP_SPINCOUNT=3000; fi
shift
log=$(mktemp)
"$binary" --gtest_brief=1 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
total=$(grep -oE '^\[==========\] [0-9]+ tests? from' "$log" | tail -1 | grep -oE '[0-9]+' | head -1)
skipped=$(grep -oE '^\[  SKIPPED \] [0-9]+ test' "$log" | tail -1 | grep -oE '[0-9]+' || true)
passed=$(grep -oE '^\[  PASSED  \] [0-9]+ test' "$log" | tail -1 | grep -oE '[0-9]+' || true)
rm -f "$log"
total=${total:-0}; skipped=${skipped:-0}; passed=${passed:-0}
failed=$((total - passed - skipped))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # a crash counts as a failure
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
