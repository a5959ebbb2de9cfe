// report/plot_axis.cpp
// defines: nice ticks, log ticks, tick labels and make_axis (see plot_axis.h).
#include "report/plot_axis.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "engine/error.h"

namespace rankclip {

namespace {

// Number of multiples of step in [lo, hi], with a relative tolerance so that end points that
// are multiples up to rounding count.
int64_t count_multiples(double lo, double hi, double step) {
    const double tol = 1e-9;
    return int64_t(std::floor(hi / step + tol) - std::ceil(lo / step - tol)) + 1;
}

int floor_log10(double v) { return int(std::floor(std::log10(v) + 1e-9)); }

// v with `decimals` decimals, "-0" avoided.
std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", std::max(decimals, 0), v);
    std::string s = buf;
    if (s.find_first_not_of("-0.") == std::string::npos) return "0";
    return s;
}

// v = mantissa x 10^exponent with `decimals` decimals in the mantissa: "5e-4", "1.5e-3".
std::string scientific(double v, int decimals) {
    if (v == 0) return "0";
    int exponent = floor_log10(std::fabs(v));
    double mantissa = v / std::pow(10.0, exponent);
    std::string m = fixed(mantissa, decimals);
    if (m == "10" || m == "-10" || m.rfind("10.", 0) == 0 || m.rfind("-10.", 0) == 0) {   // rounding carried
        exponent += 1;
        m = fixed(v / std::pow(10.0, exponent), decimals);
    }
    if (m.find('.') != std::string::npos) {   // "1.50" -> "1.5", "2.0" -> "2"
        while (m.back() == '0') m.pop_back();
        if (m.back() == '.') m.pop_back();
    }
    return m + "e" + std::to_string(exponent);
}

}  // namespace

double nice_step(double lo, double hi, int max_ticks) {
    RC_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi && max_ticks >= 2,
             "nice_step: need finite lo < hi and max_ticks >= 2, got [", lo, ", ", hi, "], ", max_ticks);
    const double span = hi - lo;
    for (int e = floor_log10(span / max_ticks) - 1;; e++) {
        for (double m : {1.0, 2.0, 5.0}) {
            const double step = m * std::pow(10.0, e);
            if (count_multiples(lo, hi, step) <= max_ticks) return step;
        }
    }
}

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
    const double step = nice_step(lo, hi, max_ticks);
    std::vector<double> ticks;
    const double tol = 1e-9;
    // k * step rounded through an integer count of 10^-decimals, so that 3 x 0.2 is 0.6, not
    // 0.6000000000000001 (a label would not care; a caller comparing values would).
    const double denominator = std::pow(10.0, std::max(0, -floor_log10(step)));
    for (double k = std::ceil(lo / step - tol); k <= std::floor(hi / step + tol); k += 1) {
        const double t = std::round(k * step * denominator) / denominator;
        ticks.push_back(t == 0 ? 0.0 : t);   // never -0
    }
    return ticks;
}

std::vector<double> log_ticks(double lo, double hi, int max_ticks) {
    RC_CHECK(lo > 0 && lo < hi && std::isfinite(hi) && max_ticks >= 2,
             "log_ticks: need 0 < lo < hi, got [", lo, ", ", hi, "]");
    const double tol = 1e-9;
    const int first = int(std::floor(std::log10(lo))), last = int(std::ceil(std::log10(hi)));
    auto inside = [&](double t) { return t >= lo * (1 - tol) && t <= hi * (1 + tol); };
    std::vector<double> dense, with_subdivisions, decades;
    for (int e = first; e <= last; e++) {
        const double p = std::pow(10.0, e);
        for (double m : {1.0, 2.0, 3.0, 5.0})
            if (inside(m * p)) dense.push_back(m * p);
        for (double m : {1.0, 2.0, 5.0})
            if (inside(m * p)) with_subdivisions.push_back(m * p);
        if (inside(p)) decades.push_back(p);
    }
    // 1-2-3-5 only for short ranges, where 1-2-5 leaves the axis nearly bare.
    if (with_subdivisions.size() < 4 && int(dense.size()) <= max_ticks) return dense;
    if (int(with_subdivisions.size()) <= max_ticks) return with_subdivisions;
    for (size_t every = 1;; every++) {   // every 1st, 2nd, 3rd... decade
        std::vector<double> some;
        for (size_t i = 0; i < decades.size(); i += every) some.push_back(decades[i]);
        if (int(some.size()) <= max_ticks) return some;
    }
}

