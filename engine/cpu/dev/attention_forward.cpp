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
//   2  tiled, as first written: per head, Q, K, V gathered into padded fp32 tiles (K transposed
//      element by element), S = Q K^T and O = P V as register-blocked AVX-512 micro-kernels (MR
//      rows x 16 NV columns in registers, A broadcast, B vectors), softmax rows with SLEEF's exp
//      and lane-by-lane max / sum; reads the strided views, writes O into a (B, T, H, D) buffer;
//      causal skips the masked column tiles and key ranges
//   3  + K^T by 16 x 16 transposes in registers
//   4  + row max / sum by shuffle trees (the lane-by-lane chains cost ~130 cycles a row): the
//      engine's kernel (engine/cpu/cpu_attention.cpp)
//   5  + the next head's rows prefetched into L2: no gain (the hardware prefetcher keeps up)
//   6  bf16 inputs and output (the model under autocast), both products on AVX512-BF16 dot
//      products (vdpbf16ps: 16 lanes x 2 products each, fp32 accumulation): Q K^T straight from
//      the bf16 rows (K's pairs transposed as 32-bit words), P rounded to bf16 for P V (as
//      PyTorch's autocast feeds its bf16 matmul), V's rows interleaved in pairs; checked against
//      the reference on the bf16-rounded inputs. The engine's bf16 path is variant 4 on widened
//      inputs.
//   Also tried: smaller row blocks (MR 8/6/4/3 for NV 1..4 instead of 16/12/8/6): no difference.
// Where the time goes (variant 4, tiny vision, 1 thread, phase timers): reading q, k, v out of
// the 12.8 MB projection ~23% (memory bound), S = Q K^T ~26% (its last 16-column tile holds one
// key of 65), softmax ~31% (SLEEF's exp: ~24 cycles per 16 values; without it the phase is 12%),
// O = P V ~16%, storing O 4%.
// Usage: ./attention_forward [variant]   RANKCLIP_THREADS sets the threads; RANKCLIP_CPU_TIME=1
// times by CPU time (see time_kernel), for a machine other jobs share.
#include <array>
#include <functional>
#include <memory>
#include <utility>

#include "attention_common.h"

namespace {

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

// (the micro-kernels, gemm_rows, round16, first_lanes: attention_common.h)
// Rows per block for a tile of NV vectors (accumulators MR NV + NV + 1 broadcast <= 32 zmm)
struct RowBlocking {
    int rows[4];
};
constexpr RowBlocking kBlockingWide{{16, 12, 8, 6}};

int block_rows(const RowBlocking& rb, int64_t n) { return rb.rows[std::min<int64_t>(n / 16, 4) - 1]; }

// Horizontal max and sum. Variant 2, 3: lane by lane (a 16-long dependency chain); 4 on: the
// intrinsics' shuffle trees.
float lanes_max_serial(__m512 v) {
    alignas(64) float t[16];
    _mm512_store_ps(t, v);
    float m = t[0];
    for (int i = 1; i < 16; i++) m = std::max(m, t[i]);
    return m;
}
float lanes_sum_serial(__m512 v) {
    alignas(64) float t[16];
    _mm512_store_ps(t, v);
    float s = 0;
    for (int i = 0; i < 16; i++) s += t[i];
    return s;
}

struct Options {
    bool block_transpose;  // K^T by 16 x 16 register transposes (else element by element)
    bool tree_reduce;      // row max / sum by shuffle trees (else lane by lane)
    bool prefetch;         // the next head's q, k, v rows prefetched into L2 while this one computes
};

// dst = src * mul over n floats
void scale_row(const float* src, float* dst, int64_t n, float mul) {
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = first_lanes(n - j);
        _mm512_mask_storeu_ps(dst + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + j), _mm512_set1_ps(mul)));
    }
}

