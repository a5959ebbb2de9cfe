// cuda/attention.cu
// defines: CudaBackend::attention and attention_backward: longer sequences (T >= 32) in F32 and
// BF16 go to the tensor cores through batched GEMMs (cuda/attention_gemm.cu); the rest to our
// flash-attention-style kernels here (cuda/dev/attention_forward.cu kernel3, attention_backward.cu
// kernel2):
//   q (BH, Tq, D), k, v (BH, Tk, D); causal: key j visible to query i iff j <= i (as the CPU).
//   forward:  S = scale Q K^T, P = softmax(S), O = P V; saves lse (BH, Tq) in Acc precision.
//   backward: delta = rowsum(dO * O), P = exp(S - lse), dV = P^T dO, dP = dO V^T,
//             dS = P * (dP - delta), dQ = scale dS K, dK = scale dS^T Q.
// S and P never go to global memory. Tiles of 32 keys (forward, dQ) or 32 queries (dK/dV) are
// staged in shared memory as Acc values; in the score loops a lane owns a key (or query) and in
// the accumulation loops a lane owns head dims c, c + 32, ... (kDL = ceil(D / 32) of them, head
// dims up to 256). Four rows per warp, so each value read from shared memory serves four rows;
// four warps per block (eight in the forward when Tq >= 128). Each output row is written by one warp that loops over its tiles in a fixed
// order, so the backward needs no atomics and is bit-reproducible.
// Math in Acc (float for F32/BF16, double for F64), on CUDA cores (no tensor cores yet).
// The kernels index contiguous (BH, T, D) rows. backend.h lets q, k, v, out and the gradients be
// strided (B, H, T, D) views (the CPU reads a packed projection in place); here a strided input
// is copied to a contiguous tensor first and a strided output is computed into a contiguous
// temporary, then copied out (see contiguous_input / contiguous_output).
#include <algorithm>
#include <type_traits>

#include "cuda/attention_gemm.h"
#include "cuda/cuda_backend.h"
#include "cuda/fused_common.cuh"

