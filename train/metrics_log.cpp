// train/metrics_log.cpp
// defines: MetricsLog, read_metrics_rows and the views built on it: read_metrics_jsonl and
// eval_at_step (see metrics_log.h). One line walker applies the reading rules for all of them.
#include "train/metrics_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/json.h"

namespace rankclip {

namespace {

// The whole file; `prefix` starts the error when it cannot be read.
std::string slurp(const std::string& path, const std::string& prefix) {
    std::ifstream in(path, std::ios::binary);
    RC_CHECK(in.good(), prefix, "cannot open ", path, ": ", std::strerror(errno));
    std::stringstream buffer;
    buffer << in.rdbuf();
    RC_CHECK(!in.bad(), prefix, "error reading ", path);
    return buffer.str();
}

bool blank(const std::string& line) {
    return line.find_first_not_of(" \t\r") == std::string::npos;
}

// Calls on_line(line_no, raw text, object) for each non-blank line of `text`. A malformed line is
// an Error, except an unfinished last line (no newline) that does not parse: it is left out and
// the result is true.
template <class OnLine>
bool for_each_line(const std::string& path, const std::string& text, OnLine on_line) {
    size_t start = 0;
    for (int64_t line_no = 1; start < text.size(); line_no++) {
        const size_t end = text.find('\n', start);
        const bool unfinished = end == std::string::npos;   // no newline: maybe still being written
        const std::string line = text.substr(start, unfinished ? std::string::npos : end - start);
        start = unfinished ? text.size() : end + 1;
        if (blank(line)) continue;
        Json value;
        try {
            value = Json::parse(line);
        } catch (const Error& e) {
            if (unfinished) return true;
            throw Error(str_cat(path, ":", line_no, ": not a JSON line (", e.what(), ")"));
        }
        RC_CHECK(value.is_object(), path, ":", line_no, ": expected a JSON object, got a ", value.type_name());
        on_line(line_no, line, value);
    }
    return false;
}

// The line's numeric, finite "step", or nullptr.
const Json* step_of(const Json& line) {
    const Json* step = line.find("step");
    return step && step->is_number() && std::isfinite(step->as_double()) ? step : nullptr;
}

MetricsRows read_rows(const std::string& path, const std::string& prefix) {
    const std::string text = slurp(path, prefix);
    MetricsRows out;
    out.path = path;
    out.empty_file = text.empty();
    out.truncated_last_line = for_each_line(path, text, [&](int64_t line_no, const std::string&, const Json& value) {
        MetricsRow row;
        row.type = "train";
        if (const Json* t = value.find("type")) {
            RC_CHECK(t->is_string(), path, ":", line_no, ": \"type\" must be a string, got a ", t->type_name());
            row.type = t->as_string();
        }
        if (row.type != "train" && row.type != "eval") return;
        const Json* step = step_of(value);
        if (!step) {
            out.skipped_lines++;
            return;
        }
        row.step = step->as_double();
        const Json* epoch = value.find("epoch");
        row.epoch = epoch && epoch->is_number() ? epoch->as_double() : std::nan("");
        for (const auto& [key, v] : value.as_object())
            if (key != "type" && key != "step" && key != "epoch" && v.is_number()) row.values.emplace_back(key, v.as_double());
        out.rows.push_back(std::move(row));
    });
    return out;
}

MetricSeries& series_for(std::vector<MetricSeries>& all, const std::string& key) {
    for (MetricSeries& s : all)
        if (s.key == key) return s;
    all.push_back(MetricSeries{key, {}, {}});
    return all.back();
}

const MetricSeries* find_in(const std::vector<MetricSeries>& all, const std::string& key) {
    for (const MetricSeries& s : all)
        if (s.key == key) return &s;
    return nullptr;
}

}  // namespace

// ---- writing ----

MetricsLog::MetricsLog(const std::string& path, bool fresh, int64_t keep_through) : path_(path) {
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
    std::error_code ec;
    if (fresh) {
        flags |= O_TRUNC;
    } else if (std::filesystem::exists(path, ec)) {
        std::string kept;
        dropped_torn_line_ =
            for_each_line(path, slurp(path, ""), [&](int64_t, const std::string& line, const Json& value) {
                const Json* step = step_of(value);
                if (step && step->as_double() <= double(keep_through)) kept += line + '\n';
            });
        write_file_atomic(path, kept);
    }
    fd_ = ::open(path.c_str(), flags, 0644);
    RC_CHECK(fd_ >= 0, "metrics log ", path, ": cannot open for appending: ", std::strerror(errno));
}

MetricsLog::~MetricsLog() {
    if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::append(const std::string& text) {
    const char* p = text.data();
    size_t left = text.size();
    while (left > 0) {
        const ssize_t n = ::write(fd_, p, left);
        if (n < 0 && errno == EINTR) continue;
        RC_CHECK(n > 0, "metrics log ", path_, ": write failed: ", n < 0 ? std::strerror(errno) : "no progress");
        p += n;
        left -= size_t(n);
    }
}

void MetricsLog::write(const char* type, int64_t step, double epoch, const Metrics& values) {
    Json j = Json::object();
    j.set("type", type);
    j.set("step", step);
    j.set("epoch", epoch);
    for (const auto& [k, v] : values) j.set(k, std::isfinite(v) ? Json(v) : Json());
    append(j.dump() + '\n');
}

// ---- reading ----

MetricsRows read_metrics_rows(const std::string& path) { return read_rows(path, ""); }

const MetricSeries* RunMetrics::find(const std::string& type, const std::string& key) const {
    if (type == "train") return find_in(train, key);
    if (type == "eval") return find_in(eval, key);
    return nullptr;
}

const MetricSeries* RunMetrics::find_any(const std::string& key) const {
    const MetricSeries* s = find_in(train, key);
    return s ? s : find_in(eval, key);
}

std::string metrics_path_of(const std::string& run_dir_or_file) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(run_dir_or_file, ec)) return run_dir_or_file;
    return (std::filesystem::path(run_dir_or_file) / "metrics.jsonl").string();
}

RunMetrics read_metrics_jsonl(const std::string& path) {
    const MetricsRows file = read_rows(path, "plot: ");
    RunMetrics run;
    run.path = path;
    run.skipped_lines = file.skipped_lines;
    run.truncated_last_line = file.truncated_last_line;
    bool have_step = false;
    for (const MetricsRow& row : file.rows) {
        const bool train = row.type == "train";
        std::vector<MetricSeries>& all = train ? run.train : run.eval;
        (train ? run.train_lines : run.eval_lines)++;
        run.min_step = have_step ? std::min(run.min_step, row.step) : row.step;
        run.max_step = have_step ? std::max(run.max_step, row.step) : row.step;
        have_step = true;
        for (const auto& [key, x] : row.values) {
            if (!std::isfinite(x)) continue;
            MetricSeries& s = series_for(all, key);
            s.steps.push_back(row.step);
            s.values.push_back(x);
        }
    }
    RC_CHECK(!run.empty(), "plot: ", path, " has no values to plot (", run.train_lines, " train lines, ",
             run.eval_lines, " eval lines, ", run.skipped_lines, " lines without a step",
             file.empty_file ? "; the file is empty" : "", ")");
    return run;
}

Metrics eval_at_step(const std::string& run_dir, int64_t step) {
    const std::string path = run_dir + "/metrics.jsonl";
    if (!std::filesystem::exists(path)) return {};
    Metrics last;
    for (const MetricsRow& row : read_metrics_rows(path).rows)
        if (row.type == "eval" && row.step == double(step)) last = row.values;
    return last;
}

}  // namespace rankclip
