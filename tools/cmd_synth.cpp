// tools/cmd_synth.cpp
// defines: cmd_synth, the `rankclip synth` subcommand: writes a split of the built-in synthetic
// dataset (data/synthetic.h) to disk as PNGs + an OpenCLIP captions CSV (+ labels.csv).
#include <cstdio>
#include <string>

#include "data/synthetic.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "tools/cli_args.h"

using namespace rankclip;

static void synth_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: rankclip synth --out DIR --n N [--seed S] [--size PX]\n"
                 "                      [--split train|val|heldout] [--captions K]\n"
                 "                      [--max-objects 1..3] [--threads T]\n"
                 "  write N synthetic images (default 32x32 px, seed 0, split train) as\n"
                 "  DIR/images/NNNNNNN.png, DIR/captions.csv (columns filepath,title; K captions\n"
                 "  per image, default 1) and DIR/labels.csv (filepath,shape,colour,count,relation).\n"
                 "  The heldout split holds the (shape, colour) combinations that train and val\n"
                 "  never show: purple circle, yellow square, blue triangle, red diamond,\n"
                 "  green star, orange cross.\n");
}

int cmd_synth(int argc, char** argv) {
    SyntheticConfig config;
    std::string out_dir;
    bool have_n = false;
    uint64_t seed = 0;
    SyntheticSplit split = SyntheticSplit::Train;
    int captions_per_image = 1;
    ArgReader args("synth", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            synth_usage(stdout);
            return 0;
        } else if (a == "--out") out_dir = args.value();
        else if (a == "--n") { config.n = size_t(args.integer(1)); have_n = true; }
        else if (a == "--seed") seed = uint64_t(args.integer(0));
        else if (a == "--size") config.image_size = args.int_value(4);
        else if (a == "--split") split = parse_synthetic_split(args.value());
        else if (a == "--captions") captions_per_image = args.int_value(1);
        else if (a == "--max-objects") config.max_objects = args.int_value(1);
        else if (a == "--threads") set_num_threads(args.int_value(1));
        else args.unknown();
    }
    RC_CHECK(!out_dir.empty() && have_n, "synth: --out DIR and --n N are required "
             "(see rankclip synth --help)");
    SyntheticDataset dataset(config, split, seed);
    size_t written = export_synthetic(dataset, out_dir, captions_per_image);
    std::printf("%s\nwrote %zu images, %s/captions.csv and %s/labels.csv\n",
                dataset.describe().c_str(), written, out_dir.c_str(), out_dir.c_str());
    return 0;
}
