// report/report_table.h
// defines: the comparison tables of `rankclip demo` and `rankclip experiment`: ReportRow and
// report_rows (the one list of metrics a report shows, with what a person reads for each), and
// report_table (one markdown table: a row per metric, a column per arm, each cell the value of one
// run or the mean ± sample std over several seeds).
//
//   | metric | chance | CLIP | RankCLIP |            (demo: one run per column, a chance column)
//   |---|---|---|---|
//   | zero-shot shape, top-1 | 16.7% | 19.3% | 20.1% |
//
// Cells: rates as percentages ("19.3%", over seeds "19.3 ± 1.1%"), Kendall's tau to 3 decimals,
// ranks to 1; "-" where no run has the metric. A row no column has a value for is left out, so a
// report shows the evaluations its runs did.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "train/metrics_log.h"   // Metrics

namespace rankclip {

struct ReportRow {
    std::string key;     // the metric's name, as an evaluation returns it ("zeroshot/synthetic-shape/top1")
    std::string label;   // what a person reads ("zero-shot shape, top-1")
};

// The rows of a report on `data`: "synthetic" or "fashion-mnist" (else an Error), in order:
// zero-shot, held-out compositions (synthetic), retrieval, linear probe, ranking consistency.
const std::vector<ReportRow>& report_rows(const std::string& data);

// One column of a table: its name and the evaluations of its runs (one per seed).
struct ReportColumn {
    std::string name;
    std::vector<Metrics> runs;
};

// A cell: the values of metric `key` over runs (NaN: the run lacks it).
std::string format_cell(const std::string& key, const std::vector<double>& values);

// The markdown table (rows end with '\n'): header `first_header`, then "chance" when `chance` is
// given (its cells "-" for metrics it lacks), then one column per ReportColumn.
std::string report_table(const std::string& first_header, const std::vector<ReportRow>& rows,
                         const std::vector<ReportColumn>& columns,
                         const std::map<std::string, double>* chance = nullptr);

// The paired comparison of `arm` against `baseline`, run i of each being the same seed (the same
// initial weights and batches): per metric, both means ± std, the mean difference with its 95%
// confidence interval (paired t, eval/paired_stats.h; in bold when the interval excludes 0: the
// difference counts), the paired t-test's and the sign test's two-sided p (with the seeds where
// the arm is above / below / equal), and every seed's difference. Rates differ in percentage
// points ("+1.2 pp"). Seeds missing either value are left out; a metric neither has is skipped.
std::string paired_table(const std::vector<ReportRow>& rows, const ReportColumn& baseline, const ReportColumn& arm);

}  // namespace rankclip
