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

}  // namespace rankclip
