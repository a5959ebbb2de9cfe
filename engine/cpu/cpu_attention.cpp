// engine/cpu/cpu_attention.cpp
// defines: the fused CPU scaled-dot-product attention, forward and backward:
//   forward:  S = scale Q K^T (causal: key j > query i masked), P = softmax(S), O = P V;
//             saves lse = rowwise log-sum-exp of S so the backward can rebuild P
//   backward: P = exp(S - lse), dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)),
//             dQ = scale dS K, dK = scale dS^T Q
// Every (B, H, T, D) tensor is a view with any strides for B, H, T and unit stride along D
// (backend.h): q, k, v are read straight out of a packed projection, out and the gradients are
// written wherever the op front-end put them.
//
// F32 and BF16 (fp32 math): one (batch, head) per thread, a fixed split, so results are
// bit-identical run to run (and for any thread count). The head's Q, K, V (dO) are gathered into
// zero-padded fp32 tiles (bf16 widened; K and V also transposed, key-major), and every product is
// a register-blocked AVX-512 micro-kernel (micro_tile): an (MR x 16 NV) block of C in registers,
// one broadcast element of A times NV vectors of B per step. Queries go in blocks whose whole
// (queries, keys) score tile is materialised in a thread-local buffer of at most 128 KiB: up to
// T ~ 180 (every CLIP text and ViT-B/32 shape) one block holds every query; longer sequences take
// several blocks, so memory stays bounded (dK, dV accumulate over the blocks in a fixed order:
// no atomics). Causal attention skips the column tiles and key ranges above the diagonal. exp is
// SLEEF's (1 ulp). Rows are gathered into the tiles once per head; K^T and V^T by 16 x 16
// register transposes.
// BF16 on CPUs with AVX512-BF16 (D even, even strides: every CLIP shape): the same blocking and
// fp32 softmax, but every product runs on bf16 pairs (vdpbf16ps, two products per fp32 lane)
// straight from the bf16 rows, with P and dS rounded to bf16 for their products (as PyTorch's
// autocast feeds its bf16 matmuls). In the small model's bf16 training step the forward is 1.6x
// and the backward 1.34x faster than widening (docs/PERFORMANCE.md). Elsewhere BF16 widens to
// the fp32 tiles above.
// F64 (gradient checks): the plain scalar loops, one query row at a time.
// Measured in engine/cpu/dev/attention_forward.cpp (variant 4 is the fp32 forward, 6 the bf16
// one) and attention_backward.cpp (variants 3 and 5); at B = 128 the fp32 kernels spend a
// quarter to a third of their time reading q, k, v (and O, dO) from memory.
//
// GCC 12's AVX-512 headers build many intrinsics on a deliberately undefined register
// (_mm512_undefined_ps), which -Wuninitialized reports wherever they are inlined (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <sleef.h>

#include <array>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace rankclip {

namespace {

// ---------------------------------------------------------------------------------------------
// A (B, H, T, D) tensor as heads: head bh = (b, h) starts at data + b sb + h sh, row t at + t st.
template <typename T>
struct Heads {
    T* data;
    int64_t H, sb, sh, st;
    explicit Heads(const Tensor& t)
        : data(static_cast<T*>(t.raw_data())), H(t.size(1)), sb(t.strides()[0]), sh(t.strides()[1]),
          st(t.strides()[2]) {}
    T* head(int64_t bh) const { return data + (bh / H) * sb + (bh % H) * sh; }
};

int64_t round16(int64_t x) { return (x + 15) / 16 * 16; }
__mmask16 first_lanes(int64_t n) { return n >= 16 ? __mmask16(0xffff) : n > 0 ? __mmask16((1u << n) - 1) : 0; }

// ---------------------------------------------------------------------------------------------
// rows in and out of the fp32 tiles

inline void widen_row(const float* src, float* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * sizeof(float)); }
inline void widen_row(const bf16* src, float* dst, int64_t n) {
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = first_lanes(n - j);
        __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + j));
        _mm512_mask_storeu_ps(dst + j, m, _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)));
    }
}

// dst = src * mul, rounded to nearest even for bf16 exactly as float_to_bf16 (NaN stays NaN)
inline void narrow_row(const float* src, float* dst, int64_t n, float mul) {
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = first_lanes(n - j);
        _mm512_mask_storeu_ps(dst + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + j), _mm512_set1_ps(mul)));
    }
}
inline void narrow_row(const float* src, bf16* dst, int64_t n, float mul) {
    const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff), quiet = _mm512_set1_epi32(0x40);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = first_lanes(n - j);
        __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + j), _mm512_set1_ps(mul));
        __m512i u = _mm512_castps_si512(x), hi = _mm512_srli_epi32(u, 16);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(half, _mm512_and_si512(hi, one))), 16);
        r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), _mm512_or_si512(hi, quiet));
        _mm512_mask_cvtepi32_storeu_epi16(dst + j, m, r);
    }
}

// ---------------------------------------------------------------------------------------------
// The micro-kernel: C (MR x 16 NV) = or += A (MR x [k0, k1)) B ([k0, k1) x 16 NV).
// A is read one element at a time and broadcast: row-major A(r, k) = a[r lda + k], or (for P^T
// and dS^T) transposed A(r, k) = a[k lda + r]. B rows are 16 NV elements at b + k ldb. All of A,
// B and C are padded tiles, so no masks. MR NV accumulators + NV B vectors + a broadcast
// fit the 32 zmm registers for MR <= kBlockRows[NV - 1].

// What one step of the micro-kernel multiplies. Fp32Products: an fp32 element of A broadcast
// times 16 floats of B (FMA). Bf16PairProducts (CPUs with AVX512-BF16, for BF16): a pair is one
// 32-bit word holding two bf16 values that follow each other along the reduction; A's pair
// broadcast times 16 pairs of B, both products added to each fp32 lane (vdpbf16ps). ProductsFor
// picks by the element type: float tiles or uint32_t pair tiles.
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

