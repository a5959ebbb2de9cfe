// tests/fuzz/fuzz_npy.cpp
// defines: the libFuzzer harness of the .npy reader (data/npy.h).
#include "data/npy.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rankclip::fuzz::FuzzFile file(".npy");
    const std::string& path = file.write(data, size);
    FUZZ_GUARD((void)rankclip::read_npy(path));
    return 0;
}
