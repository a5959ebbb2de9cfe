// tools/rankclip.cpp
// defines: the `rankclip` command line — main and the table of subcommands, one file each in
// tools/cmd_*.cpp: {name, function, summary}. `rankclip --help` prints every summary; each
// command's own --help prints its options. Errors are one line on stderr ("rankclip COMMAND:
// error: ...") and a non-zero exit status.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "engine/ops.h"   // use_short_openmp_spin

int cmd_demo(int argc, char** argv);
int cmd_experiment(int argc, char** argv);
int cmd_mlp(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_embed(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_bpe_train(int argc, char** argv);
int cmd_synth(int argc, char** argv);
int cmd_pack(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_plot(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_eval(int argc, char** argv);

namespace {

struct Command {
    const char* name;
    int (*run)(int argc, char** argv);   // the arguments after the command's name
    const char* summary;                 // its usage line(s) after the name, then what it does
};

const Command kCommands[] = {
    {"demo", cmd_demo,
     "[--steps N] [--quick] [--out DIR]\n"
     "        the main job: train tiny with clip and with rankclip from one seed on the synthetic\n"
     "        data, evaluate both, write DIR/report.md (default runs/demo) and print the table"},
    {"experiment", cmd_experiment,
     "--data synthetic|fashion-mnist [--seeds N] [--steps N] [--arms ...]\n"
     "        clip, cyclip, rankclip and its ablations, several seeds each, evaluated alike;\n"
     "        a mean +- std table (experiment --help)"},
    {"mlp", cmd_mlp,
     "[--steps N] [--seed S] [--threads T]\n"
     "        fit a small MLP to y = x tanh(3x) + noise with SGD, printing the loss as it falls"},
    {"info", cmd_info,
     "CHECKPOINT\n"
     "        print a CLIP checkpoint's config, parameter count and tensors (name, dtype, shape)"},
    {"embed", cmd_embed,
     "--checkpoint C [--images DIR|LIST.txt|IMAGES.npy] [--texts CAPTIONS.txt|IDS.npy]\n"
     "        --out PREFIX [--vocab MERGES.txt.gz|synthetic] [--device cpu|cuda[:N]] ...\n"
     "        write the L2-normalised features of image files (CLIP's preprocessing) or a\n"
     "        pre-processed batch, and of captions or token ids, as float32 .npy files (embed --help)"},
    {"tokenize", cmd_tokenize,
     "--vocab MERGES.txt.gz [--context-length N]\n"
     "        print the CLIP BPE token ids of each line of standard input as a JSON array"},
    {"bpe-train", cmd_bpe_train,
     "--captions FILE --vocab-size N --out MERGES.txt.gz\n"
     "        train a BPE vocabulary (merges file, CLIP's format) on your own captions"},
    {"synth", cmd_synth,
     "--out DIR --n N [--seed S] [--size PX] [--split train|heldout]\n"
     "        write the built-in synthetic captioned images as PNGs + a captions CSV"},
    {"pack", cmd_pack,
     "--data SRC --out FILE --size PX [--vocab FILE] [--context-length N]\n"
     "        convert a dataset to the packed, memory-mapped shard format"},
    {"train", cmd_train,
     "[--model tiny] [--loss clip|rankclip|cyclip|siglip] [--data synthetic] [--steps N]\n"
     "        [--out DIR] [--resume DIR] ...\n"
     "        pretrain a CLIP model; progress lines, metrics.jsonl, checkpoints (train --help)"},
    {"plot", cmd_plot,
     "RUN_DIR [--out FILE.svg] | plot --compare DIR1 DIR2 ... --key KEY --out FILE.svg\n"
     "        draw metrics.jsonl as SVG charts (loss, lr, logit scale, eval metrics; plot --help)"},
    {"bench", cmd_bench,
     "[--model tiny] [--loss clip] [--batch-size N] [--steps N] [--device D] ...\n"
     "        time full training steps on random data; one JSON line (bench --help)"},
    {"eval", cmd_eval,
     "--checkpoint C [--zeroshot SPEC] [--retrieval SPEC] [--probe SPEC] [--consistency SPEC]\n"
     "        [--out RESULTS.json] ...\n"
     "        zero-shot, retrieval, linear probe, ranking consistency; a table + JSON (eval --help)"},
};

void usage(std::FILE* out) {
    std::fprintf(out, "usage: rankclip <command> [options]\ncommands:\n");
    for (const Command& c : kCommands) std::fprintf(out, "  %s %s\n", c.name, c.summary);
    std::fprintf(out,
                 "  <command> --help\n"
                 "        the options of one command\n"
                 "  --help\n"
                 "        this text\n");
}

std::string command_names() {
    std::string names;
    for (const Command& c : kCommands) names += (names.empty() ? "" : ", ") + std::string(c.name);
    return names;
}

}  // namespace

int main(int argc, char** argv) {
    rankclip::use_short_openmp_spin(argv);  // may restart the program once (engine/parallel.cpp)
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const std::string name = argv[1];
    const Command* command = nullptr;
    for (const Command& c : kCommands)
        if (name == c.name) command = &c;
    if (!command) {
        std::fprintf(stderr, "rankclip: unknown command '%s' (commands: %s; see rankclip --help)\n", name.c_str(),
                     command_names().c_str());
        return 2;
    }
    try {
        return command->run(argc - 2, argv + 2);
    } catch (const std::bad_alloc&) {  // the library's own allocators say what they wanted; this is the rest
        std::fprintf(stderr, "rankclip %s: error: out of memory (a size read from an input may be too large; "
                     "the limits are in docs/RELIABILITY.md)\n", name.c_str());
        return 1;
    } catch (const std::exception& e) {
        std::string message = e.what();
        std::replace(message.begin(), message.end(), '\n', ' ');  // one line, always
        std::fprintf(stderr, "rankclip %s: error: %s\n", name.c_str(), message.c_str());
        return 1;
    }
}