constexpr int kMaxRows = 16;
constexpr int kBlockRows[4] = {16, 12, 8, 6};  // rows per block for NV = 1, 2, 3, 4

template <typename P>
using TileFn = void (*)(int64_t, int64_t, const typename P::Element*, int64_t, const typename P::Element*, int64_t,
                        float*, int64_t, bool);
template <typename P, int NV, bool kRowMajorA, size_t... M>
constexpr std::array<TileFn<P>, kMaxRows> tiles_for(std::index_sequence<M...>) {
    return {&micro_tile<P, int(M) + 1, NV, kRowMajorA>...};
}
// kTiles<P, A>[NV - 1][m - 1]: the micro-kernel for m rows and NV vectors
template <typename P, bool kRowMajorA>
constexpr std::array<std::array<TileFn<P>, kMaxRows>, 4> kTiles = {
    tiles_for<P, 1, kRowMajorA>(std::make_index_sequence<kMaxRows>()),
    tiles_for<P, 2, kRowMajorA>(std::make_index_sequence<kMaxRows>()),
    tiles_for<P, 3, kRowMajorA>(std::make_index_sequence<kMaxRows>()),
    tiles_for<P, 4, kRowMajorA>(std::make_index_sequence<kMaxRows>())};

// Rows per block for products with n output columns (the widest tile's limit).
int block_rows(int64_t n) { return kBlockRows[std::min<int64_t>(std::max<int64_t>(n / 16, 1), 4) - 1]; }

// C[0:m, 0:n) = or += A[0:m, k0:k1) B[k0:k1, 0:n) for one block of m <= block_rows(n) rows;
// n a multiple of 16, walked in tiles of up to 64 columns; k counts elements, or pairs.
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

// ---------------------------------------------------------------------------------------------
// shapes and per-thread tiles

struct Dims {
    int64_t BH, Tq, Tk, D, Dp, Tkp;  // Dp, Tkp: D and Tk rounded up to whole vectors
    bool causal;
    int64_t keys(int64_t i) const { return causal ? std::min(Tk, i + 1) : Tk; }  // keys query i sees
    // Queries per block: the (block, Tkp) fp32 score tiles stay within 128 KiB (L2) each.
    int64_t query_block() const {
        return std::max<int64_t>(16, std::min<int64_t>(Tq, 32768 / std::max<int64_t>(Tkp, 1)));
    }
};

Dims dims_of(const Tensor& q, const Tensor& k, bool causal) {
    Dims d;
    d.BH = q.size(0) * q.size(1);
    d.Tq = q.size(2);
    d.Tk = k.size(2);
    d.D = q.size(3);
    d.Dp = round16(d.D);
    d.Tkp = round16(d.Tk);
    d.causal = causal;
    return d;
}

// Key-major copy of an fp32 tile: dst[c ld + j] = src[j st + c] for j < rows, c < D (K^T, V^T for
// the score products). 16 x 16 blocks are transposed in registers (32-bit, then 64-bit
// interleaves, then 128-bit lane shuffles): element by element, the scalar strided stores cost
// 5-10% of the whole forward (attention_forward.cpp, variants 2 and 3).
void transpose_tile(const float* src, int64_t st, int64_t rows, int64_t D, float* dst, int64_t ld) {
    for (int64_t j0 = 0; j0 < rows; j0 += 16)
        for (int64_t c0 = 0; c0 < D; c0 += 16) {
            const int64_t nr = std::min<int64_t>(16, rows - j0), nc = std::min<int64_t>(16, D - c0);
            const __mmask16 col_mask = first_lanes(nc);
            __m512 r[16], t[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < nr ? _mm512_maskz_loadu_ps(col_mask, src + (j0 + i) * st + c0) : _mm512_setzero_ps();
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
            // r[4 i + q] now holds, in its 128-bit lane L, rows 4 i .. 4 i + 3 of column 4 L + q
            for (int q = 0; q < 4; q++) {
                __m512 a0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88), a1 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xdd);
                __m512 b0 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88),
                       b1 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xdd);
                t[q] = _mm512_shuffle_f32x4(a0, b0, 0x88);
                t[8 + q] = _mm512_shuffle_f32x4(a0, b0, 0xdd);
                t[4 + q] = _mm512_shuffle_f32x4(a1, b1, 0x88);
                t[12 + q] = _mm512_shuffle_f32x4(a1, b1, 0xdd);
            }
            for (int c = 0; c < nc; c++) _mm512_mask_storeu_ps(dst + (c0 + c) * ld + j0, first_lanes(nr), t[c]);
        }
}

// sum_c a[c] b[c] over n floats
float dot_row(const float* a, const float* b, int64_t n) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = first_lanes(n - j);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + j), _mm512_maskz_loadu_ps(m, b + j), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

#if defined(__AVX512BF16__)
// ---------------------------------------------------------------------------------------------
// BF16 on AVX512-BF16: the row helpers of the pair kernels (the products: micro_tile with
// Bf16PairProducts, through gemm_rows on uint32_t tiles)

// `rows` rows of a head (D values each, row stride st) into a tile of rows of Dp, zero past D
void gather_rows(const bf16* src, int64_t st, int64_t rows, int64_t D, int64_t Dp, bf16* dst) {
    for (int64_t j = 0; j < rows; j++) {
        std::memcpy(dst + j * Dp, src + j * st, size_t(D) * sizeof(bf16));
        std::memset(dst + j * Dp + D, 0, size_t(Dp - D) * sizeof(bf16));
    }
}

// 16 fp32 values to bf16, rounded to nearest even (VCVTNEPS2BF16: a product operand, P or dS,
// never an output, which narrow_row rounds exactly as float_to_bf16)
inline void store_bf16(bf16* dst, __m512 x) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), (__m256i)_mm512_cvtneps_pbh(x));
}

