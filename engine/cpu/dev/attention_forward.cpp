// engine/cpu/dev/attention_forward.cpp
// defines: the CPU attention forward playground: a double-precision reference, the numbered
// variants, a correctness check on awkward shapes (T = 1, 17, 65, 77, 128, 300, Tq != Tk, causal
// or not, D = 8 ... 80, strided q/k/v read from a packed (B, T, 3, H, D) projection) and a
// benchmark on the CLIP shapes, in GFLOP/s and % of the measured fp32 FMA peak.
//   forward: S = scale Q K^T (causal: key j > query i masked), P = softmax(S), O = P V,
//            lse = rowwise log-sum-exp of S (saved for the backward)
// Variants:
//   1  the engine's old kernel: one (batch, head) per thread, scalar dot products per query row,
//      contiguous (BH, T, D) inputs (the model paid a .contiguous() copy of q, k, v for it)
//   2  tiled: per head, Q, K, V gathered into padded fp32 tiles (K also transposed), S = Q K^T and
//      O = P V as register-blocked AVX-512 micro-kernels (MR rows x 16 NV columns, broadcast A,
//      vector B), softmax rows with SLEEF's exp; reads the strided views, writes O straight into
//      a (B, T, H, D) buffer; causal skips the masked upper blocks
//   3  as 2, smaller row blocks (MR 6 for two vectors): register-pressure check
// Usage: ./attention_forward [variant]   (RANKCLIP_THREADS sets the threads)
#include <sleef.h>

#include <array>
#include <functional>
#include <utility>

#include "common.h"

