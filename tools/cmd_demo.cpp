// tools/cmd_demo.cpp
// defines: cmd_demo, the main job (`make demo`, `rankclip demo`): trains the same model with the
// clip loss and with the rankclip loss, from the same seed, on the built-in synthetic data (no
// download), evaluates both on the synthetic zero-shot tasks (val and the held-out compositions),
// retrieval and ranking consistency, and writes OUT/report.md with the comparison table, the loss
// curves (OUT/loss.svg) and the command that reproduces it; prints the table at the end. The
// table's rows and cells are report/report_table.h's, shared with `rankclip experiment`.
// One seed is one sample: docs/RESULTS.md has the multi-seed experiment behind any claim.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "data/synthetic.h"
#include "engine/atomic_file.h"
#include "engine/ops.h"
#include "tools/cli_args.h"
#include "eval/eval.h"
#include "report/plot.h"
#include "report/report_table.h"
#include "train/trainer.h"

using namespace rankclip;
namespace fs = std::filesystem;

static void demo_usage(std::FILE* out) {
    std::fprintf(out,
        "usage: rankclip demo [--steps N] [--batch-size B] [--model tiny|CONFIG.json] [--seed S]\n"
        "                     [--eval-n N] [--threads T] [--precision fp32|bf16] [--out DIR] [--quick]\n"
        "  train `tiny` with the clip loss and with the rankclip loss from the same seed on the\n"
        "  synthetic data (default 300 steps of batch 64 each, about 10 minutes on 2 cores),\n"
        "  evaluate both (zero-shot on val and held-out compositions, retrieval, ranking\n"
        "  consistency on N = 500 val images), and write DIR/report.md (default runs/demo) with\n"
        "  the table, DIR/loss.svg and the command. DIR/clip and DIR/rankclip are the two runs\n"
        "  (replaced on each demo). --quick: 60 steps of batch 32 and 200 evaluation images.\n"
        "  --precision bf16: bf16 autocast with fp32 master weights (default fp32).\n");
}

namespace {

struct DemoRun {
    std::string label, loss, dir;
    Metrics eval;
    double seconds = 0, final_loss = 0;
};

// The table of the report: report_rows("synthetic") with a chance column, one column per run, and
// the runs' final training loss and time.
std::string comparison_table(const std::vector<DemoRun>& runs, const std::map<std::string, double>& chance) {
    std::vector<ReportColumn> columns;
    for (const auto& r : runs) columns.push_back({r.label, {r.eval}});
    std::ostringstream t;
    t << report_table("metric", report_rows("synthetic"), columns, &chance);
    t << "| final training loss | - |";
    for (const auto& r : runs) t << " " << std::to_string(r.final_loss).substr(0, 6) << " |";
    t << "\n| training time | - |";
    for (const auto& r : runs) t << " " << int(r.seconds + 0.5) << " s |";
    t << "\n";
    return t.str();
}

}  // namespace