// Two bf16 rows interleaved into pairs: out[d] = (r0[d], r1[d]) as one word, d < n (a multiple of
// 16): the row pairs of V (for P V), K (dS K), Q and dO (dS^T Q, P^T dO), P and dS (the
// transposed A of those two).
void interleave_rows(const bf16* r0, const bf16* r1, uint32_t* out, int64_t n) {
    const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6, 37,
                                        5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi = _mm512_set_epi16(63, 31, 62, 30, 61, 29, 60, 28, 59, 27, 58, 26, 57, 25, 56, 24, 55, 23, 54,
                                        22, 53, 21, 52, 20, 51, 19, 50, 18, 49, 17, 48, 16);
    for (int64_t d = 0; d < n; d += 32) {
        __mmask32 m = n - d >= 32 ? __mmask32(0xffffffff) : __mmask32((1u << (n - d)) - 1);
        __m512i a = _mm512_maskz_loadu_epi16(m, r0 + d), b = _mm512_maskz_loadu_epi16(m, r1 + d);
        _mm512_storeu_si512(out + d, _mm512_permutex2var_epi16(a, lo, b));
        if (n - d > 16) _mm512_storeu_si512(out + d + 16, _mm512_permutex2var_epi16(a, hi, b));
    }
}

// The row pairs of a tile of bf16 rows (n values each): pairs[i][c] = (row 2i, row 2i + 1), for
// i < pair_rows (a last odd row pairs with the tile's next row, which the caller keeps zero)
void interleave_row_pairs(const bf16* rows, int64_t n, int64_t pair_rows, uint32_t* pairs) {
    for (int64_t i = 0; i < pair_rows; i++) interleave_rows(rows + 2 * i * n, rows + (2 * i + 1) * n, pairs + i * n, n);
}

// The rows of a bf16 head as pairs along D transposed: dst[c2 ld + j] = the pair (c2) of row j,
// for j < rows, c2 < D / 2 (K^T and V^T for S = Q K^T and dP = dO V^T). A row is D / 2 words;
// the 32-bit transpose moves words whole (bit patterns, no arithmetic).
void transpose_pairs(const bf16* src, int64_t st, int64_t rows, int64_t D, uint32_t* dst, int64_t ld) {
    transpose_tile(reinterpret_cast<const float*>(src), st / 2, rows, D / 2, reinterpret_cast<float*>(dst), ld);
}

// bf16 rows the micro-kernel reads two values at a time, as 32-bit pairs: stored as words (so
// those reads have their own type), written through a bf16 view (memcpy and vector stores only).
struct PairRows {
    std::vector<uint32_t> words;  // zeros
    explicit PairRows(size_t values) : words((values + 1) / 2) {}
    bf16* values() { return reinterpret_cast<bf16*>(words.data()); }
};
#endif

// ---------------------------------------------------------------------------------------------
// forward, F32 / BF16

// One row of scores s[0:keys) becomes p = exp(scale s - m), m = the scaled row max; p[keys:n)
// = 0. Returns sum(p); m through *row_max (-inf when keys = 0).
float softmax_row(float* s, int64_t keys, int64_t n, float scale, float* row_max) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < keys; j += 16)
        vmax = _mm512_mask_max_ps(vmax, first_lanes(keys - j), vmax, _mm512_loadu_ps(s + j));
    float m = _mm512_reduce_max_ps(vmax) * scale;
    const __m512 vscale = _mm512_set1_ps(scale), vm = _mm512_set1_ps(m);
    __m512 vsum = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 live = first_lanes(keys - j);
        __m512 e = _mm512_maskz_mov_ps(live, Sleef_expf16_u10(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), vscale, vm)));
        vsum = _mm512_add_ps(vsum, e);
        _mm512_storeu_ps(s + j, e);
    }
    *row_max = m;
    return _mm512_reduce_add_ps(vsum);
}

