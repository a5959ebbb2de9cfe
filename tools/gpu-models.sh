#!/usr/bin/env bash
# tools/gpu-models.sh — the model-level part of `make gpu-check` (its step "models"), on a
# machine with a GPU:
#   1. gpu    full training steps (`rankclip bench --compare-torch`) of b32 and b16 in bf16 and
#             fp32, and of tiny, on cuda:0, each beside its PyTorch twin in the same run
#   2. cpu    the CPU training-step cases of docs/PERFORMANCE.md (tiny at batch 128, small at 64,
#             fp32 and bf16) on all of this machine's cores, against the PyTorch twin
#   3. train  a short `rankclip train` on cuda:0 (fp32 and bf16, with evaluation), and the first
#             fp32 steps again on the CPU from the same seed, so the two loss curves can be compared
#   profile   (only when asked for) where the step's time goes: `rankclip bench --profile` of b32
#             and b16 on cuda:0 and of tiny and small on every core, each beside its PyTorch twin
#             under torch.profiler (docs/PERFORMANCE.md, "Where the time goes")
#   gemm      (only when asked for) our b32 and b16 steps on cuda:0 with each GEMM path of
#             cuda/matmul.cu, RANKCLIP_GEMM=cublas then cublaslt (the default), ours only
# and ends with one table of every comparison. Each case has its own time limit, so one slow or
# failing case costs only itself; the exit status counts the cases that failed.
#
# Usage: tools/gpu-models.sh RANKCLIP PYTHON [--rehearse]
#   RANKCLIP    the rankclip binary (built with CUDA)
#   PYTHON      a python3 with torch (the twin); "" runs ours alone
#   --rehearse  every case on the CPU at toy sizes, to check this script without a GPU
# Environment: GPU_MODELS_OUT (scratch folder for the training runs, default a temporary one),
#   GPU_MODELS_SECTIONS (which sections run, in this order: default "gpu cpu train"; add or name
#   "profile", which then runs first, or "profile-gpu": its b32 and b16 cases alone, ours only;
#   "gemm" runs after the profiles).
set -uo pipefail

rankclip=$1 python=${2:-}
rehearse=0
[[ "${3:-}" == --rehearse ]] && rehearse=1
here=$(cd "$(dirname "$0")" && pwd)
scratch=${GPU_MODELS_OUT:-$(mktemp -d)}
mkdir -p "$scratch"
threads=$(nproc)
failures=0
results=$scratch/results.jsonl
: > "$results"

# case LIMIT ARGS...: one `rankclip bench` line (and the twin's), its JSON kept for the table
case_() {
    local limit=$1; shift
    echo "== rankclip bench $*"
    local t0=$SECONDS
    RANKCLIP_PYTHON=$python timeout -k 5 "$limit" "$rankclip" bench "$@" 2>&1 | tee "$scratch/case.log"
    local rc=${PIPESTATUS[0]}
    grep -h '^{' "$scratch/case.log" >> "$results"
    echo "# exit status $rc after $((SECONDS - t0))s"
    if ((rc != 0)); then
        failures=$((failures + 1))
        echo "{\"failed\": \"bench $*\", \"status\": $rc}" >> "$results"
    fi
}
compare=()
[[ -n "$python" ]] && compare=(--compare-torch)
sections=${GPU_MODELS_SECTIONS:-gpu cpu train}
asked() { [[ " $sections " == *" $1 "* ]]; }

echo "== machine: $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "== cpu flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx512f|avx512_bf16|amx_tile|amx_bf16)$' | tr '\n' ' ')"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu,memory.used --format=csv

