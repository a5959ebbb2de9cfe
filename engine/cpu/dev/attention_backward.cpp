// engine/cpu/dev/attention_backward.cpp
// defines: the CPU attention backward playground: a double-precision reference, the numbered
// variants, a correctness check on awkward shapes (T = 1, 17, 65, 77, 128, 300, Tq != Tk, causal
// or not, D = 8 ... 80, strided q/k/v/dO read from packed buffers, dq/dk/dv written into one
// packed (B, T, 3, H, D) gradient) and a benchmark on the CLIP shapes, in GFLOP/s and % of the
// measured fp32 FMA peak.
//   forward (restated): S = scale Q K^T (causal: key j > query i masked), P = softmax(S), O = P V
//   backward: P = exp(S - lse), dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)),
//             dQ = scale dS K, dK = scale dS^T Q
// Flops counted: the five products (S recomputed, dP, dV, dQ, dK) over the visible keys,
// 10 visible D per head.
// Variants:
//   1  the engine's old kernel: one (batch, head) per thread, per query row scalar dot products
//      and rank-1 updates of dK, dV; contiguous inputs and outputs
//   2  tiled, as first written: per head, Q, K, dO gathered into padded fp32 tiles (K, V also
//      transposed, element by element); per block of queries S = Q K^T and dP = dO V^T, P and dS
//      rowwise (SLEEF exp), dQ = dS K, dV += P^T dO, dK += dS^T Q, all with the register-blocked
//      micro-kernels of attention_forward.cpp (the transposed-A form for P^T and dS^T); causal
//      skips masked blocks; dQ, dK, dV written into one packed (B, T, 3, H, D) gradient
//   3  + K^T, V^T by 16 x 16 register transposes, rowsum(dO * O) vectorised: the engine's kernel
//   4  = 3 with the query block capped at 32 rows (the long-sequence path) on every shape
//   5  bf16 inputs and gradients (the model under autocast), the five products on AVX512-BF16
//      dot products (vdpbf16ps): S and dP from the bf16 rows against K^T, V^T in transposed
//      pairs; P and dS rounded to bf16 for dV = P^T dO, dQ = dS K, dK = dS^T Q (row pairs of P,
//      dS, K, Q, dO interleaved); S, P, dP, delta and the sums in fp32. Checked against the
//      reference on the bf16-rounded inputs.
//   Also tried: prefetching the next head's rows into L2, non-temporal stores of dQ, dK, dV:
//   no gain.
// Where the time goes (variant 3, tiny vision, 1 thread, phase timers): reading Q, K, V, O, dO
// ~26% and writing dQ, dK, dV ~14% (memory bound: 21 MB in, 12.6 MB out per call), S and dP
// ~20%, exp and dS ~9%, dQ ~13%, dK and dV ~17%.
// Usage: ./attention_backward [variant]   RANKCLIP_THREADS sets the threads; RANKCLIP_CPU_TIME=1
// times by CPU time (see time_kernel), for a machine other jobs share.
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "attention_common.h"