template <typename T>
void attention_forward_tiled(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse, bool causal,
                             double scale_d) {
    const Dims d = dims_of(q, k, causal);
    const Heads<const T> qs(q), ks(k), vs(v);
    const Heads<T> os(out);
    float* ls = static_cast<float*>(lse.raw_data());
    const float scale = float(scale_d);
    const int64_t Bq = d.query_block(), Dp = d.Dp, Tkp = d.Tkp, D = d.D;
#pragma omp parallel if (d.BH * d.Tq * d.Tk * d.D > 16384)
    {
        // per thread: Q (Bq, Dp), K (Tk, Dp), K^T (D, Tkp), V (Tk, Dp), S (Bq, Tkp), O (Bq, Dp), 1/rowsum (Bq)
        std::vector<float> q_tile(size_t(Bq * Dp)), k_rows(size_t(d.Tk * Dp)), k_trans(size_t(D * Tkp)),
            v_rows(size_t(d.Tk * Dp)), s_tile(size_t(Bq * Tkp)), o_tile(size_t(Bq * Dp)), inv(static_cast<size_t>(Bq));
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < d.BH; bh++) {
            const T *qh = qs.head(bh), *kh = ks.head(bh), *vh = vs.head(bh);
            T* oh = os.head(bh);
            for (int64_t j = 0; j < d.Tk; j++) {
                widen_row(kh + j * ks.st, &k_rows[j * Dp], D);
                widen_row(vh + j * vs.st, &v_rows[j * Dp], D);
            }
            transpose_tile(k_rows.data(), Dp, d.Tk, D, k_trans.data(), Tkp);
            for (int64_t qb0 = 0; qb0 < d.Tq; qb0 += Bq) {
                const int64_t nq = std::min(Bq, d.Tq - qb0);
                for (int64_t r = 0; r < nq; r++) widen_row(qh + (qb0 + r) * qs.st, &q_tile[r * Dp], D);
                // S = Q K^T; causal: only the column tiles a row block's last query sees
                const int mr_s = block_rows(Tkp);
                for (int64_t i0 = 0; i0 < nq; i0 += mr_s) {
                    int m = int(std::min<int64_t>(mr_s, nq - i0));
                    int64_t cols = causal ? round16(std::min(d.Tk, qb0 + i0 + m)) : Tkp;
                    gemm_rows<true>(m, cols, 0, D, &q_tile[i0 * Dp], Dp, k_trans.data(), Tkp, &s_tile[i0 * Tkp], Tkp,
                                    false);
                }
                // P, unnormalised (1/rowsum is applied to O)
                for (int64_t r = 0; r < nq; r++) {
                    float m;
                    float sum = softmax_row(&s_tile[r * Tkp], d.keys(qb0 + r), Tkp, scale, &m);
                    inv[r] = sum > 0 ? 1.0f / sum : 0.0f;  // no visible key (Tk = 0): out 0, lse -inf
                    ls[bh * d.Tq + qb0 + r] = sum > 0 ? m + std::log(sum) : -INFINITY;
                }
                // O = P V; causal: a row block's keys end at its last query
                const int mr_o = block_rows(Dp);
                for (int64_t i0 = 0; i0 < nq; i0 += mr_o) {
                    int m = int(std::min<int64_t>(mr_o, nq - i0));
                    int64_t kend = causal ? std::min(d.Tk, qb0 + i0 + m) : d.Tk;
                    gemm_rows<true>(m, Dp, 0, kend, &s_tile[i0 * Tkp], Tkp, v_rows.data(), Dp, &o_tile[i0 * Dp], Dp,
                                    false);
                }
                for (int64_t r = 0; r < nq; r++) narrow_row(&o_tile[r * Dp], oh + (qb0 + r) * os.st, D, inv[r]);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// backward, F32 / BF16 (inverts the forward above: S = scale Q K^T, P = softmax(S), O = P V)

// One query row of the backward: P = exp(scale S - lse) and scale dS = scale P (dP - delta) from
// the rows of S and dP, exactly 0 past the visible keys (whatever the unwritten columns held);
// each block of 16 keys is handed to store(j, P, scale dS).
template <typename Store>
void probabilities_and_score_gradients(const float* s, const float* dp, int64_t keys, int64_t n, float scale,
                                       float lse, float delta, Store&& store) {
    const __m512 vscale = _mm512_set1_ps(scale), vl = _mm512_set1_ps(lse), vd = _mm512_set1_ps(delta);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 live = first_lanes(keys - j);
        __m512 p = _mm512_maskz_mov_ps(live, Sleef_expf16_u10(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), vscale, vl)));
        __m512 ds = _mm512_maskz_mul_ps(live, _mm512_mul_ps(p, vscale), _mm512_sub_ps(_mm512_loadu_ps(dp + j), vd));
        store(j, p, ds);
    }
}

