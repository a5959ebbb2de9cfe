// data/image.cpp
// defines: image decoding (stb_image, compiled into this file), PIL-exact bicubic resampling,
// CLIP preprocessing and the random-resized-crop augmentation declared in data/image.h.
// Debian's libstb-dev also ships libstb.so with stb_image compiled in: build with
// -DRANKCLIP_LIBSTB and link -lstb to use it instead of the copy compiled here.
#include "data/image.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "engine/error.h"

#ifndef RANKCLIP_LIBSTB
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO          // we read files ourselves, to name them in errors
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
#endif
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace rankclip {

const float kClipMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float kClipStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};

// ---- decoding ----

namespace {

// stb_image reads zeros past the end of the data instead of failing for several formats, so a
// truncated file would decode into a partly blank image. These checks find the end of the pixel
// data from the headers and return why the file is incomplete or unsafe to hand to stb ("" when
// it is fine, or when the format is none of these: PNG's zlib stream already fails when cut).
uint32_t le16(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8; }
uint32_t le32(const uint8_t* p) { return le16(p) | le16(p + 2) << 16; }
uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// JPEG: walk the marker segments the way stb_image reads them (junk between segments skipped,
// entropy-coded data scanned to the next marker that is not a stuffed 00 or a restart), so that
//   - a file whose last scan has no end-of-image marker (FF D9) after it counts as truncated;
//   - every Huffman table is checked before stb sees it: this stb_image version (Debian's
//     2022-09 snapshot) writes past its 257-entry code-size array when a DHT table declares more
//     than 256 codes, a heap overflow on a crafted file (fixed upstream in 2023);
//   - every scan uses only Huffman tables the file defined before it: stb does not clear its
//     tables, so a scan naming an undefined one decodes with whatever the memory held (an
//     assertion inside stb, or reads out of its tables; found by fuzz_image).
// The offset just past a JPEG's start-of-image marker, or 0 when the data is not a JPEG. Like
// stb_image, which skips 0xFF fill bytes before every marker, FF FF .. FF D8 counts as the marker
// (a file starting so was once decoded by stb without the checks below).
size_t jpeg_start(const uint8_t* d, size_t n) {
    if (n < 2 || d[0] != 0xFF) return 0;
    size_t i = 1;
    while (i < n && d[i] == 0xFF) i++;
    return i < n && d[i] == 0xD8 ? i + 1 : 0;
}

// `start`: the offset after the start-of-image marker (jpeg_start).
std::string jpeg_problem(const uint8_t* d, size_t n, size_t start) {
    const char* cut = "truncated JPEG (no end-of-image marker after the last scan)";
    bool seen_scan = false, progressive = false;
    bool defined[2][4] = {};   // Huffman tables: [DC, AC][id]
    size_t i = start;
    for (;;) {
        while (i < n && d[i] != 0xFF) i++;   // junk, or entropy-coded data
        while (i < n && d[i] == 0xFF) i++;   // fill bytes
        if (i >= n) return cut;
        const uint8_t m = d[i++];
        if (m == 0xD9) return seen_scan ? "" : "corrupt JPEG (end of image before any scan)";
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;   // no length field
        if (i + 2 > n) return cut;
        const size_t len = size_t(d[i]) << 8 | d[i + 1];
        if (len < 2) return "corrupt JPEG (segment length < 2)";
        if (i + len > n) return cut;
        if (m == 0xC4) {   // DHT: tables of (class/id, 16 code counts, symbols)
            size_t p = i + 2;
            while (p < i + len) {
                if (p + 17 > i + len) return "corrupt JPEG (bad Huffman table header)";
                size_t codes = 0;
                for (int k = 1; k <= 16; k++) codes += d[p + k];
                if (codes > 256) return "corrupt JPEG (Huffman table with more than 256 codes)";
                if ((d[p] >> 4) <= 1 && (d[p] & 15) <= 3) defined[d[p] >> 4][d[p] & 15] = true;  // else stb refuses it
                p += 17 + codes;
            }
        }
        if (m == 0xC2) progressive = true;
        if (m == 0xDA && len >= 3) {   // SOS: components (id, DC table << 4 | AC table), Ss, Se, Ah << 4 | Al
            const size_t ns = d[i + 2];
            if (len >= 6 + 2 * ns) {   // else stb refuses the segment
                const uint8_t ss = d[i + 3 + 2 * ns], ah = d[i + 5 + 2 * ns] >> 4;
                // progressive: the first DC scan codes with DC tables, AC scans with AC tables
                const bool dc = !progressive || (ss == 0 && ah == 0), ac = !progressive || ss > 0;
                for (size_t c = 0; c < ns; c++) {
                    const int td = d[i + 4 + 2 * c] >> 4, ta = d[i + 4 + 2 * c] & 15;
                    if ((dc && td <= 3 && !defined[0][td]) || (ac && ta <= 3 && !defined[1][ta]))
                        return "corrupt JPEG (a scan uses a Huffman table the file does not define)";
                }
            }
        }
        if (m == 0xDA) seen_scan = true;
        i += len;
    }
}

// GIF: walk the blocks up to the end of the first image's LZW data (the frame we decode); a file
// with no image block before its trailer or an unknown block is refused here, as stb would refuse it.
std::string gif_truncation(const uint8_t* d, size_t n) {
    const char* cut = "truncated GIF (the first frame's data is incomplete)";
    size_t i = 13;   // header (6) + logical screen descriptor (7)
    if (n < i) return cut;
    if (d[10] & 0x80) i += 3u << ((d[10] & 7) + 1);   // global colour table
    auto skip_sub_blocks = [&](size_t& p) {
        while (p < n && d[p] != 0) p += 1 + d[p];
        if (p >= n) return false;
        p++;   // the 0 terminator
        return true;
    };
    while (i < n) {
        if (d[i] == 0x21) {          // extension: label, then sub-blocks
            i += 2;
            if (!skip_sub_blocks(i)) return cut;
        } else if (d[i] == 0x2C) {   // image descriptor (10), local colour table, LZW code size
            if (i + 10 > n) return cut;
            const uint8_t packed = d[i + 9];
            i += 10;
            if (packed & 0x80) i += 3u << ((packed & 7) + 1);
            i += 1;
            return i <= n && skip_sub_blocks(i) ? "" : cut;
        } else {
            // Trailer or junk before any image: stb refuses it too, but only after allocating and
            // clearing the whole canvas (a 23-byte file declaring 7741x5120 took 1.4 s under ASan)
            return d[i] == 0x3B ? str_cat("corrupt GIF (the trailer at byte ", i, " comes before any image)")
                                : str_cat("corrupt GIF (unknown block type ", int(d[i]), " at byte ", i,
                                          " before the first image)");
        }
    }
    return cut;
}

// BMP (uncompressed or bit-field layouts): pixel rows start at the header's offset.
std::string bmp_truncation(const uint8_t* d, size_t n, int w, int h) {
    if (n < 30) return "truncated BMP header";
    const uint32_t offset = le32(d + 10), hsize = le32(d + 14);
    const uint32_t bpp = hsize == 12 ? le16(d + 24) : le16(d + 28);
    // stb reads the field as a signed int and rejects 1, 2 (RLE) and 4 and up (JPEG, PNG, ...); it
    // decodes everything else as uncompressed or bit fields, negative values too (a 54-byte file
    // with 0xffff0000 there decoded to a 13 MP image from zeros read past its end, found by fuzz_image)
    const int32_t compression = hsize == 12 || n < 34 ? 0 : int32_t(le32(d + 30));
    if (compression == 1 || compression == 2 || compression >= 4) return "";   // stb refuses it
    const uint64_t stride = (uint64_t(w) * bpp + 31) / 32 * 4;
    const uint64_t need = offset + stride * (h - 1) + (uint64_t(w) * bpp + 7) / 8;   // last row unpadded
    return need <= n ? "" : "truncated BMP (pixel data ends early)";
}

// TGA: raw pixels, or run-length packets walked to the last pixel.
std::string tga_truncation(const uint8_t* d, size_t n, int w, int h) {
    if (n < 18) return "truncated TGA header";
    const int type = d[2];
    size_t i = 18 + d[0];                                      // header + image id
    if (d[1] == 1) i += size_t(le16(d + 5)) * ((d[7] + 7) / 8);   // colour map
    const size_t bytes_pp = (d[16] + 7) / 8;
    const uint64_t pixels = uint64_t(w) * h;
    const char* cut = "truncated TGA (pixel data ends early)";
    if (type >= 1 && type <= 3) return i + pixels * bytes_pp <= n ? "" : cut;
    uint64_t done = 0;
    while (done < pixels) {
        if (i >= n) return cut;
        const uint8_t head = d[i++];
        const uint64_t count = (head & 0x7F) + 1;
        i += (head & 0x80) ? bytes_pp : count * bytes_pp;
        done += count;
    }
    return i <= n ? "" : cut;
}

// PNG: walk the chunks to IEND, listing each (when `chunks` is given). stb_image trusts an IDAT
// chunk's length and grows its buffer to hold it before reading (a 100-byte file declaring a 1 GB
// chunk made it allocate 1 GB), so every chunk must lie inside the file; the first that does not,
// or a file that ends before IEND, is the returned problem.
struct PngChunk {
    size_t at;        // offset of its length field
    uint32_t length;  // of its data (the chunk is 12 bytes longer: length, type, CRC)
    std::string type; // printable (other bytes as '?')
};
std::string png_truncation(const uint8_t* d, size_t n, std::vector<PngChunk>* chunks = nullptr) {
    for (size_t i = 8;;) {   // after the signature
        if (n - i < 12) return str_cat("truncated PNG (the file ends at byte ", n, " before its IEND chunk)");
        const uint32_t length = be32(d + i);
        std::string type(reinterpret_cast<const char*>(d + i + 4), 4);
        for (char& c : type)
            if (c < 0x20 || c > 0x7E) c = '?';
        if (length > uint32_t(INT32_MAX) || length > n - i - 12)
            return str_cat("truncated PNG (chunk '", type, "' at byte ", i, " declares ", length,
                           " bytes, past the end of the file at byte ", n, ")");
        if (chunks) chunks->push_back({i, length, type});
        if (type == "IEND") return "";
        i += 12 + size_t(length);
    }
}

// The same PNG without its empty IDAT chunks, which carry no data (empty when it has none):
// stb_image copies an empty first IDAT chunk with memcpy(NULL, p, 0), undefined behaviour by the
// letter of the C standard (a UBSan report found by fuzz_image). stb does not check CRCs, so
// dropping whole chunks is safe. Runs after png_truncation found no problem.
std::vector<uint8_t> without_empty_idat(const uint8_t* d, size_t n) {
    std::vector<PngChunk> chunks;
    png_truncation(d, n, &chunks);
    auto empty_idat = [](const PngChunk& c) { return c.length == 0 && c.type == "IDAT"; };
    if (std::none_of(chunks.begin(), chunks.end(), empty_idat)) return {};
    std::vector<uint8_t> out(d, d + 8);
    for (const PngChunk& c : chunks)
        if (!empty_idat(c)) out.insert(out.end(), d + c.at, d + c.at + 12 + size_t(c.length));
    return out;
}

bool is_png(const uint8_t* d, size_t n) { return n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0; }

// The other formats (JPEG is checked by jpeg_problem before stb reads its header).
std::string file_problem(const uint8_t* d, size_t n, int w, int h) {
    if (n >= 6 && std::memcmp(d, "GIF8", 4) == 0) return gif_truncation(d, n);
    if (n >= 2 && d[0] == 'B' && d[1] == 'M') return bmp_truncation(d, n, w, h);
    if (is_png(d, n)) return png_truncation(d, n);
    // TGA has no signature: recognise stb's accepted header fields and the size stbi_info read
    // (stb reads zeros past the end, so a header cut after its size fields, under 18 bytes, is a TGA
    // too: a 17-byte file decoded to an 82 MP blank image, found by fuzz_image)
    if (n >= 16 && d[1] <= 1 && (d[2] == 1 || d[2] == 2 || d[2] == 3 || d[2] == 9 || d[2] == 10 ||
                                 d[2] == 11) && int(le16(d + 12)) == w && int(le16(d + 14)) == h)
        return tga_truncation(d, n, w, h);
    return "";
}

}  // namespace