namespace {

// ---------------------------------------------------------------------------------------------
// reference: double precision forward (for O, lse) and backward, from the definition

void reference(const Problem& p, const HeadView& q, const HeadView& k, const HeadView& v, const HeadView& go,
               double scale, std::vector<float>& o_out, std::vector<float>& lse_out, std::vector<float>& gq,
               std::vector<float>& gk, std::vector<float>& gv) {
    const int64_t Tq = p.Tq, Tk = p.Tk, D = p.D;
    o_out.assign(size_t(p.BH() * Tq * D), 0.0f);
    lse_out.assign(size_t(p.BH() * Tq), 0.0f);
    gq.assign(size_t(p.BH() * Tq * D), 0.0f);
    gk.assign(size_t(p.BH() * Tk * D), 0.0f);
    gv.assign(size_t(p.BH() * Tk * D), 0.0f);
    std::vector<double> P(size_t(Tq * Tk)), O(size_t(Tq * D)), dk(size_t(Tk * D)), dv(size_t(Tk * D));
    for (int64_t bh = 0; bh < p.BH(); bh++) {
        const float *qh = q.head(bh), *kh = k.head(bh), *vh = v.head(bh), *gh = go.head(bh);
        std::fill(P.begin(), P.end(), 0.0);
        for (int64_t i = 0; i < Tq; i++) {
            double m = -INFINITY, sum = 0;
            for (int64_t j = 0; j < p.keys(i); j++) {
                double d = 0;
                for (int64_t c = 0; c < D; c++) d += double(qh[i * q.st + c]) * double(kh[j * k.st + c]);
                P[i * Tk + j] = d * scale;
                m = std::max(m, d * scale);
            }
            for (int64_t j = 0; j < p.keys(i); j++) sum += (P[i * Tk + j] = std::exp(P[i * Tk + j] - m));
            for (int64_t j = 0; j < p.keys(i); j++) P[i * Tk + j] /= sum;
            lse_out[bh * Tq + i] = float(m + std::log(sum));
            for (int64_t c = 0; c < D; c++) {
                double o = 0;
                for (int64_t j = 0; j < p.keys(i); j++) o += P[i * Tk + j] * double(vh[j * v.st + c]);
                O[i * D + c] = o;
                o_out[(bh * Tq + i) * D + c] = float(o);
            }
        }
        std::fill(dk.begin(), dk.end(), 0.0);
        std::fill(dv.begin(), dv.end(), 0.0);
        for (int64_t i = 0; i < Tq; i++) {
            double delta = 0;
            for (int64_t c = 0; c < D; c++) delta += double(gh[i * go.st + c]) * O[i * D + c];
            for (int64_t j = 0; j < p.keys(i); j++) {
                double dp = 0;
                for (int64_t c = 0; c < D; c++) dp += double(gh[i * go.st + c]) * double(vh[j * v.st + c]);
                double ds = P[i * Tk + j] * (dp - delta) * scale;
                for (int64_t c = 0; c < D; c++) {
                    gq[(bh * Tq + i) * D + c] += float(ds * double(kh[j * k.st + c]));
                    dk[j * D + c] += ds * double(qh[i * q.st + c]);
                    dv[j * D + c] += P[i * Tk + j] * double(gh[i * go.st + c]);
                }
            }
        }
        for (int64_t x = 0; x < Tk * D; x++) gk[bh * Tk * D + x] = float(dk[x]), gv[bh * Tk * D + x] = float(dv[x]);
    }
}

// ---------------------------------------------------------------------------------------------
// variant 1: the old engine kernel, contiguous (BH, T, D) everything

void old_scalar(const Problem& pr, const float* qs, const float* ks, const float* vs, const float* os,
                const float* ls, const float* gos, float* gqs, float* gks, float* gvs, double scale) {
    int64_t D = pr.D, Tq = pr.Tq, Tk = pr.Tk, BH = pr.BH();
    bool causal = pr.causal;
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < BH; bh++) {
        std::vector<float> dk(size_t(Tk * D), 0.0f), dv(size_t(Tk * D), 0.0f), dq(static_cast<size_t>(D));
        for (int64_t i = 0; i < Tq; i++) {
            const float* qi = qs + (bh * Tq + i) * D;
            const float* goi = gos + (bh * Tq + i) * D;
            const float* oi = os + (bh * Tq + i) * D;
            int64_t keys = causal ? std::min(Tk, i + 1) : Tk;
            float delta = 0;
            for (int64_t d = 0; d < D; d++) delta += goi[d] * oi[d];
            std::fill(dq.begin(), dq.end(), 0.0f);
            for (int64_t j = 0; j < keys; j++) {
                const float* kj = ks + (bh * Tk + j) * D;
                const float* vj = vs + (bh * Tk + j) * D;
                float s = 0, dp = 0;
                for (int64_t d = 0; d < D; d++) {
                    s += qi[d] * kj[d];
                    dp += goi[d] * vj[d];
                }
                float pj = std::exp(s * float(scale) - ls[bh * Tq + i]);
                float ds = pj * (dp - delta) * float(scale);
                for (int64_t d = 0; d < D; d++) {
                    dv[j * D + d] += pj * goi[d];
                    dk[j * D + d] += ds * qi[d];
                    dq[d] += ds * kj[d];
                }
            }
            for (int64_t d = 0; d < D; d++) gqs[(bh * Tq + i) * D + d] = dq[d];
        }
        for (int64_t x = 0; x < Tk * D; x++) gks[bh * Tk * D + x] = dk[x], gvs[bh * Tk * D + x] = dv[x];
    }
}

// ---------------------------------------------------------------------------------------------
// the micro-kernels (as attention_forward.cpp): C (MR x 16 NV) (+)= A (MR x [k0, k1)) B

// (the micro-kernels, gemm_rows, round16, first_lanes: attention_common.h)
constexpr int kBlockRows[4] = {16, 12, 8, 6};
int block_rows(int64_t n) { return kBlockRows[std::min<int64_t>(n / 16, 4) - 1]; }


// (transpose_blocks: attention_common.h)

// sum_c a[c] b[c] over n floats, 16 lanes then a shuffle tree
float dot_row(const float* a, const float* b, int64_t n) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = first_lanes(n - j);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + j), _mm512_maskz_loadu_ps(m, b + j), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

// ---------------------------------------------------------------------------------------------
// variant 2, 3: tiled

struct BackwardScratch {
    std::vector<float> q, k, kt, vt, go, s, dp, dq, dk, dv, delta;
};