// One row of scores s[0:keys) becomes p = exp(scale s - m), m the scaled row max; p[keys:n) = 0.
// Returns sum(p); m through *row_max.
float softmax_row(float* s, int64_t keys, int64_t n, float scale, float* row_max, bool tree) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < keys; j += 16)
        vmax = _mm512_mask_max_ps(vmax, first_lanes(keys - j), vmax, _mm512_loadu_ps(s + j));
    float m = (tree ? _mm512_reduce_max_ps(vmax) : lanes_max_serial(vmax)) * scale;
    const __m512 vscale = _mm512_set1_ps(scale), vm = _mm512_set1_ps(m);
    __m512 vsum = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 live = first_lanes(keys - j);
        __m512 e = _mm512_maskz_mov_ps(live, Sleef_expf16_u10(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), vscale, vm)));
        vsum = _mm512_add_ps(vsum, e);
        _mm512_storeu_ps(s + j, e);
    }
    *row_max = m;
    return tree ? _mm512_reduce_add_ps(vsum) : lanes_sum_serial(vsum);
}

// Prefetch rows of a head into L2 (each row's D floats, whole lines)
void prefetch_rows(const float* src, int64_t st, int64_t rows, int64_t D) {
    for (int64_t j = 0; j < rows; j++)
        for (int64_t c = 0; c < D; c += 16) _mm_prefetch(reinterpret_cast<const char*>(src + j * st + c), _MM_HINT_T1);
}

// Key-major copy: dst[c ld + j] = src[j st + c] for j < rows, c < D. Variant 2: element by element.
void transpose_scalar(const float* src, int64_t st, int64_t rows, int64_t D, float* dst, int64_t ld) {
    for (int64_t j = 0; j < rows; j++)
        for (int64_t c = 0; c < D; c++) dst[c * ld + j] = src[j * st + c];
}

// Variant 3: transpose_blocks (attention_common.h), 16 x 16 blocks transposed in registers.

void tiled(const Problem& p, const HeadView& q, const HeadView& k, const HeadView& v, const HeadView& out,
           float* lse, double scale_d, const Options& opt) {
    const int64_t Tq = p.Tq, Tk = p.Tk, D = p.D, Dp = round16(D), Tkp = round16(Tk);
    const float scale = float(scale_d);
    const int64_t Bq = std::max<int64_t>(16, std::min<int64_t>(Tq, 32768 / std::max<int64_t>(Tkp, 1)));
#pragma omp parallel
    {
        std::vector<float> qt(size_t(Bq * Dp)), kt(size_t(D * Tkp)), vt(size_t(Tk * Dp)), st(size_t(Bq * Tkp)),
            ot(size_t(Bq * Dp)), inv(static_cast<size_t>(Bq));
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < p.BH(); bh++) {
            const float *qh = q.head(bh), *kh = k.head(bh), *vh = v.head(bh);
            float* oh = out.head(bh);
            if (opt.prefetch && bh + 1 < p.BH()) {
                prefetch_rows(q.head(bh + 1), q.st, Tq, D);
                prefetch_rows(k.head(bh + 1), k.st, Tk, D);
                prefetch_rows(v.head(bh + 1), v.st, Tk, D);
            }
            if (opt.block_transpose) transpose_blocks(kh, k.st, Tk, D, kt.data(), Tkp);
            else transpose_scalar(kh, k.st, Tk, D, kt.data(), Tkp);
            for (int64_t j = 0; j < Tk; j++) std::memcpy(&vt[j * Dp], vh + j * v.st, size_t(D) * 4);
            for (int64_t qb0 = 0; qb0 < Tq; qb0 += Bq) {
                const int64_t nq = std::min(Bq, Tq - qb0);
                for (int64_t r = 0; r < nq; r++) std::memcpy(&qt[r * Dp], qh + (qb0 + r) * q.st, size_t(D) * 4);
                const int mr_s = block_rows(kBlockingWide, Tkp);
                for (int64_t i0 = 0; i0 < nq; i0 += mr_s) {
                    int m = int(std::min<int64_t>(mr_s, nq - i0));
                    int64_t cols = p.causal ? round16(std::min(Tk, qb0 + i0 + m)) : Tkp;
                    gemm_rows<true>(m, cols, 0, D, &qt[i0 * Dp], Dp, kt.data(), Tkp, &st[i0 * Tkp], Tkp, false);
                }
                for (int64_t r = 0; r < nq; r++) {
                    float m;
                    float sum = softmax_row(&st[r * Tkp], p.keys(qb0 + r), Tkp, scale, &m, opt.tree_reduce);
                    inv[r] = sum > 0 ? 1.0f / sum : 0.0f;
                    lse[bh * Tq + qb0 + r] = sum > 0 ? m + std::log(sum) : -INFINITY;
                }
                const int mr_o = block_rows(kBlockingWide, Dp);
                for (int64_t i0 = 0; i0 < nq; i0 += mr_o) {
                    int m = int(std::min<int64_t>(mr_o, nq - i0));
                    int64_t kend = p.causal ? std::min(Tk, qb0 + i0 + m) : Tk;
                    gemm_rows<true>(m, Dp, 0, kend, &st[i0 * Tkp], Tkp, vt.data(), Dp, &ot[i0 * Dp], Dp, false);
                }
                for (int64_t r = 0; r < nq; r++) scale_row(&ot[r * Dp], oh + (qb0 + r) * out.st, D, inv[r]);
            }
        }
    }
}

