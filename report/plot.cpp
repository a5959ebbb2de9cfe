// report/plot.cpp
// defines: render_panel (layout, axes, grid, series, legend of one chart, as SVG), render_grid
// and the palette. The run-level functions (run_panels, plot_run, plot_compare) are in
// plot_run.cpp.
//
// Layout of a panel, top to bottom: title; the plot area framed, y tick labels to its left and
// the y-axis label rotated beside them; x tick labels and the x-axis label below. Sizes follow
// the text: s = style.text_scale, font size 6.5 s, a text line 1.3 font sizes. Tick counts
// follow from the space: y ticks about 2.4 text lines apart, x ticks as many as fit without their
// labels touching (widths estimated, report/svg.h). The legend goes inside the plot area, in the
// corner that covers the least of the drawn lines, on a translucent white box; when every corner
// covers more than a sliver, below the axes.
#include "report/plot.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/error.h"

namespace rankclip {

namespace {

const Colour kFrame{80, 80, 80};
const Colour kGrid{225, 225, 225};
const Colour kMinorGrid{242, 242, 242};
const Colour kText{25, 25, 25};
const Colour kTickText{70, 70, 70};
const Colour kLegendBorder{180, 180, 180};
const Colour kWhite{255, 255, 255};

// Text sizes and spacing of a style.
struct Spacing {
    double s, font, tick_font, title_font, line, tick_length;
    explicit Spacing(const PlotStyle& style)
        : s(style.text_scale), font(6.5 * s), tick_font(6.0 * s), title_font(7.0 * s), line(1.3 * font),
          tick_length(3 * s) {}
    // Baseline of text whose line box starts at top.
    double baseline(double top, double size) const { return top + 0.8 * size; }
};

struct Prepared {
    std::string label;
    std::vector<double> x, y;   // sorted by x, unique x, finite (and > 0 on a log axis)
    std::vector<double> lo, hi; // the band at each x, or empty
    Colour colour;
    bool markers = false;
};

// Sorted by x (stable), the last of equal x kept, non-finite (or non-positive for log) dropped.
Prepared prepare(const PlotSeries& s, int index, bool log_y) {
    RC_CHECK(s.x.size() == s.y.size(), "render_panel: series '", s.label, "' has ", s.x.size(), " x and ",
             s.y.size(), " y values");
    const bool band = !s.band_lo.empty() || !s.band_hi.empty();
    RC_CHECK(!band || (s.band_lo.size() == s.x.size() && s.band_hi.size() == s.x.size()), "render_panel: series '",
             s.label, "' has a band of ", s.band_lo.size(), " and ", s.band_hi.size(), " values for ", s.x.size(),
             " points");
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
        const bool band_ok = band && std::isfinite(s.band_lo[i]) && std::isfinite(s.band_hi[i]) &&
                             !(log_y && s.band_lo[i] <= 0);
        if (band && !band_ok) continue;   // a band is drawn whole or the point is left out
        if (!p.x.empty() && p.x.back() == x) {   // a rewritten step: the later value wins
            p.y.back() = y;
            if (band) p.lo.back() = s.band_lo[i], p.hi.back() = s.band_hi[i];
            continue;
        }
        p.x.push_back(x);
        p.y.push_back(y);
        if (band) p.lo.push_back(s.band_lo[i]), p.hi.push_back(s.band_hi[i]);
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

// More points than unit-wide columns (pixels at 100%): keep, per column, the first, lowest,
// highest and last point (in x order), which draws the same picture as every point.
std::vector<SvgPoint> decimate(const std::vector<SvgPoint>& points, int columns_hint) {
    if (points.size() <= size_t(columns_hint) * 4) return points;
    std::vector<SvgPoint> out;
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

std::vector<SvgPoint> to_points(const std::vector<double>& x, const std::vector<double>& y, const PlotAxis& ax,
                                const PlotAxis& ay) {
    std::vector<SvgPoint> out(x.size());
    for (size_t i = 0; i < x.size(); i++) out[i] = {ax.to_pixel(x[i]), ay.to_pixel(y[i])};
    return out;
}

// text, cut and ended with "..." when wider than max_width.
std::string fit_text(const std::string& text, double max_width, double size, bool bold = false) {
    std::string kept = text, shown = text;
    while (kept.size() > 1 && text_width(shown, size, bold) > max_width) {
        kept.pop_back();
        while (kept.size() > 1 && (static_cast<unsigned char>(kept.back()) & 0xC0) == 0x80) kept.pop_back();
        shown = kept + "...";
    }
    return shown;
}

// A 1-unit line's coordinate on a pixel centre, so it is one sharp pixel wide at 100%.
double crisp(double coordinate) { return std::floor(coordinate) + 0.5; }

double widest(const std::vector<std::string>& labels, double size) {
    double w = 0;
    for (const std::string& l : labels) w = std::max(w, text_width(l, size));
    return w;
}

// The x axis with as many ticks as fit: neighbouring labels at least `gap` apart.
PlotAxis fit_x_axis(double lo, double hi, const Box& plot, const Spacing& m, double gap) {
    PlotAxis axis;
    for (int max_ticks = std::max(2, int(plot.w / (8 * m.s))); max_ticks >= 2; max_ticks--) {
        axis = make_axis(lo, hi, false, max_ticks, 0.02);
        axis.pixel_lo = plot.x;
        axis.pixel_hi = plot.right();
        bool fits = true;
        for (size_t i = 1; i < axis.ticks.size() && fits; i++) {
            const double distance = axis.to_pixel(axis.ticks[i]) - axis.to_pixel(axis.ticks[i - 1]);
            const double needed =
                (text_width(axis.labels[i], m.tick_font) + text_width(axis.labels[i - 1], m.tick_font)) / 2 + gap;
            fits = distance >= needed;
        }
        if (fits) break;
    }
    return axis;
}

}  // namespace

Colour plot_colour(int index) {
    static const Colour palette[kPlotPaletteSize] = {
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
            if (!p.lo.empty()) d.y_lo = std::min(d.y_lo, p.lo[k]), d.y_hi = std::max(d.y_hi, p.hi[k]);
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
    double label_width = 0;
    double pad = 0, swatch = 0, gap = 0, line = 0, row = 0;   // row = line + spacing
    double box_w(int columns) const { return 2 * pad + columns * (swatch + gap + label_width) + (columns - 1) * 2 * gap; }
    double box_h(int rows) const { return 2 * pad + (rows - 1) * row + line; }
};

LegendPlan plan_legend(const PanelData& data, double max_label_width, const Spacing& m) {
    LegendPlan plan;
    plan.pad = 3 * m.s, plan.swatch = 10 * m.s, plan.gap = 3 * m.s, plan.line = m.line;
    plan.row = plan.line + m.s;
    for (const Prepared& p : data.series)
        if (!p.label.empty()) {
            plan.entries.push_back(&p);
            plan.labels.push_back(fit_text(p.label, max_label_width, m.font));
            plan.label_width = std::max(plan.label_width, text_width(plan.labels.back(), m.font));
        }
    return plan;
}

// Where everything of a panel goes.
struct Layout {
    Box plot, title, legend;
    PlotAxis ax, ay;
    LegendPlan legend_plan;
    int legend_columns = 1, legend_rows = 0;
    double x_label_top = 0, x_label_space = 0;
    std::vector<std::vector<SvgPoint>> lines;   // per series: the points drawn (smoothed when noisy)
};

// The series' drawn lines at a layout: decimated points of each, the smoothed ones for noisy curves.
std::vector<std::vector<SvgPoint>> series_lines(const PlotPanel& panel, const PanelData& data, const Layout& l) {
    std::vector<std::vector<SvgPoint>> out;
    for (const Prepared& p : data.series) {
        const bool smoothed = panel.smooth && is_noisy(p.y);
        out.push_back(decimate(to_points(p.x, smoothed ? smooth_local_linear(p.y) : p.y, l.ax, l.ay), int(l.plot.w)));
    }
    return out;
}

// How much of the drawn lines (and markers) box covers, in square units: each line sampled every
// unit along its length, a sample counting its stroke's width.
double covered(const std::vector<std::vector<SvgPoint>>& lines, const PanelData& data, const Box& box,
               const Spacing& m) {
    double area = 0;
    const double stroke = 1.25 * m.s + 2;   // the line and its anti-aliased fringe
    for (size_t k = 0; k < lines.size(); k++) {
        const std::vector<SvgPoint>& pts = lines[k];
        for (size_t i = 0; i < pts.size(); i++) {
            if (data.series[k].markers || pts.size() == 1)
                if (box.contains(pts[i].x, pts[i].y)) area += 12 * m.s * m.s;
            if (i == 0) continue;
            const double dx = pts[i].x - pts[i - 1].x, dy = pts[i].y - pts[i - 1].y;
            const int steps = std::max(1, int(std::ceil(std::hypot(dx, dy))));
            for (int t = 0; t < steps; t++) {
                const double f = double(t) / steps;
                if (box.contains(pts[i - 1].x + f * dx, pts[i - 1].y + f * dy)) area += stroke;
            }
        }
    }
    return area;
}

Layout layout_panel(const PlotPanel& panel, const PanelData& data, const PlotStyle& style, const Spacing& m,
                    bool legend_below) {
    const double s = m.s, W = style.width, H = style.height;
    Layout l;
    // Vertical first (the y ticks depend on the plot's height), then the left margin from the
    // widest y label.
    l.legend_plan = plan_legend(data, legend_below ? W - 30 * s : W / 3, m);
    const LegendPlan& legend = l.legend_plan;
    l.legend_rows = int(legend.entries.size());
    if (legend_below && !legend.entries.empty()) {
        while (l.legend_columns < l.legend_rows && legend.box_w(l.legend_columns + 1) <= W - 8 * s) l.legend_columns++;
        l.legend_rows = int((legend.entries.size() + l.legend_columns - 1) / l.legend_columns);
    }
    const double legend_space = legend_below && !legend.entries.empty() ? legend.box_h(l.legend_rows) + 3 * s : 0;
    Box& plot = l.plot;
    plot.y = 4 * s + m.line + 5 * s;
    l.x_label_space = panel.x_label.empty() ? 0 : m.line + 3 * s;
    const double bottom_margin = m.tick_length + 2 * s + m.line + 3 * s + l.x_label_space + legend_space;
    plot.h = std::max(m.line, H - plot.y - bottom_margin);
    l.ay = make_axis(data.y_lo, data.y_hi, data.log_y, std::max(2, int(plot.h / (m.line * 2.4))), 0.05);
    l.ay.pixel_lo = plot.bottom();
    l.ay.pixel_hi = plot.y;
    const double y_label_column = panel.y_label.empty() ? 0 : m.line + 4 * s;
    plot.x = 4 * s + y_label_column + widest(l.ay.labels, m.tick_font) + 2 * s + m.tick_length;
    plot.w = std::max(m.line, W - plot.x - 12 * s);
    l.ax = fit_x_axis(data.x_lo, data.x_hi, plot, m, 6 * s);
    l.x_label_top = plot.bottom() + 1 + m.tick_length + 2 * s + m.line + 3 * s;
    l.lines = series_lines(panel, data, l);

    const std::string title = fit_text(panel.title, plot.w, m.title_font, true);
    const double title_w = text_width(title, m.title_font, true);
    l.title = {plot.x + plot.w / 2 - title_w / 2, 4 * s, title_w, m.line};

    if (!legend.entries.empty()) {
        if (legend_below) {
            const double w = std::min(legend.box_w(l.legend_columns), W - 4 * s);
            l.legend = {std::max(2 * s, plot.x + plot.w / 2 - w / 2), l.x_label_top + l.x_label_space, w,
                        legend.box_h(l.legend_rows)};
            if (l.legend.right() > W - 2 * s) l.legend.x = W - 2 * s - l.legend.w;
        } else {
            const double w = std::min(legend.box_w(1), plot.w), h = std::min(legend.box_h(l.legend_rows), plot.h);
            const double inset = 3 * s;
            const Box corners[4] = {
                {plot.right() - inset - w, plot.y + inset, w, h},   // top right first: ties go there
                {plot.x + inset, plot.y + inset, w, h},
                {plot.right() - inset - w, plot.bottom() - inset - h, w, h},
                {plot.x + inset, plot.bottom() - inset - h, w, h},
            };
            double best = -1;
            for (const Box& b : corners) {
                const double c = covered(l.lines, data, b, m);
                if (best < 0 || c < best) best = c, l.legend = b;
            }
        }
    }
    return l;
}

// Draws the legend's box and entries in its columns.
void draw_legend(Svg& svg, const Layout& l, const Spacing& m) {
    const LegendPlan& plan = l.legend_plan;
    const Box& box = l.legend;
    svg.begin_group(0, 0, "", "legend");
    svg.rect(box, kWhite, 0.88);
    svg.rect_outline(box, kLegendBorder);
    const int rows = l.legend_rows;
    const double cell = plan.swatch + plan.gap + plan.label_width + 2 * plan.gap;
    for (size_t i = 0; i < plan.entries.size(); i++) {
        const double top = box.y + plan.pad + int(i % rows) * plan.row;
        const double left = box.x + plan.pad + int(i / rows) * cell;
        if (top + plan.line > box.bottom() + 0.01) continue;   // more entries than room
        const double mid = top + plan.line / 2;
        const double x0 = left, x1 = x0 + plan.swatch;
        svg.line(x0, mid, x1, mid, plan.entries[i]->colour, 1.25 * m.s);
        if (plan.entries[i]->markers) svg.circle((x0 + x1) / 2, mid, 1.75 * m.s, plan.entries[i]->colour, kWhite, 1);
        svg.text(x1 + plan.gap, mid + 0.35 * m.font, plan.labels[i], m.font, kText);
    }
    svg.end_group();
}

// Draws one panel into svg at (0, 0) of the current group; `id` makes its clip path unique.
RenderedPanel draw_panel(Svg& svg, const PlotPanel& panel, const PlotStyle& style, const std::string& id) {
    const Spacing m(style);
    const double s = m.s;
    RC_CHECK(s >= 1 && style.width >= 80 * s && style.height >= 70 * s, "render_panel: a ", style.width, "x",
             style.height, " panel is too small for text scale ", style.text_scale);
    const PanelData data = prepare_panel(panel);
    Layout l = layout_panel(panel, data, style, m, false);
    // A legend over the data (more than a sliver of a line under it) moves below the axes.
    if (l.legend.w > 0 && covered(l.lines, data, l.legend, m) > l.legend.w * l.legend.h / 400)
        l = layout_panel(panel, data, style, m, true);
    const Box& plot = l.plot;
    const PlotAxis &ax = l.ax, &ay = l.ay;

    // Title, centred over the plot area.
    svg.text(plot.x + plot.w / 2, m.baseline(4 * s, m.title_font), fit_text(panel.title, plot.w, m.title_font, true),
             m.title_font, kText, TextAnchor::Middle, true);

    // Grid lines (minor ones between the decades of a log axis), ticks and their labels.
    if (ay.log)
        for (int e = int(std::floor(std::log10(ay.lo))); e <= int(std::ceil(std::log10(ay.hi))); e++)
            for (int k = 2; k <= 9; k++) {
                const double y = ay.to_pixel(k * std::pow(10.0, e));
                if (y >= plot.y && y < plot.bottom()) svg.line(plot.x, crisp(y), plot.right(), crisp(y), kMinorGrid);
            }
    for (size_t i = 0; i < ay.ticks.size(); i++) {
        const double y = crisp(std::clamp(ay.to_pixel(ay.ticks[i]), plot.y, plot.bottom() - 1));
        svg.line(plot.x, y, plot.right(), y, kGrid);
        svg.line(plot.x - 1 - m.tick_length, y, plot.x - 1, y, kFrame);
        svg.text(plot.x - 2 - m.tick_length - 2 * s, y + 0.35 * m.tick_font, ay.labels[i], m.tick_font, kTickText,
                 TextAnchor::End);
    }
    for (size_t i = 0; i < ax.ticks.size(); i++) {
        const double x = crisp(std::clamp(ax.to_pixel(ax.ticks[i]), plot.x, plot.right() - 1));
        svg.line(x, plot.y, x, plot.bottom(), kGrid);
        svg.line(x, plot.bottom() + 1, x, plot.bottom() + 1 + m.tick_length, kFrame);
        svg.text(x, m.baseline(plot.bottom() + 1 + m.tick_length + 2 * s, m.tick_font), ax.labels[i], m.tick_font,
                 kTickText, TextAnchor::Middle);
    }
    svg.rect_outline({plot.x - 0.5, plot.y - 0.5, plot.w + 1, plot.h + 1}, kFrame);
    if (!panel.x_label.empty())
        svg.text(plot.x + plot.w / 2, m.baseline(l.x_label_top, m.font), panel.x_label, m.font, kText,
                 TextAnchor::Middle);
    if (!panel.y_label.empty())
        svg.text(4 * s + m.line / 2 + 0.35 * m.font, plot.y + plot.h / 2, fit_text(panel.y_label, plot.h, m.font),
                 m.font, kText, TextAnchor::Middle, false, -90);

    // Data, clipped to the plot area.
    svg.clip_path(id + "-plot", plot);
    svg.begin_group(0, 0, id + "-plot", "data");
    for (size_t k = 0; k < data.series.size(); k++) {
        const Prepared& p = data.series[k];
        svg.begin_group(0, 0, "", "series-" + std::to_string(k));
        const std::vector<SvgPoint> points = to_points(p.x, p.y, ax, ay);
        if (!p.lo.empty()) {   // the band: along the upper edge, back along the lower
            std::vector<SvgPoint> outline = to_points(p.x, p.hi, ax, ay);
            const std::vector<SvgPoint> lower = to_points(p.x, p.lo, ax, ay);
            outline.insert(outline.end(), lower.rbegin(), lower.rend());
            svg.polygon(outline, p.colour, 0.18, "band");
        }
        if (panel.smooth && is_noisy(p.y)) svg.polyline(decimate(points, int(plot.w)), p.colour, 0.75 * s, 0.3, "raw");
        svg.polyline(l.lines[k], p.colour, 1.25 * s, 1.0, "line");
        if (points.size() == 1 || (p.markers && double(points.size()) * 3 * s <= plot.w))
            for (const SvgPoint& q : points) svg.circle(q.x, q.y, 1.75 * s, p.colour, kWhite, 1, "marker");
        svg.end_group();
    }
    svg.end_group();
    if (!data.has_data)
        svg.text(plot.x + plot.w / 2, plot.y + plot.h / 2 + 0.35 * m.font, "no data", m.font, kTickText,
                 TextAnchor::Middle);

    // Legend: labelled series only.
    if (!l.legend_plan.entries.empty()) draw_legend(svg, l, m);

    RenderedPanel out;
    out.plot_area = plot;
    out.legend = l.legend;
    out.title = l.title;
    out.x_axis = ax;
    out.y_axis = ay;
    return out;
}

}  // namespace

RenderedPanel render_panel(const PlotPanel& panel, const PlotStyle& style) {
    Svg svg(style.width, style.height);
    RenderedPanel out = draw_panel(svg, panel, style, "p0");
    out.svg = svg.finish();
    return out;
}

std::string render_grid(const std::vector<PlotPanel>& panels, const std::string& title, int columns,
                        const PlotStyle& style) {
    RC_CHECK(!panels.empty(), "render_grid: no panels");
    if (columns <= 0) columns = panels.size() == 1 ? 1 : 2;
    const int rows = int((panels.size() + columns - 1) / columns);
    const Spacing m(style);
    const double s = m.s, font = 6.5 * (s + 1);
    const double bar = title.empty() ? 0 : 1.3 * font + 8 * s;
    const double width = double(columns) * style.width;
    Svg svg(width, bar + rows * style.height);
    if (!title.empty()) {
        // Long titles are cut to the width rather than run off the edge.
        svg.text(width / 2, m.baseline(4 * s, font), fit_text(title, width - 8 * s, font, true), font, kText,
                 TextAnchor::Middle, true);
        svg.line(4 * s, crisp(bar - 2 * s), width - 4 * s, crisp(bar - 2 * s), kGrid);
    }
    for (size_t i = 0; i < panels.size(); i++) {
        svg.begin_group(double(i % columns) * style.width, bar + double(i / columns) * style.height, "", "panel");
        draw_panel(svg, panels[i], style, "p" + std::to_string(i));
        svg.end_group();
    }
    return svg.finish();
}

}  // namespace rankclip
