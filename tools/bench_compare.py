#!/usr/bin/env python3
"""tools/bench_compare.py: the table of `make bench` (needs no torch; any python3 runs it).

Reads the JSON lines of bench/bench_engine.cpp and bench/bench_models.cpp ("impl": "rankclip")
and of their twins tools/bench_torch.py and tools/bench_models_torch.py ("impl": "pytorch") from
one file, pairs the cases by (device, case, shape), and prints each case's figure for both and
  ours/PyTorch speed  = PyTorch's median time / ours (the same work, so > 1: we are faster);
  ours/PyTorch memory = our peak / PyTorch's (< 1: we need less), for the training steps, whose
                        lines carry each process's peak resident set (peak_rss_mb; on CUDA the
                        allocators' peak_cuda_mb), each case measured in a process of its own.
The figure is GFLOP/s for GEMM (fp32 with the fraction of the measured fp32 peak), GB/s for the
memory-bound kernels, milliseconds for the rest, with images/s where the line has it (the model
cases) and the peak memory (the training steps). Below the table: the PyTorch configuration the
lines record (tools/torch_env.py), a warning when its BLAS is the reference one, and the geometric
means. Lines without a "case" (e.g. the loader's summary, `rankclip bench`) are not compared.

Usage: bench_compare.py build/bench.jsonl [--markdown]
"""
import json
import math
import sys


def load(path):
    lines = []
    with open(path) as f:
        for raw in f:
            raw = raw.strip()
            if raw.startswith("{"):
                try:
                    lines.append(json.loads(raw))
                except json.JSONDecodeError:
                    print(f"bench_compare: skipping a line that is not JSON: {raw[:80]}", file=sys.stderr)
    return lines


