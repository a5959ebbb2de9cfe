// train/plot_metrics.cpp
// defines: read_metrics_jsonl (see plot_metrics.h).
#include "train/plot_metrics.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "engine/json.h"

namespace rankclip {

namespace {

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

bool blank(const std::string& line) {
    return line.find_first_not_of(" \t\r") == std::string::npos;
}

}  // namespace

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
    std::ifstream in(path, std::ios::binary);
    RC_CHECK(in.good(), "plot: cannot open ", path, ": ", std::strerror(errno));
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    RC_CHECK(!in.bad(), "plot: error reading ", path);

    RunMetrics run;
    run.path = path;
    bool have_step = false;
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
            if (unfinished) {
                run.truncated_last_line = true;
                break;
            }
            throw Error(str_cat(path, ":", line_no, ": not a JSON line (", e.what(), ")"));
        }
        RC_CHECK(value.is_object(), path, ":", line_no, ": expected a JSON object, got a ", value.type_name());
        std::string type = "train";
        if (const Json* t = value.find("type")) {
            RC_CHECK(t->is_string(), path, ":", line_no, ": \"type\" must be a string, got a ", t->type_name());
            type = t->as_string();
        }
        if (type != "train" && type != "eval") continue;
        const Json* step_value = value.find("step");
        if (!step_value || !step_value->is_number() || !std::isfinite(step_value->as_double())) {
            run.skipped_lines++;
            continue;
        }
        const double step = step_value->as_double();
        std::vector<MetricSeries>& all = type == "train" ? run.train : run.eval;
        (type == "train" ? run.train_lines : run.eval_lines)++;
        run.min_step = have_step ? std::min(run.min_step, step) : step;
        run.max_step = have_step ? std::max(run.max_step, step) : step;
        have_step = true;
        for (const auto& [key, v] : value.as_object()) {
            if (key == "type" || key == "step" || key == "epoch" || !v.is_number()) continue;
            const double x = v.as_double();
            if (!std::isfinite(x)) continue;
            MetricSeries& s = series_for(all, key);
            s.steps.push_back(step);
            s.values.push_back(x);
        }
    }
    RC_CHECK(!run.empty(), "plot: ", path, " has no values to plot (", run.train_lines, " train lines, ",
             run.eval_lines, " eval lines, ", run.skipped_lines, " lines without a step",
             text.empty() ? "; the file is empty" : "", ")");
    return run;
}

}  // namespace rankclip
