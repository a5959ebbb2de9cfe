// train/plot_metrics.h
// defines: RunMetrics and read_metrics_jsonl, the plots' view of a run's metrics.jsonl: for each
// numeric key of the "train" lines and of the "eval" lines, the (step, value) points in file
// order. The trainer writes the file (train/metrics.h); the plotter only reads it, and reads
// generically: any numeric key becomes a series, so new loss parts need no change here.
//
// Reading rules:
// - one JSON object per line; blank lines are skipped; a line that does not parse, or is not an
//   object, is an Error naming the file and the line number. The one exception is a last line
//   without its newline that does not parse: the trainer is writing it right now, so it is left
//   out (plotting a run in progress works).
// - "type" is "train" or "eval" (missing: "train"); other types (a config header, say) are skipped.
// - x is "step"; a line without a numeric step is skipped (counted in skipped_lines).
// - keys whose values are not numbers (strings, bools, null, arrays) are ignored, and so are
//   non-finite values (a NaN loss leaves a gap); "step", "epoch", "type" are not series.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rankclip {

struct MetricSeries {
    std::string key;
    std::vector<double> steps, values;   // same length, in file order
};

struct RunMetrics {
    std::string path;                 // the metrics.jsonl read
    std::vector<MetricSeries> train;  // keys in order of first appearance
    std::vector<MetricSeries> eval;
    int64_t train_lines = 0, eval_lines = 0, skipped_lines = 0;
    bool truncated_last_line = false;  // an unfinished last line was left out
    double min_step = 0, max_step = 0; // over every line read (train and eval)

    // The series of `key` among the train ("train") or eval ("eval") lines; nullptr when absent.
    const MetricSeries* find(const std::string& type, const std::string& key) const;
    // Either kind: train first, then eval.
    const MetricSeries* find_any(const std::string& key) const;
    bool empty() const { return train.empty() && eval.empty(); }
};

// Reads `path` (a metrics.jsonl). Errors: the file cannot be read, a malformed line
// ("<path>:<line>: ..."), or nothing to plot (no train or eval line with a step and a number).
RunMetrics read_metrics_jsonl(const std::string& path);

// RUN_DIR/metrics.jsonl, or `path` itself when it is a file.
std::string metrics_path_of(const std::string& run_dir_or_file);

}  // namespace rankclip
