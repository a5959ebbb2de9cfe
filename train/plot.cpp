// train/plot.cpp
// defines: render_panel (layout, axes, grid, series, legend of one chart), render_grid and the
// palette. The run-level functions (run_panels, plot_run, plot_compare) are in plot_run.cpp.
//
// Layout of a panel, top to bottom: title; the plot area framed, y tick labels to its left and
// the y-axis label rotated beside them; x tick labels and the x-axis label below. Tick counts
// follow from the space: y ticks about 2.6 text lines apart, x ticks as many as fit without their
// labels touching. The legend goes inside the plot area, in the corner that hides the fewest
// drawn data pixels, on a translucent white box.
#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/error.h"
#include "train/bitmap_font.h"
#include "train/plot_axis.h"

namespace rankclip {

namespace {

const Rgb kBackground{255, 255, 255};
const Rgb kFrame{80, 80, 80};
const Rgb kGrid{225, 225, 225};
const Rgb kMinorGrid{242, 242, 242};
const Rgb kText{25, 25, 25};
const Rgb kTickText{70, 70, 70};
const Rgb kLegendBorder{180, 180, 180};

struct Prepared {
    std::string label;
    std::vector<double> x, y;   // sorted by x, unique x, finite (and > 0 on a log axis)
    Rgb colour;
    bool markers = false;
};

// Sorted by x (stable), the last of equal x kept, non-finite (or non-positive for log) dropped.
Prepared prepare(const PlotSeries& s, int index, bool log_y) {
    RC_CHECK(s.x.size() == s.y.size(), "render_panel: series '", s.label, "' has ", s.x.size(), " x and ",
             s.y.size(), " y values");
    std::vector<size_t> order(s.x.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s.x[a] < s.x[b]; });
    Prepared p;
    p.label = s.label;
    p.colour = plot_colour(s.colour >= 0 ? s.colour : index);
    p.markers = s.markers;
    for (size_t i : order) {
        const double x = s.x[i], y = s.y[i];
        if (!std::isfinite(x) || !std::isfinite(y) || (log_y && y <= 0)) continue;
        if (!p.x.empty() && p.x.back() == x) {   // a rewritten step: the later value wins
            p.y.back() = y;
            continue;
        }
        p.x.push_back(x);
        p.y.push_back(y);
    }
    return p;
}

// Local linear smoothing over points: each point becomes the value at its index of the
// least-squares line through the points within `half` of it (the window cut at the ends).
// Inside, where the window is symmetric, that is the centred moving average; at the ends it
// follows the trend instead of lagging it or falling back to a single noisy point. The point
// index stands in for x (steps are logged at a fixed interval). y: (n) -> (n).
std::vector<double> smooth_local_linear(const std::vector<double>& y) {
    const size_t n = y.size();
    const size_t half = std::max<size_t>(1, n / 50);
    // Prefix sums of y and i * y (indices are summed in closed form).
    std::vector<double> sum_y(n + 1, 0.0), sum_iy(n + 1, 0.0);
    for (size_t i = 0; i < n; i++) {
        sum_y[i + 1] = sum_y[i] + y[i];
        sum_iy[i + 1] = sum_iy[i] + double(i) * y[i];
    }
    std::vector<double> out(n);
    for (size_t i = 0; i < n; i++) {
        const size_t a = i >= half ? i - half : 0, b = std::min(n - 1, i + half);   // window [a, b]
        const double m = double(b - a + 1);
        const double si = (double(a) + double(b)) * m / 2;                          // sum of indices
        const double sii = (double(b) * (b + 1) * (2 * b + 1) - (a == 0 ? 0.0 : double(a - 1) * a * (2 * a - 1))) / 6;
        const double sy = sum_y[b + 1] - sum_y[a], siy = sum_iy[b + 1] - sum_iy[a];
        const double mean_i = si / m, var_i = sii / m - mean_i * mean_i;
        const double slope = var_i > 1e-12 ? (siy / m - mean_i * sy / m) / var_i : 0.0;
        out[i] = sy / m + slope * (double(i) - mean_i);
    }
    return out;
}

// Whether a curve is noisy enough to want smoothing: the median distance of a point from the
// midpoint of its neighbours is over 0.5% of the curve's range. A schedule (learning rate,
// warmup ramps) is piecewise smooth and stays far below that, even with a kink or a jump.
bool is_noisy(const std::vector<double>& y) {
    if (y.size() < 30) return false;
    const auto [lo, hi] = std::minmax_element(y.begin(), y.end());
    const double range = *hi - *lo;
    if (!(range > 0)) return false;
    std::vector<double> wiggle(y.size() - 2);
    for (size_t i = 1; i + 1 < y.size(); i++) wiggle[i - 1] = std::fabs(y[i] - 0.5 * (y[i - 1] + y[i + 1]));
    std::nth_element(wiggle.begin(), wiggle.begin() + wiggle.size() / 2, wiggle.end());
    return wiggle[wiggle.size() / 2] > 0.005 * range;
}

// More points than pixel columns: keep, per column, the first, lowest, highest and last point
// (in x order), which draws the same picture as every point.
std::vector<Point> decimate(const std::vector<Point>& points, int columns_hint) {
    if (points.size() <= size_t(columns_hint) * 4) return points;
    std::vector<Point> out;
    size_t i = 0;
    while (i < points.size()) {
        const int column = int(std::floor(points[i].x));
        size_t j = i, lo = i, hi = i;
        while (j < points.size() && int(std::floor(points[j].x)) == column) {
            if (points[j].y < points[lo].y) lo = j;
            if (points[j].y > points[hi].y) hi = j;
            j++;
        }
        size_t keep[4] = {i, std::min(lo, hi), std::max(lo, hi), j - 1};
        for (int k = 0; k < 4; k++)
            if (k == 0 || keep[k] != keep[k - 1]) out.push_back(points[keep[k]]);
        i = j;
    }
    return out;
}

std::vector<Point> to_pixels(const std::vector<double>& x, const std::vector<double>& y, const PlotAxis& ax,
                             const PlotAxis& ay) {
    std::vector<Point> out(x.size());
    for (size_t i = 0; i < x.size(); i++) out[i] = {float(ax.to_pixel(x[i])), float(ay.to_pixel(y[i]))};
    return out;
}

// text, cut and ended with "..." when wider than max_width pixels.
std::string fit_text(const std::string& text, int max_width, int scale, bool bold = false) {
    std::string kept = text, shown = text;
    while (kept.size() > 1 && text_width(shown, scale, bold) > max_width) {
        kept.pop_back();
        shown = kept + "...";
    }
    return shown;
}

int pixel_of(double coordinate) { return int(std::floor(coordinate)); }

// The widest label, in pixels.
int widest(const std::vector<std::string>& labels, int scale) {
    int w = 0;
    for (const std::string& l : labels) w = std::max(w, text_width(l, scale));
    return w;
}

// The x axis with as many ticks as fit: neighbouring labels at least `gap` pixels apart.
PlotAxis fit_x_axis(double lo, double hi, const Rect& plot, int scale, int gap) {
    PlotAxis axis;
    for (int max_ticks = std::max(2, plot.w / (8 * scale)); max_ticks >= 2; max_ticks--) {
        axis = make_axis(lo, hi, false, max_ticks, 0.02);
        axis.pixel_lo = plot.x;
        axis.pixel_hi = plot.right();
        bool fits = true;
        for (size_t i = 1; i < axis.ticks.size() && fits; i++) {
            const double distance = axis.to_pixel(axis.ticks[i]) - axis.to_pixel(axis.ticks[i - 1]);
            const int needed = (text_width(axis.labels[i], scale) + text_width(axis.labels[i - 1], scale)) / 2 + gap;
            fits = distance >= needed;
        }
        if (fits) break;
    }
    return axis;
}

}  // namespace

