// tests/test_report_table.cpp
// tests: report/report_table.h, the tables of `rankclip demo` and `rankclip experiment`: the
// cells' units (percent, Kendall's tau, ranks; mean ± sample std over seeds), the chance column,
// rows no run evaluated left out, and the row lists of both datasets.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "test_util.h"
#include "report/report_table.h"

using namespace rankclip;
using namespace rankclip::test;

TEST(ReportTable, CellsInTheirUnits) {
    const double nan = std::nan("");
    EXPECT_EQ(format_cell("zeroshot/synthetic-shape/top1", {0.1934}), "19.3%");
    EXPECT_EQ(format_cell("zeroshot/synthetic-shape/top1", {0.2, 0.3, nan}), "25.0 ± 7.1%");   // NaN: not run
    EXPECT_EQ(format_cell("consistency/synthetic/kendall_in", {0.28749}), "0.287");
    EXPECT_EQ(format_cell("consistency/synthetic/kendall_in", {0.3, 0.2, 0.1}), "0.200 ± 0.100");
    EXPECT_EQ(format_cell("retrieval/synthetic/t2i/median_rank", {12}), "12.0");
    EXPECT_EQ(format_cell("retrieval/synthetic/t2i/R@5", {0.05}), "5.0%");   // R@k is a rate, not a rank
    EXPECT_EQ(format_cell("retrieval/synthetic/t2i/R@1", {}), "-");
    EXPECT_EQ(format_cell("retrieval/synthetic/t2i/R@1", {nan, nan}), "-");
}

TEST(ReportTable, OneRunPerColumnWithChance) {
    const std::vector<ReportRow> rows = {{"zeroshot/a/top1", "zero-shot a, top-1"},
                                         {"probe/a/top1", "linear probe, top-1"},
                                         {"consistency/a/kendall_in", "Kendall in"}};
    const std::vector<ReportColumn> columns = {{"CLIP", {{{"zeroshot/a/top1", 0.5}, {"consistency/a/kendall_in", 0.25}}}},
                                               {"RankCLIP", {{{"zeroshot/a/top1", 0.625}}}}};
    const std::map<std::string, double> chance = {{"zeroshot/a/top1", 0.125}};
    EXPECT_EQ(report_table("metric", rows, columns, &chance),
              "| metric | chance | CLIP | RankCLIP |\n"
              "|---|---|---|---|\n"
              "| zero-shot a, top-1 | 12.5% | 50.0% | 62.5% |\n"
              "| Kendall in | - | 0.250 | - |\n");   // the probe row: no run has it
}

TEST(ReportTable, SeedsPerColumnWithoutChance) {
    const std::vector<ReportColumn> columns = {
        {"clip", {{{"zeroshot/synthetic-colour/top1", 0.6}}, {{"zeroshot/synthetic-colour/top1", 0.7}}}},
        {"rankclip", {{{"zeroshot/synthetic-colour/top1", 0.65}}, {}}}};   // the second seed lacks it
    const std::string table = report_table("metric (mean ± std over 2 seeds)", report_rows("synthetic"), columns);
    EXPECT_EQ(table,
              "| metric (mean ± std over 2 seeds) | clip | rankclip |\n"
              "|---|---|---|\n"
              "| zero-shot colour, top-1 | 65.0 ± 7.1% | 65.0% |\n");
}

TEST(ReportTable, RowListsOfBothDatasets) {
    for (const char* data : {"synthetic", "fashion-mnist"}) {
        SCOPED_TRACE(data);
        const std::vector<ReportRow>& rows = report_rows(data);
        std::set<std::string> keys;
        for (const ReportRow& r : rows) {
            EXPECT_FALSE(r.label.empty()) << r.key;
            EXPECT_NE(r.key.find(data), std::string::npos) << r.key;   // every metric is of that dataset
            keys.insert(r.key);
        }
        EXPECT_EQ(keys.size(), rows.size()) << "a metric listed twice";
        EXPECT_EQ(rows.front().key.rfind("zeroshot/", 0), 0u);
        EXPECT_EQ(rows.back().key.rfind("consistency/", 0), 0u);
    }
    EXPECT_EQ(report_rows("synthetic")[4].label, "held-out compositions: shape, top-1");
    EXPECT_NE(error_of([] { report_rows("imagenet"); }).find("imagenet"), std::string::npos);
}

// The paired comparison, worked by hand. Baseline 50, 60, 55% and arm 55, 62, 60% over three seeds:
// differences +5, +2, +5 pp, mean +4 pp, sample sd sqrt((1 + 4 + 1) / 2) = sqrt(3) pp, standard
// error 1 pp, t = 4 with 2 degrees of freedom; two-sided p = 1 - 4 / sqrt(2 + 16) = 0.0572 (the
// closed form of Student's t with 2 df); 95% interval 4 ± 4.3027 = [-0.3, +8.3] pp, which holds 0:
// the difference does not count (no bold). Sign test: 3 above, 0 below, p = 2 / 2^3 = 0.25.
TEST(ReportTable, PairedComparisonBySeed) {
    const std::string key = "zeroshot/synthetic-colour/top1";
    const ReportColumn clip{"clip", {{{key, 0.50}}, {{key, 0.60}}, {{key, 0.55}}}};
    const ReportColumn rank{"rankclip", {{{key, 0.55}}, {{key, 0.62}}, {{key, 0.60}}}};
    const std::string table = paired_table(report_rows("synthetic"), clip, rank);
    EXPECT_EQ(table,
              "| metric | clip | rankclip | difference, 95% CI | paired t p | sign test p (+/-/=) | per-seed differences |\n"
              "|---|---|---|---|---|---|---|\n"
              "| zero-shot colour, top-1 | 55.0 ± 5.0% | 59.0 ± 3.6% | +4.0 pp [-0.3 pp, +8.3 pp] | 0.057 | 0.250 (3/0/0) "
              "| +5.0 pp +2.0 pp +5.0 pp |\n");
    // five seeds, each about 10 pp above: the interval excludes 0 and the difference is in bold
    ReportColumn low{"clip", {}}, high{"rankclip", {}};
    for (double d : {0.10, 0.11, 0.09, 0.10, 0.12}) {
        low.runs.push_back({{key, 0.5}});
        high.runs.push_back({{key, 0.5 + d}});
    }
    const std::string clear = paired_table(report_rows("synthetic"), low, high);
    EXPECT_NE(clear.find("| **+10.4 pp ["), std::string::npos) << clear;
    EXPECT_NE(clear.find("0.062 (5/0/0)"), std::string::npos) << clear;   // 2 / 2^5 = 0.0625
    // one seed: the difference alone, no test
    const ReportColumn one_a{"clip", {{{key, 0.5}}}}, one_b{"rankclip", {{{key, 0.6}}}};
    EXPECT_NE(paired_table(report_rows("synthetic"), one_a, one_b).find("+10.0 pp (one seed) | - | - | - |"),
              std::string::npos);
}
