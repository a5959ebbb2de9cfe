// engine/cpu/dev/exp.cpp
// The exp playground: 16-lane float exp, the function behind softmax, cross-entropy, attention
// and GELU (~90 million evaluations per tiny training step).
//
//   1  SLEEF Sleef_expf16_u10 (a call into libsleef per vector; 1 ULP)
//   2  inline: x = n ln 2 + r (Cody-Waite, two-part ln 2), e^r by a degree-6 polynomial on
//      |r| <= ln 2 / 2 (Taylor coefficients; Horner with FMAs), times 2^n by vscalefps, which
//      also gives 0 below the float range and inf above it without extra compares
//
// Checks the ULP error of each against exp in double over a dense sweep of [-104, 89] (the
// whole float range, denormal results included) plus inf, -inf and NaN, then times them.
// The engine keeps variant 1 (engine/cpu/vec.h): measured, the inline one is only ~1.2-1.4x
// faster (0.28 against 0.35 ns per element on one thread, 0.30 against 0.43 inside a kernel)
// and 2.7 ULP off where SLEEF is within 1 — SLEEF's exp is cheap; what costs is how many there are.
#include <sleef.h>

#include <limits>
#include <string>

#include "common.h"

static inline __m512 exp_sleef(__m512 x) { return Sleef_expf16_u10avx512f(x); }

static inline __m512 exp_inline(__m512 x) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
    // n = round(x / ln 2); clamped so that n stays an exact small integer for scalef
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-150.0f)), _mm512_set1_ps(150.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, ln2_hi, xc);
    r = _mm512_fnmadd_ps(n, ln2_lo, r);
    // e^r = 1 + r + r^2/2 + ... + r^6/720
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512 y = _mm512_scalef_ps(p, n);
    // NaN in, NaN out (the clamp would have turned it into a number)
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

template <int V> static inline __m512 exp16(__m512 x) { return V == 1 ? exp_sleef(x) : exp_inline(x); }

template <int V> static void exp_array(const float* x, float* y, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, exp16<V>(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

// A GELU-like load: a few FMAs around each exp, as the kernels use it.
template <int V> static void softmax_like(const float* x, float* y, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 e = exp16<V>(_mm512_mul_ps(_mm512_mul_ps(v, v), _mm512_set1_ps(-0.5f)));
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(v, e, v));
    }
}

static double ulps(float got, double want) {
    if (std::isnan(want)) return std::isnan(got) ? 0 : 1e30;
    float w = float(want);
    if (got == w) return 0;
    if (std::isinf(w) || std::isinf(got)) return 1e30;
    double ulp = std::fabs(double(std::nextafter(w, INFINITY)) - double(w));
    return std::fabs(double(got) - want) / ulp;
}

int main(int argc, char** argv) {
    int only = selected_variant(argc, argv);
    int threads = playground_threads();
    std::printf("exp: %d threads\n", threads);
    print_rooflines();
    bool ok = true;

    std::vector<float> sweep;
    for (double x = -104; x <= 89; x += 1.0 / 1024) sweep.push_back(float(x));
    for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 88.72f, 88.73f, -87.33f, -103.9f, -104.5f, INFINITY, -INFINITY, NAN})
        sweep.push_back(x);
    const char* names[] = {"", "sleef u10", "inline degree 6"};
    std::vector<float> y(sweep.size());
    for (int v = 1; v <= 2; v++) {
        if (only && v != only) continue;
        if (v == 1) exp_array<1>(sweep.data(), y.data(), int64_t(sweep.size()));
        else exp_array<2>(sweep.data(), y.data(), int64_t(sweep.size()));
        double worst = 0, worst_x = 0, worst_denormal = 0;
        for (size_t i = 0; i < sweep.size(); i++) {
            double want = std::exp(double(sweep[i])), u = ulps(y[i], want);
            if (want < double(std::numeric_limits<float>::min())) {  // denormal results: absolute
                worst_denormal = std::max(worst_denormal, std::fabs(y[i] - want));
                continue;
            }
            if (u > worst) worst = u, worst_x = sweep[i];
        }
        std::printf("  %-16s max %.2f ULP over normal results (at x = %g); max abs %.1e on denormal results\n",
                    names[v], worst, worst_x, worst_denormal);
        if (v == 1 && (worst > 1 || worst_denormal > 1.5e-45)) {  // what the library relies on
            std::printf("  FAIL %s: outside 1 ULP\n", names[v]);
            ok = false;
        }
    }

    const int64_t n = 8320 * 512;
    std::vector<float> x = random_normal(size_t(n), 5, 3.0f), out(static_cast<size_t>(n));
    std::printf("exp over (8320, 512) fp32\n");
    for (int v = 1; v <= 2; v++) {
        if (only && v != only) continue;
        Timing t = time_it([&] { v == 1 ? exp_array<1>(x.data(), out.data(), n) : exp_array<2>(x.data(), out.data(), n); });
        Timing s = time_it([&] { v == 1 ? softmax_like<1>(x.data(), out.data(), n) : softmax_like<2>(x.data(), out.data(), n); });
        std::string a = std::string(names[v]) + " exp", b = std::string(names[v]) + " exp in a kernel";
        report_bandwidth(a.c_str(), t, 8.0 * n);
        report_bandwidth(b.c_str(), s, 8.0 * n);
        std::printf("    %.2f ns / element alone, %.2f in a kernel (per thread)\n", t.median_ms * 1e6 * threads / n,
                    s.median_ms * 1e6 * threads / n);
    }
    std::printf("the engine uses: sleef u10 (1)\n");
    return finish("exp", ok);
}
