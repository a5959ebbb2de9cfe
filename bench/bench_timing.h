// bench/bench_timing.h
// defines: what the benchmark programs share — the timing method (one untimed warm-up call,
// then timed calls until at least 10 calls and 0.3 s, or at least 3 calls and 1.5 s; the median
// is reported; --quick shortens both), 4-significant-digit rounding, and JSON line printing.
// tools/bench_torch.py and tools/bench_models_torch.py use the same method.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include "engine/backend.h"
#include "engine/json.h"

namespace rankclip::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// 4 significant digits: enough for a benchmark, and the JSON lines stay readable.
inline double round4(double x) {
    if (x == 0 || !std::isfinite(x)) return x;
    double scale = std::pow(10.0, 3 - int(std::floor(std::log10(std::fabs(x)))));
    return std::round(x * scale) / scale;
}

struct Timing {
    double median_ms = 0;
    int runs = 0;
};

// Each call of `step` ends with the device synchronized, so GPU time is counted.
inline Timing time_median(Device device, bool quick, const std::function<void()>& step) {
    Backend& backend = backend_for(device);
    double min_s = quick ? 0.05 : 0.3, slow_s = quick ? 0.2 : 1.5;
    int min_runs = quick ? 3 : 10;
    step();
    backend.synchronize();
    std::vector<double> ms;
    double total = 0;
    while (!((int(ms.size()) >= min_runs && total >= min_s) || (ms.size() >= 3 && total >= slow_s))) {
        auto t0 = Clock::now();
        step();
        backend.synchronize();
        double s = seconds_since(t0);
        ms.push_back(s * 1e3);
        total += s;
    }
    std::sort(ms.begin(), ms.end());
    size_t n = ms.size();
    return {n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]), int(n)};
}

inline void print_line(const Json& line) {
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
}

}  // namespace rankclip::bench
