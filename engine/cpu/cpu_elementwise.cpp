// engine/cpu/cpu_elementwise.cpp
// defines: the host copies and the elementwise kernels: copy (with dtype cast), fill, unary,
// binary and where, all over strided operands. (CPU memory: engine/cpu/cpu_allocator.cpp.)
#include <cstdlib>
#include <cstring>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/strided.h"

namespace rankclip {

CpuBackend& cpu_backend() {
    static CpuBackend backend;
    return backend;
}

void CpuBackend::copy_to_host(const void* src, void* dst, size_t nbytes) { std::memcpy(dst, src, nbytes); }
void CpuBackend::copy_from_host(const void* src, void* dst, size_t nbytes) { std::memcpy(dst, src, nbytes); }

template <typename S, typename D>
static void copy_kernel(const Tensor& src, Tensor& dst) {
    const S* s = static_cast<const S*>(src.raw_data());
    D* d = static_cast<D*>(dst.raw_data());
    for_each_strided<2>(dst.shape(), {&dst.strides(), &src.strides()}, [&](const std::array<int64_t, 2>& o) {
        if constexpr (std::is_same_v<S, D>) d[o[0]] = s[o[1]];
        else store(d + o[0], load(s + o[1]));
    });
}

void CpuBackend::copy(const Tensor& src, Tensor& dst) {
    RC_CHECK(src.shape() == dst.shape(), "copy: shapes differ: ", src.str(), " -> ", dst.str());
    if (src.numel() == 0) return;  // empty tensors have no buffer: memcpy must not see null
    if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
        std::memcpy(dst.raw_data(), src.raw_data(), size_t(src.numel()) * dtype_size(src.dtype()));
        return;
    }
    dispatch_all(src.dtype(), [&](auto s) {
        dispatch_all(dst.dtype(), [&](auto d) { copy_kernel<decltype(s), decltype(d)>(src, dst); });
    });
}

void CpuBackend::fill(Tensor& dst, double value) {
    dispatch_all(dst.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T* d = static_cast<T*>(dst.raw_data());
        T v;
        store(&v, value);
        for_each_strided<1>(dst.shape(), {&dst.strides()}, [&](const std::array<int64_t, 1>& o) { d[o[0]] = v; });
    });
}

template <typename T, typename F>
static void map_unary(const Tensor& x, Tensor& out, F f) {
    const T* xs = static_cast<const T*>(x.raw_data());
    T* ys = static_cast<T*>(out.raw_data());
    for_each_strided<2>(out.shape(), {&out.strides(), &x.strides()},
                        [&](const std::array<int64_t, 2>& o) { store(ys + o[0], f(load(xs + o[1]))); });
}

// The activation functions and their derivatives, shared by forward and backward kernels.
template <typename A> static A gelu_value(A x) { return A(0.5) * x * (A(1) + std::erf(x * A(M_SQRT1_2))); }
template <typename A> static A gelu_derivative(A x) {
    A cdf = A(0.5) * (A(1) + std::erf(x * A(M_SQRT1_2)));
    A pdf = std::exp(A(-0.5) * x * x) * A(0.5 * M_2_SQRTPI * M_SQRT1_2);  // 1/sqrt(2 pi)
    return cdf + x * pdf;
}
static constexpr double kGeluTanhScale = 0.7978845608028654;  // sqrt(2/pi)
template <typename A> static A gelu_tanh_value(A x) {
    A u = A(kGeluTanhScale) * (x + A(0.044715) * x * x * x);
    return A(0.5) * x * (A(1) + std::tanh(u));
}
template <typename A> static A gelu_tanh_derivative(A x) {
    A u = A(kGeluTanhScale) * (x + A(0.044715) * x * x * x);
    A t = std::tanh(u);
    A du = A(kGeluTanhScale) * (A(1) + A(3 * 0.044715) * x * x);
    return A(0.5) * (A(1) + t) + A(0.5) * x * (A(1) - t * t) * du;
}
template <typename A> static A sigmoid_value(A x) { return A(1) / (A(1) + std::exp(-x)); }
template <typename A> static A quick_gelu_derivative(A x) {
    A s = sigmoid_value(A(1.702) * x);
    return s + x * A(1.702) * s * (A(1) - s);
}

void CpuBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double p0, double p1) {
    dispatch_floating(x.dtype(), unary_op_name(op), [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        A a0 = A(p0), a1 = A(p1);
        switch (op) {
            case UnaryOp::Neg: map_unary<T>(x, out, [](A v) { return -v; }); break;
            case UnaryOp::Exp: map_unary<T>(x, out, [](A v) { return std::exp(v); }); break;
            case UnaryOp::Log: map_unary<T>(x, out, [](A v) { return std::log(v); }); break;
            case UnaryOp::Sqrt: map_unary<T>(x, out, [](A v) { return std::sqrt(v); }); break;
            case UnaryOp::Rsqrt: map_unary<T>(x, out, [](A v) { return A(1) / std::sqrt(v); }); break;
            case UnaryOp::Abs: map_unary<T>(x, out, [](A v) { return std::abs(v); }); break;
            case UnaryOp::Tanh: map_unary<T>(x, out, [](A v) { return std::tanh(v); }); break;
            case UnaryOp::Sigmoid: map_unary<T>(x, out, [](A v) { return sigmoid_value(v); }); break;
            case UnaryOp::Relu: map_unary<T>(x, out, [](A v) { return v > A(0) ? v : A(0); }); break;
            case UnaryOp::Reciprocal: map_unary<T>(x, out, [](A v) { return A(1) / v; }); break;
            case UnaryOp::Gelu: map_unary<T>(x, out, [](A v) { return gelu_value(v); }); break;
            case UnaryOp::GeluTanh: map_unary<T>(x, out, [](A v) { return gelu_tanh_value(v); }); break;
            case UnaryOp::QuickGelu: map_unary<T>(x, out, [](A v) { return v * sigmoid_value(A(1.702) * v); }); break;
            case UnaryOp::Pow: map_unary<T>(x, out, [a0](A v) { return std::pow(v, a0); }); break;
            case UnaryOp::Clamp: map_unary<T>(x, out, [a0, a1](A v) { return std::min(std::max(v, a0), a1); }); break;
            case UnaryOp::Affine: map_unary<T>(x, out, [a0, a1](A v) { return v * a0 + a1; }); break;
            case UnaryOp::Sign: map_unary<T>(x, out, [](A v) { return A((v > A(0)) - (v < A(0))); }); break;
        }
    });
}

template <typename T, typename F>
static void map_binary(const Tensor& a, const Tensor& b, Tensor& out, F f) {
    const T* as = static_cast<const T*>(a.raw_data());
    const T* bs = static_cast<const T*>(b.raw_data());
    T* ys = static_cast<T*>(out.raw_data());
    for_each_strided<3>(out.shape(), {&out.strides(), &a.strides(), &b.strides()},
                        [&](const std::array<int64_t, 3>& o) { store(ys + o[0], f(load(as + o[1]), load(bs + o[2]))); });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
    dispatch_floating(a.dtype(), binary_op_name(op), [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        switch (op) {
            case BinaryOp::Add: map_binary<T>(a, b, out, [](A x, A y) { return x + y; }); break;
            case BinaryOp::Sub: map_binary<T>(a, b, out, [](A x, A y) { return x - y; }); break;
            case BinaryOp::Mul: map_binary<T>(a, b, out, [](A x, A y) { return x * y; }); break;
            case BinaryOp::Div: map_binary<T>(a, b, out, [](A x, A y) { return x / y; }); break;
            case BinaryOp::Maximum: map_binary<T>(a, b, out, [](A x, A y) { return (x != x || x > y) ? x : y; }); break;
            case BinaryOp::Minimum: map_binary<T>(a, b, out, [](A x, A y) { return (x != x || x < y) ? x : y; }); break;
            case BinaryOp::Eq: map_binary<T>(a, b, out, [](A x, A y) { return A(x == y); }); break;
            case BinaryOp::Gt: map_binary<T>(a, b, out, [](A x, A y) { return A(x > y); }); break;
            case BinaryOp::Lt: map_binary<T>(a, b, out, [](A x, A y) { return A(x < y); }); break;
            case BinaryOp::Ge: map_binary<T>(a, b, out, [](A x, A y) { return A(x >= y); }); break;
            case BinaryOp::Le: map_binary<T>(a, b, out, [](A x, A y) { return A(x <= y); }); break;
            case BinaryOp::GeluBackward: map_binary<T>(a, b, out, [](A x, A g) { return g * gelu_derivative(x); }); break;
            case BinaryOp::GeluTanhBackward: map_binary<T>(a, b, out, [](A x, A g) { return g * gelu_tanh_derivative(x); }); break;
            case BinaryOp::QuickGeluBackward: map_binary<T>(a, b, out, [](A x, A g) { return g * quick_gelu_derivative(x); }); break;
        }
    });
}

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
    RC_CHECK(cond.dtype() == a.dtype(), "where: condition must have the values' dtype here (", cond.str(), ")");
    dispatch_all(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* cs = static_cast<const T*>(cond.raw_data());
        const T* as = static_cast<const T*>(a.raw_data());
        const T* bs = static_cast<const T*>(b.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
        for_each_strided<4>(out.shape(), {&out.strides(), &cond.strides(), &a.strides(), &b.strides()},
                            [&](const std::array<int64_t, 4>& o) {
                                ys[o[0]] = load(cs + o[1]) != 0 ? as[o[2]] : bs[o[3]];
                            });
    });
}

}  // namespace rankclip
