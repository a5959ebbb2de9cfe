#!/usr/bin/python3
# tools/gen_image_refs.py
# writes: tests/ref/image_preprocess.safetensors, PIL's CLIP preprocessing of generated test
# images (and the random-resized-crop augmentation drawn with torch's generator), and the small
# image files in tests/ref/images/ that stb_image_write cannot produce (GIF, progressive JPEG).
# tests/test_image.cpp checks data/image.cpp against them.
#
# Run with Debian's Python (python3-pil, python3-torch):  /usr/bin/python3 tools/gen_image_refs.py
#
# torchvision is not packaged with Debian's torch 1.13, so its two transforms are restated here
# on PIL exactly as torchvision does them on PIL images (OpenAI CLIP's transform):
#   Resize(size, BICUBIC):  short side -> size, long side -> int(size * long / short),
#                           img.resize((w, h), Image.BICUBIC)
#   CenterCrop(size):       top = int(round((h - size) / 2.0)), left likewise; img.crop(...)
#   ToTensor + Normalize:   float32 (x / 255 - mean) / std
#   RandomResizedCrop.get_params: restated below with torch's draws (torch.empty(1).uniform_,
#                           torch.randint), so a rankclip::Generator seeded alike draws the same.
#
# Test images are integer patterns (pattern() below) that the C++ test computes identically, so
# only outputs are stored. Every tensor is small; the file stays well under 1 MB.
#
# Tensors (uint8 values are stored as I32):
#   pre.<case>.spec        I64 [kind, width, height, size]      the input and the crop size
#   pre.<case>.resized     I32 (size, size, 3)   PIL resize + center crop (uint8 values)
#   pre.<case>.normalized  F32 (3, size, size)   after ToTensor + Normalize
#   aug.<case>.spec        I64 [kind, width, height, size, seed, hflip]
#   aug.<case>.params      I64 [top, left, height, width, flipped]
#   aug.<case>.resized     I32 (size, size, 3)   crop -> resize (size, size) -> optional flip
# Image files (tests/ref/images/): pattern_<kind>_<w>x<h>.* as named in IMAGE_FILES.
import math
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

BICUBIC = getattr(Image, "Resampling", Image).BICUBIC
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
KINDS = {"noise": 0, "smooth": 1, "blocks": 2}
M32 = np.uint64(0xFFFFFFFF)


def hash32(v):
    """A 32-bit integer mixer (lowbias32); v: uint64 array holding 32-bit values."""
    v = v & M32
    v ^= v >> np.uint64(16)
    v = (v * np.uint64(0x7FEB352D)) & M32
    v ^= v >> np.uint64(15)
    v = (v * np.uint64(0x846CA68B)) & M32
    v ^= v >> np.uint64(16)
    return v


def pattern(kind, w, h):
    """(h, w, 3) uint8. Must match pattern() in tests/test_image.cpp."""
    y, x, c = np.meshgrid(np.arange(h, dtype=np.uint64), np.arange(w, dtype=np.uint64),
                          np.arange(3, dtype=np.uint64), indexing="ij")
    if kind == "noise":      # independent bytes: the hardest case for rounding and clipping
        v = hash32((y * np.uint64(w) + x) * np.uint64(3) + c) & np.uint64(255)
    elif kind == "smooth":   # gradients, one per channel
        xi, yi, ci = x.astype(np.int64), y.astype(np.int64), c.astype(np.int64)
        v = np.where(ci == 0, xi * 255 // max(w - 1, 1),
                     np.where(ci == 1, yi * 255 // max(h - 1, 1), (xi + yi) * 255 // max(w + h - 2, 1)))
    elif kind == "blocks":   # 6x6 blocks of random colours: sharp edges (ringing overshoot)
        block = (y // np.uint64(6)) * np.uint64(1000) + x // np.uint64(6)
        v = hash32(block * np.uint64(3) + c + np.uint64(12345)) & np.uint64(255)
    else:
        raise ValueError(kind)
    return v.astype(np.uint8)


def resize_center_crop(img, size):
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), BICUBIC)
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def normalize(arr):
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255)
    return t.sub(torch.from_numpy(MEAN)[:, None, None]).div(torch.from_numpy(STD)[:, None, None])