int cmd_demo(int argc, char** argv) {
    int64_t steps = 300, batch = 64, eval_n = 500;
    uint64_t seed = 0;
    int threads = 0;
    std::string model = "tiny", precision = "fp32", out = "runs/demo";
    bool quick = false, steps_given = false, batch_given = false, eval_given = false;
    std::string command = "rankclip demo";
    for (int i = 0; i < argc; i++) command += std::string(" ") + argv[i];
    ArgReader args("demo", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            demo_usage(stdout);
            return 0;
        }
        else if (a == "--steps") steps = args.integer(1), steps_given = true;
        else if (a == "--batch-size") batch = args.integer(2), batch_given = true;
        else if (a == "--eval-n") eval_n = args.integer(10), eval_given = true;
        else if (a == "--model") model = args.value();
        else if (a == "--seed") seed = uint64_t(args.integer(0));
        else if (a == "--threads") threads = args.int_value(1);
        else if (a == "--precision") precision = args.value();
        else if (a == "--out") out = args.value();
        else if (a == "--quick") quick = true;
        else args.unknown();
    }
    if (quick) {
        if (!steps_given) steps = 60;
        if (!batch_given) batch = 32;
        if (!eval_given) eval_n = 200;
    }
    RC_CHECK(precision == "fp32" || precision == "bf16", "demo: --precision must be fp32 or bf16, got '", precision,
             "'");
    if (threads > 0) set_num_threads(threads);

    EvalConfig eval;
    eval.zero_shot = {"synthetic:val:" + std::to_string(eval_n), "synthetic:heldout:" + std::to_string(eval_n)};
    eval.retrieval = {"synthetic:val:" + std::to_string(eval_n)};
    eval.consistency = {"synthetic:val:" + std::to_string(eval_n)};

    std::printf("demo: %s, clip vs rankclip, %lld steps of batch %lld each, seed %llu, %s, %d threads -> %s\n",
                model.c_str(), (long long)steps, (long long)batch, (unsigned long long)seed, precision.c_str(),
                get_num_threads(), out.c_str());
    std::vector<DemoRun> runs = {{"CLIP", "clip", out + "/clip", {}, 0, 0},
                                 {"RankCLIP", "rankclip", out + "/rankclip", {}, 0, 0}};
    for (DemoRun& run : runs) {
        fs::remove_all(run.dir);  // the demo's own output: each demo starts its runs afresh
        TrainConfig c;
        c.model = model;
        c.data = "synthetic:train";
        c.loss.kind = parse_loss_kind(run.loss);
        c.batch_size = batch;
        c.steps = steps;
        c.warmup = steps / 10;
        c.seed = seed;
        c.threads = threads;
        c.precision = precision;
        c.log_every = std::max<int64_t>(1, steps / 20);
        c.out = run.dir;
        c.keep_last = 1;
        TrainHooks hooks;
        hooks.evaluate = [&eval](const CLIP& m, const Tokenizer& tok, int64_t) { return evaluate(m, eval, tok); };
        std::printf("\n== %s ==\n", run.label.c_str());
        std::fflush(stdout);
        auto t0 = std::chrono::steady_clock::now();
        TrainResult r = train(c, "", hooks);
        run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r.interrupted) return 130;
        run.eval = r.last_eval;
        run.final_loss = r.last_loss;
    }

    // chance levels: 1 / classes for zero-shot; the retrieval ones depend on N
    std::map<std::string, double> chance;
    for (const ZeroShotTask& task : synthetic_zero_shot_tasks()) {
        double p = 1.0 / double(task.class_names.size());
        chance["zeroshot/synthetic-" + task.name + "/top1"] = p;
        chance["zeroshot/synthetic-heldout-" + task.name + "/top1"] = p;
    }
    double n_images = double(eval_n);
    chance["retrieval/synthetic/i2t/R@1"] = 5.0 / (5.0 * n_images);
    chance["retrieval/synthetic/t2i/R@1"] = 1.0 / n_images;
    chance["retrieval/synthetic/t2i/R@5"] = 5.0 / n_images;
    chance["retrieval/synthetic/t2i/median_rank"] = (n_images + 1) / 2;

    std::vector<std::string> dirs, labels;
    for (const auto& r : runs) dirs.push_back(r.dir), labels.push_back(r.label);
    std::string loss_svg = out + "/loss.svg";
    plot_compare(dirs, labels, {"contrastive"}, loss_svg, "InfoNCE part of the training loss");
    std::string total_svg = out + "/loss_total.svg";
    plot_compare(dirs, labels, {"loss"}, total_svg, "training loss (RankCLIP: InfoNCE + weighted ranking terms)");

    std::string table = comparison_table(runs, chance);
    std::ostringstream report;
    report << "# rankclip demo: CLIP vs RankCLIP on the synthetic data\n\n"
           << "Both runs: model `" << model << "`, " << steps << " steps of batch " << batch
           << ", AdamW lr 5e-4 (warm-up " << steps / 10 << " steps, cosine), weight decay 0.1, seed " << seed
           << ", the same initial weights and the same batches; "
           << (precision == "bf16" ? "bf16 autocast (fp32 master weights); " : "") << get_num_threads()
           << " CPU threads. Evaluated on " << eval_n
           << " images of the synthetic val split and of the held-out split (shape-colour pairs never "
              "seen in training); retrieval with 5 captions per image. RankCLIP adds both ranking terms "
              "(cross-modal and in-modal) with the released code's weight schedule: 0 for the first epoch, "
              "then clamp(3(e-1)/(E-1), 0, 2); a run shorter than two epochs ramps over steps instead. So "
              "the two runs are the same until the weight turns on.\n\n"
           << table << "\n"
           << "One seed is one sample: differences smaller than the spread across seeds "
              "(docs/RESULTS.md) say nothing about the methods.\n\n"
           << "![InfoNCE part of the loss](loss.svg)\n\n![total loss](loss_total.svg)\n\n"
           << "Per-run charts: `rankclip plot " << runs[0].dir << "`, `rankclip plot " << runs[1].dir << "`.\n\n"
           << "Reproduce: `" << command << "`\n";
    write_file_atomic(out + "/report.md", report.str());
    std::printf("\n%s\nreport: %s/report.md (loss curves: %s)\n", table.c_str(), out.c_str(), loss_svg.c_str());
    return 0;
}
