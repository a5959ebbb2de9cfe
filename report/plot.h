// report/plot.h
// defines: the training charts: PlotPanel (one chart: titled, labelled axes, series, legend),
// render_panel / render_grid (to an SVG document), and the run-level entry points that
// `rankclip plot` and the reports use: plot_run (every chart of one run's metrics.jsonl as SVG
// files) and plot_compare (one or more keys of several runs on shared axes, e.g. CLIP vs
// RankCLIP). The charts are SVG text (report/svg.h): the browser or Markdown viewer draws the
// lines and the fonts, so no rasteriser and no plotting library is needed.
#pragma once
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "report/plot_axis.h"
#include "report/svg.h"
#include "train/metrics_log.h"

namespace rankclip {

struct PlotSeries {
    std::string label;
    std::vector<double> x, y;   // same length; any order (sorted by x when drawn; for repeated
                                // x, the last point wins, as when a resumed run rewrites steps)
    int colour = -1;            // palette index (plot_colour); -1: the series' position
    bool markers = false;       // a dot on each point (evaluations: few points)
    // A shaded band from band_lo to band_hi at each x (e.g. mean ± std over seeds): empty, or the
    // length of x; drawn under the line in the series' colour.
    std::vector<double> band_lo, band_hi;
};

struct PlotPanel {
    std::string name;                 // file-name part: "loss" -> plot_loss.svg
    std::string title, x_label = "step", y_label;
    std::vector<PlotSeries> series;
    bool log_y = false;               // log y axis; honoured when every value is > 0
    bool smooth = false;              // noisy curves (30+ points that wiggle): the raw points
                                      // faint, a local linear smoothing on top
    double x_lo = std::nan(""), x_hi = std::nan("");   // fixed x range when both finite
};

struct PlotStyle {
    int width = 760, height = 460;    // one panel, SVG user units (CSS pixels at 100%)
    int text_scale = 2;               // text size and line width: font size 6.5 * text_scale
};

// A rendered panel and where things landed (the tests check the document against these).
struct RenderedPanel {
    std::string svg;       // a whole SVG document, style.width x style.height
    Box plot_area;         // inside the axes frame
    Box legend;            // w = 0 when there is no legend (a single unlabelled series)
    Box title;             // estimated from the text's width
    PlotAxis x_axis, y_axis;   // data -> user units: a point (x, y) is drawn at
                               // (x_axis.to_pixel(x), y_axis.to_pixel(y))
};

// The palette: distinct, saturated colours (none grey, so data never looks like the grid).
Colour plot_colour(int index);
constexpr int kPlotPaletteSize = 10;

// Draws one panel. Each series is a <g class="series-<i>"> (i: its position in panel.series) with
// its line(s) as <polyline class="line"> (a noisy curve also as a faint class="raw" line under the
// smoothed one) and its markers as <circle class="marker">; a series of one point is drawn as a
// marker. Non-finite points (and points <= 0 on a log axis) are left out. A panel without any
// finite point still gets its frame and a "no data" note.
RenderedPanel render_panel(const PlotPanel& panel, const PlotStyle& style = {});

// Panels in a grid of `columns` (0: 1 for a single panel, else 2), under a title bar when
// `title` is not empty; one SVG document, each panel a translated <g class="panel">.
std::string render_grid(const std::vector<PlotPanel>& panels, const std::string& title, int columns = 0,
                  const PlotStyle& style = {});

// The charts of one run: training loss and its parts (log y when they span a decade or more),
// learning rate, logit scale, rank weight, gradient norm, throughput, one chart per other
// numeric training key, and the evaluation metrics grouped by their first path component
// ("zeroshot/...", "retrieval/..."), at most 8 per chart. Wall-clock keys (time_s) are left
// out. All share the run's step range.
std::vector<PlotPanel> run_panels(const RunMetrics& run);

struct PlotRunOptions {
    // The grid's path; default RUN_DIR/plots.svg with the panels as RUN_DIR/plot_<name>.svg.
    // When set, panels go beside it as <stem>_<name>.svg.
    std::string out_svg;
    bool per_panel = true;   // also write each panel on its own
    PlotStyle style;
};

// Reads RUN_DIR/metrics.jsonl (or RUN_DIR itself when it is a file; outputs then go beside it),
// writes the grid and the panels, and returns the paths written, the grid first.
std::vector<std::string> plot_run(const std::string& run_dir, const PlotRunOptions& options = {});

// Several runs on shared axes: one panel per key (a train key or an eval key, looked up in that
// order), one series per run that has it, labelled labels[i] (empty: the run directories' names).
// One key: that panel alone (titled `title`, or the key); several: a grid under `title`.
// Error when no run has a key. Returns out_svg.
std::string plot_compare(const std::vector<std::string>& run_dirs, const std::vector<std::string>& labels,
                         const std::vector<std::string>& keys, const std::string& out_svg,
                         const std::string& title = "", const PlotStyle& style = {});

// Learning curves over seeds: one panel per (key, label) of an evaluation metric; in each, one
// series per arm, the mean over its runs at every evaluation step with a band of ± the sample
// std (a step some runs lack averages the others). Writes the grid to out_svg (titled `title`)
// and returns it; panels no run has are left out, and none at all is an Error.
struct ArmRuns {
    std::string label;
    std::vector<std::string> run_dirs;   // one per seed
};
std::string plot_seed_bands(const std::vector<ArmRuns>& arms, const std::vector<std::pair<std::string, std::string>>& keys,
                            const std::string& out_svg, const std::string& title, const PlotStyle& style = {});

}  // namespace rankclip
