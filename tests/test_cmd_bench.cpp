// tests/test_cmd_bench.cpp
// tests: `rankclip bench` (tools/cmd_bench.cpp), run as a user runs it on a very small custom
// config with 1 warm-up and 2 timed steps: it prints exactly one JSON line with every key, the
// values echo the options, the timings, throughput and memory are positive and consistent with
// each other, the loss is finite, each loss (SigLIP needs the model's logit_bias) runs, and bad
// options (--compare-torch with a config file among them) fail with one line on stderr; --profile
// adds the op profiler's table on stderr. No timing
// thresholds. The binary is $RANKCLIP_BIN, else `rankclip` beside the test binary; when it is not
// there the tests skip, saying so.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "cli_test_util.h"
#include "engine/json.h"
#include "test_util.h"

using namespace rankclip;
using rankclip::test::TempDir;

namespace {

using rankclip::test::run_cli;
using Result = rankclip::test::CliResult;

int count_lines(const std::string& text) { return int(std::count(text.begin(), text.end(), '\n')); }

// A model small enough that a step takes milliseconds: 16 px, one layer per tower, vocab 100.
std::string write_tiny_config(const TempDir& dir) {
    const std::string path = dir.file("micro.json");
    std::ofstream(path) << R"({"image_size": 16, "patch_size": 4, "vision_width": 32, "vision_layers": 1,
        "vision_heads": 2, "context_length": 8, "vocab_size": 100, "text_width": 32, "text_layers": 1,
        "text_heads": 2, "embed_dim": 16})";
    return path;
}

// Runs the bench with `loss` and returns its one JSON line, parsed.
Json bench_line(const std::string& bin, const TempDir& dir, const std::string& config, const std::string& loss) {
    Result r = run_cli(
        bin, "bench --model " + config + " --batch-size 6 --warmup 1 --steps 2 --threads 1 --loss " + loss, dir);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(count_lines(r.out), 1) << r.out;
    EXPECT_EQ(r.err, "");
    return Json::parse(r.out);
}

TEST(CmdBench, PrintsOneJsonLineWithEveryKey) {
    REQUIRE_BINARY_FOR("bench CLI tests");
    TempDir dir("rankclip_cmd_bench");
    const std::string config = write_tiny_config(dir);
    Json j = bench_line(bin, dir, config, "clip");
    for (const char* key : {"bench", "model", "loss", "batch_size", "device", "precision", "threads", "warmup",
                            "steps", "median_ms", "min_ms", "images_per_s", "peak_memory_mb", "memory_kind",
                            "last_loss"})
        EXPECT_TRUE(j.contains(key)) << key << " missing from " << j.dump();
    EXPECT_EQ(j.at("bench").as_string(), "train_step");
    EXPECT_EQ(j.at("model").as_string(), config);
    EXPECT_EQ(j.at("loss").as_string(), "clip");
    EXPECT_EQ(j.at("batch_size").as_int(), 6);
    EXPECT_EQ(j.at("device").as_string(), "cpu");
    EXPECT_EQ(j.at("precision").as_string(), "fp32");
    EXPECT_EQ(j.at("threads").as_int(), 1);
    EXPECT_EQ(j.at("warmup").as_int(), 1);
    EXPECT_EQ(j.at("steps").as_int(), 2);
    EXPECT_EQ(j.at("memory_kind").as_string(), "rss");

    double median = j.at("median_ms").as_double(), fastest = j.at("min_ms").as_double();
    EXPECT_GT(fastest, 0.0);
    EXPECT_GE(median, fastest);
    // images/s is the batch over the median step (both rounded to 4 significant digits)
    EXPECT_NEAR(j.at("images_per_s").as_double(), 6.0 / (median * 1e-3), 2e-3 * 6.0 / (median * 1e-3));
    // the process holds at least its own model and batch; a bound, not a measurement
    double rss = j.at("peak_memory_mb").as_double();
    EXPECT_GT(rss, 1.0);
    EXPECT_LT(rss, 64.0 * 1024.0);
    // the symmetric InfoNCE loss of 6 pairs starts near ln 6 and stays finite
    double loss = j.at("last_loss").as_double();
    EXPECT_TRUE(std::isfinite(loss));
    EXPECT_GT(loss, 0.0);
}

TEST(CmdBench, EveryLossRuns) {
    REQUIRE_BINARY_FOR("bench CLI tests");
    TempDir dir("rankclip_cmd_bench");
    const std::string config = write_tiny_config(dir);
    for (const char* loss : {"rankclip", "cyclip", "siglip"}) {
        SCOPED_TRACE(loss);
        Json j = bench_line(bin, dir, config, loss);
        ASSERT_TRUE(j.is_object());
        EXPECT_EQ(j.at("loss").as_string(), loss);
        EXPECT_TRUE(std::isfinite(j.at("last_loss").as_double()));
        EXPECT_GT(j.at("median_ms").as_double(), 0.0);
    }
}

// --profile: the JSON line as before on stdout; on stderr the table, with the step's GEMMs
// (linear rows), attention, AdamW and the kernels' total among its rows.
TEST(CmdBench, ProfilePrintsWhereTheTimeGoes) {
    REQUIRE_BINARY_FOR("bench CLI tests");
    TempDir dir("rankclip_cmd_bench");
    const std::string config = write_tiny_config(dir);
    Result r = run_cli(bin, "bench --model " + config + " --batch-size 6 --warmup 1 --steps 1 --threads 1 --profile 2",
                       dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(count_lines(r.out), 1) << r.out;
    EXPECT_TRUE(Json::parse(r.out).is_object());
    for (const char* row : {"profile: 2 step(s)", "\n  ms/step", "linear F32 (", "attention F32 (6,2,", "adamw F32",
                            "by family:", "kernels in all", "between kernels"})
        EXPECT_NE(r.err.find(row), std::string::npos) << row << " missing from:\n" << r.err;
}

TEST(CmdBench, HelpAndBadOptions) {
    REQUIRE_BINARY_FOR("bench CLI tests");
    TempDir dir("rankclip_cmd_bench");
    Result help = run_cli(bin, "bench --help", dir);
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.out.find("--batch-size"), std::string::npos) << help.out;

    for (const char* args : {"bench --loss hinge", "bench --steps 0", "bench --precision fp16",
                             "bench --model nonesuch", "bench --frobnicate"}) {
        SCOPED_TRACE(args);
        Result r = run_cli(bin, args, dir);
        EXPECT_EQ(r.status, 1);
        EXPECT_EQ(r.out, "");
        EXPECT_EQ(count_lines(r.err), 1) << r.err;
        EXPECT_NE(r.err.find("rankclip bench: error:"), std::string::npos) << r.err;
    }
}

// --compare-torch runs the PyTorch mirror, which knows only the presets: a config file is refused
// before anything runs, with one line on stderr (the twin itself is not run by the tests).
TEST(CmdBench, CompareTorchNeedsAPreset) {
    REQUIRE_BINARY_FOR("bench CLI tests");
    TempDir dir("rankclip_cmd_bench");
    const std::string config = write_tiny_config(dir);
    Result r = run_cli(bin, "bench --model " + config + " --steps 1 --compare-torch", dir);
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("--compare-torch needs a preset"), std::string::npos) << r.err;
}

}  // namespace
