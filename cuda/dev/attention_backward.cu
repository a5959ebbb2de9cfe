// cuda/dev/attention_backward.cu
// defines: scaled-dot-product attention backward variants. Given q (BH, Tq, D), k, v (BH, Tk, D),
// the forward's out (BH, Tq, D) and lse (BH, Tq), and dO = d loss / d out, they compute dQ, dK, dV:
//   P = exp(scale Q K^T - lse) (causal: key j > query i masked), delta_i = rowsum(dO * O),
//   dV = P^T dO, dP = dO V^T, dS = P * (dP - delta), dQ = scale dS K, dK = scale dS^T Q.
// Every variant is deterministic (no float atomics): each output row is owned by one warp.
//   kernel1: one warp per query row for dQ, one warp per key row for dK/dV, no tiles.
//   kernel2: flash-style tiles (the design of cuda/attention.cu): delta by rows; dK/dV by blocks
//            of 4 keys per warp looping over 32-query tiles (lane = query for the scores, lane =
//            head dim for the sums); dQ by blocks of 4 query rows per warp looping over 32-key
//            tiles. P is recomputed from lse in both, never stored.
//   kernel3: bf16 on the tensor cores (q, k, v, out, dO, dQ, dK, dV bf16; lse, delta fp32;
//            D = 64 only), the flash-attention-2 split: dK and dV by blocks of 64 keys (16 per
//            warp) looping over 64-query tiles, dQ by blocks of 64 queries looping over 64-key
//            tiles; every product a WMMA 16x16x16 bf16 product with fp32 accumulators; P and dS
//            in bf16 in shared memory, as the engine's GEMM path keeps them; dK, dV, dQ summed
//            in accumulator fragments over the loop (no rescale in the backward), so no atomics.
//            Checked on bf16-rounded inputs against the same reference; written without a GPU on
//            2026-12-04, not yet run.
// Benchmark reference: cuBLAS GEMMs with S, P, dP held in global memory.
// Usage: ./attention_backward [variant]   (no argument: all variants)
#include "common.h"
#include "wmma_tiles.h"

// ---------------------------------------------------------------------------------------------
// CPU reference (double): forward then backward

void attention_cpu(const float* q, const float* k, const float* v, const float* dout, float* out, float* lse,
                   float* dq, float* dk, float* dv, int BH, int Tq, int Tk, int D, bool causal, float scale) {
    std::vector<double> P(size_t(Tq) * Tk), dP(size_t(Tq) * Tk);
    for (int bh = 0; bh < BH; bh++) {
        const float* qb = q + size_t(bh) * Tq * D;
        const float* kb = k + size_t(bh) * Tk * D;
        const float* vb = v + size_t(bh) * Tk * D;
        const float* gb = dout + size_t(bh) * Tq * D;
        for (int i = 0; i < Tq; i++) {
            int keys = causal ? std::min(Tk, i + 1) : Tk;
            double m = -INFINITY;
            for (int j = 0; j < Tk; j++) {
                double s = 0;
                for (int d = 0; d < D; d++) s += double(qb[i * D + d]) * kb[j * D + d];
                P[size_t(i) * Tk + j] = j < keys ? s * scale : -INFINITY;
                m = std::max(m, P[size_t(i) * Tk + j]);
            }
            double sum = 0;
            for (int j = 0; j < Tk; j++) sum += (P[size_t(i) * Tk + j] = std::exp(P[size_t(i) * Tk + j] - m));
            for (int j = 0; j < Tk; j++) P[size_t(i) * Tk + j] /= sum;
            lse[size_t(bh) * Tq + i] = float(m + std::log(sum));
            double delta = 0;
            for (int d = 0; d < D; d++) {
                double o = 0;
                for (int j = 0; j < Tk; j++) o += P[size_t(i) * Tk + j] * vb[j * D + d];
                out[(size_t(bh) * Tq + i) * D + d] = float(o);
                delta += o * gb[i * D + d];
            }
            for (int j = 0; j < Tk; j++) {
                double dp = 0;
                for (int d = 0; d < D; d++) dp += double(gb[i * D + d]) * vb[j * D + d];
                dP[size_t(i) * Tk + j] = P[size_t(i) * Tk + j] * (dp - delta) * scale;  // dS, scaled
            }
        }
        for (int i = 0; i < Tq; i++)
            for (int d = 0; d < D; d++) {
                double acc = 0;
                for (int j = 0; j < Tk; j++) acc += dP[size_t(i) * Tk + j] * kb[j * D + d];
                dq[(size_t(bh) * Tq + i) * D + d] = float(acc);
            }
        for (int j = 0; j < Tk; j++)
            for (int d = 0; d < D; d++) {
                double acck = 0, accv = 0;
                for (int i = 0; i < Tq; i++) {
                    acck += dP[size_t(i) * Tk + j] * qb[i * D + d];
                    accv += P[size_t(i) * Tk + j] * gb[i * D + d];
                }
                dk[(size_t(bh) * Tk + j) * D + d] = float(acck);
                dv[(size_t(bh) * Tk + j) * D + d] = float(accv);
            }
    }
}

// ---------------------------------------------------------------------------------------------
// delta_i = sum_d dO[i, d] * O[i, d]: one warp per row

__global__ void attention_delta_kernel(const float* out, const float* dout, float* delta, int64_t rows, int D) {
    int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return;
    float s = 0.0f;
    for (int d = lane; d < D; d += 32) s += out[row * D + d] * dout[row * D + d];
    s = warp_sum(s);
    if (lane == 0) delta[row] = s;
}

// ---------------------------------------------------------------------------------------------
// kernel1: no tiles. Lane c owns dims c, c + 32, ...

