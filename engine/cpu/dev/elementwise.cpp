// engine/cpu/dev/elementwise.cpp
// defines: the elementwise playground: variants of a flat add, a (N, C) + (C) bias add, exact
// GELU forward, the f32 -> bf16 cast and the AdamW step, each checked against its scalar
// reference on awkward sizes, then timed on the model's shapes against the copy bandwidth;
// the fork/join threshold (one thread vs two by size); the ULP error of SLEEF's exp / log /
// tanh / erf against the exact value over a sweep.
//   variant 1  scalar, through an offsets-per-element loop (what the library did before)
//   variant 2  plain flat loop (whatever GCC -O2 auto-vectorises)
//   variant 3  AVX-512 intrinsics, masked tail, SLEEF where needed   <- the library's
// (and a permuted copy: 1 element by element, 2 memcpy per contiguous run, 3 masked 64-byte
// vector copies per run: as fast as 2, memory-bound; the library uses 2)
// (cast: 3 = integer round-to-nearest-even, 4 = VCVTNEPS2BF16, which flushes denormals)
#include <sleef.h>

#include <array>

#include "common.h"

static const int64_t kShapes[][2] = {{8320, 128}, {8320, 512}, {4096, 128}};

// ---- the kernels ----

static inline __mmask16 tail_mask(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

// variant 1: the old for_each_strided shape, an offset array per element
template <size_t N, typename F>
static void old_strided(int64_t rows, int64_t C, const std::array<std::array<int64_t, 2>, N>& strides, F&& f) {
#pragma omp parallel for schedule(static) if (rows * C > 32768)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < C; j++) {
            std::array<int64_t, N> off;
            for (size_t k = 0; k < N; k++) off[k] = r * strides[k][0] + j * strides[k][1];
            f(off);
        }
}

static void add_v1(const float* a, const float* b, float* y, int64_t R, int64_t C, bool bias) {
    old_strided<3>(R, C, {{{C, 1}, {C, 1}, {bias ? 0 : C, 1}}}, [&](const std::array<int64_t, 3>& o) { y[o[0]] = a[o[1]] + b[o[2]]; });
}
static void add_v2(const float* a, const float* b, float* y, int64_t R, int64_t C, bool bias) {
#pragma omp parallel for schedule(static) if (R * C > 65536)
    for (int64_t r = 0; r < R; r++) {
        const float* br = bias ? b : b + r * C;
        for (int64_t j = 0; j < C; j++) y[r * C + j] = a[r * C + j] + br[j];
    }
}
static void add_v3(const float* a, const float* b, float* y, int64_t R, int64_t C, bool bias) {
    auto run = [&](int64_t begin, int64_t end) {  // rows [begin, end); a flat run when not bias
        if (!bias) {
            int64_t n = (end - begin) * C, o = begin * C;
            for (int64_t i = 0; i < n; i += 16) {
                __mmask16 m = tail_mask(n - i);
                _mm512_mask_storeu_ps(y + o + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + o + i), _mm512_maskz_loadu_ps(m, b + o + i)));
            }
            return;
        }
        for (int64_t r = begin; r < end; r++)
            for (int64_t i = 0; i < C; i += 16) {
                __mmask16 m = tail_mask(C - i);
                _mm512_mask_storeu_ps(y + r * C + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + r * C + i), _mm512_maskz_loadu_ps(m, b + i)));
            }
    };
    if (R * C < 65536) return run(0, R);
#pragma omp parallel
    {
        int64_t t = omp_get_thread_num(), T = omp_get_num_threads(), piece = (R + T - 1) / T;
        run(std::min(R, t * piece), std::min(R, (t + 1) * piece));
    }
}

static float gelu_ref(float x) { return 0.5f * x * (1.0f + std::erf(x * float(M_SQRT1_2))); }
static void gelu_v1(const float* x, float* y, int64_t n) {
    old_strided<2>(1, n, {{{0, 1}, {0, 1}}}, [&](const std::array<int64_t, 2>& o) { y[o[0]] = gelu_ref(x[o[1]]); });
}
static void gelu_v2(const float* x, float* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 8192)
    for (int64_t i = 0; i < n; i++) y[i] = gelu_ref(x[i]);
}
static void gelu_v3(const float* x, float* y, int64_t n) {
    auto run = [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; i += 16) {
            __mmask16 m = tail_mask(end - i);
            __m512 v = _mm512_maskz_loadu_ps(m, x + i);
            __m512 e = Sleef_erff16_u10avx512f(_mm512_mul_ps(v, _mm512_set1_ps(float(M_SQRT1_2))));
            _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(_mm512_set1_ps(1.0f), e)));
        }
    };
    if (n < 8192) return run(0, n);