namespace {

// ---------------------------------------------------------------------------------------------
// A (B, H, T, D) view with any strides for B, H, T and unit stride along D, as the model's
// q, k, v (views of the packed projection) and output.
struct HeadView {
    float* data;
    int64_t H, sb, sh, st;
    float* head(int64_t bh) const { return data + (bh / H) * sb + (bh % H) * sh; }
};

struct Problem {
    int64_t B, H, Tq, Tk, D;
    bool causal;
    int64_t BH() const { return B * H; }
    int64_t keys(int64_t i) const { return causal ? std::min(Tk, i + 1) : Tk; }
    // useful multiply-adds x 2: S = Q K^T and O = P V over the visible keys
    double flops() const {
        double visible = 0;
        for (int64_t i = 0; i < Tq; i++) visible += double(keys(i));
        return double(BH()) * visible * double(D) * 4.0;
    }
};

// ---------------------------------------------------------------------------------------------
// reference: double precision, straight from the definition

void reference(const Problem& p, const HeadView& q, const HeadView& k, const HeadView& v, std::vector<float>& out,
               std::vector<float>& lse, double scale) {
    out.assign(size_t(p.BH() * p.Tq * p.D), 0.0f);
    lse.assign(size_t(p.BH() * p.Tq), 0.0f);
    std::vector<double> s(size_t(p.Tk));
    for (int64_t bh = 0; bh < p.BH(); bh++) {
        const float *qh = q.head(bh), *kh = k.head(bh), *vh = v.head(bh);
        for (int64_t i = 0; i < p.Tq; i++) {
            int64_t keys = p.keys(i);
            double m = -INFINITY, sum = 0;
            for (int64_t j = 0; j < keys; j++) {
                double d = 0;
                for (int64_t c = 0; c < p.D; c++) d += double(qh[i * q.st + c]) * double(kh[j * k.st + c]);
                s[j] = d * scale;
                m = std::max(m, s[j]);
            }
            for (int64_t j = 0; j < keys; j++) sum += (s[j] = std::exp(s[j] - m));
            for (int64_t c = 0; c < p.D; c++) {
                double o = 0;
                for (int64_t j = 0; j < keys; j++) o += s[j] * double(vh[j * v.st + c]);
                out[(bh * p.Tq + i) * p.D + c] = float(o / sum);
            }
            lse[bh * p.Tq + i] = float(m + std::log(sum));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// variant 1: the old engine kernel (engine/cpu/cpu_attention.cpp before this work), contiguous
// q (BH, Tq, D), k, v (BH, Tk, D) -> out (BH, Tq, D)

void old_scalar(const Problem& pr, const float* qs, const float* ks, const float* vs, float* os, float* ls,
                double scale) {
    int64_t D = pr.D, Tq = pr.Tq, Tk = pr.Tk, BH = pr.BH();
    bool causal = pr.causal;
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < BH; bh++) {
        std::vector<float> p(static_cast<size_t>(Tk)), acc(static_cast<size_t>(D));
        for (int64_t i = 0; i < Tq; i++) {
            const float* qi = qs + (bh * Tq + i) * D;
            int64_t keys = causal ? std::min(Tk, i + 1) : Tk;
            float m = -INFINITY;
            for (int64_t j = 0; j < keys; j++) {
                const float* kj = ks + (bh * Tk + j) * D;
                float s = 0;
                for (int64_t d = 0; d < D; d++) s += qi[d] * kj[d];
                p[j] = s * float(scale);
                m = std::max(m, p[j]);
            }
            float sum = 0;
            for (int64_t j = 0; j < keys; j++) sum += (p[j] = std::exp(p[j] - m));
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int64_t j = 0; j < keys; j++) {
                const float* vj = vs + (bh * Tk + j) * D;
                for (int64_t d = 0; d < D; d++) acc[d] += p[j] * vj[d];
            }
            for (int64_t d = 0; d < D; d++) os[(bh * Tq + i) * D + d] = acc[d] / sum;
            ls[bh * Tq + i] = m + std::log(sum);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// variants 2, 3: tiled. The micro-kernel: C (MR x 16 NV) (+)= A (MR x [k0, k1)) B ([k0, k1) x 16 NV),
// A read one scalar at a time and broadcast (row-major: A(r, k) = a[r lda + k]; otherwise
// A(r, k) = a[k lda + r], i.e. A is the transpose of what is stored), B rows of 16 NV floats.
// Every buffer it touches is a padded fp32 tile of ours, so no masks.

template <int MR, int NV, bool kRowMajorA>
void micro_tile(int64_t k0, int64_t k1, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                int64_t ldc, bool accumulate) {
    __m512 acc[MR][NV];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[r][v] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16 * v) : _mm512_setzero_ps();
    for (int64_t k = k0; k < k1; k++) {
        const float* bk = b + k * ldb;
        __m512 bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) bv[v] = _mm512_loadu_ps(bk + 16 * v);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(kRowMajorA ? a[r * lda + k] : a[k * lda + r]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

using TileFn = void (*)(int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, bool);

// kTiles[NV - 1][m - 1]: the micro-kernel for m rows (m <= kMaxRows) and NV vectors
constexpr int kMaxRows = 16;
template <int NV, bool kRowMajorA, size_t... M>
constexpr std::array<TileFn, kMaxRows> tile_row(std::index_sequence<M...>) {
    return {&micro_tile<int(M) + 1, NV, kRowMajorA>...};
}
template <bool kRowMajorA>
constexpr std::array<std::array<TileFn, kMaxRows>, 4> tile_table() {
    return {tile_row<1, kRowMajorA>(std::make_index_sequence<kMaxRows>()),
            tile_row<2, kRowMajorA>(std::make_index_sequence<kMaxRows>()),
            tile_row<3, kRowMajorA>(std::make_index_sequence<kMaxRows>()),
            tile_row<4, kRowMajorA>(std::make_index_sequence<kMaxRows>())};
}
const auto kTilesRowMajor = tile_table<true>();
const auto kTilesTransposed = tile_table<false>();

// Rows per block for a tile of NV vectors (accumulators MR NV + NV + 1 broadcast <= 32 zmm)
struct RowBlocking {
    int rows[4];
};
constexpr RowBlocking kBlockingWide{{16, 12, 8, 6}};
constexpr RowBlocking kBlockingNarrow{{8, 6, 4, 3}};

int block_rows(const RowBlocking& rb, int64_t n) { return rb.rows[std::min<int64_t>(n / 16, 4) - 1]; }

// C[0:m, 0:n) (+)= A[0:m, k0:k1) B[k0:k1, 0:n), n a multiple of 16, m <= block_rows(n)
template <bool kRowMajorA>
void gemm_rows(int m, int64_t n, int64_t k0, int64_t k1, const float* a, int64_t lda, const float* b, int64_t ldb,
               float* c, int64_t ldc, bool accumulate) {
    const auto& table = kRowMajorA ? kTilesRowMajor : kTilesTransposed;
    for (int64_t j = 0; j < n;) {
        int nv = int(std::min<int64_t>((n - j) / 16, 4));
        table[nv - 1][m - 1](k0, k1, a, lda, b + j, ldb, c + j, ldc, accumulate);
        j += 16 * nv;
    }
}

int64_t round16(int64_t x) { return (x + 15) / 16 * 16; }

// Per-thread scratch: the head's tiles, padded with zeros to whole vectors
struct ForwardScratch {
    std::vector<float> q, kt, v, s, o;  // (Tq, Dp), (D, Tkp), (Tk, Dp), (Tq, Tkp), (Tq, Dp)
};

// One softmax row: p[0:keys) = exp(scale s - m) with m the scaled max, p[keys:n) = 0; returns
// the sum, m through *row_max
float softmax_row(float* s, int64_t keys, int64_t n, float scale, float* row_max) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 16 <= keys; j += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(s + j));
    __mmask16 tail = __mmask16((1u << (keys - j)) - 1);
    if (j < keys) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(vmax, tail, s + j));
    float m = _mm512_reduce_max_ps(vmax) * scale;
    __m512 vscale = _mm512_set1_ps(scale), vm = _mm512_set1_ps(m), vsum = _mm512_setzero_ps();
    for (j = 0; j + 16 <= keys; j += 16) {
        __m512 e = Sleef_expf16_u10(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), vscale, vm));
        vsum = _mm512_add_ps(vsum, e);
        _mm512_storeu_ps(s + j, e);
    }
    if (j < keys) {
        __m512 e = Sleef_expf16_u10(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(tail, s + j), vscale, vm));
        e = _mm512_maskz_mov_ps(tail, e);
        vsum = _mm512_add_ps(vsum, e);
        _mm512_storeu_ps(s + j, e);
        j += 16;
    }
    for (; j < n; j += 16) _mm512_storeu_ps(s + j, _mm512_setzero_ps());
    *row_max = m;
    return _mm512_reduce_add_ps(vsum);
}

