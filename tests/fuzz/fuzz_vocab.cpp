// tests/fuzz/fuzz_vocab.cpp
// defines: the libFuzzer harness of the vocabulary (merges) file reader (data/tokenizer.h,
// Tokenizer::from_file: gzip or plain text), then a short encoding with what was read.
#include "data/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rankclip::fuzz::FuzzFile file(".txt");
    const std::string& path = file.write(data, size);
    FUZZ_GUARD({
        rankclip::Tokenizer tok = rankclip::Tokenizer::from_file(path);
        (void)tok.tokenize("a photo of a cat, the dog's 3 toys", 16);
    });
    return 0;
}
