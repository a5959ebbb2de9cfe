"""tools/gen_op_refs.py
Writes tests/ref/ops_reference.safetensors: for every op of engine/ops.h, PyTorch's forward output
and the gradients of every floating input, which tests/test_torch_ops.cpp compares the engine
against. Not here: dropout and the random creators (their parity is tested elsewhere), and of the
plain creators only arange (zeros/ones/full/from_vector have no arithmetic to get wrong).

Run: /usr/bin/python3 tools/gen_op_refs.py        (PyTorch 1.13, CPU)

File layout (one safetensors file, tools/safetensors_io.py):
  <case>.in0, <case>.in1, ...     the op's inputs, in the engine function's argument order
  <case>.out0, <case>.out1, ...   its outputs (sort/max: values then indices)
  <case>.go0, ...                 the upstream gradient of each floating output
  <case>.grad0, ...               d(sum_k out_k * go_k) / d in_i for each floating input i (absent
                                  when no output is differentiable: comparisons, argmax, arange)
  __metadata__["cases"]           JSON list, one object per case, in file order:
      {"name", "family", "op", "dtype", "inputs": n, "outputs": m, "params": {...}}
  "family" groups the cases into one C++ TEST each; "op" selects the engine call; "params" holds
  the op's arguments (dims, keepdim, dim, eps, causal, scale, exponent, lo, hi, reduction, ...)
  plus "noncontig": [input indices] that the C++ test passes as non-contiguous (transposed-layout)
  views, which must not change the result.
Case names are <op>_<variant>_<f64|f32>. Every case exists in F64 and, for most, in F32 too (the
same values rounded). Inputs come from torch.manual_seed(crc32(case name without dtype)), each go
from torch.manual_seed(crc32(case name) ^ 0x5EED), so adding a case does not change the others.
Integer inputs (indices, targets, where's condition) are I64 unless the case says I32; they are
never differentiated. Inputs are picked to hit the interesting spots: exact ties (maximum, amax,
max, sort), zeros (relu, abs), clamp bounds, size-1 dims, empty tensors, large offsets
(logsumexp, softmax), a cross_entropy whose rows are all ignored (NaN loss, zero gradient).
Left out as ill-conditioned (torch's own rounding, amplified, is the whole answer): layer_norm
with C = 1, and with C = 2 in F32.
"""
import json
import math
import os
import sys
import zlib

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref", "ops_reference.safetensors")

tensors = {}
cases = []


def seed_for(name):
    torch.manual_seed(zlib.crc32(name.encode()))


def randn(*shape):
    return torch.randn(tuple(shape), dtype=torch.float64)


def rand(*shape):
    return torch.rand(tuple(shape), dtype=torch.float64)


def ties(*shape, lo=-2, hi=3):
    """Values on a coarse grid (multiples of 0.5), so equal elements are common."""
    return torch.randint(lo, hi, shape).double() / 2


def add_case(family, op, variant, make_inputs, fn, params=None, f32=True, noncontig=()):
    """make_inputs() -> list of F64 / integer tensors; fn(inputs) -> tuple of outputs."""
    base = f"{op}_{variant}"
    seed_for(base)
    inputs64 = make_inputs()
    dtypes = [torch.float64] + ([torch.float32] if f32 else [])
    for dtype in dtypes:
        name = f"{base}_{'f64' if dtype == torch.float64 else 'f32'}"
        assert not any(c["name"] == name for c in cases), name
        inputs = []
        for t in inputs64:
            t = t.clone()
            if t.is_floating_point():
                t = t.to(dtype).requires_grad_(True)
            inputs.append(t)
        outs = fn(inputs)
        if not isinstance(outs, tuple):
            outs = (outs,)
        torch.manual_seed(zlib.crc32(name.encode()) ^ 0x5EED)
        float_outs, gos = [], []
        for o in outs:
            if o.is_floating_point():
                go = torch.randn(o.shape, dtype=torch.float64).to(o.dtype)
                gos.append(go)
                if o.requires_grad:
                    float_outs.append((o, go))
        if float_outs:
            torch.autograd.backward([o for o, _ in float_outs], [g for _, g in float_outs])
        for i, t in enumerate(inputs):
            tensors[f"{name}.in{i}"] = t.detach()
        for i, o in enumerate(outs):
            tensors[f"{name}.out{i}"] = o.detach().contiguous()
        for i, g in enumerate(gos):
            tensors[f"{name}.go{i}"] = g
        for i, t in enumerate(inputs):
            if t.is_floating_point() and float_outs:  # no grads when nothing was differentiable
                g = t.grad if t.grad is not None else torch.zeros_like(t)
                tensors[f"{name}.grad{i}"] = g.detach()
        p = dict(params or {})
        if noncontig:
            p["noncontig"] = list(noncontig)
        cases.append({"name": name, "family": family, "op": op,
                      "dtype": "F64" if dtype == torch.float64 else "F32",
                      "inputs": len(inputs), "outputs": len(outs), "params": p})


