// cuda/cuda_backend.cu
// defines: CudaBackend's memory functions (caching allocator, pinned host memory, synchronous
// host <-> device copies on the device's stream) and its elementwise kernels: copy (strided,
// with dtype cast), fill, unary, binary, where and the dropout mask. The row kernels are in
// cuda/rows.cu, the indexing kernels in cuda/indexing.cu, the GEMM in cuda/matmul.cu.
//
// Every kernel reproduces the CPU backend's arithmetic (engine/cpu/cpu_elementwise.cpp): the
// same compute precision (float for F32/BF16, double for F64), the same formulas, the same
// casts. Operands are strided; each kernel runs a flat loop when all of them are contiguous and
// otherwise computes offsets from a StridedLayout.
#include <atomic>
#include <cstdio>
#include <cstring>

#include "cuda/cuda_backend.h"
#include "cuda/kernel_common.cuh"
#include "engine/philox.h"

namespace rankclip {

using namespace kernels;

// ---- memory ----

void* CudaBackend::allocate(size_t nbytes) {
    // Backend::allocate has no device argument: it allocates on the calling thread's current
    // device (the device of the last kernel this thread ran; cuda:0 at first).
    return cuda_context(cuda_current_device()).allocator->allocate(nbytes);
}

void CudaBackend::deallocate(void* ptr, size_t) {
    if (ptr == nullptr) return;
    CachingAllocator& current = *cuda_context(cuda_current_device()).allocator;
    if (current.owns(ptr)) return current.deallocate(ptr);
    for (int d = 0; d < cuda_device_count(); d++) {
        CachingAllocator& other = cuda_allocator(d);
        if (other.owns(ptr)) return other.deallocate(ptr);
    }
    throw Error(str_cat("cuda deallocate: pointer ", ptr, " was not allocated by this backend"));
}

void* CudaBackend::allocate_pinned_host(size_t nbytes) {
    try {
        return pinned_host_allocator().allocate(nbytes);
    } catch (const std::exception& e) {
        // Pinning is only a speed-up: the tensor still works in pageable memory, so the caller
        // gets nullptr and falls back to it. Said once, so a long run does not flood stderr.
        static std::atomic<bool> warned{false};
        if (!warned.exchange(true))
            std::fprintf(stderr, "rankclip: warning: no pinned host memory (%s); using pageable memory\n",
                         e.what());
        return nullptr;
    }
}

void CudaBackend::free_pinned_host(void* ptr, size_t) {
    try {
        pinned_host_allocator().deallocate(ptr);
    } catch (const std::exception& e) {  // a pointer it never handed out: a bug, but no throwing here
        std::fprintf(stderr, "rankclip: error: %s\n", e.what());
    }
}

// Host <-> device copies: cudaMemcpyAsync on the device's stream, then a wait for that stream.
// From pinned memory (empty_pinned: the loader's pin_memory batches) the copy engine reads the
// host buffer directly; from pageable memory the driver first stages it through a pinned buffer
// of its own, which is what pinning saves. The wait stays in both cases: Tensor::to() lets its
// caller overwrite or free the host tensor as soon as it returns, and a freed pinned block goes
// back to pinned_host_allocator()'s cache for the next batch, so returning before the transfer
// has read the buffer would let later writes race with it.
void CudaBackend::copy_to_host(const void* device_src, void* host_dst, size_t nbytes) {
    if (nbytes == 0) return;
    CudaContext& ctx = cuda_context(cuda_current_device());
    RC_CUDA_CHECK(cudaMemcpyAsync(host_dst, device_src, nbytes, cudaMemcpyDeviceToHost, ctx.stream));
    RC_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    cuda_check_kernel_errors(ctx);
}

void CudaBackend::copy_from_host(const void* host_src, void* device_dst, size_t nbytes) {
    if (nbytes == 0) return;
    CudaContext& ctx = cuda_context(cuda_current_device());
    RC_CUDA_CHECK(cudaMemcpyAsync(device_dst, host_src, nbytes, cudaMemcpyHostToDevice, ctx.stream));
    // Synchronous: the caller may free or reuse the host buffer as soon as we return (see above).
    RC_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    cuda_check_kernel_errors(ctx);
}

void CudaBackend::synchronize() { cuda_synchronize_all(); }

// ---- copy and fill ----

namespace {

// dst[o0] = cast(src[o1]) over a strided layout (operand 0 = dst, 1 = src); `packed`: dense,
// with both operands aligned to their Pack.
template <typename S, typename D>
__global__ void copy_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n,
                            StridedLayout<2> layout, bool packed) {
    if (packed) {
        const int64_t packs = n / kPack;
        RC_GRID_STRIDE_LOOP(p, packs) {
            const Pack<S> in = reinterpret_cast<const Pack<S>*>(src)[p];
            Pack<D> out;
#pragma unroll
            for (int j = 0; j < kPack; j++) cast_store(&out.v[j], &in.v[j]);
            reinterpret_cast<Pack<D>*>(dst)[p] = out;
        }
        RC_GRID_STRIDE_LOOP(t, n - packs * kPack) cast_store(dst + packs * kPack + t, src + packs * kPack + t);
    } else if (layout.dense) {
        RC_GRID_STRIDE_LOOP(i, n) cast_store(dst + i, src + i);
    } else {
        RC_GRID_STRIDE_LOOP(i, n) {
            int64_t off[2];
            layout.offsets(i, off);
            cast_store(dst + off[0], src + off[1]);
        }
    }
}

// Same-dtype copy: moves the bits (U is an unsigned integer of the element's size).
template <typename U>
__global__ void copy_bits_kernel(const U* __restrict__ src, U* __restrict__ dst, int64_t n,
                                 StridedLayout<2> layout) {
    RC_GRID_STRIDE_LOOP(i, n) {
        int64_t off[2];
        layout.offsets(i, off);
        dst[off[0]] = src[off[1]];
    }
}

template <typename U>
__global__ void fill_kernel(U* __restrict__ dst, U value, int64_t n, StridedLayout<1> layout) {
    if (layout.dense) {
        RC_GRID_STRIDE_LOOP(i, n) dst[i] = value;
    } else {
        RC_GRID_STRIDE_LOOP(i, n) {
            int64_t off[1];
            layout.offsets(i, off);
            dst[off[0]] = value;
        }
    }
}

template <typename U>
void launch_copy_bits(const Tensor& src, Tensor& dst, const StridedLayout<2>& layout,
                      const CudaContext& ctx) {
    int64_t n = dst.numel();
    copy_bits_kernel<U><<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(
        static_cast<const U*>(src.raw_data()), static_cast<U*>(dst.raw_data()), n, layout);
    RC_CUDA_CHECK_LAUNCH("copy_bits_kernel");
}

template <typename U>
void launch_fill(Tensor& dst, U value, const CudaContext& ctx) {
    int64_t n = dst.numel();
    StridedLayout<1> layout = make_layout<1>(dst.shape(), {&dst.strides()}, "fill");
    if (layout.dense && value == U(0)) {
        RC_CUDA_CHECK(cudaMemsetAsync(dst.raw_data(), 0, size_t(n) * sizeof(U), ctx.stream));
        return;
    }
    fill_kernel<U><<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(static_cast<U*>(dst.raw_data()),
                                                                   value, n, layout);
    RC_CUDA_CHECK_LAUNCH("fill_kernel");
}

// The bits of `value` stored as dtype T, converted as the CPU's store(T*, double).
template <typename T, typename U>
U host_value_bits(double value) {
    T v;
    if constexpr (std::is_same_v<T, bf16>) v = float_to_bf16(float(value));
    else v = T(value);
    U bits;
    static_assert(sizeof(T) == sizeof(U));
    std::memcpy(&bits, &v, sizeof(U));
    return bits;
}

template <size_t Size> struct BitsOf;
template <> struct BitsOf<2> { using type = uint16_t; };
template <> struct BitsOf<4> { using type = uint32_t; };
template <> struct BitsOf<8> { using type = uint64_t; };

}  // namespace

