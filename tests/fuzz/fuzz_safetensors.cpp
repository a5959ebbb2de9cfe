// tests/fuzz/fuzz_safetensors.cpp
// defines: the libFuzzer harness of the safetensors reader (engine/safetensors.h): open the input
// as a file, then copy every tensor out.
#include "engine/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rankclip::fuzz::FuzzFile file(".safetensors");
    const std::string& path = file.write(data, size);
    FUZZ_GUARD({
        rankclip::SafetensorsFile f(path);
        for (const std::string& name : f.names()) (void)f.tensor(name);
    });
    return 0;
}
