// data/open_dataset.h
// defines: open_dataset, which opens any supported source from one string (what `--data` takes):
//   *.csv / *.tsv                     OpenCLIP CSV (separator ',' / '\t' unless overridden)
//   anything containing ".tar"        WebDataset shards (brace patterns, "::"-joined lists)
//   *.rcpack, or a file starting with the packed magic   packed shard
//   fashion-mnist[:train|test][:captions]   Fashion-MNIST (labelled, or templated captions)
//   synthetic[:train|val|heldout][:N]       the built-in synthetic set (seed 0; N default 10000)
//   a directory                       image folder (one sub-folder per class)
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "data/dataset.h"

namespace rankclip {

struct OpenOptions {
    std::string image_column = "filepath";   // CSV columns
    std::string caption_column = "title";
    std::string separator;                   // "" = by extension; "\t" or "tab" for TSV
    BadSamplePolicy on_bad = BadSamplePolicy::Skip;
    uint64_t seed = 0;                       // synthetic
};

std::unique_ptr<Dataset> open_dataset(const std::string& spec, const OpenOptions& opt = {});

}  // namespace rankclip
