// engine/cpu/dev/common.h
// defines: the helpers every CPU playground program shares: variant selection, random data,
// bf16 conversion, result validation, the benchmark harness (warm-up, median of many runs) and
// the three rooflines it reports against, each measured once per program on this machine:
// the fp32 FMA peak (AVX-512), the bf16 peak (AMX tile dot products, or AVX512-BF16's vdpbf16ps
// without AMX), and the copy bandwidth of a buffer larger than the caches (bytes read + written).
// Standalone on purpose (the CPU twin of cuda/dev/common.h): the playground does not link the
// library, so a kernel can be tried here in one file and promoted into engine/cpu/ once it wins.
#pragma once
#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

// ---------------------------------------------------------------------------------------------
// command line: `./prog` runs every variant, `./prog N` only variant N; RANKCLIP_THREADS sets
// the thread count (default: all cores), as in the library

inline int selected_variant(int argc, char** argv) { return argc > 1 ? std::atoi(argv[1]) : 0; }

inline int playground_threads() {
    const char* env = std::getenv("RANKCLIP_THREADS");
    int n = env ? std::atoi(env) : omp_get_num_procs();
    n = std::max(n, 1);
    omp_set_num_threads(n);
    return n;
}

// ---------------------------------------------------------------------------------------------
// host data: a small deterministic generator (splitmix64), uniform and normal floats

struct HostRng {
    uint64_t state;
    explicit HostRng(uint64_t seed) : state(seed) {}
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
    double normal() {  // Box-Muller
        double u1 = std::max(uniform(), 1e-300), u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
};

inline std::vector<float> random_normal(size_t n, uint64_t seed, float scale = 1.0f) {
    HostRng rng(seed);
    std::vector<float> v(n);
    for (float& x : v) x = float(rng.normal()) * scale;
    return v;
}

inline std::vector<float> random_uniform(size_t n, uint64_t seed, float lo, float hi) {
    HostRng rng(seed);
    std::vector<float> v(n);
    for (float& x : v) x = lo + float(rng.uniform()) * (hi - lo);
    return v;
}

// ---------------------------------------------------------------------------------------------
// bf16: the top 16 bits of a float, rounded to nearest even (as engine/dtype.h and PyTorch)

inline uint16_t float_to_bf16_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
    return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float bf16_bits_to_float(uint16_t h) {
    uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
    std::vector<uint16_t> out(v.size());
    for (size_t i = 0; i < v.size(); i++) out[i] = float_to_bf16_bits(v[i]);
    return out;
}

// Rounds every value through bf16 (what a bf16 kernel's inputs really are), for references.
inline std::vector<float> round_to_bf16(const std::vector<float>& v) {
    std::vector<float> out(v.size());
    for (size_t i = 0; i < v.size(); i++) out[i] = bf16_bits_to_float(float_to_bf16_bits(v[i]));
    return out;
}

// ---------------------------------------------------------------------------------------------
// validation: |got - ref| <= atol + rtol |ref| everywhere; prints the worst element on failure

inline bool validate(const char* name, const float* got, const float* ref, size_t n, float atol,
                     float rtol = 0.0f) {
    size_t worst = 0;
    double worst_excess = -1;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double err = std::fabs(double(got[i]) - double(ref[i]));
        double allowed = atol + rtol * std::fabs(double(ref[i]));
        bool ok = err <= allowed && std::isfinite(got[i]) == std::isfinite(ref[i]);
        if (!ok) bad++;
        if (!ok && err - allowed > worst_excess) worst_excess = err - allowed, worst = i;
    }
    if (bad) {
        std::printf("  FAIL %s: %d of %zu elements off; worst [%zu] got %.8g, want %.8g\n", name, bad, n, worst,
                    double(got[worst]), double(ref[worst]));
        return false;
    }
    return true;
}

