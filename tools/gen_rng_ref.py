#!/usr/bin/python3
# tools/gen_rng_ref.py
# writes: tests/ref/rng_reference.txt, the draws of PyTorch's CPU generator that
# tests/test_random.cpp checks rankclip::Generator against, bit for bit.
#
# Run with Debian's torch:   /usr/bin/python3 tools/gen_rng_ref.py [out_path]
#
# File format (text, one record per line, '#' starts a comment line):
#   seed S
#       torch.manual_seed(S). The C++ test calls manual_seed(S) on ONE generator object it
#       keeps for the whole file, so the following op lines are a sequence of draws from it.
#   op KIND DTYPE N A B HASH COUNT V1 ... VCOUNT
#       one draw of N elements into one contiguous tensor:
#         KIND normal   : torch.empty(N, dtype).normal_(A, B)      (A = mean, B = std)
#                         (A, B = 0, 1 is exactly torch.randn(N, dtype=...))
#         KIND uniform  : torch.empty(N, dtype).uniform_(A, B)     (A = from, B = to)
#                         (A, B = 0, 1 is exactly torch.rand(N, dtype=...))
#         KIND normal_strided : torch.empty(2 * N, dtype)[::2].normal_(A, B): not contiguous, so
#                         torch takes its scalar path for every element, as fill_normal does
#                         for n < 16; the C++ side draws the N elements one at a time.
#         KIND randint  : torch.randint(A, B, (N,))                 (int64)
#         KIND randperm : torch.randperm(N)                         (int64; A, B are 0)
#       DTYPE is f32, f64 or i64. A and B are Python repr()s (exact decimal round trips).
#       HASH: 64-bit FNV-1a (16 hex digits) over the little-endian bytes of all N elements.
#       V: when COUNT == N, all elements; otherwise COUNT/2 first elements then COUNT/2 last.
#       f32 values are 8 hex digits of the IEEE bit pattern, f64 16 hex digits, i64 decimal.
import os
import sys

import torch

HEAD_TAIL = 16          # for long draws, keep this many first and last values (plus the hash)
FULL_UP_TO = 128        # draws of at most this many elements are stored whole

SEEDS = [0, 1, 42, 1234567]
SIZES = [1, 2, 3, 7, 15, 16, 17, 31, 100, 1000, 4099]
PERM_SIZES = [1, 2, 3, 7, 15, 16, 17, 31, 100, 1000, 4099, 100000]


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def fmt_values(t: torch.Tensor, dtype: str):
    if dtype == "f32":
        bits = t.view(torch.int32).tolist()
        return ["%08x" % (b & 0xFFFFFFFF) for b in bits]
    if dtype == "f64":
        bits = t.view(torch.int64).tolist()
        return ["%016x" % (b & 0xFFFFFFFFFFFFFFFF) for b in bits]
    return [str(v) for v in t.tolist()]


TORCH_DTYPE = {"f32": torch.float32, "f64": torch.float64, "i64": torch.int64}


def draw(kind, dtype, n, a, b):
    if kind == "normal":
        return torch.empty(n, dtype=TORCH_DTYPE[dtype]).normal_(a, b)
    if kind == "normal_strided":
        return torch.empty(2 * n, dtype=TORCH_DTYPE[dtype])[::2].normal_(a, b).contiguous()
    if kind == "uniform":
        return torch.empty(n, dtype=TORCH_DTYPE[dtype]).uniform_(a, b)
    if kind == "randint":
        return torch.randint(a, b, (n,))
    if kind == "randperm":
        return torch.randperm(n)
    raise ValueError(kind)


class Writer:
    def __init__(self):
        self.lines = []
        self.ops = 0

    def seed(self, s):
        torch.manual_seed(s)
        self.lines.append("seed %d" % s)

    def op(self, kind, dtype, n, a=0, b=0):
        t = draw(kind, dtype, n, a, b)
        assert t.dtype == TORCH_DTYPE[dtype] and t.is_contiguous() and t.numel() == n
        h = fnv1a64(t.numpy().tobytes())
        vals = fmt_values(t, dtype)
        if n > FULL_UP_TO:
            vals = vals[:HEAD_TAIL] + vals[-HEAD_TAIL:]
        self.lines.append("op %s %s %d %r %r %016x %d %s" % (kind, dtype, n, a, b, h, len(vals), " ".join(vals)))
        self.ops += 1


