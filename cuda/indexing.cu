// cuda/indexing.cu
// defines: CudaBackend's indexing kernels: index_select and its scatter-add index_add (the
// embedding backward), gather and its scatter-add scatter_add. Index tensors are I64 or I32.
//
// Deterministic scatter-adds without float atomics: the (destination, source position) pairs
// are sorted by destination with cub's radix sort, which is stable, so every destination sees
// its sources in increasing position order. Then one thread per destination element (per run
// of equal keys) adds them in that order: the same additions, in the same order and with the
// same rounding, as the CPU backend's sequential loop (engine/cpu/cpu_indexing.cpp).
//
// Out-of-range indices: a kernel cannot throw, so it skips the entry (index_select/gather write
// 0) and raises a bit in the context's error_flags; the next synchronization throws an Error
// naming the op (cuda/device.h).
#include <cub/device/device_radix_sort.cuh>

#include "cuda/cuda_backend.h"
#include "cuda/kernel_common.cuh"

namespace rankclip {

using namespace kernels;

namespace {

__device__ __forceinline__ void raise_error(unsigned* flags, unsigned bit) {
    // Every thread of a kernel raises the same bit and kernels run one after another on the
    // stream, so a plain read-modify-write cannot lose a bit.
    volatile unsigned* f = flags;
    *f = *f | bit;
}

// out (outer, m, inner)[o, j, i] = x (outer, n, inner)[o, index[j], i]
template <typename U, typename I>
__global__ void index_select_kernel(const U* __restrict__ x, const I* __restrict__ index,
                                    U* __restrict__ out, int64_t outer, int64_t n, int64_t m,
                                    int64_t inner, unsigned* flags) {
    RC_GRID_STRIDE_LOOP(p, outer * m * inner) {
        int64_t i = p % inner, j = (p / inner) % m, o = p / (inner * m);
        int64_t k = index[j];
        if (k < 0 || k >= n) {
            raise_error(flags, kBadIndexSelect);
            out[p] = U(0);
        } else {
            out[p] = x[(o * n + k) * inner + i];
        }
    }
}

// out (outer, m, inner)[o, j, i] = x (outer, n, inner)[o, index[o, j, i], i]
template <typename U, typename I>
__global__ void gather_kernel(const U* __restrict__ x, const I* __restrict__ index,
                              U* __restrict__ out, int64_t outer, int64_t n, int64_t m,
                              int64_t inner, unsigned* flags) {
    RC_GRID_STRIDE_LOOP(p, outer * m * inner) {
        int64_t i = p % inner, o = p / (inner * m);
        int64_t k = index[p];
        if (k < 0 || k >= n) {
            raise_error(flags, kBadGather);
            out[p] = U(0);
        } else {
            out[p] = x[(o * n + k) * inner + i];
        }
    }
}

// One addition of the CPU's `store(dst, load(dst) + load(src))`: in the load type, rounded to
// the storage type after every step (only bf16 actually rounds).
template <typename T>
__device__ __forceinline__ Acc<T> add_rounded(Acc<T> acc, Acc<T> v) {
    Acc<T> sum = acc + v;
    if constexpr (std::is_same_v<T, bf16>) return bf16_bits_to_float(float_to_bf16_bits(sum));
    else return sum;
}

int key_bits(int64_t max_key) {
    int bits = 1;
    while (bits < 63 && (int64_t(1) << bits) <= max_key) bits++;
    return bits;
}

// Sorts (keys, values) by key, stably, looking only at the low `bits` bits (keys >= 0).
void sort_pairs(const int64_t* keys_in, int64_t* keys_out, const int64_t* values_in,
                int64_t* values_out, int64_t count, int bits, const CudaContext& ctx) {
    size_t temp_bytes = 0;
    RC_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in, keys_out, values_in,
                                                  values_out, count, 0, bits, ctx.stream));
    ScratchBuffer temp(ctx, temp_bytes);
    RC_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.get(), temp_bytes, keys_in, keys_out,
                                                  values_in, values_out, count, 0, bits,
                                                  ctx.stream));
}

// ---- index_add: keys[j] = index[j] (n when out of range), values[j] = j ----

template <typename I>
__global__ void index_add_keys_kernel(const I* __restrict__ index, int64_t m, int64_t n,
                                      int64_t* __restrict__ keys, int64_t* __restrict__ positions,
                                      unsigned* flags) {
    RC_GRID_STRIDE_LOOP(j, m) {
        int64_t k = index[j];
        if (k < 0 || k >= n) {
            raise_error(flags, kBadIndexAdd);
            k = n;
        }
        keys[j] = k;
        positions[j] = j;
    }
}

