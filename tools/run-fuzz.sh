#!/usr/bin/env bash
# tools/run-fuzz.sh — `make fuzz`'s driver (docs/RELIABILITY.md).
#   tools/run-fuzz.sh --check CLANG          is CLANG with libFuzzer here? (says what is missing)
#   tools/run-fuzz.sh --run BUILD SECONDS T...  runs build/fuzz/fuzz_T for SECONDS each, one after
#       the other, from the seeds in tests/fuzz/corpus/T/ (read only) and a working corpus in
#       BUILD/corpus/T/ (kept between runs); crashes go to BUILD/crashes/T/. Ends with one line per
#       target: executions, seconds, result; the status is non-zero if any target found something.
# Limits for every input: -timeout=10 s (a hang; FUZZ_TIMEOUT=S changes it, for a campaign run at
# low priority on a busy machine, where a starved process can pass 10 s on a fast input),
# -rss_limit_mb=2048 / -malloc_limit_mb=2048 (memory), -max_len=65536 bytes. FUZZ_RUNS=N also stops
# each target after N executions (a campaign that tops a parser up to a given count).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--check" ]; then
    cxx="${2:-clang++}"
    if ! command -v "$cxx" >/dev/null 2>&1; then
        echo "fuzz: '$cxx' not found: the fuzzers need clang (Debian: apt-get install clang libclang-rt-14-dev libomp-dev, or tools/install-deps.sh)" >&2
        exit 1
    fi
    probe=$(mktemp -d)
    printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' > "$probe/p.cpp"
    if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >"$probe/log" 2>&1; then
        echo "fuzz: '$cxx' cannot link libFuzzer (libclang_rt.fuzzer; Debian: the libclang-rt-14-dev package):" >&2
        cat "$probe/log" >&2
        rm -rf "$probe"
        exit 1
    fi
    printf 'int main() { return 0; }\n' > "$probe/o.cpp"
    if ! "$cxx" -fopenmp "$probe/o.cpp" -o "$probe/o" >"$probe/log" 2>&1; then
        echo "fuzz: '$cxx' cannot link OpenMP (Debian: the libomp-dev package):" >&2
        cat "$probe/log" >&2
        rm -rf "$probe"
        exit 1
    fi
    rm -rf "$probe"
    exit 0
fi
[ "${1:-}" = "--run" ] || { echo "usage: $0 --check CLANG | --run BUILD SECONDS TARGET..." >&2; exit 2; }
build="$2"; seconds="$3"; shift 3
supp=$(pwd)/tests/sanitize
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export OMP_NUM_THREADS=1
summary=(); failed=0
for t in "$@"; do
    bin="$build/fuzz/fuzz_$t"
    [ -x "$bin" ] || { echo "fuzz: $bin not built" >&2; exit 1; }
    mkdir -p "$build/corpus/$t" "$build/crashes/$t" "$build/logs"
    log="$build/logs/$t.log"
    echo "fuzz: $t for ${seconds}s (log: $log)"
    limit="${FUZZ_TIMEOUT:-10}"
    start=$(date +%s)
    "$bin" -max_total_time="$seconds" -timeout="$limit" -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=65536 \
        ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -print_final_stats=1 -artifact_prefix="$build/crashes/$t/" \
        "$build/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
    status=$?
    secs=$(( $(date +%s) - start ))
    execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    if [ "$status" -eq 0 ]; then result="no crash"; else
        result="FOUND (status $status): $(ls "$build/crashes/$t" | head -3 | tr '\n' ' ')"; failed=1
        grep -E 'ERROR|runtime error|terminate|SUMMARY' "$log" | head -5
    fi
    summary+=("$(printf '%-12s %10s executions %5s s  coverage %6s  %s' "$t" "${execs:-?}" "$secs" "${cov:-?}" "$result")")
done
echo "fuzz summary:"
printf '  %s\n' "${summary[@]}"
exit "$failed"
