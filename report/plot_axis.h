// report/plot_axis.h
// defines: PlotAxis, the mapping of one data range onto pixels with its tick marks: "nice" ticks
// (1, 2 or 5 x 10^k) on a linear axis, decades (with 2 and 5 between them when the range is
// short) on a log axis, and tick labels short enough for a plot ("0.25", "5e-4", "20k").
// Kept apart from the drawing so the tick choices can be tested as numbers.
#pragma once
#include <string>
#include <vector>

namespace rankclip {

// Ticks strictly inside [lo, hi] (with a small tolerance), spaced by a nice step chosen so that
// there are at most max_ticks and as many as that allows. lo < hi, both finite.
std::vector<double> nice_ticks(double lo, double hi, int max_ticks);

// The step nice_ticks uses: the smallest of 1, 2, 5 x 10^k with at most max_ticks ticks.
double nice_step(double lo, double hi, int max_ticks);

// Ticks for a log axis on [lo, hi], 0 < lo < hi: 10^k; also 2 and 5 x 10^k when that gives at
// most max_ticks (and 3 x 10^k when 1-2-5 gives fewer than 4 ticks); every other decade (and so
// on) when the decades alone are too many.
std::vector<double> log_ticks(double lo, double hi, int max_ticks);

// Labels for ticks spaced by `step` on a linear axis: as few decimals as tell them apart,
// scientific ("5e-4", "1.5e-3") for small or huge magnitudes, and "k"/"M" suffixes for counts
// of 10^4 and more (steps): "20k", "1.5M". 0 is always "0".
std::vector<std::string> tick_labels(const std::vector<double>& ticks, double step);
// One label for a log-axis tick (a value with one significant digit): "0.05", "2", "1e-4", "1e5".
std::string log_tick_label(double value);

// A data range mapped onto [pixel_lo, pixel_hi] (pixel_lo may be > pixel_hi: y grows down).
struct PlotAxis {
    double lo = 0, hi = 1;
    bool log = false;
    double pixel_lo = 0, pixel_hi = 1;
    std::vector<double> ticks;
    std::vector<std::string> labels;

    // Pixel coordinate of value v (NaN for v <= 0 on a log axis).
    double to_pixel(double v) const;
};

// The axis for data in [data_lo, data_hi] (finite; equal allowed): linear ranges get
// `padding` of the span added on both sides (a flat line sits in the middle), log ranges a
// padding in log space; ticks and labels filled in. log is honoured only when data_lo > 0.
PlotAxis make_axis(double data_lo, double data_hi, bool log, int max_ticks, double padding = 0.05);

}  // namespace rankclip