Rgb plot_colour(int index) {
    static const Rgb palette[kPlotPaletteSize] = {
        {31, 100, 200},   // blue
        {235, 110, 0},    // orange
        {30, 150, 60},    // green
        {210, 35, 45},    // red
        {135, 70, 190},   // purple
        {140, 85, 45},    // brown
        {225, 70, 170},   // magenta
        {0, 160, 170},    // teal
        {160, 160, 0},    // olive
        {20, 30, 110},    // navy
    };
    const int n = kPlotPaletteSize;
    return palette[((index % n) + n) % n];
}

namespace {

// What render_panel draws, independent of where: cleaned series and the data ranges.
struct PanelData {
    std::vector<Prepared> series;
    double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
    bool log_y = false, has_data = false;
};

PanelData prepare_panel(const PlotPanel& panel) {
    PanelData d;
    d.log_y = panel.log_y;
    for (const PlotSeries& ps : panel.series)
        for (double v : ps.y)
            if (std::isfinite(v) && v <= 0) d.log_y = false;
    for (size_t i = 0; i < panel.series.size(); i++) {
        d.series.push_back(prepare(panel.series[i], int(i), d.log_y));
        const Prepared& p = d.series.back();
        for (size_t k = 0; k < p.x.size(); k++) {
            d.x_lo = std::min(d.x_lo, p.x[k]), d.x_hi = std::max(d.x_hi, p.x[k]);
            d.y_lo = std::min(d.y_lo, p.y[k]), d.y_hi = std::max(d.y_hi, p.y[k]);
        }
    }
    d.has_data = std::isfinite(d.x_lo);
    if (std::isfinite(panel.x_lo) && std::isfinite(panel.x_hi) && panel.x_lo <= panel.x_hi) {
        d.x_lo = d.has_data ? std::min(panel.x_lo, d.x_lo) : panel.x_lo;
        d.x_hi = d.has_data ? std::max(panel.x_hi, d.x_hi) : panel.x_hi;
    } else if (!d.has_data) {
        d.x_lo = 0, d.x_hi = 1;
    }
    if (!d.has_data) d.y_lo = 0, d.y_hi = 1, d.log_y = false;
    return d;
}

// The legend's entries and size, before it is placed.
struct LegendPlan {
    std::vector<const Prepared*> entries;
    std::vector<std::string> labels;   // cut to fit
    int label_width = 0;
    int pad = 0, swatch = 0, gap = 0, line = 0, row = 0;   // pixels; row = line + spacing
    int box_w(int columns) const { return 2 * pad + columns * (swatch + gap + label_width) + (columns - 1) * 2 * gap; }
    int box_h(int rows) const { return 2 * pad + (rows - 1) * row + line; }
};

LegendPlan plan_legend(const PanelData& data, int max_label_width, int s) {
    LegendPlan plan;
    plan.pad = 3 * s, plan.swatch = 10 * s, plan.gap = 3 * s, plan.line = kFontCellHeight * s;
    plan.row = plan.line + s;
    for (const Prepared& p : data.series)
        if (!p.label.empty()) {
            plan.entries.push_back(&p);
            plan.labels.push_back(fit_text(p.label, max_label_width, s));
            plan.label_width = std::max(plan.label_width, text_width(plan.labels.back(), s));
        }
    return plan;
}

// Draws the legend's box and entries in `columns` columns.
void draw_legend(PlotCanvas& canvas, const LegendPlan& plan, const Rect& box, int columns, int s) {
    canvas.fill_rect(box, kBackground, 0.88f);
    canvas.stroke_rect(box, kLegendBorder);
    const int rows = int((plan.entries.size() + columns - 1) / columns);
    const int cell = plan.swatch + plan.gap + plan.label_width + 2 * plan.gap;
    for (size_t i = 0; i < plan.entries.size(); i++) {
        const int top = box.y + plan.pad + int(i % rows) * plan.row;
        const int left = box.x + plan.pad + int(i / rows) * cell;
        if (top + kFontCellHeight * s > box.bottom()) continue;   // more entries than room
        const float mid = top + (kFontCapHeight * s) / 2.0f;
        const float x0 = float(left), x1 = x0 + plan.swatch;
        canvas.draw_polyline({{x0, mid}, {x1, mid}}, plan.entries[i]->colour, 1.25f * s, 1.0f, box);
        if (plan.entries[i]->markers)
            canvas.draw_disc({(x0 + x1) / 2, mid}, 1.75f * s, plan.entries[i]->colour, box, 1.0f, kBackground);
        canvas.draw_text(plan.labels[i], int(x1) + plan.gap, top, s, kText);
    }
}

// Pixels of `r` (within plot) that differ from `before` (the plot area's pixels before the data).
int64_t changed_pixels(const PlotCanvas& canvas, const std::vector<uint8_t>& before, const Rect& plot, const Rect& r) {
    int64_t n = 0;
    for (int y = std::max(r.y, plot.y); y < std::min(r.bottom(), plot.bottom()); y++)
        for (int x = std::max(r.x, plot.x); x < std::min(r.right(), plot.right()); x++) {
            const Rgb c = canvas.pixel(x, y);
            const uint8_t* b = &before[(size_t(y - plot.y) * plot.w + (x - plot.x)) * 3];
            n += c.r != b[0] || c.g != b[1] || c.b != b[2];
        }
    return n;
}

// One panel with the legend inside the plot area (legend_below false: returns in *hidden the
// data pixels it covers) or in columns under the x-axis label (legend_below true).
RenderedPanel render_panel_placed(const PlotPanel& panel, const PanelData& data, const PlotStyle& style,
                                  bool legend_below, int64_t* hidden) {
    const int s = style.text_scale;
    const int line = kFontCellHeight * s;   // a text cell's height
    const int tick_length = 3 * s;
    PlotCanvas canvas(style.width, style.height, kBackground);
    RenderedPanel out;

    // Layout: vertical first (the y ticks depend on the plot's height), then the left margin
    // from the widest y label.
    const LegendPlan legend = plan_legend(data, legend_below ? style.width - 30 * s : style.width / 3, s);
    int legend_columns = 1, legend_rows = int(legend.entries.size());
    if (legend_below && !legend.entries.empty()) {
        while (legend_columns < legend_rows && legend.box_w(legend_columns + 1) <= style.width - 8 * s)
            legend_columns++;
        legend_rows = int((legend.entries.size() + legend_columns - 1) / legend_columns);
    }
    const int legend_space = legend_below && !legend.entries.empty() ? legend.box_h(legend_rows) + 3 * s : 0;
    Rect plot;
    plot.y = 4 * s + line + 5 * s;
    const int x_label_space = panel.x_label.empty() ? 0 : line + 3 * s;
    const int bottom_margin = tick_length + 2 * s + line + 3 * s + x_label_space + legend_space;
    plot.h = std::max(line, style.height - plot.y - bottom_margin);
    PlotAxis ay = make_axis(data.y_lo, data.y_hi, data.log_y, std::max(2, int(plot.h / (line * 2.4))), 0.05);
    ay.pixel_lo = plot.bottom();
    ay.pixel_hi = plot.y;
    const int y_label_column = panel.y_label.empty() ? 0 : line + 4 * s;
    plot.x = 4 * s + y_label_column + widest(ay.labels, s) + 2 * s + tick_length;
    plot.w = std::max(line, style.width - plot.x - 12 * s);
    const PlotAxis ax = fit_x_axis(data.x_lo, data.x_hi, plot, s, 6 * s);

    // Title, centred over the plot area.
    out.title = canvas.draw_text(fit_text(panel.title, plot.w, s, true), plot.x + plot.w / 2, 4 * s, s, kText,
                                 TextAlign::Center, true);

    // Grid lines (minor ones between the decades of a log axis), ticks and their labels.
    if (ay.log)
        for (int e = int(std::floor(std::log10(ay.lo))); e <= int(std::ceil(std::log10(ay.hi))); e++)
            for (int m = 2; m <= 9; m++) {
                const double y = ay.to_pixel(m * std::pow(10.0, e));
                if (y >= plot.y && y < plot.bottom()) canvas.hline(plot.x, plot.right() - 1, pixel_of(y), kMinorGrid);
            }
    for (size_t i = 0; i < ay.ticks.size(); i++) {
        const int y = std::clamp(pixel_of(ay.to_pixel(ay.ticks[i])), plot.y, plot.bottom() - 1);
        canvas.hline(plot.x, plot.right() - 1, y, kGrid);
        canvas.hline(plot.x - 1 - tick_length, plot.x - 2, y, kFrame);
        canvas.draw_text(ay.labels[i], plot.x - 2 - tick_length - 2 * s, y - (kFontCapHeight * s) / 2, s, kTickText,
                         TextAlign::Right);
    }
    for (size_t i = 0; i < ax.ticks.size(); i++) {
        const int x = std::clamp(pixel_of(ax.to_pixel(ax.ticks[i])), plot.x, plot.right() - 1);
        canvas.vline(x, plot.y, plot.bottom() - 1, kGrid);
        canvas.vline(x, plot.bottom() + 1, plot.bottom() + tick_length, kFrame);
        canvas.draw_text(ax.labels[i], x, plot.bottom() + 1 + tick_length + 2 * s, s, kTickText, TextAlign::Center);
    }
    canvas.stroke_rect({plot.x - 1, plot.y - 1, plot.w + 2, plot.h + 2}, kFrame);
    const int x_label_top = plot.bottom() + 1 + tick_length + 2 * s + line + 3 * s;
    if (!panel.x_label.empty())
        canvas.draw_text(panel.x_label, plot.x + plot.w / 2, x_label_top, s, kText, TextAlign::Center);
    if (!panel.y_label.empty())
        canvas.draw_text_vertical(fit_text(panel.y_label, plot.h, s), 4 * s + line / 2, plot.y + plot.h / 2, s, kText);
    out.plot_area = plot;

    // Data. Remember the plot area as it was, to find later where the data went.
    std::vector<uint8_t> before;
    before.reserve(size_t(plot.w) * plot.h * 3);
    for (int y = plot.y; y < plot.bottom(); y++)
        for (int x = plot.x; x < plot.right(); x++) {
            const Rgb c = canvas.pixel(x, y);
            before.insert(before.end(), {c.r, c.g, c.b});
        }
    for (const Prepared& p : data.series) {
        if (p.x.empty()) continue;
        std::vector<Point> points = to_pixels(p.x, p.y, ax, ay);
        if (panel.smooth && is_noisy(p.y)) {
            canvas.draw_polyline(decimate(points, plot.w), p.colour, 0.75f * s, 0.3f, plot);
            points = to_pixels(p.x, smooth_local_linear(p.y), ax, ay);
        }
        canvas.draw_polyline(decimate(points, plot.w), p.colour, 1.25f * s, 1.0f, plot);
        if (p.markers && int(points.size()) * 3 * s <= plot.w)
            for (const Point& q : points) canvas.draw_disc(q, 1.75f * s, p.colour, plot, 1.0f, kBackground);
    }
    if (!data.has_data)
        canvas.draw_text("no data", plot.x + plot.w / 2, plot.y + plot.h / 2 - line / 2, s, kTickText,
                         TextAlign::Center);

    // Legend: labelled series only; inside, in the corner that hides the fewest data pixels.
    if (!legend.entries.empty()) {
        Rect box;
        if (legend_below) {
            const int w = std::min(legend.box_w(legend_columns), style.width - 4 * s);
            box = {std::max(2 * s, plot.x + plot.w / 2 - w / 2), x_label_top + x_label_space, w, legend.box_h(legend_rows)};
            if (box.right() > style.width - 2 * s) box.x = style.width - 2 * s - box.w;
        } else {
            const int w = std::min(legend.box_w(1), plot.w), h = std::min(legend.box_h(legend_rows), plot.h);
            const int inset = 3 * s;
            const Rect corners[4] = {
                {plot.right() - inset - w, plot.y + inset, w, h},   // top right first: ties go there
                {plot.x + inset, plot.y + inset, w, h},
                {plot.right() - inset - w, plot.bottom() - inset - h, w, h},
                {plot.x + inset, plot.bottom() - inset - h, w, h},
            };
            int64_t best = -1;
            for (const Rect& r : corners) {
                const int64_t n = changed_pixels(canvas, before, plot, r);
                if (best < 0 || n < best) best = n, box = r;
            }
            if (hidden) *hidden = best;
        }
        draw_legend(canvas, legend, box, legend_columns, s);
        out.legend = box;
    }
    out.image = canvas.take_image();
    return out;
}

}  // namespace