namespace rankclip {

namespace {

using namespace fused;

constexpr int kWarps = 4;
constexpr int kPerWarp = 4;                    // query rows (forward, dQ) or keys (dK/dV) per warp
constexpr int kBlockRows = kWarps * kPerWarp;  // query rows (dQ) or keys (dK/dV) of a backward block
constexpr int kTile = 32;                      // keys (forward, dQ) or queries (dK/dV) per tile
constexpr int kMaxHeadDim = 256;

// Staging: s[r * stride + d] = src[(row0 + r) * D + d] for r < rows, zero outside the tensor
// (rows beyond `limit`, dims beyond D), so padded lanes contribute nothing.
template <typename T, typename A>
__device__ __forceinline__ void stage_rows(A* s, int stride, const T* src, int64_t row0, int rows, int64_t limit,
                                           int D, int Dp) {
    for (int idx = threadIdx.x; idx < rows * Dp; idx += blockDim.x) {
        int r = idx / Dp, d = idx % Dp;
        int64_t row = row0 + r;
        s[r * stride + d] = (row < limit && d < D) ? A(load(src + row * D + d)) : A(0);
    }
}

// ---------------------------------------------------------------------------------------------
// forward. Block: kForwardWarps * 4 query rows of one (b, h). Shared: Qs (rows, Dp) |
// Ks (32, Dp + 1) | Vs (32, Dp); K rows padded so lane j reading Ks[j][d] hits distinct banks.

template <typename T, int kDL, int kForwardWarps>
__global__ void __launch_bounds__(kForwardWarps * 32)
attention_forward_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                         T* __restrict__ out, Acc<T>* __restrict__ lse, int64_t Tq, int64_t Tk, int D,
                         int64_t n_qtiles, bool causal, Acc<T> scale) {
    using A = Acc<T>;
    constexpr int Dp = kDL * 32;
    constexpr int kQueryRows = kForwardWarps * kPerWarp;  // query rows of the block
    extern __shared__ __align__(16) unsigned char smem_raw[];
    A* Qs = reinterpret_cast<A*>(smem_raw);
    A* Ks = Qs + kQueryRows * Dp;
    A* Vs = Ks + kTile * (Dp + 1);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t bh = blockIdx.x / n_qtiles;
    const int64_t q0 = (blockIdx.x % n_qtiles) * kQueryRows;
    const T* kb = k + bh * Tk * D;
    const T* vb = v + bh * Tk * D;
    stage_rows(Qs, Dp, q + bh * Tq * D, q0, kQueryRows, Tq, D, Dp);

    A m[kPerWarp], l[kPerWarp], o[kPerWarp][kDL];
#pragma unroll
    for (int r = 0; r < kPerWarp; r++) {
        m[r] = neg_inf<A>();
        l[r] = A(0);
#pragma unroll
        for (int c = 0; c < kDL; c++) o[r][c] = A(0);
    }
    const int row0 = warp * kPerWarp;
    const int64_t q_last = min(Tq, q0 + kQueryRows) - 1;
    const int64_t k_end = causal ? min(Tk, q_last + 1) : Tk;

    for (int64_t k0 = 0; k0 < k_end; k0 += kTile) {
        __syncthreads();  // the previous tile is consumed (and Qs is written, the first time)
        stage_rows(Ks, Dp + 1, kb, k0, kTile, Tk, D, Dp);
        stage_rows(Vs, Dp, vb, k0, kTile, Tk, D, Dp);
        __syncthreads();

        // scores, lane = key: s[r] = q_r . k_lane
        A s[kPerWarp];
#pragma unroll
        for (int r = 0; r < kPerWarp; r++) s[r] = A(0);
        const A* krow = Ks + lane * (Dp + 1);
#pragma unroll 16
        for (int d = 0; d < Dp; d++) {
            A kv = krow[d];
#pragma unroll
            for (int r = 0; r < kPerWarp; r++) s[r] += Qs[(row0 + r) * Dp + d] * kv;
        }
        // online softmax over this tile; s becomes p
        const int64_t key = k0 + lane;
#pragma unroll
        for (int r = 0; r < kPerWarp; r++) {
            int64_t i = q0 + row0 + r;
            bool visible = key < Tk && (!causal || key <= i);
            A x = visible ? s[r] * scale : neg_inf<A>();
            A m_new = acc_max(m[r], warp_max(x));
            A p = A(0), alpha = A(1);
            if (m_new != neg_inf<A>()) {  // the same for the whole warp
                p = acc_exp(x - m_new);
                alpha = acc_exp(m[r] - m_new);
            }
            l[r] = l[r] * alpha + p;  // per-lane partial sums; alpha is the same in every lane
            m[r] = m_new;
#pragma unroll
            for (int c = 0; c < kDL; c++) o[r][c] *= alpha;
            s[r] = p;
        }
        // o += P V, lane = head dim
        const int jn = int(min(int64_t(kTile), k_end - k0));
        for (int j = 0; j < jn; j++) {
            A vj[kDL];
#pragma unroll
            for (int c = 0; c < kDL; c++) vj[c] = Vs[j * Dp + c * 32 + lane];
#pragma unroll
            for (int r = 0; r < kPerWarp; r++) {
                A pj = __shfl_sync(0xffffffffu, s[r], j);
#pragma unroll
                for (int c = 0; c < kDL; c++) o[r][c] += pj * vj[c];
            }
        }
    }
#pragma unroll
    for (int r = 0; r < kPerWarp; r++) {
        int64_t i = q0 + row0 + r;
        A lsum = warp_sum(l[r]);
        if (i >= Tq) continue;
        // no visible key (only when Tk == 0): output 0, lse -inf
        A inv = lsum > A(0) ? A(1) / lsum : A(0);
        T* orow = out + (bh * Tq + i) * D;
#pragma unroll
        for (int c = 0; c < kDL; c++) {
            int d = c * 32 + lane;
            if (d < D) store(orow + d, o[r][c] * inv);
        }
        if (lane == 0) lse[bh * Tq + i] = lsum > A(0) ? m[r] + acc_log(lsum) : neg_inf<A>();
    }
}

// ---------------------------------------------------------------------------------------------
// backward

// delta[row] = sum_d dO[row, d] * O[row, d]: one warp per row, four rows per block
template <typename T>
__global__ void attention_delta_kernel(const T* __restrict__ out, const T* __restrict__ gout,
                                       Acc<T>* __restrict__ delta, int64_t rows, int D) {
    using A = Acc<T>;
    int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return;
    A s = A(0);
    for (int d = lane; d < D; d += 32) s += A(load(out + row * D + d)) * A(load(gout + row * D + d));
    s = warp_sum(s);
    if (lane == 0) delta[row] = s;
}

// dQ. Block: kBlockRows query rows. Shared: Qs, dOs (16, Dp) | Ks, Vs (32, Dp + 1).
template <typename T, int kDL>
__global__ void __launch_bounds__(kWarps * 32)
attention_backward_dq_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                             const T* __restrict__ gout, const Acc<T>* __restrict__ lse,
                             const Acc<T>* __restrict__ delta, T* __restrict__ gq, int64_t Tq, int64_t Tk,
                             int D, int64_t n_qtiles, bool causal, Acc<T> scale) {
    using A = Acc<T>;
    constexpr int Dp = kDL * 32;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    A* Qs = reinterpret_cast<A*>(smem_raw);
    A* dOs = Qs + kBlockRows * Dp;
    A* Ks = dOs + kBlockRows * Dp;
    A* Vs = Ks + kTile * (Dp + 1);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t bh = blockIdx.x / n_qtiles;
    const int64_t q0 = (blockIdx.x % n_qtiles) * kBlockRows;
    const T* kb = k + bh * Tk * D;
    const T* vb = v + bh * Tk * D;
    stage_rows(Qs, Dp, q + bh * Tq * D, q0, kBlockRows, Tq, D, Dp);
    stage_rows(dOs, Dp, gout + bh * Tq * D, q0, kBlockRows, Tq, D, Dp);

    const int row0 = warp * kPerWarp;
    A row_lse[kPerWarp], row_delta[kPerWarp], acc[kPerWarp][kDL];
#pragma unroll
    for (int r = 0; r < kPerWarp; r++) {
        int64_t i = q0 + row0 + r;
        row_lse[r] = i < Tq ? lse[bh * Tq + i] : A(0);
        row_delta[r] = i < Tq ? delta[bh * Tq + i] : A(0);
#pragma unroll
        for (int c = 0; c < kDL; c++) acc[r][c] = A(0);
    }
    const int64_t q_last = min(Tq, q0 + kBlockRows) - 1;
    const int64_t k_end = causal ? min(Tk, q_last + 1) : Tk;
    for (int64_t k0 = 0; k0 < k_end; k0 += kTile) {
        __syncthreads();
        stage_rows(Ks, Dp + 1, kb, k0, kTile, Tk, D, Dp);
        stage_rows(Vs, Dp + 1, vb, k0, kTile, Tk, D, Dp);
        __syncthreads();
        // lane = key: s = q . k, dp = dO . v
        A s[kPerWarp], dp[kPerWarp];
#pragma unroll
        for (int r = 0; r < kPerWarp; r++) s[r] = dp[r] = A(0);
        const A* krow = Ks + lane * (Dp + 1);
        const A* vrow = Vs + lane * (Dp + 1);
#pragma unroll 8
        for (int d = 0; d < Dp; d++) {
            A kv = krow[d], vv = vrow[d];
#pragma unroll
            for (int r = 0; r < kPerWarp; r++) {
                s[r] += Qs[(row0 + r) * Dp + d] * kv;
                dp[r] += dOs[(row0 + r) * Dp + d] * vv;
            }
        }
        const int64_t key = k0 + lane;
#pragma unroll
        for (int r = 0; r < kPerWarp; r++) {
            int64_t i = q0 + row0 + r;
            bool visible = i < Tq && key < Tk && (!causal || key <= i);
            A p = visible ? acc_exp(s[r] * scale - row_lse[r]) : A(0);
            s[r] = p * (dp[r] - row_delta[r]) * scale;  // dS, with the scale of dQ folded in
        }
        // lane = head dim: dQ += dS K
        const int jn = int(min(int64_t(kTile), k_end - k0));
        for (int j = 0; j < jn; j++) {
            A kj[kDL];
#pragma unroll
            for (int c = 0; c < kDL; c++) kj[c] = Ks[j * (Dp + 1) + c * 32 + lane];
#pragma unroll
            for (int r = 0; r < kPerWarp; r++) {
                A dsj = __shfl_sync(0xffffffffu, s[r], j);
#pragma unroll
                for (int c = 0; c < kDL; c++) acc[r][c] += dsj * kj[c];
            }
        }
    }
#pragma unroll
    for (int r = 0; r < kPerWarp; r++) {
        int64_t i = q0 + row0 + r;
        if (i >= Tq) continue;
#pragma unroll
        for (int c = 0; c < kDL; c++) {
            int d = c * 32 + lane;
            if (d < D) store(gq + (bh * Tq + i) * D + d, acc[r][c]);
        }
    }
}

