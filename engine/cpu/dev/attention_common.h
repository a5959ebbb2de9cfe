// engine/cpu/dev/attention_common.h
// defines: what the two attention playground programs (attention_forward.cpp,
// attention_backward.cpp) share: CPU-time timing for a shared machine, the (B, H, T, D) head
// view, and the register-blocked AVX-512 micro-kernels every product of the tiled variants runs
// on: C (MR x 16 NV) (+)= A (MR x [k0, k1)) B ([k0, k1) x 16 NV), A read one scalar at a time and
// broadcast (row-major: A(r, k) = a[r lda + k]; otherwise A(r, k) = a[k lda + r], i.e. A is the
// transpose of what is stored), B rows of 16 NV floats. Every buffer they touch is a padded fp32
// tile, so no masks. With AVX512-BF16, the same micro-kernel on bf16 pairs for the bf16 variants
// (Bf16PairProducts: vdpbf16ps, a 32-bit pair of bf16 values along the reduction per element)
// and the row helpers they need. engine/cpu/cpu_attention.cpp holds the library's copies.
#pragma once
// GCC 12's AVX-512 headers build many intrinsics on a deliberately undefined register
// (_mm512_undefined_ps), which -Wuninitialized reports wherever they are inlined (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cstdint>
#include <sleef.h>

#include <ctime>

#include <array>
#include <utility>

#include "common.h"

