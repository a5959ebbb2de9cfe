// engine/cpu/dev/gelu.cpp
// The GELU playground: exact GELU, y = x Phi(x) = x/2 (1 + erf(x / sqrt 2)), and its derivative
// Phi(x) + x phi(x), over 16 lanes. A GELU is evaluated ~50 million times per tiny training
// step (25 M forward on the MLP activations, 25 M again in backward), so its cost per element
// matters as much as a GEMM's.
//
//   1  SLEEF erf (Sleef_erff16_u10: 1 ULP erf, double-float arithmetic inside)
//   2  erfc through exp: Phi(x) = erfc(-x / sqrt 2) / 2, with erfc(z) for z >= 0 as
//      t exp(-z^2 + P(t)), t = 1 / (1 + z / 2), P a degree-9 polynomial (Numerical Recipes'
//      erfcc, fractional error < 1.2e-7 everywhere): one exp (SLEEF) and one division.
//      Relative accuracy holds on the negative side too, where x Phi(x) is tiny: Phi comes
//      straight from erfc there, not from 1 - something.
//   3  2, with erf's Taylor series near 0 (|x| < 0.7), where erfcc's 1.2e-7 is a few ULPs of Phi
//   4  piecewise polynomials for Phi and for the derivative D = Phi + x phi themselves, in |x|:
//      16 pieces of width 1/2, degree 7, the coefficients of a piece picked by a permute
//      (engine/cpu/gelu_tables.h from tools/gen_gelu_tables.py); no exp, no division
//
// Checks each variant's ULP error against a double-precision reference over a dense sweep of
// [-12, 12] (plus the tails), forward and derivative, then times them on the MLP activation shape.
// The engine uses variant 4: engine/cpu/vec.h (normal_cdf, gelu_derivative).
#include <sleef.h>

#include <limits>
#include <string>

#include "../gelu_tables.h"
#include "common.h"

// ---- the double-precision reference ----
static double ref_gelu(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }
static double ref_gelu_derivative(double x) {
    return 0.5 * std::erfc(-x / std::sqrt(2.0)) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
}

// ---- 1: SLEEF erf ----
static inline __m512 cdf_sleef(__m512 x) {
    __m512 e = Sleef_erff16_u10avx512f(_mm512_mul_ps(x, _mm512_set1_ps(float(M_SQRT1_2))));
    return _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

// ---- 2: erfc through one exp ----
// half_erfc(z) = erfc(z) / 2 for z >= 0; saturates to 0 past z ~ 10 (exp underflows).
static inline __m512 half_erfc_nonneg(__m512 z) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.5f), z, one));
    // P(t), Horner from the highest coefficient
    __m512 p = _mm512_set1_ps(0.17087277f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f - 0.69314718f));  // folds the / 2: exp(.. - ln 2)
    __m512 arg = _mm512_fnmadd_ps(z, z, p);                                     // -z^2 + P(t)
    return _mm512_mul_ps(t, Sleef_expf16_u10avx512f(arg));
}

// Phi(x) = erfc(-x / sqrt 2) / 2: for x < 0 straight from erfc (relative accuracy where Phi is
// tiny), for x >= 0 as 1 - erfc(x / sqrt 2) / 2.
static inline __m512 cdf_erfc(__m512 x) {
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(float(M_SQRT1_2)));
    __m512 h = half_erfc_nonneg(z);
    __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(negative, _mm512_sub_ps(_mm512_set1_ps(1.0f), h), h);
}

// 3: as 2 beyond |x| = 0.7; inside, 1/2 + erf/2 from erf's Taylor series to z^15.
static inline __m512 cdf_erfc_taylor(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(float(M_SQRT1_2)));
    __m512 z2 = _mm512_mul_ps(z, z), q = _mm512_set1_ps(float(-1.1283791670955126 / 75600));
    for (double c : {1.0 / 9360, -1.0 / 1320, 1.0 / 216, -1.0 / 42, 1.0 / 10, -1.0 / 3, 1.0})
        q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(float(1.1283791670955126 * c)));
    __m512 half_erf = _mm512_mul_ps(_mm512_mul_ps(q, z), half);
    __m512 half_erfc = half_erfc_nonneg(z);
    __mmask16 near = _mm512_cmp_ps_mask(z, _mm512_set1_ps(0.495f), _CMP_LT_OQ);
    __m512 lower = _mm512_mask_blend_ps(near, half_erfc, _mm512_sub_ps(half, half_erf));
    __m512 upper = _mm512_mask_blend_ps(near, _mm512_sub_ps(one, half_erfc), _mm512_add_ps(half, half_erf));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), upper, lower);
}

