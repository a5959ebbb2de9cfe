#!/usr/bin/env bash
# tools/run-bench.sh: what `make bench` runs. Runs the engine benchmark (bench/bench_engine.cpp)
# and its PyTorch twin (tools/bench_torch.py), then the model benchmark (bench_models beside
# BENCH, from bench/bench_models.cpp: forward, forward+backward, and full training steps
# (forward + loss + backward + AdamW) for tiny at batch 128 and small at batch 64 with the clip
# and rankclip losses, in fp32 and bf16 autocast, each step in a process of its own so that its
# peak memory is its own) and its twin (tools/bench_models_torch.py), all with the same thread
# count, then the data loader benchmark (bench_loader beside BENCH, from bench/bench_loader.cpp;
# no twin, so its lines stay out of the table and it prints its own summary on stderr); saves
# their JSON lines next to the benchmark binary (build/bench.jsonl), and prints the comparison
# table (tools/bench_compare.py: speed and, for the training steps, peak-memory ratios). Without
# torch it prints ours alone and says so.
#
# The PyTorch twins are the anchor, so they run PyTorch at its best on the machine, not at
# Debian's defaults: tools/torch_env.py (imported by both) sizes OpenBLAS's threads to torch's,
# forces OpenBLAS's AVX-512/AVX2 kernels only if its CPU detection fell short, shortens the
# OpenMP workers' spin (GOMP_SPINCOUNT=30000), selects ATen's AVX-512 kernels where the CPU has
# them and preloads tcmalloc where it is installed, re-running the script once so that the
# libraries see them at load time; each line records the result (blas, blas_core, aten_cpu,
# onednn_isa, allocator, ...). Set any of those variables to override
# it (on a busy machine OMP_WAIT_POLICY=passive is faster), or RANKCLIP_TORCH_ENV=default for
# Debian's defaults (docs/PERFORMANCE.md "Method").
#
# Usage: tools/run-bench.sh BENCH [PYTHON] [bench args...]
#   BENCH   the bench_engine binary           PYTHON  a python3 with torch (default /usr/bin/python3)
#   bench args, or $BENCH_ARGS: passed to both programs, e.g. --quick, --device cuda
#   RANKCLIP_THREADS=N  thread count for both (default: the number of cores)
set -euo pipefail

bench=${1:?usage: tools/run-bench.sh BENCH [PYTHON] [bench args...]}
python=${2:-/usr/bin/python3}
shift $(( $# >= 2 ? 2 : 1 ))
args=("$@")
if [[ -n "${BENCH_ARGS:-}" ]]; then read -r -a extra <<< "$BENCH_ARGS"; args+=("${extra[@]}"); fi

here=$(cd "$(dirname "$0")" && pwd)
threads=${RANKCLIP_THREADS:-$(nproc)}
out="$(dirname "$bench")/bench.jsonl"

[[ -x "$bench" ]] || { echo "run-bench: $bench is not built (make $bench)" >&2; exit 1; }
# the table needs only plain python3; prefer the given one
compare_python=$python
command -v "$compare_python" > /dev/null 2>&1 || compare_python=python3

cores=$(nproc)
load=$(cut -d' ' -f1 /proc/loadavg)
echo "bench: $threads threads on $cores cores; load average $load; results in $out"
if awk -v l="$load" -v c="$cores" 'BEGIN { exit !(l > c / 2) }'; then
    echo "bench: warning: the machine is busy (load $load on $cores cores): timings will be disturbed"
fi

: > "$out"
echo "bench: rankclip ${args[*]:-}"
RANKCLIP_THREADS=$threads "$bench" --threads "$threads" "${args[@]}" | tee -a "$out"

if "$python" -c "import torch" > /dev/null 2>&1; then
    echo "bench: pytorch ($("$python" -c 'import torch; print(torch.__version__)')) ${args[*]:-}"
    "$python" "$here/bench_torch.py" --threads "$threads" "${args[@]}" | tee -a "$out"
else
    echo "bench: PyTorch is not available to $python: showing ours alone"
fi

models="$(dirname "$bench")/bench_models"
if [[ -x "$models" ]]; then
    echo "bench: rankclip models ${args[*]:-}"
    RANKCLIP_THREADS=$threads "$models" --threads "$threads" "${args[@]}" | tee -a "$out"
    if "$python" -c "import torch" > /dev/null 2>&1; then
        echo "bench: pytorch models ${args[*]:-}"
        "$python" "$here/bench_models_torch.py" --threads "$threads" "${args[@]}" | tee -a "$out"
    fi
else
    echo "bench: $models is not built: skipping the model benchmark"
fi

loader="$(dirname "$bench")/bench_loader"
if [[ -x "$loader" ]]; then
    echo "bench: rankclip data loader ${args[*]:-} (no PyTorch twin; not in the table)"
    RANKCLIP_THREADS=$threads "$loader" --threads "$threads" "${args[@]}" | tee -a "$out"
else
    echo "bench: $loader is not built: skipping the loader benchmark"
fi

echo
echo "bench: load average at the end $(cut -d' ' -f1 /proc/loadavg) (at the start $load)"
"$compare_python" "$here/bench_compare.py" "$out"
