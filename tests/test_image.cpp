// tests/test_image.cpp
// Tests data/image.h and data/image_write.h: decoding of every supported format and variant
// (files written here with stb_image_write or hand-built PNG bytes, plus the GIF and progressive
// JPEG in tests/ref/images/ written by tools/gen_image_refs.py, plus real files from Debian
// packages when installed, compared with Pillow's decoding of them recorded in
// tests/ref/real_images.json by tools/gen_real_image_refs.py), errors for truncated/corrupt/huge
// files, CLIP preprocessing and the augmentation against Pillow 9.4 + torch references
// (tests/ref/image_preprocess.safetensors).
// Tolerance against PIL: exact for preprocessing, PNG and GIF decoding. The resized uint8 pixels
// must be identical and the normalised floats bit-identical (same float32 arithmetic); no known
// difference from PIL's bicubic. JPEG decoding is compared by tolerance (stb_image and
// libjpeg-turbo round colour conversion and upsampling differently: a few units in a few pixels).
// Known difference: a GIF's transparent pixels are black from stb_image, the palette colour of the
// transparent index from Pillow (RealFilesMatchPil records it).
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/image_write.h"
#include "engine/error.h"
#include "engine/json.h"
#include "engine/safetensors.h"
#include "test_util.h"

using namespace rankclip;
using rankclip::test::error_of;
using rankclip::test::TempDir;

namespace {

// ---- test patterns: must match pattern() in tools/gen_image_refs.py ----

uint32_t hash32(uint32_t v) {
    v ^= v >> 16;
    v *= 0x7FEB352Du;
    v ^= v >> 15;
    v *= 0x846CA68Bu;
    v ^= v >> 16;
    return v;
}

enum Kind { kNoise = 0, kSmooth = 1, kBlocks = 2 };

Image pattern(int kind, int w, int h) {
    Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(size_t(w) * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                int v = 0;
                if (kind == kNoise) {
                    v = hash32(uint32_t((uint64_t(y) * w + x) * 3 + c)) & 255;
                } else if (kind == kSmooth) {
                    v = c == 0 ? x * 255 / std::max(w - 1, 1)
                      : c == 1 ? y * 255 / std::max(h - 1, 1)
                               : (x + y) * 255 / std::max(w + h - 2, 1);
                } else {
                    uint64_t block = uint64_t(y / 6) * 1000 + x / 6;
                    v = hash32(uint32_t(block * 3 + c + 12345)) & 255;
                }
                img.rgb[(size_t(y) * w + x) * 3 + c] = uint8_t(v);
            }
    return img;
}

std::string ref_path(const std::string& name) { return rankclip::test::repo_root() + "/tests/ref/" + name; }

// mean and max |a - b| over all bytes
void diff_stats(const Image& a, const Image& b, double* mean, int* max) {
    ASSERT_EQ(a.width, b.width);
    ASSERT_EQ(a.height, b.height);
    double sum = 0;
    *max = 0;
    for (size_t i = 0; i < a.rgb.size(); i++) {
        int d = std::abs(int(a.rgb[i]) - int(b.rgb[i]));
        sum += d;
        *max = std::max(*max, d);
    }
    *mean = sum / a.rgb.size();
}

void expect_same_image(const Image& got, const Image& want, const std::string& what) {
    ASSERT_EQ(got.width, want.width) << what;
    ASSERT_EQ(got.height, want.height) << what;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < got.rgb.size(); i++)
        if (got.rgb[i] != want.rgb[i] && bad++ == 0) first = i;
    EXPECT_EQ(bad, 0u) << what << ": " << bad << " bytes differ, first at byte " << first << " (got "
                       << int(got.rgb[first]) << ", want " << int(want.rgb[first]) << ")";
}

// ---- a minimal PNG writer for the variants stb_image_write cannot produce ----

void put_u32(std::vector<uint8_t>& o, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) o.push_back(uint8_t(v >> s));
}

void put_chunk(std::vector<uint8_t>& png, const char* type, const std::vector<uint8_t>& data) {
    put_u32(png, uint32_t(data.size()));
    std::vector<uint8_t> body(type, type + 4);
    body.insert(body.end(), data.begin(), data.end());
    png.insert(png.end(), body.begin(), body.end());
    put_u32(png, uint32_t(crc32(0, body.data(), uInt(body.size()))));
}

