// cuda/rows.cu
// defines: CudaBackend's row kernels over the last dim of a contiguous (N, R) tensor:
// reduce_rows (sum / max / min), reduce_cols (the same down the columns of (A, R, C): a bias
// gradient), argmax_rows, cumsum_rows and sort_rows.
//
// Determinism: one block per row (blocks loop over rows when N is large); each thread walks a
// fixed subset of the row, then partial results combine through a fixed tree (warp shuffles,
// then the warps' results in warp order). The block size depends only on R, so a given shape
// always does the same arithmetic. Semantics follow engine/cpu/cpu_reduce.cpp: sums accumulate
// in double, max/min propagate NaN, argmax returns the first maximum, sort is stable.
#include <cuda_bf16.h>

#include <algorithm>

#include <cub/device/device_segmented_sort.cuh>

#include "cuda/cuda_backend.h"
#include "cuda/kernel_common.cuh"
#include "engine/ops.h"

namespace rankclip {

using namespace kernels;

namespace {

constexpr int kMaxRowThreads = 256;

// Threads per row: enough warps to cover short rows, at most kMaxRowThreads.
int row_threads(int64_t R) {
    int t = 32;
    while (t < kMaxRowThreads && t < R) t *= 2;
    return t;
}

int row_blocks(int64_t N) { return int(N < 65535 * 16 ? N : 65535 * 16); }

// Reduces `v` over the block with `combine`, warps first, then the warps' results in order.
// All threads must call it; every thread gets the result.
template <typename V, typename Combine>
__device__ V block_reduce(V v, Combine combine, V* shared) {
    for (int offset = 16; offset > 0; offset >>= 1) v = combine(v, __shfl_down_sync(0xffffffffu, v, offset));
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    __syncthreads();  // the previous use of `shared` is finished
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    V total = shared[0];
    for (int w = 1; w < warps; w++) total = combine(total, shared[w]);
    return total;
}

struct SumOp {
    __device__ double operator()(double a, double b) const { return a + b; }
};
// NaN propagates: a NaN anywhere makes the result NaN (if a is not NaN and b is, b wins).
struct MaxOp {
    __device__ double operator()(double a, double b) const { return (a != a || a > b) ? a : b; }
};
struct MinOp {
    __device__ double operator()(double a, double b) const { return (a != a || a < b) ? a : b; }
};

// x: (N, R) -> out: (N). All values are exact in double, so max/min give the element itself.
template <typename T, typename Op, bool kSquare = false>
__global__ void reduce_rows_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t N,
                                   int64_t R, double identity, Op op) {
    __shared__ double shared[kMaxRowThreads / 32];
    for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
        const T* xr = x + row * R;
        double acc = identity;
        for (int64_t r = threadIdx.x; r < R; r += blockDim.x) {
            double v = double(load(xr + r));
            acc = op(acc, kSquare ? v * v : v);
        }
        acc = block_reduce(acc, op, shared);
        if (threadIdx.x == 0) store(out + row, acc);
    }
}

// (value, index) of a candidate maximum; index -1: none (an empty or all-NaN subset).
template <typename V>
struct ArgBest {
    V value;
    int64_t index;
};

template <typename V>
struct ArgmaxOp {
    // The larger value wins; equal values: the earlier index (the CPU's first maximum).
    __device__ ArgBest<V> operator()(ArgBest<V> a, ArgBest<V> b) const {
        if (a.index < 0) return b;
        if (b.index < 0) return a;
        if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
        return a;
    }
};

template <typename V>
__device__ ArgBest<V> shfl_down(ArgBest<V> v, int offset) {
    return {__shfl_down_sync(0xffffffffu, v.value, offset),
            __shfl_down_sync(0xffffffffu, v.index, offset)};
}

// x: (N, R) -> out: (N) int64. The CPU scans `if (x[r] > x[best]) best = r` from best = 0, so
// NaNs are never picked, except that a NaN at position 0 is never replaced.
template <typename T>
__global__ void argmax_rows_kernel(const T* __restrict__ x, int64_t* __restrict__ out, int64_t N,
                                   int64_t R) {
    using V = LoadType<T>;
    __shared__ ArgBest<V> shared[kMaxRowThreads / 32];
    ArgmaxOp<V> op;
    for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
        const T* xr = x + row * R;
        ArgBest<V> best{V(0), -1};
        for (int64_t r = threadIdx.x; r < R; r += blockDim.x) {
            V v = load(xr + r);
            if (!is_nan(v) && (best.index < 0 || v > best.value)) best = {v, r};
        }
        for (int offset = 16; offset > 0; offset >>= 1) best = op(best, shfl_down(best, offset));
        int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
        __syncthreads();
        if (lane == 0) shared[warp] = best;
        __syncthreads();
        if (threadIdx.x == 0) {
            ArgBest<V> total = shared[0];
            for (int w = 1; w < warps; w++) total = op(total, shared[w]);
            out[row] = (is_nan(load(xr)) || total.index < 0) ? 0 : total.index;
        }
    }
}

}  // namespace