Image decode_image_memory(const uint8_t* data, size_t size, const std::string& name) {
    RC_CHECK(size > 0, "decode_image: ", name, ": empty file");
    RC_CHECK(size <= size_t(INT32_MAX), "decode_image: ", name, ": file too large (", size, " bytes)");
    const int len = static_cast<int>(size);
    // JPEG's structure is checked before stb reads any of it (its header scan already builds
    // Huffman tables); the other formats' checks need the size from the header
    const size_t jpeg_data = jpeg_start(data, size);
    const bool jpeg = jpeg_data != 0;
    if (jpeg) {
        const std::string bad = jpeg_problem(data, size, jpeg_data);
        RC_CHECK(bad.empty(), "decode_image: ", name, ": ", bad);
    }
    int w = 0, h = 0, comp = 0;
    // header only: refuse huge images before allocating anything
    if (!stbi_info_from_memory(data, len, &w, &h, &comp)) {
        // stb refuses a header beyond its own limits without saying so: name a PNG's declared size
        const bool png = size >= 24 && is_png(data, size);
        const uint32_t pw = png ? be32(data + 16) : 0, ph = png ? be32(data + 20) : 0;
        RC_CHECK(!png || (pw <= uint32_t(kMaxImageSide) && ph <= uint32_t(kMaxImageSide)), "decode_image: ", name,
                 ": the PNG header declares ", pw, "x", ph, " px, larger than the limit of ", kMaxImageSide,
                 " px per side");
        throw Error(str_cat("decode_image: ", name, ": cannot read the image header (", stbi_failure_reason(),
                            "; PNG, JPEG, BMP, GIF, TGA and PPM are read)"));
    }
    RC_CHECK(w > 0 && h > 0 && w <= kMaxImageSide && h <= kMaxImageSide &&
                 int64_t(w) * h <= kMaxImagePixels,
             "decode_image: ", name, ": image is ", w, "x", h, ", larger than the limit of ",
             kMaxImageSide, " px per side / ", (kMaxImagePixels >> 20), " MP");
    const int bytes_per_channel = stbi_is_16_bit_from_memory(data, len) ? 2 : 1;
    const int64_t decode_bytes = int64_t(w) * h * (2 * int64_t(comp) * bytes_per_channel + 3);
    RC_CHECK(decode_bytes <= kMaxDecodeBytes, "decode_image: ", name, ": a ", w, "x", h, " image with ", comp,
             " channel(s) of ", 8 * bytes_per_channel, " bits needs about ", decode_bytes >> 20,
             " MiB to decode, more than the limit of ", kMaxDecodeBytes >> 20, " MiB");
    const std::string cut = jpeg ? "" : file_problem(data, size, w, h);
    RC_CHECK(cut.empty(), "decode_image: ", name, ": ", cut);
    std::vector<uint8_t> png_copy;
    if (is_png(data, size)) png_copy = without_empty_idat(data, size);
    const uint8_t* stb_data = png_copy.empty() ? data : png_copy.data();
    const int stb_len = png_copy.empty() ? len : int(png_copy.size());
    int dw = 0, dh = 0, dc = 0;
    std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(stb_data, stb_len, &dw, &dh, &dc, 3),
                                                 stbi_image_free);
    RC_CHECK(px != nullptr, "decode_image: ", name, ": corrupt or unsupported image (",
             stbi_failure_reason(), ")");
    RC_CHECK(dw == w && dh == h, "decode_image: ", name, ": header says ", w, "x", h,
             " but decoded ", dw, "x", dh);
    Image img;
    img.width = w;
    img.height = h;
    img.rgb.assign(px.get(), px.get() + size_t(w) * h * 3);
    return img;
}