void tiled(const Problem& p, const HeadView& q, const HeadView& k, const HeadView& v, const HeadView& o,
           const float* lse, const HeadView& go, const HeadView& gq, const HeadView& gk, const HeadView& gv,
           double scale_d, int64_t max_block, bool fast) {
    const int64_t Tq = p.Tq, Tk = p.Tk, D = p.D, Dp = round16(D), Tkp = round16(Tk);
    const float scale = float(scale_d);
    // queries per block: the (block, Tkp) score tiles stay within ~256 KiB
    int64_t Bq = std::max<int64_t>(16, std::min<int64_t>(Tq, 32768 / Tkp));
    Bq = std::min(Bq, max_block);
#pragma omp parallel
    {
        BackwardScratch w;
        w.q.assign(size_t(Tq * Dp), 0.0f);
        w.go.assign(size_t(Tq * Dp), 0.0f);
        w.k.assign(size_t(Tk * Dp), 0.0f);
        w.kt.assign(size_t(D * Tkp), 0.0f);
        w.vt.assign(size_t(D * Tkp), 0.0f);
        w.s.assign(size_t(Bq * Tkp), 0.0f);
        w.dp.assign(size_t(Bq * Tkp), 0.0f);
        w.dq.assign(size_t(Bq * Dp), 0.0f);
        w.dk.assign(size_t(Tk * Dp), 0.0f);
        w.dv.assign(size_t(Tk * Dp), 0.0f);
        w.delta.assign(size_t(Tq), 0.0f);
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < p.BH(); bh++) {
            const float *qh = q.head(bh), *kh = k.head(bh), *vh = v.head(bh), *oh = o.head(bh), *gh = go.head(bh);
            const float* lh = lse + bh * Tq;
            for (int64_t i = 0; i < Tq; i++) {
                std::memcpy(&w.q[i * Dp], qh + i * q.st, size_t(D) * 4);
                std::memcpy(&w.go[i * Dp], gh + i * go.st, size_t(D) * 4);
                if (fast) {
                    w.delta[i] = dot_row(&w.go[i * Dp], oh + i * o.st, D);
                } else {
                    float d = 0;
                    for (int64_t c = 0; c < D; c++) d += gh[i * go.st + c] * oh[i * o.st + c];
                    w.delta[i] = d;
                }
            }
            for (int64_t j = 0; j < Tk; j++) std::memcpy(&w.k[j * Dp], kh + j * k.st, size_t(D) * 4);
            if (fast) {
                transpose_blocks(w.k.data(), Dp, Tk, D, w.kt.data(), Tkp);
                transpose_blocks(vh, v.st, Tk, D, w.vt.data(), Tkp);
            } else {
                for (int64_t j = 0; j < Tk; j++)
                    for (int64_t c = 0; c < D; c++) {
                        w.kt[c * Tkp + j] = kh[j * k.st + c];
                        w.vt[c * Tkp + j] = vh[j * v.st + c];
                    }
            }
            std::fill(w.dk.begin(), w.dk.end(), 0.0f);
            std::fill(w.dv.begin(), w.dv.end(), 0.0f);
            const int mr_s = block_rows(Tkp), mr_d = block_rows(Dp);
            for (int64_t qb0 = 0; qb0 < Tq; qb0 += Bq) {
                const int64_t nq = std::min(Bq, Tq - qb0);
                // S = Q K^T and dP = dO V^T for the block's rows; causal: visible columns only
                for (int64_t i0 = 0; i0 < nq; i0 += mr_s) {
                    int m = int(std::min<int64_t>(mr_s, nq - i0));
                    int64_t cols = p.causal ? round16(std::min(Tk, qb0 + i0 + m)) : Tkp;
                    gemm_rows<true>(m, cols, 0, D, &w.q[(qb0 + i0) * Dp], Dp, w.kt.data(), Tkp, &w.s[i0 * Tkp], Tkp,
                                    false);
                    gemm_rows<true>(m, cols, 0, D, &w.go[(qb0 + i0) * Dp], Dp, w.vt.data(), Tkp, &w.dp[i0 * Tkp],
                                    Tkp, false);
                }
                // P = exp(scale S - lse), dS = scale P (dP - delta), zero past the visible keys
                for (int64_t r = 0; r < nq; r++) {
                    const int64_t i = qb0 + r, keys = p.keys(i);
                    float* s = &w.s[r * Tkp];
                    float* dp = &w.dp[r * Tkp];
                    const __m512 vscale = _mm512_set1_ps(scale), vl = _mm512_set1_ps(lh[i]),
                                 vd = _mm512_set1_ps(w.delta[i]);
                    for (int64_t j = 0; j < Tkp; j += 16) {
                        __mmask16 live = keys - j >= 16 ? __mmask16(0xffff)
                                         : keys > j     ? __mmask16((1u << (keys - j)) - 1)
                                                        : __mmask16(0);
                        __m512 pv = _mm512_maskz_mov_ps(
                            live, Sleef_expf16_u10(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), vscale, vl)));
                        __m512 ds = _mm512_mul_ps(_mm512_mul_ps(pv, vscale),
                                                  _mm512_sub_ps(_mm512_loadu_ps(dp + j), vd));
                        _mm512_storeu_ps(s + j, pv);
                        _mm512_storeu_ps(dp + j, ds);
                    }
                }
                // dQ = dS K (rows of the block; causal: keys up to the block's last row)
                for (int64_t i0 = 0; i0 < nq; i0 += mr_d) {
                    int m = int(std::min<int64_t>(mr_d, nq - i0));
                    int64_t kend = p.causal ? std::min(Tk, qb0 + i0 + m) : Tk;
                    gemm_rows<true>(m, Dp, 0, kend, &w.dp[i0 * Tkp], Tkp, w.k.data(), Dp, &w.dq[i0 * Dp], Dp, false);
                }
                float* gqh = gq.head(bh);
                for (int64_t r = 0; r < nq; r++) std::memcpy(gqh + (qb0 + r) * gq.st, &w.dq[r * Dp], size_t(D) * 4);
                // dV += P^T dO, dK += dS^T Q over the block's queries; causal: queries >= the first key
                const int64_t kmax = p.causal ? std::min(Tk, qb0 + nq) : Tk;
                for (int64_t j0 = 0; j0 < kmax; j0 += mr_d) {
                    int m = int(std::min<int64_t>(mr_d, kmax - j0));
                    int64_t r0 = p.causal ? std::max<int64_t>(0, j0 - qb0) : 0;
                    gemm_rows<false>(m, Dp, r0, nq, &w.s[j0], Tkp, &w.go[qb0 * Dp], Dp, &w.dv[j0 * Dp], Dp, true);
                    gemm_rows<false>(m, Dp, r0, nq, &w.dp[j0], Tkp, &w.q[qb0 * Dp], Dp, &w.dk[j0 * Dp], Dp, true);
                }
            }
            float *gkh = gk.head(bh), *gvh = gv.head(bh);
            for (int64_t j = 0; j < Tk; j++) {
                std::memcpy(gkh + j * gk.st, &w.dk[j * Dp], size_t(D) * 4);
                std::memcpy(gvh + j * gv.st, &w.dv[j * Dp], size_t(D) * 4);
            }
        }
    }
}