inline bool validate(const char* name, const std::vector<float>& got, const std::vector<float>& ref, float atol,
                     float rtol = 0.0f) {
    if (got.size() != ref.size()) {
        std::printf("  FAIL %s: %zu values, want %zu\n", name, got.size(), ref.size());
        return false;
    }
    return validate(name, got.data(), ref.data(), got.size(), atol, rtol);
}

// Two runs of a kernel that must give the same bits (deterministic reductions).
inline bool same_bits(const char* name, const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0) return true;
    std::printf("  FAIL %s: two identical runs differ\n", name);
    return false;
}

// ---------------------------------------------------------------------------------------------
// timing: one warm-up call, then timed calls until at least `min_runs` and 0.2 s; the median in
// milliseconds (machines are shared: the median resists a disturbed run, the spread is printed)

struct Timing {
    double median_ms, min_ms, max_ms;
    int runs;
};

template <typename F>
Timing time_it(F&& f, int min_runs = 10, double min_seconds = 0.2) {
    using clock = std::chrono::steady_clock;
    f();
    std::vector<double> ms;
    double total = 0;
    while (int(ms.size()) < min_runs || total < min_seconds) {
        auto t0 = clock::now();
        f();
        double s = std::chrono::duration<double>(clock::now() - t0).count();
        ms.push_back(s * 1e3);
        total += s;
        if (ms.size() > 10000) break;
    }
    std::sort(ms.begin(), ms.end());
    return {ms[ms.size() / 2], ms.front(), ms.back(), int(ms.size())};
}

// ---------------------------------------------------------------------------------------------
// rooflines, measured here with the playground's thread count

// GFLOP/s of `Chains` independent chains of one 512-bit instruction per thread, summed over the
// threads: acc = step(acc), each doing `flops` floating-point operations.
template <int Chains, typename Step>
double chained_peak_gflops(Step step, double flops) {
    const long iters = 20000000;
    double total = 0;
#pragma omp parallel reduction(+ : total)
    {
        __m512 acc[Chains];
        for (int i = 0; i < Chains; i++) acc[i] = _mm512_set1_ps(0.001f * float(i));
        auto t0 = std::chrono::steady_clock::now();
        for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
            for (int i = 0; i < Chains; i++) acc[i] = step(acc[i]);
        }
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        float sink = 0;
        for (int i = 0; i < Chains; i++) sink += _mm512_reduce_add_ps(acc[i]);
        if (sink == 1234.5f) std::printf(" ");
        total += double(iters) * Chains * flops / s / 1e9;
    }
    return total;
}

// The fp32 FMA peak in GFLOP/s: 12 independent chains of 16-wide FMAs per thread (enough to
// cover the FMA latency on two ports).
inline double measured_fp32_peak_gflops() {
    static double peak = [] {
        const __m512 b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-4f);
        return chained_peak_gflops<12>([&](__m512 acc) { return _mm512_fmadd_ps(acc, b, c); }, 32);
    }();
    return peak;
}

// Linux gives a process the AMX tile state only on request (arch_prctl); true when the CPU has
// AMX-BF16 and the kernel granted it.
inline bool amx_available() {
    static bool ok = [] {
        unsigned eax, ebx, ecx, edx;
        __cpuid_count(7, 0, eax, ebx, ecx, edx);
        bool amx_bf16 = (edx >> 22) & 1, amx_tile = (edx >> 24) & 1;
        const long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
        return amx_bf16 && amx_tile && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    }();
    return ok;
}

// The AMX bf16 peak in GFLOP/s (0 without AMX): four independent 16x16 accumulator tiles, each
// a 16x32 by 32x16 bf16 product per instruction.
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
struct AmxTileConfig {
    uint8_t palette_id = 1, start_row = 0, reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};