// rows: the unfiltered scanline bytes of each row (filter type 0 is prepended here).
std::vector<uint8_t> make_png(int w, int h, int bit_depth, int color_type,
                              const std::vector<std::vector<uint8_t>>& rows,
                              const std::vector<uint8_t>& plte = {}, const std::vector<uint8_t>& trns = {}) {
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    std::vector<uint8_t> ihdr;
    put_u32(ihdr, uint32_t(w));
    put_u32(ihdr, uint32_t(h));
    ihdr.insert(ihdr.end(), {uint8_t(bit_depth), uint8_t(color_type), 0, 0, 0});
    put_chunk(png, "IHDR", ihdr);
    if (!plte.empty()) put_chunk(png, "PLTE", plte);
    if (!trns.empty()) put_chunk(png, "tRNS", trns);
    std::vector<uint8_t> raw;
    for (const auto& r : rows) {
        raw.push_back(0);
        raw.insert(raw.end(), r.begin(), r.end());
    }
    uLongf zlen = compressBound(uLong(raw.size()));
    std::vector<uint8_t> z(zlen);
    EXPECT_EQ(compress(z.data(), &zlen, raw.data(), uLong(raw.size())), Z_OK);
    z.resize(zlen);
    put_chunk(png, "IDAT", z);
    put_chunk(png, "IEND", {});
    return png;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::vector<uint8_t> b;
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error("cannot open " + path);
    int c;
    while ((c = std::fgetc(f)) != EOF) b.push_back(uint8_t(c));
    std::fclose(f);
    return b;
}

Image decode(const std::vector<uint8_t>& bytes, const std::string& name) {
    return decode_image_memory(bytes.data(), bytes.size(), name);
}

}  // namespace

// ---- decoding: files stb_image_write produces ----

TEST(ImageDecode, StbWrittenFormatsRoundTrip) {
    TempDir dir("rankclip_image");
    const Image src = pattern(kNoise, 37, 23);
    // lossless formats: exact
    write_png(dir.file("a.png"), src);
    expect_same_image(decode_image_file(dir.file("a.png")), src, "PNG RGB8");
    write_file_bytes(dir.file("a.bmp"), encode_bmp(src));
    expect_same_image(decode_image_file(dir.file("a.bmp")), src, "BMP");
    write_file_bytes(dir.file("a.tga"), encode_tga(src));
    expect_same_image(decode_image_file(dir.file("a.tga")), src, "TGA (RLE)");
    // JPEG (baseline): lossy, so close on a smooth image
    const Image smooth = pattern(kSmooth, 64, 48);
    write_jpeg(dir.file("a.jpg"), smooth, 95);
    double mean;
    int max;
    diff_stats(decode_image_file(dir.file("a.jpg")), smooth, &mean, &max);
    EXPECT_LT(mean, 2.0) << "baseline JPEG";
    EXPECT_LT(max, 24) << "baseline JPEG";
}

TEST(ImageDecode, GrayAndAlphaChannels) {
    const int w = 19, h = 11;
    const Image src = pattern(kNoise, w, h);
    std::vector<uint8_t> gray(w * h), gray_alpha(w * h * 2), rgba(w * h * 4);
    for (int i = 0; i < w * h; i++) {
        gray[i] = src.rgb[i * 3];
        gray_alpha[i * 2] = src.rgb[i * 3];
        gray_alpha[i * 2 + 1] = src.rgb[i * 3 + 1];
        for (int c = 0; c < 3; c++) rgba[i * 4 + c] = src.rgb[i * 3 + c];
        rgba[i * 4 + 3] = src.rgb[i * 3 + 2] ^ 0x5A;
    }
    Image want_gray = src;
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++) want_gray.rgb[i * 3 + c] = gray[i];
    for (const char* fmt : {"png", "bmp", "tga"}) {
        SCOPED_TRACE(fmt);
        // alpha is dropped, not composited; gray is replicated into R, G, B
        expect_same_image(decode(encode_pixels(fmt, w, h, 4, rgba.data()), "rgba"), src, "RGBA");
        expect_same_image(decode(encode_pixels(fmt, w, h, 1, gray.data()), "gray"), want_gray, "gray");
        expect_same_image(decode(encode_pixels(fmt, w, h, 2, gray_alpha.data()), "ga"), want_gray, "gray+alpha");
    }
}