void CudaBackend::reduce_rows(ReduceOp op, const Tensor& x, Tensor& out) {
    int64_t R = x.dim() ? x.shape().back() : 1;
    int64_t N = out.numel();
    if (N == 0) return;
    RC_CHECK(R > 0 || op == ReduceOp::Sum || op == ReduceOp::SumSquares, "max/min: cannot reduce an empty dimension (", x.str(), ")");
    CudaContext& ctx = cuda_context(out.device().index);
    RC_GPU_FLOAT_TYPES(x.dtype(), "reduce", x, {
        const T* xs = static_cast<const T*>(x.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
        int threads = row_threads(R), blocks = row_blocks(N);
        switch (op) {
            case ReduceOp::Sum:
                reduce_rows_kernel<<<blocks, threads, 0, ctx.stream>>>(xs, ys, N, R, 0.0, SumOp{});
                break;
            case ReduceOp::SumSquares:
                reduce_rows_kernel<T, SumOp, true><<<blocks, threads, 0, ctx.stream>>>(xs, ys, N, R, 0.0, SumOp{});
                break;
            case ReduceOp::Max:
                reduce_rows_kernel<<<blocks, threads, 0, ctx.stream>>>(xs, ys, N, R, -INFINITY, MaxOp{});
                break;
            case ReduceOp::Min:
                reduce_rows_kernel<<<blocks, threads, 0, ctx.stream>>>(xs, ys, N, R, INFINITY, MinOp{});
                break;
        }
        RC_CUDA_CHECK_LAUNCH("reduce_rows_kernel");
    });
}

namespace {

// ---- reduce_cols: x (A, R, C) -> out (A, C), each column reduced over its R rows. A bias
// gradient ((B T, N) -> (N)) has few columns and many rows, so the rows are cut into S chunks:
// pass 1 reduces each (slab, chunk, 32 columns) tile in a block of 32 x 8 threads (a thread
// walks every 8th row of its column, coalesced along C; the 8 partials combine in order) into a
// double workspace (A, S, C); pass 2 combines the S partials of each column in chunk order. S
// depends only on the shape, so a shape always does the same arithmetic. ----

constexpr int kColTile = 32, kColLanes = 8;

template <typename T, typename Op, bool kSquare = false>
__global__ void reduce_cols_partial_kernel(const T* __restrict__ x, double* __restrict__ partial, int64_t R,
                                           int64_t C, int64_t chunk, int S, double identity, Op op) {
    __shared__ double lanes[kColLanes][kColTile];
    const int64_t a = blockIdx.z, s = blockIdx.y, c = int64_t(blockIdx.x) * kColTile + threadIdx.x;
    const int64_t r0 = s * chunk, r1 = r0 + chunk < R ? r0 + chunk : R;
    double acc = identity;
    if (c < C) {
        const T* xa = x + a * R * C + c;
        for (int64_t r = r0 + threadIdx.y; r < r1; r += kColLanes) {
            double v = double(load(xa + r * C));
            acc = op(acc, kSquare ? v * v : v);
        }
    }
    lanes[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int l = 1; l < kColLanes; l++) acc = op(acc, lanes[l][threadIdx.x]);
        partial[(a * S + s) * C + c] = acc;
    }
}

template <typename T, typename Op>
__global__ void reduce_cols_combine_kernel(const double* __restrict__ partial, T* __restrict__ out, int64_t A,
                                           int64_t C, int S, Op op) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;  // (a, c) flat
    if (i >= A * C) return;
    const int64_t a = i / C, c = i % C;
    double acc = partial[a * S * C + c];
    for (int s = 1; s < S; s++) acc = op(acc, partial[(a * S + s) * C + c]);
    store(out + i, acc);
}

}  // namespace