void CudaBackend::copy(const Tensor& src, Tensor& dst) {
    RC_CHECK(src.shape() == dst.shape(), "cuda copy: shapes differ: ", src.str(), " -> ", dst.str());
    int64_t n = dst.numel();
    if (n == 0) return;
    CudaContext& ctx = cuda_context(dst.device().index);
    StridedLayout<2> layout = make_layout<2>(dst.shape(), {&dst.strides(), &src.strides()}, "copy");
    if (src.dtype() == dst.dtype()) {
        if (layout.dense) {
            RC_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(),
                                          size_t(n) * dtype_size(dst.dtype()),
                                          cudaMemcpyDeviceToDevice, ctx.stream));
            return;
        }
        switch (dtype_size(dst.dtype())) {
            case 2: launch_copy_bits<uint16_t>(src, dst, layout, ctx); break;
            case 4: launch_copy_bits<uint32_t>(src, dst, layout, ctx); break;
            default: launch_copy_bits<uint64_t>(src, dst, layout, ctx); break;
        }
        return;
    }
    const bool packed = layout.dense && pack_aligned(src.raw_data(), dtype_size(src.dtype())) &&
                        pack_aligned(dst.raw_data(), dtype_size(dst.dtype()));
    RC_GPU_ALL_TYPES(src.dtype(), using S = T; RC_GPU_ALL_TYPES(dst.dtype(), {
        copy_kernel<S, T><<<grid_for(packed ? n / kPack + 1 : n, ctx), kThreads, 0, ctx.stream>>>(
            static_cast<const S*>(src.raw_data()), static_cast<T*>(dst.raw_data()), n, layout, packed);
        RC_CUDA_CHECK_LAUNCH("copy_kernel");
    }));
}