# ---------------------------------------------------------------- binary elementwise
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
}
for op, f in BINARY.items():
    for variant, sa, sb in [("same", (3, 5), (3, 5)), ("bcast", (4, 1, 3), (2, 1)),
                            ("bcastrank", (2, 3, 1, 5), (5,)), ("scalar", (3, 4), ()),
                            ("size1", (1, 1), (1, 7))]:
        if op == "div":
            mk = lambda sa=sa, sb=sb: [randn(*sa), (rand(*sb) + 0.5) * (torch.randint(0, 2, sb) * 2 - 1)]
        elif op in ("maximum", "minimum"):
            mk = lambda sa=sa, sb=sb: [ties(*sa), ties(*sb)]  # ties split the gradient 0.5 / 0.5
        else:
            mk = lambda sa=sa, sb=sb: [randn(*sa), randn(*sb)]
        add_case("Binary", op, variant, mk, lambda x, f=f: f(x[0], x[1]),
                 noncontig=(0,) if variant == "same" else ())

for op, f in [("eq", torch.eq), ("gt", torch.gt), ("lt", torch.lt)]:
    add_case("Comparison", op, "bcast", lambda: [ties(3, 4), ties(4)],
             lambda x, f=f: f(x[0], x[1]).to(x[0].dtype).detach())

# ---------------------------------------------------------------- unary elementwise
def positive(*shape):
    return rand(*shape) * 3 + 0.1


def with_zeros(*shape):
    x = randn(*shape)
    x.view(-1)[::4] = 0.0
    return x


UNARY = [
    ("neg", {}, randn, lambda x, p: -x),
    ("exp", {}, randn, lambda x, p: torch.exp(x)),
    ("log", {}, positive, lambda x, p: torch.log(x)),
    ("sqrt", {}, positive, lambda x, p: torch.sqrt(x)),
    ("rsqrt", {}, positive, lambda x, p: torch.rsqrt(x)),
    ("reciprocal", {}, positive, lambda x, p: torch.reciprocal(x)),
    ("abs", {}, with_zeros, lambda x, p: torch.abs(x)),
    ("tanh", {}, randn, lambda x, p: torch.tanh(x)),
    ("sigmoid", {}, lambda *s: randn(*s) * 4, lambda x, p: torch.sigmoid(x)),
    ("relu", {}, with_zeros, lambda x, p: torch.relu(x)),
    ("gelu", {"tanh": False}, lambda *s: randn(*s) * 3, lambda x, p: F.gelu(x)),
    ("gelu", {"tanh": True}, lambda *s: randn(*s) * 3, lambda x, p: F.gelu(x, approximate="tanh")),
    ("quick_gelu", {}, lambda *s: randn(*s) * 3, lambda x, p: x * torch.sigmoid(1.702 * x)),
    ("affine", {"scale": -1.75, "shift": 0.3}, randn, lambda x, p: x * p["scale"] + p["shift"]),
    ("affine", {"scale": 0.0, "shift": 2.0}, randn, lambda x, p: x * p["scale"] + p["shift"]),
    ("pow", {"exponent": 2.0}, randn, lambda x, p: torch.pow(x, p["exponent"])),
    ("pow", {"exponent": 3.0}, randn, lambda x, p: torch.pow(x, p["exponent"])),
    ("pow", {"exponent": 0.5}, positive, lambda x, p: torch.pow(x, p["exponent"])),
    ("pow", {"exponent": -1.5}, positive, lambda x, p: torch.pow(x, p["exponent"])),
    ("pow", {"exponent": 1.0}, randn, lambda x, p: torch.pow(x, p["exponent"])),
    ("pow", {"exponent": 0.0}, randn, lambda x, p: torch.pow(x, p["exponent"])),
]
for i, (op, params, make, f) in enumerate(UNARY):
    variant = "_".join(f"{k}{v}" for k, v in params.items()).replace(".", "p").replace("-", "m").lower() or "x"
    for shape_name, shape in [("odd", (3, 7)), ("3d", (2, 1, 5)), ("0d", ())]:
        add_case("Unary", op, f"{variant}_{shape_name}", lambda make=make, shape=shape: [make(*shape)],
                 lambda x, f=f, params=params: f(x[0], params), params,
                 noncontig=(0,) if shape_name == "odd" else ())