void CudaBackend::reduce_cols(ReduceOp op, const Tensor& x, Tensor& out) {
    const int64_t A = x.size(0), R = x.size(1), C = x.size(2);
    if (A * C == 0) return;
    RC_CHECK(R > 0 || op == ReduceOp::Sum || op == ReduceOp::SumSquares,
             "max/min: cannot reduce an empty dimension (", x.str(), ")");
    // about 4 blocks per multiprocessor of a large GPU over all tiles, each chunk at least 64 rows
    const int64_t tiles = A * ((C + kColTile - 1) / kColTile);
    const int64_t most = std::max<int64_t>(1, (R + 63) / 64);
    const int S = int(std::min<int64_t>(std::max<int64_t>(1, (528 + tiles - 1) / tiles), std::min<int64_t>(most, 1024)));
    const int64_t chunk = R == 0 ? 1 : (R + S - 1) / S;
    Tensor partial = empty({A, S, C}, DType::F64, out.device());
    CudaContext& ctx = cuda_context(out.device().index);
    RC_GPU_FLOAT_TYPES(x.dtype(), "reduce", x, {
        const T* xs = static_cast<const T*>(x.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
        double* ps = partial.data<double>();
        const dim3 grid(unsigned((C + kColTile - 1) / kColTile), unsigned(S), unsigned(A)), block(kColTile, kColLanes);
        const int combine_blocks = int((A * C + 255) / 256);
        switch (op) {
            case ReduceOp::Sum:
                reduce_cols_partial_kernel<<<grid, block, 0, ctx.stream>>>(xs, ps, R, C, chunk, S, 0.0, SumOp{});
                reduce_cols_combine_kernel<<<combine_blocks, 256, 0, ctx.stream>>>(ps, ys, A, C, S, SumOp{});
                break;
            case ReduceOp::SumSquares:
                reduce_cols_partial_kernel<T, SumOp, true><<<grid, block, 0, ctx.stream>>>(xs, ps, R, C, chunk, S, 0.0, SumOp{});
                reduce_cols_combine_kernel<<<combine_blocks, 256, 0, ctx.stream>>>(ps, ys, A, C, S, SumOp{});
                break;
            case ReduceOp::Max:
                reduce_cols_partial_kernel<<<grid, block, 0, ctx.stream>>>(xs, ps, R, C, chunk, S, -INFINITY, MaxOp{});
                reduce_cols_combine_kernel<<<combine_blocks, 256, 0, ctx.stream>>>(ps, ys, A, C, S, MaxOp{});
                break;
            case ReduceOp::Min:
                reduce_cols_partial_kernel<<<grid, block, 0, ctx.stream>>>(xs, ps, R, C, chunk, S, INFINITY, MinOp{});
                reduce_cols_combine_kernel<<<combine_blocks, 256, 0, ctx.stream>>>(ps, ys, A, C, S, MinOp{});
                break;
        }
        RC_CUDA_CHECK_LAUNCH("reduce_cols_kernel");
    });
}

void CudaBackend::argmax_rows(const Tensor& x, Tensor& out_i64) {
    int64_t R = x.dim() ? x.shape().back() : 1;
    int64_t N = out_i64.numel();
    RC_CHECK(out_i64.dtype() == DType::I64, "cuda argmax: output must be I64, got ", out_i64.str());
    RC_CHECK(R > 0 || N == 0, "argmax: cannot reduce an empty dimension (", x.str(), ")");
    if (N == 0) return;
    CudaContext& ctx = cuda_context(out_i64.device().index);
    RC_GPU_ALL_TYPES(x.dtype(), {
        argmax_rows_kernel<T><<<row_blocks(N), row_threads(R), 0, ctx.stream>>>(
            static_cast<const T*>(x.raw_data()), out_i64.data<int64_t>(), N, R);
        RC_CUDA_CHECK_LAUNCH("argmax_rows_kernel");
    });
}

// ---- cumsum: inclusive scan of each row, in chunks of blockDim elements. Each chunk is
// scanned in registers and shared memory (warp scans, then a scan of the warp totals) and
// offset by the running total of the earlier chunks. Accumulates in double. ----

namespace {

template <typename T>
__global__ void cumsum_rows_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t N,
                                   int64_t R, bool reverse) {
    __shared__ double warp_totals[kMaxRowThreads / 32];
    __shared__ double carry_shared;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
        const T* xr = x + row * R;
        T* yr = out + row * R;
        double carry = 0;  // sum of the chunks before this one (same value in every thread)
        for (int64_t start = 0; start < R; start += blockDim.x) {
            int64_t i = start + threadIdx.x;
            int64_t r = reverse ? R - 1 - i : i;
            double v = i < R ? double(load(xr + r)) : 0.0;
            for (int offset = 1; offset < 32; offset <<= 1) {  // inclusive scan within the warp
                double up = __shfl_up_sync(0xffffffffu, v, offset);
                if (lane >= offset) v += up;
            }
            __syncthreads();  // the previous chunk is done with warp_totals / carry_shared
            if (lane == 31) warp_totals[warp] = v;
            __syncthreads();
            double before = carry;
            for (int w = 0; w < warp; w++) before += warp_totals[w];
            if (i < R) store(yr + r, before + v);
            if (threadIdx.x == blockDim.x - 1) carry_shared = before + v;
            __syncthreads();
            carry = carry_shared;
        }
    }
}

}  // namespace

