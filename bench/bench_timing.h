// bench/bench_timing.h
// defines: what the benchmark programs share — the timing method (one untimed warm-up call,
// then timed calls until at least 10 calls and 0.3 s, or at least 3 calls and 1.5 s; the median
// is reported; --quick shortens both), 4-significant-digit rounding, JSON line printing, and
// the process's resident memory (peak and current).
// tools/bench_torch.py and tools/bench_models_torch.py use the same method.
#pragma once
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
    double min_ms = 0;
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
    return {n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]), int(n), ms.front()};
}

// A field of /proc/self/status in MiB ("VmHWM": this process's peak resident set, "VmRSS": its
// resident set now); 0 when there is none (not Linux).
inline double proc_status_mb(const char* field) {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    double kb = 0;
    const size_t n = std::strlen(field);
    while (std::fgets(line, sizeof line, f))
        if (std::strncmp(line, field, n) == 0 && line[n] == ':') kb = std::atof(line + n + 1);
    std::fclose(f);
    return kb / 1024.0;
}

// The process's peak resident set in MiB: VmHWM rather than getrusage's ru_maxrss, since a child
// started by fork or vfork + exec inherits its parent's ru_maxrss, while VmHWM starts afresh at
// exec (tools/torch_env.py measures the PyTorch twins the same way). ru_maxrss where there is no
// /proc (Linux reports it in KiB).
inline double peak_rss_mb() {
    if (double mb = proc_status_mb("VmHWM"); mb > 0) return mb;
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    return double(usage.ru_maxrss) / 1024.0;
}

inline void print_line(const Json& line) {
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
}

}  // namespace rankclip::bench