# clamp: the bounds themselves appear in the input (gradient passes at x == lo and x == hi)
def clamp_input():
    x = ties(4, 5, lo=-4, hi=5)
    return [x + 0.125 * randn(4, 5) * (torch.rand(4, 5) < 0.5)]


add_case("Clamp", "clamp", "both", clamp_input, lambda x: torch.clamp(x[0], -0.5, 1.0), {"lo": -0.5, "hi": 1.0},
         noncontig=(0,))
add_case("Clamp", "clamp", "point", clamp_input, lambda x: torch.clamp(x[0], 0.5, 0.5), {"lo": 0.5, "hi": 0.5})
add_case("Clamp", "clamp_min", "x", clamp_input, lambda x: torch.clamp_min(x[0], 0.0), {"lo": 0.0})
add_case("Clamp", "where", "bcast",
         lambda: [torch.randint(0, 2, (3, 1, 5)), randn(4, 1), randn(3, 4, 5)],
         lambda x: torch.where(x[0].bool(), x[1], x[2]))
add_case("Clamp", "where", "same", lambda: [torch.randint(0, 2, (2, 6)), randn(2, 6), randn(2, 6)],
         lambda x: torch.where(x[0].bool(), x[1], x[2]))
add_case("Clamp", "cast", "to_f32", lambda: [randn(3, 4)], lambda x: x[0].to(torch.float32), {"to": "F32"})
add_case("Clamp", "cast", "to_f64", lambda: [randn(3, 4)], lambda x: x[0].to(torch.float64), {"to": "F64"})

# ---------------------------------------------------------------- reductions
for op, f in [("sum", torch.sum), ("mean", torch.mean), ("amax", torch.amax), ("amin", torch.amin)]:
    make = (lambda: [ties(3, 4, 5)]) if op in ("amax", "amin") else (lambda: [randn(3, 4, 5)])
    for dims, keepdim in [([], False), ([0], False), ([-1], True), ([0, 2], False), ([2, 0], True), ([1], False)]:
        variant = ("all" if not dims else "d" + "".join(str(d).replace("-", "m") for d in dims)) + ("_keep" if keepdim else "")
        if dims:
            fn = lambda x, f=f, dims=dims, keepdim=keepdim: f(x[0], dim=dims, keepdim=keepdim)
        elif op in ("amax", "amin"):
            fn = lambda x, f=f: f(x[0], dim=(0, 1, 2))
        else:
            fn = lambda x, f=f: f(x[0])
        add_case("Reduce", op, variant, make, fn, {"dims": dims, "keepdim": keepdim},
                 noncontig=(0,) if dims == [1] else ())
    if op in ("sum", "mean"):  # mean over nothing is NaN, as in torch
        add_case("Reduce", op, "empty_dim", lambda: [randn(2, 0)],
                 lambda x, f=f: f(x[0], dim=[1], keepdim=True), {"dims": [1], "keepdim": True})
    add_case("Reduce", op, "size1", lambda: [randn(1, 3, 1)],
             lambda x, f=f: f(x[0], dim=[2], keepdim=False), {"dims": [2], "keepdim": False})