# ---- profile: ours under the op profiler, then the twin under torch.profiler ----
# profile_ LIMIT DEVICE MODEL PRECISION BATCH [ours]: "ours" leaves the twin out
profile_() {
    local limit=$1 device=$2 model=$3 precision=$4 batch=$5 only=${6:-} n=3
    local dev=(--device "$device") tdev=cuda
    [[ $device == cpu ]] && dev=(--device cpu --threads "$threads") tdev=cpu
    ((rehearse)) && dev=(--device cpu --threads "$threads") tdev=cpu batch=2 n=1
    echo "== profile: rankclip bench --model $model --precision $precision --batch-size $batch ${dev[*]} --profile $n"
    timeout -k 5 "$limit" "$rankclip" bench --model "$model" --precision "$precision" --batch-size "$batch" \
        "${dev[@]}" --warmup 2 --steps 3 --profile $n 2>&1
    (($? == 0)) || { failures=$((failures + 1)); echo "{\"failed\": \"profile $model $precision\", \"status\": 1}" >> "$results"; }
    [[ -n "$python" && $only != ours ]] || return 0
    echo "== profile: the PyTorch twin"
    timeout -k 5 "$limit" "$python" "$here/bench_models_torch.py" --kinds train --configs "$model" --losses clip \
        --precisions "$precision" --batch "$batch" --device $tdev --threads "$threads" --warmup 2 --steps 3 \
        --profile $n 2>&1 | grep -v '^{'
}
if asked profile || asked profile-gpu; then
    only=$(asked profile || echo ours)  # profile-gpu alone: ours only (the twin's table is in docs/PERFORMANCE.md)
    profile_ 60 cuda b32 bf16 256 $only
    profile_ 60 cuda b16 bf16 128 $only
fi
if asked profile; then
    profile_ 60 cuda b32 fp32 256
    profile_ 60 cpu tiny bf16 128
    profile_ 60 cpu small bf16 64
fi

if ((rehearse)); then
    gpu=(--device cpu --threads "$threads") big=2 mid=2 small=4 steps=(--steps 1 --warmup 0)
else
    gpu=(--device cuda) big=256 mid=128 small=128 steps=(--steps 10 --warmup 3)
fi

# ---- the two GEMM paths, ours only (the JSON lines of each pair differ only in the path) ----
if asked gemm; then
    for path in cublas cublaslt; do
        echo "== RANKCLIP_GEMM=$path"
        RANKCLIP_GEMM=$path case_ 60 --model b32 --precision bf16 --batch-size $big "${gpu[@]}" "${steps[@]}"
        RANKCLIP_GEMM=$path case_ 60 --model b32 --precision fp32 --batch-size $big "${gpu[@]}" "${steps[@]}"
        RANKCLIP_GEMM=$path case_ 60 --model b16 --precision bf16 --batch-size $mid "${gpu[@]}" "${steps[@]}"
    done
fi

# ---- 1. the GPU: the large presets, then tiny (launch-bound) ----
if asked gpu; then
    case_ 90 --model b32 --precision bf16 --batch-size $big "${gpu[@]}" "${steps[@]}" "${compare[@]}"
    case_ 90 --model b32 --precision fp32 --batch-size $big "${gpu[@]}" "${steps[@]}" "${compare[@]}"
    case_ 90 --model b16 --precision bf16 --batch-size $mid "${gpu[@]}" "${steps[@]}" "${compare[@]}"
    case_ 90 --model b32 --precision bf16 --batch-size $big --loss rankclip "${gpu[@]}" "${steps[@]}" "${compare[@]}"
    case_ 60 --model tiny --precision fp32 --batch-size $small "${gpu[@]}" "${steps[@]}" "${compare[@]}"
    case_ 60 --model tiny --precision bf16 --batch-size $small "${gpu[@]}" "${steps[@]}" "${compare[@]}"
fi

# ---- 2. the CPU cases of docs/PERFORMANCE.md, on every core (before the
# training runs, so that a models step cut short keeps the PyTorch comparisons) ----
cpu=(--device cpu --threads "$threads")
((rehearse)) && steps=(--steps 1 --warmup 0) || steps=(--steps 8 --warmup 2)
if asked cpu; then
    case_ 90 --model tiny --precision fp32 --batch-size 128 "${cpu[@]}" "${steps[@]}" "${compare[@]}"
    case_ 90 --model tiny --precision bf16 --batch-size 128 "${cpu[@]}" "${steps[@]}" "${compare[@]}"
    case_ 90 --model small --precision fp32 --batch-size 64 "${cpu[@]}" "${steps[@]}" "${compare[@]}"
    case_ 90 --model small --precision bf16 --batch-size 64 "${cpu[@]}" "${steps[@]}" "${compare[@]}"