// gx (outer, n, inner)[o, d, i] += g (outer, m, inner)[o, j, i] for the j with index[j] == d, in
// increasing j. Thread (o, k, i) does the run of sorted keys that starts at k, if one does. A run
// can be long (a text batch's padding token: ~17,000 of b32's 19,712 positions), and its adds
// must stay in order; so its loads go 8 at a time, ahead of the adds, rather than one add
// waiting on each load.
template <typename T>
__global__ void index_add_kernel(const T* __restrict__ g, const int64_t* __restrict__ keys,
                                 const int64_t* __restrict__ positions, T* __restrict__ gx,
                                 int64_t outer, int64_t n, int64_t m, int64_t inner) {
    constexpr int kAhead = 8;
    RC_GRID_STRIDE_LOOP(p, outer * m * inner) {
        int64_t i = p % inner, k = (p / inner) % m, o = p / (inner * m);
        int64_t d = keys[k];
        if (d >= n || (k > 0 && keys[k - 1] == d)) continue;
        T* dst = gx + (o * n + d) * inner + i;
        const T* src = g + o * m * inner + i;
        Acc<T> acc = load(dst);
        int64_t kk = k;
        for (; kk + kAhead <= m && keys[kk + kAhead - 1] == d; kk += kAhead) {  // keys are sorted
            Acc<T> v[kAhead];
#pragma unroll
            for (int u = 0; u < kAhead; u++) v[u] = load(src + positions[kk + u] * inner);
#pragma unroll
            for (int u = 0; u < kAhead; u++) acc = add_rounded<T>(acc, v[u]);
        }
        for (; kk < m && keys[kk] == d; kk++) acc = add_rounded<T>(acc, load(src + positions[kk] * inner));
        store(dst, acc);
    }
}

// ---- scatter_add: one key per entry p = (o, j, i) of g/index: the destination column (o, i)
// and row d, as ((o * inner + i) * (n + 1) + d), d = n when out of range; values[p] = p ----

template <typename I>
__global__ void scatter_add_keys_kernel(const I* __restrict__ index, int64_t outer, int64_t n,
                                        int64_t m, int64_t inner, int64_t* __restrict__ keys,
                                        int64_t* __restrict__ positions, unsigned* flags) {
    RC_GRID_STRIDE_LOOP(p, outer * m * inner) {
        int64_t i = p % inner, o = p / (inner * m);
        int64_t d = index[p];
        if (d < 0 || d >= n) {
            raise_error(flags, kBadScatterAdd);
            d = n;
        }
        keys[p] = (o * inner + i) * (n + 1) + d;
        positions[p] = p;
    }
}

template <typename T>
__global__ void scatter_add_kernel(const T* __restrict__ g, const int64_t* __restrict__ keys,
                                   const int64_t* __restrict__ positions, T* __restrict__ gx,
                                   int64_t total, int64_t n, int64_t inner) {
    RC_GRID_STRIDE_LOOP(k, total) {
        int64_t key = keys[k];
        if (k > 0 && keys[k - 1] == key) continue;
        int64_t d = key % (n + 1), column = key / (n + 1);
        if (d == n) continue;
        int64_t o = column / inner, i = column % inner;
        T* dst = gx + (o * n + d) * inner + i;
        Acc<T> acc = load(dst);
        for (int64_t kk = k; kk < total && keys[kk] == key; kk++)
            acc = add_rounded<T>(acc, load(g + positions[kk]));
        store(dst, acc);
    }
}

void check_index_dtype(const Tensor& index, const char* op) {
    RC_CHECK(index.dtype() == DType::I64 || index.dtype() == DType::I32, "cuda ", op,
             ": index must be I64 or I32, got ", index.str());
}

// Runs BODY with I bound to the index tensor's element type.
#define RC_INDEX_TYPES(INDEX, ...)                                 \
    if ((INDEX).dtype() == DType::I64) {                           \
        using I = int64_t;                                         \
        __VA_ARGS__;                                               \
    } else {                                                       \
        using I = int32_t;                                         \
        __VA_ARGS__;                                               \
    }

// Same-size element types move as raw bits.
template <typename U>
void launch_index_select(const Tensor& x, const Tensor& index, Tensor& out, int64_t outer,
                         int64_t n, int64_t m, int64_t inner, const CudaContext& ctx) {
    RC_INDEX_TYPES(index, {
        index_select_kernel<U, I><<<grid_for(outer * m * inner, ctx), kThreads, 0, ctx.stream>>>(
            static_cast<const U*>(x.raw_data()), static_cast<const I*>(index.raw_data()),
            static_cast<U*>(out.raw_data()), outer, n, m, inner, ctx.error_flags);
        RC_CUDA_CHECK_LAUNCH("index_select_kernel");
    });
}

template <typename U>
void launch_gather(const Tensor& x, const Tensor& index, Tensor& out, int64_t outer, int64_t n,
                   int64_t m, int64_t inner, const CudaContext& ctx) {
    RC_INDEX_TYPES(index, {
        gather_kernel<U, I><<<grid_for(outer * m * inner, ctx), kThreads, 0, ctx.stream>>>(
            static_cast<const U*>(x.raw_data()), static_cast<const I*>(index.raw_data()),
            static_cast<U*>(out.raw_data()), outer, n, m, inner, ctx.error_flags);
        RC_CUDA_CHECK_LAUNCH("gather_kernel");
    });
}

}  // namespace

