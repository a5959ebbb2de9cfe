// data/image.h
// defines: Image (RGB8 pixels), decoding of image files with stb_image, and CLIP's image
// transforms: preprocessing for evaluation (bicubic resize of the short side, center crop,
// mean/std normalise) and the training augmentation (random resized crop, optional flip).
//
// Decoding: JPEG (baseline, progressive), PNG (8/16-bit; gray, gray+alpha, palette, RGB, RGBA),
// BMP, GIF (first frame), TGA -> RGB8. Alpha is dropped (not composited), gray is replicated,
// 16-bit samples keep their high byte (stb_image's conversion). A file that is truncated,
// corrupt, of an unknown format or larger than kMaxImageSide x kMaxImageSide (or kMaxImagePixels)
// is a rankclip::Error naming the file and stb_image's reason. stb_image fills the missing part
// of a cut JPEG, BMP, TGA or GIF with zeros instead of failing, so those files are checked from
// their headers first (a JPEG needs an end-of-image marker after its last scan; the first GIF
// frame's data must be complete). JPEG Huffman tables are validated before stb reads them: the
// stb_image of Debian's libstb-dev (2022-09 snapshot) overflows a heap buffer on a table with
// more than 256 codes. Decoding is thread-safe (stb's failure reason is thread-local).
//
// Resampling reproduces PIL's Image.resize(size, Image.BICUBIC) (Pillow's Resample.c): a
// separable convolution, horizontal pass first, with the bicubic kernel (a = -0.5) whose support
// is widened by the scale factor when shrinking (antialiasing), fixed-point coefficients with
// 22 fractional bits, and each pass rounded to uint8. OpenAI's CLIP transform (torchvision
// Resize(size, BICUBIC) + CenterCrop on PIL images) therefore gives the same uint8 pixels:
// tests/test_image.cpp checks exact equality with Pillow 9.4 (tools/gen_image_refs.py), so the
// normalised floats differ by 0 (both compute (x / 255 - mean) / std in float32).
// Known difference: torchvision on *tensors* (antialias=False by default in older versions)
// would differ from this when downscaling; we follow the PIL path that CLIP uses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/random.h"

namespace rankclip {

// HWC, RGB8, row-major: pixel (y, x) channel c is rgb[(y * width + x) * 3 + c].
struct Image {
    int width = 0, height = 0;
    std::vector<uint8_t> rgb;
};

constexpr int kMaxImageSide = 16384;                     // refuse larger sides
constexpr int64_t kMaxImagePixels = int64_t(256) << 20;   // and more than 256 MP
// and images whose decoding would hold more than this: stb keeps the image in its own layout
// (channels x 1 or 2 bytes; PNG also the inflated rows) beside our RGB8 copy, about
// w x h x (2 x native bytes per pixel + 3); 768 MiB is an 8-bit RGB image of about 89 MP
constexpr int64_t kMaxDecodeBytes = int64_t(768) << 20;

// Decode a file / a buffer into RGB8. Errors name `path` / `name`.
Image decode_image_file(const std::string& path);
Image decode_image_memory(const uint8_t* data, size_t size, const std::string& name);

// CLIP's normalisation constants (per RGB channel).
extern const float kClipMean[3];
extern const float kClipStd[3];

// Bicubic resize to (width, height), exactly as PIL's Image.resize(..., BICUBIC).
Image resize_bicubic(const Image& img, int width, int height);
// Crop the rectangle with top-left (left, top) and size (width, height); must lie inside.
Image crop(const Image& img, int left, int top, int width, int height);
// Mirror left-right.
Image hflip(const Image& img);

// torchvision Resize(size) (short side -> size, long side -> int(size * long / short)) with
// PIL bicubic, then CenterCrop(size) (top = round((h - size) / 2), half to even as Python).
Image resize_short_side_center_crop(const Image& img, int size);
// uint8 RGB (size, size) -> out: (3, size, size), (x / 255 - mean[c]) / std[c] in float32.
void normalize_clip(const Image& img_size_x_size, float* out);
// resize_short_side_center_crop + normalize_clip. out: (3, size, size).
void preprocess_clip(const Image& img, int size, float* out);

// Training augmentation. Defaults: open_clip's RandomResizedCrop(scale=(0.9, 1.0)), no flip.
struct AugmentOptions {
    double scale_min = 0.9, scale_max = 1.0;
    double ratio_min = 3.0 / 4, ratio_max = 4.0 / 3;
    bool hflip = false;   // flip left-right with probability 0.5
};

// A crop rectangle: rows [top, top + height), columns [left, left + width).
struct CropBox {
    int top = 0, left = 0, height = 0, width = 0;
};

// torchvision RandomResizedCrop.get_params for an image of (width, height): up to 10 attempts of
// area ~ U(scale) * W * H and log-aspect ~ U(log ratio), each drawn as a float32 uniform like
// torch.empty(1).uniform_; a fitting (w, h) is placed with two randint draws (top, then left);
// after 10 misses, the center crop clamped to the ratio range. With a Generator seeded like
// torch.manual_seed, the draws are torch's; the log/exp are done in double (torch uses float32
// tensors), which can move a rounding boundary in rare cases.
CropBox random_resized_crop_params(int width, int height, const AugmentOptions& opt, Generator& gen);

// random_resized_crop_params, crop, bicubic resize to (size, size), then (opt.hflip) one draw
// u ~ U[0,1) float32 and a flip when u < 0.5, then normalize_clip. out: (3, size, size).
// Deterministic for a given generator state; consumes a variable number of draws.
void augment_clip(const Image& img, int size, const AugmentOptions& opt, Generator& gen, float* out);

}  // namespace rankclip
