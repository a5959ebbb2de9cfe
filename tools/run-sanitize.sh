#!/usr/bin/env bash
# tools/run-sanitize.sh — runs the ASan + UBSan build of the tests (`make sanitize`) with the
# sanitizer options and the suppression files of tests/sanitize/: the first report from our code
# stops the run with a non-zero status; what is suppressed (by library name) is listed there.
set -uo pipefail
cd "$(dirname "$0")/.."
supp=$(pwd)/tests/sanitize
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# the tests that run the `rankclip` program find the sanitized one beside the test binary
start=$(date +%s)
tools/run-tests.sh "$@"
status=$?
echo "sanitize: $(( $(date +%s) - start )) s, exit status $status"
exit "$status"
