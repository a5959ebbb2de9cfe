// tests/vector_dataset.h
// defines: VectorDataset, a Dataset held in memory (samples and class names the test fills in),
// the source that the packing and re-packing tests write from.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"

namespace rankclip::test {

struct VectorDataset : Dataset {
    std::vector<Sample> samples;
    std::vector<std::string> classes;
    size_t size() const override { return samples.size(); }
    Sample get(size_t i) const override { return samples.at(i); }
    std::string describe() const override { return "vector"; }
    std::vector<std::string> class_names() const override { return classes; }
};

}  // namespace rankclip::test