#pragma omp parallel
    {
        int64_t t = omp_get_thread_num(), T = omp_get_num_threads(), piece = (n / T + 63) / 64 * 64;
        run(std::min(n, t * piece), t == T - 1 ? n : std::min(n, (t + 1) * piece));
    }
}

static void cast_v1(const float* x, uint16_t* y, int64_t n) {
    old_strided<2>(1, n, {{{0, 1}, {0, 1}}}, [&](const std::array<int64_t, 2>& o) { y[o[0]] = float_to_bf16_bits(x[o[1]]); });
}
static void cast_v2(const float* x, uint16_t* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] = float_to_bf16_bits(x[i]);
}
static inline __m256i narrow_rne(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), rounded, quiet));
}
template <bool Native>
static void cast_vec(const float* x, uint16_t* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i += 16) {  // (16-element steps split across threads)
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m256i h;
        if constexpr (Native) h = (__m256i)_mm512_cvtneps_pbh(v);
        else h = narrow_rne(v);
        _mm256_mask_storeu_epi16(y + i, m, h);
    }
}

// AdamW: the scalar reference (no contraction in this function) and the 16-lane twin
struct Adam { float b1, omb1, b2, omb2, eps, decay, nss, bc2; };
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
static void adamw_v2(float* p, const float* g, float* m, float* v, int64_t n, const Adam& s) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i] * s.decay;
        float mi = m[i] * s.b1 + s.omb1 * g[i];
        float vi = v[i] * s.b2 + (s.omb2 * g[i]) * g[i];
        p[i] = pi + (s.nss * mi) / (std::sqrt(vi) / s.bc2 + s.eps);
        m[i] = mi, v[i] = vi;
    }
}
static void adamw_v3(float* p, const float* g, float* m, float* v, int64_t n, const Adam& s) {
    const __m512 decay = _mm512_set1_ps(s.decay), b1 = _mm512_set1_ps(s.b1), omb1 = _mm512_set1_ps(s.omb1),
                 b2 = _mm512_set1_ps(s.b2), omb2 = _mm512_set1_ps(s.omb2), nss = _mm512_set1_ps(s.nss),
                 bc2 = _mm512_set1_ps(s.bc2), eps = _mm512_set1_ps(s.eps);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 gi = _mm512_maskz_loadu_ps(k, g + i);
        __m512 pi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), decay);
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, m + i), b1), _mm512_mul_ps(omb1, gi));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, v + i), b2), _mm512_mul_ps(_mm512_mul_ps(omb2, gi), gi));
        __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2), eps);
        _mm512_mask_storeu_ps(p + i, k, _mm512_add_ps(pi, _mm512_div_ps(_mm512_mul_ps(nss, mi), den)));
        _mm512_mask_storeu_ps(m + i, k, mi);
        _mm512_mask_storeu_ps(v + i, k, vi);
    }
}
#pragma GCC pop_options

// A permuted copy: qkv (B, T, 3, H, D) -> (3, B, H, T, D), runs of D contiguous floats.
struct Permute { int64_t B, T, H, D; };
static void permute_v1(const float* x, float* y, const Permute& p) {  // element by element
    int64_t rows = 3 * p.B * p.H * p.T;
#pragma omp parallel for schedule(static) if (rows * p.D > 32768)
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = r % p.T, h = r / p.T % p.H, b = r / (p.T * p.H) % p.B, k = r / (p.T * p.H * p.B);
        for (int64_t d = 0; d < p.D; d++) {
            std::array<int64_t, 2> off = {r * p.D + d, (((b * p.T + t) * 3 + k) * p.H + h) * p.D + d};
            y[off[0]] = x[off[1]];
        }
    }
}
template <bool Memcpy>
static void permute_runs(const float* x, float* y, const Permute& p) {  // one copy per run of D
    int64_t rows = 3 * p.B * p.H * p.T;
#pragma omp parallel for schedule(static) if (rows * p.D > 65536)
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = r % p.T, h = r / p.T % p.H, b = r / (p.T * p.H) % p.B, k = r / (p.T * p.H * p.B);
        const float* s = x + (((b * p.T + t) * 3 + k) * p.H + h) * p.D;
        float* d = y + r * p.D;
        if (Memcpy) std::memcpy(d, s, size_t(p.D) * 4);
        else
            for (size_t i = 0; i < size_t(p.D) * 4; i += 64) {
                size_t n = std::min<size_t>(64, size_t(p.D) * 4 - i);
                __mmask64 m = n == 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
                _mm512_mask_storeu_epi8(reinterpret_cast<char*>(d) + i, m, _mm512_maskz_loadu_epi8(m, reinterpret_cast<const char*>(s) + i));
            }
    }
}

