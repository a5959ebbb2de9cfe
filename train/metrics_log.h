// train/metrics_log.h
// defines: metrics.jsonl, written and read in one place. Metrics (name -> value pairs, what the
// trainer logs and an evaluation returns); MetricsLog, the trainer's writer (one JSON object per
// line, each write checked; on resume cut back to the checkpoint's step by an atomic rewrite); read_metrics_rows, the one reader
// (the lines as rows); and the two views built on it: RunMetrics / read_metrics_jsonl, the
// per-series view the plots draw, and eval_at_step, the evaluation `rankclip experiment` reuses.
//
// The file: one JSON object per line, {"type": "train"|"eval", "step": N, "epoch": X, name: value,
// ...}; a non-finite value is written as null.
//
// Reading rules (every reader):
// - blank lines are skipped; a line that does not parse, or is not an object, is an Error naming
//   the file and the line number. The one exception is a last line without its newline that does
//   not parse: the trainer is writing it right now (or died writing it), so it is left out
//   (plotting a run in progress works; a resume drops it).
// - "type" is "train" or "eval" (missing: "train"); other types (a config header, say) are skipped.
// - x is "step"; a line without a numeric step is skipped (counted in skipped_lines).
// - a row's values are its numeric keys other than "step" and "epoch", in line order; strings,
//   bools, null and arrays are not values. The series view also leaves out non-finite values
//   (a NaN loss leaves a gap), and reads generically: any numeric key becomes a series, so new
//   loss parts need no change here.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rankclip {

// Metric name -> value, as written to metrics.jsonl and printed.
using Metrics = std::vector<std::pair<std::string, double>>;

// ---- writing ----

// metrics.jsonl, appended one line per record with one unbuffered write (a crash loses nothing
// written). A write that fails (disk full, the path a directory or a dangling link) is an Error
// naming the file and errno's text: the run stops rather than go on without its log.
class MetricsLog {
public:
    // fresh: start empty; otherwise keep the lines with a step <= keep_through, byte for byte (a
    // resume drops what was logged after the checkpoint it continues from, and a torn last line).
    // The kept lines replace the file atomically (engine/atomic_file.h) before appending starts.
    MetricsLog(const std::string& path, bool fresh, int64_t keep_through);
    ~MetricsLog();
    MetricsLog(const MetricsLog&) = delete;
    MetricsLog& operator=(const MetricsLog&) = delete;
    // One line: {"type": type, "step": step, "epoch": epoch, values...}.
    void write(const char* type, int64_t step, double epoch, const Metrics& values);
    // A resume left out a half-written last line (a killed writer's).
    bool dropped_torn_line() const { return dropped_torn_line_; }

private:
    void append(const std::string& text);

    std::string path_;
    int fd_ = -1;
    bool dropped_torn_line_ = false;
};

// ---- reading: rows ----

struct MetricsRow {
    std::string type;   // "train" or "eval"
    double step = 0;
    double epoch = 0;   // NaN when the line has none
    Metrics values;     // numeric keys other than step and epoch, in line order (non-finite kept)
};

struct MetricsRows {
    std::string path;
    std::vector<MetricsRow> rows;      // the train and eval lines with a step, in file order
    int64_t skipped_lines = 0;         // train/eval lines without a numeric step
    bool truncated_last_line = false;  // an unfinished last line was left out
    bool empty_file = false;
};

// Reads `path`. Errors: the file cannot be read ("cannot open <path>: <reason>"), a malformed
// line ("<path>:<line>: ...").
MetricsRows read_metrics_rows(const std::string& path);

// ---- reading: the plots' per-series view ----

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

// Reads `path` (a metrics.jsonl) as series. Errors: those of read_metrics_rows ("plot: cannot
// open ..."), and nothing to plot (no train or eval line with a step and a finite number).
RunMetrics read_metrics_jsonl(const std::string& path);

// RUN_DIR/metrics.jsonl, or `path` itself when it is a file.
std::string metrics_path_of(const std::string& run_dir_or_file);

// ---- reading: a finished run's evaluation ----

// The values of the last "eval" line at `step` in RUN_DIR/metrics.jsonl; empty when the file or
// such a line is missing (the run did not finish).
Metrics eval_at_step(const std::string& run_dir, int64_t step);

}  // namespace rankclip
