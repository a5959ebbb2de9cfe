// tests/fuzz/fuzz_tokenizer.cpp
// defines: the libFuzzer harness of the tokenizer's text encoding (data/tokenizer.h), with the
// synthetic data's vocabulary: encode, tokenize at CLIP's context length, decode; and the fast
// BPE checked against CLIP's quadratic loop on every piece of short inputs.
#include <cstdlib>
#include <string>

#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const rankclip::Tokenizer& tok = rankclip::synthetic_default_tokenizer();
    const std::string text(reinterpret_cast<const char*>(data), size);
    FUZZ_GUARD({
        std::vector<int64_t> ids = tok.encode(text);
        std::vector<int64_t> ctx = tok.tokenize(text, 77);
        if (ctx.size() != 77) std::abort();
        (void)tok.decode(ids);
        if (size <= 256)
            for (const std::string& piece : rankclip::clip_pre_tokenize(text))
                if (tok.bpe(piece) != tok.bpe_reference(piece)) std::abort();
    });
    return 0;
}
