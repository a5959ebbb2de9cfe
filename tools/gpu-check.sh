#!/usr/bin/env bash
# tools/gpu-check.sh — what `make gpu-check` runs on a GPU machine, from the repo root: one
# prepared, time-boxed pass (default budget 450 s) that
#   1. env        finds nvcc, cuBLAS, cuDNN (toolkit or Python's nvidia-cudnn), the GPU (nvidia-smi),
#                 and which staged run-time libraries (libarchive's) the machine lacks
#   2. build      make -j CUDA=1 DEPS=$PWD/.gpu-deps BUILD=build-gpu all  (+ cuda/dev, in parallel)
#   3. tests      build-gpu/run_tests, every test (CPU ones too); the CUDA suites reported apart
#   4. cuda tests the CUDA suites again with RANKCLIP_CUDA_NO_CACHE=1 (exact-size allocations)
#   5. models     full training steps of b32, b16 and tiny on the GPU (bf16 and fp32) and of
#                 tiny and small on every CPU core, each against its PyTorch twin; a short
#                 `rankclip train` on the GPU (tools/gpu-models.sh)
#   6. bench      bench_engine --device cuda and its PyTorch twin (tools/run-bench.sh)
#   7. cuda/dev   the kernel playground: every program's checks and benchmarks (make run)
#   8. sanitizer  compute-sanitizer memcheck over the CUDA suites, only with time left over
# and ends with a summary table (step, status, seconds). Logs go to $OUT (default
# build-gpu/gpu-check): env.log build.log tests.log tests-cuda.log models.log cuda-dev.log
# bench.log summary.txt — the eight files the device machine sends back.
# Exit status: non-zero when a build or test step failed, or when there is no GPU (unless
# allowed). Benchmarks and the sanitizer's time-out only warn.
#
# .gpu-deps/ comes from tools/stage-gpu-deps.sh on the build machine (Eigen, GoogleTest, stb,
# zlib, libarchive and the shared libraries it loads), carried to the device with the working
# tree; see docs/GPU.md. Those of libarchive's libraries the device lacks go into
# build-gpu/deps-run, on LD_LIBRARY_PATH for our programs (see "Staged run-time libraries").
#
# Usage: tools/gpu-check.sh [--dry-run] [--allow-no-gpu]
#   --dry-run        probe the machine and print the plan, run nothing else
#   --allow-no-gpu   (or GPU_CHECK_ALLOW_NO_GPU=1) a machine without a GPU is not a failure:
#                    everything still builds and runs, the CUDA tests skip. For rehearsing here.
# Environment: OUT (log folder), GPU_CHECK_BUILD (build-gpu), GPU_CHECK_DEPS (.gpu-deps),
#   GPU_CHECK_BUDGET (seconds, 450), GPU_CHECK_JOBS (nproc), GPU_CHECK_USE_CUDNN (0/1; default:
#   1 when cuDNN is found and some source uses RANKCLIP_CUDNN), GPU_CHECK_SKIP_BUILD=1 (reuse
#   the binaries in the build folder, e.g. a second pass on a still-warm machine),
#   GPU_CHECK_SKIP (steps not to run, e.g. "tests models" for that second pass: tests, models,
#   bench, cuda/dev, sanitizer),
#   GPU_CHECK_MODELS_CAP (seconds for the models step, 240), GPU_MODELS_SECTIONS (which parts of
#   the models step run: "gpu cpu train" by default; "profile" adds the op profiles, see
#   tools/gpu-models.sh),
#   GPU_CHECK_STAGED_LIBS (missing: the staged run-time libraries the machine lacks; all: every
#   one, to rehearse where the system has them), NVCC, CUDA_HOME.
set -uo pipefail

dry_run=0
allow_no_gpu=${GPU_CHECK_ALLOW_NO_GPU:-0}
for arg in "$@"; do
    case "$arg" in
        --dry-run) dry_run=1 ;;
        --allow-no-gpu) allow_no_gpu=1 ;;
        -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu-check: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
build=${GPU_CHECK_BUILD:-build-gpu}
deps=${GPU_CHECK_DEPS:-$root/.gpu-deps}
budget=${GPU_CHECK_BUDGET:-450}
jobs=${GPU_CHECK_JOBS:-$(nproc)}
build=$(realpath -m "$build")
if ((dry_run)); then
    out=${OUT:-$(mktemp -d)}
    shim=$(mktemp -d)/link-shim
else
    out=${OUT:-$build/gpu-check}
    mkdir -p "$build"
    shim=$build/link-shim  # unversioned .so names for libraries installed only as lib*.so.N
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
start=$SECONDS

env_log=$out/env.log build_log=$out/build.log tests_log=$out/tests.log cuda_log=$out/tests-cuda.log
dev_log=$out/cuda-dev.log bench_log=$out/bench.log models_log=$out/models.log summary=$out/summary.txt
: > "$env_log"; : > "$build_log"; : > "$tests_log"; : > "$cuda_log"; : > "$dev_log"; : > "$bench_log"; : > "$models_log"

# ---- bookkeeping ----
names=() statuses=() seconds=() notes=()
failed=0
record() {  # record NAME STATUS SECONDS NOTE [fatal]
    names+=("$1"); statuses+=("$2"); seconds+=("$3"); notes+=("$4")
    if [[ "${5:-}" == fatal ]]; then failed=1; fi
    printf 'gpu-check: [%4ds] %-12s %-8s %s\n' "$((SECONDS - start))" "$1" "$2" "$4"
}
say() { printf 'gpu-check: [%4ds] %s\n' "$((SECONDS - start))" "$*"; }
left() { echo $((budget - (SECONDS - start))); }
q() { printf '%q' "$1"; }
skip_asked() { [[ " ${GPU_CHECK_SKIP:-} " == *" $1 "* ]]; }  # skip_asked STEP: named in GPU_CHECK_SKIP