#if defined(__AVX512BF16__)
// ---------------------------------------------------------------------------------------------
// variant 5: bf16 pairs (the pair micro-kernels and row helpers: attention_common.h)

// widened dot product of two bf16 rows of n values
float dot_row_bf16(const bf16* a, const bf16* b, int64_t n) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = first_lanes(n - j);
        __m512 x = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, a + j)), 16));
        __m512 y = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, b + j)), 16));
        acc = _mm512_fmadd_ps(x, y, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

// A (B, H, T, D) bf16 view: head bh at base + (bh / H) sb + (bh % H) D, row t at + t st.
struct Bf16Heads {
    bf16* data;
    int64_t H, D, sb, st;
    bf16* head(int64_t bh) const { return data + (bh / H) * sb + (bh % H) * D; }
};

void tiled_bf16(const Problem& p, const Bf16Heads& q, const Bf16Heads& k, const Bf16Heads& v, const Bf16Heads& o,
                const float* lse, const Bf16Heads& go, const Bf16Heads& gq, const Bf16Heads& gk, const Bf16Heads& gv,
                double scale_d) {
    const int64_t Tq = p.Tq, Tk = p.Tk, D = p.D, D2 = D / 2, Dp = round16(D), Tkp = round16(Tk), Tq2 = (Tq + 1) / 2;
    const float scale = float(scale_d);
    // queries per block, even (pairs of query rows), the score tiles within ~256 KiB
    int64_t Bq = std::max<int64_t>(16, std::min<int64_t>(Tq + (Tq & 1), 32768 / Tkp));
    Bq -= Bq & 1;
#pragma omp parallel
    {
        // rows as pairs along D: Q, dO (Tq, Dp/2 words); K^T, V^T in pairs (D/2, Tkp); row pairs:
        // K (Tkp/2, Dp), Q and dO (Tq2, Dp); per block: S -> P, dP -> dS fp32 (Bq, Tkp) and bf16
        // (Bq, Tkp), their row pairs (Bq/2, Tkp); dQ (Bq, Dp); dK, dV (Tkp, Dp); delta (Tq)
        std::vector<bf16> qrow(size_t((Tq + 1) * Dp), 0), gorow(size_t((Tq + 1) * Dp), 0), krow(size_t(Tkp * Dp), 0),
            p16(size_t(Bq * Tkp), 0), ds16(size_t(Bq * Tkp), 0);
        std::vector<uint32_t> kt(size_t(D2 * Tkp), 0), vt(size_t(D2 * Tkp), 0), kp(size_t(Tkp / 2 * Dp)),
            qp(size_t(Tq2 * Dp)), gop(size_t(Tq2 * Dp)), pp(size_t(Bq / 2 * Tkp)), dsp(size_t(Bq / 2 * Tkp));
        std::vector<float> s(size_t(Bq * Tkp)), dp(size_t(Bq * Tkp)), dq(size_t(Bq * Dp)), dk(size_t(Tkp * Dp)),
            dv(size_t(Tkp * Dp)), delta(static_cast<size_t>(Tq));
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < p.BH(); bh++) {
            const bf16 *qh = q.head(bh), *kh = k.head(bh), *vh = v.head(bh), *oh = o.head(bh), *gh = go.head(bh);
            const float* lh = lse + bh * Tq;
            for (int64_t i = 0; i < Tq; i++) {
                copy_bf16_row(qh + i * q.st, &qrow[i * Dp], D, Dp);
                copy_bf16_row(gh + i * go.st, &gorow[i * Dp], D, Dp);
                delta[i] = dot_row_bf16(gh + i * go.st, oh + i * o.st, D);
            }
            for (int64_t j = 0; j < Tk; j++) copy_bf16_row(kh + j * k.st, &krow[j * Dp], D, Dp);
            transpose_blocks(reinterpret_cast<const float*>(kh), k.st / 2, Tk, D2, reinterpret_cast<float*>(kt.data()), Tkp);
            transpose_blocks(reinterpret_cast<const float*>(vh), v.st / 2, Tk, D2, reinterpret_cast<float*>(vt.data()), Tkp);
            for (int64_t j2 = 0; j2 < Tkp / 2; j2++) interleave_row_pairs(&krow[2 * j2 * Dp], &krow[(2 * j2 + 1) * Dp], &kp[j2 * Dp], Dp);
            for (int64_t i2 = 0; i2 < Tq2; i2++) {
                interleave_row_pairs(&qrow[2 * i2 * Dp], &qrow[(2 * i2 + 1) * Dp], &qp[i2 * Dp], Dp);
                interleave_row_pairs(&gorow[2 * i2 * Dp], &gorow[(2 * i2 + 1) * Dp], &gop[i2 * Dp], Dp);
            }
            std::fill(dk.begin(), dk.end(), 0.0f);
            std::fill(dv.begin(), dv.end(), 0.0f);
            const int mr_s = block_rows(Tkp), mr_d = block_rows(Dp);
            for (int64_t qb0 = 0; qb0 < Tq; qb0 += Bq) {
                const int64_t nq = std::min(Bq, Tq - qb0), nq2 = (nq + 1) / 2;
                const uint32_t* qw = reinterpret_cast<const uint32_t*>(qrow.data());
                const uint32_t* gw = reinterpret_cast<const uint32_t*>(gorow.data());
                for (int64_t i0 = 0; i0 < nq; i0 += mr_s) {
                    int m = int(std::min<int64_t>(mr_s, nq - i0));
                    int64_t cols = p.causal ? round16(std::min(Tk, qb0 + i0 + m)) : Tkp;
                    gemm_rows<true>(m, cols, 0, D2, qw + (qb0 + i0) * Dp / 2, Dp / 2, kt.data(), Tkp, &s[i0 * Tkp], Tkp, false);
                    gemm_rows<true>(m, cols, 0, D2, gw + (qb0 + i0) * Dp / 2, Dp / 2, vt.data(), Tkp, &dp[i0 * Tkp], Tkp, false);
                }
                // P = exp(scale S - lse), dS = scale P (dP - delta), both zero past the visible keys, to bf16
                for (int64_t r = 0; r < nq; r++) {
                    const int64_t i = qb0 + r, keys = p.keys(i);
                    const __m512 vscale = _mm512_set1_ps(scale), vl = _mm512_set1_ps(lh[i]), vd = _mm512_set1_ps(delta[i]);
                    for (int64_t j = 0; j < Tkp; j += 16) {
                        __mmask16 live = first_lanes(keys - j);
                        __m512 pv = _mm512_maskz_mov_ps(live, Sleef_expf16_u10(_mm512_fmsub_ps(_mm512_loadu_ps(&s[r * Tkp + j]), vscale, vl)));
                        __m512 ds = _mm512_maskz_mul_ps(live, _mm512_mul_ps(pv, vscale), _mm512_sub_ps(_mm512_loadu_ps(&dp[r * Tkp + j]), vd));
                        _mm256_storeu_si256(reinterpret_cast<__m256i*>(&p16[r * Tkp + j]), (__m256i)_mm512_cvtneps_pbh(pv));
                        _mm256_storeu_si256(reinterpret_cast<__m256i*>(&ds16[r * Tkp + j]), (__m256i)_mm512_cvtneps_pbh(ds));
                    }
                }
                if (nq & 1) {  // the last pair's second row: no query
                    std::memset(&p16[nq * Tkp], 0, size_t(Tkp) * 2);
                    std::memset(&ds16[nq * Tkp], 0, size_t(Tkp) * 2);
                }
                // dQ = dS K; causal: keys up to the block's last row
                const uint32_t* dsw = reinterpret_cast<const uint32_t*>(ds16.data());
                for (int64_t i0 = 0; i0 < nq; i0 += mr_d) {
                    int m = int(std::min<int64_t>(mr_d, nq - i0));
                    int64_t kend = p.causal ? std::min(Tk, qb0 + i0 + m) : Tk;
                    gemm_rows<true>(m, Dp, 0, (kend + 1) / 2, dsw + i0 * Tkp / 2, Tkp / 2, kp.data(), Dp, &dq[i0 * Dp], Dp, false);
                }
                bf16* gqh = gq.head(bh);
                for (int64_t r = 0; r < nq; r++) narrow_row_bf16(&dq[r * Dp], gqh + (qb0 + r) * gq.st, D, 1.0f);
                // dV += P^T dO, dK += dS^T Q over the block's query pairs; causal: pairs from the first key's
                for (int64_t r2 = 0; r2 < nq2; r2++) {
                    interleave_row_pairs(&p16[2 * r2 * Tkp], &p16[(2 * r2 + 1) * Tkp], &pp[r2 * Tkp], Tkp);
                    interleave_row_pairs(&ds16[2 * r2 * Tkp], &ds16[(2 * r2 + 1) * Tkp], &dsp[r2 * Tkp], Tkp);
                }
                const int64_t kmax = p.causal ? std::min(Tk, qb0 + nq) : Tk;
                for (int64_t j0 = 0; j0 < kmax; j0 += mr_d) {
                    int m = int(std::min<int64_t>(mr_d, kmax - j0));
                    int64_t r0 = p.causal ? std::max<int64_t>(0, j0 - qb0) / 2 : 0;
                    gemm_rows<false>(m, Dp, r0, nq2, &pp[j0], Tkp, &gop[qb0 / 2 * Dp], Dp, &dv[j0 * Dp], Dp, true);
                    gemm_rows<false>(m, Dp, r0, nq2, &dsp[j0], Tkp, &qp[qb0 / 2 * Dp], Dp, &dk[j0 * Dp], Dp, true);
                }
            }
            bf16 *gkh = gk.head(bh), *gvh = gv.head(bh);
            for (int64_t j = 0; j < Tk; j++) {
                narrow_row_bf16(&dk[j * Dp], gkh + j * gk.st, D, 1.0f);
                narrow_row_bf16(&dv[j * Dp], gvh + j * gv.st, D, 1.0f);
            }
        }
    }
}
#endif