#if defined(__AVX512BF16__)
// ---------------------------------------------------------------------------------------------
// variant 6: bf16 pairs (the pair micro-kernels and row helpers: attention_common.h)

// q, k, v, out: bf16 (B, H, T, D) views (strides in bf16 elements, even), D even.
void tiled_bf16(const Problem& p, const bf16* q, const bf16* k, const bf16* v, bf16* out, int64_t H, int64_t sb,
                int64_t st, int64_t osb, int64_t ost, float* lse, double scale_d) {
    const int64_t Tq = p.Tq, Tk = p.Tk, D = p.D, D2 = D / 2, Dp = round16(D), Tkp = round16(Tk),
                  Tkp2 = Tkp / 2;
    const float scale = float(scale_d);
    const int64_t Bq = std::max<int64_t>(16, std::min<int64_t>(Tq, 32768 / std::max<int64_t>(Tkp, 1)));
    auto head = [&](const bf16* base, int64_t bh) { return base + (bh / H) * sb + (bh % H) * D; };
#pragma omp parallel
    {
        // per thread: Q pairs (Bq, Dp/2 words), K^T pairs (D/2, Tkp), V rows (Tkp, Dp) bf16, V pairs
        // (Tkp/2, Dp), S / P fp32 (Bq, Tkp), P bf16 (Bq, Tkp), O (Bq, Dp)
        std::vector<uint32_t> qt(size_t(Bq * Dp / 2)), kt(size_t(D2 * Tkp)), vp(size_t(Tkp2 * Dp));
        std::vector<bf16> vrows(size_t((Tkp + 1) * Dp)), pt(size_t(Bq * Tkp));
        std::vector<float> sf(size_t(Bq * Tkp)), ot(size_t(Bq * Dp)), inv(static_cast<size_t>(Bq));
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < p.BH(); bh++) {
            const bf16 *qh = head(q, bh), *kh = head(k, bh), *vh = head(v, bh);
            bf16* oh = out + (bh / H) * osb + (bh % H) * D;
            // K^T in pairs: a K row is D/2 words; transposing those words gives kt[d2][j]
            transpose_blocks(reinterpret_cast<const float*>(kh), st / 2, Tk, D2, reinterpret_cast<float*>(kt.data()), Tkp);
            for (int64_t j = 0; j < Tkp; j++) {
                if (j < Tk) copy_bf16_row(vh + j * st, &vrows[j * Dp], D, Dp);
                else std::memset(&vrows[j * Dp], 0, size_t(Dp) * 2);
            }
            for (int64_t i = 0; i < Tkp2; i++) interleave_row_pairs(&vrows[2 * i * Dp], &vrows[(2 * i + 1) * Dp], &vp[i * Dp], Dp);
            for (int64_t qb0 = 0; qb0 < Tq; qb0 += Bq) {
                const int64_t nq = std::min(Bq, Tq - qb0);
                for (int64_t r = 0; r < nq; r++)
                    copy_bf16_row(qh + (qb0 + r) * st, reinterpret_cast<bf16*>(&qt[r * Dp / 2]), D, Dp);
                const int mr_s = block_rows(kBlockingWide, Tkp);
                for (int64_t i0 = 0; i0 < nq; i0 += mr_s) {
                    int m = int(std::min<int64_t>(mr_s, nq - i0));
                    int64_t cols = p.causal ? round16(std::min(Tk, qb0 + i0 + m)) : Tkp;
                    gemm_rows<true>(m, cols, 0, D2, &qt[i0 * Dp / 2], Dp / 2, kt.data(), Tkp, &sf[i0 * Tkp], Tkp, false);
                }
                for (int64_t r = 0; r < nq; r++) {
                    float m;
                    float sum = softmax_row(&sf[r * Tkp], p.keys(qb0 + r), Tkp, scale, &m, true);
                    inv[r] = sum > 0 ? 1.0f / sum : 0.0f;
                    lse[bh * Tq + qb0 + r] = sum > 0 ? m + std::log(sum) : -INFINITY;
                    narrow_row_bf16(&sf[r * Tkp], &pt[r * Tkp], Tkp, 1.0f);
                }
                const int mr_o = block_rows(kBlockingWide, Dp);
                for (int64_t i0 = 0; i0 < nq; i0 += mr_o) {
                    int m = int(std::min<int64_t>(mr_o, nq - i0));
                    int64_t kend = p.causal ? std::min(Tk, qb0 + i0 + m) : Tk;
                    gemm_rows<true>(m, Dp, 0, (kend + 1) / 2, reinterpret_cast<const uint32_t*>(&pt[i0 * Tkp]), Tkp / 2,
                                    vp.data(), Dp, &ot[i0 * Dp], Dp, false);
                }
                for (int64_t r = 0; r < nq; r++) narrow_row_bf16(&ot[r * Dp], oh + (qb0 + r) * ost, D, inv[r]);
            }
        }
    }
}
#endif

