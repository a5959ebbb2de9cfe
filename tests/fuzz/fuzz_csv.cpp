// tests/fuzz/fuzz_csv.cpp
// defines: the libFuzzer harness of the CSV/TSV reader (data/csv_dataset.h): parse_csv on the bytes
// with both separators, then CsvDataset on them as a file (column lookup, UTF-8 checks; image
// files not checked, so no sample is decoded).
#include <string>

#include "data/csv_dataset.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rankclip::fuzz::FuzzFile file(".csv");
    const std::string text(reinterpret_cast<const char*>(data), size);
    FUZZ_GUARD((void)rankclip::parse_csv(text, ',', "fuzz.csv"));
    FUZZ_GUARD((void)rankclip::parse_csv(text, '\t', "fuzz.tsv"));
    const std::string& path = file.write(data, size);
    FUZZ_GUARD({
        rankclip::CsvOptions opt;
        opt.check_files = false;
        rankclip::CsvDataset ds(path, opt);
        for (size_t i = 0; i < ds.size(); i++) (void)ds.caption(i);
    });
    return 0;
}
