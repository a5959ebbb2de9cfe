// train/plot.h
// defines: the training plots: PlotPanel (one chart: titled, labelled axes, series, legend),
// render_panel / render_grid (to an Image), and the run-level entry points that `rankclip plot`
// and the reports use: plot_run (every chart of one run's metrics.jsonl as PNGs) and
// plot_compare (one or more keys of several runs on shared axes, e.g. CLIP vs RankCLIP).
// Everything is drawn by us (train/plot_canvas.h, train/bitmap_font.h) and written with
// stb_image_write (data/image_write.h); no plotting library is needed.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/raster.h"
#include "train/plot_canvas.h"
#include "train/metrics_log.h"

namespace rankclip {

struct PlotSeries {
    std::string label;
    std::vector<double> x, y;   // same length; any order (sorted by x when drawn; for repeated
                                // x, the last point wins, as when a resumed run rewrites steps)
    int colour = -1;            // palette index (plot_colour); -1: the series' position
    bool markers = false;       // a dot on each point (evaluations: few points)
};

struct PlotPanel {
    std::string name;                 // file-name part: "loss" -> plot_loss.png
    std::string title, x_label = "step", y_label;
    std::vector<PlotSeries> series;
    bool log_y = false;               // log y axis; honoured when every value is > 0
    bool smooth = false;              // noisy curves (30+ points that wiggle): the raw points
                                      // faint, a local linear smoothing on top
    double x_lo = std::nan(""), x_hi = std::nan("");   // fixed x range when both finite
};

struct PlotStyle {
    int width = 760, height = 460;    // one panel, pixels
    int text_scale = 2;               // font scale: 2 gives 14-px capitals
};

// A rendered panel and where things landed (the tests look inside these boxes).
struct RenderedPanel {
    Image image;
    Rect plot_area;   // inside the axes frame
    Rect legend;      // w = 0 when there is no legend (a single unlabelled series)
    Rect title;
};

// The palette: distinct, saturated colours (none grey, so data never looks like the grid).
Rgb plot_colour(int index);
constexpr int kPlotPaletteSize = 10;

// Draws one panel. A panel without any finite point still gets its frame and a "no data" note.
RenderedPanel render_panel(const PlotPanel& panel, const PlotStyle& style = {});

// Panels in a grid of `columns` (0: 1 for a single panel, else 2), under a title bar when
// `title` is not empty.
Image render_grid(const std::vector<PlotPanel>& panels, const std::string& title, int columns = 0,
                  const PlotStyle& style = {});

// The charts of one run: training loss and its parts (log y when they span a decade or more),
// learning rate, logit scale, rank weight, gradient norm, throughput, one chart per other
// numeric training key, and the evaluation metrics grouped by their first path component
// ("zeroshot/...", "retrieval/..."), at most 8 per chart. Wall-clock keys (time_s) are left
// out. All share the run's step range.
std::vector<PlotPanel> run_panels(const RunMetrics& run);

struct PlotRunOptions {
    // The grid's path; default RUN_DIR/plots.png with the panels as RUN_DIR/plot_<name>.png.
    // When set, panels go beside it as <stem>_<name>.png.
    std::string out_png;
    bool per_panel = true;   // also write each panel on its own
    PlotStyle style;
};

// Reads RUN_DIR/metrics.jsonl (or RUN_DIR itself when it is a file; outputs then go beside it),
// writes the grid and the panels, and returns the paths written, the grid first.
std::vector<std::string> plot_run(const std::string& run_dir, const PlotRunOptions& options = {});

// Several runs on shared axes: one panel per key (a train key or an eval key, looked up in that
// order), one series per run that has it, labelled labels[i] (empty: the run directories' names).
// One key: that panel alone (titled `title`, or the key); several: a grid under `title`.
// Error when no run has a key. Returns out_png.
std::string plot_compare(const std::vector<std::string>& run_dirs, const std::vector<std::string>& labels,
                         const std::vector<std::string>& keys, const std::string& out_png,
                         const std::string& title = "", const PlotStyle& style = {});

}  // namespace rankclip
