"""tools/torch_env.py: the PyTorch configuration the benchmark twins run under, and its record.

The twins (bench_torch.py, bench_models_torch.py) are the anchor of `make bench`, so PyTorch must
run at its best on the machine, not at Debian's defaults. Libraries read their settings from the
environment when they load, so `load_torch(threads)` sets them before `import torch`, re-running
the interpreter once (execv) when it had to change any, and returns the torch module:

  OMP_NUM_THREADS, OPENBLAS_NUM_THREADS = threads: torch.set_num_threads sizes only the OpenMP
      pool, and OpenBLAS (pthread build) keeps its own pool, sized to every core by default;
  OPENBLAS_CORETYPE: only when OpenBLAS's CPU detection picked kernels weaker than the CPU's
      flags allow (an unknown CPU model falls back to older kernels): SkylakeX for AVX-512,
      Haswell for AVX2+FMA. This one is raised even when the environment already names a weaker
      core (some machines export OPENBLAS_CORETYPE=Haswell for all programs; on an AVX-512 AMD EPYC
      the SkylakeX kernels take a tiny training step from 1178 to 862 ms); the JSON line records it;
  GOMP_SPINCOUNT=30000 (unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set): torch's OpenMP
      workers spin about 0.3 ms after a parallel region before sleeping, instead of libgomp's 3 ms,
      which takes the cores from OpenBLAS's own threads, or 0 (OMP_WAIT_POLICY=passive), which
      pays a wake-up per region. Fastest on the quiet 2-core machine in fp32 and bf16; on a busy
      machine passive is faster (docs/PERFORMANCE.md "Method");
  ATEN_CPU_CAPABILITY=avx512 where the CPU has AVX-512 F/BW/VL/DQ: Debian's torch 1.13 picks its
      AVX2 kernels otherwise, although the AVX-512 ones are built in (a few % faster when quiet);
  LD_PRELOAD=libtcmalloc_minimal.so.4 (gperftools' tcmalloc, libtcmalloc-minimal4) when it is
      installed and LD_PRELOAD is unset, as PyTorch's CPU performance guides advise: under glibc's
      malloc every step maps its large activations afresh and the kernel zeroes those pages again;
      tcmalloc keeps them. It halves the training steps on the 2-core machines (docs/PERFORMANCE.md).

Any other variable the caller already set is left alone, so alternatives can be measured by
setting them (GOMP_SPINCOUNT set by our own binaries' restart, engine/parallel.cpp, counts as
unset); RANKCLIP_TORCH_ENV=default skips all of this (Debian's defaults, threads aside).
`describe()` then says what actually loaded (for the JSON lines), and warns on stderr when the
BLAS is the netlib reference one, which is no fair anchor.
"""
import ctypes
import ctypes.util
import os
import re
import sys

_MARK = "RANKCLIP_TORCH_ENV_APPLIED"  # set in the re-executed interpreter: never exec twice
_AVX512 = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}  # what ATen's and OpenBLAS's AVX-512 kernels need
# OpenBLAS core names by the widest vector kernels they run (others: SSE-era or unknown, level 0)
_OPENBLAS_LEVEL = {"SkylakeX": 3, "Cooperlake": 3, "SapphireRapids": 3,
                   "Haswell": 2, "Zen": 2, "Excavator": 2,
                   "Sandybridge": 1, "Bulldozer": 1, "Piledriver": 1, "Steamroller": 1}
_DNNL_ISA = {0x1: "sse41", 0x3: "avx", 0x7: "avx2", 0x407: "avx2_vnni", 0x27: "avx512_core",
             0x67: "avx512_core_vnni", 0xE7: "avx512_core_bf16", 0x3E7: "avx512_core_amx"}


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _openblas(lib):
    """lib (a ctypes.CDLL) if it is OpenBLAS, with the query functions typed; else None."""
    if not hasattr(lib, "openblas_get_corename"):
        return None
    lib.openblas_get_corename.restype = ctypes.c_char_p
    lib.openblas_get_config.restype = ctypes.c_char_p
    return lib


def wanted_openblas_core(detected, flags):
    """The OPENBLAS_CORETYPE to force, or None when OpenBLAS's own choice is as good as the CPU allows."""
    if _AVX512 <= flags:
        want = "SkylakeX"
    elif {"avx2", "fma"} <= flags:
        want = "Haswell"
    else:
        return None
    return want if _OPENBLAS_LEVEL.get(detected, 0) < _OPENBLAS_LEVEL[want] else None