// ---- checks ----

static const int64_t kAwkward[][2] = {{1, 1}, {3, 15}, {2, 17}, {5, 33}, {7, 128}, {3, 512}, {2, 768}, {1, 1000003}};

static bool check_all() {
    bool ok = true;
    for (auto& s : kAwkward) {
        int64_t R = s[0], C = s[1], n = R * C;
        auto a = random_normal(size_t(n), 1), b = random_normal(size_t(n), 2), ref(a), got(a);
        for (bool bias : {false, true}) {
            for (int64_t i = 0; i < n; i++) ref[i] = a[i] + b[bias ? i % C : i];
            for (auto f : {add_v1, add_v2, add_v3}) {
                std::fill(got.begin(), got.end(), 0.0f);
                f(a.data(), b.data(), got.data(), R, C, bias);
                ok &= validate(bias ? "bias add" : "add", got, ref, 0.0f);
            }
        }
        for (int64_t i = 0; i < n; i++) ref[i] = gelu_ref(a[i] * 3);
        auto x3 = a;
        for (float& v : x3) v *= 3;
        for (auto f : {gelu_v1, gelu_v2, gelu_v3}) {
            f(x3.data(), got.data(), n);
            ok &= validate("gelu", got, ref, 2e-7f, 4e-7f);  // SLEEF erf within 1 ULP
        }
        std::vector<uint16_t> want(static_cast<size_t>(n)), h(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; i++) want[i] = float_to_bf16_bits(a[i]);
        for (auto f : {cast_v1, cast_v2, cast_vec<false>}) {
            f(a.data(), h.data(), n);
            if (h != want) std::printf("  FAIL cast (%ld x %ld)\n", long(R), long(C)), ok = false;
        }
        Adam st{0.9f, 0.1f, 0.98f, 0.02f, 1e-6f, 0.9999f, -1e-3f, 0.05f};
        auto p2 = a, m2 = b, v2 = random_uniform(size_t(n), 3, 0, 1e-4f), g = random_normal(size_t(n), 4, 1e-2f);
        auto p3 = p2, m3 = m2, v3 = v2;
        adamw_v2(p2.data(), g.data(), m2.data(), v2.data(), n, st);
        adamw_v3(p3.data(), g.data(), m3.data(), v3.data(), n, st);
        ok &= same_bits("adamw p (vector vs scalar)", p2, p3) && same_bits("adamw m", m2, m3) && same_bits("adamw v", v2, v3);
    }
    for (Permute pp : {Permute{2, 3, 2, 5}, Permute{3, 65, 4, 32}, Permute{1, 7, 3, 17}}) {
        int64_t n = 3 * pp.B * pp.T * pp.H * pp.D;
        auto x = random_normal(size_t(n), 5), ref(x), got(x);
        permute_v1(x.data(), ref.data(), pp);
        permute_runs<true>(x.data(), got.data(), pp);
        ok &= same_bits("permute (memcpy)", ref, got);
        std::fill(got.begin(), got.end(), 0.0f);
        permute_runs<false>(x.data(), got.data(), pp);
        ok &= same_bits("permute (masked vector)", ref, got);
    }
    // the cast's special values: ties, NaN, denormals (VCVTNEPS2BF16 flushes those: not used)
    std::vector<uint32_t> bits = {0x3f808000, 0x3f818000, 0x7fc00001, 0x7f800001, 0x00008000, 0x00018001, 0x807fffff, 0x7f7fffff};
    std::vector<float> sp(bits.size());
    std::memcpy(sp.data(), bits.data(), bits.size() * 4);
    std::vector<uint16_t> want(sp.size()), h(sp.size()), native(sp.size());
    for (size_t i = 0; i < sp.size(); i++) want[i] = float_to_bf16_bits(sp[i]);
    cast_vec<false>(sp.data(), h.data(), int64_t(sp.size()));
    cast_vec<true>(sp.data(), native.data(), int64_t(sp.size()));
    if (h != want) std::printf("  FAIL cast special values\n"), ok = false;
    int differ = 0;
    for (size_t i = 0; i < sp.size(); i++) differ += native[i] != want[i];
    std::printf("  VCVTNEPS2BF16 differs from float_to_bf16 on %d of %zu special values (denormals)\n", differ, sp.size());
    return ok;
}

