// cuda/fused_common.cuh
// defines: what the fused row kernels (cuda/softmax.cu, layer_norm.cu, cross_entropy.cu,
// attention.cu) share on top of cuda/kernel_common.cuh (load/store, Acc<T>, the dtype dispatch,
// ScratchBuffer): accurate exp/log/sqrt in Acc precision, warp and row-group reductions that
// combine in a fixed order (so results are bit-reproducible), the online-softmax state
// (running max, sum of exponentials) and its merge, and small launch helpers.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "cuda/kernel_common.cuh"

namespace rankclip {
namespace fused {

using kernels::Acc;
using kernels::load;
using kernels::store;

// Accurate (not the fast-math intrinsics): results are compared with the CPU backend.
__device__ __forceinline__ float acc_exp(float x) { return expf(x); }
__device__ __forceinline__ double acc_exp(double x) { return exp(x); }
__device__ __forceinline__ float acc_log(float x) { return logf(x); }
__device__ __forceinline__ double acc_log(double x) { return log(x); }
__device__ __forceinline__ float acc_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double acc_sqrt(double x) { return sqrt(x); }
// A product rounded on its own, never fused into a following add (no FMA contraction): where
// an exact cancellation matters, e.g. layer_norm's dxhat - mean(dxhat) with C = 1.
__device__ __forceinline__ float acc_mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double acc_mul_rn(double a, double b) { return __dmul_rn(a, b); }
template <typename A> __device__ __forceinline__ A acc_max(A a, A b) { return a > b ? a : b; }
template <typename A> __device__ __forceinline__ A neg_inf() { return -A(INFINITY); }

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

template <typename A>
__device__ __forceinline__ A warp_max(A v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = acc_max(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Online softmax state of a set of values: m = their max, s = sum of exp(value - m).
// Empty sets are (-inf, 0); merging is -inf safe.
template <typename A>
__device__ __forceinline__ void online_add(A& m, A& s, A x) {
    if (x > m) {
        s = s * acc_exp(m - x) + A(1);
        m = x;
    } else if (m != neg_inf<A>()) {
        s += acc_exp(x - m);
    }
}

template <typename A>
__device__ __forceinline__ void online_merge(A& m, A& s, A m2, A s2) {
    A mn = acc_max(m, m2);
    if (mn == neg_inf<A>()) return;  // both empty
    s = s * acc_exp(m - mn) + s2 * acc_exp(m2 - mn);
    m = mn;
}

// ---- row groups: kThreads threads work on one row. kThreads == 32: one warp per row, several
// rows per block, no shared memory. kThreads > 32: the whole block is one row; partial results
// go through `shared` (kThreads / 32 slots) and are combined in warp order. ----

template <int kThreads, typename A>
__device__ __forceinline__ A group_sum(A v, A* shared) {
    v = warp_sum(v);
    if constexpr (kThreads == 32) {
        return v;
    } else {
        int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        __syncthreads();  // the previous use of `shared` is finished
        if (lane == 0) shared[warp] = v;
        __syncthreads();
        A total = shared[0];
        for (int i = 1; i < kThreads / 32; i++) total += shared[i];
        return total;
    }
}

template <int kThreads, typename A>
__device__ __forceinline__ void group_online_merge(A& m, A& s, A* shared_m, A* shared_s) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        A m2 = __shfl_xor_sync(0xffffffffu, m, offset);
        A s2 = __shfl_xor_sync(0xffffffffu, s, offset);
        online_merge(m, s, m2, s2);
    }
    if constexpr (kThreads > 32) {
        int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        __syncthreads();
        if (lane == 0) {
            shared_m[warp] = m;
            shared_s[warp] = s;
        }
        __syncthreads();
        m = shared_m[0];
        s = shared_s[0];
        for (int i = 1; i < kThreads / 32; i++) online_merge(m, s, shared_m[i], shared_s[i]);
    }
}

// The row of this thread and its index inside the row's group, for kThreads-thread row groups
// (kThreads == 32: blockDim.x / 32 rows per block; else one row per block).
template <int kThreads>
__device__ __forceinline__ void group_row_position(int64_t& row, int& tid) {
    if constexpr (kThreads == 32) {
        row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
        tid = threadIdx.x % 32;
    } else {
        row = blockIdx.x;
        tid = threadIdx.x;
    }
}

// Rows of a tensor whose last dim is C: (N, C) with N = numel / C.
inline void rows_of(const Tensor& x, int64_t& N, int64_t& C) {
    C = x.dim() ? x.shape().back() : 1;
    N = C ? x.numel() / C : 0;
}

// Temporary device memory (partial sums, row statistics), freed safely while still queued.
using DeviceScratch = kernels::ScratchBuffer;

// Lets `kernel` use more than the default 48 KiB of dynamic shared memory.
template <typename Kernel>
inline void allow_dynamic_smem(Kernel kernel, size_t nbytes) {
    if (nbytes > 48 * 1024)
        RC_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(nbytes)));
}

}  // namespace fused
}  // namespace rankclip