// ---- decoding: hand-built PNG variants ----

TEST(ImageDecode, Png16BitAllColorTypes) {
    const int w = 13, h = 7;
    const Image hi = pattern(kNoise, w, h), lo = pattern(kBlocks, w, h);   // high / low bytes
    Image want_gray = hi;
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++) want_gray.rgb[i * 3 + c] = hi.rgb[i * 3];
    // color types: 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA; 16-bit samples, big-endian
    for (int ct : {0, 2, 4, 6}) {
        SCOPED_TRACE("color type " + std::to_string(ct));
        const int chans = ct == 0 ? 1 : ct == 2 ? 3 : ct == 4 ? 2 : 4;
        std::vector<std::vector<uint8_t>> rows(h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int k = 0; k < chans; k++) {
                    const bool alpha = (ct == 4 && k == 1) || (ct == 6 && k == 3);
                    const int c = alpha ? 0 : k;
                    const size_t i = (size_t(y) * w + x) * 3 + c;
                    rows[y].push_back(alpha ? uint8_t(0x80 ^ x) : hi.rgb[i]);
                    rows[y].push_back(lo.rgb[i]);
                }
        Image got = decode(make_png(w, h, 16, ct, rows), "png16");
        // stb keeps the high byte of each 16-bit sample
        expect_same_image(got, (ct == 0 || ct == 4) ? want_gray : hi, "16-bit PNG");
    }
}

TEST(ImageDecode, PngPalette8And4Bit) {
    const int w = 9, h = 5;
    std::vector<uint8_t> plte;
    for (int i = 0; i < 16; i++) {
        uint32_t v = hash32(uint32_t(i) + 777);
        plte.insert(plte.end(), {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16)});
    }
    std::vector<uint8_t> trns(16, 128);   // palette transparency: dropped like alpha
    auto index_of = [](int x, int y) { return (x * 3 + y * 5) % 16; };
    Image want;
    want.width = w;
    want.height = h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) want.rgb.push_back(plte[index_of(x, y) * 3 + c]);
    std::vector<std::vector<uint8_t>> rows8(h), rows4(h);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) rows8[y].push_back(uint8_t(index_of(x, y)));
        for (int x = 0; x < w; x += 2)   // two 4-bit indices per byte, high nibble first
            rows4[y].push_back(uint8_t(index_of(x, y) << 4 | (x + 1 < w ? index_of(x + 1, y) : 0)));
    }
    expect_same_image(decode(make_png(w, h, 8, 3, rows8, plte), "pal8"), want, "8-bit palette");
    expect_same_image(decode(make_png(w, h, 4, 3, rows4, plte, trns), "pal4"), want,
                      "4-bit palette with tRNS");
}

// ---- decoding: files from tools/gen_image_refs.py (Pillow) ----

TEST(ImageDecode, GifFirstFrame) {
    // two frames: the pattern, then its inverse; the first frame is the one returned
    Image got = decode_image_file(ref_path("images/pattern_blocks_30x20.gif"));
    expect_same_image(got, pattern(kBlocks, 30, 20), "GIF first frame");
}

TEST(ImageDecode, ProgressiveJpeg) {
    const std::string path = ref_path("images/pattern_smooth_64x48.progressive.jpg");
    Image got = decode_image_file(path);
    double mean;
    int max;
    diff_stats(got, pattern(kSmooth, 64, 48), &mean, &max);
    EXPECT_LT(mean, 2.0) << "progressive JPEG (quality 95)";
    EXPECT_LT(max, 24) << "progressive JPEG (quality 95)";
}

// ---- decoding errors ----

