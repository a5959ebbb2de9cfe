"""tools/gen_safetensors_ref.py
Writes tests/ref/safetensors_py.safetensors with tools/safetensors_io.py: one small tensor of
each supported dtype, a scalar, an empty tensor, a transposed (non-contiguous) source and UTF-8
metadata. tests/test_safetensors.cpp recomputes the same values from the formulas below and
checks the file against them, so the C++ reader is tested on bytes written by PyTorch.

Run: /usr/bin/python3 tools/gen_safetensors_ref.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref", "safetensors_py.safetensors")

tensors = {
    # names deliberately not in sorted order: the reader must keep file order
    "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1.0,  # i * 0.5 - 1
    "f64": torch.arange(4, dtype=torch.float64) / 3.0,  # i / 3
    # PyTorch's float -> bf16 rounding; the last two are exact ties (round to even: down, up)
    "bf16": torch.tensor([1.0, -2.5, 3.14159, 1e-3, 65504.0, -0.0, 1.00390625, 1.01171875]).bfloat16(),
    "i32": torch.tensor([-7, 0, 2**31 - 1, -(2**31)], dtype=torch.int32),
    "i64": torch.tensor([-(2**40), 5, 2**62], dtype=torch.int64),
    "scalar": torch.tensor(2.5, dtype=torch.float32),
    "empty": torch.zeros(0, 3, dtype=torch.float32),
    "transposed": torch.arange(12, dtype=torch.float32).reshape(3, 4).t(),  # (4, 3), value j * 4 + i
}
metadata = {"format": "pt", "note": 'h\u00e9llo "quoted"\n\ttab \u2713 \U0001d11e'}

safetensors_io.save(OUT, tensors, metadata)
back, back_metadata = safetensors_io.load_with_metadata(OUT)
assert back_metadata == metadata
for name, t in tensors.items():
    assert back[name].dtype == t.dtype and back[name].shape == t.shape and torch.equal(back[name], t), name
print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")