fi

# ---- 3. a short training run on the GPU, and its first steps on the CPU ----
train() {  # train LIMIT NAME ARGS...
    local limit=$1 name=$2; shift 2
    echo "== rankclip train $* --out $scratch/$name"
    local t0=$SECONDS
    rm -rf "${scratch:?}/$name"
    timeout -k 5 "$limit" "$rankclip" train "$@" --out "$scratch/$name" 2>&1 | tail -25
    local rc=${PIPESTATUS[0]}
    echo "# exit status $rc after $((SECONDS - t0))s"
    if ((rc != 0)); then
        failures=$((failures + 1))
        echo "{\"failed\": \"train $name\", \"status\": $rc}" >> "$results"
    fi
}
if ((rehearse)); then
    dev=(--device cpu --threads "$threads") long=(--steps 6 --eval-every 6 --eval-limit 50) short=(--steps 4)
else
    dev=(--device cuda) long=(--steps 300 --eval-every 150 --eval-limit 500) short=(--steps 40)
fi
common=(--model tiny --data synthetic --batch-size 64 --loss rankclip --seed 0 --log-every 10 --workers 4)
if asked train; then
    train 90 cuda-fp32 "${common[@]}" "${dev[@]}" "${long[@]}"
    train 90 cuda-bf16 "${common[@]}" "${dev[@]}" "${long[@]}" --precision bf16
    train 45 cuda-fp32-short "${common[@]}" "${dev[@]}" "${short[@]}"
    train 45 cpu-fp32-short "${common[@]}" --device cpu --threads "$threads" "${short[@]}"
    echo "== loss, the same steps on ${dev[1]} and on the CPU (fp32, seed 0)"
    for f in "$scratch/cuda-fp32-short/metrics.jsonl" "$scratch/cpu-fp32-short/metrics.jsonl"; do
        echo "$f: $(grep -o '"loss": *[-0-9.e]*' "$f" 2>/dev/null | cut -d: -f2 | tr -d ' ' | tr '\n' ' ')"
    done
fi

# ---- the table ----
echo
echo "models: every case (ours and PyTorch's training step: forward, loss, backward, AdamW)"
printf '%-7s %-6s %-5s %-9s %5s %10s %10s %7s %9s %10s %10s\n' \
    device model prec loss batch ours_ms torch_ms speed ours_img/s ours_mb torch_mb
"${python:-python3}" - "$results" << 'EOF' || awk '/"bench":"train_step"/' "$results"
import json, sys
def row(ours, twin=None):  # one case: ours, with its twin's numbers when it has them
    ms, torch_ms, speed, torch_mb = (ours["median_ms"], "-", "-", "-") if twin is None else (
        twin["ours_ms"], f"{twin['pytorch_ms']:.2f}", f"{twin['ours_over_pytorch_speed']:.2f}", f"{twin['pytorch_peak_mb']:.0f}")
    print(f"{ours['device']:<7} {ours['model']:<6} {ours['precision']:<5} {ours['loss']:<9} {ours['batch_size']:>5} "
          f"{ms:>10.2f} {torch_ms:>10} {speed:>7} {ours['images_per_s']:>9.1f} {ours['peak_memory_mb']:>10.0f} {torch_mb:>10}")
ours = None
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j.get("bench") == "train_step":
        if ours: row(ours)  # no twin line followed the previous case
        ours = j
    elif j.get("compare") == "train_step" and ours:
        row(ours, j)
        ours = None
    elif "failed" in j:
        print(f"FAILED: {j['failed']} (exit {j['status']})")
if ours: row(ours)
EOF
echo "models: $failures case(s) failed"
exit $((failures > 0 ? 1 : 0))