template <int kDL>
__global__ void attention_backward_dq_kernel1(const float* q, const float* k, const float* v, const float* dout,
                                              const float* lse, const float* delta, float* dq, int BH, int Tq,
                                              int Tk, int D, bool causal, float scale) {
    int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= int64_t(BH) * Tq) return;
    int64_t bh = row / Tq;
    int i = int(row % Tq);
    float qv[kDL], gv[kDL], acc[kDL];
    for (int c = 0; c < kDL; c++) {
        int d = c * 32 + lane;
        qv[c] = d < D ? q[row * D + d] : 0.0f;
        gv[c] = d < D ? dout[row * D + d] : 0.0f;
        acc[c] = 0.0f;
    }
    int keys = causal ? min(Tk, i + 1) : Tk;
    for (int j = 0; j < keys; j++) {
        const float* kj = k + (bh * Tk + j) * D;
        const float* vj = v + (bh * Tk + j) * D;
        float s = 0.0f, dp = 0.0f;
        for (int c = 0; c < kDL; c++) {
            int d = c * 32 + lane;
            if (d < D) {
                s += qv[c] * kj[d];
                dp += gv[c] * vj[d];
            }
        }
        s = warp_sum(s);
        dp = warp_sum(dp);
        float p = expf(s * scale - lse[row]);
        float ds = p * (dp - delta[row]) * scale;
        for (int c = 0; c < kDL; c++) {
            int d = c * 32 + lane;
            if (d < D) acc[c] += ds * kj[d];
        }
    }
    for (int c = 0; c < kDL; c++) {
        int d = c * 32 + lane;
        if (d < D) dq[row * D + d] = acc[c];
    }
}