void CudaBackend::index_select(const Tensor& x, const Tensor& index, Tensor& out, int64_t outer,
                               int64_t n, int64_t inner) {
    check_index_dtype(index, "index_select");
    int64_t m = index.numel();
    if (outer * m * inner == 0) return;
    CudaContext& ctx = cuda_context(out.device().index);
    switch (dtype_size(x.dtype())) {
        case 2: launch_index_select<uint16_t>(x, index, out, outer, n, m, inner, ctx); break;
        case 4: launch_index_select<uint32_t>(x, index, out, outer, n, m, inner, ctx); break;
        default: launch_index_select<uint64_t>(x, index, out, outer, n, m, inner, ctx); break;
    }
}

void CudaBackend::gather(const Tensor& x, const Tensor& index, Tensor& out, int64_t outer,
                         int64_t n, int64_t m, int64_t inner) {
    check_index_dtype(index, "gather");
    if (outer * m * inner == 0) return;
    CudaContext& ctx = cuda_context(out.device().index);
    switch (dtype_size(x.dtype())) {
        case 2: launch_gather<uint16_t>(x, index, out, outer, n, m, inner, ctx); break;
        case 4: launch_gather<uint32_t>(x, index, out, outer, n, m, inner, ctx); break;
        default: launch_gather<uint64_t>(x, index, out, outer, n, m, inner, ctx); break;
    }
}

void CudaBackend::index_add(const Tensor& g, const Tensor& index, Tensor& gx, int64_t outer,
                            int64_t n, int64_t inner) {
    check_index_dtype(index, "index_add");
    int64_t m = index.numel();
    if (outer * m * inner == 0) return;
    CudaContext& ctx = cuda_context(gx.device().index);
    RC_GPU_FLOAT_TYPES(g.dtype(), "index_add", g, {
        // keys/positions, then their sorted copies
        ScratchBuffer buffer(ctx, size_t(4 * m) * sizeof(int64_t));
        int64_t* keys = buffer.as<int64_t>();
        int64_t* positions = keys + m;
        int64_t* sorted_keys = keys + 2 * m;
        int64_t* sorted_positions = keys + 3 * m;
        RC_INDEX_TYPES(index, {
            index_add_keys_kernel<I><<<grid_for(m, ctx), kThreads, 0, ctx.stream>>>(
                static_cast<const I*>(index.raw_data()), m, n, keys, positions, ctx.error_flags);
            RC_CUDA_CHECK_LAUNCH("index_add_keys_kernel");
        });
        sort_pairs(keys, sorted_keys, positions, sorted_positions, m, key_bits(n), ctx);
        index_add_kernel<T><<<grid_for(outer * m * inner, ctx), kThreads, 0, ctx.stream>>>(
            static_cast<const T*>(g.raw_data()), sorted_keys, sorted_positions,
            static_cast<T*>(gx.raw_data()), outer, n, m, inner);
        RC_CUDA_CHECK_LAUNCH("index_add_kernel");
    });
}

void CudaBackend::scatter_add(const Tensor& g, const Tensor& index, Tensor& gx, int64_t outer,
                              int64_t n, int64_t m, int64_t inner) {
    check_index_dtype(index, "scatter_add");
    int64_t total = outer * m * inner;
    if (total == 0) return;
    RC_CHECK(outer * inner <= (INT64_MAX / 2) / (n + 1), "cuda scatter_add: too many elements for "
             "its int64 sort keys: outer ", outer, ", n ", n, ", inner ", inner);
    CudaContext& ctx = cuda_context(gx.device().index);
    RC_GPU_FLOAT_TYPES(g.dtype(), "scatter_add", g, {
        ScratchBuffer buffer(ctx, size_t(4 * total) * sizeof(int64_t));
        int64_t* keys = buffer.as<int64_t>();
        int64_t* positions = keys + total;
        int64_t* sorted_keys = keys + 2 * total;
        int64_t* sorted_positions = keys + 3 * total;
        RC_INDEX_TYPES(index, {
            scatter_add_keys_kernel<I><<<grid_for(total, ctx), kThreads, 0, ctx.stream>>>(
                static_cast<const I*>(index.raw_data()), outer, n, m, inner, keys, positions,
                ctx.error_flags);
            RC_CUDA_CHECK_LAUNCH("scatter_add_keys_kernel");
        });
        sort_pairs(keys, sorted_keys, positions, sorted_positions, total,
                   key_bits(outer * inner * (n + 1) - 1), ctx);
        scatter_add_kernel<T><<<grid_for(total, ctx), kThreads, 0, ctx.stream>>>(
            static_cast<const T*>(g.raw_data()), sorted_keys, sorted_positions,
            static_cast<T*>(gx.raw_data()), total, n, inner);
        RC_CUDA_CHECK_LAUNCH("scatter_add_kernel");
    });
}

}  // namespace rankclip