for dims, keepdim in [([-1], False), ([0], True), ([0, 2], False), ([], False)]:
    variant = ("all" if not dims else "d" + "".join(str(d).replace("-", "m") for d in dims)) + ("_keep" if keepdim else "")
    add_case("Reduce", "logsumexp", variant, lambda: [randn(3, 4, 5) * 3],
             lambda x, dims=dims, keepdim=keepdim: torch.logsumexp(x[0], dim=dims or [0, 1, 2], keepdim=keepdim),
             {"dims": dims, "keepdim": keepdim})
add_case("Reduce", "logsumexp", "large", lambda: [randn(2, 7) * 3 + 800.0],
         lambda x: torch.logsumexp(x[0], dim=[1]), {"dims": [1], "keepdim": False})
add_case("Reduce", "sum_to", "rows", lambda: [randn(2, 3, 4)], lambda x: x[0].sum_to_size(3, 1), {"shape": [3, 1]})
add_case("Reduce", "sum_to", "lead", lambda: [randn(2, 3, 4)], lambda x: x[0].sum_to_size(1, 4), {"shape": [1, 4]})
add_case("Reduce", "sum_to", "scalar", lambda: [randn(2, 3)], lambda x: x[0].sum_to_size(()), {"shape": []})

# max over one dim (values + first maximal index) and argmax, with ties
for dim, keepdim in [(1, False), (0, True), (-1, False), (2, True)]:
    variant = f"d{dim}".replace("-", "m") + ("_keep" if keepdim else "")
    add_case("MaxArgmax", "max", variant, lambda: [ties(3, 4, 5)],
             lambda x, dim=dim, keepdim=keepdim: tuple(torch.max(x[0], dim=dim, keepdim=keepdim)),
             {"dim": dim, "keepdim": keepdim}, noncontig=(0,) if dim == 1 else ())
    add_case("MaxArgmax", "argmax", variant, lambda: [ties(3, 4, 5)],
             lambda x, dim=dim, keepdim=keepdim: torch.argmax(x[0], dim=dim, keepdim=keepdim),
             {"dim": dim, "keepdim": keepdim})

# ---------------------------------------------------------------- matmul
for variant, sa, sb in [("dot", (5,), (5,)), ("vec_mat", (3,), (3, 4)), ("mat_vec", (4, 3), (3,)),
                        ("mat_mat", (3, 5), (5, 2)), ("one", (1, 1), (1, 1)), ("batched", (2, 3, 4), (2, 4, 5)),
                        ("bcast", (2, 1, 3, 4), (5, 4, 6)), ("bcast_one", (3, 2, 4), (1, 4, 3)),
                        ("b3_w2", (2, 3, 4), (4, 5)), ("w2_b3", (3, 4), (2, 4, 5)),
                        ("b3_vec", (2, 3, 4), (4,)), ("vec_b3", (3,), (2, 3, 4))]:
    add_case("Matmul", "matmul", variant, lambda sa=sa, sb=sb: [randn(*sa), randn(*sb)],
             lambda x: torch.matmul(x[0], x[1]))
add_case("Matmul", "matmul", "transposed_a", lambda: [randn(3, 4), randn(4, 5)],
         lambda x: torch.matmul(x[0], x[1]), noncontig=(0,))
add_case("Matmul", "matmul", "transposed_both", lambda: [randn(2, 3, 4), randn(2, 4, 3)],
         lambda x: torch.matmul(x[0], x[1]), noncontig=(0, 1))
add_case("Matmul", "matmul", "k0", lambda: [randn(2, 0), randn(0, 3)], lambda x: torch.matmul(x[0], x[1]))
add_case("Matmul", "matmul", "b3_w2_transposed", lambda: [randn(2, 3, 4), randn(4, 5)],
         lambda x: torch.matmul(x[0], x[1]), noncontig=(0, 1))

# ---------------------------------------------------------------- shape ops
for variant, shapes, dim in [("d0", [(2, 3), (1, 3), (4, 3)], 0), ("dm1", [(2, 1), (2, 4), (2, 2)], -1),
                             ("mid", [(2, 1, 3), (2, 5, 3)], 1), ("single", [(3, 2)], 0),
                             ("empty_piece", [(2, 3), (0, 3), (1, 3)], 0)]:
    add_case("Shape", "cat", variant, lambda shapes=shapes: [randn(*s) for s in shapes],
             lambda x, dim=dim: torch.cat(x, dim), {"dim": dim})