namespace {

// On a shared machine other processes take turns on our cores and wall time measures them too.
// RANKCLIP_CPU_TIME=1 times by the process's CPU time divided by the thread count instead: with
// RANKCLIP_THREADS=1 that is what the kernel itself cost (with more threads it also counts the
// spinning at barriers).
template <typename F>
Timing time_kernel(F&& f, int min_runs, double min_seconds) {
    const char* env = std::getenv("RANKCLIP_CPU_TIME");
    if (!env || std::strcmp(env, "1") != 0) return time_it(f, min_runs, min_seconds);
    auto cpu_seconds = [] {
        timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
    };
    f();
    std::vector<double> ms;
    double total = 0;
    const int threads = omp_get_max_threads();
    while (int(ms.size()) < min_runs || total < min_seconds) {
        double t0 = cpu_seconds();
        f();
        double s = (cpu_seconds() - t0) / threads;
        ms.push_back(s * 1e3);
        total += s;
    }
    std::sort(ms.begin(), ms.end());
    return {ms[ms.size() / 2], ms.front(), ms.back(), int(ms.size())};
}

// One attention problem. flops(products): 2 x the multiply-adds of `products` (T x T x D)
// products over the visible keys: 2 in the forward (S = Q K^T, O = P V), 5 in the backward.
struct Problem {
    int64_t B, H, Tq, Tk, D;
    bool causal;
    int64_t BH() const { return B * H; }
    int64_t keys(int64_t i) const { return causal ? std::min(Tk, i + 1) : Tk; }
    double flops(int products) const {
        double visible = 0;
        for (int64_t i = 0; i < Tq; i++) visible += double(keys(i));
        return double(BH()) * visible * double(D) * 2.0 * products;
    }
};

// A (B, H, T, D) view with any strides for B, H, T and unit stride along D, as the model's
// q, k, v (views of the packed projection) and output.
struct HeadView {
    float* data;
    int64_t H, sb, sh, st;
    float* head(int64_t bh) const { return data + (bh / H) * sb + (bh % H) * sh; }
};

// What one step of the micro-kernel multiplies: Fp32Products, an fp32 element of A broadcast
// times 16 floats of B (FMA); Bf16PairProducts (AVX512-BF16, the bf16 variants), a 32-bit pair of
// bf16 values along the reduction broadcast times 16 pairs, both products added to each fp32
// lane (vdpbf16ps). ProductsFor picks by the tiles' element type (float, uint32_t).
struct Fp32Products {
    using Element = float;
    static __m512 load(const float* b) { return _mm512_loadu_ps(b); }
    static __m512 broadcast(float a) { return _mm512_set1_ps(a); }
    static __m512 madd(__m512 acc, __m512 a, __m512 b) { return _mm512_fmadd_ps(a, b, acc); }
};
#if defined(__AVX512BF16__)
struct Bf16PairProducts {
    using Element = uint32_t;
    static __m512bh load(const uint32_t* b) { return (__m512bh)_mm512_loadu_si512(b); }
    static __m512bh broadcast(uint32_t a) { return (__m512bh)_mm512_set1_epi32(int(a)); }
    static __m512 madd(__m512 acc, __m512bh a, __m512bh b) { return _mm512_dpbf16_ps(acc, a, b); }
};
#endif
template <typename E>
struct ProductsFor;
template <>
struct ProductsFor<float> {
    using type = Fp32Products;
};
#if defined(__AVX512BF16__)
template <>
struct ProductsFor<uint32_t> {
    using type = Bf16PairProducts;
};
#endif

template <typename P, int MR, int NV, bool kRowMajorA>
void micro_tile(int64_t k0, int64_t k1, const typename P::Element* a, int64_t lda, const typename P::Element* b,
                int64_t ldb, float* c, int64_t ldc, bool accumulate) {
    __m512 acc[MR][NV];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[r][v] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16 * v) : _mm512_setzero_ps();
    for (int64_t k = k0; k < k1; k++) {
        const typename P::Element* bk = b + k * ldb;
        decltype(P::load(bk)) bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) bv[v] = P::load(bk + 16 * v);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            auto av = P::broadcast(kRowMajorA ? a[r * lda + k] : a[k * lda + r]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = P::madd(acc[r][v], av, bv[v]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

template <typename P>
using TileFn = void (*)(int64_t, int64_t, const typename P::Element*, int64_t, const typename P::Element*, int64_t,
                        float*, int64_t, bool);
constexpr int kMaxRows = 16;
template <typename P, int NV, bool kRowMajorA, size_t... M>
constexpr std::array<TileFn<P>, kMaxRows> tile_row(std::index_sequence<M...>) {
    return {&micro_tile<P, int(M) + 1, NV, kRowMajorA>...};
}
// kTiles<P, A>[NV - 1][m - 1]: the micro-kernel for m rows and NV vectors
template <typename P, bool kRowMajorA>
constexpr std::array<std::array<TileFn<P>, kMaxRows>, 4> kTiles = {
    tile_row<P, 1, kRowMajorA>(std::make_index_sequence<kMaxRows>()),
    tile_row<P, 2, kRowMajorA>(std::make_index_sequence<kMaxRows>()),
    tile_row<P, 3, kRowMajorA>(std::make_index_sequence<kMaxRows>()),
    tile_row<P, 4, kRowMajorA>(std::make_index_sequence<kMaxRows>())};

// C[0:m, 0:n) (+)= A[0:m, k0:k1) B[k0:k1, 0:n): n a multiple of 16, in tiles of up to 64 columns;
// k counts elements, or pairs
template <bool kRowMajorA, typename E>
void gemm_rows(int m, int64_t n, int64_t k0, int64_t k1, const E* a, int64_t lda, const E* b, int64_t ldb, float* c,
               int64_t ldc, bool accumulate) {
    using P = typename ProductsFor<E>::type;
    for (int64_t j = 0; j < n;) {
        int nv = int(std::min<int64_t>((n - j) / 16, 4));
        kTiles<P, kRowMajorA>[nv - 1][m - 1](k0, k1, a, lda, b + j, ldb, c + j, ldc, accumulate);
        j += 16 * nv;
    }
}

int64_t round16(int64_t x) { return (x + 15) / 16 * 16; }
__mmask16 first_lanes(int64_t n) { return n >= 16 ? __mmask16(0xffff) : n > 0 ? __mmask16((1u << n) - 1) : 0; }

// Key-major copy dst[c ld + j] = src[j st + c] (j < rows, c < D): 16 x 16 blocks transposed in
// registers (an unpack / shuffle network), masked at the edges.
void transpose_blocks(const float* src, int64_t st, int64_t rows, int64_t D, float* dst, int64_t ld) {
    for (int64_t j0 = 0; j0 < rows; j0 += 16)
        for (int64_t c0 = 0; c0 < D; c0 += 16) {
            const __mmask16 cm = first_lanes(D - c0);
            const int64_t nr = std::min<int64_t>(16, rows - j0), nc = std::min<int64_t>(16, D - c0);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < nr ? _mm512_maskz_loadu_ps(cm, src + (j0 + i) * st + c0) : _mm512_setzero_ps();
            // 16 x 16 transpose: 32-bit, 64-bit interleaves, then 128-bit lane shuffles
            __m512 t[16];
            for (int i = 0; i < 8; i++) {
                t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            for (int i = 0; i < 4; i++)
                for (int h = 0; h < 2; h++) {
                    __m512d a = _mm512_castps_pd(t[4 * i + h]), b = _mm512_castps_pd(t[4 * i + 2 + h]);
                    r[4 * i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
                    r[4 * i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
                }
            // r[4i + q] holds, per 128-bit lane L, elements (4i .. 4i+3) of column 4L + q
            for (int q = 0; q < 4; q++) {
                __m512 a0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88), a1 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xdd);
                __m512 b0 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88),
                       b1 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xdd);
                t[q] = _mm512_shuffle_f32x4(a0, b0, 0x88);       // column q
                t[8 + q] = _mm512_shuffle_f32x4(a0, b0, 0xdd);   // column 8 + q
                t[4 + q] = _mm512_shuffle_f32x4(a1, b1, 0x88);   // column 4 + q
                t[12 + q] = _mm512_shuffle_f32x4(a1, b1, 0xdd);  // column 12 + q
            }
            const __mmask16 rm = first_lanes(nr);
            for (int c = 0; c < nc; c++) _mm512_mask_storeu_ps(dst + (c0 + c) * ld + j0, rm, t[c]);
        }
}

#if defined(__AVX512BF16__)
// ---------------------------------------------------------------------------------------------
// the bf16 variants' row helpers (their products: gemm_rows on uint32_t pair tiles)

using bf16 = uint16_t;

// n bf16 values into dst (zero past n up to `pad` values)
void copy_bf16_row(const bf16* src, bf16* dst, int64_t n, int64_t pad) {
    std::memcpy(dst, src, size_t(n) * 2);
    std::memset(dst + n, 0, size_t(pad - n) * 2);
}

// dst = bf16(src * mul), round to nearest even (VCVTNE2PS2BF16), n values
void narrow_row_bf16(const float* src, bf16* dst, int64_t n, float mul) {
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = first_lanes(n - j);
        __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + j), _mm512_set1_ps(mul));
        _mm256_mask_storeu_epi16(dst + j, m, (__m256i)_mm512_cvtneps_pbh(x));
    }
}