// dK, dV. Block: kBlockRows keys. Shared: Ks, Vs (16, Dp) | Qs, dOs (32, Dp + 1) | lse, delta (32).
template <typename T, int kDL>
__global__ void __launch_bounds__(kWarps * 32)
attention_backward_dkdv_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                               const T* __restrict__ gout, const Acc<T>* __restrict__ lse,
                               const Acc<T>* __restrict__ delta, T* __restrict__ gk, T* __restrict__ gv,
                               int64_t Tq, int64_t Tk, int D, int64_t n_ktiles, bool causal, Acc<T> scale) {
    using A = Acc<T>;
    constexpr int Dp = kDL * 32;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    A* Ks = reinterpret_cast<A*>(smem_raw);
    A* Vs = Ks + kBlockRows * Dp;
    A* Qs = Vs + kBlockRows * Dp;
    A* dOs = Qs + kTile * (Dp + 1);
    A* lse_s = dOs + kTile * (Dp + 1);
    A* delta_s = lse_s + kTile;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t bh = blockIdx.x / n_ktiles;
    const int64_t k0 = (blockIdx.x % n_ktiles) * kBlockRows;
    const T* qb = q + bh * Tq * D;
    const T* gb = gout + bh * Tq * D;
    stage_rows(Ks, Dp, k + bh * Tk * D, k0, kBlockRows, Tk, D, Dp);
    stage_rows(Vs, Dp, v + bh * Tk * D, k0, kBlockRows, Tk, D, Dp);

    const int key_row0 = warp * kPerWarp;
    A acc_k[kPerWarp][kDL], acc_v[kPerWarp][kDL];
#pragma unroll
    for (int r = 0; r < kPerWarp; r++)
#pragma unroll
        for (int c = 0; c < kDL; c++) acc_k[r][c] = acc_v[r][c] = A(0);
    // causal: query i sees key j iff j <= i, so the query tiles before k0's contribute nothing
    const int64_t q_begin = causal ? (k0 / kTile) * kTile : 0;
    for (int64_t q0 = q_begin; q0 < Tq; q0 += kTile) {
        __syncthreads();
        stage_rows(Qs, Dp + 1, qb, q0, kTile, Tq, D, Dp);
        stage_rows(dOs, Dp + 1, gb, q0, kTile, Tq, D, Dp);
        if (threadIdx.x < kTile) {
            int64_t i = q0 + threadIdx.x;
            lse_s[threadIdx.x] = i < Tq ? lse[bh * Tq + i] : A(0);
            delta_s[threadIdx.x] = i < Tq ? delta[bh * Tq + i] : A(0);
        }
        __syncthreads();
        // lane = query: s = q . k_r, dp = dO . v_r for this warp's keys r
        A p[kPerWarp], ds[kPerWarp];
#pragma unroll
        for (int r = 0; r < kPerWarp; r++) p[r] = ds[r] = A(0);
        const A* qrow = Qs + lane * (Dp + 1);
        const A* grow = dOs + lane * (Dp + 1);
#pragma unroll 8
        for (int d = 0; d < Dp; d++) {
            A qv = qrow[d], gv_ = grow[d];
#pragma unroll
            for (int r = 0; r < kPerWarp; r++) {
                p[r] += qv * Ks[(key_row0 + r) * Dp + d];
                ds[r] += gv_ * Vs[(key_row0 + r) * Dp + d];
            }
        }
        const int64_t i = q0 + lane;
#pragma unroll
        for (int r = 0; r < kPerWarp; r++) {
            int64_t key = k0 + key_row0 + r;
            bool visible = i < Tq && key < Tk && (!causal || key <= i);
            A pr = visible ? acc_exp(p[r] * scale - lse_s[lane]) : A(0);
            ds[r] = pr * (ds[r] - delta_s[lane]) * scale;
            p[r] = pr;
        }
        // lane = head dim: dV += P^T dO, dK += dS^T Q
        const int jn = int(min(int64_t(kTile), Tq - q0));
        for (int j = 0; j < jn; j++) {
            A qj[kDL], gj[kDL];
#pragma unroll
            for (int c = 0; c < kDL; c++) {
                qj[c] = Qs[j * (Dp + 1) + c * 32 + lane];
                gj[c] = dOs[j * (Dp + 1) + c * 32 + lane];
            }
#pragma unroll
            for (int r = 0; r < kPerWarp; r++) {
                A pj = __shfl_sync(0xffffffffu, p[r], j);
                A dsj = __shfl_sync(0xffffffffu, ds[r], j);
#pragma unroll
                for (int c = 0; c < kDL; c++) {
                    acc_v[r][c] += pj * gj[c];
                    acc_k[r][c] += dsj * qj[c];
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < kPerWarp; r++) {
        int64_t key = k0 + key_row0 + r;
        if (key >= Tk) continue;
#pragma unroll
        for (int c = 0; c < kDL; c++) {
            int d = c * 32 + lane;
            if (d < D) {
                store(gk + (bh * Tk + key) * D + d, acc_k[r][c]);
                store(gv + (bh * Tk + key) * D + d, acc_v[r][c]);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// launchers

struct AttentionShape {
    int64_t BH, Tq, Tk;
    int D;
};

AttentionShape attention_shape(const Tensor& q, const Tensor& k) {
    AttentionShape s;
    s.D = int(q.size(-1));
    s.Tq = q.size(-2);
    s.Tk = k.size(-2);
    s.BH = q.numel() / std::max<int64_t>(s.Tq * s.D, 1);
    return s;
}

template <typename T, int kDL, int kForwardWarps>
void attention_forward_launch(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse,
                              const AttentionShape& s, bool causal, double scale, cudaStream_t stream) {
    using A = Acc<T>;
    constexpr int Dp = kDL * 32, kQueryRows = kForwardWarps * kPerWarp;
    int64_t n_qtiles = (s.Tq + kQueryRows - 1) / kQueryRows;
    size_t smem = (size_t(kQueryRows) * Dp + size_t(kTile) * (Dp + 1) + size_t(kTile) * Dp) * sizeof(A);
    auto kernel = attention_forward_kernel<T, kDL, kForwardWarps>;
    allow_dynamic_smem(kernel, smem);
    kernel<<<unsigned(s.BH * n_qtiles), kForwardWarps * 32, smem, stream>>>(
        static_cast<const T*>(q.raw_data()), static_cast<const T*>(k.raw_data()),
        static_cast<const T*>(v.raw_data()), static_cast<T*>(out.raw_data()), static_cast<A*>(lse.raw_data()),
        s.Tq, s.Tk, s.D, n_qtiles, causal, A(scale));
    RC_CUDA_CHECK_LAUNCH("attention_forward_kernel");
}

template <typename T, int kDL>
void attention_backward_launch(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                               const Tensor& lse, const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv,
                               const AttentionShape& s, bool causal, double scale, int device) {
    using A = Acc<T>;
    constexpr int Dp = kDL * 32;
    cudaStream_t stream = cuda_stream(device);
    const T* qs = static_cast<const T*>(q.raw_data());
    const T* ks = static_cast<const T*>(k.raw_data());
    const T* vs = static_cast<const T*>(v.raw_data());
    const T* gos = static_cast<const T*>(gout.raw_data());
    const A* lses = static_cast<const A*>(lse.raw_data());

    int64_t rows = s.BH * s.Tq;
    DeviceScratch delta_buffer(cuda_context(device), size_t(std::max<int64_t>(rows, 1)) * sizeof(A));
    A* delta = delta_buffer.as<A>();
    if (rows > 0) {
        attention_delta_kernel<T><<<unsigned((rows + 3) / 4), 128, 0, stream>>>(
            static_cast<const T*>(out.raw_data()), gos, delta, rows, s.D);
        RC_CUDA_CHECK_LAUNCH("attention_delta_kernel");
    }
    if (s.Tk > 0) {
        int64_t n_ktiles = (s.Tk + kBlockRows - 1) / kBlockRows;
        size_t smem = (2 * size_t(kBlockRows) * Dp + 2 * size_t(kTile) * (Dp + 1) + 2 * kTile) * sizeof(A);
        auto kernel = attention_backward_dkdv_kernel<T, kDL>;
        allow_dynamic_smem(kernel, smem);
        kernel<<<unsigned(s.BH * n_ktiles), kWarps * 32, smem, stream>>>(
            qs, ks, vs, gos, lses, delta, static_cast<T*>(gk.raw_data()), static_cast<T*>(gv.raw_data()), s.Tq, s.Tk,
            s.D, n_ktiles, causal, A(scale));
        RC_CUDA_CHECK_LAUNCH("attention_backward_dkdv_kernel");
    }
    if (s.Tq > 0) {
        int64_t n_qtiles = (s.Tq + kBlockRows - 1) / kBlockRows;
        size_t smem = (2 * size_t(kBlockRows) * Dp + 2 * size_t(kTile) * (Dp + 1)) * sizeof(A);
        auto kernel = attention_backward_dq_kernel<T, kDL>;
        allow_dynamic_smem(kernel, smem);
        kernel<<<unsigned(s.BH * n_qtiles), kWarps * 32, smem, stream>>>(
            qs, ks, vs, gos, lses, delta, static_cast<T*>(gq.raw_data()), s.Tq, s.Tk, s.D, n_qtiles, causal,
            A(scale));
        RC_CUDA_CHECK_LAUNCH("attention_backward_dq_kernel");
    }
}

// A contiguous tensor with t's values: t itself when it is contiguous, else a copy (no history).
Tensor contiguous_input(const Tensor& t) { return t.is_contiguous() ? t : t.detach().contiguous(); }
// Where a kernel writes the values of output t: t when contiguous, else a contiguous temporary
// that finish_output copies into t.
Tensor contiguous_output(const Tensor& t) { return t.is_contiguous() ? t : empty(t.shape(), t.dtype(), t.device()); }
void finish_output(Backend& backend, const Tensor& computed, Tensor& t) {
    if (computed.impl() != t.impl()) backend.copy(computed, t);
}

// Calls F<kDL>() with kDL = ceil(D / 32) rounded up to 1, 2, 4 or 8.
template <typename F>
void with_head_dim(int D, F&& f) {
    if (D <= 32) f(std::integral_constant<int, 1>());
    else if (D <= 64) f(std::integral_constant<int, 2>());
    else if (D <= 128) f(std::integral_constant<int, 4>());
    else f(std::integral_constant<int, 8>());
}

}  // namespace

void CudaBackend::attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, Tensor& out_in, Tensor& lse,
                            bool causal, double scale) {
    AttentionShape s = attention_shape(q_in, k_in);
    RC_CHECK(s.D <= kMaxHeadDim, "attention (cuda): head dim ", s.D, " of q ", q_in.str(), " is above the ",
             kMaxHeadDim, " the kernels support");
    if (s.BH == 0 || s.Tq == 0 || s.D == 0) return;
    if (attention_gemm_applies(q_in, k_in, {&v_in, &out_in}))
        return attention_gemm_forward(q_in, k_in, v_in, out_in, lse, causal, scale);
    Tensor q = contiguous_input(q_in), k = contiguous_input(k_in), v = contiguous_input(v_in);
    Tensor out = contiguous_output(out_in);
    cudaStream_t stream = cuda_stream(q.device().index);
    RC_GPU_FLOAT_TYPES(q.dtype(), "attention", q, {
        with_head_dim(s.D, [&](auto dl) {
            // 8 warps (32 query rows per block) pay off from about 128 queries on (measured on an
            // H200: T = 197 and 1024 faster, T = 77 slower than with 4)
            if (s.Tq >= 128)
                attention_forward_launch<T, decltype(dl)::value, 8>(q, k, v, out, lse, s, causal, scale, stream);
            else
                attention_forward_launch<T, decltype(dl)::value, 4>(q, k, v, out, lse, s, causal, scale, stream);
        });
    });
    finish_output(*this, out, out_in);
}

void CudaBackend::attention_backward(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Tensor& out_in,
                                     const Tensor& lse, const Tensor& gout_in, Tensor& gq_in, Tensor& gk_in,
                                     Tensor& gv_in, bool causal, double scale) {
    AttentionShape s = attention_shape(q_in, k_in);
    RC_CHECK(s.D <= kMaxHeadDim, "attention_backward (cuda): head dim ", s.D, " of q ", q_in.str(),
             " is above the ", kMaxHeadDim, " the kernels support");
    if (s.BH == 0 || s.D == 0) return;
    if (attention_gemm_applies(q_in, k_in, {&v_in, &gout_in, &gq_in, &gk_in, &gv_in}))
        return attention_gemm_backward(q_in, k_in, v_in, lse, gout_in, gq_in, gk_in, gv_in, causal, scale);
    Tensor q = contiguous_input(q_in), k = contiguous_input(k_in), v = contiguous_input(v_in),
           out = contiguous_input(out_in), gout = contiguous_input(gout_in);
    Tensor gq = contiguous_output(gq_in), gk = contiguous_output(gk_in), gv = contiguous_output(gv_in);
    int device = q.device().index;
    RC_GPU_FLOAT_TYPES(q.dtype(), "attention_backward", q, {
        with_head_dim(s.D, [&](auto dl) {
            attention_backward_launch<T, decltype(dl)::value>(q, k, v, out, lse, gout, gq, gk, gv, s, causal, scale,
                                                             device);
        });
    });
    finish_output(*this, gq, gq_in);
    finish_output(*this, gk, gk_in);
    finish_output(*this, gv, gv_in);
}

}  // namespace rankclip