void CudaBackend::fill(Tensor& dst, double value) {
    if (dst.numel() == 0) return;
    CudaContext& ctx = cuda_context(dst.device().index);
    RC_GPU_ALL_TYPES(dst.dtype(), {
        using U = typename BitsOf<sizeof(T)>::type;
        launch_fill<U>(dst, host_value_bits<T, U>(value), ctx);
    });
}

// ---- unary and binary: the activation formulas of engine/cpu/cpu_elementwise.cpp ----

namespace {

__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return log(x); }
__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float m_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double m_abs(double x) { return fabs(x); }
__device__ __forceinline__ float m_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float m_erf(float x) { return erff(x); }
__device__ __forceinline__ double m_erf(double x) { return erf(x); }
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }

constexpr double kSqrt1_2 = 0.70710678118654752440;      // M_SQRT1_2
constexpr double k2_SqrtPi = 1.12837916709551257390;     // M_2_SQRTPI
constexpr double kGeluTanhScale = 0.7978845608028654;    // sqrt(2/pi)

template <typename A> __device__ __forceinline__ A sigmoid_value(A x) {
    return A(1) / (A(1) + m_exp(-x));
}
template <typename A> __device__ __forceinline__ A gelu_value(A x) {
    return A(0.5) * x * (A(1) + m_erf(x * A(kSqrt1_2)));
}
template <typename A> __device__ __forceinline__ A gelu_derivative(A x) {
    A cdf = A(0.5) * (A(1) + m_erf(x * A(kSqrt1_2)));
    A pdf = m_exp(A(-0.5) * x * x) * A(0.5 * k2_SqrtPi * kSqrt1_2);  // 1/sqrt(2 pi)
    return cdf + x * pdf;
}
template <typename A> __device__ __forceinline__ A gelu_tanh_value(A x) {
    A u = A(kGeluTanhScale) * (x + A(0.044715) * x * x * x);
    return A(0.5) * x * (A(1) + m_tanh(u));
}
// sigmoid(2u) + 2 x sigmoid(2u) sigmoid(-2u) du/dx, from e = exp(-2|u|): no difference of
// numbers near 1 in the left tail (see engine/cpu/elementwise_ops.h, GeluTanhDerivative)
template <typename A> __device__ __forceinline__ A gelu_tanh_derivative(A x) {
    A u = A(kGeluTanhScale) * (x + A(0.044715) * x * x * x);
    A e = m_exp(A(-2) * m_abs(u));
    A r = A(1) / (A(1) + e);
    A er = e * r;
    A sigma = u >= A(0) ? r : er;
    A sigma_1m = er * r;
    A du = A(kGeluTanhScale) * (A(1) + A(3 * 0.044715) * x * x);
    return A(2) * x * sigma_1m * du + sigma;
}
template <typename A> __device__ __forceinline__ A quick_gelu_derivative(A x) {
    A s = sigmoid_value(A(1.702) * x);
    return s + x * A(1.702) * s * (A(1) - s);
}