// ---------------------------------------------------------------------------------------------
// driver

constexpr int kVariants = 6;
constexpr int kBf16Variant = 6;
const char* kNames[kVariants + 1] = {"", "1 old scalar per row (contiguous)", "2 tiled, as first written",
                                     "3 + K^T by register transposes", "4 + row max/sum by shuffle trees",
                                     "5 + next head prefetched", "6 bf16, vdpbf16ps products"};
const Options kOptions[kVariants + 1] = {{}, {}, {false, false, false}, {true, false, false}, {true, true, false},
                                         {true, true, true}, {}};


struct Data {
    Problem p;
    double scale;
    std::vector<float> qkv;  // packed projection (B, T, 3, H, D), T = max(Tq, Tk)
    HeadView q, k, v;
    std::vector<float> qc, kc, vc;  // contiguous (BH, T, D) copies for variant 1
    std::vector<uint16_t> qkv16;    // the projection in bf16 (variant 6)
    std::vector<float> rounded;     // the same values as floats (its reference)
    HeadView qr, kr, vr;
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
    d.qkv16 = to_bf16(d.qkv);
    d.rounded = round_to_bf16(d.qkv);
    d.qr = {d.rounded.data(), p.H, T * 3 * W, p.D, 3 * W};
    d.kr = {d.rounded.data() + W, p.H, T * 3 * W, p.D, 3 * W};
    d.vr = {d.rounded.data() + 2 * W, p.H, T * 3 * W, p.D, 3 * W};
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
#if defined(__AVX512BF16__)
    if (which == kBf16Variant) {  // bf16 (B, T, H, D) out, widened
        const int64_t T = std::max(p.Tq, p.Tk), W = p.H * p.D;
        std::vector<uint16_t> o16(out.size());
        tiled_bf16(p, d.qkv16.data(), d.qkv16.data() + W, d.qkv16.data() + 2 * W, o16.data(), p.H, T * 3 * W, 3 * W,
                   p.Tq * W, W, lse.data(), d.scale);
        for (int64_t bh = 0; bh < p.BH(); bh++)
            for (int64_t i = 0; i < p.Tq; i++)
                for (int64_t c = 0; c < p.D; c++)
                    out[(bh * p.Tq + i) * p.D + c] =
                        bf16_bits_to_float(o16[size_t((bh / p.H) * p.Tq * W + i * W + (bh % p.H) * p.D + c)]);
        return;
    }
#endif
    // the output in the (B, T, H, D) layout the model wants, then unpermuted for checking
    std::vector<float> bthd(out.size());
    HeadView o{bthd.data(), p.H, p.Tq * p.H * p.D, p.D, p.H * p.D};
    tiled(p, d.q, d.k, d.v, o, lse.data(), d.scale, kOptions[which]);
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
#if defined(__AVX512BF16__)
    if (which == kBf16Variant) {
        auto o16 = std::make_shared<std::vector<uint16_t>>(out.size());
        return [&d, &lse, o16] {
            const Problem& p = d.p;
            const int64_t T = std::max(p.Tq, p.Tk), W = p.H * p.D;
            tiled_bf16(p, d.qkv16.data(), d.qkv16.data() + W, d.qkv16.data() + 2 * W, o16->data(), p.H, T * 3 * W,
                       3 * W, p.Tq * W, W, lse.data(), d.scale);
        };
    }
#endif
    return [&d, &out, &lse, which] {
        const Problem& p = d.p;
        HeadView o{out.data(), p.H, p.Tq * p.H * p.D, p.D, p.H * p.D};
        tiled(p, d.q, d.k, d.v, o, lse.data(), d.scale, kOptions[which]);
    };
}


}  // namespace