RenderedPanel render_panel(const PlotPanel& panel, const PlotStyle& style) {
    const int s = style.text_scale;
    RC_CHECK(s >= 1 && style.width >= 80 * s && style.height >= 70 * s, "render_panel: a ", style.width, "x",
             style.height, " panel is too small for text scale ", s);
    const PanelData data = prepare_panel(panel);
    int64_t hidden = 0;
    RenderedPanel inside = render_panel_placed(panel, data, style, false, &hidden);
    // A legend over the data (more than a sliver of a line under it) moves below the axes.
    if (inside.legend.w == 0 || hidden <= int64_t(inside.legend.w) * inside.legend.h / 400) return inside;
    return render_panel_placed(panel, data, style, true, nullptr);
}

Image render_grid(const std::vector<PlotPanel>& panels, const std::string& title, int columns,
                  const PlotStyle& style) {
    RC_CHECK(!panels.empty(), "render_grid: no panels");
    if (columns <= 0) columns = panels.size() == 1 ? 1 : 2;
    const int rows = int((panels.size() + columns - 1) / columns);
    const int s = style.text_scale;
    const int bar = title.empty() ? 0 : kFontCellHeight * (s + 1) + 8 * s;
    PlotCanvas canvas(columns * style.width, bar + rows * style.height, kBackground);
    if (!title.empty()) {
        // Long titles are cut to the width rather than run off the edge.
        const std::string shown = fit_text(title, canvas.width() - 8 * s, s + 1, true);
        canvas.draw_text(shown, canvas.width() / 2, 4 * s, s + 1, kText, TextAlign::Center, true);
        canvas.hline(4 * s, canvas.width() - 4 * s, bar - 2 * s, kGrid);
    }
    Image out = canvas.take_image();
    for (size_t i = 0; i < panels.size(); i++) {
        const Image panel = render_panel(panels[i], style).image;
        const int x0 = int(i % columns) * style.width, y0 = bar + int(i / columns) * style.height;
        for (int y = 0; y < panel.height; y++)
            std::copy_n(&panel.rgb[size_t(y) * panel.width * 3], size_t(panel.width) * 3,
                        &out.rgb[(size_t(y0 + y) * out.width + x0) * 3]);
    }
    return out;
}

}  // namespace rankclip