def rrc_params(width, height, scale, ratio):
    """torchvision RandomResizedCrop.get_params; log/exp in double (see data/image.h)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
        aspect_ratio = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1]).item())
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            i = torch.randint(0, height - h + 1, size=(1,)).item()
            j = torch.randint(0, width - w + 1, size=(1,)).item()
            return i, j, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


# (name, kind, width, height, size)
PRE_CASES = [
    ("down_noise", "noise", 300, 200, 64),     # landscape, downscale x3.125 (antialiased)
    ("up_smooth", "smooth", 23, 37, 48),       # portrait, upscale
    ("crop_only", "blocks", 64, 97, 64),       # no resize; crop margin 33 -> top round(16.5) = 16
    ("square_noise", "noise", 129, 130, 40),   # near-square downscale
    ("tall_smooth", "smooth", 17, 255, 16),    # extreme aspect, slight downscale
    ("up_blocks", "blocks", 90, 45, 56),       # landscape upscale with sharp edges (clipping)
]
# (name, kind, width, height, size, seed, hflip, scale)
AUG_CASES = [("blocks_s%d" % s, "blocks", 120, 90, 32, s, 1, (0.9, 1.0)) for s in range(6)] + [
    ("fallback_tall", "smooth", 17, 255, 16, 3, 0, (0.9, 1.0)),   # every attempt too wide
    ("wide_scale", "noise", 80, 60, 24, 11, 1, (0.08, 1.0)),      # torchvision's default scale
]
# GIF (two frames; the first is checked) and progressive JPEG: stb_image_write cannot write them
IMAGE_FILES = [("blocks", 30, 20, "gif"), ("smooth", 64, 48, "progressive.jpg")]


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests/ref/image_preprocess.safetensors")
    tensors = {}
    for name, kind, w, h, size in PRE_CASES:
        img = Image.fromarray(pattern(kind, w, h), "RGB")
        res = np.asarray(resize_center_crop(img, size))
        tensors[f"pre.{name}.spec"] = torch.tensor([KINDS[kind], w, h, size], dtype=torch.int64)
        tensors[f"pre.{name}.resized"] = torch.from_numpy(res.astype(np.int32))
        tensors[f"pre.{name}.normalized"] = normalize(res).contiguous()
    for name, kind, w, h, size, seed, flip, scale in AUG_CASES:
        img = Image.fromarray(pattern(kind, w, h), "RGB")
        torch.manual_seed(seed)
        i, j, ch, cw = rrc_params(w, h, scale, (3.0 / 4.0, 4.0 / 3.0))
        out = img.crop((j, i, j + cw, i + ch)).resize((size, size), BICUBIC)
        flipped = 0
        if flip and torch.rand(1).item() < 0.5:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
            flipped = 1
        tensors[f"aug.{name}.spec"] = torch.tensor(
            [KINDS[kind], w, h, size, seed, flip, int(scale[0] * 100), int(scale[1] * 100)], dtype=torch.int64)
        tensors[f"aug.{name}.params"] = torch.tensor([i, j, ch, cw, flipped], dtype=torch.int64)
        tensors[f"aug.{name}.resized"] = torch.from_numpy(np.asarray(out).astype(np.int32))
    safetensors_io.save(out_path, tensors, {"generator": "tools/gen_image_refs.py",
                                            "pillow": Image.__version__ if hasattr(Image, "__version__") else ""})
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes, {len(tensors)} tensors)")

    img_dir = os.path.join(root, "tests/ref/images")
    os.makedirs(img_dir, exist_ok=True)
    for kind, w, h, ext in IMAGE_FILES:
        path = os.path.join(img_dir, f"pattern_{kind}_{w}x{h}.{ext}")
        arr = pattern(kind, w, h)
        if ext == "gif":
            # 'blocks' has few colours; quantize without dithering keeps them exact when <= 256
            first = Image.fromarray(arr, "RGB").quantize(colors=256, dither=Image.Dither.NONE
                                                         if hasattr(Image, "Dither") else 0)
            second = Image.fromarray(255 - arr, "RGB").quantize(colors=256)
            first.save(path, save_all=True, append_images=[second], optimize=False)
            back = np.asarray(Image.open(path).convert("RGB"))
            assert np.array_equal(back, arr), "GIF first frame is not exact"
        else:
            Image.fromarray(arr, "RGB").save(path, "JPEG", quality=95, progressive=True)
            assert Image.open(path).info.get("progressive"), "not progressive"
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
