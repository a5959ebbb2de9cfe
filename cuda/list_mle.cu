// cuda/list_mle.cu
// defines: CudaBackend::list_mle and list_mle_backward, the fused ListMLE over rows (N, B) under
// a given ranking (see engine/backend.h for the formulas).
//
// One warp per row, four rows per 128-thread block. Lane l owns the contiguous ranked positions
// [l C, (l+1) C), C = ceil(B / 32): the suffix sums Z_k (forward) and the prefix sums of
// w_k / (Z_k + eps) (backward) are a serial pass inside each lane's chunk plus a warp scan of the
// 32 chunk totals, so every sum is taken in a fixed order: deterministic, no atomics. Z is
// written to `suffix` for the backward. Reads of x go through the ranking (a gather); B is the
// batch size, so a row is a few KB and stays in L1/L2 across the passes.
#include "cuda/cuda_backend.h"
#include "cuda/fused_common.cuh"

namespace rankclip {

namespace {

using namespace fused;

constexpr int kRowsPerBlock = 4;

// Sum over the lanes above this one (exclusive suffix) and below it (exclusive prefix): an
// inclusive scan, then the neighbour's value. Never "inclusive minus own": when this lane's total
// dwarfs the others' (a chunk holding the row's large terms above a tail of tiny ones), that
// subtraction cancels away the whole sum it should return.
template <typename A>
__device__ __forceinline__ A warp_exclusive_suffix(A total, int lane) {
    A s = total;
    for (int off = 1; off < 32; off <<= 1) {
        A t = __shfl_down_sync(0xffffffffu, s, off);
        if (lane + off < 32) s += t;
    }
    A above = __shfl_down_sync(0xffffffffu, s, 1);
    return lane < 31 ? above : A(0);
}
template <typename A>
__device__ __forceinline__ A warp_exclusive_prefix(A total, int lane) {
    A s = total;
    for (int off = 1; off < 32; off <<= 1) {
        A t = __shfl_up_sync(0xffffffffu, s, off);
        if (lane >= off) s += t;
    }
    A below = __shfl_up_sync(0xffffffffu, s, 1);
    return lane > 0 ? below : A(0);
}

// The row's max and its first ranked position.
template <typename T, typename A>
__device__ __forceinline__ void row_max(const T* row, const int64_t* rank, int64_t B, int lane, A& m, int64_t& at) {
    m = neg_inf<A>();
    at = B;
    for (int64_t k = lane; k < B; k += 32) {
        A v = A(load(row + rank[k]));
        if (v > m) m = v, at = k;  // k rises within a lane: the first occurrence is kept
    }
    for (int off = 16; off > 0; off >>= 1) {
        A m2 = __shfl_xor_sync(0xffffffffu, m, off);
        int64_t at2 = __shfl_xor_sync(0xffffffffu, at, off);
        if (m2 > m || (m2 == m && at2 < at)) m = m2, at = at2;
    }
}

// x, order: (N, B); w: (B) or null -> losses, maxpos: (N); suffix: (N, B)
template <typename T>
__global__ void list_mle_forward_kernel(const T* __restrict__ x, const int64_t* __restrict__ order,
                                        const T* __restrict__ w, T* __restrict__ losses, int64_t* __restrict__ maxpos,
                                        Acc<T>* __restrict__ suffix, int64_t N, int64_t B, Acc<T> eps) {
    using A = Acc<T>;
    int64_t n = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (n >= N) return;  // whole warps leave together
    const T* row = x + n * B;
    const int64_t* rank = order + n * B;
    A* z = suffix + n * B;
    A m;
    int64_t at;
    row_max<T, A>(row, rank, B, lane, m, at);

    int64_t C = (B + 31) / 32, k0 = min(B, lane * C), k1 = min(B, k0 + C);
    A chunk = 0;
    for (int64_t k = k0; k < k1; k++) chunk += acc_exp(A(load(row + rank[k])) - m);
    // Z_k = sum_{j>=k} exp(u_j): the lanes above, then this chunk from its end
    A run = warp_exclusive_suffix(chunk, lane), loss = 0;
    for (int64_t k = k1 - 1; k >= k0; k--) {
        A u = A(load(row + rank[k])) - m;
        run += acc_exp(u);
        z[k] = run;
        A wk = w ? A(load(w + k)) : A(1);
        loss += wk * (acc_log(run + eps) - u);
    }
    loss = warp_sum(loss);
    if (lane == 0) {
        store(losses + n, loss);
        maxpos[n] = at;
    }
}

// forward: loss = sum_k w_k (log(Z_k + eps) - u_k)  =>  du_j = g (exp(u_j) sum_{k<=j} w_k / (Z_k + eps) - w_j)
template <typename T>
__global__ void list_mle_backward_kernel(const T* __restrict__ x, const int64_t* __restrict__ order,
                                         const T* __restrict__ w, const int64_t* __restrict__ maxpos,
                                         const Acc<T>* __restrict__ suffix, const T* __restrict__ grad_losses,
                                         T* __restrict__ gx, int64_t N, int64_t B, Acc<T> eps) {
    using A = Acc<T>;
    int64_t n = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (n >= N) return;
    const T* row = x + n * B;
    const int64_t* rank = order + n * B;
    const A* z = suffix + n * B;
    T* grow = gx + n * B;
    A g = A(load(grad_losses + n));
    int64_t at = maxpos[n];
    A m = A(load(row + rank[at]));

    int64_t C = (B + 31) / 32, k0 = min(B, lane * C), k1 = min(B, k0 + C);
    A chunk = 0;
    for (int64_t k = k0; k < k1; k++) chunk += (w ? A(load(w + k)) : A(1)) / (z[k] + eps);
    A prefix = warp_exclusive_prefix(chunk, lane), total = 0;
    for (int64_t k = k0; k < k1; k++) {
        A wk = w ? A(load(w + k)) : A(1);
        prefix += wk / (z[k] + eps);
        A du = g * (acc_exp(A(load(row + rank[k])) - m) * prefix - wk);
        store(grow + rank[k], du);
        total += du;
    }
    total = warp_sum(total);  // also orders the lanes' stores before lane 0's update below
    __syncwarp();
    // u = x - max(x): the max's position receives minus the sum of all du
    if (lane == 0) store(grow + rank[at], A(load(grow + rank[at])) - total);
}

}  // namespace

void CudaBackend::list_mle(const Tensor& x, const Tensor& order, const Tensor& w, Tensor& losses, Tensor& maxpos,
                           Tensor& suffix, double eps) {
    int64_t N, B;
    rows_of(x, N, B);
    if (N == 0 || B == 0) return;
    cudaStream_t stream = cuda_stream(x.device().index);
    unsigned blocks = unsigned((N + kRowsPerBlock - 1) / kRowsPerBlock);
    RC_GPU_FLOAT_TYPES(x.dtype(), "list_mle", x, {
        using A = Acc<T>;
        list_mle_forward_kernel<T><<<blocks, 32 * kRowsPerBlock, 0, stream>>>(
            static_cast<const T*>(x.raw_data()), static_cast<const int64_t*>(order.raw_data()),
            w.defined() ? static_cast<const T*>(w.raw_data()) : nullptr, static_cast<T*>(losses.raw_data()),
            static_cast<int64_t*>(maxpos.raw_data()), static_cast<A*>(suffix.raw_data()), N, B, A(eps));
        RC_CUDA_CHECK_LAUNCH("list_mle_forward_kernel");
    });
}

void CudaBackend::list_mle_backward(const Tensor& x, const Tensor& order, const Tensor& w, const Tensor& maxpos,
                                    const Tensor& suffix, const Tensor& grad_losses, Tensor& gx, double eps) {
    int64_t N, B;
    rows_of(x, N, B);
    if (N == 0 || B == 0) return;
    cudaStream_t stream = cuda_stream(x.device().index);
    unsigned blocks = unsigned((N + kRowsPerBlock - 1) / kRowsPerBlock);
    RC_GPU_FLOAT_TYPES(x.dtype(), "list_mle_backward", x, {
        using A = Acc<T>;
        list_mle_backward_kernel<T><<<blocks, 32 * kRowsPerBlock, 0, stream>>>(
            static_cast<const T*>(x.raw_data()), static_cast<const int64_t*>(order.raw_data()),
            w.defined() ? static_cast<const T*>(w.raw_data()) : nullptr,
            static_cast<const int64_t*>(maxpos.raw_data()), static_cast<const A*>(suffix.raw_data()),
            static_cast<const T*>(grad_losses.raw_data()), static_cast<T*>(gx.raw_data()), N, B, A(eps));
        RC_CUDA_CHECK_LAUNCH("list_mle_backward_kernel");
    });
}

}  // namespace rankclip