def plain(x):
    """3 significant digits without an exponent: 0.0543, 7.98, 725, 19100."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def peak_mb(rec):
    return rec.get("peak_cuda_mb") if rec.get("device", "cpu") != "cpu" else rec.get("peak_rss_mb")


def figure(rec, peak):
    if rec["case"].startswith("gemm"):
        g = rec["gflops"]
        text = f"{g / 1000:.1f} TFLOP/s" if g >= 1000 else f"{g:.1f} GFLOP/s"
        if peak and rec["case"] == "gemm":
            text += f" ({g / peak:.0%} of peak)"
        return text
    if "gbps" in rec:
        return f"{rec['gbps']:.0f} GB/s" if rec["gbps"] >= 100 else f"{rec['gbps']:.3g} GB/s"
    text = f"{plain(rec['median_ms'])} ms"
    extra = [f"{plain(rec['images_per_s'])} images/s"] if "images_per_s" in rec else []
    if peak_mb(rec):
        extra.append(f"{plain(peak_mb(rec))} MB")
    return text + (f" ({', '.join(extra)})" if extra else "")


def torch_config(records):
    """One line naming what the PyTorch twins ran on, as their lines record it (tools/torch_env.py)."""
    rec = next((r for r in records if r.get("impl") == "pytorch" and "blas" in r), None)
    if rec is None:
        return None
    blas = rec["blas"] + (f", {rec['blas_core']} kernels, {rec['blas_threads']} threads" if "blas_core" in rec else "")
    text = f"PyTorch {rec.get('version', '?')} ({rec.get('torch_env', '?')} environment): BLAS {blas}; " \
           f"ATen {rec.get('aten_cpu', '?')} kernels"
    if "onednn_isa" in rec:
        text += f"; oneDNN {rec['onednn_isa']}"
    text += f"; malloc {rec.get('allocator', '?')}; OMP_WAIT_POLICY {rec.get('omp_wait_policy', '?')}"
    if rec.get("gomp_spincount", "default") != "default":
        text += f", GOMP_SPINCOUNT {rec['gomp_spincount']}"
    return text + f"; {rec.get('threads', '?')} threads"


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    markdown = "--markdown" in sys.argv[1:]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    records = load(args[0])
    peaks = {r["threads"]: r["gflops"] for r in records if r.get("case") == "fp32_peak"}
    results = {}  # (device, case, shape) -> {impl: record}
    order = []
    for r in records:
        if "skip" in r:
            print(f"{r.get('impl', '?')}: skipped ({r['skip']})")
            continue
        if "median_ms" not in r or "case" not in r or "impl" not in r:
            continue
        key = (r.get("device", "cpu"), r["case"], r.get("shape", ""))
        if key not in results:
            results[key] = {}
            order.append(key)
        results[key][r["impl"]] = r
    if not order:
        skipped = any("skip" in r for r in records)
        print("bench_compare: no benchmark results" + (" (every program skipped)" if skipped else ""),
              file=sys.stderr)
        sys.exit(0 if skipped else 1)
    have_torch = any("pytorch" in v for v in results.values())

    header = ["case", "shape", "device", "ours", "PyTorch", "ours/PyTorch speed", "ours/PyTorch memory"]
    rows, ratios, memory = [], {}, {}  # ratios per device
    for key in order:
        ours, torch = results[key].get("rankclip"), results[key].get("pytorch")
        # the peak was measured on the CPU with that many threads
        peak = peaks.get(ours["threads"]) if ours and key[0] == "cpu" else None
        ratio = mem = ""
        if ours and torch:
            r = torch["median_ms"] / ours["median_ms"]
            ratios.setdefault(key[0], []).append(r)
            ratio = f"{r:.2f}x"
            if peak_mb(ours) and peak_mb(torch):
                m = peak_mb(ours) / peak_mb(torch)
                memory.setdefault(key[0], []).append(m)
                mem = f"{m:.2f}x"
        rows.append([key[1], key[2], key[0], figure(ours, peak) if ours else "-",
                     figure(torch, peak) if torch else "-", ratio, mem])
    if not memory:  # no training steps in this file: no memory column
        header, rows = header[:-1], [row[:-1] for row in rows]

    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
        for row in [header] + rows:
            print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
    for threads, peak in sorted(peaks.items()):
        print(f"\nmeasured fp32 peak ({threads} threads): {peak:.1f} GFLOP/s; GEMM percentages are of it")
    config = torch_config(records)
    if config:
        print(config)
    # Debian's python3-torch links libblas.so.3, the netlib reference BLAS unless OpenBLAS is
    # installed: every GEMM-bound ratio then flatters us. The lines say which BLAS loaded (older
    # files: a GEMM far below the peak gives it away).
    for key in order:
        torch, ours = results[key].get("pytorch"), results[key].get("rankclip")
        peak = peaks.get(ours["threads"]) if ours and key[0] == "cpu" else None
        slow = key[1] == "gemm" and torch and "blas" not in torch and peak and torch["gflops"] < 0.05 * peak
        if (torch and torch.get("blas", "").startswith("reference")) or slow:
            print("warning: PyTorch ran on a reference BLAS (install libopenblas0-pthread): not a fair anchor, "
                  "GEMM-bound ratios overstate our speed")
            break
    if any(r.get("impl") == "pytorch" and r.get("device") == "cpu" and r.get("allocator") == "glibc"
           for r in records):
        print("warning: PyTorch ran on glibc's malloc (install libtcmalloc-minimal4): not a fair anchor, "
              "its training steps take about twice as long there")
    for device, rs in ratios.items():
        print(f"{device}: geometric mean of ours/PyTorch speed over {len(rs)} cases: {geomean(rs):.2f}x "
              "(> 1: we are faster)")
    for device, ms in memory.items():
        print(f"{device}: geometric mean of ours/PyTorch peak memory over {len(ms)} training steps: "
              f"{geomean(ms):.2f}x (< 1: we need less)")
    if not have_torch:
        print("\nPyTorch results missing: ours alone")


if __name__ == "__main__":
    main()