for variant, shape, dim in [("d0", (2, 3), 0), ("dm1", (2, 3), -1), ("mid", (3, 1, 2), 1)]:
    add_case("Shape", "stack", variant, lambda shape=shape: [randn(*shape) for _ in range(3)],
             lambda x, dim=dim: torch.stack(x, dim), {"dim": dim})
for variant, dims in [("d0", [0]), ("d02", [0, 2]), ("dm1", [-1]), ("size1", [1])]:
    add_case("Shape", "flip", variant, lambda: [randn(3, 1, 5)], lambda x, dims=dims: torch.flip(x[0], dims),
             {"dims": dims}, noncontig=(0,) if variant == "dm1" else ())
for dim, reverse in [(0, False), (1, False), (-1, False), (0, True), (2, True), (1, True)]:
    variant = f"d{dim}".replace("-", "m") + ("_rev" if reverse else "")

    def cumsum_ref(x, dim=dim, reverse=reverse):
        if reverse:
            return torch.flip(torch.cumsum(torch.flip(x[0], [dim]), dim), [dim])
        return torch.cumsum(x[0], dim)

    add_case("Shape", "cumsum", variant, lambda: [randn(3, 4, 5)], cumsum_ref, {"dim": dim, "reverse": reverse},
             noncontig=(0,) if dim == 1 else ())

# ---------------------------------------------------------------- indexing
for variant, shape, dim, index, itype in [("d0", (5, 3), 0, [4, 0, 0, 2, 4, 4], torch.int64),
                                          ("d1", (2, 7, 3), 1, [6, 1, 1], torch.int64),
                                          ("dm1_i32", (3, 4), -1, [3, 3, 0], torch.int32),
                                          ("empty", (3, 4), 0, [], torch.int64),
                                          ("scalar_index", (4, 3), 0, 2, torch.int64)]:
    add_case("Indexing", "index_select", variant,
             lambda shape=shape, index=index, itype=itype: [randn(*shape), torch.tensor(index, dtype=itype)],
             lambda x, dim=dim: torch.index_select(x[0], dim, x[1].long()), {"dim": dim},
             noncontig=(0,) if variant == "d0" else ())
for variant, ids, itype in [("2d", [[1, 6, 1, 0], [3, 3, 6, 2]], torch.int64), ("1d_i32", [4, 0, 4], torch.int32),
                            ("0d", 5, torch.int64)]:
    add_case("Indexing", "embedding", variant,
             lambda ids=ids, itype=itype: [randn(7, 3), torch.tensor(ids, dtype=itype)],
             lambda x: F.embedding(x[1].long(), x[0]))


def gather_inputs(shape, dim, index_shape, itype=torch.int64):
    return [randn(*shape), torch.randint(0, shape[dim], index_shape).to(itype)]


for variant, shape, dim, index_shape, itype in [("d1", (3, 5, 4), 1, (2, 6, 3), torch.int64),
                                                ("d0", (4, 3), 0, (5, 3), torch.int64),
                                                ("dm1_i32", (2, 6), -1, (2, 1), torch.int32),
                                                ("same", (3, 4), 1, (3, 4), torch.int64)]:
    add_case("Indexing", "gather", variant,
             lambda shape=shape, dim=dim, index_shape=index_shape, itype=itype: gather_inputs(shape, dim, index_shape, itype),
             lambda x, dim=dim: torch.gather(x[0], dim, x[1].long()), {"dim": dim})

# ---------------------------------------------------------------- sort / argsort (stable, with ties)
for dim, descending in [(-1, False), (-1, True), (0, False), (1, True)]:
    variant = f"d{dim}".replace("-", "m") + ("_desc" if descending else "")
    add_case("Sort", "sort", variant, lambda: [ties(3, 4, 6)],
             lambda x, dim=dim, descending=descending: tuple(torch.sort(x[0], dim=dim, descending=descending, stable=True)),
             {"dim": dim, "descending": descending}, noncontig=(0,) if dim == -1 and not descending else ())
    add_case("Sort", "argsort", variant, lambda: [ties(3, 4, 6)],
             lambda x, dim=dim, descending=descending: torch.sort(x[0], dim=dim, descending=descending, stable=True)[1],
             {"dim": dim, "descending": descending})