TEST(ImageDecode, TruncatedAndCorruptFilesNameTheFile) {
    TempDir dir("rankclip_image");
    const Image src = pattern(kSmooth, 40, 30);
    std::vector<std::pair<std::string, std::vector<uint8_t>>> files = {
        {"png", encode_png(src)},
        {"jpg", encode_jpeg(src, 90)},
        {"bmp", encode_bmp(src)},
        {"tga", encode_tga(src)},   // run-length encoded
        {"raw.tga", {}},
        {"progressive.jpg", read_bytes(ref_path("images/pattern_smooth_64x48.progressive.jpg"))},
        {"gif", read_bytes(ref_path("images/pattern_blocks_30x20.gif"))},
    };
    {   // an uncompressed TGA: 18-byte header (type 2, 24 bits, bottom-up) + BGR rows
        auto& t = files[4].second;
        t = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, uint8_t(src.width), 0, uint8_t(src.height), 0, 24, 0};
        for (int y = src.height - 1; y >= 0; y--)
            for (int x = 0; x < src.width; x++)
                for (int c = 2; c >= 0; c--) t.push_back(src.rgb[(size_t(y) * src.width + x) * 3 + c]);
        expect_same_image(decode(t, "raw.tga"), src, "uncompressed TGA");
    }
    for (auto& [ext, bytes] : files) {
        SCOPED_TRACE(ext);
        ASSERT_NO_THROW(decode(bytes, "whole"));
        // cut inside the data of the (first) image; stb alone fills the rest with zeros for most
        // formats. (A PNG cut only in its IEND chunk, or a GIF cut after its first frame, is
        // complete for our purpose and decodes.)
        std::vector<double> keeps = {0.5, 0.9, 0.99};
        if (ext == "png") keeps = {0.3, 0.6, 0.9};
        if (ext == "gif") keeps = {0.1, 0.25, 0.4};   // two frames: the first ends near half
        for (double keep : keeps) {
            const std::string path = dir.file("cut." + ext);
            const size_t n = std::min(bytes.size() - 1, size_t(bytes.size() * keep));
            write_file_bytes(path, std::vector<uint8_t>(bytes.begin(), bytes.begin() + n));
            std::string err = error_of([&] { decode_image_file(path); });
            EXPECT_NE(err.find(path), std::string::npos)
                << "kept " << n << " of " << bytes.size() << " bytes: error must name the file: '" << err << "'";
        }
    }
    // corrupt: garbage, a valid signature with garbage after it, empty, missing
    std::vector<uint8_t> junk(200);
    for (size_t i = 0; i < junk.size(); i++) junk[i] = uint8_t(hash32(uint32_t(i)));
    write_file_bytes(dir.file("junk.png"), junk);
    std::vector<uint8_t> bad_png = encode_png(src);
    for (size_t i = 40; i < bad_png.size() - 12; i++) bad_png[i] ^= 0xA5;   // IDAT scrambled
    write_file_bytes(dir.file("scrambled.png"), bad_png);
    write_file_bytes(dir.file("empty.jpg"), {});
    for (const std::string name : {"junk.png", "scrambled.png", "empty.jpg", "missing.png"}) {
        std::string err = error_of([&] { decode_image_file(dir.file(name)); });
        EXPECT_NE(err.find(dir.file(name)), std::string::npos) << name << ": '" << err << "'";
    }
    // the in-memory variant names what it is given
    std::string err = error_of([&] { decode(junk, "shard-0001.tar:key.jpg"); });
    EXPECT_NE(err.find("shard-0001.tar:key.jpg"), std::string::npos) << err;
}

TEST(ImageDecode, JpegStructureChecks) {
    const Image src = pattern(kSmooth, 24, 16);
    const std::vector<uint8_t> jpg = encode_jpeg(src, 90);
    // junk after the end-of-image marker is tolerated
    std::vector<uint8_t> tail = jpg;
    tail.insert(tail.end(), {0x00, 0x12, 0xFF, 0x00, 0x34});
    expect_same_image(decode(tail, "tail.jpg"), decode(jpg, "plain.jpg"), "JPEG with trailing junk");
    // a Huffman table declaring more than 256 codes (stb would overflow its tables) is refused
    std::vector<uint8_t> bad = jpg;
    size_t dht = 0;
    for (size_t i = 2; i + 1 < bad.size() && !dht; i++)
        if (bad[i] == 0xFF && bad[i + 1] == 0xC4) dht = i;
    ASSERT_GT(dht, 0u) << "stb_image_write's JPEG should have a DHT segment";
    for (int k = 0; k < 16; k++) bad[dht + 5 + k] = 20;   // 16 x 20 = 320 codes
    std::string err = error_of([&] { decode(bad, "dht.jpg"); });
    EXPECT_NE(err.find("dht.jpg"), std::string::npos) << err;
    EXPECT_NE(err.find("more than 256 codes"), std::string::npos) << err;
}