template <typename T>
void attention_backward_tiled(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                              const Tensor& lse, const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv, bool causal,
                              double scale_d) {
    const Dims d = dims_of(q, k, causal);
    const Heads<const T> qs(q), ks(k), vs(v), os(out), gos(gout);
    const Heads<T> gqs(gq), gks(gk), gvs(gv);
    const float* ls = static_cast<const float*>(lse.raw_data());
    const float scale = float(scale_d);
    const int64_t Bq = d.query_block(), Dp = d.Dp, Tkp = d.Tkp, D = d.D, Tq = d.Tq, Tk = d.Tk;
#pragma omp parallel if (d.BH * d.Tq * d.Tk * d.D > 16384)
    {
        // per thread: Q, dO (Tq, Dp); K, V (Tk, Dp); K^T, V^T (D, Tkp); S -> P and dP -> dS (Bq, Tkp);
        // dQ (Bq, Dp); dK, dV (Tk, Dp); delta = rowsum(dO * O) (Tq)
        std::vector<float> q_tile(size_t(Tq * Dp)), do_tile(size_t(Tq * Dp)), k_rows(size_t(Tk * Dp)),
            v_rows(size_t(Tk * Dp)), k_trans(size_t(D * Tkp)), v_trans(size_t(D * Tkp)), s_tile(size_t(Bq * Tkp)),
            ds_tile(size_t(Bq * Tkp)), dq_tile(size_t(Bq * Dp)), dk_tile(size_t(Tk * Dp)), dv_tile(size_t(Tk * Dp)),
            delta(static_cast<size_t>(Tq)), row(static_cast<size_t>(Dp));
        const int mr_s = block_rows(Tkp), mr_d = block_rows(Dp);
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < d.BH; bh++) {
            const T *qh = qs.head(bh), *kh = ks.head(bh), *vh = vs.head(bh), *oh = os.head(bh), *gh = gos.head(bh);
            const float* lh = ls + bh * Tq;
            for (int64_t i = 0; i < Tq; i++) {
                widen_row(qh + i * qs.st, &q_tile[i * Dp], D);
                widen_row(gh + i * gos.st, &do_tile[i * Dp], D);
                widen_row(oh + i * os.st, row.data(), D);
                delta[i] = dot_row(&do_tile[i * Dp], row.data(), D);
            }
            for (int64_t j = 0; j < Tk; j++) {
                widen_row(kh + j * ks.st, &k_rows[j * Dp], D);
                widen_row(vh + j * vs.st, &v_rows[j * Dp], D);
            }
            transpose_tile(k_rows.data(), Dp, Tk, D, k_trans.data(), Tkp);
            transpose_tile(v_rows.data(), Dp, Tk, D, v_trans.data(), Tkp);
            std::fill(dk_tile.begin(), dk_tile.end(), 0.0f);
            std::fill(dv_tile.begin(), dv_tile.end(), 0.0f);
            for (int64_t qb0 = 0; qb0 < Tq; qb0 += Bq) {
                const int64_t nq = std::min(Bq, Tq - qb0);
                // S = Q K^T and dP = dO V^T over the block's rows; causal: visible column tiles only
                for (int64_t i0 = 0; i0 < nq; i0 += mr_s) {
                    int m = int(std::min<int64_t>(mr_s, nq - i0));
                    int64_t cols = causal ? round16(std::min(Tk, qb0 + i0 + m)) : Tkp;
                    gemm_rows<true>(m, cols, 0, D, &q_tile[(qb0 + i0) * Dp], Dp, k_trans.data(), Tkp, &s_tile[i0 * Tkp],
                                    Tkp, false);
                    gemm_rows<true>(m, cols, 0, D, &do_tile[(qb0 + i0) * Dp], Dp, v_trans.data(), Tkp,
                                    &ds_tile[i0 * Tkp], Tkp, false);
                }
                // P and (scale dS) in place over S and dP
                for (int64_t r = 0; r < nq; r++) {
                    float *s = &s_tile[r * Tkp], *dp = &ds_tile[r * Tkp];
                    probabilities_and_score_gradients(s, dp, d.keys(qb0 + r), Tkp, scale, lh[qb0 + r], delta[qb0 + r],
                                                      [&](int64_t j, __m512 p, __m512 ds) {
                                                          _mm512_storeu_ps(s + j, p);
                                                          _mm512_storeu_ps(dp + j, ds);
                                                      });
                }
                // dQ = (scale dS) K; causal: a row block's keys end at its last query
                for (int64_t i0 = 0; i0 < nq; i0 += mr_d) {
                    int m = int(std::min<int64_t>(mr_d, nq - i0));
                    int64_t kend = causal ? std::min(Tk, qb0 + i0 + m) : Tk;
                    gemm_rows<true>(m, Dp, 0, kend, &ds_tile[i0 * Tkp], Tkp, k_rows.data(), Dp, &dq_tile[i0 * Dp], Dp,
                                    false);
                }
                T* gqh = gqs.head(bh);
                for (int64_t r = 0; r < nq; r++) narrow_row(&dq_tile[r * Dp], gqh + (qb0 + r) * gqs.st, D, 1.0f);
                // dV += P^T dO, dK += (scale dS)^T Q over the block's queries; causal: keys past the
                // block's last query get nothing, and a key block's queries start at its first key
                const int64_t key_end = causal ? std::min(Tk, qb0 + nq) : Tk;
                for (int64_t j0 = 0; j0 < key_end; j0 += mr_d) {
                    int m = int(std::min<int64_t>(mr_d, key_end - j0));
                    int64_t r0 = causal ? std::max<int64_t>(0, j0 - qb0) : 0;
                    gemm_rows<false>(m, Dp, r0, nq, &s_tile[j0], Tkp, &do_tile[qb0 * Dp], Dp, &dv_tile[j0 * Dp], Dp,
                                     true);
                    gemm_rows<false>(m, Dp, r0, nq, &ds_tile[j0], Tkp, &q_tile[qb0 * Dp], Dp, &dk_tile[j0 * Dp], Dp,
                                     true);
                }
            }
            T *gkh = gks.head(bh), *gvh = gvs.head(bh);
            for (int64_t j = 0; j < Tk; j++) {
                narrow_row(&dk_tile[j * Dp], gkh + j * gks.st, D, 1.0f);
                narrow_row(&dv_tile[j * Dp], gvh + j * gvs.st, D, 1.0f);
            }
        }
    }
}

#if defined(__AVX512BF16__)
// ---------------------------------------------------------------------------------------------
// forward and backward, BF16 on pairs (engine/cpu/dev: attention_forward variant 6,
// attention_backward variant 5). The same blocking and fp32 softmax as the tiled kernels above;
// the products read bf16 where those widen: Q K^T and dO V^T from the rows (K, V transposed in
// pairs), P V, dS K, P^T dO and dS^T Q with P and dS rounded to bf16 (as PyTorch's autocast feeds
// its bf16 matmuls), V, K, Q, dO as row pairs. S, P, dP, dS, the row sums and every
// accumulation stay fp32. Needs D even and even row strides (a row is whole pairs).

bool pairs_fit(const Tensor& t) {
    return t.size(3) % 2 == 0 && t.strides()[0] % 2 == 0 && t.strides()[1] % 2 == 0 && t.strides()[2] % 2 == 0 &&
           reinterpret_cast<uintptr_t>(t.raw_data()) % 4 == 0;
}

// Queries per block for the pair kernels: attention's block, even (query rows go in pairs into
// P^T dO and dS^T Q).
int64_t even_query_block(const Dims& d) {
    int64_t b = std::max<int64_t>(16, std::min<int64_t>(d.Tq + (d.Tq & 1), 32768 / std::max<int64_t>(d.Tkp, 1)));
    return b - (b & 1);
}