// The largest error of the library's SLEEF calls against the exact value over a sweep of
// floats (every 97th bit pattern in the range), in float ULPs.
static void ulp_report() {
    struct F { const char* name; const __m512 (*vec)(__m512); double (*exact)(double); float lo, hi; };
    F fs[] = {{"exp", Sleef_expf16_u10avx512f, [](double x) { return std::exp(x); }, -87, 88},
              {"log", Sleef_logf16_u10avx512f, [](double x) { return std::log(x); }, 1e-30f, 1e30f},
              {"tanh", Sleef_tanhf16_u10avx512f, [](double x) { return std::tanh(x); }, -10, 10},
              {"erf", Sleef_erff16_u10avx512f, [](double x) { return std::erf(x); }, -5, 5}};
    for (const F& f : fs) {
        std::vector<float> xs;
        for (float x = f.lo; x < f.hi;) {
            xs.push_back(x);
            int32_t b;
            std::memcpy(&b, &x, 4);
            b += x < 0 ? -97 : 97;
            if (x < 0 && b < int32_t(0x80000000u + 97)) b = 0;
            std::memcpy(&x, &b, 4);
        }
        double worst = 0;
        for (size_t i = 0; i + 16 <= xs.size(); i += 16) {
            alignas(64) float out[16];
            _mm512_store_ps(out, f.vec(_mm512_loadu_ps(&xs[i])));
            for (int j = 0; j < 16; j++) {
                double e = f.exact(xs[i + j]);
                if (std::fabs(e) < 1e-37 || !std::isfinite(e)) continue;
                double ulp = std::ldexp(1.0, std::ilogb(float(e)) - 23);
                worst = std::max(worst, std::fabs(double(out[j]) - e) / ulp);
            }
        }
        std::printf("  SLEEF %-5s u10: max error %.3f ULP over %zu values in [%g, %g]\n", f.name, worst, xs.size(), f.lo, f.hi);
    }
}