// ---------------------------------------------------------------------------------------------
// driver

struct Data {
    Problem p;
    double scale;
    std::vector<float> qkv, go_buf, o_ref, lse_ref;  // packed (B, T, 3, H, D); dO (B, T, H, D)
    HeadView q, k, v, go, o;
    std::vector<float> o_buf;                              // (B, T, H, D)
    std::vector<float> qc, kc, vc, goc, oc;                // contiguous copies for variant 1
    std::vector<float> gq_ref, gk_ref, gv_ref;
};

// bf16_values: q, k, v and dO rounded to bf16 first (the bf16 variant's inputs; its reference)
Data make_data(const Problem& p, uint64_t seed, bool with_reference, bool bf16_values = false) {
    Data d;
    d.p = p;
    d.scale = 1.0 / std::sqrt(double(p.D));
    int64_t T = std::max(p.Tq, p.Tk), W = p.H * p.D;
    d.qkv = random_normal(size_t(p.B * T * 3 * W), seed);
    d.go_buf = random_normal(size_t(p.B * p.Tq * W), seed + 1);
    if (bf16_values) d.qkv = round_to_bf16(d.qkv), d.go_buf = round_to_bf16(d.go_buf);
    d.q = {d.qkv.data(), p.H, T * 3 * W, p.D, 3 * W};
    d.k = {d.qkv.data() + W, p.H, T * 3 * W, p.D, 3 * W};
    d.v = {d.qkv.data() + 2 * W, p.H, T * 3 * W, p.D, 3 * W};
    d.go = {d.go_buf.data(), p.H, p.Tq * W, p.D, W};
    std::vector<float> gq, gk, gv;
    reference(p, d.q, d.k, d.v, d.go, d.scale, d.o_ref, d.lse_ref, gq, gk, gv);
    if (with_reference) d.gq_ref = gq, d.gk_ref = gk, d.gv_ref = gv;
    // O in the (B, T, H, D) layout the forward writes
    d.o_buf.resize(d.o_ref.size());
    d.o = {d.o_buf.data(), p.H, p.Tq * W, p.D, W};
    for (int64_t bh = 0; bh < p.BH(); bh++)
        for (int64_t i = 0; i < p.Tq; i++)
            std::memcpy(d.o.head(bh) + i * d.o.st, &d.o_ref[(bh * p.Tq + i) * p.D], size_t(p.D) * 4);
    auto pack = [&](const HeadView& h, int64_t rows, std::vector<float>& dst) {
        dst.resize(size_t(p.BH() * rows * p.D));
        for (int64_t bh = 0; bh < p.BH(); bh++)
            for (int64_t i = 0; i < rows; i++)
                std::memcpy(&dst[(bh * rows + i) * p.D], h.head(bh) + i * h.st, size_t(p.D) * 4);
    };
    pack(d.q, p.Tq, d.qc);
    pack(d.k, p.Tk, d.kc);
    pack(d.v, p.Tk, d.vc);
    pack(d.go, p.Tq, d.goc);
    d.oc = d.o_ref;
    return d;
}

