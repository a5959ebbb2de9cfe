#!/usr/bin/env python3
"""tools/gen_fuzz_corpus.py — writes the fuzzers' seed corpora, tests/fuzz/corpus/<target>/, a few
small valid (and nearly valid) files per parser, with the Python standard library only (the JPEG and
GIF seeds are copies of the test images in tests/ref/images/). Deterministic: rerunning it rewrites
the same bytes. Run from anywhere: python3 tools/gen_fuzz_corpus.py"""
import gzip
import io
import json
import os
import shutil
import struct
import tarfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def gz(data):
    return gzip.compress(data, mtime=0)


# ---- images ----
def png(w, h, color_type=2, bit_depth=8, palette=None):
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    bpp = channels * bit_depth // 8
    rows = b""
    for y in range(h):
        rows += b"\x00" + bytes(((x * 37 + y * 11 + c * 5) % 256) for x in range(w) for c in range(bpp))
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", palette)
    return out + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def bmp(w, h):
    stride = (w * 3 + 3) & ~3
    pixels = b"".join(bytes(((x * 13 + y * 7 + c) % 256) for x in range(w) for c in range(3)).ljust(stride, b"\0")
                      for y in range(h))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def tga(w, h):
    header = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, w, h, 24, 0)
    return header + bytes(((i * 29) % 256) for i in range(w * h * 3))


def image_seeds():
    refs = os.path.join(ROOT, "tests", "ref", "images")
    jpg = open(os.path.join(refs, "pattern_smooth_64x48.progressive.jpg"), "rb").read()
    gif = open(os.path.join(refs, "pattern_blocks_30x20.gif"), "rb").read()
    return {"rgb.png": png(5, 4), "gray.png": png(3, 3, 0), "rgba16.png": png(2, 3, 6, 16),
            "palette.png": png(4, 2, 3, 8, bytes(range(48))), "rgb.bmp": bmp(3, 2), "rgb.tga": tga(3, 2),
            "progressive.jpg": jpg, "blocks.gif": gif}


# ---- safetensors, npy ----
def safetensors(tensors, metadata=None):
    header, buf = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(buf), len(buf) + len(data)]}
        buf += data
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + buf


def npy(descr, shape, data, version=1):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (
        descr, "(%s)" % (", ".join(map(str, shape)) + ("," if len(shape) == 1 else "")))
    pre = 10 if version == 1 else 12
    d += " " * (-(pre + len(d) + 1) % 64) + "\n"
    size = struct.pack("<H", len(d)) if version == 1 else struct.pack("<I", len(d))
    return b"\x93NUMPY" + bytes([version, 0]) + size + d.encode() + data


# ---- packed shard (data/packed.h) ----
def packed(count, size, ctx, token_bytes, captions, classes):
    align = lambda v: (v + 63) & ~63
    pix = size * size * 3
    off_pixels = 128
    off_tokens = align(off_pixels + count * pix)
    off_labels = align(off_tokens + count * ctx * token_bytes)
    off_cap_index = align(off_labels + count * 8)
    index = [0]
    for c in captions:
        index.append(index[-1] + len(c.encode()))
    off_caps = off_cap_index + 8 * (count + 1)
    blob = "".join(captions).encode()
    off_classes = off_caps + len(blob)
    names = "\n".join(classes).encode()
    file_bytes = off_classes + len(names)
    out = bytearray(file_bytes)
    head = b"RCPACK01" + struct.pack("<IIQIIIIQQQQQQQQ", 1, 128, count, size, 3, ctx, token_bytes, off_pixels,
                                     off_tokens, off_labels, off_cap_index, off_caps, off_classes, len(names),
                                     file_bytes)
    out[0:len(head)] = head
    for i in range(count * pix):
        out[off_pixels + i] = (i * 7) % 256
    fmt = "<i" if token_bytes == 4 else "<q"
    for i in range(count):
        ids = [49406 % 1000, 5 + i, 7, 999] + [0] * (ctx - 4)
        for j in range(ctx):
            struct.pack_into(fmt, out, off_tokens + (i * ctx + j) * token_bytes, ids[j])
        struct.pack_into("<q", out, off_labels + 8 * i, i % max(1, len(classes)) if classes else -1)
    for i, v in enumerate(index):
        struct.pack_into("<Q", out, off_cap_index + 8 * i, v)
    out[off_caps:off_caps + len(blob)] = blob
    out[off_classes:off_classes + len(names)] = names
    return bytes(out)