void CudaBackend::cumsum_rows(const Tensor& x, Tensor& out, bool reverse) {
    int64_t R = x.dim() ? x.shape().back() : 1;
    int64_t N = R ? x.numel() / R : 0;
    if (N == 0) return;
    CudaContext& ctx = cuda_context(out.device().index);
    RC_GPU_FLOAT_TYPES(x.dtype(), "cumsum", x, {
        cumsum_rows_kernel<T><<<row_blocks(N), row_threads(R), 0, ctx.stream>>>(
            static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), N, R, reverse);
        RC_CUDA_CHECK_LAUNCH("cumsum_rows_kernel");
    });
}

// ---- sort: cub's segmented stable sort of (value, index) pairs, one segment per row ----

namespace {

// cub orders keys by their C++ type; bf16 storage is handed to it as __nv_bfloat16.
template <typename T> struct CubKey { using type = T; };
template <> struct CubKey<bf16> { using type = __nv_bfloat16; };

// offsets[n] = n * R for n in [0, N]; positions[i] = i % R.
__global__ void sort_setup_kernel(int64_t* __restrict__ offsets, int64_t* __restrict__ positions,
                                  int64_t N, int64_t R) {
    RC_GRID_STRIDE_LOOP(i, N * R) positions[i] = i % R;
    RC_GRID_STRIDE_LOOP(n, N + 1) offsets[n] = n * R;
}

template <typename K>
void segmented_sort(const K* keys_in, K* keys_out, const int64_t* positions, int64_t* indices,
                    int64_t N, int64_t R, const int64_t* offsets, bool descending,
                    const CudaContext& ctx) {
    size_t temp_bytes = 0;
    auto run = [&](void* temp) {
        if (descending)
            return cub::DeviceSegmentedSort::StableSortPairsDescending(
                temp, temp_bytes, keys_in, keys_out, positions, indices, N * R, N, offsets,
                offsets + 1, ctx.stream);
        return cub::DeviceSegmentedSort::StableSortPairs(temp, temp_bytes, keys_in, keys_out,
                                                         positions, indices, N * R, N, offsets,
                                                         offsets + 1, ctx.stream);
    };
    RC_CUDA_CHECK(run(nullptr));  // asks for the temporary storage size
    ScratchBuffer temp(ctx, temp_bytes);
    RC_CUDA_CHECK(run(temp.get()));
}

}  // namespace

void CudaBackend::sort_rows(const Tensor& x, Tensor& values, Tensor& indices, bool descending) {
    int64_t R = x.dim() ? x.shape().back() : 1;
    int64_t N = R ? x.numel() / R : 0;
    RC_CHECK(indices.dtype() == DType::I64 && values.dtype() == x.dtype(),
             "cuda sort: values must have x's dtype and indices be I64: ", x.str(), " -> ",
             values.str(), ", ", indices.str());
    if (N == 0) return;
    CudaContext& ctx = cuda_context(x.device().index);
    ScratchBuffer offsets(ctx, size_t(N + 1) * sizeof(int64_t));
    ScratchBuffer positions(ctx, size_t(N * R) * sizeof(int64_t));
    sort_setup_kernel<<<grid_for(N * R + 1, ctx), kThreads, 0, ctx.stream>>>(
        offsets.as<int64_t>(), positions.as<int64_t>(), N, R);
    RC_CUDA_CHECK_LAUNCH("sort_setup_kernel");
    RC_GPU_ALL_TYPES(x.dtype(), {
        using K = typename CubKey<T>::type;
        segmented_sort<K>(static_cast<const K*>(x.raw_data()), static_cast<K*>(values.raw_data()),
                          positions.as<int64_t>(), indices.data<int64_t>(), N, R,
                          offsets.as<int64_t>(), descending, ctx);
    });
}

}  // namespace rankclip