template <UnaryOp Op, typename A>
__device__ __forceinline__ A apply_unary(A v, A p0, A p1) {
    if constexpr (Op == UnaryOp::Neg) return -v;
    else if constexpr (Op == UnaryOp::Exp) return m_exp(v);
    else if constexpr (Op == UnaryOp::Log) return m_log(v);
    else if constexpr (Op == UnaryOp::Sqrt) return m_sqrt(v);
    else if constexpr (Op == UnaryOp::Rsqrt) return A(1) / m_sqrt(v);
    else if constexpr (Op == UnaryOp::Abs) return m_abs(v);
    else if constexpr (Op == UnaryOp::Tanh) return m_tanh(v);
    else if constexpr (Op == UnaryOp::Sigmoid) return sigmoid_value(v);
    else if constexpr (Op == UnaryOp::Relu) return v > A(0) ? v : A(0);
    else if constexpr (Op == UnaryOp::Reciprocal) return A(1) / v;
    else if constexpr (Op == UnaryOp::Gelu) return gelu_value(v);
    else if constexpr (Op == UnaryOp::GeluTanh) return gelu_tanh_value(v);
    else if constexpr (Op == UnaryOp::QuickGelu) return v * sigmoid_value(A(1.702) * v);
    else if constexpr (Op == UnaryOp::Pow) return m_pow(v, p0);
    else if constexpr (Op == UnaryOp::Clamp) {  // std::min(std::max(v, p0), p1)
        A lo = (v < p0) ? p0 : v;
        return (p1 < lo) ? p1 : lo;
    }
    else if constexpr (Op == UnaryOp::Affine) return v * p0 + p1;
    else return A((v > A(0)) - (v < A(0)));  // Sign
}

template <BinaryOp Op, typename A>
__device__ __forceinline__ A apply_binary(A x, A y) {
    if constexpr (Op == BinaryOp::Add) return x + y;
    else if constexpr (Op == BinaryOp::Sub) return x - y;
    else if constexpr (Op == BinaryOp::Mul) return x * y;
    else if constexpr (Op == BinaryOp::Div) return x / y;
    else if constexpr (Op == BinaryOp::Maximum) return (x != x || x > y) ? x : y;  // NaN wins
    else if constexpr (Op == BinaryOp::Minimum) return (x != x || x < y) ? x : y;
    else if constexpr (Op == BinaryOp::Eq) return A(x == y);
    else if constexpr (Op == BinaryOp::Gt) return A(x > y);
    else if constexpr (Op == BinaryOp::Lt) return A(x < y);
    else if constexpr (Op == BinaryOp::Ge) return A(x >= y);
    else if constexpr (Op == BinaryOp::Le) return A(x <= y);
    else if constexpr (Op == BinaryOp::GeluBackward) return y * gelu_derivative(x);  // y = grad
    else if constexpr (Op == BinaryOp::GeluTanhBackward) return y * gelu_tanh_derivative(x);
    else return y * quick_gelu_derivative(x);  // QuickGeluBackward
}

// out[o0] = op(x[o1]); operand 0 = out, 1 = x; `packed`: dense and aligned to Packs.
template <UnaryOp Op, typename T>
__global__ void unary_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n,
                             StridedLayout<2> layout, bool packed, Acc<T> p0, Acc<T> p1) {
    using A = Acc<T>;
    if (packed) {
        const int64_t packs = n / kPack;
        RC_GRID_STRIDE_LOOP(p, packs) {
            const Pack<T> in = reinterpret_cast<const Pack<T>*>(x)[p];
            Pack<T> res;
#pragma unroll
            for (int j = 0; j < kPack; j++) store(&res.v[j], apply_unary<Op, A>(load(&in.v[j]), p0, p1));
            reinterpret_cast<Pack<T>*>(out)[p] = res;
        }
        RC_GRID_STRIDE_LOOP(t, n - packs * kPack) {
            const int64_t i = packs * kPack + t;
            store(out + i, apply_unary<Op, A>(load(x + i), p0, p1));
        }
    } else if (layout.dense) {
        RC_GRID_STRIDE_LOOP(i, n) store(out + i, apply_unary<Op, A>(load(x + i), p0, p1));
    } else {
        RC_GRID_STRIDE_LOOP(i, n) {
            int64_t off[2];
            layout.offsets(i, off);
            store(out + off[0], apply_unary<Op, A>(load(x + off[1]), p0, p1));
        }
    }
}