void tiled(const Problem& p, const HeadView& q, const HeadView& k, const HeadView& v, const HeadView& out,
           float* lse, double scale_d, const RowBlocking& rb) {
    const int64_t Tq = p.Tq, Tk = p.Tk, D = p.D, Dp = round16(D), Tkp = round16(Tk);
    const float scale = float(scale_d);
#pragma omp parallel
    {
        ForwardScratch w;
        w.q.assign(size_t(Tq * Dp), 0.0f);
        w.kt.assign(size_t(D * Tkp), 0.0f);
        w.v.assign(size_t(Tk * Dp), 0.0f);
        w.s.assign(size_t(Tq * Tkp), 0.0f);
        w.o.assign(size_t(Tq * Dp), 0.0f);
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < p.BH(); bh++) {
            const float *qh = q.head(bh), *kh = k.head(bh), *vh = v.head(bh);
            // gather: Q, V rows into padded tiles (the padding stays zero), K transposed
            for (int64_t i = 0; i < Tq; i++) std::memcpy(&w.q[i * Dp], qh + i * q.st, size_t(D) * 4);
            for (int64_t j = 0; j < Tk; j++) std::memcpy(&w.v[j * Dp], vh + j * v.st, size_t(D) * 4);
            for (int64_t j = 0; j < Tk; j++)
                for (int64_t c = 0; c < D; c++) w.kt[c * Tkp + j] = kh[j * k.st + c];
            // S = Q K^T, row blocks; causal: only the key columns a block's last row can see
            const int mr_s = block_rows(rb, Tkp);
            for (int64_t i0 = 0; i0 < Tq; i0 += mr_s) {
                int m = int(std::min<int64_t>(mr_s, Tq - i0));
                int64_t cols = p.causal ? round16(std::min(Tk, i0 + m)) : Tkp;
                gemm_rows<true>(m, cols, 0, D, &w.q[i0 * Dp], Dp, w.kt.data(), Tkp, &w.s[i0 * Tkp], Tkp, false);
            }
            // softmax rows (unnormalised; 1/sum applied to O)
            std::vector<float> inv(static_cast<size_t>(Tq));
            for (int64_t i = 0; i < Tq; i++) {
                float m;
                float sum = softmax_row(&w.s[i * Tkp], p.keys(i), Tkp, scale, &m);
                inv[i] = sum > 0 ? 1.0f / sum : 0.0f;
                lse[bh * Tq + i] = sum > 0 ? m + std::log(sum) : -INFINITY;
            }
            // O = P V; causal: a block's keys stop at its last row
            const int mr_o = block_rows(rb, Dp);
            for (int64_t i0 = 0; i0 < Tq; i0 += mr_o) {
                int m = int(std::min<int64_t>(mr_o, Tq - i0));
                int64_t kend = p.causal ? std::min(Tk, i0 + m) : Tk;
                gemm_rows<true>(m, Dp, 0, kend, &w.s[i0 * Tkp], Tkp, w.v.data(), Dp, &w.o[i0 * Dp], Dp, false);
            }
            float* oh = out.head(bh);
            for (int64_t i = 0; i < Tq; i++)
                for (int64_t c = 0; c < D; c++) oh[i * out.st + c] = w.o[i * Dp + c] * inv[i];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// driver

struct Data {
    Problem p;
    double scale;
    std::vector<float> qkv;  // packed projection (B, T, 3, H, D), T = max(Tq, Tk)
    HeadView q, k, v;
    std::vector<float> qc, kc, vc;  // contiguous (BH, T, D) copies for variant 1
};

Data make_data(const Problem& p, uint64_t seed) {
    Data d;
    d.p = p;
    d.scale = 1.0 / std::sqrt(double(p.D));
    int64_t T = std::max(p.Tq, p.Tk), W = p.H * p.D;
    d.qkv = random_normal(size_t(p.B * T * 3 * W), seed);
    // (B, T, 3, H, D): batch stride T 3W, head stride D, time stride 3W
    d.q = {d.qkv.data(), p.H, T * 3 * W, p.D, 3 * W};
    d.k = {d.qkv.data() + W, p.H, T * 3 * W, p.D, 3 * W};
    d.v = {d.qkv.data() + 2 * W, p.H, T * 3 * W, p.D, 3 * W};
    auto pack = [&](const HeadView& h, int64_t rows, std::vector<float>& dst) {
        dst.resize(size_t(p.BH() * rows * p.D));
        for (int64_t bh = 0; bh < p.BH(); bh++)
            for (int64_t i = 0; i < rows; i++)
                std::memcpy(&dst[(bh * rows + i) * p.D], h.head(bh) + i * h.st, size_t(p.D) * 4);
    };
    pack(d.q, p.Tq, d.qc);
    pack(d.k, p.Tk, d.kc);
    pack(d.v, p.Tk, d.vc);
    return d;
}

// Runs variant `which`; out comes back as (BH, Tq, D) contiguous whatever the kernel's layout.
void run_variant(int which, Data& d, std::vector<float>& out, std::vector<float>& lse) {
    const Problem& p = d.p;
    out.assign(size_t(p.BH() * p.Tq * p.D), 0.0f);
    lse.assign(size_t(p.BH() * p.Tq), 0.0f);
    if (which == 1) {
        old_scalar(p, d.qc.data(), d.kc.data(), d.vc.data(), out.data(), lse.data(), d.scale);
        return;
    }
    // the output in the (B, T, H, D) layout the model wants, then unpermuted for checking
    std::vector<float> bthd(out.size());
    HeadView o{bthd.data(), p.H, p.Tq * p.H * p.D, p.D, p.H * p.D};
    tiled(p, d.q, d.k, d.v, o, lse.data(), d.scale, which == 2 ? kBlockingWide : kBlockingNarrow);
    for (int64_t bh = 0; bh < p.BH(); bh++)
        for (int64_t i = 0; i < p.Tq; i++)
            std::memcpy(&out[(bh * p.Tq + i) * p.D], o.head(bh) + i * o.st, size_t(p.D) * 4);
}

std::function<void()> bench_fn(int which, Data& d, std::vector<float>& out, std::vector<float>& lse) {
    const Problem& p = d.p;
    out.assign(size_t(p.BH() * p.Tq * p.D), 0.0f);
    lse.assign(size_t(p.BH() * p.Tq), 0.0f);
    if (which == 1)
        return [&d, &out, &lse] {
            old_scalar(d.p, d.qc.data(), d.kc.data(), d.vc.data(), out.data(), lse.data(), d.scale);
        };
    return [&d, &out, &lse, which] {
        const Problem& p = d.p;
        HeadView o{out.data(), p.H, p.Tq * p.H * p.D, p.D, p.H * p.D};
        tiled(p, d.q, d.k, d.v, o, lse.data(), d.scale, which == 2 ? kBlockingWide : kBlockingNarrow);
    };
}

constexpr int kVariants = 3;
const char* kNames[kVariants + 1] = {"", "1 old scalar per row (contiguous)", "2 tiled MR 16/12/8/6",
                                     "3 tiled MR 8/6/4/3"};

}  // namespace

int main(int argc, char** argv) {
    int only = selected_variant(argc, argv);
    int threads = playground_threads();
    bool ok = true;

    std::printf("correctness (fp32 vs double reference, atol 2e-5 + rtol 2e-5)\n");
    const Problem checks[] = {
        {1, 1, 1, 1, 8, false},  {1, 1, 1, 1, 8, true},    {2, 3, 17, 17, 8, true},   {3, 1, 17, 17, 32, false},
        {1, 3, 65, 65, 32, false}, {1, 3, 65, 65, 32, true}, {1, 2, 77, 77, 64, true},   {1, 2, 128, 128, 64, false},
        {1, 1, 128, 128, 80, true}, {1, 1, 300, 300, 32, true}, {2, 1, 17, 77, 32, false}, {2, 1, 77, 17, 32, true},
        {1, 2, 5, 40, 24, true},
    };
    for (const Problem& p : checks) {
        Data d = make_data(p, uint64_t(p.Tq * 131 + p.D));
        std::vector<float> ref_o, ref_l, out, lse;
        reference(p, d.q, d.k, d.v, ref_o, ref_l, d.scale);
        for (int w = 1; w <= kVariants; w++) {
            if (only && w != only) continue;
            run_variant(w, d, out, lse);
            char name[160];
            std::snprintf(name, sizeof name, "variant %d B %ld H %ld Tq %ld Tk %ld D %ld%s", w, long(p.B), long(p.H),
                          long(p.Tq), long(p.Tk), long(p.D), p.causal ? " causal" : "");
            ok &= validate(name, out, ref_o, 2e-5f, 2e-5f);
            ok &= validate(name, lse, ref_l, 2e-5f, 2e-5f);
            std::vector<float> again, lse2;
            run_variant(w, d, again, lse2);
            ok &= same_bits(name, out, again);
        }
    }

    print_rooflines();
    double peak = measured_fp32_peak_gflops();
    const struct {
        const char* what;
        Problem p;
    } shapes[] = {
        {"tiny vision B128 H4 T65 D32", {128, 4, 65, 65, 32, false}},
        {"tiny text B128 H4 T32 D32 causal", {128, 4, 32, 32, 32, true}},
        {"small vision B64 H4 T65 D64", {64, 4, 65, 65, 64, false}},
        {"small text B64 H4 T32 D64 causal", {64, 4, 32, 32, 64, true}},
        {"b32 vision B32 H12 T50 D64", {32, 12, 50, 50, 64, false}},
        {"b32 text B32 H8 T77 D64 causal", {32, 8, 77, 77, 64, true}},
    };
    std::printf("benchmark, %d threads (useful flops: causal counts the visible half)\n", threads);
    for (const auto& s : shapes) {
        std::printf("%s\n", s.what);
        Data d = make_data(s.p, 7);
        for (int w = 1; w <= kVariants; w++) {
            if (only && w != only) continue;
            std::vector<float> out, lse;
            auto f = bench_fn(w, d, out, lse);
            report_flops(kNames[w], time_it(f, 10, 0.3), s.p.flops(), peak);
        }
    }
    return finish("attention_forward", ok);
}
