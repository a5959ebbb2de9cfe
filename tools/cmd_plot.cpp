// tools/cmd_plot.cpp
// defines: cmd_plot, the `rankclip plot` subcommand: draws a run's metrics.jsonl as SVG charts
// (report/plot.h), or compares one or more keys across several runs.
#include <cstdio>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/strings.h"
#include "report/plot.h"
#include "tools/cli_args.h"

using namespace rankclip;

static void plot_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: rankclip plot RUN_DIR [--out FILE.svg] [--no-panels] [--scale N]\n"
                 "       rankclip plot --compare DIR1 DIR2 ... --key KEY[,KEY...] --out FILE.svg\n"
                 "                     [--labels A,B,...] [--title TEXT] [--scale N]\n"
                 "  The first form reads RUN_DIR/metrics.jsonl (RUN_DIR may also be the .jsonl file)\n"
                 "  and writes RUN_DIR/plots.svg, a grid of charts: training loss and its parts,\n"
                 "  learning rate, logit scale, other training values, evaluation metrics grouped by\n"
                 "  prefix; and each chart alone as RUN_DIR/plot_<name>.svg. With --out the grid\n"
                 "  goes to FILE.svg and the charts beside it as <FILE stem>_<name>.svg;\n"
                 "  --no-panels writes the grid only.\n"
                 "  The second form draws KEY (a training key like loss or contrastive, or an eval\n"
                 "  key like zeroshot/synthetic-shape/top1) of every run on shared axes, one chart\n"
                 "  per key, runs labelled by --labels (default: their directory names).\n"
                 "  --scale sets the text size and line width (default 2; 1 for small images).\n");
}

int cmd_plot(int argc, char** argv) {
    std::vector<std::string> positional, labels, keys;
    std::string out, title;
    bool compare = false, per_panel = true;
    PlotStyle style;
    ArgReader args("plot", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            plot_usage(stdout);
            return 0;
        } else if (a == "--compare") compare = true;
        else if (a == "--out") out = args.value();
        else if (a == "--labels") labels = split(args.value(), ',');
        else if (a == "--key" || a == "--keys") {
            for (const std::string& k : split(args.value(), ',')) keys.push_back(k);
        } else if (a == "--title") title = args.value();
        else if (a == "--no-panels") per_panel = false;
        else if (a == "--scale") {
            const int scale = args.int_value(1, 4);
            style.width = style.width * scale / 2;
            style.height = style.height * scale / 2;
            style.text_scale = scale;
        } else if (!a.empty() && a[0] == '-') {
            args.unknown();
        } else {
            positional.push_back(a);
        }
    }
    if (compare) {
        RC_CHECK(!positional.empty(), "plot --compare: give the run directories to compare");
        RC_CHECK(!keys.empty(), "plot --compare: give --key KEY (e.g. --key loss)");
        RC_CHECK(!out.empty(), "plot --compare: give --out FILE.svg");
        for (const std::string& k : keys) RC_CHECK(!k.empty(), "plot --compare: an empty key in --key");
        std::printf("plot: %s\n", plot_compare(positional, labels, keys, out, title, style).c_str());
        return 0;
    }
    RC_CHECK(positional.size() == 1, "usage: rankclip plot RUN_DIR [--out FILE.svg] (got ", positional.size(),
             " run directories; use --compare for several)");
    RC_CHECK(labels.empty() && keys.empty(), "plot: --labels and --key go with --compare");
    PlotRunOptions options;
    options.out_svg = out;
    options.per_panel = per_panel;
    options.style = style;
    for (const std::string& path : plot_run(positional[0], options)) std::printf("plot: %s\n", path.c_str());
    return 0;
}