# run_step CAP LOG CMD: runs the command line CMD through bash, output appended to LOG, for at
# most min(CAP, time left - 5) seconds. Sets rc (0 ok, 124/137 timed out, -1 not run: no time)
# and secs.
run_step() {
    local cap=$1 log=$2 cmd=$3
    local avail=$(($(left) - 5))
    local limit=$((cap < avail ? cap : avail))
    rc=0 secs=0
    if ((limit < 15)); then
        rc=-1
        echo "# not run, no time left: $cmd" >> "$log"
        return
    fi
    echo "\$ $cmd    # time limit ${limit}s" >> "$log"
    if ((dry_run)); then
        say "would run (<= ${limit}s): $cmd"
        return
    fi
    local t0=$SECONDS
    timeout -k 10 "$limit" bash -o pipefail -c "$cmd" >> "$log" 2>&1
    rc=$?
    secs=$((SECONDS - t0))
    echo "# exit status $rc after ${secs}s" >> "$log"
}
status_of() {  # status word for $rc
    ((dry_run)) && { echo planned; return; }
    case "$1" in
        0) echo ok ;;
        -1) echo skipped ;;
        124 | 137) echo TIMEOUT ;;
        *) echo FAIL ;;
    esac
}

# ================= 1. env: toolkit, libraries, GPU =================
t0=$SECONDS
{
    echo "== gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
    echo "repo: $root ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo 'no git'); $(git -C "$root" status --porcelain 2>/dev/null | wc -l) changed files)"
    uname -a
    (. /etc/os-release 2>/dev/null && echo "os: $PRETTY_NAME")
    echo "cpus: $(nproc); memory: $(free -g 2>/dev/null | awk '/Mem:/ {print $2 " GiB"}')"
    echo "budget ${budget}s, make -j$jobs, build $build, deps $deps, logs $out"
} >> "$env_log"

# nvcc and the toolkit root
find_nvcc() {
    local c
    for c in "${NVCC:-}" "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" "$(command -v nvcc 2>/dev/null)" /usr/local/cuda/bin/nvcc \
        $(ls -d /usr/local/cuda-*/bin/nvcc 2>/dev/null | sort -V -r); do
        [[ -n "$c" && -x "$c" ]] && { echo "$c"; return; }
    done
}
nvcc=$(find_nvcc)
cuda_home=""
if [[ -n "$nvcc" ]]; then
    for cand in "${CUDA_HOME:-}" "$(dirname "$(dirname "$nvcc")")" "$(dirname "$(dirname "$(readlink -f "$nvcc")")")"; do
        if [[ -n "$cand" && -e "$cand/include/cuda_runtime_api.h" ]]; then cuda_home=$cand; break; fi
    done
    [[ -n "$cuda_home" ]] || cuda_home=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
fi

extra_lib_path=()  # for the linker (LIBRARY_PATH): libraries outside the Makefile's -L dirs
extra_cpath=()     # for the compilers (CPATH): headers outside the Makefile's -I dirs
run_lib_path=()    # for running our programs (LD_LIBRARY_PATH): library dirs off their rpath
rm -rf "$shim"

# Where lib$1.so* lives: prints the directory, or nothing.
find_lib_dir() {
    local name=$1 d
    shift
    for d in "$@"; do
        compgen -G "$d/lib$name.so*" > /dev/null && { echo "$d"; return; }
    done
}
# Makes lib$1.so linkable from directory $2 (a shim symlink when only lib$1.so.N exists there).
make_linkable() {
    local name=$1 dir=$2
    if [[ ! -e "$dir/lib$name.so" ]]; then
        local real
        real=$(ls "$dir/lib$name.so."* 2>/dev/null | sort -V | tail -1)
        mkdir -p "$shim"
        ln -sf "$real" "$shim/lib$name.so"
        echo "  lib$name.so: only $(basename "$real") in $dir; linked through $shim" >> "$env_log"
        [[ " ${extra_lib_path[*]:-} " == *" $shim "* ]] || extra_lib_path+=("$shim")
    fi
}

have_gpu=0
{
    echo
    echo "== CUDA toolkit"
    if [[ -n "$nvcc" ]]; then
        echo "nvcc: $nvcc"
        "$nvcc" --version | tail -2
        echo "CUDA_HOME: $cuda_home"
    else
        echo "nvcc: NOT FOUND (looked at \$NVCC, \$CUDA_HOME, PATH, /usr/local/cuda*)"
    fi
} >> "$env_log"

cuda_lib_dirs=("$cuda_home/lib64" "$cuda_home/lib" "$cuda_home/targets/x86_64-linux/lib" /usr/lib/x86_64-linux-gnu)
cublas_dir=""
if [[ -n "$cuda_home" ]]; then
    for lib in cudart cublas cublasLt; do
        d=$(find_lib_dir "$lib" "${cuda_lib_dirs[@]}")
        if [[ -z "$d" ]]; then
            echo "lib$lib: NOT FOUND in ${cuda_lib_dirs[*]}" >> "$env_log"
            continue
        fi
        echo "lib$lib: $(cd "$d" && ls lib$lib.so* | tr '\n' ' ')in $d" >> "$env_log"
        [[ $lib == cublas ]] && cublas_dir=$d
        make_linkable "$lib" "$d"
        if [[ "$d" != "$cuda_home/lib64" && "$d" != "$cuda_home/lib" ]]; then
            [[ " ${extra_lib_path[*]:-} " == *" $d "* ]] || extra_lib_path+=("$d")
        fi
        # the Makefile sets an rpath to $CUDA_HOME/lib64 only
        if [[ "$d" != "$cuda_home/lib64" ]]; then
            [[ " ${run_lib_path[*]:-} " == *" $d "* ]] || run_lib_path+=("$d")
        fi
    done
    for h in cuda_runtime_api.h cublas_v2.h cublasLt.h; do
        [[ -e "$cuda_home/include/$h" ]] || echo "$h: NOT FOUND in $cuda_home/include" >> "$env_log"
    done
fi

# Python with PyTorch (the benchmark's twin; cuDNN may live only in its nvidia-cudnn package)
python=""
for p in python3 /usr/bin/python3 python; do
    if command -v "$p" > /dev/null 2>&1 && "$p" -c 'import torch' > /dev/null 2>&1; then python=$(command -v "$p"); break; fi
done

# cuDNN: the toolkit first, then Python's nvidia-cudnn package
cudnn_lib="" cudnn_inc="" cudnn_where=""
d=$(find_lib_dir cudnn "${cuda_lib_dirs[@]}")
if [[ -n "$d" ]]; then cudnn_lib=$d; cudnn_where=toolkit; fi
for d in "$cuda_home/include" /usr/include /usr/include/x86_64-linux-gnu; do
    [[ -e "$d/cudnn.h" ]] && { cudnn_inc=$d; break; }
