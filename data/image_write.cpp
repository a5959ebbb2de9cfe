// data/image_write.cpp
// defines: the encoders of data/image_write.h, on stb_image_write (its implementation is
// compiled here; with -DRANKCLIP_LIBSTB, Debian's libstb provides it instead: link -lstb).
#include "data/image_write.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engine/atomic_file.h"
#include "engine/error.h"

#ifndef RANKCLIP_LIBSTB
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO   // files are written by write_file_bytes, to name them in errors
#endif
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace rankclip {

namespace {

void append_bytes(void* ctx, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(ctx);
    const uint8_t* p = static_cast<const uint8_t*>(data);
    out->insert(out->end(), p, p + size);
}

void check_rgb(const Image& img, const char* op) {
    RC_CHECK(img.width > 0 && img.height > 0 &&
                 img.rgb.size() == size_t(img.width) * img.height * 3,
             op, ": bad image ", img.width, "x", img.height, " with ", img.rgb.size(), " bytes");
}

}  // namespace

std::vector<uint8_t> encode_pixels(const std::string& format, int width, int height, int channels,
                                   const uint8_t* pixels, int jpeg_quality) {
    RC_CHECK(width > 0 && height > 0 && channels >= 1 && channels <= 4 && pixels,
             "encode_", format, ": bad image ", width, "x", height, "x", channels);
    std::vector<uint8_t> out;
    int ok = 0;
    if (format == "png") {
        ok = stbi_write_png_to_func(append_bytes, &out, width, height, channels, pixels,
                                    width * channels);
    } else if (format == "jpg" || format == "jpeg") {
        RC_CHECK(jpeg_quality >= 1 && jpeg_quality <= 100, "encode_jpeg: quality must be in 1..100, got ",
                 jpeg_quality);
        ok = stbi_write_jpg_to_func(append_bytes, &out, width, height, channels, pixels, jpeg_quality);
    } else if (format == "bmp") {
        ok = stbi_write_bmp_to_func(append_bytes, &out, width, height, channels, pixels);
    } else if (format == "tga") {
        ok = stbi_write_tga_to_func(append_bytes, &out, width, height, channels, pixels);
    } else {
        RC_CHECK(false, "encode_pixels: unknown format '", format, "' (png, jpg, bmp, tga)");
    }
    RC_CHECK(ok && !out.empty(), "encode_", format, ": stb_image_write failed for ", width, "x",
             height, "x", channels);
    return out;
}

std::vector<uint8_t> encode_png(const Image& img) {
    check_rgb(img, "encode_png");
    return encode_pixels("png", img.width, img.height, 3, img.rgb.data());
}

std::vector<uint8_t> encode_jpeg(const Image& img, int quality) {
    check_rgb(img, "encode_jpeg");
    return encode_pixels("jpg", img.width, img.height, 3, img.rgb.data(), quality);
}

std::vector<uint8_t> encode_bmp(const Image& img) {
    check_rgb(img, "encode_bmp");
    return encode_pixels("bmp", img.width, img.height, 3, img.rgb.data());
}

std::vector<uint8_t> encode_tga(const Image& img) {
    check_rgb(img, "encode_tga");
    return encode_pixels("tga", img.width, img.height, 3, img.rgb.data());
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void write_png(const std::string& path, const Image& img) { write_file_bytes(path, encode_png(img)); }

void write_jpeg(const std::string& path, const Image& img, int quality) {
    write_file_bytes(path, encode_jpeg(img, quality));
}

}  // namespace rankclip