TEST(ImageDecode, RefusesHugeDimensionsFromTheHeader) {
    // only the header is valid: the size check must come before any decoding
    for (auto [w, h] : {std::pair<int, int>{20000, 10}, {10, 16385}, {16384, 16385}}) {
        std::vector<std::vector<uint8_t>> rows(1, std::vector<uint8_t>(3));
        std::string err = error_of([&] { decode(make_png(w, h, 8, 2, rows), "huge.png"); });
        EXPECT_NE(err.find("huge.png"), std::string::npos) << err;
        EXPECT_NE(err.find("limit"), std::string::npos) << err;
    }
}

// Within the side and pixel limits, the bytes decoding needs are capped too (16384 x 16384 RGBA
// is 256 MP, but stb would hold about 2.9 GB); the message names the file, the size and the limit.
TEST(ImageDecode, RefusesImagesTooLargeToDecode) {
    struct Case { int w, h, bit_depth, color_type; };
    for (Case c : {Case{16384, 16384, 8, 6}, Case{16384, 8192, 16, 2}, Case{10000, 10000, 8, 2}}) {
        std::vector<std::vector<uint8_t>> rows(1, std::vector<uint8_t>(8));
        std::string err = error_of([&] { decode(make_png(c.w, c.h, c.bit_depth, c.color_type, rows), "big.png"); });
        EXPECT_NE(err.find("big.png"), std::string::npos) << err;
        EXPECT_NE(err.find("MiB to decode"), std::string::npos) << err;
        EXPECT_NE(err.find("768 MiB"), std::string::npos) << err;
    }
    // beyond stb's own header limit (2^24 per side) the message says what the PNG declares
    std::vector<std::vector<uint8_t>> rows(1, std::vector<uint8_t>(3));
    std::string err = error_of([&] { decode(make_png(1 << 25, 1, 8, 2, rows), "wide.png"); });
    EXPECT_NE(err.find("wide.png"), std::string::npos) << err;
    EXPECT_NE(err.find("declares 33554432x1"), std::string::npos) << err;
}

// ---- decoding: real files from Debian packages, when installed ----

TEST(ImageDecode, RealFilesFromDebianPackages) {
    const std::vector<std::string> good = {
        "/usr/lib/python3/dist-packages/skimage/data/astronaut.png",
        "/usr/lib/python3/dist-packages/skimage/data/rocket.jpg",
        "/usr/lib/python3/dist-packages/skimage/data/chelsea.png",
        "/usr/lib/python3/dist-packages/skimage/data/coffee.png",
        "/usr/share/tcltk/tk8.6/images/logoLarge.gif",
        "/usr/share/tcltk/tk8.6/images/pwrdLogo200.gif",
        "/usr/share/doc/nodejs/full-white-stripe.jpg",
    };
    int found = 0;
    for (const auto& p : good) {
        if (!rankclip::test::path_exists(p)) continue;
        found++;
        Image img = decode_image_file(p);
        EXPECT_GT(img.width, 0) << p;
        EXPECT_EQ(img.rgb.size(), size_t(img.width) * img.height * 3) << p;
    }
    const std::string truncated = "/usr/lib/python3/dist-packages/skimage/data/truncated.jpg";
    if (rankclip::test::path_exists(truncated)) {
        found++;
        std::string err = error_of([&] { decode_image_file(truncated); });
        EXPECT_NE(err.find(truncated), std::string::npos) << "truncated.jpg must fail: '" << err << "'";
    }
    if (found == 0) GTEST_SKIP() << "no real image files installed (python3-skimage, tk8.6, nodejs docs)";
}

// ---- decoding: real files from Debian packages against Pillow (tools/gen_real_image_refs.py) ----