void attention_forward_pairs(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse, bool causal,
                             double scale_d) {
    const Dims d = dims_of(q, k, causal);
    const Heads<const bf16> qs(q), ks(k), vs(v);
    const Heads<bf16> os(out);
    float* ls = static_cast<float*>(lse.raw_data());
    const float scale = float(scale_d);
    const int64_t Bq = d.query_block(), Dp = d.Dp, Tkp = d.Tkp, D = d.D;
#pragma omp parallel if (d.BH * d.Tq * d.Tk * d.D > 16384)
    {
        // per thread: Q rows (Bq, Dp) bf16 = pairs along D; K^T in pairs (D/2, Tkp); V rows (Tkp,
        // Dp) and their row pairs (Tkp/2, Dp); S -> P (Bq, Tkp) fp32 and bf16; O (Bq, Dp); 1/rowsum
        std::vector<bf16> v_rows(size_t(Tkp * Dp));  // zeros
        PairRows q_rows(size_t(Bq * Dp)), p_rows(size_t(Bq * Tkp));
        bf16 *q16 = q_rows.values(), *p16 = p_rows.values();
        std::vector<uint32_t> k_pairs(size_t(D / 2 * Tkp), 0), v_pairs(size_t(Tkp / 2 * Dp));
        std::vector<float> s_tile(size_t(Bq * Tkp)), o_tile(size_t(Bq * Dp)), inv(static_cast<size_t>(Bq));
        const uint32_t *q_words = q_rows.words.data(), *p_words = p_rows.words.data();
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < d.BH; bh++) {
            const bf16 *qh = qs.head(bh), *kh = ks.head(bh), *vh = vs.head(bh);
            bf16* oh = os.head(bh);
            transpose_pairs(kh, ks.st, d.Tk, D, k_pairs.data(), Tkp);
            gather_rows(vh, vs.st, d.Tk, D, Dp, v_rows.data());
            interleave_row_pairs(v_rows.data(), Dp, Tkp / 2, v_pairs.data());
            for (int64_t qb0 = 0; qb0 < d.Tq; qb0 += Bq) {
                const int64_t nq = std::min(Bq, d.Tq - qb0);
                gather_rows(qh + qb0 * qs.st, qs.st, nq, D, Dp, q16);
                // S = Q K^T; causal: only the column tiles a row block's last query sees
                const int mr_s = block_rows(Tkp);
                for (int64_t i0 = 0; i0 < nq; i0 += mr_s) {
                    int m = int(std::min<int64_t>(mr_s, nq - i0));
                    int64_t cols = causal ? round16(std::min(d.Tk, qb0 + i0 + m)) : Tkp;
                    gemm_rows<true>(m, cols, 0, D / 2, q_words + i0 * Dp / 2, Dp / 2, k_pairs.data(), Tkp,
                                    &s_tile[i0 * Tkp], Tkp, false);
                }
                // P, unnormalised (1/rowsum is applied to O), then in bf16
                for (int64_t r = 0; r < nq; r++) {
                    float m;
                    float sum = softmax_row(&s_tile[r * Tkp], d.keys(qb0 + r), Tkp, scale, &m);
                    inv[r] = sum > 0 ? 1.0f / sum : 0.0f;
                    ls[bh * d.Tq + qb0 + r] = sum > 0 ? m + std::log(sum) : -INFINITY;
                    for (int64_t j = 0; j < Tkp; j += 16)
                        store_bf16(p16 + r * Tkp + j, _mm512_loadu_ps(&s_tile[r * Tkp + j]));
                }
                // O = P V over key pairs; causal: a row block's keys end at its last query
                const int mr_o = block_rows(Dp);
                for (int64_t i0 = 0; i0 < nq; i0 += mr_o) {
                    int m = int(std::min<int64_t>(mr_o, nq - i0));
                    int64_t kend = causal ? std::min(d.Tk, qb0 + i0 + m) : d.Tk;
                    gemm_rows<true>(m, Dp, 0, (kend + 1) / 2, p_words + i0 * Tkp / 2, Tkp / 2, v_pairs.data(), Dp,
                                    &o_tile[i0 * Dp], Dp, false);
                }
                for (int64_t r = 0; r < nq; r++) narrow_row(&o_tile[r * Dp], oh + (qb0 + r) * os.st, D, inv[r]);
            }
        }
    }
}