// Returns a function running variant `which`; gradients land in gq, gk, gv as (BH, T, D)
// after `unpack` (variants 2, 3 write one packed (B, T, 3, H, D) gradient).
struct Runner {
    std::function<void()> run;
    std::function<void()> unpack;
};

constexpr int kBf16Variant = 5;


Runner make_runner(int which, Data& d, std::vector<float>& gq, std::vector<float>& gk, std::vector<float>& gv,
                   std::vector<float>& packed) {
    const Problem& p = d.p;
    gq.assign(size_t(p.BH() * p.Tq * p.D), 0.0f);
    gk.assign(size_t(p.BH() * p.Tk * p.D), 0.0f);
    gv.assign(size_t(p.BH() * p.Tk * p.D), 0.0f);
#if defined(__AVX512BF16__)
    if (which == kBf16Variant) {
        // bf16 copies of the inputs; the gradients into one packed bf16 (B, T, 3, H, D)
        struct Buffers {
            std::vector<bf16> qkv, go, o, grads;
        };
        auto b = std::make_shared<Buffers>();
        int64_t T = std::max(p.Tq, p.Tk), W = p.H * p.D;
        b->qkv = to_bf16(d.qkv), b->go = to_bf16(d.go_buf), b->o = to_bf16(d.o_buf);
        b->grads.assign(size_t(p.B * T * 3 * W), 0);
        auto view = [&](std::vector<bf16>& v, int64_t offset, int64_t sb, int64_t st) {
            return Bf16Heads{v.data() + offset, p.H, p.D, sb, st};
        };
        Bf16Heads q = view(b->qkv, 0, T * 3 * W, 3 * W), k = view(b->qkv, W, T * 3 * W, 3 * W),
                  v = view(b->qkv, 2 * W, T * 3 * W, 3 * W), go = view(b->go, 0, p.Tq * W, W),
                  o = view(b->o, 0, p.Tq * W, W), hq = view(b->grads, 0, T * 3 * W, 3 * W),
                  hk = view(b->grads, W, T * 3 * W, 3 * W), hv = view(b->grads, 2 * W, T * 3 * W, 3 * W);
        return {[&d, b, q, k, v, o, go, hq, hk, hv] {
                    tiled_bf16(d.p, q, k, v, o, d.lse_ref.data(), go, hq, hk, hv, d.scale);
                },
                [&d, b, hq, hk, hv, &gq, &gk, &gv] {
                    const Problem& p = d.p;
                    auto widen = [&](const Bf16Heads& h, int64_t bh, int64_t t, float* dst) {
                        for (int64_t c = 0; c < p.D; c++) dst[c] = bf16_bits_to_float(h.head(bh)[t * h.st + c]);
                    };
                    for (int64_t bh = 0; bh < p.BH(); bh++) {
                        for (int64_t i = 0; i < p.Tq; i++) widen(hq, bh, i, &gq[(bh * p.Tq + i) * p.D]);
                        for (int64_t j = 0; j < p.Tk; j++) {
                            widen(hk, bh, j, &gk[(bh * p.Tk + j) * p.D]);
                            widen(hv, bh, j, &gv[(bh * p.Tk + j) * p.D]);
                        }
                    }
                }};
    }
#endif
    if (which == 1)
        return {[&d, &gq, &gk, &gv] {
                    old_scalar(d.p, d.qc.data(), d.kc.data(), d.vc.data(), d.oc.data(), d.lse_ref.data(),
                               d.goc.data(), gq.data(), gk.data(), gv.data(), d.scale);
                },
                [] {}};
    int64_t T = std::max(p.Tq, p.Tk), W = p.H * p.D;
    packed.assign(size_t(p.B * T * 3 * W), 0.0f);
    HeadView hq{packed.data(), p.H, T * 3 * W, p.D, 3 * W}, hk{packed.data() + W, p.H, T * 3 * W, p.D, 3 * W},
        hv{packed.data() + 2 * W, p.H, T * 3 * W, p.D, 3 * W};
    int64_t max_block = which == 4 ? 32 : int64_t(1) << 40;
    bool fast = which >= 3;
    return {[&d, hq, hk, hv, max_block, fast] {
                tiled(d.p, d.q, d.k, d.v, d.o, d.lse_ref.data(), d.go, hq, hk, hv, d.scale, max_block, fast);
            },
            [&d, hq, hk, hv, &gq, &gk, &gv] {
                const Problem& p = d.p;
                for (int64_t bh = 0; bh < p.BH(); bh++) {
                    for (int64_t i = 0; i < p.Tq; i++)
                        std::memcpy(&gq[(bh * p.Tq + i) * p.D], hq.head(bh) + i * hq.st, size_t(p.D) * 4);
                    for (int64_t j = 0; j < p.Tk; j++) {
                        std::memcpy(&gk[(bh * p.Tk + j) * p.D], hk.head(bh) + j * hk.st, size_t(p.D) * 4);
                        std::memcpy(&gv[(bh * p.Tk + j) * p.D], hv.head(bh) + j * hv.st, size_t(p.D) * 4);
                    }
                }
            }};
}