TEST(ImageDecode, RealFilesMatchPil) {
    // tests/ref/real_images.json holds, for each real file the generator found, Pillow's decode as
    // checksums and statistics. PNG and GIF must match bit for bit (and so must the CLIP
    // preprocessing of the decoded image); JPEG by tolerance, because stb_image's colour
    // conversion and upsampling round differently from libjpeg-turbo's: on these files a few
    // hundred pixels differ by at most 2, so per-channel means must agree within 0.5 and the means
    // of 16x16 tiles within 1.5 (a misdecoded block or a shifted row moves a tile by tens).
    const std::vector<uint8_t> text = read_bytes(ref_path("real_images.json"));
    const Json ref = Json::parse(std::string(text.begin(), text.end()));
    auto crc = [](const std::vector<uint8_t>& b) { return int64_t(crc32(0, b.data(), uInt(b.size()))); };
    int checked = 0;
    std::string not_here;
    for (const Json& e : ref["files"].as_array()) {
        const std::string path = e["path"].as_string(), package = e["package"].as_string();
        SCOPED_TRACE(path + " (" + package + ", " + e["format"].as_string() + " " + e["mode"].as_string() + " " +
                     e["details"].as_string() + ")");
        if (!rankclip::test::path_exists(path)) {
            not_here += "\n  " + path + ": absent (package " + package + ")";
            continue;
        }
        const std::vector<uint8_t> bytes = read_bytes(path);
        if (int64_t(bytes.size()) != e["file_bytes"].as_int() || crc(bytes) != e["file_crc32"].as_int()) {
            not_here += "\n  " + path + ": another version of the file than the reference's";
            continue;
        }
        const Image img = decode(bytes, path);
        ASSERT_EQ(img.width, e["width"].as_int());
        ASSERT_EQ(img.height, e["height"].as_int());
        double mean[3] = {0, 0, 0};
        for (size_t i = 0; i < img.rgb.size(); i++) mean[i % 3] += img.rgb[i];
        for (double& m : mean) m /= double(img.rgb.size() / 3);
        const std::string means = str_cat("means (", mean[0], ", ", mean[1], ", ", mean[2], "), Pillow's (",
                                          e["mean"].at(0).as_double(), ", ", e["mean"].at(1).as_double(), ", ",
                                          e["mean"].at(2).as_double(), ")");
        if (e["exact"].as_bool()) {
            EXPECT_EQ(crc(img.rgb), e["rgb_crc32"].as_int())
                << "decoded pixels differ from Pillow's: " << means
                << (e.contains("known_difference") ? " [known difference: " + e["known_difference"].as_string() + "]" : "");
            if (e.contains("pre224_crc32")) {   // the whole CLIP path on real content
                EXPECT_EQ(crc(resize_short_side_center_crop(img, 224).rgb), e["pre224_crc32"].as_int())
                    << "resize + center crop to 224 differs from Pillow's";
            }
        } else {
            for (int c = 0; c < 3; c++) EXPECT_NEAR(mean[c], e["mean"].at(c).as_double(), 0.5) << means;
            const int B = int(e["block"].as_int()), W = img.width, H = img.height;
            const int rows = (H + B - 1) / B, cols = (W + B - 1) / B;
            const Json& want = e["block_means"];
            ASSERT_EQ(want.size(), size_t(rows) * cols * 3);
            double worst = 0;
            for (int by = 0; by < rows; by++)
                for (int bx = 0; bx < cols; bx++)
                    for (int c = 0; c < 3; c++) {
                        double sum = 0;
                        int n = 0;
                        for (int y = by * B; y < std::min(H, by * B + B); y++)
                            for (int x = bx * B; x < std::min(W, bx * B + B); x++, n++)
                                sum += img.rgb[(size_t(y) * W + x) * 3 + c];
                        const double d = std::abs(sum / n - want.at((size_t(by) * cols + bx) * 3 + c).as_double());
                        worst = std::max(worst, d);
                    }
            EXPECT_LE(worst, 1.5) << "a " << B << "x" << B << " tile's mean differs from Pillow's by " << worst;
        }
        checked++;
    }
    if (checked == 0)
        GTEST_SKIP() << "none of the " << ref["files"].size()
                     << " real image files of tests/ref/real_images.json is on this machine:" << not_here;
    if (!not_here.empty()) std::printf("[   NOTE   ] real files not checked here:%s\n", not_here.c_str());
}

// ---- preprocessing against Pillow ----

