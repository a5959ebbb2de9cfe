// tests/fuzz/fuzz_image.cpp
// defines: the libFuzzer harness of image decoding (data/image.h, stb_image behind our header
// checks): decode the bytes, and preprocess a decoded image as CLIP does (resize, crop).
#include <vector>

#include "data/image.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FUZZ_GUARD({
        rankclip::Image img = rankclip::decode_image_memory(data, size, "fuzz-input");
        if (img.width <= 0 || img.height <= 0 || img.rgb.size() != size_t(img.width) * img.height * 3) std::abort();
        std::vector<float> out(3 * 8 * 8);
        rankclip::preprocess_clip(img, 8, out.data());
    });
    return 0;
}