int main(int argc, char** argv) {
    int only = selected_variant(argc, argv);
    int threads = playground_threads();
    bool ok = true;

    std::printf("correctness (fp32 vs double reference, atol 2e-5 + rtol 2e-5)\n");
    for (const Problem& p : kCheckShapes) {
        Data d = make_data(p, uint64_t(p.Tq * 131 + p.D));
        std::vector<float> ref_o, ref_l, out, lse;
        reference(p, d.q, d.k, d.v, ref_o, ref_l, d.scale);
        std::vector<float> ref16_o, ref16_l;
        reference(p, d.qr, d.kr, d.vr, ref16_o, ref16_l, d.scale);
        for (int w = 1; w <= kVariants; w++) {
            if (only && w != only) continue;
            if (w == kBf16Variant && !bf16_variant_runs(p)) continue;
            run_variant(w, d, out, lse);
            char name[160];
            std::snprintf(name, sizeof name, "variant %d B %ld H %ld Tq %ld Tk %ld D %ld%s", w, long(p.B), long(p.H),
                          long(p.Tq), long(p.Tk), long(p.D), p.causal ? " causal" : "");
            if (w == kBf16Variant) {
                // P rounded to bf16 (2^-9 relative) and the output's rounding; lse from fp32 scores
                ok &= validate(name, out, ref16_o, 1e-2f, 1e-2f);
                ok &= validate(name, lse, ref16_l, 2e-5f, 2e-5f);
            } else {
                ok &= validate(name, out, ref_o, 2e-5f, 2e-5f);
                ok &= validate(name, lse, ref_l, 2e-5f, 2e-5f);
            }
            std::vector<float> again, lse2;
            run_variant(w, d, again, lse2);
            ok &= same_bits(name, out, again);
        }
    }

    print_rooflines();
    double peak = benchmark_peak(threads);
    std::printf("benchmark, %d threads (useful flops: causal counts the visible half)\n", threads);
    for (const auto& s : kBenchmarkShapes) {
        std::printf("%s\n", s.what);
        Data d = make_data(s.p, 7);
        for (int w = 1; w <= kVariants; w++) {
            if (only && w != only) continue;
            if (w == kBf16Variant && !bf16_variant_runs(s.p)) continue;
            std::vector<float> out, lse;
            auto f = bench_fn(w, d, out, lse);
            report_flops(kNames[w], time_kernel(f, 10, 0.3), s.p.flops(2), peak);
        }
    }
    return finish("attention_forward", ok);
}