TEST(ImagePreprocess, MatchesPilExactly) {
    SafetensorsFile ref(ref_path("image_preprocess.safetensors"));
    int cases = 0;
    for (const std::string& name : ref.names()) {
        if (name.rfind("pre.", 0) != 0 || name.size() < 5 || name.substr(name.size() - 5) != ".spec") continue;
        const std::string base = name.substr(0, name.size() - 5);
        SCOPED_TRACE(base);
        const auto spec = ref.tensor(name).to_vector<int64_t>();   // kind, w, h, size
        const int size = int(spec[3]);
        const Image img = pattern(int(spec[0]), int(spec[1]), int(spec[2]));
        const auto want_px = ref.tensor(base + ".resized").to_vector<int64_t>();
        const auto want_norm = ref.tensor(base + ".normalized").to_vector<float>();
        Image want;
        want.width = want.height = size;
        for (int64_t v : want_px) want.rgb.push_back(uint8_t(v));

        // uint8 after resize + crop: identical to PIL
        Image got = resize_short_side_center_crop(img, size);
        expect_same_image(got, want, "resize + center crop vs PIL");
        // normalised: bit-identical to torch's ToTensor + Normalize
        std::vector<float> out(size_t(3) * size * size);
        preprocess_clip(img, size, out.data());
        ASSERT_EQ(out.size(), want_norm.size());
        size_t bad = 0;
        for (size_t i = 0; i < out.size(); i++) bad += out[i] != want_norm[i];
        EXPECT_EQ(bad, 0u) << "normalised values differ from torch";
        cases++;
    }
    EXPECT_GE(cases, 6);
}

TEST(ImagePreprocess, ResizeProperties) {
    // a constant image stays constant (weights sum to 1), up and down
    Image flat = pattern(kNoise, 1, 1);
    flat.width = 50;
    flat.height = 30;
    flat.rgb.resize(50 * 30 * 3);
    for (size_t i = 0; i < flat.rgb.size(); i++) flat.rgb[i] = uint8_t(i % 3 * 100 + 17);
    for (auto [w, h] : {std::pair<int, int>{7, 5}, {123, 77}, {50, 9}}) {
        Image r = resize_bicubic(flat, w, h);
        ASSERT_EQ(r.rgb.size(), size_t(w) * h * 3);
        for (size_t i = 0; i < r.rgb.size(); i++) ASSERT_EQ(r.rgb[i], i % 3 * 100 + 17) << w << "x" << h;
    }
    // same size: unchanged; flip twice: unchanged
    const Image img = pattern(kBlocks, 31, 17);
    expect_same_image(resize_bicubic(img, 31, 17), img, "identity resize");
    expect_same_image(hflip(hflip(img)), img, "double flip");
    EXPECT_EQ(hflip(img).rgb[0], img.rgb[30 * 3]);
    // bad arguments
    EXPECT_NE(error_of([&] { crop(img, 20, 0, 12, 5); }).find("outside"), std::string::npos);
    EXPECT_NE(error_of([&] { resize_bicubic(img, 0, 5); }).find("resize_bicubic"), std::string::npos);
    EXPECT_NE(error_of([&] { resize_short_side_center_crop(Image{}, 8); }).find("bad image"), std::string::npos);
}

// ---- augmentation ----

TEST(ImageAugment, MatchesTorchDrawsAndPil) {
    // the crop parameters drawn with torch.manual_seed(seed) and PIL's crop + resize + flip
    SafetensorsFile ref(ref_path("image_preprocess.safetensors"));
    int cases = 0, flips = 0;
    for (const std::string& name : ref.names()) {
        if (name.rfind("aug.", 0) != 0 || name.substr(name.size() - 5) != ".spec") continue;
        const std::string base = name.substr(0, name.size() - 5);
        SCOPED_TRACE(base);
        const auto s = ref.tensor(name).to_vector<int64_t>();   // kind w h size seed hflip scale%
        const auto params = ref.tensor(base + ".params").to_vector<int64_t>();
        const auto px = ref.tensor(base + ".resized").to_vector<int64_t>();
        const int size = int(s[3]);
        const Image img = pattern(int(s[0]), int(s[1]), int(s[2]));
        AugmentOptions opt;
        opt.hflip = s[5] != 0;
        opt.scale_min = s[6] / 100.0;
        opt.scale_max = s[7] / 100.0;

        Generator gen{uint64_t(s[4])};
        CropBox b = random_resized_crop_params(img.width, img.height, opt, gen);
        EXPECT_EQ(b.top, params[0]);
        EXPECT_EQ(b.left, params[1]);
        EXPECT_EQ(b.height, params[2]);
        EXPECT_EQ(b.width, params[3]);

        Image want;
        want.width = want.height = size;
        for (int64_t v : px) want.rgb.push_back(uint8_t(v));
        std::vector<float> want_norm(size_t(3) * size * size), got(want_norm.size());
        normalize_clip(want, want_norm.data());
        Generator gen2{uint64_t(s[4])};
        augment_clip(img, size, opt, gen2, got.data());
        EXPECT_EQ(got, want_norm) << "augment_clip differs from PIL crop+resize(+flip)";
        flips += int(params[4]);
        cases++;
    }
    EXPECT_GE(cases, 8);
    EXPECT_GE(flips, 1) << "the reference should include a flipped case";
}