void attention_backward_pairs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv, bool causal, double scale_d) {
    const Dims d = dims_of(q, k, causal);
    const Heads<const bf16> qs(q), ks(k), vs(v), os(out), gos(gout);
    const Heads<bf16> gqs(gq), gks(gk), gvs(gv);
    const float* ls = static_cast<const float*>(lse.raw_data());
    const float scale = float(scale_d);
    const int64_t Bq = even_query_block(d), Dp = d.Dp, Tkp = d.Tkp, D = d.D, Tq = d.Tq, Tk = d.Tk, Tq2 = (Tq + 1) / 2;
#pragma omp parallel if (d.BH * d.Tq * d.Tk * d.D > 16384)
    {
        // per thread: Q, dO rows (Tq + 1, Dp) bf16 = pairs along D, and their row pairs (Tq2, Dp);
        // K rows (Tkp, Dp) and row pairs (Tkp/2, Dp); K^T, V^T in pairs (D/2, Tkp); S -> P and
        // dP -> dS (Bq, Tkp) fp32, in bf16 (Bq, Tkp) and as row pairs (Bq/2, Tkp); dQ (Bq, Dp);
        // dK, dV (Tk, Dp); delta = rowsum(dO * O) (Tq); two widened rows (Dp)
        std::vector<bf16> k_rows(size_t(Tkp * Dp)), p_rows(size_t(Bq * Tkp));  // zeros
        PairRows q_rows(size_t((Tq + 1) * Dp)), do_rows(size_t((Tq + 1) * Dp)), ds_rows(size_t(Bq * Tkp));
        bf16 *q16 = q_rows.values(), *do16 = do_rows.values(), *ds16 = ds_rows.values();
        std::vector<uint32_t> q_pairs(size_t(Tq2 * Dp)), do_pairs(size_t(Tq2 * Dp)), k_pairs(size_t(Tkp / 2 * Dp)),
            k_trans(size_t(D / 2 * Tkp), 0), v_trans(size_t(D / 2 * Tkp), 0), p_pairs(size_t(Bq / 2 * Tkp)),
            ds_pairs(size_t(Bq / 2 * Tkp));
        std::vector<float> s_tile(size_t(Bq * Tkp)), ds_tile(size_t(Bq * Tkp)), dq_tile(size_t(Bq * Dp)),
            dk_tile(size_t(Tk * Dp)), dv_tile(size_t(Tk * Dp)), delta(static_cast<size_t>(Tq)),
            do_row(static_cast<size_t>(Dp)), o_row(static_cast<size_t>(Dp));
        const uint32_t *q_words = q_rows.words.data(), *do_words = do_rows.words.data(),
                       *ds_words = ds_rows.words.data();
        const int mr_s = block_rows(Tkp), mr_d = block_rows(Dp);
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < d.BH; bh++) {
            const bf16 *qh = qs.head(bh), *kh = ks.head(bh), *vh = vs.head(bh), *oh = os.head(bh), *gh = gos.head(bh);
            const float* lh = ls + bh * Tq;
            gather_rows(qh, qs.st, Tq, D, Dp, q16);
            gather_rows(gh, gos.st, Tq, D, Dp, do16);
            gather_rows(kh, ks.st, Tk, D, Dp, k_rows.data());
            for (int64_t i = 0; i < Tq; i++) {
                widen_row(gh + i * gos.st, do_row.data(), D);
                widen_row(oh + i * os.st, o_row.data(), D);
                delta[i] = dot_row(do_row.data(), o_row.data(), D);
            }
            transpose_pairs(kh, ks.st, Tk, D, k_trans.data(), Tkp);
            transpose_pairs(vh, vs.st, Tk, D, v_trans.data(), Tkp);
            interleave_row_pairs(k_rows.data(), Dp, Tkp / 2, k_pairs.data());
            interleave_row_pairs(q16, Dp, Tq2, q_pairs.data());
            interleave_row_pairs(do16, Dp, Tq2, do_pairs.data());
            std::fill(dk_tile.begin(), dk_tile.end(), 0.0f);
            std::fill(dv_tile.begin(), dv_tile.end(), 0.0f);
            for (int64_t qb0 = 0; qb0 < Tq; qb0 += Bq) {
                const int64_t nq = std::min(Bq, Tq - qb0), nq2 = (nq + 1) / 2;
                // S = Q K^T and dP = dO V^T over the block's rows; causal: visible column tiles only
                for (int64_t i0 = 0; i0 < nq; i0 += mr_s) {
                    int m = int(std::min<int64_t>(mr_s, nq - i0));
                    int64_t cols = causal ? round16(std::min(Tk, qb0 + i0 + m)) : Tkp;
                    gemm_rows<true>(m, cols, 0, D / 2, q_words + (qb0 + i0) * Dp / 2, Dp / 2, k_trans.data(), Tkp,
                                    &s_tile[i0 * Tkp], Tkp, false);
                    gemm_rows<true>(m, cols, 0, D / 2, do_words + (qb0 + i0) * Dp / 2, Dp / 2, v_trans.data(), Tkp,
                                    &ds_tile[i0 * Tkp], Tkp, false);
                }
                // P and (scale dS) in bf16; a block of odd length gets a zero row to complete its
                // last pair
                for (int64_t r = 0; r < nq; r++)
                    probabilities_and_score_gradients(&s_tile[r * Tkp], &ds_tile[r * Tkp], d.keys(qb0 + r), Tkp, scale,
                                                      lh[qb0 + r], delta[qb0 + r], [&](int64_t j, __m512 p, __m512 ds) {
                                                          store_bf16(&p_rows[r * Tkp + j], p);
                                                          store_bf16(ds16 + r * Tkp + j, ds);
                                                      });
                if (nq % 2) {
                    std::memset(&p_rows[nq * Tkp], 0, size_t(Tkp) * sizeof(bf16));
                    std::memset(ds16 + nq * Tkp, 0, size_t(Tkp) * sizeof(bf16));
                }
                // dQ = (scale dS) K over key pairs; causal: a row block's keys end at its last query
                for (int64_t i0 = 0; i0 < nq; i0 += mr_d) {
                    int m = int(std::min<int64_t>(mr_d, nq - i0));
                    int64_t kend = causal ? std::min(Tk, qb0 + i0 + m) : Tk;
                    gemm_rows<true>(m, Dp, 0, (kend + 1) / 2, ds_words + i0 * Tkp / 2, Tkp / 2, k_pairs.data(), Dp,
                                    &dq_tile[i0 * Dp], Dp, false);
                }
                bf16* gqh = gqs.head(bh);
                for (int64_t r = 0; r < nq; r++) narrow_row(&dq_tile[r * Dp], gqh + (qb0 + r) * gqs.st, D, 1.0f);
                // dV += P^T dO, dK += (scale dS)^T Q over the block's query pairs; causal: keys past
                // the block's last query get nothing, a key block's queries start at its first key
                interleave_row_pairs(p_rows.data(), Tkp, nq2, p_pairs.data());
                interleave_row_pairs(ds16, Tkp, nq2, ds_pairs.data());
                const int64_t key_end = causal ? std::min(Tk, qb0 + nq) : Tk;
                for (int64_t j0 = 0; j0 < key_end; j0 += mr_d) {
                    int m = int(std::min<int64_t>(mr_d, key_end - j0));
                    int64_t r0 = causal ? std::max<int64_t>(0, j0 - qb0) / 2 : 0;
                    gemm_rows<false>(m, Dp, r0, nq2, &p_pairs[j0], Tkp, &do_pairs[qb0 / 2 * Dp], Dp,
                                     &dv_tile[j0 * Dp], Dp, true);
                    gemm_rows<false>(m, Dp, r0, nq2, &ds_pairs[j0], Tkp, &q_pairs[qb0 / 2 * Dp], Dp,
                                     &dk_tile[j0 * Dp], Dp, true);
                }
            }
            bf16 *gkh = gks.head(bh), *gvh = gvs.head(bh);
            for (int64_t j = 0; j < Tk; j++) {
                narrow_row(&dk_tile[j * Dp], gkh + j * gks.st, D, 1.0f);
                narrow_row(&dv_tile[j * Dp], gvh + j * gvs.st, D, 1.0f);
            }
        }
    }
}
#endif

// ---------------------------------------------------------------------------------------------
// F64: the scalar loops (gradient checks), one query row at a time, same strided views

