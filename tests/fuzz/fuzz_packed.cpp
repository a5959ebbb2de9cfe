// tests/fuzz/fuzz_packed.cpp
// defines: the libFuzzer harness of the packed shard reader (data/packed.h): open the input as a
// packed file, then read every sample (pixels, tokens, label, caption).
#include <vector>

#include "data/packed.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rankclip::fuzz::FuzzFile file(".rcpack");
    const std::string& path = file.write(data, size);
    FUZZ_GUARD({
        rankclip::PackedDataset ds(path);
        std::vector<int64_t> ids(size_t(ds.context_length()) + 1);
        for (size_t i = 0; i < ds.size(); i++) {
            (void)ds.get(i);
            if (ds.context_length() > 0) ds.tokens(i, ids.data());
        }
        (void)ds.describe();
    });
    return 0;
}
