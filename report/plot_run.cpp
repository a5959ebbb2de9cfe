// report/plot_run.cpp
// defines: run_panels (which charts a run's metrics make), plot_run, plot_compare and
// plot_seed_bands (see plot.h).
// The chart choice works from key names alone, so any loss the trainer gains shows up without a
// change here: keys named like losses join the loss chart, a few well-known keys get their own
// titled chart, every other numeric key gets a chart of its own.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "engine/error.h"
#include "report/plot.h"

namespace rankclip {

namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxSeriesPerPanel = 8;

// Loss parts the trainer's losses report (train/losses.h); anything with "loss" in its name too.
bool is_loss_key(const std::string& key) {
    static const std::set<std::string> parts = {"contrastive", "rank_cross", "rank_in", "cyclip_in",
                                                "cyclip_cross", "sigmoid", "siglip"};
    return parts.count(key) || key.find("loss") != std::string::npos;
}

// Keys that are bookkeeping (wall-clock seconds), not worth a chart: time_s, elapsed_s, and
// eval timings like "zeroshot/time_s".
bool is_skipped_key(const std::string& key) {
    const std::string last = key.substr(key.rfind('/') == std::string::npos ? 0 : key.rfind('/') + 1);
    return last == "time_s" || last == "elapsed_s";
}

struct KnownKey {
    const char* key;
    const char* name;
    const char* title;
    const char* y_label;
};

const KnownKey kKnownKeys[] = {
    {"lr", "lr", "Learning rate", "learning rate"},
    {"logit_scale", "logit_scale", "Logit scale", "logit scale"},
    {"rank_weight", "rank_weight", "Rank loss weight", "weight"},
    {"grad_norm", "grad_norm", "Gradient norm", "grad norm"},
    {"images_per_s", "throughput", "Throughput", "images / s"},
};

// Letters, digits, '-' and '_' kept, everything else '_': a file-name part from a metric name.
std::string file_part(const std::string& s) {
    std::string out;
    for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_';
    return out.empty() ? "x" : out;
}

// Whether a positive series spans enough (a factor of 10) for a log axis to help.
bool wants_log(const std::vector<PlotSeries>& series) {
    double lo = INFINITY, hi = -INFINITY;
    for (const PlotSeries& s : series)
        for (double v : s.y) {
            if (!std::isfinite(v)) continue;
            if (v <= 0) return false;
            lo = std::min(lo, v), hi = std::max(hi, v);
        }
    return std::isfinite(lo) && hi >= 10 * lo;
}

PlotSeries series_of(const MetricSeries& m, const std::string& label, bool markers) {
    PlotSeries s;
    s.label = label;
    s.x = m.steps;
    s.y = m.values;
    s.markers = markers;
    return s;
}

// The first `depth` slash-separated components of a name, leaving at least one after them:
// ("retrieval/i2t/R@1", 1) -> "retrieval", (.., 2) -> "retrieval/i2t"; ("top1", 1) -> "".
std::string prefix_of(const std::string& key, int depth) {
    size_t end = std::string::npos;
    for (int d = 0; d < depth; d++) {
        const size_t next = key.find('/', end == std::string::npos ? 0 : end + 1);
        if (next == std::string::npos) break;
        end = next;
    }
    return end == std::string::npos ? "" : key.substr(0, end);
}

// Evaluation keys grouped into panels of at most kMaxSeriesPerPanel: by first component, groups
// too big split by the first two, and what is still too big cut into chunks.
void add_eval_panels(const RunMetrics& run, std::vector<PlotPanel>& panels) {
    std::vector<std::pair<std::string, std::vector<const MetricSeries*>>> groups;
    auto group_into = [&](const std::vector<const MetricSeries*>& keys, int depth,
                          std::vector<std::pair<std::string, std::vector<const MetricSeries*>>>& out) {
        for (const MetricSeries* m : keys) {
            const std::string p = prefix_of(m->key, depth);
            auto it = std::find_if(out.begin(), out.end(), [&](const auto& g) { return g.first == p; });
            if (it == out.end()) out.push_back({p, {m}});
            else it->second.push_back(m);
        }
    };
    std::vector<const MetricSeries*> all;
    for (const MetricSeries& m : run.eval)
        if (!is_skipped_key(m.key)) all.push_back(&m);
    std::vector<std::pair<std::string, std::vector<const MetricSeries*>>> first;
    group_into(all, 1, first);
    for (auto& g : first) {
        if (g.second.size() <= kMaxSeriesPerPanel || g.first.empty()) groups.push_back(g);
        else group_into(g.second, 2, groups);
    }
    for (const auto& [prefix, members] : groups) {
        const size_t chunks = (members.size() + kMaxSeriesPerPanel - 1) / kMaxSeriesPerPanel;
        for (size_t c = 0; c < chunks; c++) {
            PlotPanel panel;
            const std::string part = chunks > 1 ? " (" + std::to_string(c + 1) + "/" + std::to_string(chunks) + ")" : "";
            panel.title = (prefix.empty() ? std::string("Evaluation") : "Evaluation: " + prefix) + part;
            panel.name = "eval" + (prefix.empty() ? "" : "_" + file_part(prefix)) +
                         (chunks > 1 ? "_" + std::to_string(c + 1) : "");
            panel.y_label = "value";
            for (size_t i = c * kMaxSeriesPerPanel; i < std::min(members.size(), (c + 1) * kMaxSeriesPerPanel); i++) {
                const std::string& key = members[i]->key;
                const std::string label = prefix.empty() ? key : key.substr(prefix.size() + 1);
                panel.series.push_back(series_of(*members[i], label.empty() ? key : label, true));
            }
            panels.push_back(std::move(panel));
        }
    }
}

std::string run_name(const std::string& run_dir) {
    fs::path p = fs::path(run_dir).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    return p.filename().string().empty() ? run_dir : p.filename().string();
}

}  // namespace