void attention_forward_f64(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse, bool causal,
                           double scale) {
    const Dims d = dims_of(q, k, causal);
    const Heads<const double> qs(q), ks(k), vs(v);
    const Heads<double> os(out);
    double* ls = static_cast<double*>(lse.raw_data());
#pragma omp parallel for schedule(static) if (d.BH * d.Tq * d.Tk * d.D > 16384)
    for (int64_t bh = 0; bh < d.BH; bh++) {
        const double *qh = qs.head(bh), *kh = ks.head(bh), *vh = vs.head(bh);
        double* oh = os.head(bh);
        std::vector<double> p(static_cast<size_t>(d.Tk)), acc(static_cast<size_t>(d.D));
        for (int64_t i = 0; i < d.Tq; i++) {
            const int64_t keys = d.keys(i);
            double m = -INFINITY;
            for (int64_t j = 0; j < keys; j++) {
                double s = 0;
                for (int64_t c = 0; c < d.D; c++) s += qh[i * qs.st + c] * kh[j * ks.st + c];
                p[j] = s * scale;
                m = std::max(m, p[j]);
            }
            double sum = 0;
            for (int64_t j = 0; j < keys; j++) sum += (p[j] = std::exp(p[j] - m));
            std::fill(acc.begin(), acc.end(), 0.0);
            for (int64_t j = 0; j < keys; j++)
                for (int64_t c = 0; c < d.D; c++) acc[c] += p[j] * vh[j * vs.st + c];
            for (int64_t c = 0; c < d.D; c++) oh[i * os.st + c] = sum > 0 ? acc[c] / sum : 0.0;
            ls[bh * d.Tq + i] = sum > 0 ? m + std::log(sum) : -INFINITY;
        }
    }
}

void attention_backward_f64(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                            const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv, bool causal, double scale) {
    const Dims d = dims_of(q, k, causal);
    const Heads<const double> qs(q), ks(k), vs(v), os(out), gos(gout);
    const Heads<double> gqs(gq), gks(gk), gvs(gv);
    const double* ls = static_cast<const double*>(lse.raw_data());
#pragma omp parallel for schedule(static) if (d.BH * d.Tq * d.Tk * d.D > 16384)
    for (int64_t bh = 0; bh < d.BH; bh++) {
        const double *qh = qs.head(bh), *kh = ks.head(bh), *vh = vs.head(bh), *oh = os.head(bh), *gh = gos.head(bh);
        double *gqh = gqs.head(bh), *gkh = gks.head(bh), *gvh = gvs.head(bh);
        std::vector<double> dk(size_t(d.Tk * d.D), 0.0), dv(size_t(d.Tk * d.D), 0.0), dq(static_cast<size_t>(d.D));
        for (int64_t i = 0; i < d.Tq; i++) {
            const double *qi = qh + i * qs.st, *goi = gh + i * gos.st, *oi = oh + i * os.st;
            double delta = 0;  // rowsum(dO * O)
            for (int64_t c = 0; c < d.D; c++) delta += goi[c] * oi[c];
            std::fill(dq.begin(), dq.end(), 0.0);
            for (int64_t j = 0; j < d.keys(i); j++) {
                const double *kj = kh + j * ks.st, *vj = vh + j * vs.st;
                double s = 0, dp = 0;
                for (int64_t c = 0; c < d.D; c++) {
                    s += qi[c] * kj[c];
                    dp += goi[c] * vj[c];
                }
                double pj = std::exp(s * scale - ls[bh * d.Tq + i]);
                double ds = pj * (dp - delta) * scale;
                for (int64_t c = 0; c < d.D; c++) {
                    dv[j * d.D + c] += pj * goi[c];
                    dk[j * d.D + c] += ds * qi[c];
                    dq[c] += ds * kj[c];
                }
            }
            for (int64_t c = 0; c < d.D; c++) gqh[i * gqs.st + c] = dq[c];
        }
        for (int64_t j = 0; j < d.Tk; j++)
            for (int64_t c = 0; c < d.D; c++) {
                gkh[j * gks.st + c] = dk[j * d.D + c];
                gvh[j * gvs.st + c] = dv[j * d.D + c];
            }
    }
}

}  // namespace

// q (B, H, Tq, D), k/v (B, H, Tk, D) -> out (B, H, Tq, D), lse (B, H, Tq); strided, unit stride along D
void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse,
                           bool causal, double scale) {
    dispatch_floating(q.dtype(), "attention", [&](auto tag) {
        using T = decltype(tag);
        if constexpr (std::is_same_v<T, double>) {
            attention_forward_f64(q, k, v, out, lse, causal, scale);
        } else {
#if defined(__AVX512BF16__)
            if constexpr (std::is_same_v<T, bf16>)
                if (pairs_fit(q) && pairs_fit(k) && pairs_fit(v) && pairs_fit(out))
                    return attention_forward_pairs(q, k, v, out, lse, causal, scale);
#endif
            attention_forward_tiled<T>(q, k, v, out, lse, causal, scale);
        }
    });
}

void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv,
                                    bool causal, double scale) {
    dispatch_floating(q.dtype(), "attention_backward", [&](auto tag) {
        using T = decltype(tag);
        if constexpr (std::is_same_v<T, double>) {
            attention_backward_f64(q, k, v, out, lse, gout, gq, gk, gv, causal, scale);
        } else {
#if defined(__AVX512BF16__)
            if constexpr (std::is_same_v<T, bf16>)
                if (pairs_fit(q) && pairs_fit(k) && pairs_fit(v) && pairs_fit(out) && pairs_fit(gout) &&
                    pairs_fit(gq) && pairs_fit(gk) && pairs_fit(gv))
                    return attention_backward_pairs(q, k, v, out, lse, gout, gq, gk, gv, causal, scale);
#endif
            attention_backward_tiled<T>(q, k, v, out, lse, gout, gq, gk, gv, causal, scale);
        }
    });
}

}  // namespace rankclip
