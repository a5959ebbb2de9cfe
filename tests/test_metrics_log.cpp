// tests/test_metrics_log.cpp
// tests: train/metrics_log.h, metrics.jsonl written and read in one place: lines written by
// MetricsLog read back as rows (non-finite values as null, so absent), a resume keeps the lines
// up to the checkpoint's step byte for byte and drops the rest, a torn last line (the trainer
// died writing it) is left out by every reader while a torn line in the middle is an error, and
// eval_at_step finds a finished run's last evaluation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "test_util.h"
#include "train/metrics_log.h"

using namespace rankclip;
using namespace rankclip::test;

namespace {

std::string slurp_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A run of `steps` train lines and an evaluation every 2 steps, as the trainer writes them.
void write_run(const std::string& path, int64_t steps) {
    MetricsLog log(path, true, 0);
    for (int64_t step = 1; step <= steps; step++) {
        log.write("train", step, step / 4.0, {{"loss", 5.0 - step}, {"lr", 1e-3}});
        if (step % 2 == 0) log.write("eval", step, step / 4.0, {{"zeroshot/x/top1", 0.1 * step}});
    }
}

}  // namespace

TEST(MetricsLog, WritesLinesThatReadBackAsRows) {
    TempDir dir("metrics_log");
    const std::string path = dir.file("metrics.jsonl");
    {
        MetricsLog log(path, true, 0);
        log.write("train", 1, 0.25, {{"loss", 4.5}, {"contrastive", 4.0}, {"grad_norm", std::nan("")}});
        log.write("eval", 1, 0.25, {{"zeroshot/x/top1", 0.5}});
    }
    const std::string text = slurp_file(path);
    EXPECT_NE(text.find("\"grad_norm\":null"), std::string::npos) << text;   // NaN is written as null
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);

    const MetricsRows file = read_metrics_rows(path);
    ASSERT_EQ(file.rows.size(), 2u);
    EXPECT_EQ(file.rows[0].type, "train");
    EXPECT_EQ(file.rows[0].step, 1);
    EXPECT_EQ(file.rows[0].epoch, 0.25);
    EXPECT_EQ(file.rows[0].values, (Metrics{{"loss", 4.5}, {"contrastive", 4.0}}));   // null: not a value
    EXPECT_EQ(file.rows[1].type, "eval");
    EXPECT_EQ(file.rows[1].values, (Metrics{{"zeroshot/x/top1", 0.5}}));
    EXPECT_FALSE(file.truncated_last_line);

    const RunMetrics run = read_metrics_jsonl(path);
    EXPECT_EQ(run.train_lines, 1);
    EXPECT_EQ(run.eval_lines, 1);
    ASSERT_NE(run.find("train", "contrastive"), nullptr);
    EXPECT_EQ(run.find("train", "contrastive")->values, (std::vector<double>{4.0}));
    EXPECT_EQ(run.find("train", "grad_norm"), nullptr);
}

TEST(MetricsLog, ResumeKeepsTheLinesUpToTheCheckpointByteForByte) {
    TempDir dir("metrics_log");
    const std::string path = dir.file("metrics.jsonl");
    write_run(path, 6);
    write_run(dir.file("through4.jsonl"), 4);
    {
        MetricsLog resumed(path, false, 4);   // continues from the checkpoint of step 4
    }
    EXPECT_EQ(slurp_file(path), slurp_file(dir.file("through4.jsonl")));
    {
        MetricsLog resumed(path, false, 4);
        resumed.write("train", 5, 1.25, {{"loss", 0.0}, {"lr", 1e-3}});
    }
    const MetricsRows file = read_metrics_rows(path);
    ASSERT_EQ(file.rows.size(), 4u + 2u + 1u);
    EXPECT_EQ(file.rows.back().step, 5);
    {
        MetricsLog fresh(path, true, 4);   // a fresh run starts empty
    }
    EXPECT_EQ(slurp_file(path), "");
}

TEST(MetricsLog, ATornLastLineIsLeftOutATornMiddleLineIsAnError) {
    TempDir dir("metrics_log");
    const std::string path = dir.file("metrics.jsonl");
    write_run(path, 2);
    const std::string whole = slurp_file(path);
    write_text(path, whole + "{\"type\":\"train\",\"step\":3,\"lo");   // the trainer died writing step 3

    const MetricsRows file = read_metrics_rows(path);
    EXPECT_TRUE(file.truncated_last_line);
    EXPECT_EQ(file.rows.size(), 3u);
    const RunMetrics run = read_metrics_jsonl(path);
    EXPECT_TRUE(run.truncated_last_line);
    EXPECT_EQ(run.train_lines, 2);
    EXPECT_EQ(run.max_step, 2);
    {
        MetricsLog resumed(path, false, 2);   // a resume drops it with the lines after the checkpoint
    }
    EXPECT_EQ(slurp_file(path), whole);

    write_text(path, "{\"step\":1,\"lo\n" + whole);   // torn, then more lines: the file is damaged
    const std::string e = error_of([&] { read_metrics_rows(path); });
    EXPECT_NE(e.find(path + ":1: not a JSON line"), std::string::npos) << e;
    EXPECT_NE(error_of([&] { MetricsLog(path, false, 2); }).find(path + ":1:"), std::string::npos);
    EXPECT_NE(error_of([&] { read_metrics_rows(dir.file("missing.jsonl")); }).find("cannot open"), std::string::npos);
}

TEST(MetricsLog, EvalAtStepIsTheLastEvaluationOfThatStep) {
    TempDir dir("metrics_log");
    EXPECT_TRUE(eval_at_step(dir.path, 4).empty());   // no metrics.jsonl: not finished
    write_run(dir.file("metrics.jsonl"), 4);
    const Metrics m = eval_at_step(dir.path, 4);
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].first, "zeroshot/x/top1");
    EXPECT_DOUBLE_EQ(m[0].second, 0.4);
    EXPECT_DOUBLE_EQ(eval_at_step(dir.path, 2)[0].second, 0.2);
    EXPECT_TRUE(eval_at_step(dir.path, 3).empty());   // a train line only
    EXPECT_TRUE(eval_at_step(dir.path, 6).empty());   // the run stopped before
}