add_case("Sort", "sort", "distinct", lambda: [randn(2, 9)],
         lambda x: tuple(torch.sort(x[0], dim=-1, stable=True)), {"dim": -1, "descending": False})

# ---------------------------------------------------------------- softmax family
for op, f in [("softmax", F.softmax), ("log_softmax", F.log_softmax)]:
    for variant, shape, dim, scale in [("dm1", (3, 7), -1, 2.0), ("d0", (4, 1, 5), 0, 2.0), ("d1", (2, 5, 3), 1, 2.0),
                                       ("size1", (3, 1), -1, 1.0), ("large", (2, 6), -1, 30.0),
                                       ("1d", (5,), 0, 2.0), ("no_rows", (0, 5), -1, 1.0)]:
        add_case("Softmax", op, variant, lambda shape=shape, scale=scale: [randn(*shape) * scale],
                 lambda x, f=f, dim=dim: f(x[0], dim=dim), {"dim": dim},
                 noncontig=(0,) if variant == "dm1" else ())

# ---------------------------------------------------------------- layer_norm
for variant, shape, eps, affine in [("affine", (4, 9), 1e-5, True), ("3d", (2, 3, 33), 1e-5, True),
                                    ("noaffine", (3, 8), 1e-5, False), ("eps", (5, 6), 1e-2, True),
                                    ("c3", (4, 3), 1e-5, True), ("c2", (3, 2), 1e-5, True),
                                    ("row", (17,), 1e-5, True)]:
    def ln_inputs(shape=shape, affine=affine):
        x = randn(*shape) * 2 + 0.5
        return [x, randn(shape[-1]), randn(shape[-1])] if affine else [x]

    add_case("LayerNorm", "layer_norm", variant, ln_inputs,
             lambda x, shape=shape, eps=eps: F.layer_norm(x[0], (shape[-1],), x[1] if len(x) > 1 else None,
                                                          x[2] if len(x) > 1 else None, eps),
             {"eps": eps}, noncontig=(0,) if variant == "affine" else (),
             # C = 2: xhat is +-1 whatever x is, so dx is pure cancellation, below F32 resolution
             f32=variant != "c2")

# ---------------------------------------------------------------- cross_entropy
def ce_inputs(n, c, ignored=(), itype=torch.int64, ignore_index=-100):
    target = torch.randint(0, c, (n,))
    for i in ignored:
        target[i] = ignore_index
    return [randn(n, c) * 2, target.to(itype)]


for variant, n, c, reduction, ignore_index, ignored, itype in [
        ("mean", 6, 5, "mean", -100, (), torch.int64),
        ("mean_ignore", 6, 5, "mean", -100, (1, 4), torch.int64),
        ("sum_ignore", 6, 5, "sum", -100, (0,), torch.int64),
        ("none_ignore", 6, 5, "none", -100, (2, 3), torch.int64),
        ("mean_ii2_i32", 7, 4, "mean", 2, (), torch.int32),
        ("one_class", 3, 1, "mean", -100, (), torch.int64),
        ("one_row", 1, 9, "sum", -100, (), torch.int64),
        ("mean_all_ignored", 3, 4, "mean", -100, (0, 1, 2), torch.int64),  # NaN loss, zero gradient
        ("empty_sum", 0, 4, "sum", -100, (), torch.int64)]:
    add_case("CrossEntropy", "cross_entropy", variant,
             lambda n=n, c=c, ignored=ignored, itype=itype, ii=ignore_index: ce_inputs(n, c, ignored, itype, ii),
             lambda x, reduction=reduction, ii=ignore_index: F.cross_entropy(x[0], x[1].long(), reduction=reduction,
                                                                             ignore_index=ii),
             {"reduction": reduction, "ignore_index": ignore_index})

# ---------------------------------------------------------------- l2 normalize
def normalize_inputs():
    x = randn(4, 5)  # rows on one scale, so the tolerance's scale term stays small
    x *= torch.tensor([1e-14, 3e-13, 2e-12, 1e-11], dtype=torch.float64)[:, None]
    return [x]  # rows 0, 1: norm below eps, divided by eps instead; rows 2, 3: by the norm


