"""tools/check_interop.py
Loads a checkpoint written by rankclip (models/checkpoint.h: save_clip) into the PyTorch mirror
of the model (tools/clip_mirror.py, OpenAI CLIP's layout) with load_state_dict(strict=True), and
computes the L2-normalised features of a batch. tests/test_checkpoint.cpp runs it to check that
our files load in PyTorch and give the same embeddings.

The config comes from the checkpoint's "config" metadata; BF16 parameters are cast to float32;
tensors listed in "extra_tensors" (optimizer state, ...) are not parameters and are left out.

Usage: /usr/bin/python3 tools/check_interop.py CHECKPOINT [--images IMAGES.npy] [--texts TEXTS.npy]
                                               [--out PREFIX]
  IMAGES.npy  float32 (N, 3, S, S)   TEXTS.npy  int64 (N, context_length)
  --out PREFIX writes PREFIX.image.npy / PREFIX.text.npy (float32 features); the features'
  shape and first values are printed either way. Exit status 0 on success, 1 with a message on
  stderr otherwise (a strict load that fails prints torch's missing / unexpected keys).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_mirror  # noqa: E402
import safetensors_io  # noqa: E402


def load_mirror(path):
    tensors, metadata = safetensors_io.load_with_metadata(path)
    if "config" not in metadata:
        raise ValueError(f"{path}: no \"config\" in the metadata: not a rankclip checkpoint")
    cfg = json.loads(metadata["config"])
    cfg.setdefault("quick_gelu", False)
    extra = set(json.loads(metadata.get("extra_tensors", "[]")))
    state = {name: t.float() for name, t in tensors.items() if name not in extra}
    model = clip_mirror.CLIP(cfg)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, cfg, metadata


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("checkpoint")
    parser.add_argument("--images")
    parser.add_argument("--texts")
    parser.add_argument("--out")
    args = parser.parse_args()
    try:
        model, cfg, metadata = load_mirror(args.checkpoint)
    except (ValueError, RuntimeError, KeyError) as e:
        print(f"check_interop: {args.checkpoint}: {e}", file=sys.stderr)
        return 1
    n = sum(p.numel() for p in model.parameters())
    print(f"check_interop: {args.checkpoint}: loaded with strict=True into the mirror "
          f"({n} parameters, format {metadata.get('format', '-')}, dtype {metadata.get('dtype', '-')})")

    with torch.no_grad():
        for kind, path, encode in (("image", args.images, model.encode_image),
                                   ("text", args.texts, model.encode_text)):
            if not path:
                continue
            x = torch.from_numpy(np.load(path))
            features = encode(x)
            features = features / features.norm(dim=-1, keepdim=True)
            first = ", ".join(f"{v:.6f}" for v in features.reshape(-1)[:4].tolist())
            print(f"{kind} features {tuple(features.shape)}: {first}, ...")
            if args.out:
                np.save(f"{args.out}.{kind}.npy", features.numpy().astype(np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
