// data/fashion_mnist.h
// defines: FashionMnistDataset, Fashion-MNIST from Debian's dataset-fashion-mnist package (idx
// files, gzip-compressed, in /usr/share/datasets/fashion-mnist/). 28x28 gray images replicated
// to RGB, labels 0..9 with Fashion-MNIST's class names. Two uses: labelled images (zero-shot
// evaluation; caption = the class name) and captioned pairs, where sample i's caption is
// template (mix(i) mod #templates) filled with its class name, e.g. "a photo of a sneaker".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace rankclip {

// The package's directory, or $RANKCLIP_FASHION_MNIST when set.
std::string fashion_mnist_default_dir();
// The 10 class names, in label order ("t-shirt", "trouser", ..., "ankle boot").
const std::vector<std::string>& fashion_mnist_classes();
// The caption templates (each with one "{}"); at least 8.
const std::vector<std::string>& fashion_mnist_templates();

class FashionMnistDataset : public Dataset {
public:
    // split: "train" (60000) or "test" (10000). captions: templated captions instead of names.
    FashionMnistDataset(const std::string& dir, const std::string& split, bool captions);
    size_t size() const override { return labels_.size(); }
    Sample get(size_t index) const override;
    std::string describe() const override;
    std::vector<std::string> class_names() const override { return fashion_mnist_classes(); }

private:
    std::string dir_, split_;
    bool captions_;
    std::vector<uint8_t> pixels_;   // (N, 28, 28)
    std::vector<uint8_t> labels_;   // (N)
};

}  // namespace rankclip
