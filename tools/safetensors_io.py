"""tools/safetensors_io.py
Defines save() / load() for safetensors files, for the PyTorch scripts in tools/ that write
reference tensors for the C++ tests (engine/safetensors.h reads them). No third-party
safetensors package: the format is small enough to write here, and this keeps the tools
runnable with Debian's python3-torch alone (/usr/bin/python3).

Format: 8-byte little-endian u64 header size N, N bytes of UTF-8 JSON (padded with spaces to a
multiple of 8), then the data buffer. The header maps each tensor name to
{"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the buffer) and may hold
"__metadata__": {str: str}. Tensors are written in the dict's order, metadata first, like the
C++ writer. Supported dtypes: F32, F64, BF16, I32, I64 (bf16 travels as its raw uint16 bits).
"""
import json
import os
import struct
import sys

import numpy as np
import torch

_TORCH_TO_NAME = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.bfloat16: "BF16",
    torch.int32: "I32",
    torch.int64: "I64",
}
_NAME_TO_TORCH = {name: dtype for dtype, name in _TORCH_TO_NAME.items()}
_ELEMENT_SIZE = {"F32": 4, "F64": 8, "BF16": 2, "I32": 4, "I64": 8}
_MAX_HEADER_BYTES = 100 * 1000 * 1000
assert sys.byteorder == "little", "safetensors_io writes native bytes, which must be little-endian"


def _tensor_bytes(t):
    """The little-endian row-major bytes of a CPU tensor; bf16 goes through its int16 bits."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()  # native order, little-endian (checked at import)


def save(path, tensors, metadata=None):
    """Writes {name: tensor} to path, atomically (temp file + fsync + rename).

    tensors: a dict of torch tensors (numpy arrays are converted), in the order to write.
    metadata: optional dict of str -> str, stored under "__metadata__".
    """
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"safetensors_io.save({path}): metadata must map str to str, got {k!r}: {v!r}")
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name, t in tensors.items():
        if name == "__metadata__":
            raise ValueError(f"safetensors_io.save({path}): '__metadata__' is reserved")
        if isinstance(t, np.ndarray):
            t = torch.from_numpy(t)
        if t.dtype not in _TORCH_TO_NAME:
            raise TypeError(f"safetensors_io.save({path}): tensor '{name}' has unsupported dtype {t.dtype}")
        data = _tensor_bytes(t)
        header[name] = {
            "dtype": _TORCH_TO_NAME[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)

    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for data in blobs:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_with_metadata(path):
    """Returns ({name: tensor} in file order, {str: str} metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: file is {len(raw)} bytes, too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > _MAX_HEADER_BYTES or n > len(raw) - 8:
        raise ValueError(f"{path}: header size {n} is invalid for a file of {len(raw)} bytes")
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    buffer = memoryview(raw)[8 + n :]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        dtype = info["dtype"]
        if dtype not in _NAME_TO_TORCH:
            raise ValueError(f"{path}: tensor '{name}': unsupported dtype {dtype}")
        shape = [int(d) for d in info["shape"]]
        begin, end = info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (0 <= begin <= end <= len(buffer)) or end - begin != count * _ELEMENT_SIZE[dtype]:
            raise ValueError(f"{path}: tensor '{name}': bad data_offsets {[begin, end]} for {dtype} {shape}")
        np_dtype = {"F32": "<f4", "F64": "<f8", "BF16": "<i2", "I32": "<i4", "I64": "<i8"}[dtype]
        array = np.frombuffer(buffer[begin:end], dtype=np_dtype).copy().reshape(shape)
        t = torch.from_numpy(array)
        if dtype == "BF16":
            t = t.view(torch.bfloat16)
        tensors[name] = t
    return tensors, metadata


def load(path):
    """Returns {name: tensor} in file order (CPU tensors with the file's dtypes)."""
    return load_with_metadata(path)[0]