done
if [[ -z "$cudnn_lib" && -n "$python" ]]; then
    pydir=$("$python" -c 'import nvidia.cudnn as m, os; p = getattr(m, "__file__", None); print(os.path.dirname(p) if p else list(m.__path__)[0])' 2>/dev/null || true)
    if [[ -n "$pydir" && -d "$pydir/lib" ]] && compgen -G "$pydir/lib/libcudnn.so*" > /dev/null; then
        cudnn_lib=$pydir/lib cudnn_where="python ($pydir)"
        [[ -e "$pydir/include/cudnn.h" ]] && cudnn_inc=$pydir/include
    fi
fi
uses_cudnn=$(grep -rl --include='*.cu' --include='*.cpp' --include='*.h' --include='*.cuh' RANKCLIP_CUDNN cuda engine nn models train eval report data 2>/dev/null | head -1)
if [[ -n "${GPU_CHECK_USE_CUDNN:-}" ]]; then
    use_cudnn=$GPU_CHECK_USE_CUDNN
elif [[ -n "$cudnn_lib" && -n "$cudnn_inc" && -n "$uses_cudnn" ]]; then
    use_cudnn=1
else
    use_cudnn=0
fi
{
    echo
    echo "== cuDNN"
    if [[ -n "$cudnn_lib" ]]; then
        echo "libcudnn: $(cd "$cudnn_lib" && ls libcudnn.so* | head -3 | tr '\n' ' ')in $cudnn_lib [$cudnn_where]"
        echo "cudnn.h: ${cudnn_inc:-NOT FOUND}"
        [[ -n "$cudnn_inc" && -e "$cudnn_inc/cudnn_version.h" ]] &&
            grep -E '#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ' "$cudnn_inc/cudnn_version.h" | awk '{printf "%s=%s ", $2, $3} END {print ""}'
    else
        echo "cuDNN: not found (toolkit dirs, Python's nvidia.cudnn)"
    fi
    echo "sources using RANKCLIP_CUDNN: ${uses_cudnn:-none}"
    echo "USE_CUDNN=$use_cudnn"
} >> "$env_log"
if [[ $use_cudnn == 1 && -n "$cudnn_lib" ]]; then
    if [[ "$cudnn_lib" != "$cuda_home/lib64" && "$cudnn_lib" != "$cuda_home/lib" ]]; then extra_lib_path+=("$cudnn_lib"); fi
    make_linkable cudnn "$cudnn_lib"
    [[ -n "$cudnn_inc" && "$cudnn_inc" != "$cuda_home/include" ]] && extra_cpath+=("$cudnn_inc")
    run_lib_path+=("$cudnn_lib")
fi

# The GPU
{
    echo
    echo "== GPU"
    if command -v nvidia-smi > /dev/null 2>&1; then
        nvidia-smi -L 2>&1
        nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,memory.used,clocks.max.sm,clocks.max.mem,power.limit,mig.mode.current --format=csv 2>&1
        nvidia-smi 2>&1 | head -20
    else
        echo "nvidia-smi: not found"
    fi
} >> "$env_log"
if command -v nvidia-smi > /dev/null 2>&1; then
    nvidia-smi -L 2>/dev/null | grep -q '^GPU ' && have_gpu=1
elif [[ -n "$python" ]] && "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    have_gpu=1  # no nvidia-smi, but PyTorch sees a GPU
fi