std::vector<PlotPanel> run_panels(const RunMetrics& run) {
    std::vector<PlotPanel> panels;
    PlotPanel loss;
    loss.name = "loss";
    loss.title = "Training loss";
    loss.y_label = "loss";
    loss.smooth = true;
    for (const MetricSeries& m : run.train)
        if (is_loss_key(m.key)) loss.series.push_back(series_of(m, m.key, false));
    if (!loss.series.empty()) {
        loss.log_y = wants_log(loss.series);
        panels.push_back(std::move(loss));
    }
    for (const KnownKey& k : kKnownKeys)
        if (const MetricSeries* m = run.find("train", k.key)) {
            PlotPanel p;
            p.name = k.name, p.title = k.title, p.y_label = k.y_label;
            p.smooth = true;   // only where the curve is noisy: render_panel decides
            p.series.push_back(series_of(*m, "", false));
            p.log_y = (k.key == std::string("grad_norm")) && wants_log(p.series);
            panels.push_back(std::move(p));
        }
    for (const MetricSeries& m : run.train) {
        bool known = is_loss_key(m.key) || is_skipped_key(m.key);
        for (const KnownKey& k : kKnownKeys) known = known || m.key == k.key;
        if (known) continue;
        PlotPanel p;
        p.name = file_part(m.key), p.title = m.key, p.y_label = m.key, p.smooth = true;
        p.series.push_back(series_of(m, "", false));
        panels.push_back(std::move(p));
    }
    add_eval_panels(run, panels);
    for (PlotPanel& p : panels) {   // every chart on the run's step range, so they line up
        p.x_lo = run.min_step;
        p.x_hi = run.max_step;
    }
    return panels;
}

std::vector<std::string> plot_run(const std::string& run_dir, const PlotRunOptions& options) {
    const std::string metrics_path = metrics_path_of(run_dir);
    const RunMetrics run = read_metrics_jsonl(metrics_path);
    const std::vector<PlotPanel> panels = run_panels(run);
    RC_CHECK(!panels.empty(), "plot: ", metrics_path, " has no series that make a chart");

    const fs::path folder = fs::path(metrics_path).parent_path();
    fs::path grid_path = options.out_svg.empty() ? folder / "plots.svg" : fs::path(options.out_svg);
    auto panel_path = [&](const PlotPanel& p) {
        if (options.out_svg.empty()) return folder / ("plot_" + p.name + ".svg");
        return grid_path.parent_path() / (grid_path.stem().string() + "_" + p.name + ".svg");
    };
    char summary[160];
    std::snprintf(summary, sizeof summary, "  (steps %.0f-%.0f; %lld train, %lld eval line%s)", run.min_step,
                  run.max_step, (long long)run.train_lines, (long long)run.eval_lines,
                  run.eval_lines == 1 ? "" : "s");
    const std::string name = run_name(fs::is_regular_file(run_dir) ? folder.string() : run_dir);
    std::vector<std::string> written;
    write_text_file(grid_path.string(), render_grid(panels, name + summary, 0, options.style));
    written.push_back(grid_path.string());
    if (options.per_panel)
        for (const PlotPanel& p : panels) {
            const std::string path = panel_path(p).string();
            write_text_file(path, render_panel(p, options.style).svg);
            written.push_back(path);
        }
    return written;
}

