// tools/cmd_tokenize.cpp
// defines: cmd_tokenize, `rankclip tokenize --vocab FILE [--context-length N]`: reads lines from
// standard input and prints each line's token ids as a JSON array, one line per input line.
// Without --context-length: the BPE ids only, no start/end tokens and no padding (the format of
// the "ids" of the golden tokenizations, tools/gen_tokenizer_ref.py). With it: the model's input, [sot] + ids +
// [eot], cut to N keeping eot last, padded with 0 to N.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "engine/error.h"
#include "tools/cli_args.h"

using namespace rankclip;

static void tokenize_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: rankclip tokenize [--vocab FILE] [--context-length N]\n"
                 "  reads text from standard input, one caption a line, and prints each line's CLIP BPE\n"
                 "  token ids as a JSON array. --vocab names the merges file (bpe_simple_vocab_16e6.txt.gz\n"
                 "  or one written by `rankclip bpe-train`); default: $RANKCLIP_VOCAB. Without\n"
                 "  --context-length the ids exclude the start/end tokens and are not padded; with it,\n"
                 "  each line is [start] + ids + [end], cut to N (the end token kept last), padded with 0.\n");
}

int cmd_tokenize(int argc, char** argv) {
    std::string vocab = vocab_path_from_env();
    int context_length = 0;
    ArgReader args("tokenize", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            tokenize_usage(stdout);
            return 0;
        } else if (a == "--vocab") {
            vocab = args.value();
        } else if (a == "--context-length") {
            context_length = args.int_value(2, 1 << 16);   // as rankclip pack
        } else {
            args.unknown();
        }
    }
    RC_CHECK(!vocab.empty(), "tokenize: no vocabulary: pass --vocab FILE or set RANKCLIP_VOCAB");
    Tokenizer tok = Tokenizer::from_file(vocab);
    std::string line, out;
    while (std::getline(std::cin, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::vector<int64_t> ids = context_length > 0 ? tok.tokenize(line, context_length) : tok.encode(line);
        out = "[";
        for (size_t i = 0; i < ids.size(); i++) {
            if (i) out += ", ";
            out += std::to_string(ids[i]);
        }
        out += "]\n";
        std::fwrite(out.data(), 1, out.size(), stdout);
    }
    return 0;
}
