// tools/cmd_bpe_train.cpp
// defines: cmd_bpe_train, `rankclip bpe-train --captions FILE --vocab-size N --out merges.txt.gz`:
// learns a CLIP-style BPE vocabulary from the user's captions (see data/bpe_trainer.h) and writes
// a gzip merges file that `--vocab` / RANKCLIP_VOCAB accept in place of OpenAI's.
#include <chrono>
#include <cstdio>
#include <string>

#include "data/bpe_trainer.h"
#include "engine/error.h"
#include "tools/cli_args.h"

using namespace rankclip;

static void bpe_train_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: rankclip bpe-train --captions FILE --vocab-size N --out MERGES.txt.gz\n"
                 "  learns byte-level BPE merges from FILE (one caption a line) with CLIP's text cleaning\n"
                 "  and split, until the vocabulary has N entries (514 <= N <= 49408: 512 byte symbols,\n"
                 "  the merges, start and end tokens; fewer when the captions run out of pairs), and\n"
                 "  writes them gzip-compressed in CLIP's merges format. The start/end tokens of the\n"
                 "  result are N-2 and N-1. Same captions, same file bytes.\n");
}

int cmd_bpe_train(int argc, char** argv) {
    std::string captions, out;
    int64_t vocab_size = -1;
    ArgReader args("bpe-train", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            bpe_train_usage(stdout);
            return 0;
        } else if (a == "--captions") {
            captions = args.value();
        } else if (a == "--out") {
            out = args.value();
        } else if (a == "--vocab-size") {
            vocab_size = args.integer(0);   // its range is train_bpe_file's to check, with the reason
        } else {
            args.unknown();
        }
    }
    RC_CHECK(!captions.empty(), "bpe-train: --captions FILE is required");
    RC_CHECK(!out.empty(), "bpe-train: --out FILE is required");
    RC_CHECK(vocab_size >= 0, "bpe-train: --vocab-size N is required");
    auto start = std::chrono::steady_clock::now();
    BpeTrainStats st = train_bpe_file(captions, vocab_size, out);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("bpe-train: %lld captions, %lld words (%lld distinct), %lld merges, vocabulary %lld "
                "(start %lld, end %lld) -> %s in %.2f s\n",
                (long long)st.captions, (long long)st.pieces, (long long)st.unique_pieces, (long long)st.merges,
                (long long)st.vocab_size, (long long)st.vocab_size - 2, (long long)st.vocab_size - 1, out.c_str(),
                secs);
    if (st.vocab_size < vocab_size)
        std::printf("bpe-train: note: the captions ran out of pairs to merge before %lld entries\n",
                    (long long)vocab_size);
    return 0;
}
