// cuda/kernel_common.cuh
// defines: what the CUDA backend's own kernels (cuda/cuda_backend.cu, cuda/rows.cu,
// cuda/indexing.cu) share: scalar load/store with the CPU backend's exact conversions
// (engine/cpu/cpu_backend.h: bf16 rounds to nearest even, NaN stays NaN; other casts go
// through double), the dtype dispatch macros, StridedLayout (element offsets of up to N
// operands of any strides, dims coalesced on the host), launch sizing, Pack (dense elementwise
// loops in whole vectors), and ScratchBuffer.
#pragma once
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <type_traits>

#include "cuda/cuda_check.h"
#include "cuda/device.h"
#include "engine/tensor.h"

namespace rankclip {
namespace kernels {

// ---- scalars. Storage types: float, double, bf16 (engine/dtype.h), int32_t, int64_t. Loads
// give the CPU's load type (float for F32/BF16, double, int64 for integers); stores take the
// value the CPU would hand to store() and convert it the same way. ----

__device__ __forceinline__ float bf16_bits_to_float(uint16_t bits) {
    return __uint_as_float(uint32_t(bits) << 16);
}
// Same rounding as engine/dtype.h's float_to_bf16, bit for bit.
__device__ __forceinline__ uint16_t float_to_bf16_bits(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
    uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);
    return uint16_t((u + rounding_bias) >> 16);
}

__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ double load(const double* p) { return *p; }
__device__ __forceinline__ float load(const bf16* p) { return bf16_bits_to_float(p->bits); }
__device__ __forceinline__ int64_t load(const int32_t* p) { return *p; }
__device__ __forceinline__ int64_t load(const int64_t* p) { return *p; }

// float values into float or bf16 storage (float -> double -> float is exact, so this equals the
// CPU's store(p, double(v))).
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(bf16* p, float v) { p->bits = float_to_bf16_bits(v); }
// double values, as the CPU's store(p, double).
__device__ __forceinline__ void store(float* p, double v) { *p = float(v); }
__device__ __forceinline__ void store(double* p, double v) { *p = v; }
__device__ __forceinline__ void store(bf16* p, double v) { p->bits = float_to_bf16_bits(float(v)); }
__device__ __forceinline__ void store(int32_t* p, double v) { *p = int32_t(v); }
__device__ __forceinline__ void store(int64_t* p, double v) { *p = int64_t(v); }

template <typename T> using LoadType = decltype(load(static_cast<const T*>(nullptr)));

// dst = src with a dtype cast, exactly as the CPU's store(dst, load(src)).
template <typename D, typename S>
__device__ __forceinline__ void cast_store(D* dst, const S* src) {
    auto v = load(src);
    if constexpr (std::is_same_v<decltype(v), float> &&
                  (std::is_same_v<D, float> || std::is_same_v<D, bf16>))
        store(dst, v);
    else
        store(dst, double(v));
}

// Compute precision of the float kernels: float for F32 and BF16 storage, double for F64.
template <typename T> struct AccOf { using type = float; };
template <> struct AccOf<double> { using type = double; };
template <typename T> using Acc = typename AccOf<T>::type;

template <typename V> __device__ __forceinline__ bool is_nan(V v) {
    if constexpr (std::is_floating_point_v<V>) return v != v;
    else return false;
}

// ---- launch sizing: grid-stride loops over n items ----

constexpr int kThreads = 256;

inline int grid_for(int64_t n, const CudaContext& ctx, int threads = kThreads) {
    int64_t blocks = (n + threads - 1) / threads;
    int64_t cap = int64_t(ctx.num_sms) * 32;
    if (blocks > cap) blocks = cap;
    return int(blocks < 1 ? 1 : blocks);
}

#define RC_GRID_STRIDE_LOOP(i, n)                                                       \
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);           \
         i += int64_t(gridDim.x) * blockDim.x)

// ---- Pack: dense elementwise loops in whole vectors. Elementwise kernels are bound by memory
// traffic, and one 2-byte bf16 (or 4-byte float) access per element leaves much of it unused:
// the b32 step's quick_gelu ran at 1.2 TB/s. When every operand is dense and aligned to its
// Pack, a thread moves kPack elements of each operand at once (16 bytes of bf16, 32 of float,
// as 128-bit loads and stores), then the tail goes one by one. Each element is computed exactly
// as in the one-by-one loop. ----

constexpr int kPack = 8;
template <typename T> struct alignas(sizeof(T) * kPack) Pack { T v[kPack]; };

inline bool pack_aligned(const void* p, size_t element_size) {
    return reinterpret_cast<uintptr_t>(p) % (element_size * kPack) == 0;
}