// Two bf16 rows interleaved: out[d] = (r0[d], r1[d]) as one 32-bit word, for d < Dp (a multiple
// of 16): row pairs of V for P V, of K for dS K, of Q and dO for dS^T Q and P^T dO.
void interleave_row_pairs(const bf16* r0, const bf16* r1, uint32_t* out, int64_t Dp) {
    const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6, 37,
                                        5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi = _mm512_set_epi16(63, 31, 62, 30, 61, 29, 60, 28, 59, 27, 58, 26, 57, 25, 56, 24, 55, 23, 54,
                                        22, 53, 21, 52, 20, 51, 19, 50, 18, 49, 17, 48, 16);
    for (int64_t d = 0; d < Dp; d += 32) {
        __mmask32 m = Dp - d >= 32 ? __mmask32(0xffffffff) : __mmask32((1u << (Dp - d)) - 1);
        __m512i a = _mm512_maskz_loadu_epi16(m, r0 + d), b = _mm512_maskz_loadu_epi16(m, r1 + d);
        _mm512_storeu_si512(out + d, _mm512_permutex2var_epi16(a, lo, b));
        if (Dp - d > 16) _mm512_storeu_si512(out + d + 16, _mm512_permutex2var_epi16(a, hi, b));
    }
}

#endif

// The bf16 variants need AVX512-BF16 and an even D (a row is whole 32-bit pairs).
inline bool bf16_variant_runs(const Problem& p) {
#if defined(__AVX512BF16__)
    return p.D % 2 == 0;
#else
    (void)p;
    return false;
#endif
}

// The FMA peak the benchmark reports against: measured here, or in CPU-time mode the peak
// measured on a quiet machine (239 GFLOP/s per core), since a loaded machine's wall-time
// measurement would understate it.
inline double benchmark_peak(int threads) {
    const char* cpu_env = std::getenv("RANKCLIP_CPU_TIME");
    double peak = cpu_env && std::strcmp(cpu_env, "1") == 0 ? 239.0 * threads : measured_fp32_peak_gflops();
    if (peak != measured_fp32_peak_gflops()) std::printf("timing by CPU time; %% of %.0f GFLOP/s\n", peak);
    return peak;
}

// The awkward shapes both programs check: T = 1, odd T, Tq != Tk either way, causal or not,
// D not a multiple of 16, a long sequence (several query blocks).
const Problem kCheckShapes[] = {
    {1, 1, 1, 1, 8, false},     {1, 1, 1, 1, 8, true},      {2, 3, 17, 17, 8, true},   {3, 1, 17, 17, 32, false},
    {1, 3, 65, 65, 32, false},  {1, 3, 65, 65, 32, true},   {1, 2, 77, 77, 64, true},  {1, 2, 128, 128, 64, false},
    {1, 1, 128, 128, 80, true}, {1, 1, 300, 300, 32, true}, {2, 1, 17, 77, 32, false}, {2, 1, 77, 17, 32, true},
    {1, 2, 5, 40, 24, true},    {1, 1, 40, 5, 24, true},
};

// The model shapes both programs time.
struct BenchmarkShape {
    const char* what;
    Problem p;
};
const BenchmarkShape kBenchmarkShapes[] = {
    {"tiny vision B128 H4 T65 D32", {128, 4, 65, 65, 32, false}},
    {"tiny text B128 H4 T32 D32 causal", {128, 4, 32, 32, 32, true}},
    {"small vision B64 H4 T65 D64", {64, 4, 65, 65, 64, false}},
    {"small text B64 H4 T32 D64 causal", {64, 4, 32, 32, 64, true}},
    {"b32 vision B32 H12 T50 D64", {32, 12, 50, 50, 64, false}},
    {"b32 text B32 H8 T77 D64 causal", {32, 8, 77, 77, 64, true}},
};

}  // namespace