inline double measured_amx_peak_gflops() {
    static double peak = [] {
        if (!amx_available()) return 0.0;
        const long iters = 4000000;
        double total = 0;
#pragma omp parallel reduction(+ : total)
        {
            AmxTileConfig cfg;
            for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
            _tile_loadconfig(&cfg);
            alignas(64) uint16_t ones[16 * 32];
            for (uint16_t& x : ones) x = 0x3f80;
            _tile_loadd(4, ones, 64);
            _tile_loadd(5, ones, 64);
            _tile_loadd(6, ones, 64);
            _tile_loadd(7, ones, 64);
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            auto t0 = std::chrono::steady_clock::now();
            for (long it = 0; it < iters; it++) {
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            alignas(64) float sink[256];
            _tile_stored(0, sink, 64);
            _tile_release();
            total += double(iters) * 4 * 16 * 16 * 32 * 2 / s / 1e9;
        }
        return total;
    }();
    return peak;
}
#else
inline double measured_amx_peak_gflops() { return 0.0; }
#endif

// The AVX512-BF16 peak in GFLOP/s (0 without it): 16 independent chains of vdpbf16ps per thread
// (12 fall 8% short on the AMD EPYC machine; 24 gain nothing), each 16 lanes x 2 bf16 products x
// (multiply + add). What a bf16 GEMM can reach on a CPU without AMX (AMD's Zen 4 and 5).
#if defined(__AVX512BF16__)
inline double measured_avx512_bf16_peak_gflops() {
    static double peak = [] {
        const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3800);
        return chained_peak_gflops<16>([&](__m512 acc) { return _mm512_dpbf16_ps(acc, a, b); }, 64);
    }();
    return peak;
}
#else
inline double measured_avx512_bf16_peak_gflops() { return 0.0; }
#endif

// The peak a bf16 GEMM is measured against: AMX's where the CPU has it, else AVX512-BF16's.
inline double measured_bf16_peak_gflops() {
    return amx_available() ? measured_amx_peak_gflops() : measured_avx512_bf16_peak_gflops();
}

// Bytes read + written per second copying 256 MiB (past every cache but the shared L3 of big
// servers: what a pass over large activations costs), split over the threads.
inline double measured_copy_gbs() {
    static double gbs = [] {
        const size_t n = size_t(64) << 20;  // floats
        std::vector<float> a(n, 1.0f), b(n, 0.0f);
        Timing t = time_it([&] {
#pragma omp parallel for schedule(static)
            for (long i = 0; i < long(n); i++) b[i] = a[i];
        }, 5, 0.1);
        return 2.0 * n * sizeof(float) / (t.median_ms * 1e-3) / 1e9;
    }();
    return gbs;
}

inline void print_rooflines() {
    std::printf("rooflines (%d threads): fp32 FMA %.0f GFLOP/s, AMX bf16 %.0f GFLOP/s, AVX512-BF16 %.0f GFLOP/s, "
                "copy %.1f GB/s\n", omp_get_max_threads(), measured_fp32_peak_gflops(), measured_amx_peak_gflops(),
                measured_avx512_bf16_peak_gflops(), measured_copy_gbs());
}

// One benchmark line: time, spread, and the fraction of the roofline that applies.
inline void report_flops(const char* what, const Timing& t, double flops, double peak_gflops) {
    double gflops = flops / (t.median_ms * 1e-3) / 1e9;
    std::printf("  %-44s %9.3f ms (min %.3f, max %.3f)  %8.1f GFLOP/s  %5.1f%% of peak\n", what, t.median_ms,
                t.min_ms, t.max_ms, gflops, peak_gflops > 0 ? 100.0 * gflops / peak_gflops : 0.0);
}

inline void report_bandwidth(const char* what, const Timing& t, double bytes) {
    double gbs = bytes / (t.median_ms * 1e-3) / 1e9;
    std::printf("  %-44s %9.3f ms (min %.3f, max %.3f)  %8.2f GB/s  %5.1f%% of copy\n", what, t.median_ms, t.min_ms,
                t.max_ms, gbs, 100.0 * gbs / measured_copy_gbs());
}

inline int finish(const char* program, bool all_ok) {
    std::printf("%s: %s\n", program, all_ok ? "all checks passed" : "SOME CHECKS FAILED");
    return all_ok ? 0 : 1;
}
