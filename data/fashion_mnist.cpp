// data/fashion_mnist.cpp
// defines: FashionMnistDataset (idx file parsing, gray -> RGB, templated captions).
#include "data/fashion_mnist.h"

#include <cstdlib>

#include "data/gzip.h"
#include "engine/error.h"

namespace rankclip {

std::string fashion_mnist_default_dir() {
    const char* env = std::getenv("RANKCLIP_FASHION_MNIST");
    return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

const std::vector<std::string>& fashion_mnist_classes() {
    static const std::vector<std::string> names = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                   "sandal", "shirt", "sneaker", "bag", "ankle boot"};
    return names;
}

const std::vector<std::string>& fashion_mnist_templates() {
    static const std::vector<std::string> t = {
        "a photo of a {}.",
        "a black and white picture of a {}.",
        "a low resolution photo of a {}.",
        "a grayscale image of a {}.",
        "a small picture of a {}.",
        "a product photo of a {}.",
        "a blurry photo of the {}.",
        "a {} on a black background.",
        "an image showing a {}.",
        "a close-up photo of a {}.",
    };
    return t;
}

static uint32_t be32(const std::string& b, size_t off) {
    return (uint32_t(uint8_t(b[off])) << 24) | (uint32_t(uint8_t(b[off + 1])) << 16) |
           (uint32_t(uint8_t(b[off + 2])) << 8) | uint32_t(uint8_t(b[off + 3]));
}

FashionMnistDataset::FashionMnistDataset(const std::string& dir, const std::string& split, bool captions)
    : dir_(dir), split_(split), captions_(captions) {
    RC_CHECK(split == "train" || split == "test", "fashion-mnist: split must be 'train' or 'test', got '",
             split, "'");
    std::string prefix = dir + "/" + (split == "train" ? "train" : "t10k");
    std::string img_path = prefix + "-images-idx3-ubyte.gz", lab_path = prefix + "-labels-idx1-ubyte.gz";
    // (the train images: 47 MB decompressed)
    std::string img = read_gzip_file(img_path, size_t(256) << 20, "Fashion-MNIST images"),
                lab = read_gzip_file(lab_path, size_t(16) << 20, "Fashion-MNIST labels");
    RC_CHECK(img.size() >= 16 && be32(img, 0) == 0x00000803, "fashion-mnist: '", img_path,
             "' is not an idx3 ubyte file");
    RC_CHECK(lab.size() >= 8 && be32(lab, 0) == 0x00000801, "fashion-mnist: '", lab_path,
             "' is not an idx1 ubyte file");
    uint32_t n = be32(img, 4), rows = be32(img, 8), cols = be32(img, 12);
    RC_CHECK(rows == 28 && cols == 28, "fashion-mnist: '", img_path, "' has ", rows, "x", cols, " images");
    RC_CHECK(img.size() == 16 + size_t(n) * 784, "fashion-mnist: '", img_path, "' is truncated");
    RC_CHECK(be32(lab, 4) == n && lab.size() == 8 + size_t(n), "fashion-mnist: '", lab_path,
             "' does not match the ", n, " images");
    pixels_.assign(img.begin() + 16, img.end());
    labels_.assign(lab.begin() + 8, lab.end());
    for (size_t i = 0; i < n; i++)
        RC_CHECK(labels_[i] < 10, "fashion-mnist: '", lab_path, "': label ", int(labels_[i]), " at ", i);
}

Sample FashionMnistDataset::get(size_t index) const {
    RC_CHECK(index < labels_.size(), "fashion-mnist: index ", index, " out of range (", labels_.size(), ")");
    Sample s;
    s.image.width = s.image.height = 28;
    s.image.rgb.resize(28 * 28 * 3);
    const uint8_t* p = pixels_.data() + index * 784;
    for (int k = 0; k < 784; k++) s.image.rgb[3 * k] = s.image.rgb[3 * k + 1] = s.image.rgb[3 * k + 2] = p[k];
    s.label = labels_[index];
    const std::string& name = fashion_mnist_classes()[s.label];
    if (!captions_) {
        s.caption = name;
    } else {
        // A fixed scramble of the index picks the template, so neighbouring samples vary.
        uint64_t h = (uint64_t(index) + 1) * 0x9E3779B97F4A7C15ull;
        const auto& ts = fashion_mnist_templates();
        std::string t = ts[(h >> 32) % ts.size()];
        s.caption = t.replace(t.find("{}"), 2, name);
    }
    return s;
}

std::string FashionMnistDataset::describe() const {
    return str_cat("fashion-mnist ", split_, " (", dir_, "): ", labels_.size(),
                   captions_ ? " captioned pairs" : " labelled images");
}

}  // namespace rankclip