template <int kDL>
__global__ void attention_backward_dkdv_kernel1(const float* q, const float* k, const float* v, const float* dout,
                                                const float* lse, const float* delta, float* dk, float* dv, int BH,
                                                int Tq, int Tk, int D, bool causal, float scale) {
    int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;  // bh * Tk + j
    int lane = threadIdx.x % 32;
    if (row >= int64_t(BH) * Tk) return;
    int64_t bh = row / Tk;
    int j = int(row % Tk);
    float kv[kDL], vv[kDL], acck[kDL], accv[kDL];
    for (int c = 0; c < kDL; c++) {
        int d = c * 32 + lane;
        kv[c] = d < D ? k[row * D + d] : 0.0f;
        vv[c] = d < D ? v[row * D + d] : 0.0f;
        acck[c] = accv[c] = 0.0f;
    }
    for (int i = causal ? j : 0; i < Tq; i++) {
        const float* qi = q + (bh * Tq + i) * D;
        const float* gi = dout + (bh * Tq + i) * D;
        float s = 0.0f, dp = 0.0f;
        for (int c = 0; c < kDL; c++) {
            int d = c * 32 + lane;
            if (d < D) {
                s += kv[c] * qi[d];
                dp += vv[c] * gi[d];
            }
        }
        s = warp_sum(s);
        dp = warp_sum(dp);
        float p = expf(s * scale - lse[bh * Tq + i]);
        float ds = p * (dp - delta[bh * Tq + i]) * scale;
        for (int c = 0; c < kDL; c++) {
            int d = c * 32 + lane;
            if (d < D) {
                acck[c] += ds * qi[d];
                accv[c] += p * gi[d];
            }
        }
    }
    for (int c = 0; c < kDL; c++) {
        int d = c * 32 + lane;
        if (d < D) {
            dk[row * D + d] = acck[c];
            dv[row * D + d] = accv[c];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kernel2: tiled. Padded rows (Dp + 1) are the ones read with lane = row (bank-conflict free).

constexpr int kTile = 32;   // keys per tile in the dQ kernel, queries per tile in the dK/dV kernel
constexpr int kPerWarp = 4; // query rows (dQ) or keys (dK/dV) per warp

// dQ: block = warps * 4 query rows. Shared: Qs, dOs (rows, Dp) | Ks, Vs (32, Dp + 1)
template <int kDL>
__global__ void attention_backward_dq_kernel2(const float* __restrict__ q, const float* __restrict__ k,
                                              const float* __restrict__ v, const float* __restrict__ dout,
                                              const float* __restrict__ lse, const float* __restrict__ delta,
                                              float* __restrict__ dq, int Tq, int Tk, int D, int n_qtiles,
                                              bool causal, float scale) {
    constexpr int Dp = kDL * 32;
    extern __shared__ __align__(16) float smem[];
    const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int query_tile = warps * kPerWarp;
    float* Qs = smem;
    float* dOs = Qs + query_tile * Dp;
    float* Ks = dOs + query_tile * Dp;
    float* Vs = Ks + kTile * (Dp + 1);
    const int64_t bh = blockIdx.x / n_qtiles;
    const int q0 = (blockIdx.x % n_qtiles) * query_tile;
    const float* qb = q + bh * Tq * D;
    const float* gb = dout + bh * Tq * D;
    const float* kb = k + bh * Tk * D;
    const float* vb = v + bh * Tk * D;
    for (int idx = threadIdx.x; idx < query_tile * Dp; idx += blockDim.x) {
        int r = idx / Dp, d = idx % Dp, i = q0 + r;
        bool in = i < Tq && d < D;
        Qs[idx] = in ? qb[int64_t(i) * D + d] : 0.0f;
        dOs[idx] = in ? gb[int64_t(i) * D + d] : 0.0f;
    }
    const int row0 = warp * kPerWarp;
    float row_lse[kPerWarp], row_delta[kPerWarp], acc[kPerWarp][kDL];
    for (int r = 0; r < kPerWarp; r++) {
        int i = q0 + row0 + r;
        row_lse[r] = i < Tq ? lse[bh * Tq + i] : 0.0f;
        row_delta[r] = i < Tq ? delta[bh * Tq + i] : 0.0f;
        for (int c = 0; c < kDL; c++) acc[r][c] = 0.0f;
    }
    const int q_last = min(Tq, q0 + query_tile) - 1;
    const int k_end = causal ? min(Tk, q_last + 1) : Tk;
    for (int k0 = 0; k0 < k_end; k0 += kTile) {
        __syncthreads();
        for (int idx = threadIdx.x; idx < kTile * Dp; idx += blockDim.x) {
            int j = idx / Dp, d = idx % Dp, key = k0 + j;
            bool in = key < Tk && d < D;
            Ks[j * (Dp + 1) + d] = in ? kb[int64_t(key) * D + d] : 0.0f;
            Vs[j * (Dp + 1) + d] = in ? vb[int64_t(key) * D + d] : 0.0f;
        }
        __syncthreads();
        // lane = key: s = q . k, dp = dO . v
        float s[kPerWarp], dp[kPerWarp];
        for (int r = 0; r < kPerWarp; r++) s[r] = dp[r] = 0.0f;
        const float* krow = Ks + lane * (Dp + 1);
        const float* vrow = Vs + lane * (Dp + 1);
#pragma unroll 8
        for (int d = 0; d < Dp; d++) {
            float kv = krow[d], vv = vrow[d];
#pragma unroll
            for (int r = 0; r < kPerWarp; r++) {
                s[r] += Qs[(row0 + r) * Dp + d] * kv;
                dp[r] += dOs[(row0 + r) * Dp + d] * vv;
            }
        }
        const int key = k0 + lane;
#pragma unroll
        for (int r = 0; r < kPerWarp; r++) {
            int i = q0 + row0 + r;
            bool visible = i < Tq && key < Tk && (!causal || key <= i);
            float p = visible ? expf(s[r] * scale - row_lse[r]) : 0.0f;
            s[r] = p * (dp[r] - row_delta[r]) * scale;  // dS
        }
        // lane = head dim: dQ += dS K
        const int jn = min(kTile, k_end - k0);
        for (int j = 0; j < jn; j++) {
            float kj[kDL];
#pragma unroll
            for (int c = 0; c < kDL; c++) kj[c] = Ks[j * (Dp + 1) + c * 32 + lane];
#pragma unroll
            for (int r = 0; r < kPerWarp; r++) {
                float dsj = __shfl_sync(0xffffffffu, s[r], j);
#pragma unroll
                for (int c = 0; c < kDL; c++) acc[r][c] += dsj * kj[c];
            }
        }
    }
    for (int r = 0; r < kPerWarp; r++) {
        int i = q0 + row0 + r;
        if (i >= Tq) continue;
        for (int c = 0; c < kDL; c++) {
            int d = c * 32 + lane;
            if (d < D) dq[(bh * Tq + i) * D + d] = acc[r][c];
        }
    }
}

// dK, dV: block = warps * 4 keys. Shared: Ks, Vs (keys, Dp) | Qs, dOs (32, Dp + 1) | lse, delta (32)
template <int kDL>
__global__ void attention_backward_dkdv_kernel2(const float* __restrict__ q, const float* __restrict__ k,
                                                const float* __restrict__ v, const float* __restrict__ dout,
                                                const float* __restrict__ lse, const float* __restrict__ delta,
                                                float* __restrict__ dk, float* __restrict__ dv, int Tq, int Tk,
                                                int D, int n_ktiles, bool causal, float scale) {
    constexpr int Dp = kDL * 32;
    extern __shared__ __align__(16) float smem[];
    const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int key_tile = warps * kPerWarp;
    float* Ks = smem;
    float* Vs = Ks + key_tile * Dp;
    float* Qs = Vs + key_tile * Dp;
    float* dOs = Qs + kTile * (Dp + 1);
    float* lse_s = dOs + kTile * (Dp + 1);
    float* delta_s = lse_s + kTile;
    const int64_t bh = blockIdx.x / n_ktiles;
    const int k0 = (blockIdx.x % n_ktiles) * key_tile;
    const float* qb = q + bh * Tq * D;
    const float* gb = dout + bh * Tq * D;
    const float* kb = k + bh * Tk * D;
    const float* vb = v + bh * Tk * D;
    for (int idx = threadIdx.x; idx < key_tile * Dp; idx += blockDim.x) {
        int r = idx / Dp, d = idx % Dp, key = k0 + r;
        bool in = key < Tk && d < D;
        Ks[idx] = in ? kb[int64_t(key) * D + d] : 0.0f;
        Vs[idx] = in ? vb[int64_t(key) * D + d] : 0.0f;
    }
    const int key_row0 = warp * kPerWarp;
    float acck[kPerWarp][kDL], accv[kPerWarp][kDL];
    for (int r = 0; r < kPerWarp; r++)
        for (int c = 0; c < kDL; c++) acck[r][c] = accv[r][c] = 0.0f;
    // causal: query i sees key j iff j <= i, so queries before k0 contribute nothing
    const int q_begin = causal ? (k0 / kTile) * kTile : 0;
    for (int q0 = q_begin; q0 < Tq; q0 += kTile) {
        __syncthreads();
        for (int idx = threadIdx.x; idx < kTile * Dp; idx += blockDim.x) {
            int j = idx / Dp, d = idx % Dp, i = q0 + j;
            bool in = i < Tq && d < D;
            Qs[j * (Dp + 1) + d] = in ? qb[int64_t(i) * D + d] : 0.0f;
            dOs[j * (Dp + 1) + d] = in ? gb[int64_t(i) * D + d] : 0.0f;
        }
        if (threadIdx.x < kTile) {
            int i = q0 + threadIdx.x;
            lse_s[threadIdx.x] = i < Tq ? lse[bh * Tq + i] : 0.0f;
            delta_s[threadIdx.x] = i < Tq ? delta[bh * Tq + i] : 0.0f;
        }
        __syncthreads();
        // lane = query: s = q . k, dp = dO . v for this warp's keys
        float p[kPerWarp], ds[kPerWarp];
        for (int r = 0; r < kPerWarp; r++) p[r] = ds[r] = 0.0f;
        const float* qrow = Qs + lane * (Dp + 1);
        const float* grow = dOs + lane * (Dp + 1);
#pragma unroll 8
        for (int d = 0; d < Dp; d++) {
            float qv = qrow[d], gv = grow[d];
#pragma unroll
            for (int r = 0; r < kPerWarp; r++) {
                p[r] += qv * Ks[(key_row0 + r) * Dp + d];
                ds[r] += gv * Vs[(key_row0 + r) * Dp + d];
            }
        }
        const int i = q0 + lane;
#pragma unroll
        for (int r = 0; r < kPerWarp; r++) {
            int key = k0 + key_row0 + r;
            bool visible = i < Tq && key < Tk && (!causal || key <= i);
            float pr = visible ? expf(p[r] * scale - lse_s[lane]) : 0.0f;
            ds[r] = pr * (ds[r] - delta_s[lane]) * scale;
            p[r] = pr;
        }
        // lane = head dim: dV += P^T dO, dK += dS^T Q
        const int jn = min(kTile, Tq - q0);
        for (int j = 0; j < jn; j++) {
            float qj[kDL], gj[kDL];
#pragma unroll
            for (int c = 0; c < kDL; c++) {
                qj[c] = Qs[j * (Dp + 1) + c * 32 + lane];
                gj[c] = dOs[j * (Dp + 1) + c * 32 + lane];
            }
#pragma unroll
            for (int r = 0; r < kPerWarp; r++) {
                float pj = __shfl_sync(0xffffffffu, p[r], j);
                float dsj = __shfl_sync(0xffffffffu, ds[r], j);
#pragma unroll
                for (int c = 0; c < kDL; c++) {
                    accv[r][c] += pj * gj[c];
                    acck[r][c] += dsj * qj[c];
                }
            }
        }
    }
    for (int r = 0; r < kPerWarp; r++) {
        int key = k0 + key_row0 + r;
        if (key >= Tk) continue;
        for (int c = 0; c < kDL; c++) {
            int d = c * 32 + lane;
            if (d < D) {
                dk[(bh * Tk + key) * D + d] = acck[r][c];
                dv[(bh * Tk + key) * D + d] = accv[r][c];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kernel3: bf16 on the tensor cores (see the top of the file)

namespace tc {

// four tiles of 64 rows, two per-warp bf16 (16 x kLd) buffers each, a per-warp fp32 scratch, and
// 2 x 64 floats (lse, delta)
constexpr size_t kSmemBytes = size_t(4 * kTile + 2 * kTile) * kLd * sizeof(bf16) + size_t(kTile) * kLdF * sizeof(float) +
                              2 * kTile * sizeof(float);

// delta_i = sum_d dO[i, d] O[i, d] (fp32), one warp per row
__global__ void delta_kernel(const bf16* out, const bf16* dout, float* delta, int64_t rows) {
    const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    float s = 0.0f;
    for (int d = lane; d < kD; d += 32) s += __bfloat162float(out[row * kD + d]) * __bfloat162float(dout[row * kD + d]);
    s = warp_sum(s);
    if (lane == 0) delta[row] = s;
}

// Writes a warp's 16 gradient rows (fp32 in scratch, row r = lane / 2, half h) times `mul` as bf16.
__device__ __forceinline__ void write_rows(bf16* dst_rows, int64_t first_row, int valid_rows, const float* scratch,
                                           float mul) {
    const int lane = threadIdx.x % 32, r = lane / 2, h = lane % 2;
    if (r >= valid_rows) return;
    const float* src = scratch + r * kLdF + h * 32;
    bf16* dst = dst_rows + (first_row + r) * kD + h * 32;
#pragma unroll
    for (int c = 0; c < 32; c++) dst[c] = __float2bfloat16(src[c] * mul);
}

// dK, dV: grid (ceil(Tk / 64), BH), 128 threads, kSmemBytes
__global__ void __launch_bounds__(kWarps * 32)
    attention_backward_dkdv_kernel3(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                                    const bf16* __restrict__ dout, const float* __restrict__ lse,
                                    const float* __restrict__ delta, bf16* __restrict__ dk, bf16* __restrict__ dv,
                                    int Tq, int Tk, bool causal, float scale) {
    extern __shared__ __align__(128) unsigned char smem[];
    bf16* sk = reinterpret_cast<bf16*>(smem);
    bf16* sv = sk + kTile * kLd;
    bf16* sq = sv + kTile * kLd;
    bf16* sdo = sq + kTile * kLd;
    bf16* sp = sdo + kTile * kLd;    // per warp: P^T (16 keys x 64 queries)
    bf16* sds = sp + kTile * kLd;    // per warp: dS^T
    float* sf = reinterpret_cast<float*>(sds + kTile * kLd);  // per warp: S^T, then dP^T
    float* slse = sf + kTile * kLdF;
    float* sdelta = slse + kTile;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, h = lane % 2;
    const int64_t bh = blockIdx.y;
    const int k0 = blockIdx.x * kTile;
    const int kj = k0 + warp * 16 + r;  // this lane's key

    load_tile(sk, k + (bh * Tk + k0) * kD, min(kTile, Tk - k0));
    load_tile(sv, v + (bh * Tk + k0) * kD, min(kTile, Tk - k0));
    const bf16* wk = sk + warp * 16 * kLd;
    const bf16* wv = sv + warp * 16 * kLd;
    bf16* wp = sp + warp * 16 * kLd;
    bf16* wds = sds + warp * 16 * kLd;
    float* wf = sf + warp * 16 * kLdF;
    FragC dk_acc[4], dv_acc[4];
    zero(dk_acc);
    zero(dv_acc);

    // causal: queries before this key tile see none of its keys
    for (int q0 = causal ? k0 : 0; q0 < Tq; q0 += kTile) {
        __syncthreads();  // the previous query tile is used up
        load_tile(sq, q + (bh * Tq + q0) * kD, min(kTile, Tq - q0));
        load_tile(sdo, dout + (bh * Tq + q0) * kD, min(kTile, Tq - q0));
        for (int i = threadIdx.x; i < kTile; i += blockDim.x) {
            const bool valid = q0 + i < Tq;
            slse[i] = valid ? lse[bh * Tq + q0 + i] : INFINITY;  // exp(s - inf) = 0
            sdelta[i] = valid ? delta[bh * Tq + q0 + i] : 0.0f;
        }
        __syncthreads();

        FragC acc[4];
        zero(acc);
        mma_16x64x64<true>(acc, wk, sq);  // S^T (16 keys x 64 queries) = K_w Q^T
        store(wf, acc);
        __syncwarp();
        float p[32];
#pragma unroll
        for (int c = 0; c < 32; c++) {
            const int qi = q0 + h * 32 + c;
            const bool visible = kj < Tk && qi < Tq && (!causal || kj <= qi);
            p[c] = visible ? __expf(wf[r * kLdF + h * 32 + c] * scale - slse[h * 32 + c]) : 0.0f;
            wp[r * kLd + h * 32 + c] = __float2bfloat16(p[c]);
        }
        __syncwarp();
        mma_16x64x64<false>(dv_acc, wp, sdo);  // dV_w += P^T dO
        zero(acc);
        mma_16x64x64<true>(acc, wv, sdo);  // dP^T (16 keys x 64 queries) = V_w dO^T
        store(wf, acc);
        __syncwarp();
#pragma unroll
        for (int c = 0; c < 32; c++)
            wds[r * kLd + h * 32 + c] = __float2bfloat16(p[c] * (wf[r * kLdF + h * 32 + c] - sdelta[h * 32 + c]));
        __syncwarp();
        mma_16x64x64<false>(dk_acc, wds, sq);  // dK_w += dS^T Q
    }

    const int valid_keys = min(16, Tk - (k0 + warp * 16));
    __syncwarp();
    store(wf, dk_acc);
    __syncwarp();
    write_rows(dk + bh * Tk * kD, k0 + warp * 16, valid_keys, wf, scale);
    __syncwarp();
    store(wf, dv_acc);
    __syncwarp();
    write_rows(dv + bh * Tk * kD, k0 + warp * 16, valid_keys, wf, 1.0f);
}

// dQ: grid (ceil(Tq / 64), BH), 128 threads, kSmemBytes
__global__ void __launch_bounds__(kWarps * 32)
    attention_backward_dq_kernel3(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                                  const bf16* __restrict__ dout, const float* __restrict__ lse,
                                  const float* __restrict__ delta, bf16* __restrict__ dq, int Tq, int Tk, bool causal,
                                  float scale) {
    extern __shared__ __align__(128) unsigned char smem[];
    bf16* sq = reinterpret_cast<bf16*>(smem);
    bf16* sdo = sq + kTile * kLd;
    bf16* sk = sdo + kTile * kLd;
    bf16* sv = sk + kTile * kLd;
    bf16* sds = sv + kTile * kLd;  // per warp: dS (16 queries x 64 keys)
    float* sf = reinterpret_cast<float*>(sds + 2 * kTile * kLd);  // per warp: S, then dP
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, h = lane % 2;
    const int64_t bh = blockIdx.y;
    const int q0 = blockIdx.x * kTile;
    const int qi = q0 + warp * 16 + r;  // this lane's query
    const float row_lse = qi < Tq ? lse[bh * Tq + qi] : INFINITY, row_delta = qi < Tq ? delta[bh * Tq + qi] : 0.0f;

    load_tile(sq, q + (bh * Tq + q0) * kD, min(kTile, Tq - q0));
    load_tile(sdo, dout + (bh * Tq + q0) * kD, min(kTile, Tq - q0));
    const bf16* wq = sq + warp * 16 * kLd;
    const bf16* wdo = sdo + warp * 16 * kLd;
    bf16* wds = sds + warp * 16 * kLd;
    float* wf = sf + warp * 16 * kLdF;
    FragC dq_acc[4];
    zero(dq_acc);

    const int key_end = causal ? min(Tk, q0 + kTile) : Tk;
    for (int k0 = 0; k0 < key_end; k0 += kTile) {
        __syncthreads();  // the previous key tile is used up
        load_tile(sk, k + (bh * Tk + k0) * kD, min(kTile, Tk - k0));
        load_tile(sv, v + (bh * Tk + k0) * kD, min(kTile, Tk - k0));
        __syncthreads();

        FragC acc[4];
        zero(acc);
        mma_16x64x64<true>(acc, wq, sk);  // S (16 queries x 64 keys) = Q_w K^T
        store(wf, acc);
        __syncwarp();
        float p[32];
#pragma unroll
        for (int c = 0; c < 32; c++) {
            const int kj = k0 + h * 32 + c;
            const bool visible = kj < Tk && qi < Tq && (!causal || kj <= qi);
            p[c] = visible ? __expf(wf[r * kLdF + h * 32 + c] * scale - row_lse) : 0.0f;
        }
        __syncwarp();
        zero(acc);
        mma_16x64x64<true>(acc, wdo, sv);  // dP (16 queries x 64 keys) = dO_w V^T
        store(wf, acc);
        __syncwarp();
#pragma unroll
        for (int c = 0; c < 32; c++)
            wds[r * kLd + h * 32 + c] = __float2bfloat16(p[c] * (wf[r * kLdF + h * 32 + c] - row_delta));
        __syncwarp();
        mma_16x64x64<false>(dq_acc, wds, sk);  // dQ_w += dS K
    }

    __syncwarp();
    store(wf, dq_acc);
    __syncwarp();
    write_rows(dq + bh * Tq * kD, q0 + warp * 16, min(16, Tq - (q0 + warp * 16)), wf, scale);
}

struct Buffers16 {
    const bf16 *q, *k, *v, *out, *dout;
    const float* lse;
    float* delta;
    bf16 *dq, *dk, *dv;
};

void attention_backward_tc(const Buffers16& b, int BH, int Tq, int Tk, bool causal, float scale) {
    static bool configured = false;
    if (!configured) {
        CUDA_CHECK(cudaFuncSetAttribute(attention_backward_dkdv_kernel3, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(kSmemBytes)));
        CUDA_CHECK(cudaFuncSetAttribute(attention_backward_dq_kernel3, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(kSmemBytes)));
        configured = true;
    }
    const int64_t rows = int64_t(BH) * Tq;
    delta_kernel<<<unsigned(ceil_div<int64_t>(rows, 8)), 256>>>(b.out, b.dout, b.delta, rows);
    CUDA_CHECK_LAUNCH();
    attention_backward_dkdv_kernel3<<<dim3(unsigned(ceil_div(Tk, kTile)), unsigned(BH)), kWarps * 32, kSmemBytes>>>(
        b.q, b.k, b.v, b.dout, b.lse, b.delta, b.dk, b.dv, Tq, Tk, causal, scale);
    CUDA_CHECK_LAUNCH();
    attention_backward_dq_kernel3<<<dim3(unsigned(ceil_div(Tq, kTile)), unsigned(BH)), kWarps * 32, kSmemBytes>>>(
        b.q, b.k, b.v, b.dout, b.lse, b.delta, b.dq, Tq, Tk, causal, scale);
    CUDA_CHECK_LAUNCH();
}

}  // namespace tc

// ---------------------------------------------------------------------------------------------
// launchers

struct Buffers {
    const float *q, *k, *v, *out, *dout, *lse;
    float *delta, *dq, *dk, *dv;
};

template <int kDL>
void attention_backward_dl(int variant, const Buffers& b, int BH, int Tq, int Tk, int D, bool causal, float scale,
                           int warps) {
    int64_t qrows = int64_t(BH) * Tq, krows = int64_t(BH) * Tk;
    attention_delta_kernel<<<unsigned(ceil_div<int64_t>(qrows, 4)), 128>>>(b.out, b.dout, b.delta, qrows, D);
    CUDA_CHECK_LAUNCH();
    if (variant == 1) {
        attention_backward_dq_kernel1<kDL><<<unsigned(ceil_div<int64_t>(qrows, warps)), warps * 32>>>(
            b.q, b.k, b.v, b.dout, b.lse, b.delta, b.dq, BH, Tq, Tk, D, causal, scale);
        CUDA_CHECK_LAUNCH();
        attention_backward_dkdv_kernel1<kDL><<<unsigned(ceil_div<int64_t>(krows, warps)), warps * 32>>>(
            b.q, b.k, b.v, b.dout, b.lse, b.delta, b.dk, b.dv, BH, Tq, Tk, D, causal, scale);
        CUDA_CHECK_LAUNCH();
        return;
    }
    const int Dp = kDL * 32, tile = warps * kPerWarp;
    int n_qtiles = ceil_div(Tq, tile), n_ktiles = ceil_div(Tk, tile);
    size_t smem_dq = (2 * size_t(tile) * Dp + 2 * size_t(kTile) * (Dp + 1)) * sizeof(float);
    size_t smem_dkdv = (2 * size_t(tile) * Dp + 2 * size_t(kTile) * (Dp + 1) + 2 * kTile) * sizeof(float);
    CUDA_CHECK(cudaFuncSetAttribute(attention_backward_dq_kernel2<kDL>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    int(smem_dq)));
    CUDA_CHECK(cudaFuncSetAttribute(attention_backward_dkdv_kernel2<kDL>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem_dkdv)));
    attention_backward_dkdv_kernel2<kDL><<<unsigned(int64_t(BH) * n_ktiles), warps * 32, smem_dkdv>>>(
        b.q, b.k, b.v, b.dout, b.lse, b.delta, b.dk, b.dv, Tq, Tk, D, n_ktiles, causal, scale);
    CUDA_CHECK_LAUNCH();
    attention_backward_dq_kernel2<kDL><<<unsigned(int64_t(BH) * n_qtiles), warps * 32, smem_dq>>>(
        b.q, b.k, b.v, b.dout, b.lse, b.delta, b.dq, Tq, Tk, D, n_qtiles, causal, scale);
    CUDA_CHECK_LAUNCH();
}

void attention_backward(int variant, const Buffers& b, int BH, int Tq, int Tk, int D, bool causal, float scale,
                        int warps) {
    if (D <= 32) attention_backward_dl<1>(variant, b, BH, Tq, Tk, D, causal, scale, warps);
    else if (D <= 64) attention_backward_dl<2>(variant, b, BH, Tq, Tk, D, causal, scale, warps);
    else if (D <= 128) attention_backward_dl<4>(variant, b, BH, Tq, Tk, D, causal, scale, warps);
    else attention_backward_dl<8>(variant, b, BH, Tq, Tk, D, causal, scale, warps);
}

// cuBLAS reference: S = Q K^T, P = exp(scale S - lse), dV = P^T dO, dP = dO V^T, dS = P (dP - delta)
// scale, dQ = dS K, dK = dS^T Q; S/P and dP/dS held in global memory.
__global__ void probabilities_and_dscores(float* S, float* dP, const float* lse, const float* delta, int64_t rows,
                                          int Tq, int Tk, bool causal, float scale) {
    int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= rows * Tk) return;
    int64_t row = idx / Tk;
    int j = int(idx % Tk), i = int(row % Tq);
    float p = (!causal || j <= i) ? expf(S[idx] * scale - lse[row]) : 0.0f;
    S[idx] = p;
    dP[idx] = p * (dP[idx] - delta[row]) * scale;
}

struct CublasAttentionBackward {
    cublasHandle_t handle;
    float *S = nullptr, *dP = nullptr;
    CublasAttentionBackward() { CUBLAS_CHECK(cublasCreate(&handle)); }
    ~CublasAttentionBackward() {
        cublasDestroy(handle);
        if (S) cudaFree(S);
        if (dP) cudaFree(dP);
    }
    void operator()(const Buffers& b, int BH, int Tq, int Tk, int D, bool causal, float scale) {
        size_t n = size_t(BH) * Tq * Tk;
        if (!S) {
            S = device_alloc<float>(n);
            dP = device_alloc<float>(n);
        }
        const float one = 1.0f, zero = 0.0f;
        const int64_t sq = int64_t(Tq) * D, sk = int64_t(Tk) * D, ss = int64_t(Tq) * Tk;
        int64_t rows = int64_t(BH) * Tq;
        attention_delta_kernel<<<unsigned(ceil_div<int64_t>(rows, 4)), 128>>>(b.out, b.dout, b.delta, rows, D);
        CUDA_CHECK_LAUNCH();
        // (column-major views of row-major matrices; see attention_forward.cu)
        // S (Tq, Tk) = Q K^T
        CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_T, CUBLAS_OP_N, Tk, Tq, D, &one, b.k, D, sk, b.q, D,
                                               sq, &zero, S, Tk, ss, BH));
        // dP (Tq, Tk) = dO V^T
        CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_T, CUBLAS_OP_N, Tk, Tq, D, &one, b.v, D, sk, b.dout,
                                               D, sq, &zero, dP, Tk, ss, BH));
        probabilities_and_dscores<<<unsigned(ceil_div<int64_t>(int64_t(n), 256)), 256>>>(S, dP, b.lse, b.delta, rows,
                                                                                        Tq, Tk, causal, scale);
        CUDA_CHECK_LAUNCH();
        // dV (Tk, D) = P^T dO: column-major dV^T (D, Tk) = dO^T (D, Tq) P (Tq, Tk)
        CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_T, D, Tk, Tq, &one, b.dout, D, sq, S,
                                               Tk, ss, &zero, b.dv, D, sk, BH));
        // dK (Tk, D) = dS^T Q
        CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_T, D, Tk, Tq, &one, b.q, D, sq, dP,
                                               Tk, ss, &zero, b.dk, D, sk, BH));
        // dQ (Tq, D) = dS K: column-major dQ^T (D, Tq) = K^T (D, Tk) dS^T (Tk, Tq)
        CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, D, Tq, Tk, &one, b.k, D, sk, dP,
                                               Tk, ss, &zero, b.dq, D, sq, BH));
    }
};

