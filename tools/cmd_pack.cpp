// tools/cmd_pack.cpp
// defines: cmd_pack, the `rankclip pack` subcommand: converts any supported dataset
// (data/open_dataset.h) into one packed shard (data/packed.h): images decoded once, resized and
// center-cropped to --size, captions tokenized with --vocab (the synthetic data's default
// vocabulary when none is named for it; a packed source's stored token ids are kept when none is
// named), so training reads uint8 pixels straight from a memory map.
#include <cstdio>
#include <string>

#include "data/loader.h"
#include "data/open_dataset.h"
#include "data/packed.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "engine/error.h"
#include "tools/cli_args.h"

using namespace rankclip;

static void pack_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: rankclip pack --data SRC --out FILE --size PX [--vocab FILE]\n"
                 "                     [--context-length N] [--token-dtype int32|int64]\n"
                 "                     [--image-column C] [--caption-column C] [--separator S]\n"
                 "                     [--on-bad skip|stop] [--threads T] [--seed S]\n"
                 "  SRC: a .csv/.tsv (OpenCLIP), WebDataset shards ('shards-{00000..00099}.tar'),\n"
                 "  a class-folder directory, fashion-mnist[:train|test][:captions],\n"
                 "  synthetic[:train|val|heldout][:N], or another packed file.\n"
                 "  Writes FILE (atomically) with uint8 (N, PX, PX, 3) pixels (short side resized\n"
                 "  bicubic, center-cropped), token ids (N, context length; default 77) when\n"
                 "  --vocab (or $RANKCLIP_VOCAB) names a BPE merges file (synthetic data: its\n"
                 "  default vocabulary, trained on its captions, when none is named), labels and\n"
                 "  captions. A packed SRC keeps its stored token ids when no --vocab is given\n"
                 "  (at their own context length), so it can be re-packed to another size.\n"
                 "  Bad samples (missing/corrupt images, non-UTF-8 captions) are skipped and\n"
                 "  counted by default; --on-bad stop makes them fatal.\n");
}

int cmd_pack(int argc, char** argv) {
    std::string data, out, vocab = vocab_path_from_env();
    OpenOptions open;
    PackOptions pack;
    pack.image_size = 0;
    bool context_length_given = false, token_dtype_given = false;
    ArgReader args("pack", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            pack_usage(stdout);
            return 0;
        } else if (a == "--data") data = args.value();
        else if (a == "--out") out = args.value();
        else if (a == "--size") pack.image_size = args.int_value(1, 4096);
        else if (a == "--vocab") vocab = args.value();
        else if (a == "--context-length") {
            pack.context_length = args.int_value(2, 1 << 16);
            context_length_given = true;
        } else if (a == "--token-dtype") {
            std::string v = args.value();
            token_dtype_given = true;
            RC_CHECK(v == "int32" || v == "int64", "pack: --token-dtype must be int32 or int64, got '", v, "'");
            pack.token_dtype = v == "int32" ? DType::I32 : DType::I64;
        } else if (a == "--image-column") open.image_column = args.value();
        else if (a == "--caption-column") open.caption_column = args.value();
        else if (a == "--separator") open.separator = args.value();
        else if (a == "--on-bad") open.on_bad = parse_bad_sample_policy(args.value());
        else if (a == "--threads") pack.num_threads = args.int_value(1, 1024);
        else if (a == "--seed") open.seed = uint64_t(args.integer(0, (1LL << 62)));
        else args.unknown();
    }
    RC_CHECK(!data.empty() && !out.empty() && pack.image_size > 0,
             "pack: --data, --out and --size are required (see rankclip pack --help)");
    auto ds = open_dataset(data, open);
    std::fprintf(stderr, "pack: %s\n", ds->describe().c_str());
    Tokenizer tok;
    const auto* packed = dynamic_cast<const PackedDataset*>(ds.get());
    if (!vocab.empty()) {
        tok = Tokenizer::from_file(vocab);
        pack.tokenizer = &tok;
    } else if (packed && packed->context_length() > 0) {
        // Re-packing a packed file: its token ids are copied as they are (pack_dataset does it).
        // Another context length would need its captions re-tokenized, with a vocabulary.
        RC_CHECK(!context_length_given || pack.context_length == packed->context_length(), "pack: ", data,
                 " stores token ids of context length ", packed->context_length(), "; --context-length ",
                 pack.context_length, " needs --vocab (the merges file they were made with) to re-tokenize"
                 " its captions; leave --context-length out to keep the stored ids");
        if (!token_dtype_given) pack.token_dtype = packed->token_dtype();
        std::fprintf(stderr, "pack: no --vocab: keeping the token ids stored in %s (context length %d)\n",
                     data.c_str(), packed->context_length());
    } else if (dynamic_cast<const SyntheticDataset*>(ds.get())) {
        pack.tokenizer = &synthetic_default_tokenizer();
        std::fprintf(stderr, "pack: no --vocab: tokenizing with the synthetic data's default vocabulary (%lld entries)\n",
                     (long long)pack.tokenizer->vocab_size());
    } else {
        std::fprintf(stderr, "pack: no --vocab (or RANKCLIP_VOCAB): storing captions without token ids\n");
    }
    pack.progress = [](size_t done, size_t total) { print_progress("pack", int64_t(done), int64_t(total)); };
    size_t n = pack_dataset(*ds, out, pack);
    std::fprintf(stderr, "pack: wrote %zu samples to %s\n", n, out.c_str());
    return 0;
}