TEST(ImageAugment, DeterministicForAGeneratorState) {
    const Image img = pattern(kBlocks, 97, 80);   // an aspect ratio the crops can fit
    const int size = 24;
    AugmentOptions opt;
    opt.hflip = true;
    opt.scale_min = 0.5;
    auto run = [&](Generator& g) {
        std::vector<float> out(size_t(3) * size * size);
        augment_clip(img, size, opt, g, out.data());
        return out;
    };
    Generator a(42), b(42), c(43);
    std::vector<std::vector<float>> seq_a, seq_b;
    for (int i = 0; i < 5; i++) {
        seq_a.push_back(run(a));
        seq_b.push_back(run(b));
    }
    EXPECT_EQ(seq_a, seq_b) << "same seed, same sequence of augmentations";
    EXPECT_NE(seq_a[0], seq_a[1]) << "successive draws should differ";
    EXPECT_NE(run(c), seq_a[0]) << "another seed should differ";
    // resuming from a saved state reproduces the rest
    Generator d(42);
    run(d);
    Generator e(0);
    e.set_state(d.get_state());
    EXPECT_EQ(run(e), seq_a[1]);
}

TEST(ImageAugment, FlipHalfTheTimeAndOnlyWhenAsked) {
    // a square image with scale (1, 1) and ratio (1, 1): the crop is always the whole image,
    // so the only randomness left is the flip
    const int size = 16;
    const Image img = pattern(kNoise, size, size);
    AugmentOptions opt;
    opt.scale_min = opt.scale_max = 1.0;
    opt.ratio_min = opt.ratio_max = 1.0;
    std::vector<float> plain(size_t(3) * size * size), flipped(plain.size()), out(plain.size());
    normalize_clip(img, plain.data());
    normalize_clip(hflip(img), flipped.data());
    Generator gen(7);
    int n_flip = 0, n_plain = 0;
    opt.hflip = true;
    for (int i = 0; i < 200; i++) {
        augment_clip(img, size, opt, gen, out.data());
        if (out == flipped) n_flip++;
        else if (out == plain) n_plain++;
    }
    EXPECT_EQ(n_flip + n_plain, 200);
    EXPECT_GT(n_flip, 70);
    EXPECT_GT(n_plain, 70);
    opt.hflip = false;
    for (int i = 0; i < 20; i++) {
        augment_clip(img, size, opt, gen, out.data());
        EXPECT_EQ(out, plain);
    }
}

TEST(ImageAugment, CropParamsStayInsideAndFallBack) {
    Generator gen(1);
    AugmentOptions opt;
    opt.scale_min = 0.08;
    for (int i = 0; i < 500; i++) {
        const int w = 10 + int(gen.random() % 300), h = 10 + int(gen.random() % 300);
        CropBox b = random_resized_crop_params(w, h, opt, gen);
        ASSERT_TRUE(b.top >= 0 && b.left >= 0 && b.width > 0 && b.height > 0 &&
                    b.left + b.width <= w && b.top + b.height <= h)
            << w << "x" << h << ": " << b.left << "," << b.top << " " << b.width << "x" << b.height;
    }
    // a very tall image never fits the ratio range: center crop of height round(w / 0.75)
    AugmentOptions def;
    CropBox b = random_resized_crop_params(17, 255, def, gen);
    EXPECT_EQ(b.width, 17);
    EXPECT_EQ(b.height, 23);
    EXPECT_EQ(b.top, (255 - 23) / 2);
    EXPECT_EQ(b.left, 0);
}