# ---- tar shard ----
def tar(members, compress=False):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            t.addfile(info, io.BytesIO(data))
    return gz(b.getvalue()) if compress else b.getvalue()


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    put("json", "object.json", '{"a": [1, -2.5e3, true, null, "x\\u00e9\\ud83d\\ude00"], "b": {"c": NaN}}')
    put("json", "config.json", json.dumps({"embed_dim": 64, "vision": {"layers": 2, "width": 64},
                                           "text": {"context_length": 32, "vocab_size": 1000}}, indent=2))
    put("json", "metrics.jsonl", '{"step":1,"loss":2.3025850929940455,"lr":0.0005,"nan":Infinity}')
    put("json", "nested.json", "[" * 20 + "]" * 20)
    put("safetensors", "two.safetensors", safetensors(
        {"w": ("F32", [2, 3], struct.pack("<6f", *range(6))), "ids": ("I64", [2], struct.pack("<2q", 3, -1))},
        {"format": "pt", "config": '{"embed_dim": 8}'}))
    put("safetensors", "bf16_scalar.safetensors", safetensors(
        {"s": ("BF16", [], b"\x80\x3f"), "e": ("F64", [0, 4], b""), "i": ("I32", [1], struct.pack("<i", 7))}))
    put("npy", "f4.npy", npy("<f4", [2, 3], struct.pack("<6f", *range(6))))
    put("npy", "i8.npy", npy("<i8", [3], struct.pack("<3q", 1, 2, 3)))
    put("npy", "scalar_f8_v2.npy", npy("<f8", [], struct.pack("<d", 0.5), version=2))
    put("npy", "i4_empty.npy", npy("|i4" if False else "<i4", [0, 5], b""))
    put("csv", "captions.csv", 'filepath,title\na.png,"a red circle"\nsub/b.jpg,"a ""quoted"", multi\nline"\n')
    put("csv", "tsv.tsv", "title\tfilepath\nthe cat\tc.png\r\nthe dog\td.png\r\n")
    put("csv", "extra_columns.csv", "id,filepath,title,label\n1,x.png,caf\xc3\xa9,3\n2,y.png,,4\n".encode("latin-1"))
    put("tokenizer", "caption.txt", "a photo of a red circle on a blue background")
    put("tokenizer", "html.txt", "Caf&eacute; &amp;amp; &#x1F600; &notit; <|startoftext|>it's  DOG'S\tvoilà")
    put("tokenizer", "unicode.txt", "İstanbul ΣΑΣ 東京 123 ﬁne ٣ \u0345 \xff".encode("utf-8", "surrogatepass") + b"\xff\xc3")
    merges = "#version: 0.2\nt h\nth e</w>\na n\nan d</w>\nc a\nca t</w>\ni n\nin g</w>\n"
    put("vocab", "merges.txt", merges)
    put("vocab", "merges.txt.gz", gz(merges.encode()))
    put("vocab", "named_header.txt", "bpe_simple_vocab_16e6.txt#version: 0.2\nd o\ndo g</w>\n")
    for name, data in image_seeds().items():
        put("image", name, data)
    img = image_seeds()
    members = [("s/000.png", img["rgb.png"]), ("s/000.txt", b"a small image"), ("s/000.cls", b"2"),
               ("s/001.jpg", img["progressive.jpg"]), ("s/001.txt", "caf\xe9".encode()),
               ("s/001.json", b"{}"), ("s/002.txt", b"no image")]
    put("tar", "shard.tar", tar(members))
    put("tar", "shard.tar.gz", tar(members[:3], compress=True))
    put("tar", "pattern.txt", "shards-{000..003}-{a,b{c,d}}.tar\n")
    put("packed", "tokens_i32.rcpack", packed(2, 4, 6, 4, ["a red circle", "caf\u00e9"], ["circle", "square"]))
    put("packed", "tokens_i64.rcpack", packed(1, 2, 5, 8, ["x"], []))
    put("packed", "no_tokens.rcpack", packed(3, 1, 0, 4, ["", "b", "cc"], ["k"]))


if __name__ == "__main__":
    main()