// 4: piecewise polynomials in t = |x|, f(-t) = 1 - f(t)
using namespace rankclip::vec;
static inline __m512 piecewise(const float (&table)[kGeluDegree + 1][kGeluPieces], __m512 x) {
    __m512 t = _mm512_abs_ps(x);
    __m512i piece = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_mul_ps(t, _mm512_set1_ps(1 / kGeluPieceWidth))),
                                     _mm512_set1_epi32(kGeluPieces - 1));
    __m512 u = _mm512_sub_ps(t, _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(piece), _mm512_set1_ps(0.5f)),
                                              _mm512_set1_ps(kGeluPieceWidth)));
    __m512 acc = _mm512_permutexvar_ps(piece, _mm512_load_ps(table[kGeluDegree]));
    for (int k = kGeluDegree - 1; k >= 0; k--) acc = _mm512_fmadd_ps(acc, u, _mm512_permutexvar_ps(piece, _mm512_load_ps(table[k])));
    acc = _mm512_mask_mov_ps(acc, _mm512_cmp_ps_mask(t, _mm512_set1_ps(kGeluPieces * kGeluPieceWidth), _CMP_GE_OQ),
                             _mm512_set1_ps(1.0f));
    __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_sub_ps(acc, negative, _mm512_set1_ps(1.0f), acc);
}

static inline __m512 pdf(__m512 x) {  // exp(-x^2 / 2) / sqrt(2 pi)
    __m512 e = Sleef_expf16_u10avx512f(_mm512_mul_ps(_mm512_mul_ps(x, x), _mm512_set1_ps(-0.5f)));
    return _mm512_mul_ps(e, _mm512_set1_ps(float(0.3989422804014327)));
}

template <int V> static inline __m512 cdf(__m512 x) {
    return V == 1 ? cdf_sleef(x) : V == 2 ? cdf_erfc(x) : V == 3 ? cdf_erfc_taylor(x) : piecewise(kNormalCdfTable, x);
}

template <int V> static void gelu_forward(const float* x, float* y, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, cdf<V>(v)));
    }
}

template <int V> static void gelu_backward(const float* x, const float* g, float* gx, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 d = V == 4 ? piecewise(kGeluDerivativeTable, v) : _mm512_fmadd_ps(v, pdf(v), cdf<V>(v));
        _mm512_mask_storeu_ps(gx + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + i), d));
    }
}

// Distance in float ULPs between a float and the double reference (0 when both round alike).
static double ulps(float got, double want) {
    float w = float(want);
    if (got == w) return 0;
    if (!std::isfinite(got) || !std::isfinite(w)) return 1e30;
    double ulp = std::fabs(double(std::nextafter(w, INFINITY)) - double(w));
    if (w == 0) ulp = std::numeric_limits<float>::denorm_min();
    return std::fabs(double(got) - want) / ulp;
}

struct Accuracy {
    double max_ulps = 0, worst_x = 0, max_abs = 0;
    double core_ulps = 0;  // over |x| <= 5.5, where GELU and its derivative are not tiny
    double max_abs_scaled = 0;  // forward: max |error| / max(|x|, 1)
};

template <int V> static void measure(const std::vector<float>& xs, Accuracy& fwd, Accuracy& bwd) {
    size_t n = xs.size();
    std::vector<float> y(n), ones(n, 1.0f), d(n);
    gelu_forward<V>(xs.data(), y.data(), int64_t(n));
    gelu_backward<V>(xs.data(), ones.data(), d.data(), int64_t(n));
    for (size_t i = 0; i < n; i++) {
        double want = ref_gelu(xs[i]), u = ulps(y[i], want);
        fwd.max_abs_scaled = std::max(fwd.max_abs_scaled, std::fabs(y[i] - want) / std::max(1.0, std::fabs(double(xs[i]))));
        // below about -9.3, x Phi(x) underflows float's normal range: compare absolutely there
        if (std::fabs(want) < 1e-37) u = 0, fwd.max_abs = std::max(fwd.max_abs, std::fabs(y[i] - want));
        if (u > fwd.max_ulps) fwd.max_ulps = u, fwd.worst_x = xs[i];
        if (std::fabs(xs[i]) <= 5.5f) fwd.core_ulps = std::max(fwd.core_ulps, u);
        double dwant = ref_gelu_derivative(xs[i]), du = ulps(d[i], dwant);
        // the derivative crosses zero near x = -0.75: ULPs mean nothing there; its absolute error
        // is what matters (its terms are O(1))
        bwd.max_abs = std::max(bwd.max_abs, std::fabs(d[i] - dwant));
        if (std::fabs(dwant) < 1e-3) du = 0;
        if (du > bwd.max_ulps) bwd.max_ulps = du, bwd.worst_x = xs[i];
        if (std::fabs(xs[i]) <= 5.5f) bwd.core_ulps = std::max(bwd.core_ulps, du);
    }
}