// out[o0] = op(a[o1], b[o2]); operands: out, a, b (a, b possibly broadcast with 0 strides);
// `packed`: dense and aligned to Packs.
template <BinaryOp Op, typename T>
__global__ void binary_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                              int64_t n, StridedLayout<3> layout, bool packed) {
    using A = Acc<T>;
    if (packed) {
        const int64_t packs = n / kPack;
        RC_GRID_STRIDE_LOOP(p, packs) {
            const Pack<T> x = reinterpret_cast<const Pack<T>*>(a)[p];
            const Pack<T> y = reinterpret_cast<const Pack<T>*>(b)[p];
            Pack<T> res;
#pragma unroll
            for (int j = 0; j < kPack; j++) store(&res.v[j], apply_binary<Op, A>(load(&x.v[j]), load(&y.v[j])));
            reinterpret_cast<Pack<T>*>(out)[p] = res;
        }
        RC_GRID_STRIDE_LOOP(t, n - packs * kPack) {
            const int64_t i = packs * kPack + t;
            store(out + i, apply_binary<Op, A>(load(a + i), load(b + i)));
        }
    } else if (layout.dense) {
        RC_GRID_STRIDE_LOOP(i, n) store(out + i, apply_binary<Op, A>(load(a + i), load(b + i)));
    } else {
        RC_GRID_STRIDE_LOOP(i, n) {
            int64_t off[3];
            layout.offsets(i, off);
            store(out + off[0], apply_binary<Op, A>(load(a + off[1]), load(b + off[2])));
        }
    }
}

template <UnaryOp Op, typename T>
void launch_unary(const Tensor& x, Tensor& out, const StridedLayout<2>& layout, double p0,
                  double p1, const CudaContext& ctx) {
    int64_t n = out.numel();
    const bool packed = layout.dense && pack_aligned(x.raw_data(), sizeof(T)) && pack_aligned(out.raw_data(), sizeof(T));
    unary_kernel<Op, T><<<grid_for(packed ? n / kPack + 1 : n, ctx), kThreads, 0, ctx.stream>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), n, layout, packed,
        Acc<T>(p0), Acc<T>(p1));
    RC_CUDA_CHECK_LAUNCH("unary_kernel");
}

template <BinaryOp Op, typename T>
void launch_binary(const Tensor& a, const Tensor& b, Tensor& out, const StridedLayout<3>& layout,
                   const CudaContext& ctx) {
    int64_t n = out.numel();
    const bool packed = layout.dense && pack_aligned(a.raw_data(), sizeof(T)) &&
                        pack_aligned(b.raw_data(), sizeof(T)) && pack_aligned(out.raw_data(), sizeof(T));
    binary_kernel<Op, T><<<grid_for(packed ? n / kPack + 1 : n, ctx), kThreads, 0, ctx.stream>>>(
        static_cast<const T*>(a.raw_data()), static_cast<const T*>(b.raw_data()),
        static_cast<T*>(out.raw_data()), n, layout, packed);
    RC_CUDA_CHECK_LAUNCH("binary_kernel");
}

template <typename T>
void dispatch_unary(UnaryOp op, const Tensor& x, Tensor& out, const StridedLayout<2>& layout,
                    double p0, double p1, const CudaContext& ctx) {
    switch (op) {
#define RC_UNARY_CASE(NAME) \
    case UnaryOp::NAME: launch_unary<UnaryOp::NAME, T>(x, out, layout, p0, p1, ctx); break;
        RC_UNARY_CASE(Neg) RC_UNARY_CASE(Exp) RC_UNARY_CASE(Log) RC_UNARY_CASE(Sqrt)
        RC_UNARY_CASE(Rsqrt) RC_UNARY_CASE(Abs) RC_UNARY_CASE(Tanh) RC_UNARY_CASE(Sigmoid)
        RC_UNARY_CASE(Relu) RC_UNARY_CASE(Reciprocal) RC_UNARY_CASE(Gelu)
        RC_UNARY_CASE(GeluTanh) RC_UNARY_CASE(QuickGelu) RC_UNARY_CASE(Pow)
        RC_UNARY_CASE(Clamp) RC_UNARY_CASE(Affine) RC_UNARY_CASE(Sign)
#undef RC_UNARY_CASE
    }
}

template <typename T>
void dispatch_binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out,
                     const StridedLayout<3>& layout, const CudaContext& ctx) {
    switch (op) {
#define RC_BINARY_CASE(NAME) \
    case BinaryOp::NAME: launch_binary<BinaryOp::NAME, T>(a, b, out, layout, ctx); break;
        RC_BINARY_CASE(Add) RC_BINARY_CASE(Sub) RC_BINARY_CASE(Mul) RC_BINARY_CASE(Div)
        RC_BINARY_CASE(Maximum) RC_BINARY_CASE(Minimum) RC_BINARY_CASE(Eq)
        RC_BINARY_CASE(Gt) RC_BINARY_CASE(Lt) RC_BINARY_CASE(Ge) RC_BINARY_CASE(Le)
        RC_BINARY_CASE(GeluBackward) RC_BINARY_CASE(GeluTanhBackward)
        RC_BINARY_CASE(QuickGeluBackward)
#undef RC_BINARY_CASE
    }
}

}  // namespace

void CudaBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double p0, double p1) {
    RC_CHECK(x.dtype() == out.dtype(), "cuda ", unary_op_name(op), ": dtypes differ: ", x.str(),
             " -> ", out.str());
    if (out.numel() == 0) return;
    CudaContext& ctx = cuda_context(out.device().index);
    StridedLayout<2> layout =
        make_layout<2>(out.shape(), {&out.strides(), &x.strides()}, unary_op_name(op));
    RC_GPU_FLOAT_TYPES(x.dtype(), unary_op_name(op), x,
                       dispatch_unary<T>(op, x, out, layout, p0, p1, ctx));
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
    RC_CHECK(a.dtype() == b.dtype() && a.dtype() == out.dtype(), "cuda ", binary_op_name(op),
             ": dtypes differ: ", a.str(), ", ", b.str(), " -> ", out.str());
    if (out.numel() == 0) return;
    CudaContext& ctx = cuda_context(out.device().index);
    StridedLayout<3> layout = make_layout<3>(
        out.shape(), {&out.strides(), &a.strides(), &b.strides()}, binary_op_name(op));
    RC_GPU_FLOAT_TYPES(a.dtype(), binary_op_name(op), a,
                       dispatch_binary<T>(op, a, b, out, layout, ctx));
}

// ---- where ----

namespace {

// out[o0] = cond[o1] != 0 ? a[o2] : b[o3]. The condition may have any dtype.
template <typename C, typename T>
__global__ void where_kernel(const C* __restrict__ cond, const T* __restrict__ a,
                             const T* __restrict__ b, T* __restrict__ out, int64_t n,
                             StridedLayout<4> layout) {
    RC_GRID_STRIDE_LOOP(i, n) {
        int64_t off[4];
        if (layout.dense) {
            off[0] = off[1] = off[2] = off[3] = i;
        } else {
            layout.offsets(i, off);
        }
        out[off[0]] = load(cond + off[1]) != 0 ? a[off[2]] : b[off[3]];
    }
}

}  // namespace

void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
    RC_CHECK(a.dtype() == b.dtype() && a.dtype() == out.dtype(), "cuda where: dtypes differ: ",
             a.str(), ", ", b.str(), " -> ", out.str());
    int64_t n = out.numel();
    if (n == 0) return;
    CudaContext& ctx = cuda_context(out.device().index);
    StridedLayout<4> layout = make_layout<4>(
        out.shape(), {&out.strides(), &cond.strides(), &a.strides(), &b.strides()}, "where");
    RC_GPU_ALL_TYPES(cond.dtype(), using C = T; RC_GPU_ALL_TYPES(a.dtype(), {
        where_kernel<C, T><<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(
            static_cast<const C*>(cond.raw_data()), static_cast<const T*>(a.raw_data()),
            static_cast<const T*>(b.raw_data()), static_cast<T*>(out.raw_data()), n, layout);
        RC_CUDA_CHECK_LAUNCH("where_kernel");
    }));
}

// ---- dropout mask: out[i] = keep_scale if philox_uniform(seed, offset, i) >= p, else 0 ----

namespace {

template <typename T>
__global__ void dropout_mask_kernel(T* __restrict__ out, int64_t n, float p, double keep_scale,
                                    uint64_t seed, uint64_t offset) {
    RC_GRID_STRIDE_LOOP(i, n) {
        bool keep = philox_uniform(seed, offset, uint64_t(i)) >= p;
        store(out + i, keep ? keep_scale : 0.0);
    }
}

}  // namespace

void CudaBackend::dropout_mask(Tensor& out, double p, uint64_t seed, uint64_t offset) {
    int64_t n = out.numel();
    if (n == 0) return;
    CudaContext& ctx = cuda_context(out.device().index);
    RC_GPU_FLOAT_TYPES(out.dtype(), "dropout", out, {
        dropout_mask_kernel<T><<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(
            static_cast<T*>(out.raw_data()), n, float(p), 1.0 / (1.0 - p), seed, offset);
        RC_CUDA_CHECK_LAUNCH("dropout_mask_kernel");
    });
}

}  // namespace rankclip
