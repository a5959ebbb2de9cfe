// tests/fuzz/fuzz_tar.cpp
// defines: the libFuzzer harness of the WebDataset tar reader (data/tar_dataset.h): index the input
// as a shard (libarchive, any compression filter), then read every sample (image bytes by offset
// or from memory, decoded), and brace-expand the first line of the input as a shard pattern.
#include <string>

#include "data/tar_dataset.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rankclip::fuzz::FuzzFile file(".tar");
    const std::string& path = file.write(data, size);
    FUZZ_GUARD({
        rankclip::TarDataset ds(path);
        for (size_t i = 0; i < ds.size(); i++) FUZZ_GUARD((void)ds.get(i));
    });
    const std::string text(reinterpret_cast<const char*>(data), size);
    const std::string line = text.substr(0, text.find('\n'));
    // The same code under limits 100x smaller: a pattern at the real limits builds a million
    // strings, and under ASan the allocator keeps every size class it ever filled, so inputs of
    // different name lengths would add up past the fuzzer's memory limit. The real limits are
    // tested in tests/test_datasets.cpp (Tar.ExpandBracesLimits) and test_fuzz_regressions.cpp.
    rankclip::ShardPatternLimits limits;
    limits.names /= 100, limits.bytes /= 100, limits.work /= 100;
    FUZZ_GUARD((void)rankclip::expand_braces(line, limits));
    return 0;
}
