#!/usr/bin/python3
# tools/gen_real_image_refs.py
# writes: tests/ref/real_images.json, Pillow's decoding of real image files that Debian packages
# install (screenshots, logos, icons, the libpng test image, progressive JPEGs; photographs when
# python3-skimage is installed), for ImageDecode.RealFilesMatchPil in tests/test_image.cpp.
# The files stay the packages': only checksums and a few statistics of the decoded pixels are
# stored, and the test skips a file that is absent (or has other bytes) on the machine it runs on.
#
# Run with Debian's Python (python3-pil; python3-torch, which tools/gen_image_refs.py imports, for
# its resize_center_crop):  /usr/bin/python3 tools/gen_real_image_refs.py [OUT]
# Only files present on this machine are recorded; what each entry holds:
#   path, package            where the file is and which package put it there (dpkg -S)
#   file_bytes, file_crc32   the file as it was read, to tell another version of it
#   format, mode, details    Pillow's view of it (mode before conversion; interlace,
#                            progressive, chroma subsampling)
#   width, height
#   exact                    PNG/GIF: stb_image and Pillow must agree bit for bit, so
#   rgb_crc32                the CRC-32 of Pillow's convert("RGB") bytes (H, W, 3) is enough,
#   pre224_crc32             and of its CLIP preprocessing to 224 (PIL bicubic + center crop);
#   known_difference         where they do not (a GIF's transparent pixels: black from stb,
#                            the palette colour from Pillow), what differs; rgb_crc32 is then of
#                            Pillow's pixels with that difference applied, pil_rgb_crc32 of its own
#   mean                     per-channel means of the RGB pixels (for the messages; JPEG check)
#   block, block_means       JPEG only: means of each block x block tile (last ones partial),
#                            (rows, cols, 3) flattened, 3 decimals. stb_image and libjpeg-turbo
#                            differ by a few units in a few pixels (colour conversion and
#                            upsampling rounding; measured: at most 2 on these 4:4:4 files, 3 on
#                            baseline 4:2:0, 19 on 4:2:2), so JPEG is compared by tolerance.
# Conversion follows data/image.h: alpha dropped (not composited), palette expanded, gray
# replicated; stb_image does the same, which the exact entries check.
import json
import os
import subprocess
import sys
import warnings
import zlib

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_image_refs import resize_center_crop  # noqa: E402  (CLIP's Resize + CenterCrop on PIL)

BLOCK = 16

# Candidate files: whichever of them this machine has are recorded.
CANDIDATES = [
    "/usr/share/doc/nodejs/full-white-stripe.jpg",                         # progressive, 4:4:4
    "/usr/share/doc/nodejs/thin-white-stripe.jpg",
    "/usr/share/doc/libpng-dev/examples/pngtest.png",                      # Adam7, RGBA, gAMA
    "/usr/share/pixmaps/debian-logo.png",                                  # RGBA
    "/usr/share/gitweb/static/git-logo.png",                               # palette
    "/usr/share/cmake-3.25/Templates/Windows/SplashScreen.png",            # palette + tRNS
    "/usr/share/doc/nodejs/contributing/doc_img/youtube-stream-share.png",  # RGB screenshot
    "/usr/share/doc/valgrind/html/images/kcachegrind_xtree.png",           # RGBA screenshot
    "/usr/share/icons/Adwaita/512x512/places/folder-pictures.png",         # RGBA icon
    "/usr/share/pixmaps/sympylogo_big.png",                                # RGBA, pHYs
    # photographs and GIFs, when their packages are installed (python3-skimage, tk8.6)
    "/usr/lib/python3/dist-packages/skimage/data/astronaut.png",
    "/usr/lib/python3/dist-packages/skimage/data/chelsea.png",
    "/usr/lib/python3/dist-packages/skimage/data/coffee.png",
    "/usr/lib/python3/dist-packages/skimage/data/rocket.jpg",
    "/usr/share/tcltk/tk8.6/images/logoLarge.gif",
    "/usr/share/tcltk/tk8.6/images/pwrdLogo200.gif",
]