constexpr int kVariants = 5;
const char* kNames[kVariants + 1] = {"", "1 old scalar per row (contiguous)", "2 tiled, as first written",
                                     "3 + register transposes, vector delta", "4 = 3 with query blocks of 32",
                                     "5 bf16, vdpbf16ps products"};

}  // namespace

int main(int argc, char** argv) {
    int only = selected_variant(argc, argv);
    int threads = playground_threads();
    bool ok = true;

    std::printf("correctness (fp32 vs double reference, atol 5e-5 + rtol 5e-5)\n");
    for (const Problem& p : kCheckShapes) {
        Data d = make_data(p, uint64_t(p.Tq * 131 + p.D), true);
        Data d16 = make_data(p, uint64_t(p.Tq * 131 + p.D), true, true);
        for (int w = 1; w <= kVariants; w++) {
            if (only && w != only) continue;
            const bool bf = w == kBf16Variant;
            if (bf && !bf16_variant_runs(p)) continue;
            std::vector<float> gq, gk, gv, packed;
            Runner r = make_runner(w, bf ? d16 : d, gq, gk, gv, packed);
            r.run();
            r.unpack();
            char name[160];
            std::snprintf(name, sizeof name, "variant %d B %ld H %ld Tq %ld Tk %ld D %ld%s", w, long(p.B), long(p.H),
                          long(p.Tq), long(p.Tk), long(p.D), p.causal ? " causal" : "");
            // bf16: P, dS and O rounded to bf16 (2^-9 relative each), the gradients' own rounding
            const float tol = bf ? 2e-2f : 5e-5f;
            const Data& ref = bf ? d16 : d;
            ok &= validate((std::string(name) + " dq").c_str(), gq, ref.gq_ref, tol, tol);
            ok &= validate((std::string(name) + " dk").c_str(), gk, ref.gk_ref, tol, tol);
            ok &= validate((std::string(name) + " dv").c_str(), gv, ref.gv_ref, tol, tol);
            std::vector<float> gq1 = gq, gk1 = gk, gv1 = gv;
            r.run();
            r.unpack();
            ok &= same_bits(name, gq, gq1) && same_bits(name, gk, gk1) && same_bits(name, gv, gv1);
        }
    }

    print_rooflines();
    double peak = benchmark_peak(threads);
    std::printf("benchmark, %d threads (flops: 5 products over the visible keys)\n", threads);
    for (const auto& s : kBenchmarkShapes) {
        std::printf("%s\n", s.what);
        Data d = make_data(s.p, 7, false);
        for (int w = 1; w <= kVariants; w++) {
            if (only && w != only) continue;
            if (w == kBf16Variant && !bf16_variant_runs(s.p)) continue;
            std::vector<float> gq, gk, gv, packed;
            Runner r = make_runner(w, d, gq, gk, gv, packed);
            report_flops(kNames[w], time_kernel(r.run, 5, 0.3), s.p.flops(5), peak);
        }
    }
    return finish("attention_backward", ok);
}
