#!/usr/bin/python3
"""tools/bench_models_torch.py: the PyTorch twin of bench/bench_models.cpp.

Times the same cases on the PyTorch mirror of the model (tools/clip_mirror.py, OpenAI CLIP's
layout, same config) with the same batch shapes and method, and prints the same JSON lines with
"impl": "pytorch", for tools/bench_compare.py:
  clip_<name>_fwd      forward under torch.no_grad(): features, normalisation, logits
  clip_<name>_fwd_bwd  forward, CLIP loss (clip_mirror.clip_loss), backward; gradients set to
                       None before each step
Method: one untimed warm-up step, then timed steps until at least 10 steps and 0.3 s, or at
least 3 steps and 1.5 s; the median is reported. Run it with /usr/bin/python3 (Debian's
python3-torch).

Usage: bench_models_torch.py [--threads N] [--quick] [--device cpu|cuda] [--configs tiny,small]
                             [--batch N]
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

try:
    import torch
except ImportError:
    print(json.dumps({"impl": "pytorch", "skip": "torch is not installed"}))
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_mirror  # noqa: E402

DEFAULT_BATCH = {"tiny": 64, "small": 32, "b32": 32, "b16": 32}


def round4(x):
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, 3 - int(math.floor(math.log10(abs(x)))))


def time_median(step, sync, quick):
    min_s, slow_s = (0.05, 0.2) if quick else (0.3, 1.5)
    min_runs = 3 if quick else 10
    step()
    sync()
    ms, total = [], 0.0
    while not ((len(ms) >= min_runs and total >= min_s) or (len(ms) >= 3 and total >= slow_s)):
        t0 = time.perf_counter()
        step()
        sync()
        s = time.perf_counter() - t0
        ms.append(s * 1e3)
        total += s
    return statistics.median(ms), len(ms)


def bench_config(name, args, device):
    cfg = clip_mirror.config(name)
    B = args.batch or (8 if args.quick else DEFAULT_BATCH[name])
    S, L, V = cfg["image_size"], cfg["context_length"], cfg["vocab_size"]
    torch.manual_seed(1234)
    model = clip_mirror.CLIP(cfg).to(device)
    images = torch.randn(B, 3, S, S).to(device)
    ids = torch.randint(1, V - 1, (B, L))
    for b in range(B):
        eot = L // 2 + b % (L // 2)
        ids[b, eot] = V - 1
        ids[b, eot + 1:] = 0
    ids = ids.to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def report(kind, timing):
        median_ms, runs = timing
        print(json.dumps({"impl": "pytorch", "version": torch.__version__, "device": str(device),
                          "case": f"clip_{name}_{kind}", "shape": f"{B}x3x{S}x{S}", "batch": B,
                          "threads": torch.get_num_threads(), "runs": runs, "median_ms": round4(median_ms),
                          "images_per_s": round4(B / (median_ms * 1e-3))}), flush=True)

    def forward():
        with torch.no_grad():
            model(images, ids)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        _, _, logits_per_image, _ = model(images, ids)
        clip_mirror.clip_loss(logits_per_image).backward()

    report("fwd", time_median(forward, sync, args.quick))
    report("fwd_bwd", time_median(forward_backward, sync, args.quick))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (default: all cores)")
    parser.add_argument("--quick", action="store_true", help="batch 8, shorter timing (CI smoke)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--configs", default="tiny,small", help="comma-separated preset names")
    parser.add_argument("--batch", type=int, default=0, help="batch size for every config")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"impl": "pytorch", "skip": "no CUDA device"}))
        return
    torch.set_num_threads(args.threads if args.threads > 0 else len(os.sched_getaffinity(0)))
    device = torch.device("cuda:0" if args.device == "cuda" else "cpu")
    for name in [c for c in args.configs.split(",") if c]:
        bench_config(name, args, device)


if __name__ == "__main__":
    main()