def crc32(data):
    return zlib.crc32(data) & 0xFFFFFFFF


def package_of(path):
    try:
        out = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True).stdout
    except OSError:
        return ""
    return out.split(":")[0].strip() if out else ""


def block_means(arr, block):
    h, w, _ = arr.shape
    rows, cols = (h + block - 1) // block, (w + block - 1) // block
    out = np.zeros((rows, cols, 3))
    for by in range(rows):
        for bx in range(cols):
            tile = arr[by * block:(by + 1) * block, bx * block:(bx + 1) * block].astype(np.float64)
            out[by, bx] = tile.reshape(-1, 3).mean(axis=0)
    return out


def describe(img):
    details = []
    if img.info.get("interlace"):
        details.append("interlaced")
    if img.info.get("progressive") or img.info.get("progression"):
        details.append("progressive")
    if img.format == "JPEG" and hasattr(img, "layer"):
        details.append("sampling " + ",".join(f"{h}x{v}" for _, h, v, _ in img.layer))
    if "transparency" in img.info:
        details.append("tRNS")
    if getattr(img, "n_frames", 1) > 1:
        details.append(f"{img.n_frames} frames")
    return ", ".join(details)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests/ref/real_images.json")
    entries = []
    for path in CANDIDATES:
        if not os.path.isfile(path):
            print(f"absent, not recorded: {path}")
            continue
        data = open(path, "rb").read()
        img = Image.open(path)
        fmt, mode, details = img.format, img.mode, describe(img)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # "palette images with transparency" (we drop alpha)
            rgb_img = img.convert("RGB")      # GIF: the first frame
        arr = np.asarray(rgb_img)
        exact = fmt in ("PNG", "GIF")
        e = {
            "name": os.path.basename(path),
            "path": path,
            "package": package_of(path),
            "file_bytes": len(data),
            "file_crc32": crc32(data),
            "format": fmt,
            "mode": mode,
            "details": details,
            "width": rgb_img.width,
            "height": rgb_img.height,
            "exact": exact,
            "mean": [round(float(m), 4) for m in arr.reshape(-1, 3).mean(axis=0)],
        }
        if exact and fmt == "GIF" and "transparency" in img.info:
            # Known difference: stb_image leaves the first frame's transparent pixels black,
            # Pillow gives them the palette colour of the transparent index. Recorded as such
            # (the other pixels must match exactly) until data/image.cpp decides otherwise.
            img.seek(0)
            transparent = np.asarray(img) == img.info["transparency"]
            stb_like = arr.copy()
            stb_like[transparent] = 0
            e["known_difference"] = ("GIF transparency: stb_image decodes the %d transparent pixels as "
                                     "black, Pillow as the transparent index's palette colour; the "
                                     "reference has them black" % int(transparent.sum()))
            e["pil_rgb_crc32"] = crc32(arr.tobytes())
            e["rgb_crc32"] = crc32(stb_like.tobytes())
        elif exact:
            e["rgb_crc32"] = crc32(arr.tobytes())
            e["pre224_crc32"] = crc32(np.asarray(resize_center_crop(rgb_img, 224)).tobytes())
        else:
            e["block"] = BLOCK
            e["block_means"] = [round(float(v), 3) for v in block_means(arr, BLOCK).reshape(-1)]
        entries.append(e)
        print(f"recorded {path} ({e['package']}): {fmt} {mode} {rgb_img.width}x{rgb_img.height} {details}")
    doc = {
        "generator": "tools/gen_real_image_refs.py",
        "pillow": getattr(Image, "__version__", ""),
        "files": entries,
    }
    with open(out_path, "w") as f:   # one line per file: small and diffable
        f.write('{"generator": %s, "pillow": %s, "files": [\n' % (json.dumps(doc["generator"]), json.dumps(doc["pillow"])))
        f.write(",\n".join(json.dumps(e) for e in entries))
        f.write("\n]}\n")
    json.load(open(out_path))   # still valid JSON
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes, {len(entries)} files)")


if __name__ == "__main__":
    main()