// ---- StridedLayout: for the row-major linear index of an element of `shape`, the element
// offset inside each of N operands. The host drops size-1 dims and merges dims that are
// contiguous in every operand, so most layouts end up with one or two dims; `dense` means every
// operand is plainly contiguous (offset == linear index). ----

constexpr int kMaxDims = 12;

template <int N>
struct StridedLayout {
    int ndim = 0;
    bool dense = true;
    int64_t size[kMaxDims];
    int64_t stride[N][kMaxDims];

    __device__ __forceinline__ void offsets(int64_t linear, int64_t (&off)[N]) const {
#pragma unroll
        for (int k = 0; k < N; k++) off[k] = 0;
        for (int d = ndim - 1; d >= 0; d--) {
            int64_t s = size[d];
            int64_t idx = linear % s;
            linear /= s;
#pragma unroll
            for (int k = 0; k < N; k++) off[k] += idx * stride[k][d];
        }
    }
};

template <int N>
StridedLayout<N> make_layout(const Shape& shape, const std::array<const Shape*, N>& strides,
                             const char* op) {
    // Walk dims from the innermost out, merging each into the current one when every operand
    // steps over it exactly like one more row of the current dim.
    int64_t sizes[64];
    int64_t st[N][64];
    int nd = 0;
    RC_CHECK(shape.size() <= 64, op, ": too many dims (", shape.size(), ")");
    for (int d = int(shape.size()) - 1; d >= 0; d--) {
        if (shape[d] == 1) continue;
        bool merge = nd > 0;
        for (int k = 0; k < N && merge; k++)
            merge = (*strides[k])[d] == st[k][nd - 1] * sizes[nd - 1];
        if (merge) {
            sizes[nd - 1] *= shape[d];
        } else {
            sizes[nd] = shape[d];
            for (int k = 0; k < N; k++) st[k][nd] = (*strides[k])[d];
            nd++;
        }
    }
    RC_CHECK(nd <= kMaxDims, op, ": too many non-mergeable dims for the CUDA kernels (", nd,
             " > ", kMaxDims, ") in shape ", shape_str(shape));
    StridedLayout<N> layout;
    layout.ndim = nd;
    layout.dense = nd == 0 || nd == 1;
    for (int k = 0; k < N && nd == 1; k++) layout.dense = layout.dense && st[k][0] == 1;
    for (int d = 0; d < nd; d++) {  // back to outermost-first order
        layout.size[d] = sizes[nd - 1 - d];
        for (int k = 0; k < N; k++) layout.stride[k][d] = st[k][nd - 1 - d];
    }
    return layout;
}

// ---- temporary device memory from the device's caching allocator. Freeing it while kernels
// that use it are still queued is safe: all work of a device is on its one stream. ----
class ScratchBuffer {
public:
    ScratchBuffer(const CudaContext& ctx, size_t nbytes)
        : allocator_(ctx.allocator), ptr_(allocator_->allocate(nbytes)) {}
    ~ScratchBuffer() { allocator_->deallocate(ptr_); }
    ScratchBuffer(const ScratchBuffer&) = delete;
    ScratchBuffer& operator=(const ScratchBuffer&) = delete;
    template <typename U> U* as() const { return static_cast<U*>(ptr_); }
    void* get() const { return ptr_; }

private:
    CachingAllocator* allocator_;
    void* ptr_;
};

}  // namespace kernels
}  // namespace rankclip

// Runs BODY with T bound to the storage type of a floating dtype; other dtypes report the
// missing kernel through Backend::missing (so only inside CudaBackend members).
#define RC_GPU_FLOAT_TYPES(DTYPE, OPNAME, TENSOR, ...)                                       \
    switch (DTYPE) {                                                                         \
        case ::rankclip::DType::F32: { using T = float; __VA_ARGS__; break; }                \
        case ::rankclip::DType::F64: { using T = double; __VA_ARGS__; break; }               \
        case ::rankclip::DType::BF16: { using T = ::rankclip::bf16; __VA_ARGS__; break; }    \
        default: missing(OPNAME, TENSOR);                                                    \
    }

// Same over every dtype.
#define RC_GPU_ALL_TYPES(DTYPE, ...)                                                         \
    switch (DTYPE) {                                                                         \
        case ::rankclip::DType::F32: { using T = float; __VA_ARGS__; break; }                \
        case ::rankclip::DType::F64: { using T = double; __VA_ARGS__; break; }               \
        case ::rankclip::DType::BF16: { using T = ::rankclip::bf16; __VA_ARGS__; break; }    \
        case ::rankclip::DType::I32: { using T = int32_t; __VA_ARGS__; break; }              \
        case ::rankclip::DType::I64: { using T = int64_t; __VA_ARGS__; break; }              \
    }