def tuned_env(threads, flags):
    """The variables to set (those the environment does not already set)."""
    want = {"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    ours_spin = os.environ.get("RANKCLIP_GOMP_SPINCOUNT_SET") == "1"  # set by our binary, not the user
    if "OMP_WAIT_POLICY" not in os.environ and ("GOMP_SPINCOUNT" not in os.environ or ours_spin):  # libgomp: an explicit spin count overrides the policy
        want["GOMP_SPINCOUNT"] = "30000"
    if _AVX512 <= flags:
        want["ATEN_CPU_CAPABILITY"] = "avx512"
    try:  # the BLAS torch will load: libblas.so.3 (Debian's alternatives) is OpenBLAS or not
        blas = _openblas(ctypes.CDLL("libblas.so.3"))
    except OSError:
        blas = None
    raise_core = {}
    if blas is not None:  # the core OpenBLAS chose (from OPENBLAS_CORETYPE when that is set)
        core = wanted_openblas_core(blas.openblas_get_corename().decode(), flags)
        if core:
            raise_core["OPENBLAS_CORETYPE"] = core
            if "OPENBLAS_CORETYPE" in os.environ:
                raise_core["RANKCLIP_OPENBLAS_CORETYPE_WAS"] = os.environ["OPENBLAS_CORETYPE"]
    tcmalloc = ctypes.util.find_library("tcmalloc_minimal") or next(
        (path for path in (os.path.join(d, "libtcmalloc_minimal.so.4")  # a staged copy (tools/gpu-check.sh)
                           for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d)
         if os.path.exists(path)), None)
    if tcmalloc:
        want["LD_PRELOAD"] = tcmalloc
    keep = {k: v for k, v in want.items() if k not in os.environ or (k == "GOMP_SPINCOUNT" and ours_spin)}
    return {**keep, **raise_core}


def load_torch(threads=0):
    """Sets the environment (re-executing this script once if it changed), imports torch, sets its
    thread count (0: every core this process may run on) and returns the module; None without torch."""
    threads = threads if threads > 0 else len(os.sched_getaffinity(0))
    if os.environ.get("RANKCLIP_TORCH_ENV") != "default" and _MARK not in os.environ:
        env = dict(os.environ, **tuned_env(threads, cpu_flags()))
        env[_MARK] = "1"
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def _loaded_libraries():
    with open("/proc/self/maps") as f:
        return {line.split()[-1] for line in f if "/" in line}


_described = None


def describe(torch):
    """What torch actually runs on, for each JSON line: the BLAS library and its kernels, the ATen
    kernel set, oneDNN's ISA, the OpenMP wait policy. Warns once on stderr about a reference BLAS."""
    global _described
    if _described is not None:
        return _described
    libs = _loaded_libraries()
    out = {"torch_env": os.environ.get("RANKCLIP_TORCH_ENV", "tuned")}
    openblas = next((p for p in libs if re.search(r"libopenblas[^/]*\.so", p)), None)
    mkl = next((p for p in libs if "libmkl" in p), None)
    if openblas:
        lib = _openblas(ctypes.CDLL(openblas))
        config = lib.openblas_get_config().decode()
        version = re.search(r"OpenBLAS ([\d.]+)", config)
        variant = "openmp" if "openmp" in openblas else "pthread" if "pthread" in openblas else "serial"
        out["blas"] = f"openblas {version.group(1) if version else '?'} ({variant})"
        out["blas_core"] = lib.openblas_get_corename().decode()
        if "RANKCLIP_OPENBLAS_CORETYPE_WAS" in os.environ:
            out["blas_core_env_was"] = os.environ["RANKCLIP_OPENBLAS_CORETYPE_WAS"]
        out["blas_threads"] = lib.openblas_get_num_threads()
    elif mkl or "BLAS_INFO=mkl" in torch.__config__.show():
        out["blas"] = "mkl" if mkl else "mkl (linked into libtorch)"
    elif any(re.search(r"/blas/libblas\.so", p) for p in libs):
        out["blas"] = "reference (netlib)"
        print("bench: warning: PyTorch runs on the netlib reference BLAS (single-threaded, unblocked): "
              "not a fair anchor; install libopenblas0-pthread (tools/install-deps.sh)", file=sys.stderr)
    else:
        out["blas"] = "unknown"
    if hasattr(torch.backends, "cpu") and hasattr(torch.backends.cpu, "get_cpu_capability"):  # torch >= 2.0
        out["aten_cpu"] = torch.backends.cpu.get_cpu_capability()
    else:
        shown = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
        out["aten_cpu"] = shown.group(1) if shown else os.environ.get("ATEN_CPU_CAPABILITY", "?")
    dnnl = next((p for p in libs if "libdnnl" in p or "libmkldnn" in p), None)
    if dnnl:
        try:
            isa = ctypes.CDLL(dnnl).dnnl_get_effective_cpu_isa()
            out["onednn_isa"] = _DNNL_ISA.get(isa, hex(isa))
        except (OSError, AttributeError):
            pass  # a oneDNN linked into libtorch, without the symbol exported
    out["allocator"] = next((name for name in ("tcmalloc", "jemalloc") if any(name in p for p in libs)), "glibc")
    if out["allocator"] == "glibc" and out["torch_env"] != "default":
        print("bench: warning: PyTorch runs on glibc's malloc, which about doubles its training step: not a "
              "fair anchor; install libtcmalloc-minimal4 (tools/install-deps.sh)", file=sys.stderr)
    out["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "default")
    out["gomp_spincount"] = os.environ.get("GOMP_SPINCOUNT", "default")
    _described = out
    return out


def vm_kb(field):
    """A /proc/self/status field in KiB (VmHWM: this process's peak resident set, VmRSS: now); 0 if unknown.
    VmHWM rather than getrusage's ru_maxrss: a child started by fork/vfork + exec inherits its
    parent's ru_maxrss, while VmHWM starts afresh at exec."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
