// tests/test_resume.cpp
// What a resume trusts and what it says: a torn last line of metrics.jsonl is dropped and
// reported; every checkpoint metadata field the resume reads is checked (errors name the file
// and the field); --steps given with --resume extends the run, a different --loss is an error
// naming both values; stale temporary files of a killed run are removed at start-up; a metrics
// or config.json write that fails stops the run with an Error.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cli_test_util.h"
#include "engine/atomic_file.h"
#include "engine/json.h"
#include "engine/safetensors.h"
#include "models/checkpoint.h"
#include "test_util.h"
#include "train/trainer.h"

using namespace rankclip;
using namespace rankclip::test;
namespace fs = std::filesystem;

namespace {

// A run of the micro model on the synthetic data (about a second for a few steps).
TrainConfig micro_run(const TempDir& dir, const std::string& out, int64_t steps) {
    CLIPConfig m = clip_config("tiny");
    m.image_size = 16, m.vision_width = 32, m.vision_layers = 1, m.vision_heads = 2;
    m.context_length = 12, m.vocab_size = 674;  // the synthetic default vocabulary
    m.text_width = 32, m.text_layers = 1, m.text_heads = 2, m.embed_dim = 16;
    const std::string model = dir.file("micro.json");
    std::ofstream(model) << m.to_json().dump();
    TrainConfig c;
    c.model = model;
    c.data = "synthetic:train:256";
    c.batch_size = 16;
    c.steps = steps;
    c.workers = 1;
    c.lr = 1e-3;
    c.log_every = 1;
    c.out = dir.file(out);
    c.loss.kind = LossKind::RankCLIP;
    return c;
}

// Only the output settings: on resume the numbers come from the checkpoint.
TrainConfig continuing(const std::string& out) {
    TrainConfig c;
    c.out = out;
    c.workers = 1;
    c.log_every = 1;
    return c;
}

std::vector<Json> metrics_lines(const std::string& run_dir) {
    std::vector<Json> out;
    std::ifstream in(run_dir + "/metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) out.push_back(Json::parse(line));
    return out;
}

// train(), with what it printed on stderr.
template <class Fn>
std::string stderr_of(Fn fn) {
    testing::internal::CaptureStderr();
    try {
        fn();
    } catch (...) {
        testing::internal::GetCapturedStderr();
        throw;
    }
    return testing::internal::GetCapturedStderr();
}

// A copy of checkpoint `from` at RUN/checkpoints/<same name> with its metadata changed by `edit`.
std::string edited_checkpoint(const std::string& from, const std::string& run,
                              const std::function<void(std::map<std::string, std::string>&)>& edit) {
    std::map<std::string, std::string> meta;
    std::map<std::string, Tensor> tensors = load_safetensors(from, &meta);
    edit(meta);
    std::vector<std::pair<std::string, Tensor>> list(tensors.begin(), tensors.end());
    fs::create_directories(run + "/checkpoints");
    const std::string to = run + "/checkpoints/" + fs::path(from).filename().string();
    save_safetensors(to, list, meta);
    return to;
}

}  // namespace

TEST(Resume, DropsATornLastLineAndSaysSo) {
    TempDir dir("rankclip_torn");
    TrainConfig c = micro_run(dir, "run", 6);
    c.stop_at = 3;
    train(c);
    {
        std::ofstream log(c.out + "/metrics.jsonl", std::ios::app);
        log << "{\"type\": \"train\", \"step\": 4, \"loss\": 1.2";  // killed mid-line
    }
    std::string err;
    TrainResult r;
    err = stderr_of([&] { r = train(continuing(c.out), c.out); });
    EXPECT_NE(err.find("resume: dropped a half-written last line of " + c.out + "/metrics.jsonl"), std::string::npos)
        << err;
    EXPECT_EQ(r.steps_done, 6);
    std::vector<Json> lines = metrics_lines(c.out);  // every line parses
    ASSERT_EQ(lines.size(), 6u);
    for (size_t i = 0; i < lines.size(); i++) EXPECT_EQ(lines[i].at("step").as_int(), int64_t(i + 1));
    for (const auto& e : fs::directory_iterator(c.out))
        EXPECT_EQ(atomic_temp_target(e.path().filename().string()), "") << e.path();
}

TEST(Resume, ChecksEveryMetadataFieldItReads) {
    TempDir dir("rankclip_meta");
    TrainConfig c = micro_run(dir, "run", 2);
    const std::string good = train(c).checkpoint;
    struct Case {
        const char* name;
        std::function<void(std::map<std::string, std::string>&)> edit;
        std::vector<std::string> expected;  // in the message, besides the file
    };
    const std::vector<Case> cases = {
        {"step_beyond", [](auto& m) { m["step"] = "1000000"; }, {"\"step\"", "1000000", "beyond the run's 2 steps"}},
        {"step_missing", [](auto& m) { m.erase("step"); }, {"\"step\" is missing", "decimal integer"}},
        {"step_garbage", [](auto& m) { m["step"] = "12abc"; }, {"\"step\" is \"12abc\"", "decimal integer"}},
        {"step_negative", [](auto& m) { m["step"] = "-1"; }, {"\"step\" is \"-1\""}},
        {"config_missing", [](auto& m) { m.erase("train_config"); }, {"\"train_config\" is missing"}},
        {"config_garbage", [](auto& m) { m["train_config"] = "{\"model\": "; }, {"\"train_config\" is not valid"}},
        {"config_field_missing",
         [](auto& m) {
             Json j = Json::parse(m["train_config"]);
             j.as_object().erase(j.as_object().begin());  // its first key
             m["train_config"] = j.dump();
         },
         {"\"train_config\" is not valid", "missing key"}},
        {"rng_garbage", [](auto& m) { m["loss_rng"] = "zz"; }, {"\"loss_rng\" is not valid"}},
        {"rng_missing", [](auto& m) { m.erase("loss_rng"); }, {"\"loss_rng\" is missing"}},
    };
    for (const Case& k : cases) {
        SCOPED_TRACE(k.name);
        const std::string run = dir.file(k.name);
        const std::string file = edited_checkpoint(good, run, k.edit);
        const std::string err = error_of([&] { train(continuing(run), run); });
        EXPECT_NE(err.find(file), std::string::npos) << err;
        for (const std::string& e : k.expected) EXPECT_NE(err.find(e), std::string::npos) << err;
    }
}

TEST(Resume, StepsGivenWithResumeExtendTheRun) {
    TempDir dir("rankclip_extend");
    TrainConfig c = micro_run(dir, "run", 4);
    ASSERT_EQ(train(c).steps_done, 4);

    TrainConfig longer = continuing(c.out);
    longer.steps = 7;
    TrainResult r;
    const std::string err = stderr_of([&] { r = train(longer, c.out, {}, {{"--steps", "steps"}}); });
    EXPECT_NE(err.find("the run now has 7 steps instead of 4 (--steps 7)"), std::string::npos) << err;
    EXPECT_EQ(r.steps_done, 7);
    EXPECT_EQ(r.total_steps, 7);
    EXPECT_EQ(metrics_lines(c.out).size(), 7u);
    std::ifstream config(c.out + "/config.json");
    EXPECT_EQ(Json::parse(std::string(std::istreambuf_iterator<char>(config), {})).at("steps").as_int(), 7);
    EXPECT_EQ(load_clip(r.checkpoint).metadata.at("step"), "7");
    // the next resume continues the extended run
    EXPECT_NE(Json::parse(load_clip(r.checkpoint).metadata.at("train_config")).at("steps").as_int(), 4);

    // a length below the steps done is an error naming the flag
    TrainConfig shorter = continuing(c.out);
    shorter.steps = 5;
    const std::string short_err = error_of([&] { train(shorter, c.out, {}, {{"--steps", "steps"}}); });
    EXPECT_NE(short_err.find("--steps 5"), std::string::npos) << short_err;
    EXPECT_NE(short_err.find("7 steps"), std::string::npos) << short_err;
}

// With a schedule that does not depend on the run's length (constant lr, the CLIP loss), a run
// extended from 4 to 7 steps is bit for bit the run of 7 steps: the extension only changes the
// total, never the batches, the optimizer state or the random streams.
TEST(Resume, AnExtendedRunIsBitIdenticalToTheLongerRun) {
    TempDir dir("rankclip_extend_exact");
    auto constant_run = [&](const std::string& out, int64_t steps) {
        TrainConfig c = micro_run(dir, out, steps);
        c.loss.kind = LossKind::Clip;
        c.schedule = LrSchedule::Constant;
        return c;
    };
    const TrainResult whole = train(constant_run("whole", 7));
    const TrainConfig part = constant_run("extended", 4);
    ASSERT_EQ(train(part).steps_done, 4);
    TrainConfig longer = continuing(part.out);
    longer.steps = 7;
    TrainResult extended;
    (void)stderr_of([&] { extended = train(longer, part.out, {}, {{"--steps", "steps"}}); });
    ASSERT_EQ(extended.steps_done, 7);
    auto bytes = [](const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    const std::string a = bytes(whole.checkpoint), b = bytes(extended.checkpoint);
    ASSERT_GT(a.size(), 1000u);
    EXPECT_TRUE(a == b) << "the extended run's checkpoint differs from the 7-step run's";
    const std::vector<Json> lw = metrics_lines(whole.checkpoint.substr(0, whole.checkpoint.find("/checkpoints/")));
    const std::vector<Json> le = metrics_lines(part.out);
    ASSERT_EQ(lw.size(), le.size());
    for (size_t i = 0; i < lw.size(); i++) EXPECT_EQ(lw[i].at("loss").as_double(), le[i].at("loss").as_double()) << i;
}

TEST(Resume, ASettingOfTheRunsNumbersMustEqualTheCheckpoints) {
    TempDir dir("rankclip_differs");
    TrainConfig c = micro_run(dir, "run", 2);
    c.stop_at = 1;
    train(c);
    TrainConfig other = continuing(c.out);
    other.loss.kind = LossKind::Clip;
    const std::string err = error_of([&] { train(other, c.out, {}, {{"--loss", "loss.kind"}}); });
    EXPECT_NE(err.find("--loss clip differs from the run's rankclip"), std::string::npos) << err;
    other.batch_size = 8;
    const std::string batch_err = error_of([&] { train(other, c.out, {}, {{"--batch-size", "batch_size"}}); });
    EXPECT_NE(batch_err.find("--batch-size 8 differs from the run's 16"), std::string::npos) << batch_err;
    // the same values are fine
    TrainConfig same = continuing(c.out);
    same.loss.kind = LossKind::RankCLIP;
    same.batch_size = 16;
    TrainResult r = train(same, c.out, {}, {{"--loss", "loss.kind"}, {"--batch-size", "batch_size"}});
    EXPECT_EQ(r.steps_done, 2);
}

TEST(Resume, StaleTemporaryFilesAreRemovedAtStartUp) {
    TempDir dir("rankclip_stale");
    TrainConfig c = micro_run(dir, "run", 1);
    fs::create_directories(c.out + "/checkpoints");
    const std::vector<std::string> stale = {"checkpoints/step_00000005.safetensors.tmp.999999",
                                            "metrics.jsonl.tmp.12", "config.json.tmp.7"};
    const std::vector<std::string> kept = {"notes.tmp.txt", "metrics.jsonl.tmp.abc", "other.json.tmp.3",
                                           "checkpoints/keep.bin.tmp.5"};
    for (const auto& name : stale) std::ofstream(c.out + "/" + name) << "partial";
    for (const auto& name : kept) std::ofstream(c.out + "/" + name) << "not ours";
    const std::string err = stderr_of([&] { train(c); });
    EXPECT_NE(err.find("removed 3 stale temporary files left in " + c.out), std::string::npos) << err;
    for (const auto& name : stale) EXPECT_FALSE(fs::exists(c.out + "/" + name)) << name;
    for (const auto& name : kept) EXPECT_TRUE(fs::exists(c.out + "/" + name)) << name;
}

TEST(Resume, AFailingMetricsWriteStopsTheRun) {
    TempDir dir("rankclip_logfail");
    {   // metrics.jsonl is a directory
        TrainConfig c = micro_run(dir, "dir", 2);
        fs::create_directories(c.out + "/metrics.jsonl");
        const std::string err = error_of([&] { train(c); });
        EXPECT_NE(err.find(c.out + "/metrics.jsonl"), std::string::npos) << err;
        EXPECT_NE(err.find("Is a directory"), std::string::npos) << err;
    }
    {   // a dangling link into a missing directory
        TrainConfig c = micro_run(dir, "dangling", 2);
        fs::create_directories(c.out);
        fs::create_symlink(dir.file("missing/metrics.jsonl"), c.out + "/metrics.jsonl");
        const std::string err = error_of([&] { train(c); });
        EXPECT_NE(err.find(c.out + "/metrics.jsonl"), std::string::npos) << err;
    }
    {   // config.json cannot be replaced (a non-empty directory is in its place)
        TrainConfig c = micro_run(dir, "config", 2);
        fs::create_directories(c.out + "/config.json/inside");
        const std::string err = error_of([&] { train(c); });
        EXPECT_NE(err.find("cannot write " + c.out + "/config.json"), std::string::npos) << err;
    }
    if (fs::exists("/dev/full")) {  // the disk fills up: the first line's write fails
        TrainConfig c = micro_run(dir, "full", 2);
        fs::create_directories(c.out);
        fs::create_symlink("/dev/full", c.out + "/metrics.jsonl");
        const std::string err = error_of([&] { train(c); });
        EXPECT_NE(err.find("metrics log " + c.out + "/metrics.jsonl: write failed: No space left on device"),
                  std::string::npos)
            << err;
    }
}

TEST(Resume, CliStepsExtendAndADifferentLossIsAnError) {
    REQUIRE_BINARY();
    TempDir dir("rankclip_cli_resume");
    TrainConfig c = micro_run(dir, "run", 2);
    const std::string run = c.out;
    const std::string common = "--model " + c.model + " --data synthetic:train:256 --batch-size 16 --workers 1";
    CliResult first = run_cli(bin, "train " + common + " --steps 2 --out " + run, dir);
    ASSERT_EQ(first.status, 0) << first.err;
    CliResult longer = run_cli(bin, "train --resume " + run + " --steps 4", dir);
    EXPECT_EQ(longer.status, 0) << longer.err;
    EXPECT_NE(longer.out.find("done, 4 steps"), std::string::npos) << longer.out;
    EXPECT_NE(longer.err.find("the run now has 4 steps instead of 2"), std::string::npos) << longer.err;
    CliResult other = run_cli(bin, "train --resume " + run + " --loss rankclip --steps 6", dir);
    EXPECT_EQ(other.status, 1);
    EXPECT_NE(other.err.find("--loss rankclip differs from the run's clip"), std::string::npos) << other.err;
    CliResult same = run_cli(bin, "train --resume " + run + " --loss clip --batch-size 16", dir);
    EXPECT_EQ(same.status, 0) << same.err;
}
