// data/open_dataset.cpp
// defines: open_dataset (source string -> Dataset).
#include "data/open_dataset.h"

#include <sys/stat.h>

#include <cstring>
#include <fstream>

#include "data/csv_dataset.h"
#include "data/fashion_mnist.h"
#include "data/image_folder.h"
#include "data/packed.h"
#include "data/synthetic.h"
#include "data/tar_dataset.h"
#include "engine/error.h"
#include "engine/strings.h"

namespace rankclip {

static bool has_packed_magic(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    char m[8] = {};
    return f.read(m, 8) && std::memcmp(m, "RCPACK01", 8) == 0;
}

std::unique_ptr<Dataset> open_dataset(const std::string& spec, const OpenOptions& opt) {
    RC_CHECK(!spec.empty(), "--data: empty dataset name");
    if (spec.rfind("fashion-mnist", 0) == 0) {
        auto parts = split(spec, ':');
        RC_CHECK(parts[0] == "fashion-mnist", "--data '", spec, "': expected fashion-mnist[:train|test][:captions]");
        std::string split = "train";
        bool captions = false;
        for (size_t k = 1; k < parts.size(); k++) {
            if (parts[k] == "train" || parts[k] == "test") split = parts[k];
            else if (parts[k] == "captions") captions = true;
            else throw Error(str_cat("--data '", spec, "': unknown part '", parts[k],
                                     "' (expected train, test or captions)"));
        }
        return std::make_unique<FashionMnistDataset>(fashion_mnist_default_dir(), split, captions);
    }
    if (spec.rfind("synthetic", 0) == 0) {
        auto parts = split(spec, ':');
        RC_CHECK(parts[0] == "synthetic" && parts.size() <= 3, "--data '", spec,
                 "': expected synthetic[:train|val|heldout][:N]");
        SyntheticConfig cfg;
        SyntheticSplit split = parts.size() > 1 ? parse_synthetic_split(parts[1]) : SyntheticSplit::Train;
        if (parts.size() > 2) {
            try {
                cfg.n = size_t(std::stoull(parts[2]));
            } catch (...) {
                throw Error(str_cat("--data '", spec, "': bad sample count '", parts[2], "'"));
            }
        }
        return std::make_unique<SyntheticDataset>(cfg, split, opt.seed);
    }
    if (spec.find(".tar") != std::string::npos) {
        TarOptions t;
        t.on_bad = opt.on_bad;
        return std::make_unique<TarDataset>(spec, t);
    }
    struct stat st;
    RC_CHECK(::stat(spec.c_str(), &st) == 0, "--data '", spec, "': no such file or directory");
    if (S_ISDIR(st.st_mode)) return std::make_unique<ImageFolderDataset>(spec, opt.on_bad);
    if (ends_with(spec, ".rcpack") || has_packed_magic(spec)) return std::make_unique<PackedDataset>(spec);
    if (ends_with(spec, ".csv") || ends_with(spec, ".tsv") || !opt.separator.empty()) {
        CsvOptions c;
        c.image_column = opt.image_column;
        c.caption_column = opt.caption_column;
        c.on_bad = opt.on_bad;
        std::string sep = opt.separator.empty() ? (ends_with(spec, ".tsv") ? "\t" : ",") : opt.separator;
        if (sep == "tab" || sep == "\\t") sep = "\t";
        RC_CHECK(sep.size() == 1 && sep != "\"" && sep != "\n", "--separator: expected one character, got '", sep, "'");
        c.separator = sep[0];
        return std::make_unique<CsvDataset>(spec, c);
    }
    throw Error(str_cat("--data '", spec, "': unknown format (expected .csv/.tsv, .tar shards, .rcpack, "
                        "a class-folder directory, fashion-mnist[:...] or synthetic[:...])"));
}

}  // namespace rankclip