int main(int argc, char** argv) {
    require_cuda_device_or_exit("attention_backward");
    const int variant = selected_variant(argc, argv);
    const int n_variants = 2;
    bool ok = true;

    struct Case { int BH, Tq, Tk, D; bool causal; };
    const Case cases[] = {{1, 1, 1, 1, false},   {2, 7, 7, 16, true},     {3, 77, 77, 64, true},
                          {2, 50, 50, 64, false}, {1, 33, 65, 128, false}, {1, 65, 33, 128, true},
                          {2, 70, 70, 80, true},  {1, 40, 70, 256, true},  {2, 5, 100, 32, false},
                          {2, 197, 197, 64, false}, {1, 130, 70, 64, true}, {1, 33, 129, 64, false}};
    for (const Case& t : cases) {
        size_t nq = size_t(t.BH) * t.Tq * t.D, nk = size_t(t.BH) * t.Tk * t.D;
        std::vector<float> q = random_normal(nq, 31), k = random_normal(nk, 32), v = random_normal(nk, 33);
        std::vector<float> dout = random_normal(nq, 34);
        std::vector<float> out(nq), lse(size_t(t.BH) * t.Tq), dq(nq), dk(nk), dv(nk);
        float scale = 1.0f / std::sqrt(float(t.D));
        attention_cpu(q.data(), k.data(), v.data(), dout.data(), out.data(), lse.data(), dq.data(), dk.data(),
                      dv.data(), t.BH, t.Tq, t.Tk, t.D, t.causal, scale);
        Buffers b;
        b.q = device_from_host(q);
        b.k = device_from_host(k);
        b.v = device_from_host(v);
        b.out = device_from_host(out);
        b.dout = device_from_host(dout);
        b.lse = device_from_host(lse);
        b.delta = device_alloc<float>(lse.size());
        b.dq = device_alloc<float>(nq);
        b.dk = device_alloc<float>(nk);
        b.dv = device_alloc<float>(nk);
        float* dk_again = device_alloc<float>(nk);
        // gradients sum up to Tq or Tk terms: absolute tolerance grows with the length
        float atol = 1e-5f * std::sqrt(float(std::max(t.Tq, t.Tk))) * 4;
        for (int var = 1; var <= n_variants; var++) {
            if (variant && var != variant) continue;
            for (int warps : {1, 2, 4, 8}) {
                CUDA_CHECK(cudaMemset(b.dq, 0, nq * sizeof(float)));
                CUDA_CHECK(cudaMemset(b.dk, 0, nk * sizeof(float)));
                CUDA_CHECK(cudaMemset(b.dv, 0, nk * sizeof(float)));
                attention_backward(var, b, t.BH, t.Tq, t.Tk, t.D, t.causal, scale, warps);
                CUDA_CHECK(cudaDeviceSynchronize());
                bool good = validate_device("dq", b.dq, dq.data(), nq, atol, 1e-3f) &&
                            validate_device("dk", b.dk, dk.data(), nk, atol, 1e-3f) &&
                            validate_device("dv", b.dv, dv.data(), nk, atol, 1e-3f);
                CUDA_CHECK(cudaMemcpy(dk_again, b.dk, nk * sizeof(float), cudaMemcpyDeviceToDevice));
                attention_backward(var, b, t.BH, t.Tq, t.Tk, t.D, t.causal, scale, warps);
                CUDA_CHECK(cudaDeviceSynchronize());
                good &= same_bits("dk", b.dk, dk_again, nk);
                if (!good)
                    std::printf("kernel%d failed at BH=%d Tq=%d Tk=%d D=%d causal=%d warps=%d\n", var, t.BH, t.Tq,
                                t.Tk, t.D, int(t.causal), warps);
                ok &= good;
            }
        }
        {
            CublasAttentionBackward reference;
            reference(b, t.BH, t.Tq, t.Tk, t.D, t.causal, scale);
            CUDA_CHECK(cudaDeviceSynchronize());
            bool good = validate_device("dq", b.dq, dq.data(), nq, atol, 1e-3f) &&
                        validate_device("dk", b.dk, dk.data(), nk, atol, 1e-3f) &&
                        validate_device("dv", b.dv, dv.data(), nk, atol, 1e-3f);
            if (!good) std::printf("cuBLAS reference failed at BH=%d Tq=%d Tk=%d D=%d\n", t.BH, t.Tq, t.Tk, t.D);
            ok &= good;
        }
        for (const float* p : {b.q, b.k, b.v, b.out, b.dout, b.lse}) CUDA_CHECK(cudaFree(const_cast<float*>(p)));
        for (float* p : {b.delta, b.dq, b.dk, b.dv, dk_again}) CUDA_CHECK(cudaFree(p));

        // kernel3 on the bf16-rounded inputs (D = 64 only), against the reference on the same values
        if (t.D == tc::kD && (variant == 0 || variant == 3)) {
            std::vector<float> q16 = tc::rounded_to_bf16(q), k16 = tc::rounded_to_bf16(k), v16 = tc::rounded_to_bf16(v);
            std::vector<float> do16 = tc::rounded_to_bf16(dout);
            attention_cpu(q16.data(), k16.data(), v16.data(), do16.data(), out.data(), lse.data(), dq.data(), dk.data(),
                          dv.data(), t.BH, t.Tq, t.Tk, t.D, t.causal, scale);
            tc::Buffers16 c;
            c.q = tc::device_bf16(q16);
            c.k = tc::device_bf16(k16);
            c.v = tc::device_bf16(v16);
            c.out = tc::device_bf16(out);  // the forward's output as the engine keeps it: bf16
            c.dout = tc::device_bf16(do16);
            c.lse = device_from_host(lse);
            c.delta = device_alloc<float>(lse.size());
            c.dq = device_alloc<tc::bf16>(nq);
            c.dk = device_alloc<tc::bf16>(nk);
            c.dv = device_alloc<tc::bf16>(nk);
            tc::bf16* dk16_again = device_alloc<tc::bf16>(nk);
            tc::attention_backward_tc(c, t.BH, t.Tq, t.Tk, t.causal, scale);
            CUDA_CHECK(cudaDeviceSynchronize());
            // bf16 P, dS and outputs: about 1% of each term, over up to T terms
            float atol16 = 1e-2f * std::sqrt(float(std::max(t.Tq, t.Tk)) / 16.0f);
            bool good = validate_device_bf16("dq (kernel3)", c.dq, dq.data(), nq, atol16, 2e-2f) &&
                        validate_device_bf16("dk (kernel3)", c.dk, dk.data(), nk, atol16, 2e-2f) &&
                        validate_device_bf16("dv (kernel3)", c.dv, dv.data(), nk, atol16, 2e-2f);
            CUDA_CHECK(cudaMemcpy(dk16_again, c.dk, nk * 2, cudaMemcpyDeviceToDevice));
            tc::attention_backward_tc(c, t.BH, t.Tq, t.Tk, t.causal, scale);
            CUDA_CHECK(cudaDeviceSynchronize());
            good &= same_bits("dk (kernel3)", c.dk, dk16_again, nk);
            if (!good) std::printf("kernel3 failed at BH=%d Tq=%d Tk=%d causal=%d\n", t.BH, t.Tq, t.Tk, int(t.causal));
            ok &= good;
            for (const void* p : {(const void*)c.q, (const void*)c.k, (const void*)c.v, (const void*)c.out,
                                  (const void*)c.dout, (const void*)c.lse, (const void*)c.delta, (const void*)c.dq,
                                  (const void*)c.dk, (const void*)c.dv, (const void*)dk16_again})
                CUDA_CHECK(cudaFree(const_cast<void*>(p)));
        }
    }
    std::printf("correctness: %s\n", ok ? "ok" : "FAILED");

    const Case bench[] = {{256 * 8, 77, 77, 64, true}, {256 * 12, 50, 50, 64, false}, {128 * 12, 197, 197, 64, false},
                          {8 * 16, 1024, 1024, 128, true}};
    for (const Case& t : bench) {
        size_t nq = size_t(t.BH) * t.Tq * t.D, nk = size_t(t.BH) * t.Tk * t.D;
        Buffers b;
        b.q = device_from_host(random_normal(nq, 35));
        b.k = device_from_host(random_normal(nk, 36));
        b.v = device_from_host(random_normal(nk, 37));
        b.out = device_from_host(random_normal(nq, 38));
        b.dout = device_from_host(random_normal(nq, 39));
        b.lse = device_from_host(random_uniform(size_t(t.BH) * t.Tq, 40, 3.0f, 5.0f));
        b.delta = device_alloc<float>(size_t(t.BH) * t.Tq);
        b.dq = device_alloc<float>(nq);
        b.dk = device_alloc<float>(nk);
        b.dv = device_alloc<float>(nk);
        float scale = 1.0f / std::sqrt(float(t.D));
        // backward: 5 matrix products of the forward's size (S, dP, dV, dK, dQ)
        double flops = 10.0 * t.BH * double(t.Tq) * t.Tk * t.D * (t.causal ? 0.5 : 1.0);
        std::printf("benchmark BH=%d T=%d D=%d causal=%d (F32)\n", t.BH, t.Tq, t.D, int(t.causal));
        CublasAttentionBackward reference;
        float ref_ms = benchmark_ms(5, [&] { reference(b, t.BH, t.Tq, t.Tk, t.D, t.causal, scale); });
        report_flops("cuBLAS attention backward (S, dP in memory)", ref_ms, flops, 0);
        for (int var = 1; var <= n_variants; var++) {
            if (variant && var != variant) continue;
            for (int warps : {4, 8}) {
                float ms = benchmark_ms(5, [&] { attention_backward(var, b, t.BH, t.Tq, t.Tk, t.D, t.causal, scale, warps); });
                char what[64];
                std::snprintf(what, sizeof what, "kernel%d, %d warps", var, warps);
                report_flops(what, ms, flops, ref_ms);
            }
        }
        if (t.D == tc::kD && (variant == 0 || variant == 3)) {  // kernel3 in bf16
            tc::Buffers16 c;
            c.q = tc::device_bf16(random_normal(nq, 35));
            c.k = tc::device_bf16(random_normal(nk, 36));
            c.v = tc::device_bf16(random_normal(nk, 37));
            c.out = tc::device_bf16(random_normal(nq, 38));
            c.dout = tc::device_bf16(random_normal(nq, 39));
            c.lse = b.lse;
            c.delta = b.delta;
            c.dq = device_alloc<tc::bf16>(nq);
            c.dk = device_alloc<tc::bf16>(nk);
            c.dv = device_alloc<tc::bf16>(nk);
            std::printf("benchmark BH=%d T=%d D=%d causal=%d (BF16; the engine's GEMM path: see docs/PERFORMANCE.md)\n",
                        t.BH, t.Tq, t.D, int(t.causal));
            float ms = benchmark_ms(5, [&] { tc::attention_backward_tc(c, t.BH, t.Tq, t.Tk, t.causal, scale); });
            report_flops("kernel3 (tensor cores)", ms, flops, 0);
            for (const void* p : {(const void*)c.q, (const void*)c.k, (const void*)c.v, (const void*)c.out,
                                  (const void*)c.dout, (const void*)c.dq, (const void*)c.dk, (const void*)c.dv})
                CUDA_CHECK(cudaFree(const_cast<void*>(p)));
        }
        for (const float* p : {b.q, b.k, b.v, b.out, b.dout, b.lse}) CUDA_CHECK(cudaFree(const_cast<float*>(p)));
        for (float* p : {b.delta, b.dq, b.dk, b.dv}) CUDA_CHECK(cudaFree(p));
    }
    return finish("attention_backward", ok);
}