int main(int argc, char** argv) {
    int variant = selected_variant(argc, argv);
    int threads = playground_threads();
    print_rooflines();
    bool ok = check_all();
    ulp_report();
    std::printf("library (engine/cpu/cpu_elementwise.cpp, cpu_optim.cpp) uses variant 3 for all\n");
    auto want = [&](int v) { return variant == 0 || variant == v; };
    for (auto& s : kShapes) {
        int64_t R = s[0], C = s[1], n = R * C;
        auto a = random_normal(size_t(n), 1), b = random_normal(size_t(n), 2), y(a);
        std::vector<uint16_t> h(static_cast<size_t>(n));
        char name[96];
        std::printf("shape (%ld, %ld), %d threads\n", long(R), long(C), threads);
        for (int v = 1; v <= 3; v++) {
            if (!want(v)) continue;
            auto add = v == 1 ? add_v1 : v == 2 ? add_v2 : add_v3;
            std::snprintf(name, sizeof name, "add (N,C)+(N,C) v%d", v);
            report_bandwidth(name, time_it([&] { add(a.data(), b.data(), y.data(), R, C, false); }), 12.0 * n);
            std::snprintf(name, sizeof name, "bias add (N,C)+(C) v%d", v);
            report_bandwidth(name, time_it([&] { add(a.data(), b.data(), y.data(), R, C, true); }), 8.0 * n);
            auto gelu = v == 1 ? gelu_v1 : v == 2 ? gelu_v2 : gelu_v3;
            std::snprintf(name, sizeof name, "gelu v%d", v);
            report_bandwidth(name, time_it([&] { gelu(a.data(), y.data(), n); }), 8.0 * n);
            auto cast = v == 1 ? cast_v1 : v == 2 ? cast_v2 : cast_vec<false>;
            std::snprintf(name, sizeof name, "cast f32->bf16 v%d", v);
            report_bandwidth(name, time_it([&] { cast(a.data(), h.data(), n); }), 6.0 * n);
        }
        if (want(4)) report_bandwidth("cast f32->bf16 v4 (vcvtneps2bf16)", time_it([&] { cast_vec<true>(a.data(), h.data(), n); }), 6.0 * n);
        auto p = a, m = b, vv = random_uniform(size_t(n), 3, 0, 1e-4f);
        Adam st{0.9f, 0.1f, 0.98f, 0.02f, 1e-6f, 0.9999f, -1e-3f, 0.05f};
        if (want(2)) report_bandwidth("adamw v2 (scalar)", time_it([&] { adamw_v2(p.data(), b.data(), m.data(), vv.data(), n, st); }), 28.0 * n);
        if (want(3)) report_bandwidth("adamw v3", time_it([&] { adamw_v3(p.data(), b.data(), m.data(), vv.data(), n, st); }), 28.0 * n);
    }
    {
        Permute pp{128, 65, 4, 32};
        int64_t n = 3 * pp.B * pp.T * pp.H * pp.D;
        auto x = random_normal(size_t(n), 5), y(x);
        std::printf("permute copy qkv (128, 65, 3, 4, 32) -> (3, 128, 4, 65, 32)\n");
        if (want(1)) report_bandwidth("permute v1 (element by element)", time_it([&] { permute_v1(x.data(), y.data(), pp); }), 8.0 * n);
        if (want(2)) report_bandwidth("permute v2 (memcpy per run)", time_it([&] { permute_runs<true>(x.data(), y.data(), pp); }), 8.0 * n);
        if (want(3)) report_bandwidth("permute v3 (masked vector per run)", time_it([&] { permute_runs<false>(x.data(), y.data(), pp); }), 8.0 * n);
    }
    // the fork/join threshold: flat add and gelu on one thread against all of them, by size
    std::printf("1 thread vs %d by size (library: parallel from 32768 elements, 4096 for exp-like ops)\n", threads);
    for (int64_t n : {4096, 8192, 16384, 32768, 65536, 131072, 262144}) {
        auto a = random_normal(size_t(n), 1), b = random_normal(size_t(n), 2), y(a);
        auto add_run = [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; i += 16) {
                __mmask16 m = tail_mask(end - i);
                _mm512_mask_storeu_ps(y.data() + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a.data() + i), _mm512_maskz_loadu_ps(m, b.data() + i)));
            }
        };
        auto gelu_run = [&](int64_t begin, int64_t end) { gelu_v3(a.data() + begin, y.data() + begin, std::min<int64_t>(end - begin, 8191)); };
        auto split = [&](auto& run) {
#pragma omp parallel
            {
                int64_t t = omp_get_thread_num(), T = omp_get_num_threads(), piece = (n / T + 63) / 64 * 64;
                run(std::min(n, t * piece), t == T - 1 ? n : std::min(n, (t + 1) * piece));
            }
        };
        auto gelu_serial = [&] { for (int64_t i = 0; i < n; i += 8191) gelu_run(i, std::min(n, i + 8191)); };
        auto gelu_split = [&] {
#pragma omp parallel
            {
                int64_t t = omp_get_thread_num(), T = omp_get_num_threads(), piece = (n / T + 63) / 64 * 64;
                int64_t begin = std::min(n, t * piece), end = t == T - 1 ? n : std::min(n, (t + 1) * piece);
                for (int64_t i = begin; i < end; i += 8191) gelu_run(i, std::min(end, i + 8191));
            }
        };
        Timing add1 = time_it([&] { add_run(0, n); }), addT = time_it([&] { split(add_run); });
        Timing gelu1 = time_it(gelu_serial), geluT = time_it(gelu_split);
        std::printf("  n %7ld: add %.4f ms vs %.4f ms  %s | gelu %.4f ms vs %.4f ms  %s   (minima)\n", long(n), add1.min_ms,
                    addT.min_ms, addT.min_ms < add1.min_ms ? "threads win" : "one wins   ", gelu1.min_ms,
                    geluT.min_ms, geluT.min_ms < gelu1.min_ms ? "threads win" : "one wins");
    }
    return finish("elementwise", ok);
}