for variant, make, dim, eps in [("dm1", lambda: [randn(3, 7)], -1, 1e-12), ("d0", lambda: [randn(4, 1, 3)], 0, 1e-12),
                                ("tiny_row", normalize_inputs, -1, 1e-12), ("big_eps", lambda: [randn(3, 4) * 0.1], 1, 0.5)]:
    add_case("Normalize", "l2_normalize", variant, make, lambda x, dim=dim, eps=eps: F.normalize(x[0], 2.0, dim, eps),
             {"dim": dim, "eps": eps}, f32=variant != "tiny_row")


# ---------------------------------------------------------------- attention (torch 1.13 has no SDPA: the math)
def attention_ref(q, k, v, causal, scale):
    if scale <= 0:
        scale = 1.0 / math.sqrt(q.shape[-1])
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # (B, H, Tq, Tk)
    if causal:  # top-left aligned: query i sees keys j <= i
        tq, tk = q.shape[-2], k.shape[-2]
        visible = torch.arange(tk)[None, :] <= torch.arange(tq)[:, None]
        scores = scores.masked_fill(~visible, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


for variant, b, h, tq, tk, d, causal, scale in [("plain", 2, 3, 5, 7, 4, False, -1.0),
                                                ("causal", 2, 2, 6, 6, 8, True, -1.0),
                                                ("causal_tq_gt_tk", 1, 2, 7, 4, 3, True, -1.0),
                                                ("causal_tq_lt_tk", 1, 2, 3, 5, 4, True, -1.0),
                                                ("scale", 1, 3, 4, 4, 5, False, 0.7),
                                                ("tiny", 1, 1, 1, 1, 1, True, -1.0)]:
    add_case("Attention", "attention", variant,
             lambda b=b, h=h, tq=tq, tk=tk, d=d: [randn(b, h, tq, d), randn(b, h, tk, d), randn(b, h, tk, d)],
             lambda x, causal=causal, scale=scale: attention_ref(x[0], x[1], x[2], causal, scale),
             {"causal": causal, "scale": scale}, noncontig=(1,) if variant == "plain" else ())

# ---------------------------------------------------------------- creation
for variant, start, end, step in [("int", 0, 7, 1), ("frac", 0.5, 3.7, 0.3), ("down", 5.0, -2.5, -1.5)]:
    for dtype, dname in [(torch.float64, "F64"), (torch.float32, "F32"), (torch.int64, "I64")]:
        if dtype == torch.int64 and variant != "int":
            continue
        add_case("Creation", "arange", f"{variant}_{dname.lower()}", lambda: [],
                 lambda x, start=start, end=end, step=step, dtype=dtype: torch.arange(start, end, step, dtype=dtype),
                 {"start": start, "end": end, "step": step, "out_dtype": dname}, f32=False)

# ---------------------------------------------------------------- sanity on the references themselves
for c in cases:
    if c["op"] == "max":  # the engine's max gives the first maximal index; check torch agrees on these inputs
        x, idx = tensors[c["name"] + ".in0"], tensors[c["name"] + ".out1"]
        dim = c["params"]["dim"]
        mask = (x == x.amax(dim=dim, keepdim=True)).long()
        first = (mask * (mask.cumsum(dim) == 1)).argmax(dim=dim, keepdim=True)  # the one marked element
        if not c["params"]["keepdim"]:
            first = first.squeeze(dim)
        assert torch.equal(idx, first), c["name"]

metadata = {"cases": json.dumps(cases, separators=(",", ":")),
            "generator": "tools/gen_op_refs.py, torch " + torch.__version__}
safetensors_io.save(OUT, tensors, metadata)
back, back_meta = safetensors_io.load_with_metadata(OUT)
assert back_meta == metadata and len(back) == len(tensors)
for name, t in tensors.items():
    assert back[name].dtype == t.dtype and torch.equal(back[name], t) or (t.isnan().any() and back[name].shape == t.shape), name
size = os.path.getsize(OUT)
assert size < 2 * 1024 * 1024, f"{OUT} is {size} bytes; keep it under 2 MB"
print(f"wrote {os.path.normpath(OUT)}: {len(cases)} cases, {len(tensors)} tensors, {size} bytes")