std::vector<std::string> tick_labels(const std::vector<double>& ticks, double step) {
    RC_CHECK(step > 0 && std::isfinite(step), "tick_labels: step must be > 0, got ", step);
    double max_abs = 0;
    for (double t : ticks) max_abs = std::max(max_abs, std::fabs(t));
    const int step_exponent = floor_log10(step);
    std::vector<std::string> labels;
    if (max_abs >= 1e4 && step >= 1000 && max_abs < 1e10) {   // counts: "20k", "1.5M"
        const double unit = max_abs >= 1e6 ? 1e6 : 1e3;
        const char* suffix = max_abs >= 1e6 ? "M" : "k";
        const int decimals = std::max(0, int(std::log10(unit)) - step_exponent);
        for (double t : ticks) labels.push_back(t == 0 ? "0" : fixed(t / unit, decimals) + suffix);
    } else if (max_abs > 0 && (max_abs < 1e-3 || max_abs >= 1e6)) {
        for (double t : ticks) {
            const int decimals = t == 0 ? 0 : std::max(0, floor_log10(std::fabs(t)) - step_exponent);
            labels.push_back(scientific(t, decimals));
        }
    } else {
        const int decimals = std::max(0, -step_exponent);
        for (double t : ticks) labels.push_back(fixed(t, decimals));
    }
    return labels;
}

std::string log_tick_label(double value) {
    RC_CHECK(value > 0, "log_tick_label: value must be > 0, got ", value);
    if (value >= 1e-3 && value < 1e5) {
        const int e = floor_log10(value);
        return fixed(value, std::max(0, -e));
    }
    return scientific(value, 0);
}

double PlotAxis::to_pixel(double v) const {
    double t;
    if (log) {
        if (!(v > 0)) return std::nan("");
        t = (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    } else {
        t = (v - lo) / (hi - lo);
    }
    return pixel_lo + t * (pixel_hi - pixel_lo);
}

PlotAxis make_axis(double data_lo, double data_hi, bool log, int max_ticks, double padding) {
    RC_CHECK(std::isfinite(data_lo) && std::isfinite(data_hi) && data_lo <= data_hi,
             "make_axis: need finite data_lo <= data_hi, got [", data_lo, ", ", data_hi, "]");
    PlotAxis axis;
    axis.log = log && data_lo > 0;
    if (axis.log) {
        double llo = std::log10(data_lo), lhi = std::log10(data_hi);
        const double pad = lhi - llo > 1e-9 ? (lhi - llo) * padding : 0.2;
        axis.lo = std::pow(10.0, llo - pad);
        axis.hi = std::pow(10.0, lhi + pad);
        axis.ticks = log_ticks(axis.lo, axis.hi, max_ticks);
        if (axis.ticks.size() >= 3) {
            for (double t : axis.ticks) axis.labels.push_back(log_tick_label(t));
            return axis;
        }
        // Less than a decade or so: linear nice ticks read better than one or two 1-2-5 ticks.
        axis.ticks = nice_ticks(axis.lo, axis.hi, max_ticks);
        axis.labels = tick_labels(axis.ticks, nice_step(axis.lo, axis.hi, max_ticks));
        return axis;
    }
    const double span = data_hi - data_lo;
    const double scale = std::max(std::fabs(data_lo), std::fabs(data_hi));
    if (span <= 1e-12 * std::max(scale, 1e-300)) {   // flat: centre it
        const double pad = scale > 0 ? scale * 0.1 : 1.0;
        axis.lo = data_lo - pad;
        axis.hi = data_hi + pad;
    } else {
        axis.lo = data_lo - span * padding;
        axis.hi = data_hi + span * padding;
    }
    axis.ticks = nice_ticks(axis.lo, axis.hi, max_ticks);
    axis.labels = tick_labels(axis.ticks, nice_step(axis.lo, axis.hi, max_ticks));
    return axis;
}

}  // namespace rankclip