# Staged run-time libraries: .gpu-deps/lib/RUNTIME lists libarchive's soname and those of the
# libraries it loads (tools/stage-gpu-deps.sh). The ones this machine lacks are linked into
# $deps_run (the big .xz one unpacked there), which goes on LD_LIBRARY_PATH when our programs
# run and on -rpath-link when they are linked. Only the missing ones, found by asking ldd what
# the staged libarchive cannot resolve, round after round: a staged copy of a library the system
# has could need a newer glibc than this machine's and would then also break the system tools
# (ls, tar, ...) our tests start with that LD_LIBRARY_PATH. GPU_CHECK_STAGED_LIBS=all takes every
# staged library instead (to rehearse on a machine that has them all).
if ((dry_run)); then deps_run=$(mktemp -d)/deps-run; else deps_run=$build/deps-run; fi
deps_run_report=()
stage_runtime_lib() {  # stage_runtime_lib SONAME: link or unpack it into $deps_run; 1 if not staged
    local name=$1 file
    file=$(awk -v n="$name" '$1 == n {print $2}' "$deps/lib/RUNTIME" 2>/dev/null)
    [[ -n "$file" && -e "$deps/lib/$file" ]] || return 1
    [[ -e "$deps_run/$name" ]] && return 0
    if [[ $file == *.xz ]]; then
        if command -v xz > /dev/null 2>&1; then
            xz -dc "$deps/lib/$file" > "$deps_run/$name" || return 1
        else  # Python's lzma, where xz-utils is missing
            "${python:-python3}" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
                "$deps/lib/$file" "$deps_run/$name" || return 1
        fi
    else
        ln -sfn "$deps/lib/$file" "$deps_run/$name"
    fi
}
rm -rf "$deps_run"
mkdir -p "$deps_run"
if [[ -e "$deps/lib/RUNTIME" && -e "$deps/lib/libarchive.so" ]]; then
    if [[ "${GPU_CHECK_STAGED_LIBS:-missing}" == all ]]; then
        while read -r name _; do stage_runtime_lib "$name" && deps_run_report+=("$name"); done < "$deps/lib/RUNTIME"
    else
        for round in 1 2 3 4 5 6; do
            missing=$(LD_LIBRARY_PATH=$deps_run ldd "$deps/lib/libarchive.so" 2>/dev/null | awk '/=> not found/ {print $1}')
            [[ -z "$missing" ]] && break
            for name in $missing; do stage_runtime_lib "$name" && deps_run_report+=("$name"); done
        done
        # libarchive itself (the soname our programs load), unless the system has its own; and
        # oneDNN, SLEEF and oneDNN's libOpenCL (the CPU GEMM and vector math), which nothing on a
        # device image has, and tcmalloc for the PyTorch twins (tools/torch_env.py finds it on
        # LD_LIBRARY_PATH)
        soname=$(head -1 "$deps/lib/RUNTIME" | awk '{print $1}')
        for name in "$soname" libdnnl.so.2 libsleef.so.3 libOpenCL.so.1 libtcmalloc_minimal.so.4; do
            if ! { ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | awk -v n="$name" '$1 == n {f = 1} END {exit !f}'; then
                stage_runtime_lib "$name" && deps_run_report+=("$name")
            fi
        done
    fi
fi
# -ldnnl needs the link name: beside the unpacked copy (the staged one is .xz-packed)
if [[ -e "$deps_run/libdnnl.so.2" ]]; then
    ln -sfn libdnnl.so.2 "$deps_run/libdnnl.so"
    extra_lib_path+=("$deps_run")
fi

# Tools, Python, staged dependencies
{
    echo
    echo "== tools"
    for t in g++ make cmake compute-sanitizer; do
        p=$(command -v "$t" 2>/dev/null || ls "$cuda_home/bin/$t" "$cuda_home/$t/$t" 2>/dev/null | head -1 || true)
        if [[ -n "$p" ]]; then echo "$t: $p: $("$p" --version 2>&1 | grep -m1 -iE 'version|[0-9]+\.[0-9]+')"; else echo "$t: not found"; fi
    done
    # the compiler make uses ($CXX when set: the device image sets /opt/gcc/bin/g++, a newer GCC
    # than /usr/bin/g++, whose headers include less: a missing <cstdint> failed the build there)
    cxx=${CXX:-g++}
    echo "CXX (what make compiles with): $(command -v "$cxx" 2>/dev/null || echo "$cxx"): $("$cxx" --version 2>&1 | head -1)"
    if [[ -n "$python" ]]; then
        echo "python with torch: $python"
        "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "cudnn", torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>&1
    else
        echo "python with torch: not found (the benchmark runs ours alone)"
    fi
    echo
    echo "== staged dependencies ($deps)"
    if [[ -d "$deps" ]]; then
        cat "$deps/MANIFEST" 2>/dev/null
        echo "this machine: $(ldd --version 2>&1 | head -1); libstdc++: $( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null) | awk '/libstdc\+\+\.so\.6 / {print $NF; exit}')"
        if [[ -e "$deps/lib/libarchive.so" ]]; then
            echo "staged libraries this machine lacks, used from $deps_run (GPU_CHECK_STAGED_LIBS=${GPU_CHECK_STAGED_LIBS:-missing}): ${deps_run_report[*]:-none}"
            echo "\$ LD_LIBRARY_PATH=$deps_run ldd $deps/lib/libarchive.so"
            LD_LIBRARY_PATH=$deps_run ldd "$deps/lib/libarchive.so" 2>&1
            problems=$(LD_LIBRARY_PATH=$deps_run ldd "$deps/lib/libarchive.so" 2>&1 | grep -E 'not found' | tr -s ' \t' ' ')
            if [[ -n "$problems" ]]; then
                echo "WARNING: the staged libarchive cannot load here, so nothing linked with it starts:"
                echo "$problems"
            fi
        fi
    else
        echo "NOT FOUND: run tools/stage-gpu-deps.sh on the build machine and carry .gpu-deps"
    fi
    echo
    echo "== settings"
    env | grep -E '^(RANKCLIP_|CUDA_VISIBLE|NVIDIA_|LD_LIBRARY_PATH)' | sort
    echo "extra LIBRARY_PATH: ${extra_lib_path[*]:-none}; extra CPATH: ${extra_cpath[*]:-none}; run LD_LIBRARY_PATH: ${run_lib_path[*]:-none}"
} >> "$env_log"

gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
env_note="nvcc ${nvcc:-MISSING}; cuBLAS ${cublas_dir:-MISSING}; cuDNN ${cudnn_where:-none} (USE_CUDNN=$use_cudnn); GPU ${gpu_name:-none}"
if [[ -z "$nvcc" || -z "$cublas_dir" ]]; then
    record env FAIL $((SECONDS - t0)) "$env_note" fatal
elif ((!have_gpu && !allow_no_gpu)); then
    record env FAIL $((SECONDS - t0)) "$env_note: no GPU visible" fatal
else
    record env ok $((SECONDS - t0)) "$env_note"
fi

# Environment for the build (LIBRARY_PATH/CPATH only add dirs; nothing from .gpu-deps is put on
# LD_LIBRARY_PATH for the system's tools; the linker finds libarchive's dependencies the system
# lacks through -rpath-link, passed in LDFLAGS, which the Makefile appends to) and for running
# our programs (the staged libraries the system lacks, $deps_run, on LD_LIBRARY_PATH).
join() { local IFS=:; echo "$*"; }
build_env="env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL CCACHE_DISABLE=1"
[[ ${#extra_lib_path[@]} -gt 0 ]] && build_env+=" LIBRARY_PATH=$(q "$(join "${extra_lib_path[@]}")${LIBRARY_PATH:+:$LIBRARY_PATH}")"
[[ ${#extra_cpath[@]} -gt 0 ]] && build_env+=" CPATH=$(q "$(join "${extra_cpath[@]}")${CPATH:+:$CPATH}")"
build_env+=" LDFLAGS=$(q "-Wl,-rpath-link,$deps_run${LDFLAGS:+ $LDFLAGS}")"
run_path=$(join "$deps_run" ${run_lib_path[@]+"${run_lib_path[@]}"})
run_env="env -u RANKCLIP_TF32 LD_LIBRARY_PATH=$(q "$run_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}") RANKCLIP_ROOT=$(q "$root")"
# The benchmark also starts PyTorch: give it only what our binary needs beyond its rpath (the
# staged libraries this machine lacks, so none that PyTorch would otherwise load from the
# system), so PyTorch keeps its own CUDA libraries.
bench_path=$(join "$deps_run" ${run_lib_path[@]+"${run_lib_path[@]}"})
bench_env="env -u RANKCLIP_TF32${bench_path:+ LD_LIBRARY_PATH=$(q "$bench_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")}"
deps_used=$deps
make_cmd() {
    local vars="CUDA=1 DEPS=$(q "$deps_used") BUILD=$(q "$build") USE_CUDNN=$use_cudnn"
    [[ -n "$cuda_home" ]] && vars+=" CUDA_HOME=$(q "$cuda_home") NVCC=$(q "$nvcc")"
    if ((have_make)); then
        echo "$build_env make -k -j$jobs $vars all"  # -k: one broken target does not stop the rest
    else
        shell_build_cmd
    fi
}
have_make=0
command -v make > /dev/null 2>&1 && have_make=1

# Without `make` (not seen on the device image, but a one-shot run cannot afford the surprise)
# the Makefile's `all` is done by hand: this script mirrors the Makefile's CUDA=1 rules (keep
# them in step), and the playground's programs are built with the flags of cuda/dev/Makefile.
write_shell_build() {
    cat > "$build/shell-build.sh" << 'SCRIPT'
#!/usr/bin/env bash
# Written by tools/gpu-check.sh because `make` is missing: the Makefile's `all` (CUDA=1) by hand.
# Needs B (build folder), D (deps), CH (CUDA_HOME), NVCC, JOBS, USE_CUDNN in the environment.
# Like make -k: what fails is reported, everything else is still built; exit 1 if anything failed.
set -uo pipefail
fail=0
export CXXFLAGS="-O2 -march=native -std=c++17 -fopenmp -Wall -Wextra -Wno-unused-parameter -I. -I$D/include/eigen3 -I$D/include -DRANKCLIP_CUDA -I$CH/include"
export NVCCFLAGS="-O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 -I. -Xcompiler -fopenmp -DRANKCLIP_CUDA --expt-relaxed-constexpr"
LDFLAGS="${LDFLAGS:-} -fopenmp -L$D/lib -L$CH/lib64 -L$CH/lib -Wl,-rpath,$CH/lib64"
LDFLAGS+=" -Wl,--undefined=rankclip_cuda_backend_registered"  # keeps the CUDA backend's registration (cuda/device.cpp)
LDLIBS="-lpthread -lz -larchive -ldnnl -lsleef -lcudart -lcublas -lcublasLt"
if [[ "$USE_CUDNN" == 1 ]]; then CXXFLAGS+=" -DRANKCLIP_CUDNN"; NVCCFLAGS+=" -DRANKCLIP_CUDNN"; LDLIBS+=" -lcudnn"; fi
export B NVCC
compile() {  # one source -> its object under $B, as the Makefile names it
    local src=$1 obj
    if [[ $src == *.cu ]]; then obj=$B/${src%.cu}.cu.o; else obj=$B/${src%.cpp}.o; fi
    mkdir -p "$(dirname "$obj")"
    [[ -e "$obj" && "$obj" -nt "$src" ]] && return 0
    if [[ $src == *.cu ]]; then echo "$NVCC $src"; "$NVCC" $NVCCFLAGS -c "$src" -o "$obj"
    else echo "g++ $src"; g++ $CXXFLAGS -c "$src" -o "$obj"; fi
}
export -f compile
shopt -s nullglob
lib_src=(engine/*.cpp engine/cpu/*.cpp engine/ops/*.cpp nn/*.cpp models/*.cpp train/*.cpp eval/*.cpp report/*.cpp data/*.cpp cuda/*.cpp cuda/*.cu)
# dist/: one process (no MPI here), NCCL when the toolkit has it (the Makefile's MPI=0, NCCL=auto)
lib_src+=(dist/comm.cpp dist/all_gather.cpp dist/no_mpi.cpp)
if [[ -f $CH/include/nccl.h ]]; then
    lib_src+=(dist/nccl_comm.cpp); LDFLAGS+=" -Wl,-rpath,$CH/lib"; LDLIBS+=" -lnccl"
else lib_src+=(dist/no_nccl.cpp); fi
tool_src=(tools/rankclip.cpp tools/cmd_*.cpp)  # the command table and one file per command
test_src=(tests/*.cpp)
bench_src=(bench/*.cpp)  # each one a program: bench/X.cpp -> $B/X
printf '%s\n' "${lib_src[@]}" "${test_src[@]}" "${tool_src[@]}" "${bench_src[@]}" |
    xargs -P "$JOBS" -I{} bash -c 'compile "$@"' _ {} || fail=1
objs=()
for s in "${lib_src[@]}"; do if [[ $s == *.cu ]]; then objs+=("$B/${s%.cu}.cu.o"); else objs+=("$B/${s%.cpp}.o"); fi; done
rm -f "$B/librankclip.a" && ar rcs "$B/librankclip.a" "${objs[@]}" || exit 1
tobjs=()
for s in "${test_src[@]}"; do tobjs+=("$B/${s%.cpp}.o"); done
tool_objs=()
for s in "${tool_src[@]}"; do tool_objs+=("$B/${s%.cpp}.o"); done
g++ $LDFLAGS "${tool_objs[@]}" "$B/librankclip.a" -o "$B/rankclip" $LDLIBS || fail=1
g++ $LDFLAGS "${tobjs[@]}" "$B/librankclip.a" -o "$B/run_tests" -lgtest -lgtest_main $LDLIBS || fail=1
for s in "${bench_src[@]}"; do
    name=$(basename "${s%.cpp}")
    g++ $LDFLAGS "$B/bench/$name.o" "$B/librankclip.a" -o "$B/$name" $LDLIBS || fail=1
done
echo "shell build done (failures: $fail)"
exit $fail
SCRIPT
}
shell_build_cmd() {
    echo "$build_env B=$(q "$build") D=$(q "$deps_used") CH=$(q "$cuda_home") NVCC=$(q "$nvcc") JOBS=$jobs USE_CUDNN=$use_cudnn bash $(q "$build/shell-build.sh")"
}
first_error() { grep -m1 -E 'error:|Error [0-9]+|undefined reference|No rule' "$1" | cut -c1-160; }

# ================= 2. build (and the cuda/dev playground alongside) =================
dev_pid="" dev_src=cuda/dev dev_dir=$build/cuda-dev
if [[ -f $dev_src/Makefile ]] && ((!dry_run)) && ! skip_asked cuda/dev; then
    # Built in a copy of its sources, so the tree (and any binaries checked in there) stay untouched.
    rm -rf "$dev_dir" && mkdir -p "$dev_dir"
    cp "$dev_src"/Makefile "$dev_src"/*.cu "$dev_src"/*.h "$dev_dir"/ 2>/dev/null
    dev_t0=$SECONDS
    dev_cmd="$build_env make -C $(q "$dev_dir") -j4${nvcc:+ NVCC=$(q "$nvcc")}"
    if ((!have_make)); then  # the flags of cuda/dev/Makefile
        dev_cmd="cd $(q "$dev_dir") && for f in *.cu; do echo \"nvcc \$f\"; $(q "$nvcc") -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 --expt-relaxed-constexpr -lineinfo \$f -o \${f%.cu} -lcublas & done; wait; for f in *.cu; do test -x \${f%.cu} || exit 1; done"
    fi
    echo "\$ $dev_cmd    # started alongside the main build" >> "$dev_log"
    (timeout -k 10 $(($(left) - 60 > 30 ? $(left) - 60 : 30)) bash -c "$dev_cmd" >> "$dev_log" 2>&1
     echo "# exit status $? after $((SECONDS - dev_t0))s" >> "$dev_log") &
    dev_pid=$!
fi

((have_make)) || { say "make not found: building with $build/shell-build.sh (mirrors the Makefile)"; ((dry_run)) || write_shell_build; }
if [[ "${GPU_CHECK_SKIP_BUILD:-0}" == 1 && -x "$build/run_tests" ]]; then
    echo "# GPU_CHECK_SKIP_BUILD=1: using the binaries already in $build" >> "$build_log"
    rc=0 secs=0
else
    run_step 330 "$build_log" "$(make_cmd)"
fi
build_rc=$rc build_secs=$secs build_note="make -j$jobs CUDA=1 USE_CUDNN=$use_cudnn"
((have_make)) || build_note="no make: shell-build.sh -j$jobs CUDA=1 USE_CUDNN=$use_cudnn"
[[ "${GPU_CHECK_SKIP_BUILD:-0}" == 1 ]] && build_note="skipped (GPU_CHECK_SKIP_BUILD=1)"
if ((build_rc != 0 && build_rc != 124 && build_rc != 137 && build_rc != -1)); then
    # Fallback 1: cuDNN was asked for and the build broke: try without it.
    if [[ $use_cudnn == 1 ]]; then
        say "build failed with USE_CUDNN=1: retrying with USE_CUDNN=0"
        use_cudnn=0
        run_step 240 "$build_log" "$(make_cmd)"
        build_rc=$rc build_secs=$((build_secs + secs)) build_note+="; retried with USE_CUDNN=0"
    fi
fi
if ((build_rc != 0 && build_rc != 124 && build_rc != 137 && build_rc != -1)) &&
    grep -qE "undefined reference to .*testing::|cannot find -lgtest|libgtest[^ ]*: (error|file format|undefined)" "$build_log" &&
    [[ -d "$deps/src/googletest/src" ]]; then
    # Fallback 2: the prebuilt GoogleTest does not link with this compiler: rebuild it here.
    say "GoogleTest does not link: rebuilding it from $deps/src/googletest"
    gdeps=$build/deps-local
    rm -rf "$gdeps" && mkdir -p "$gdeps/lib" "$build/gtest-obj"
    ln -s "$deps/include" "$gdeps/include"
    for f in "$deps"/lib/*; do case "$(basename "$f")" in libgtest* | libgmock*) ;; *) ln -s "$f" "$gdeps/lib/" ;; esac; done
    gsrc=$deps/src/googletest
    gflags="-O2 -std=c++17 -pthread -I$(q "$gsrc/include") -I$(q "$gsrc")"
    run_step 120 "$build_log" "cd $(q "$build/gtest-obj") && g++ $gflags -c $(q "$gsrc/src/gtest-all.cc") -o gtest-all.o && g++ $gflags -c $(q "$gsrc/src/gtest_main.cc") -o gtest_main.o && ar rcs $(q "$gdeps/lib/libgtest.a") gtest-all.o && ar rcs $(q "$gdeps/lib/libgtest_main.a") gtest_main.o"
    if ((rc == 0)); then
        deps_used=$gdeps
        run_step 240 "$build_log" "$(make_cmd)"
        build_rc=$rc
    fi
    build_secs=$((build_secs + secs)) build_note+="; GoogleTest rebuilt on this machine"
fi
if ((build_rc == 0)); then
    record build "$(status_of 0)" "$build_secs" "$build_note"
elif [[ -x "$build/run_tests" ]] && ((!dry_run)); then
    # Something else broke (the tool, the benchmark): the tests still run if their binary linked.
    record build FAIL "$build_secs" "$build_note; exit $build_rc (run_tests linked): $(first_error "$build_log")" fatal
else
    record build "$(status_of $build_rc)" "$build_secs" "$build_note; exit $build_rc: $(first_error "$build_log")" fatal
fi

# ================= 3. tests: everything, CUDA suites counted apart =================
count() { grep -cE "$1" "$2" 2>/dev/null || true; }
cuda_counts() {  # "P passed, F failed, S skipped" of the Cuda* tests in a gtest log
    echo "$(count '^\[ +OK \] Cuda[A-Za-z]*\.[^ ]+ \(' "$1") passed, $(count '^\[ +FAILED +\] Cuda[A-Za-z]*\.[^ ]+ \(' "$1") failed, $(count '^\[ +SKIPPED \] Cuda[A-Za-z]*\.[^ ]+ \(' "$1") skipped"
}
tests_ran=0
if skip_asked tests; then
    record tests skipped 0 "GPU_CHECK_SKIP (the CUDA suites too)"
elif [[ -x "$build/run_tests" ]] || ((dry_run)); then
    run_step 200 "$tests_log" "$run_env RANKCLIP_CUDA_NO_CACHE= $(q "$build/run_tests") --gtest_filter='*' --gtest_color=no"
    tests_rc=$rc tests_secs=$secs
    summary_line=$(grep -E '^\[==========\] [0-9]+ tests? from .* ran' "$tests_log" | tail -1)
    total=$(echo "$summary_line" | grep -oE '[0-9]+' | head -1)
    passed=$(grep -oE '^\[  PASSED  \] [0-9]+' "$tests_log" | grep -oE '[0-9]+$' | tail -1)
    skipped=$(grep -oE '^\[  SKIPPED \] [0-9]+ test' "$tests_log" | grep -oE '[0-9]+' | tail -1)
    nfailed=$(grep -oE '^\[  FAILED  \] [0-9]+ test' "$tests_log" | grep -oE '[0-9]+' | tail -1)
    note="${passed:-0} passed, ${nfailed:-0} failed, ${skipped:-0} skipped of ${total:-?}"
    if ((dry_run)); then
        record tests planned 0 "dry run"
    elif [[ -z "$summary_line" ]]; then
        record tests "$(status_of $tests_rc)" "$tests_secs" "the test binary did not finish (exit $tests_rc: crash or time-out); last test: $(grep -E '^\[ RUN' "$tests_log" | tail -1 | cut -c14-)" fatal
    elif ((tests_rc == 124 || tests_rc == 137)); then  # the binary ended after SIGTERM: a late test saw it
        record tests TIMEOUT "$tests_secs" "$note; stopped at the step's time limit" fatal
    elif ((tests_rc != 0)); then
        record tests FAIL "$tests_secs" "$note" fatal
    else
        record tests ok "$tests_secs" "$note"
    fi
    tests_ran=1
else
    record tests skipped 0 "no test binary (build failed)" fatal
fi

# ================= 4. the CUDA suites: counts, crash salvage, no-cache pass =================
if ((tests_ran)); then
    echo "== CUDA suites in the full run (tests.log): $(cuda_counts "$tests_log")" >> "$cuda_log"
    if ((!dry_run)) && [[ -z "${summary_line:-}" ]]; then
        # The full run died: run each CUDA test in its own process so one crash loses one test.
        echo "== the full run did not finish: each CUDA test in its own process" >> "$cuda_log"
        list=$("$build/run_tests" --gtest_list_tests --gtest_filter='Cuda*' 2>/dev/null |
            awk '/^[^ ]/ {suite = $1} /^  [^ ]/ {print suite $1}')
        salvage_t0=$SECONDS salvage_fail=0
        for t in $list; do
            run_step 60 "$cuda_log" "$run_env $(q "$build/run_tests") --gtest_filter=$(q "$t") --gtest_color=no"
            ((rc != 0)) && salvage_fail=1
        done
        if ((salvage_fail)); then
            record "cuda salvage" FAIL $((SECONDS - salvage_t0)) "one process per test: $(cuda_counts "$cuda_log")" fatal
        else
            record "cuda salvage" ok $((SECONDS - salvage_t0)) "one process per test: $(cuda_counts "$cuda_log")"
        fi
    fi
    cuda_note="in the full run: $(cuda_counts "$tests_log")"
    if ((have_gpu)) || ((dry_run)); then
        echo "== CUDA suites again with RANKCLIP_CUDA_NO_CACHE=1 (every allocation straight from cudaMalloc)" >> "$cuda_log"
        run_step 90 "$cuda_log" "$run_env RANKCLIP_CUDA_NO_CACHE=1 $(q "$build/run_tests") --gtest_filter='Cuda*' --gtest_color=no"
        if ((rc == 0)); then
            record "cuda tests" "$(status_of 0)" "$secs" "$cuda_note; no-cache pass ok"
        else
            record "cuda tests" "$(status_of $rc)" "$secs" "$cuda_note; no-cache pass exit $rc" fatal
        fi
    else
        record "cuda tests" skipped 0 "$cuda_note (no GPU: they skip)"
    fi
fi

# ================= 5. models: training steps against PyTorch, a short training run =================
# (first of the timings: the model-level numbers are the ones docs/GPU.md reports)
if skip_asked models; then
    record models skipped 0 "GPU_CHECK_SKIP"
elif [[ ! -x "$build/rankclip" ]] && ((!dry_run)); then
    record models absent 0 "no $build/rankclip (not built)"
elif ((!have_gpu && !dry_run)); then
    record models skipped 0 "no GPU"
else
    run_step "${GPU_CHECK_MODELS_CAP:-240}" "$models_log" "$bench_env GPU_MODELS_OUT=$(q "$build/models") tools/gpu-models.sh $(q "$build/rankclip") $(q "${python:-}")"
    cases=$(count '"compare": ?"train_step"' "$models_log")
    if ((rc == 0)); then
        record models "$(status_of 0)" "$secs" "$cases cases against PyTorch, training runs ok; table at the end of models.log"
    elif ((rc == -1)); then
        record models skipped 0 "no time left"
    elif ((rc == 124 || rc == 137)); then
        record models TIMEOUT "$secs" "$cases cases against PyTorch before the time-out"
    else
        record models "$(status_of $rc)" "$secs" "$(grep -c '^FAILED:' "$models_log") case(s) failed, $cases compared (models.log)" fatal
    fi
fi

# ================= 6. benchmarks: ours on CUDA and PyTorch's twin =================
# (before the playground: these are the numbers the project reports)
bench_bin=$build/bench_engine
if skip_asked bench; then
    record bench skipped 0 "GPU_CHECK_SKIP"
elif [[ ! -x "$bench_bin" ]] && ((!dry_run)); then
    record bench absent 0 "no $bench_bin (not built)"
elif ((!dry_run)) && ! grep -q -- '--device' <<< "$(eval "$bench_env $(q "$bench_bin") --help" 2>&1)"; then
    # (not a pipe: under pipefail, --help's exit status or grep -q's early exit would count; with
    # $bench_env: the staged libraries are on its LD_LIBRARY_PATH, and without them it cannot start)
    record bench absent 0 "bench_engine --help names no --device: $(eval "$bench_env $(q "$bench_bin") --help" 2>&1 | head -c 160 | tr '\n' ' ')"
elif ((!have_gpu && !dry_run)); then
    record bench skipped 0 "no GPU"
else
    bench_args="--device cuda"
    (($(left) < 200)) && bench_args+=" --quick"  # short of time: the smaller shapes
    run_step 150 "$bench_log" "$bench_env tools/run-bench.sh $(q "$bench_bin") $(q "${python:-/usr/bin/python3}") $bench_args"
    cases=$(count '"impl": ?"rankclip".*"median_ms"' "$bench_log")
    torch_cases=$(count '"impl": ?"pytorch".*"median_ms"' "$bench_log")
    if ((rc == 0)); then
        record bench "$(status_of 0)" "$secs" "$bench_args: $cases cases (ours), $torch_cases (PyTorch); table at the end of bench.log"
    else
        record bench "$(status_of $rc)" "$secs" "exit $rc after $cases cases (ours), $torch_cases (PyTorch)"
    fi
fi

# ================= 7. cuda/dev: the kernel playground =================
if skip_asked cuda/dev; then
    record "cuda/dev" skipped 0 "GPU_CHECK_SKIP"
elif [[ ! -f $dev_src/Makefile ]]; then
    record "cuda/dev" absent 0 "no cuda/dev/Makefile in this tree"
elif ((dry_run)); then
    run_step 150 "$dev_log" "make -C $dev_dir -j4 && make -C $dev_dir run"
    record "cuda/dev" planned 0 "dry run"
else
    wait "$dev_pid"
    dev_build_rc=$(grep -oE '^# exit status [0-9]+' "$dev_log" | tail -1 | grep -oE '[0-9]+$')
    dev_build_secs=$(grep -oE '^# exit status [0-9]+ after [0-9]+' "$dev_log" | tail -1 | grep -oE '[0-9]+$')
    if [[ "${dev_build_rc:-1}" != 0 ]]; then
        record "cuda/dev" FAIL "${dev_build_secs:-0}" "build failed (exit ${dev_build_rc:-?}): $(first_error "$dev_log")" fatal
    else
        echo "== make run" >> "$dev_log"
        if ((have_make)); then
            run_step 180 "$dev_log" "$run_env make -C $(q "$dev_dir") run"
        else
            run_step 180 "$dev_log" "cd $(q "$dev_dir") && for f in *.cu; do p=\${f%.cu}; echo \"=== \$p\"; $run_env ./\$p || exit 1; done"
        fi
        programs=$(count '^=== ' "$dev_log")
        if ((rc == 0 && !have_gpu)); then
            record "cuda/dev" ok $((dev_build_secs + secs)) "built in ${dev_build_secs}s; $programs programs ran, $(count 'no CUDA device' "$dev_log") said 'no CUDA device'"
        elif ((rc == 0)); then
            record "cuda/dev" ok $((dev_build_secs + secs)) "built in ${dev_build_secs}s (alongside); $programs programs checked and timed"
        elif ((rc == -1)); then
            record "cuda/dev" skipped 0 "built; no time left to run"
        elif ((rc == 124 || rc == 137)); then
            record "cuda/dev" TIMEOUT $((dev_build_secs + secs)) "time-out during program $programs: $(grep '^=== ' "$dev_log" | tail -1)"
        else
            record "cuda/dev" FAIL $((dev_build_secs + secs)) "a check failed in $(grep '^=== ' "$dev_log" | tail -1 | cut -c5-)" fatal
        fi
    fi
fi

# ================= 8. compute-sanitizer (only with time left over) =================
sanitizer=$(command -v compute-sanitizer 2>/dev/null || ls "$cuda_home/bin/compute-sanitizer" \
    "$cuda_home/compute-sanitizer/compute-sanitizer" 2>/dev/null | head -1 || true)
if skip_asked sanitizer; then
    record sanitizer skipped 0 "GPU_CHECK_SKIP"
elif ((!have_gpu && !dry_run)); then
    record sanitizer skipped 0 "no GPU"
elif [[ -z "$sanitizer" ]]; then
    record sanitizer absent 0 "compute-sanitizer not found"
elif [[ ! -x "$build/run_tests" ]] && ((!dry_run)); then
    record sanitizer skipped 0 "no test binary"
elif (($(left) < 60)); then
    record sanitizer skipped 0 "no time left ($(left)s)"
else
    echo "== compute-sanitizer memcheck over the CUDA suites (exact-size allocations); a time-out is not a failure" >> "$cuda_log"
    run_step 600 "$cuda_log" "$run_env RANKCLIP_CUDA_NO_CACHE=1 $(q "$sanitizer") --tool memcheck --error-exitcode 99 --print-limit 20 $(q "$build/run_tests") --gtest_filter='CudaDeterminism.*:CudaOps.*' --gtest_color=no"
    errors=$(grep -oE 'ERROR SUMMARY: [0-9]+' "$cuda_log" | tail -1 | grep -oE '[0-9]+$')
    if ((rc == 0)); then
        record sanitizer "$(status_of 0)" "$secs" "memcheck: ${errors:-0} errors"
    elif ((rc == 124 || rc == 137)); then
        record sanitizer TIMEOUT "$secs" "partial: $(grep -cE '^\[ +OK \]' "$cuda_log") tests passed under memcheck before the time-out; no errors reported so far: $(grep -q '========= Invalid\|========= Program hit' "$cuda_log" && echo no || echo yes)"
    else
        record sanitizer FAIL "$secs" "exit $rc, memcheck errors: ${errors:-?} (tests-cuda.log)" fatal
    fi
fi

# ================= summary =================
{
    echo "gpu-check summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), ${gpu_name:-no GPU}, $((SECONDS - start))s of ${budget}s)"
    printf '%-12s %-8s %6s  %s\n' step status seconds note
    for i in "${!names[@]}"; do
        printf '%-12s %-8s %6s  %s\n' "${names[$i]}" "${statuses[$i]}" "${seconds[$i]}" "${notes[$i]}"
    done
    fails=$(grep -hE '^\[  FAILED  \] [A-Za-z0-9_]+\.[^ ]+ \(' "$tests_log" "$cuda_log" 2>/dev/null | sed 's/ ([0-9]* ms)$//' | sort -u)
    if [[ -n "$fails" ]]; then
        echo
        echo "failed tests:"
        echo "$fails"
        echo
        echo "first failure messages (tests.log, tests-cuda.log):"
        grep -hE -A4 '^[^ ]+:[0-9]+: Failure' "$tests_log" "$cuda_log" 2>/dev/null | head -60
    fi
    echo
    echo "result: $( ((failed)) && echo FAILED || echo OK); logs in $out"
} > "$summary"
echo
cat "$summary"
exit $((failed ? 1 : 0))
