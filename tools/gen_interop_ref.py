"""tools/gen_interop_ref.py
Writes the reference files for the checkpoint and .npy interoperability tests
(tests/test_checkpoint.cpp, tests/test_npy.cpp):

  tests/ref/interop_torch_tiny.safetensors
      A checkpoint as a PyTorch user would write it: the state_dict of the mirror
      (tools/clip_mirror.py, OpenAI CLIP's layout) in torch's own order, saved with
      tools/safetensors_io.py, with no "format" key. The config is "tiny" with 2 + 2 layers,
      vocab_size 1000 (keeps the file near 4 MB; the vocabulary size is only the embedding's row
      count) and quick_gelu = true, so a loader that ignored the stored config would fail.
      Metadata:
        "config"         JSON of the config (models/clip_config.h's fields)
        "extra_tensors"  the names of the four tensors below, which are not parameters
      Extra tensors:
        input.images        F32 (B, 3, 32, 32), torch.randn after the model's construction
        input.text          I64 (B, 32), random ids in [1, 999), end-of-text 999 at row-dependent
                            positions, zeros after it
        out.image_features  F32 (B, E), L2-normalised, from the mirror in eval mode
        out.text_features   F32 (B, E), L2-normalised
      The parameters are the mirror's initial values perturbed by small noise (so that biases
      and LayerNorm weights are not all 0 / 1 and a loader that skipped a tensor would show).

  tests/ref/npy_numpy_f32.npy   float32 (2, 3, 4): arange(24) * 0.5 - 3
  tests/ref/npy_numpy_i64.npy   int64 (3, 5): (arange(15) - 7) * 10**12 + arange(15)
  tests/ref/npy_numpy_f64.npy   float64 (5,): 1 / (arange(5) + 3)
      Written by numpy.save, so the C++ reader is checked against numpy's own writer.

Run: /usr/bin/python3 tools/gen_interop_ref.py
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_mirror  # noqa: E402
import safetensors_io  # noqa: E402

REF_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref")
SEED = 7
BATCH = 3
CONFIG = clip_mirror.config("tiny", vision_layers=2, text_layers=2, vocab_size=1000, quick_gelu=True)
EXTRA = ["input.images", "input.text", "out.image_features", "out.text_features"]


def make_text(cfg, batch):
    L, V = cfg["context_length"], cfg["vocab_size"]
    ids = torch.randint(1, V - 1, (batch, L))
    for b, pos in enumerate([L - 1, 4, L // 2][:batch]):
        ids[b, pos] = V - 1
        ids[b, pos + 1:] = 0
    return ids


def torch_checkpoint():
    torch.manual_seed(SEED)
    model = clip_mirror.CLIP(CONFIG)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.eval()
    S = CONFIG["image_size"]
    images = torch.randn(BATCH, 3, S, S)
    text = make_text(CONFIG, BATCH)
    with torch.no_grad():
        image_features, text_features, _, _ = model(images, text)

    tensors = {name: t.detach().clone() for name, t in model.state_dict().items()}
    tensors["input.images"] = images
    tensors["input.text"] = text
    tensors["out.image_features"] = image_features
    tensors["out.text_features"] = text_features
    metadata = {
        "config": json.dumps({k: CONFIG[k] for k in clip_mirror.CONFIG_FIELDS + ["quick_gelu"]}),
        "extra_tensors": json.dumps(EXTRA),
    }
    path = os.path.join(REF_DIR, "interop_torch_tiny.safetensors")
    safetensors_io.save(path, tensors, metadata)
    n = sum(p.numel() for p in model.parameters())
    print(f"{path}: {n} parameters, {os.path.getsize(path)} bytes")


def numpy_files():
    arrays = {
        "npy_numpy_f32.npy": (np.arange(24, dtype=np.float32) * 0.5 - 3).reshape(2, 3, 4),
        "npy_numpy_i64.npy": ((np.arange(15, dtype=np.int64) - 7) * 10**12 + np.arange(15)).reshape(3, 5),
        "npy_numpy_f64.npy": 1.0 / (np.arange(5, dtype=np.float64) + 3),
    }
    for name, a in arrays.items():
        path = os.path.join(REF_DIR, name)
        np.save(path, a)
        print(f"{path}: {a.dtype} {a.shape}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    torch_checkpoint()
    numpy_files()