Image decode_image_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    RC_CHECK(f != nullptr, "decode_image: cannot open ", path, ": ", std::strerror(errno));
    std::vector<uint8_t> bytes;
    uint8_t buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
    const bool failed = std::ferror(f);
    std::fclose(f);
    RC_CHECK(!failed, "decode_image: read error on ", path);
    return decode_image_memory(bytes.data(), bytes.size(), path);
}

// ---- PIL-exact bicubic resampling (Pillow's Resample.c, 8-bit path) ----

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;   // Pillow's fixed-point fraction bits (22)

double bicubic_kernel(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// For each output position o: the first input index bounds[2o], the tap count bounds[2o+1] and
// ksize fixed-point weights k[o * ksize ..]. Input [0, in_size) maps onto output [0, out_size).
struct Taps {
    int ksize = 0;
    std::vector<int> bounds;
    std::vector<int32_t> k;
};

Taps bicubic_taps(int in_size, int out_size) {
    const double support_1 = 2.0;                  // the kernel's support at scale 1
    const double scale = double(in_size) / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;   // widen only when shrinking
    const double support = support_1 * filterscale;
    Taps t;
    t.ksize = int(std::ceil(support)) * 2 + 1;
    t.bounds.resize(size_t(out_size) * 2);
    t.k.assign(size_t(out_size) * t.ksize, 0);
    std::vector<double> w(t.ksize);
    for (int o = 0; o < out_size; o++) {
        const double center = (o + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int xmin = int(center - support + 0.5);   // truncation, as Pillow's (int) cast
        if (xmin < 0) xmin = 0;
        int xmax = int(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = bicubic_kernel((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            const double v = ww != 0.0 ? w[x] / ww : w[x];
            t.k[size_t(o) * t.ksize + x] =
                int32_t(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
        }
        t.bounds[2 * o] = xmin;
        t.bounds[2 * o + 1] = xmax;
    }
    return t;
}

inline uint8_t clip8(int64_t acc) {
    const int64_t v = acc >> kPrecisionBits;   // arithmetic shift: floor, as Pillow
    return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

// src: (rows, in_w, 3) -> dst: (rows, out_w, 3)
void resample_rows(const uint8_t* src, int in_w, int rows, uint8_t* dst, int out_w, const Taps& t) {
    for (int y = 0; y < rows; y++) {
        const uint8_t* s = src + size_t(y) * in_w * 3;
        uint8_t* d = dst + size_t(y) * out_w * 3;
        for (int o = 0; o < out_w; o++) {
            const int xmin = t.bounds[2 * o], n = t.bounds[2 * o + 1];
            const int32_t* k = &t.k[size_t(o) * t.ksize];
            int64_t a0 = 1 << (kPrecisionBits - 1), a1 = a0, a2 = a0;
            for (int x = 0; x < n; x++) {
                const uint8_t* p = s + size_t(xmin + x) * 3;
                a0 += p[0] * int64_t(k[x]);
                a1 += p[1] * int64_t(k[x]);
                a2 += p[2] * int64_t(k[x]);
            }
            d[o * 3 + 0] = clip8(a0);
            d[o * 3 + 1] = clip8(a1);
            d[o * 3 + 2] = clip8(a2);
        }
    }
}

// src: (in_h, w, 3) -> dst: (out_h, w, 3); src row r is input row (row0 + r).
void resample_cols(const uint8_t* src, int w, int row0, uint8_t* dst, int out_h, const Taps& t) {
    const size_t stride = size_t(w) * 3;
    std::vector<int64_t> acc(stride);
    for (int o = 0; o < out_h; o++) {
        const int ymin = t.bounds[2 * o] - row0, n = t.bounds[2 * o + 1];
        const int32_t* k = &t.k[size_t(o) * t.ksize];
        std::fill(acc.begin(), acc.end(), int64_t(1) << (kPrecisionBits - 1));
        for (int y = 0; y < n; y++) {
            const uint8_t* s = src + size_t(ymin + y) * stride;
            const int64_t ky = k[y];
            for (size_t i = 0; i < stride; i++) acc[i] += s[i] * ky;
        }
        uint8_t* d = dst + size_t(o) * stride;
        for (size_t i = 0; i < stride; i++) d[i] = clip8(acc[i]);
    }
}

void check_image(const Image& img, const char* op) {
    RC_CHECK(img.width > 0 && img.height > 0 &&
                 img.rgb.size() == size_t(img.width) * img.height * 3,
             op, ": bad image ", img.width, "x", img.height, " with ", img.rgb.size(), " bytes");
}

}  // namespace

Image resize_bicubic(const Image& img, int width, int height) {
    check_image(img, "resize_bicubic");
    RC_CHECK(width > 0 && height > 0, "resize_bicubic: bad target size ", width, "x", height);
    if (width == img.width && height == img.height) return img;
    const Taps th = bicubic_taps(img.width, width);
    const Taps tv = bicubic_taps(img.height, height);
    // horizontal pass first, over the input rows the vertical pass will read
    const bool same_h = height == img.height;
    const int row_first = same_h ? 0 : tv.bounds[0];
    const int row_last = same_h ? height : tv.bounds[2 * (height - 1)] + tv.bounds[2 * (height - 1) + 1];
    const uint8_t* mid = img.rgb.data();
    int mid_row0 = 0;
    std::vector<uint8_t> tmp;
    if (width != img.width) {
        tmp.resize(size_t(row_last - row_first) * width * 3);
        resample_rows(img.rgb.data() + size_t(row_first) * img.width * 3, img.width,
                      row_last - row_first, tmp.data(), width, th);
        mid = tmp.data();
        mid_row0 = row_first;
    }
    Image out;
    out.width = width;
    out.height = height;
    if (!same_h) {
        out.rgb.resize(size_t(width) * height * 3);
        resample_cols(mid, width, mid_row0, out.rgb.data(), height, tv);
    } else {
        out.rgb = std::move(tmp);   // width changed, height did not: rows [0, height) all used
    }
    return out;
}

Image crop(const Image& img, int left, int top, int width, int height) {
    check_image(img, "crop");
    RC_CHECK(left >= 0 && top >= 0 && width > 0 && height > 0 && left + width <= img.width &&
                 top + height <= img.height,
             "crop: box (left ", left, ", top ", top, ", ", width, "x", height,
             ") outside the ", img.width, "x", img.height, " image");
    Image out;
    out.width = width;
    out.height = height;
    out.rgb.resize(size_t(width) * height * 3);
    for (int y = 0; y < height; y++)
        std::memcpy(&out.rgb[size_t(y) * width * 3],
                    &img.rgb[(size_t(top + y) * img.width + left) * 3], size_t(width) * 3);
    return out;
}

Image hflip(const Image& img) {
    check_image(img, "hflip");
    Image out = img;
    for (int y = 0; y < img.height; y++)
        for (int x = 0; x < img.width; x++)
            std::memcpy(&out.rgb[(size_t(y) * img.width + x) * 3],
                        &img.rgb[(size_t(y) * img.width + (img.width - 1 - x)) * 3], 3);
    return out;
}

// ---- CLIP preprocessing ----

Image resize_short_side_center_crop(const Image& img, int size) {
    check_image(img, "resize_short_side_center_crop");
    RC_CHECK(size > 0, "resize_short_side_center_crop: bad size ", size);
    // torchvision Resize(size): short side -> size, long side -> int(size * long / short)
    const int w = img.width, h = img.height;
    const int shortside = std::min(w, h), longside = std::max(w, h);
    const int new_long = int(double(int64_t(size) * longside) / shortside);
    const int new_w = w <= h ? size : new_long;
    const int new_h = w <= h ? new_long : size;
    Image r = resize_bicubic(img, new_w, new_h);
    // torchvision CenterCrop: Python's round() (half to even) of the margin halves
    const int top = int(std::nearbyint((new_h - size) / 2.0));
    const int left = int(std::nearbyint((new_w - size) / 2.0));
    if (new_w == size && new_h == size) return r;
    return crop(r, left, top, size, size);
}

void normalize_clip(const Image& img, float* out) {
    check_image(img, "normalize_clip");
    const size_t hw = size_t(img.width) * img.height;
    for (int c = 0; c < 3; c++) {
        float* o = out + c * hw;
        for (size_t i = 0; i < hw; i++) {
            // ToTensor then Normalize, both float32: (x / 255 - mean) / std
            const float x = float(img.rgb[i * 3 + c]) / 255.0f;
            o[i] = (x - kClipMean[c]) / kClipStd[c];
        }
    }
}

void preprocess_clip(const Image& img, int size, float* out) {
    normalize_clip(resize_short_side_center_crop(img, size), out);
}

// ---- augmentation ----

CropBox random_resized_crop_params(int width, int height, const AugmentOptions& opt, Generator& gen) {
    RC_CHECK(width > 0 && height > 0, "random_resized_crop: bad image size ", width, "x", height);
    RC_CHECK(0 < opt.scale_min && opt.scale_min <= opt.scale_max && 0 < opt.ratio_min &&
                 opt.ratio_min <= opt.ratio_max,
             "random_resized_crop: bad options scale (", opt.scale_min, ", ", opt.scale_max,
             ") ratio (", opt.ratio_min, ", ", opt.ratio_max, ")");
    const double area = double(width) * height;
    const double log_rmin = std::log(opt.ratio_min), log_rmax = std::log(opt.ratio_max);
    for (int attempt = 0; attempt < 10; attempt++) {
        float u;
        gen.fill_uniform(&u, 1, opt.scale_min, opt.scale_max);
        const double target_area = area * double(u);
        gen.fill_uniform(&u, 1, log_rmin, log_rmax);
        const double aspect = std::exp(double(u));
        const int w = int(std::nearbyint(std::sqrt(target_area * aspect)));
        const int h = int(std::nearbyint(std::sqrt(target_area / aspect)));
        if (0 < w && w <= width && 0 < h && h <= height) {
            int64_t top, left;
            gen.fill_randint(&top, 1, 0, height - h + 1);
            gen.fill_randint(&left, 1, 0, width - w + 1);
            return CropBox{int(top), int(left), h, w};
        }
    }
    // fallback: the central crop, clamped to the ratio range
    const double in_ratio = double(width) / height;
    int w = width, h = height;
    if (in_ratio < opt.ratio_min) h = int(std::nearbyint(w / opt.ratio_min));
    else if (in_ratio > opt.ratio_max) w = int(std::nearbyint(h * opt.ratio_max));
    return CropBox{(height - h) / 2, (width - w) / 2, h, w};
}

void augment_clip(const Image& img, int size, const AugmentOptions& opt, Generator& gen, float* out) {
    check_image(img, "augment_clip");
    RC_CHECK(size > 0, "augment_clip: bad size ", size);
    const CropBox b = random_resized_crop_params(img.width, img.height, opt, gen);
    Image r = resize_bicubic(crop(img, b.left, b.top, b.width, b.height), size, size);
    if (opt.hflip) {
        float u;
        gen.fill_uniform(&u, 1, 0.0, 1.0);
        if (u < 0.5f) r = hflip(r);
    }
    normalize_clip(r, out);
}

}  // namespace rankclip
