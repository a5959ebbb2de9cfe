// data/image_write.h
// defines: encoding RGB8 Images as PNG / JPEG / BMP / TGA with stb_image_write (compiled into
// data/image_write.cpp), for the synthetic dataset writer and the tests.
// Every failure is a rankclip::Error naming the path (or the op, for in-memory encoding).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace rankclip {

// Encoded file bytes. quality: 1..100 (stb's JPEG is baseline, 4:2:0 below quality 90).
std::vector<uint8_t> encode_png(const Image& img);
std::vector<uint8_t> encode_jpeg(const Image& img, int quality = 90);
std::vector<uint8_t> encode_bmp(const Image& img);
std::vector<uint8_t> encode_tga(const Image& img);   // RLE-compressed, as stb writes it

// Encode and write to `path` (overwritten).
void write_png(const std::string& path, const Image& img);
void write_jpeg(const std::string& path, const Image& img, int quality = 90);

// Write raw bytes to `path`.
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

// Encode raw pixels with 1..4 channels (gray, gray+alpha, RGB, RGBA), row-major HWC; `format` is
// "png", "jpg", "bmp" or "tga". For tests that need gray or alpha inputs.
std::vector<uint8_t> encode_pixels(const std::string& format, int width, int height, int channels,
                                   const uint8_t* pixels, int jpeg_quality = 90);

}  // namespace rankclip
