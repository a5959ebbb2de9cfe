// cuda/softmax.cu
// defines: CudaBackend::softmax_rows (softmax / log_softmax over the last dim) and
// softmax_rows_backward. Rows (N, C); one warp per row when C <= 1024 (four rows per block),
// else one 512-thread block per row. The forward reads a row twice: once for its online
// max / sum-of-exp, once to write the result. Math in Acc (float for F32 and BF16, double for
// F64); reductions combine in a fixed order, so results are bit-reproducible.
#include "cuda/cuda_backend.h"
#include "cuda/fused_common.cuh"

namespace rankclip {

namespace {

using namespace fused;

constexpr int64_t kWarpRowLimit = 1024;  // widest row handled by one warp
constexpr int kBlockRowThreads = 512;     // threads per row above that

// x, y: (N, C). softmax: y = exp(x - max) / sum(exp(x - max)); log: y = x - logsumexp(x).
template <typename T, int kThreads>
__global__ void softmax_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t N, int64_t C,
                                       bool log) {
    using A = Acc<T>;
    __shared__ A shared_m[kThreads > 32 ? kThreads / 32 : 1], shared_s[kThreads > 32 ? kThreads / 32 : 1];
    int64_t row;
    int tid;
    group_row_position<kThreads>(row, tid);
    if (row >= N) return;  // whole warps only (block groups never take it)
    const T* xr = x + row * C;
    T* yr = y + row * C;
    A m = neg_inf<A>(), s = A(0);
    for (int64_t c = tid; c < C; c += kThreads) online_add(m, s, A(load(xr + c)));
    group_online_merge<kThreads>(m, s, shared_m, shared_s);
    if (log) {
        A lse = m + acc_log(s);
        for (int64_t c = tid; c < C; c += kThreads) store(yr + c, A(load(xr + c)) - lse);
    } else {
        A inv = A(1) / s;
        for (int64_t c = tid; c < C; c += kThreads) store(yr + c, acc_exp(A(load(xr + c)) - m) * inv);
    }
}

// softmax:     forward y = softmax(x)   =>  gx = y * (gy - sum(gy * y))
// log_softmax: forward y = x - lse(x)   =>  gx = gy - exp(y) * sum(gy)
template <typename T, int kThreads>
__global__ void softmax_backward_kernel(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ gx,
                                        int64_t N, int64_t C, bool log) {
    using A = Acc<T>;
    __shared__ A shared[kThreads > 32 ? kThreads / 32 : 1];
    int64_t row;
    int tid;
    group_row_position<kThreads>(row, tid);
    if (row >= N) return;
    const T* yr = y + row * C;
    const T* gr = gy + row * C;
    T* gxr = gx + row * C;
    A dot = A(0);
    if (log) {
        for (int64_t c = tid; c < C; c += kThreads) dot += A(load(gr + c));
    } else {
        for (int64_t c = tid; c < C; c += kThreads) dot += A(load(gr + c)) * A(load(yr + c));
    }
    dot = group_sum<kThreads>(dot, shared);
    if (log) {
        for (int64_t c = tid; c < C; c += kThreads)
            store(gxr + c, A(load(gr + c)) - acc_exp(A(load(yr + c))) * dot);
    } else {
        for (int64_t c = tid; c < C; c += kThreads)
            store(gxr + c, A(load(yr + c)) * (A(load(gr + c)) - dot));
    }
}

// Grid for N rows: four warp-rows per 128-thread block, or one block per row.
inline unsigned grid_for_rows(int64_t N, int64_t C) {
    return unsigned(C <= kWarpRowLimit ? (N + 3) / 4 : N);
}

}  // namespace

void CudaBackend::softmax_rows(const Tensor& x, Tensor& out, bool log) {
    int64_t N, C;
    rows_of(x, N, C);
    if (N == 0 || C == 0) return;
    cudaStream_t stream = cuda_stream(x.device().index);
    RC_GPU_FLOAT_TYPES(x.dtype(), log ? "log_softmax" : "softmax", x, {
        const T* xs = static_cast<const T*>(x.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
        if (C <= kWarpRowLimit)
            softmax_forward_kernel<T, 32><<<grid_for_rows(N, C), 128, 0, stream>>>(xs, ys, N, C, log);
        else
            softmax_forward_kernel<T, kBlockRowThreads>
                <<<grid_for_rows(N, C), kBlockRowThreads, 0, stream>>>(xs, ys, N, C, log);
        RC_CUDA_CHECK_LAUNCH("softmax_forward_kernel");
    });
}

void CudaBackend::softmax_rows_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) {
    int64_t N, C;
    rows_of(y, N, C);
    if (N == 0 || C == 0) return;
    cudaStream_t stream = cuda_stream(y.device().index);
    RC_GPU_FLOAT_TYPES(y.dtype(), log ? "log_softmax_backward" : "softmax_backward", y, {
        const T* ys = static_cast<const T*>(y.raw_data());
        const T* gys = static_cast<const T*>(gy.raw_data());
        T* gxs = static_cast<T*>(gx.raw_data());
        if (C <= kWarpRowLimit)
            softmax_backward_kernel<T, 32><<<grid_for_rows(N, C), 128, 0, stream>>>(ys, gys, gxs, N, C, log);
        else
            softmax_backward_kernel<T, kBlockRowThreads>
                <<<grid_for_rows(N, C), kBlockRowThreads, 0, stream>>>(ys, gys, gxs, N, C, log);
        RC_CUDA_CHECK_LAUNCH("softmax_backward_kernel");
    });
}

}  // namespace rankclip