def cpu_capability():
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "ref", "rng_reference.txt")
    w = Writer()

    # 1. Each kind on its own, fresh seed per draw, for every seed and size.
    for s in SEEDS:
        for n in SIZES:
            for kind, dtype, a, b in [("normal", "f32", 0.0, 1.0), ("normal", "f64", 0.0, 1.0),
                                      ("uniform", "f32", 0.0, 1.0), ("uniform", "f64", 0.0, 1.0),
                                      ("randint", "i64", 0, 10), ("randint", "i64", -5, 1000000)]:
                w.seed(s)
                w.op(kind, dtype, n, a, b)
        for n in PERM_SIZES:
            w.seed(s)
            w.op("randperm", "i64", n)

    # 2. Non-default parameters: mean/std and from/to enter through a multiply-add.
    for s in [0, 42]:
        for n in [3, 15, 16, 17, 100, 1000]:
            for dtype in ["f32", "f64"]:
                w.seed(s)
                w.op("normal", dtype, n, 0.3, 2.5)
                w.seed(s)
                w.op("normal", dtype, n, -1.0, 0.02)
                w.seed(s)
                w.op("uniform", dtype, n, -2.0, 3.0)
                w.seed(s)
                w.op("uniform", dtype, n, -0.1, 0.1)
        # ranges of 2^32 and more draw 64 bits per element
        for lo, hi in [(0, 2**32), (0, 2**40), (-2**62, 2**62), (0, 2**32 - 1)]:
            w.seed(s)
            w.op("randint", "i64", 17, lo, hi)

    # 3. Long draws (stored as head, tail and hash), so the Box-Muller arithmetic meets
    #    many inputs: the vectorised path, the scalar path, and the uniform multiply-add.
    for s in [0, 7]:
        w.seed(s)
        w.op("normal", "f32", 1000000, 0.0, 1.0)
        w.op("normal", "f32", 300001, 0.3, 2.5)
        w.op("normal", "f64", 300001, -1.0, 0.5)
        w.op("normal_strided", "f64", 200000, 0.0, 1.0)
        w.op("normal_strided", "f32", 100001, 0.25, 3.0)
        w.op("uniform", "f32", 300000, -2.0, 3.0)
        w.op("uniform", "f64", 300000, -0.1, 0.7)
        w.op("randint", "i64", 100000, -(2**40), 2**41)
        w.op("randperm", "i64", 300000)

    # 4. Sequences on one generator: the order of draws and the cached Box-Muller sample matter.
    for s in SEEDS:
        w.seed(s)
        w.op("normal", "f32", 5, 0.0, 1.0)
        w.op("uniform", "f32", 20, 0.0, 1.0)
        w.op("normal", "f32", 17, 0.0, 1.0)
        w.op("normal", "f32", 3, 0.0, 1.0)
    for s in [0, 42]:
        w.seed(s)
        w.op("normal", "f64", 1, 0.0, 1.0)      # leaves a cached sample
        w.op("normal", "f32", 16, 0.0, 1.0)     # vector path: does not touch the cache
        w.op("uniform", "f64", 3, 0.0, 1.0)
        w.op("normal", "f32", 1, 0.5, 2.0)      # uses the cached sample (f32 scalar path goes through double)
        w.op("normal", "f64", 2, 0.0, 1.0)
        w.op("randint", "i64", 4, 0, 2**33)
        w.op("randperm", "i64", 9)
        w.op("normal", "f64", 7, 1.0, 3.0)
        w.op("normal", "f64", 33, 0.0, 1.0)
        w.op("uniform", "f32", 5, 0.0, 1.0)
        w.op("normal", "f32", 2, 0.0, 1.0)
        w.seed(s)                                  # manual_seed drops the cached sample
        w.op("normal", "f64", 1, 0.0, 1.0)
        w.seed(s)
        w.op("normal", "f64", 1, 0.0, 1.0)
        w.op("normal", "f64", 1, 0.0, 1.0)

    header = [
        "# rankclip.cpp RNG reference: PyTorch %s CPU generator (CPU capability: %s)." % (torch.__version__, cpu_capability()),
        "# Generated by tools/gen_rng_ref.py (see it for the format); do not edit. %d op lines." % w.ops,
        "# seed S                                  -> manual_seed(S) on the one generator",
        "# op KIND DTYPE N A B HASH COUNT V...     -> one draw; HASH = FNV-1a 64 of all N elements' LE bytes;",
        "#    V = all N values, or COUNT/2 first + COUNT/2 last; f32/f64 as hex bits, i64 decimal",
        "#    KIND normal (A=mean B=std) | normal_strided (same, torch's scalar path) | uniform (A=from B=to)",
        "#         | randint (A=low B=high) | randperm",
    ]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write("\n".join(header + w.lines) + "\n")
    print("wrote %s: %d op lines, %d bytes" % (out, w.ops, os.path.getsize(out)))


if __name__ == "__main__":
    main()
