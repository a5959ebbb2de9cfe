// tests/test_demo.cpp
// tests: the main job, `rankclip demo --quick` (the CI-sized variant of `make demo`), run as a
// user runs it: both runs train, the report is written with the comparison table, the loss chart
// and the command, and both trained models beat chance clearly on a synthetic zero-shot task.
// Also `rankclip train` from the command line: its progress lines, metrics.jsonl and checkpoint,
// and an evaluation logged with --eval-every.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "cli_test_util.h"
#include "data/image.h"
#include "engine/json.h"

using namespace rankclip;
using namespace rankclip::test;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The last "eval" line of a run's metrics.jsonl.
Json last_eval(const std::string& run_dir) {
    std::ifstream in(run_dir + "/metrics.jsonl");
    std::string line;
    Json last;
    while (std::getline(in, line)) {
        Json j = Json::parse(line);
        if (j.at("type").as_string() == "eval") last = j;
    }
    return last;
}

}  // namespace

TEST(Demo, QuickRunWritesTheReportAndBothModelsLearn) {
    REQUIRE_BINARY();
    TempDir dir("rankclip_demo");
    std::string out = dir.file("demo");
    CliResult r = run_cli(bin, "demo --quick --out " + out, dir);
    ASSERT_EQ(r.status, 0) << r.err;
    std::string report = slurp(out + "/report.md");
    for (const char* part : {"| metric | chance | CLIP | RankCLIP |", "zero-shot colour, top-1", "held-out compositions",
                             "text->image R@1", "loss.svg", "Reproduce: `rankclip demo --quick --out"})
        EXPECT_TRUE(contains(report, part)) << part << " missing from the report:\n" << report;
    EXPECT_TRUE(contains(r.out, "| zero-shot shape, top-1 |")) << "the table is printed at the end";
    const std::string chart = slurp(out + "/loss.svg");
    EXPECT_TRUE(contains(chart, "<svg") && contains(chart, "</svg>")) << chart;

    for (const char* run : {"clip", "rankclip"}) {
        SCOPED_TRACE(run);
        Json eval = last_eval(out + "/" + run);
        ASSERT_FALSE(eval.is_null()) << "no evaluation in " << run << "/metrics.jsonl";
        // colour has 8 classes (chance 12.5%): a model that learned anything separates colours
        double colour = eval.at("zeroshot/synthetic-colour/top1").as_double();
        EXPECT_GT(colour, 0.25) << "zero-shot colour accuracy " << colour << " is not clearly above chance 0.125";
        double t2i = eval.at("retrieval/synthetic/t2i/R@5").as_double();
        EXPECT_GT(t2i, 2 * 5.0 / 200) << "text->image R@5 " << t2i << " is not clearly above chance";
    }
}

TEST(TrainCli, LogsCheckpointsAndEvaluates) {
    REQUIRE_BINARY();
    TempDir dir("rankclip_train_cli");
    std::string out = dir.file("run");
    std::ofstream(dir.file("micro.json"))
        << R"({"image_size": 16, "patch_size": 4, "vision_width": 32, "vision_layers": 1, "vision_heads": 2,
               "context_length": 16, "vocab_size": 674, "text_width": 32, "text_layers": 1, "text_heads": 2,
               "embed_dim": 16})";
    CliResult r = run_cli(bin,
                          "train --model " + dir.file("micro.json") +
                              " --data synthetic:train:64 --loss rankclip --batch-size 8 --steps 4 --log-every 2"
                              " --eval-every 4 --eval-zeroshot synthetic:val:20 --eval-retrieval none"
                              " --eval-probe none --eval-consistency none --out " + out,
                          dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "step 2/4 | epoch")) << r.out;
    EXPECT_TRUE(contains(r.out, "rank_cross")) << r.out;
    EXPECT_TRUE(contains(r.out, "img/s | ETA")) << r.out;
    EXPECT_TRUE(std::filesystem::exists(out + "/checkpoints/step_00000004.safetensors"));
    Json eval = last_eval(out);
    ASSERT_FALSE(eval.is_null());
    EXPECT_EQ(eval.at("step").as_int(), 4);
    EXPECT_TRUE(eval.contains("zeroshot/synthetic-shape/top1"));

    CliResult again = run_cli(bin, "train --steps 4 --out " + out, dir);
    EXPECT_NE(again.status, 0);
    EXPECT_TRUE(contains(again.err, "--resume")) << again.err;
    CliResult bad = run_cli(bin, "train --loss infonce", dir);
    EXPECT_NE(bad.status, 0);
    EXPECT_TRUE(contains(bad.err, "unknown loss 'infonce'")) << bad.err;
}
