"""tools/gen_clip_refs.py
Writes the PyTorch references that tests/test_clip_parity.cpp and tests/test_nn.cpp compare the
C++ models and layers against, from the mirror in tools/clip_mirror.py (OpenAI CLIP's model.py
in plain torch.nn):

  tests/ref/clip_tiny.safetensors     config "tiny"
  tests/ref/clip_small2.safetensors   config "small" with vision_layers = text_layers = 2
  tests/ref/clip_mha.safetensors      single layers: MultiheadAttention, Linear, Embedding

Both CLIP variants use vocab_size = 1000 instead of 49408: it keeps the committed files small
(the token embedding and its gradient shrink) and changes no code path (the vocabulary size is
only the row count of the embedding; the end-of-text id is vocab_size - 1, the largest).

Run: /usr/bin/python3 tools/gen_clip_refs.py        (PyTorch 1.13, CPU, x86-64 with AVX2: the
C++ Generator reproduces torch's AVX2 normal/uniform kernels, see engine/random.h)

CLIP file layout (recipe: torch.manual_seed(seed); model = CLIP(config); then the batch):
  init.<param>         F64 (4): sum, sum of squares, first and last element of the initial
                       value, the sums in float64, sequential in row-major order (np.cumsum), so
                       a C++ loop gets the same doubles exactly when the values are identical.
                       The weights themselves are not stored: the C++ test re-creates them from
                       the seed.
  input.images         F32 (B, 3, S, S), torch.randn right after the model's construction.
  input.text           I64 (B, L): ids drawn from [1, vocab_size - 1) (torch.randint, after the
                       images), an end-of-text id vocab_size - 1 at a per-row position
                       (L-1, 3, L/2, 7 for B = 4), zeros after it, so argmax pooling picks it.
  out.image_features   F32 (B, E), L2-normalised
  out.text_features    F32 (B, E), L2-normalised
  out.logits_per_image F32 (B, B)
  out.loss             F32 (): (CE(logits, arange) + CE(logits^T, arange)) / 2
  grad.<param>         F32, d loss / d param for every parameter, in the model's state_dict
                       order. Exception: the token embedding's gradient is zero outside the rows
                       of ids in the batch, so only those rows are stored: grad.token_embedding.weight
                       is (R, W) and grad_rows.token_embedding.weight (I64 (R)) holds their ids
                       (sorted); every other row's gradient must be exactly zero.
  metadata             "config": JSON of the CLIPConfig fields; "seed"; "batch"; "param_order":
                       JSON list of the state_dict names in torch's order.

clip_mha.safetensors (each block seeded separately, see layer_refs()):
  mha.<param>          F32 initial weights of nn.MultiheadAttention(16, 4) after manual_seed(1)
  mha.x                F32 (B=2, T=5, W=16) input (batch-first), drawn after the module
  mha.go               F32 (2, 5, 16) upstream gradient
  mha.<causal|full>.out, .grad.x, .grad.<param>   forward output and gradients of sum(out * go),
                       with and without the causal mask
  linear.weight/.bias  nn.Linear(7, 5) after manual_seed(2); linear.x (3, 7); linear.out
  embedding.weight     nn.Embedding(11, 6) after manual_seed(3)
  layer_norm.x/.out    F.layer_norm over the last dim of a (3, 8) input (weight ones, bias zeros)
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_mirror  # noqa: E402
import safetensors_io  # noqa: E402

REF_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref")
SEED = 0
BATCH = 4
VOCAB = 1000

VARIANTS = {
    "tiny": clip_mirror.config("tiny", vocab_size=VOCAB),
    "small2": clip_mirror.config("small", vision_layers=2, text_layers=2, vocab_size=VOCAB),
}


def checksum(t):
    """[sum, sum of squares, first, last] in float64, sequential (cumsum) so C++ can match exactly."""
    x = t.detach().reshape(-1).double().numpy()
    return torch.tensor([np.cumsum(x)[-1], np.cumsum(x * x)[-1], x[0], x[-1]], dtype=torch.float64)


def make_text(cfg, batch):
    L, V = cfg["context_length"], cfg["vocab_size"]
    ids = torch.randint(1, V - 1, (batch, L))
    eot_positions = [L - 1, 3, L // 2, 7][:batch]
    for b, pos in enumerate(eot_positions):
        ids[b, pos] = V - 1
        ids[b, pos + 1:] = 0
    return ids


def clip_reference(name, cfg):
    torch.manual_seed(SEED)
    model = clip_mirror.CLIP(cfg)
    tensors = {}
    for pname, p in model.named_parameters():
        tensors[f"init.{pname}"] = checksum(p)

    S = cfg["image_size"]
    images = torch.randn(BATCH, 3, S, S)
    text = make_text(cfg, BATCH)
    image_features, text_features, logits_per_image, _ = model(images, text)
    loss = clip_mirror.clip_loss(logits_per_image)
    loss.backward()

    tensors["input.images"] = images
    tensors["input.text"] = text
    tensors["out.image_features"] = image_features.detach()
    tensors["out.text_features"] = text_features.detach()
    tensors["out.logits_per_image"] = logits_per_image.detach()
    tensors["out.loss"] = loss.detach()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        if pname == "token_embedding.weight":
            rows = torch.unique(text)  # sorted
            outside = torch.ones(p.shape[0], dtype=torch.bool)
            outside[rows] = False
            assert torch.all(p.grad[outside] == 0), "token embedding gradient outside the batch's ids"
            tensors[f"grad.{pname}"] = p.grad[rows].clone()
            tensors[f"grad_rows.{pname}"] = rows.to(torch.int64)
        else:
            tensors[f"grad.{pname}"] = p.grad.detach().clone()

    config_json = json.dumps({k: cfg[k] for k in clip_mirror.CONFIG_FIELDS + ["quick_gelu"]})
    metadata = {
        "config": config_json,
        "seed": str(SEED),
        "batch": str(BATCH),
        "param_order": json.dumps([n for n, _ in model.named_parameters()]),
    }
    path = os.path.join(REF_DIR, f"clip_{name}.safetensors")
    safetensors_io.save(path, tensors, metadata)
    print(f"{path}: loss {loss.item():.6f}, {sum(p.numel() for p in model.parameters())} parameters, "
          f"{os.path.getsize(path)} bytes")


def layer_refs():
    tensors = {}
    # MultiheadAttention: init from seed 1, then input and upstream gradient
    torch.manual_seed(1)
    mha = nn.MultiheadAttention(16, 4)
    for pname, p in mha.named_parameters():
        tensors[f"mha.{pname}"] = p.detach().clone()
    x = torch.randn(2, 5, 16)
    go = torch.randn(2, 5, 16)
    tensors["mha.x"] = x
    tensors["mha.go"] = go
    for variant in ["full", "causal"]:
        mha.zero_grad()
        xl = x.clone().requires_grad_(True)
        mask = torch.full((5, 5), float("-inf")).triu_(1) if variant == "causal" else None
        xt = xl.transpose(0, 1)  # (T, B, W), torch's default layout
        out = mha(xt, xt, xt, need_weights=False, attn_mask=mask)[0].transpose(0, 1)  # (B, T, W)
        (out * go).sum().backward()
        tensors[f"mha.{variant}.out"] = out.detach()
        tensors[f"mha.{variant}.grad.x"] = xl.grad
        for pname, p in mha.named_parameters():
            tensors[f"mha.{variant}.grad.{pname}"] = p.grad.clone()

    torch.manual_seed(2)
    linear = nn.Linear(7, 5)
    tensors["linear.weight"] = linear.weight.detach().clone()
    tensors["linear.bias"] = linear.bias.detach().clone()
    lx = torch.randn(3, 7)
    tensors["linear.x"] = lx
    tensors["linear.out"] = linear(lx).detach()

    torch.manual_seed(3)
    tensors["embedding.weight"] = nn.Embedding(11, 6).weight.detach().clone()

    torch.manual_seed(4)
    lnx = torch.randn(3, 8) * 3 + 1
    tensors["layer_norm.x"] = lnx
    tensors["layer_norm.out"] = F.layer_norm(lnx, (8,))

    path = os.path.join(REF_DIR, "clip_mha.safetensors")
    safetensors_io.save(path, tensors, {"mha": json.dumps({"width": 16, "heads": 4, "seed": 1})})
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name, cfg in VARIANTS.items():
        clip_reference(name, cfg)
    layer_refs()