std::string plot_compare(const std::vector<std::string>& run_dirs, const std::vector<std::string>& labels_in,
                         const std::vector<std::string>& keys, const std::string& out_svg, const std::string& title,
                         const PlotStyle& style) {
    RC_CHECK(!run_dirs.empty(), "plot --compare: no runs given");
    RC_CHECK(!keys.empty(), "plot --compare: no keys given (--key loss, say)");
    RC_CHECK(labels_in.empty() || labels_in.size() == run_dirs.size(), "plot --compare: ", labels_in.size(),
             " labels for ", run_dirs.size(), " runs");
    std::vector<RunMetrics> runs;
    for (const std::string& dir : run_dirs) runs.push_back(read_metrics_jsonl(metrics_path_of(dir)));
    std::vector<std::string> labels = labels_in;
    if (labels.empty()) {
        for (const std::string& dir : run_dirs) labels.push_back(run_name(dir));
        std::set<std::string> distinct(labels.begin(), labels.end());
        if (distinct.size() != labels.size()) labels = run_dirs;   // same folder names: full paths
    }
    double x_lo = INFINITY, x_hi = -INFINITY;
    for (const RunMetrics& r : runs) x_lo = std::min(x_lo, r.min_step), x_hi = std::max(x_hi, r.max_step);
    std::vector<PlotPanel> panels;
    for (const std::string& key : keys) {
        PlotPanel panel;
        panel.name = file_part(key);
        panel.title = keys.size() == 1 && !title.empty() ? title : key;
        panel.y_label = key;
        panel.x_lo = x_lo, panel.x_hi = x_hi;
        bool any_train = false;
        for (size_t i = 0; i < runs.size(); i++) {
            const MetricSeries* train = runs[i].find("train", key);
            const MetricSeries* m = train ? train : runs[i].find("eval", key);
            if (!m) continue;
            any_train = any_train || train;
            PlotSeries s = series_of(*m, labels[i], !train);
            s.colour = int(i);   // a run keeps its colour in every panel
            panel.series.push_back(std::move(s));
        }
        if (panel.series.empty()) {
            std::string known;
            for (const MetricSeries& m : runs[0].train) known += (known.empty() ? "" : ", ") + m.key;
            for (const MetricSeries& m : runs[0].eval) known += (known.empty() ? "" : ", ") + m.key;
            RC_CHECK(false, "plot --compare: no run has the key '", key, "'; ", runs[0].path, " has: ", known);
        }
        panel.smooth = any_train;
        panel.log_y = any_train && is_loss_key(key) && wants_log(panel.series);
        panels.push_back(std::move(panel));
    }
    const std::string svg = panels.size() == 1 ? render_panel(panels[0], style).svg
                                               : render_grid(panels, title.empty() ? "comparison" : title, 0, style);
    write_text_file(out_svg, svg);
    return out_svg;
}

std::string plot_seed_bands(const std::vector<ArmRuns>& arms, const std::vector<std::pair<std::string, std::string>>& keys,
                            const std::string& out_svg, const std::string& title, const PlotStyle& style) {
    RC_CHECK(!arms.empty() && !keys.empty(), "plot_seed_bands: no arms or no keys");
    std::vector<std::vector<RunMetrics>> runs(arms.size());
    for (size_t a = 0; a < arms.size(); a++)
        for (const std::string& dir : arms[a].run_dirs) runs[a].push_back(read_metrics_jsonl(metrics_path_of(dir)));
    std::vector<PlotPanel> panels;
    for (const auto& [key, label] : keys) {
        PlotPanel panel;
        panel.name = file_part(key);
        panel.title = label;
        panel.y_label = label;
        for (size_t a = 0; a < arms.size(); a++) {
            std::map<double, std::vector<double>> at_step;   // step -> the seeds' values
            for (const RunMetrics& r : runs[a])
                if (const MetricSeries* m = r.find("eval", key))
                    for (size_t i = 0; i < m->steps.size(); i++)
                        if (std::isfinite(m->values[i])) at_step[m->steps[i]].push_back(m->values[i]);
            if (at_step.empty()) continue;
            PlotSeries s;
            s.label = arms[a].label;
            s.colour = int(a);   // an arm keeps its colour in every panel
            s.markers = true;
            for (const auto& [step, values] : at_step) {
                double mean = 0, ss = 0;
                for (double v : values) mean += v;
                mean /= double(values.size());
                for (double v : values) ss += (v - mean) * (v - mean);
                const double sd = values.size() > 1 ? std::sqrt(ss / double(values.size() - 1)) : 0.0;
                s.x.push_back(step), s.y.push_back(mean);
                s.band_lo.push_back(mean - sd), s.band_hi.push_back(mean + sd);
            }
            panel.series.push_back(std::move(s));
        }
        if (!panel.series.empty()) panels.push_back(std::move(panel));
    }
    RC_CHECK(!panels.empty(), "plot_seed_bands: no run has an evaluation of the keys asked for (", keys[0].first, ", ...)");
    write_text_file(out_svg, render_grid(panels, title, 0, style));
    return out_svg;
}

}  // namespace rankclip
