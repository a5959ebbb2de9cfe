#!/usr/bin/python3
"""tools/bench_torch.py: the PyTorch twin of bench/bench_engine.cpp.

Runs the same cases, with the same shapes and the same method, and prints the same JSON lines
with "impl": "pytorch", so tools/bench_compare.py can put the two side by side. Run it with
/usr/bin/python3 (Debian's python3-torch); tools/torch_env.py sets PyTorch's configuration (BLAS
threads and kernels, ATen's AVX-512 kernels, the OpenMP wait policy, tcmalloc) and every line
records it.
Method: one untimed warm-up call, then timed calls until at least 10 calls and 0.3 s, or at
least 3 calls and 1.5 s; the median is reported.
Byte and flop counts are the formulas of bench_engine.cpp (see the comments there).

Usage: bench_torch.py [--threads N] [--quick] [--device cpu|cuda]
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_env  # noqa: E402

torch = F = None  # imported by main(), after torch_env has set the environment


def round4(x):
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, 3 - int(math.floor(math.log10(abs(x)))))


class Bench:
    def __init__(self, args):
        self.quick = args.quick
        self.device = torch.device("cuda:0" if args.device == "cuda" else "cpu")
        self.gen = torch.Generator().manual_seed(1234)

    def randn(self, *shape):
        return torch.randn(*shape, generator=self.gen).to(self.device)

    def randint(self, high, n):
        return torch.randint(0, high, (n,), generator=self.gen).to(self.device)

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def time_median(self, step):
        min_s, slow_s = (0.05, 0.2) if self.quick else (0.3, 1.5)
        min_runs = 3 if self.quick else 10
        step()
        self.sync()
        ms, total = [], 0.0
        while not ((len(ms) >= min_runs and total >= min_s) or (len(ms) >= 3 and total >= slow_s)):
            t0 = time.perf_counter()
            step()
            self.sync()
            s = time.perf_counter() - t0
            ms.append(s * 1e3)
            total += s
        return statistics.median(ms), len(ms)

    def line(self, case, shape, timing, **extra):
        median_ms, runs = timing
        out = {"impl": "pytorch", "version": torch.__version__, "device": str(self.device), "case": case,
               "shape": "x".join(str(d) for d in shape), "threads": torch.get_num_threads(),
               "runs": runs, "median_ms": round4(median_ms)}
        out.update(extra)
        out.update(torch_env.describe(torch))
        print(json.dumps(out), flush=True)

    # C (n, n) = A @ B: 2 n^3 flops. gemm_bf16: A, B and C in bf16 (oneDNN's AMX kernels where the
    # CPU has them), against bench_engine's bf16 matmul.
    def gemm(self, n, dtype=None):
        a, b = self.randn(n, n), self.randn(n, n)
        if dtype is not None:
            a, b = a.to(dtype), b.to(dtype)
        with torch.no_grad():
            t = self.time_median(lambda: a @ b)
        self.line("gemm" if dtype is None else "gemm_bf16", (n, n, n), t, n=n,
                  gflops=round4(2.0 * n ** 3 / (t[0] * 1e-3) / 1e9))

    def bandwidth(self, case, shape, t, nbytes):
        self.line(case, shape, t, bytes=float(nbytes), gbps=round4(nbytes / (t[0] * 1e-3) / 1e9))

    def layer_norm_forward(self, N, C):
        x, w, b = self.randn(N, C), self.randn(C), self.randn(C)
        with torch.no_grad():
            t = self.time_median(lambda: F.layer_norm(x, (C,), w, b, 1e-5))
        self.bandwidth("layer_norm_fwd", (N, C), t, 4 * (2 * N * C + 2 * C))

    def layer_norm_forward_backward(self, N, C):
        x, w, b = (self.randn(N, C).requires_grad_(), self.randn(C).requires_grad_(),
                   self.randn(C).requires_grad_())
        gy = self.randn(N, C)

        def step():
            x.grad = w.grad = b.grad = None
            F.layer_norm(x, (C,), w, b, 1e-5).backward(gy)
        self.bandwidth("layer_norm_fwd_bwd", (N, C), self.time_median(step), 4 * (5 * N * C + 5 * C + 4 * N))

    def softmax_forward(self, N, C):
        x = self.randn(N, C)
        with torch.no_grad():
            t = self.time_median(lambda: torch.softmax(x, -1))
        self.bandwidth("softmax_fwd", (N, C), t, 4 * 2 * N * C)

    def cross_entropy_forward_backward(self, N, C):
        logits = self.randn(N, C).requires_grad_()
        target = self.randint(C, N)

        def step():
            logits.grad = None
            F.cross_entropy(logits, target).backward()
        self.bandwidth("cross_entropy_fwd_bwd", (N, C), self.time_median(step), 4 * (3 * N * C + 2 * N) + 16 * N)

    # torch >= 2.0: its fused F.scaled_dot_product_attention ("variant": "sdpa"). torch 1.13 has
    # none; there it is what its nn.MultiheadAttention runs, two batched GEMMs around a softmax
    # ("variant": "composite").
    def attention_forward_backward(self, B, H, T, D, causal):
        q, k, v = (self.randn(B, H, T, D).requires_grad_() for _ in range(3))
        gout = self.randn(B, H, T, D)
        mask = torch.ones(T, T, dtype=torch.bool, device=self.device).triu(1) if causal else None
        scale = 1.0 / math.sqrt(D)
        fused = hasattr(F, "scaled_dot_product_attention")

        def step():
            q.grad = k.grad = v.grad = None
            if fused:
                out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            else:
                s = (q @ k.transpose(-1, -2)) * scale
                if causal:
                    s = s.masked_fill(mask, float("-inf"))
                out = torch.softmax(s, -1) @ v
            out.backward(gout)
        t = self.time_median(step)
        self.line("attention_causal_fwd_bwd" if causal else "attention_fwd_bwd", (B, H, T, D), t,
                  gflops=round4(12.0 * B * H * T * T * D / (t[0] * 1e-3) / 1e9),
                  variant="sdpa" if fused else "composite")

    # One SGD step of x (B, I) -> Linear(I, W) -> GELU -> Linear(W, W) -> GELU -> Linear(W, K)
    # -> mean cross-entropy; weights stored (in, out) as in bench_engine.cpp.
    def mlp_train_step(self, B, I, W, K):
        x, target = self.randn(B, I), self.randint(K, B)
        params = []
        for fan_in, fan_out in ((I, W), (W, W), (W, K)):
            params.append((self.randn(fan_in, fan_out) / math.sqrt(fan_in)).requires_grad_())
            params.append(torch.zeros(fan_out, device=self.device, requires_grad=True))
        lr = 1e-3

        def step():
            h = F.gelu(x @ params[0] + params[1])
            h = F.gelu(h @ params[2] + params[3])
            F.cross_entropy(h @ params[4] + params[5], target).backward()
            with torch.no_grad():
                for p in params:
                    p.add_(p.grad, alpha=-lr)
                    p.grad = None
        t = self.time_median(step)
        self.line("mlp_train_step", (B, I, W, W, K), t,
                  gflops=round4(6.0 * B * (I * W + W * W + W * K) / (t[0] * 1e-3) / 1e9))


def main():
    global torch, F
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (default: all cores)")
    parser.add_argument("--quick", action="store_true", help="smaller cases, shorter timing (CI smoke)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    torch = torch_env.load_torch(args.threads)  # may re-run this script with PyTorch's environment set
    if torch is None:
        print(json.dumps({"impl": "pytorch", "skip": "torch is not installed"}))
        return
    import torch.nn.functional as functional
    F = functional
    if args.device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"impl": "pytorch", "skip": "no CUDA device"}))
        return
    bench = Bench(args)
    cuda, quick = args.device == "cuda", args.quick

    gemm_sizes = [256, 512] if quick else [256, 512, 1024, 2048]
    if cuda and not quick:
        gemm_sizes.append(4096)
    for n in gemm_sizes:
        bench.gemm(n)
    for n in gemm_sizes[:3]:
        bench.gemm(n, torch.bfloat16)
    rows, ce_rows = (1024, 512) if quick else (8192, 4096)
    bench.layer_norm_forward(rows, 768)
    bench.layer_norm_forward_backward(rows, 768)
    bench.softmax_forward(ce_rows, 1000)
    bench.cross_entropy_forward_backward(ce_rows, 1000)
    bench.attention_forward_backward(16 if quick else 64, 4, 32, 32, causal=False)
    bench.attention_forward_backward(16 if quick else 64, 4, 32, 32, causal=True)
    bench.mlp_train_step(64 if quick else 256, 784, 512, 10)


if __name__ == "__main__":
    main()