int main(int argc, char** argv) {
    int only = selected_variant(argc, argv);
    int threads = playground_threads();
    std::printf("gelu: %d threads\n", threads);
    print_rooflines();
    bool ok = true;

    std::vector<float> sweep;
    for (double x = -12; x <= 12; x += 1.0 / 4096) sweep.push_back(float(x));
    for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 30.0f, -30.0f, 100.0f, -100.0f}) sweep.push_back(x);
    const char* names[] = {"", "sleef erf", "erfc via exp", "erfc + taylor", "piecewise poly"};
    for (int v = 1; v <= 4; v++) {
        if (only && v != only) continue;
        Accuracy fwd, bwd;
        if (v == 1) measure<1>(sweep, fwd, bwd);
        else if (v == 2) measure<2>(sweep, fwd, bwd);
        else if (v == 3) measure<3>(sweep, fwd, bwd);
        else measure<4>(sweep, fwd, bwd);
        std::printf("  %-14s forward: max %.1f ULP over |x| <= 5.5, %.1f over all (at x = %g)\n", names[v],
                    fwd.core_ulps, fwd.max_ulps, fwd.worst_x);
        std::printf("  %-14s forward: max |error| / max(|x|, 1) = %.2g\n", names[v], fwd.max_abs_scaled);
        std::printf("  %-14s derivative: max %.1f ULP over |x| <= 5.5, %.1f over all (at x = %g); max abs error %.2g\n",
                    names[v], bwd.core_ulps, bwd.max_ulps, bwd.worst_x, bwd.max_abs);
        // the engine's variant: its error in absolute terms, what tests/test_cpu_kernels.cpp
        // bounds for x < 0 (1.2e-7 |x| on GELU; for x >= 0 it asks 4 ULP, checked there)
        if (v == 4 && (fwd.max_abs_scaled > 1.2e-7 || bwd.max_abs > 2e-7)) {
            std::printf("  FAIL %s: GELU off by more than 1.2e-7 |x|, or D by more than 2e-7\n", names[v]);
            ok = false;
        }
    }

    const int64_t n = 8320 * 512;  // tiny ViT MLP activations
    std::vector<float> x = random_normal(size_t(n), 3), g = random_normal(size_t(n), 4);
    std::vector<float> y(static_cast<size_t>(n));
    std::printf("GELU over (8320, 512) fp32\n");
    for (int v = 1; v <= 4; v++) {
        if (only && v != only) continue;
        auto forward = [&] {
            if (v == 1) gelu_forward<1>(x.data(), y.data(), n);
            else if (v == 2) gelu_forward<2>(x.data(), y.data(), n);
            else if (v == 3) gelu_forward<3>(x.data(), y.data(), n);
            else gelu_forward<4>(x.data(), y.data(), n);
        };
        auto backward = [&] {
            if (v == 1) gelu_backward<1>(x.data(), g.data(), y.data(), n);
            else if (v == 2) gelu_backward<2>(x.data(), g.data(), y.data(), n);
            else if (v == 3) gelu_backward<3>(x.data(), g.data(), y.data(), n);
            else gelu_backward<4>(x.data(), g.data(), y.data(), n);
        };
        Timing f = time_it(forward), b = time_it(backward);
        std::string fl = std::string(names[v]) + " forward", bl = std::string(names[v]) + " backward";
        report_bandwidth(fl.c_str(), f, 8.0 * n);
        report_bandwidth(bl.c_str(), b, 12.0 * n);
        std::printf("    %.2f ns / element forward, %.2f backward (per thread)\n", f.median_ms * 1e6 * threads / n,
                    b.median_ms * 1e6 * threads / n);
    }
    std::printf("the engine uses: piecewise poly (4)\n");
    return finish("gelu", ok);
}
