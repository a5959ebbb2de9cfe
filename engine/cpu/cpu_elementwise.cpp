// engine/cpu/cpu_elementwise.cpp
// defines: the host copies and the elementwise kernels: copy (with dtype cast), fill, unary,
// binary and where, all over strided operands. (CPU memory: engine/cpu/cpu_allocator.cpp.)
// Every kernel walks runs of the innermost coalesced dim (engine/cpu/strided.h). A run whose
// operands are contiguous or broadcast (step 1 or 0: flat tensors, a (N, C) op (C) bias row, a
// scalar) goes through a 16-lane AVX-512 loop for F32 and BF16; F64, the integer dtypes and
// runs with other steps take the scalar loop beside it. The functions themselves are in
// engine/cpu/elementwise_ops.h.
#include <cstdlib>
#include <cstring>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/elementwise_ops.h"
#include "engine/cpu/strided.h"

namespace rankclip {

CpuBackend& cpu_backend() {
    static CpuBackend backend;
    return backend;
}

void CpuBackend::copy_to_host(const void* src, void* dst, size_t nbytes) { std::memcpy(dst, src, nbytes); }
void CpuBackend::copy_from_host(const void* src, void* dst, size_t nbytes) { std::memcpy(dst, src, nbytes); }

// Functions as expensive as an erf or exp per element are worth a second thread sooner (from
// 4096 elements: see kElementwiseParallelMin).
static constexpr int64_t kTranscendentalParallelMin = kElementwiseParallelMin / 8;

#if RANKCLIP_AVX512
// Whether an op has a 16-lane form (`vec`); Pow has none.
template <typename Op> constexpr auto has_vec1(int) -> decltype(std::declval<const Op&>().vec(__m512()), bool()) { return true; }
template <typename Op> constexpr bool has_vec1(...) { return false; }
template <typename Op> constexpr auto has_vec2(int) -> decltype(std::declval<const Op&>().vec(__m512(), __m512()), bool()) { return true; }
template <typename Op> constexpr bool has_vec2(...) { return false; }

// The 16 lanes of an operand's run at position i: loaded when it steps by 1, else the one
// broadcast value (step 0).
template <typename T>
static inline __m512 lanes(const T* p, bool contiguous, int64_t i, __mmask16 m, __m512 broadcast) {
    return contiguous ? vec::load(p + i, m) : broadcast;
}
#endif

// ---- copy and fill ----

// A contiguous run of n elements, converted.
template <typename S, typename D>
static void copy_run(const S* s, D* d, int64_t n) {
    if constexpr (std::is_same_v<S, D>) {
        std::memcpy(d, s, size_t(n) * sizeof(S));
#if RANKCLIP_AVX512
    } else if constexpr (vec::kVectorised<S> && vec::kVectorised<D>) {  // f32 <-> bf16
        vec::for_lanes(n, [&](int64_t i, __mmask16 m) { vec::store(d + i, vec::load(s + i, m), m); });
#endif
    } else {
        for (int64_t j = 0; j < n; j++) store(d + j, load(s + j));
    }
}

template <typename S, typename D>
static void copy_kernel(const Tensor& src, Tensor& dst) {
    const S* ss = static_cast<const S*>(src.raw_data());
    D* ds = static_cast<D*>(dst.raw_data());
    for_each_run<2>(dst.shape(), {&dst.strides(), &src.strides()}, kElementwiseParallelMin,
                    [&](const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& step, int64_t n) {
                        D* d = ds + off[0];
                        const S* s = ss + off[1];
                        if (step[0] == 1 && step[1] == 1) return copy_run(s, d, n);
                        for (int64_t j = 0; j < n; j++) {
                            if constexpr (std::is_same_v<S, D>) d[j * step[0]] = s[j * step[1]];
                            else store(d + j * step[0], load(s + j * step[1]));
                        }
                    });
}

void CpuBackend::copy(const Tensor& src, Tensor& dst) {
    RC_CHECK(src.shape() == dst.shape(), "copy: shapes differ: ", src.str(), " -> ", dst.str());
    if (src.numel() == 0) return;  // empty tensors have no buffer: memcpy must not see null
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
        for_each_run<1>(dst.shape(), {&dst.strides()}, kElementwiseParallelMin,
                        [&](const std::array<int64_t, 1>& off, const std::array<int64_t, 1>& step, int64_t n) {
                            if (step[0] == 1) std::fill_n(d + off[0], n, v);
                            else for (int64_t j = 0; j < n; j++) d[off[0] + j * step[0]] = v;
                        });
    });
}

// ---- unary ----

template <typename T, typename Op>
static void map_unary(const Tensor& x, Tensor& out, const Op& op, int64_t parallel_min = kElementwiseParallelMin) {
    using A = Acc<T>;
    const T* xs = static_cast<const T*>(x.raw_data());
    T* ys = static_cast<T*>(out.raw_data());
    for_each_run<2>(out.shape(), {&out.strides(), &x.strides()}, parallel_min,
                    [&](const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& step, int64_t n) {
                        T* y = ys + off[0];
                        const T* xp = xs + off[1];
#if RANKCLIP_AVX512
                        if constexpr (vec::kVectorised<T> && has_vec1<Op>(0))
                            if (step[0] == 1 && step[1] == 1)
                                return vec::for_lanes(n, [&](int64_t i, __mmask16 m) {
                                    vec::store(y + i, op.vec(vec::load(xp + i, m)), m);
                                });
#endif
                        for (int64_t j = 0; j < n; j++) store(y + j * step[0], op(A(load(xp + j * step[1]))));
                    });
}

void CpuBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double p0, double p1) {
    dispatch_floating(x.dtype(), unary_op_name(op), [&](auto tag) {
        using T = decltype(tag);
        const int64_t slow = kTranscendentalParallelMin;
        switch (op) {
            case UnaryOp::Neg: map_unary<T>(x, out, ew::Neg{}); break;
            case UnaryOp::Exp: map_unary<T>(x, out, ew::Exp{}, slow); break;
            case UnaryOp::Log: map_unary<T>(x, out, ew::Log{}, slow); break;
            case UnaryOp::Sqrt: map_unary<T>(x, out, ew::Sqrt{}); break;
            case UnaryOp::Rsqrt: map_unary<T>(x, out, ew::Rsqrt{}); break;
            case UnaryOp::Abs: map_unary<T>(x, out, ew::Abs{}); break;
            case UnaryOp::Tanh: map_unary<T>(x, out, ew::Tanh{}, slow); break;
            case UnaryOp::Sigmoid: map_unary<T>(x, out, ew::Sigmoid{}, slow); break;
            case UnaryOp::Relu: map_unary<T>(x, out, ew::Relu{}); break;
            case UnaryOp::Reciprocal: map_unary<T>(x, out, ew::Reciprocal{}); break;
            case UnaryOp::Gelu: map_unary<T>(x, out, ew::Gelu{}, slow); break;
            case UnaryOp::GeluTanh: map_unary<T>(x, out, ew::GeluTanh{}, slow); break;
            case UnaryOp::QuickGelu: map_unary<T>(x, out, ew::QuickGelu{}, slow); break;
            case UnaryOp::Pow: map_unary<T>(x, out, ew::Pow{p0}, slow); break;
            case UnaryOp::Clamp: map_unary<T>(x, out, ew::Clamp{p0, p1}); break;
            case UnaryOp::Affine: map_unary<T>(x, out, ew::Affine{p0, p1}); break;
            case UnaryOp::Sign: map_unary<T>(x, out, ew::Sign{}); break;
        }
    });
}

// ---- binary ----

// y = op(a, b) over runs; a, b and y may have different storage types (an F32 residual plus a
// BF16 branch under autocast: no cast pass first), all computed in y's Acc precision.
template <typename TA, typename TB, typename TY, typename Op>
static void map_binary(const Tensor& a, const Tensor& b, Tensor& out, const Op& op,
                       int64_t parallel_min = kElementwiseParallelMin) {
    using A = Acc<TY>;
    const TA* as = static_cast<const TA*>(a.raw_data());
    const TB* bs = static_cast<const TB*>(b.raw_data());
    TY* ys = static_cast<TY*>(out.raw_data());
    for_each_run<3>(out.shape(), {&out.strides(), &a.strides(), &b.strides()}, parallel_min,
                    [&](const std::array<int64_t, 3>& off, const std::array<int64_t, 3>& step, int64_t n) {
                        TY* y = ys + off[0];
                        const TA* ap = as + off[1];
                        const TB* bp = bs + off[2];
#if RANKCLIP_AVX512
                        if constexpr (vec::kVectorised<TA> && vec::kVectorised<TB> && vec::kVectorised<TY> &&
                                      has_vec2<Op>(0))
                            if (step[0] == 1 && (step[1] | 1) == 1 && (step[2] | 1) == 1) {
                                __m512 a0 = vec::set1(load(ap)), b0 = vec::set1(load(bp));
                                return vec::for_lanes(n, [&](int64_t i, __mmask16 m) {
                                    __m512 va = lanes(ap, step[1], i, m, a0), vb = lanes(bp, step[2], i, m, b0);
                                    vec::store(y + i, op.vec(va, vb), m);
                                });
                            }
#endif
                        for (int64_t j = 0; j < n; j++)
                            store(y + j * step[0], op(A(load(ap + j * step[1])), A(load(bp + j * step[2]))));
                    });
}

// F32 op BF16 (either order) -> F32, for the arithmetic ops.
template <typename Op>
static void map_binary_mixed(const Tensor& a, const Tensor& b, Tensor& out, const Op& op) {
    if (a.dtype() == DType::F32) map_binary<float, bf16, float>(a, b, out, op);
    else map_binary<bf16, float, float>(a, b, out, op);
}

bool CpuBackend::binary_mixes_float_dtypes() const { return true; }

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
    if (a.dtype() != b.dtype()) {
        bool pair = (a.dtype() == DType::F32 && b.dtype() == DType::BF16) ||
                    (a.dtype() == DType::BF16 && b.dtype() == DType::F32);
        RC_CHECK(pair && out.dtype() == DType::F32, binary_op_name(op), ": cpu mixes only F32 and BF16 into F32, got ",
                 a.str(), ", ", b.str(), " -> ", out.str());
        switch (op) {
            case BinaryOp::Add: return map_binary_mixed(a, b, out, ew::Add{});
            case BinaryOp::Sub: return map_binary_mixed(a, b, out, ew::Sub{});
            case BinaryOp::Mul: return map_binary_mixed(a, b, out, ew::Mul{});
            case BinaryOp::Div: return map_binary_mixed(a, b, out, ew::Div{});
            default: throw Error(str_cat(binary_op_name(op), ": no cpu kernel mixing ", a.str(), " and ", b.str()));
        }
    }
    dispatch_floating(a.dtype(), binary_op_name(op), [&](auto tag) {
        using T = decltype(tag);
        const int64_t slow = kTranscendentalParallelMin;
        switch (op) {
            case BinaryOp::Add: map_binary<T, T, T>(a, b, out, ew::Add{}); break;
            case BinaryOp::Sub: map_binary<T, T, T>(a, b, out, ew::Sub{}); break;
            case BinaryOp::Mul: map_binary<T, T, T>(a, b, out, ew::Mul{}); break;
            case BinaryOp::Div: map_binary<T, T, T>(a, b, out, ew::Div{}); break;
            case BinaryOp::Maximum: map_binary<T, T, T>(a, b, out, ew::Maximum{}); break;
            case BinaryOp::Minimum: map_binary<T, T, T>(a, b, out, ew::Minimum{}); break;
            case BinaryOp::Eq: map_binary<T, T, T>(a, b, out, ew::Eq{}); break;
            case BinaryOp::Gt: map_binary<T, T, T>(a, b, out, ew::Gt{}); break;
            case BinaryOp::Lt: map_binary<T, T, T>(a, b, out, ew::Lt{}); break;
            case BinaryOp::Ge: map_binary<T, T, T>(a, b, out, ew::Ge{}); break;
            case BinaryOp::Le: map_binary<T, T, T>(a, b, out, ew::Le{}); break;
            case BinaryOp::GeluBackward:
                map_binary<T, T, T>(a, b, out, ew::ActivationBackward<ew::GeluDerivative>{}, slow);
                break;
            case BinaryOp::GeluTanhBackward:
                map_binary<T, T, T>(a, b, out, ew::ActivationBackward<ew::GeluTanhDerivative>{}, slow);
                break;
            case BinaryOp::QuickGeluBackward:
                map_binary<T, T, T>(a, b, out, ew::ActivationBackward<ew::QuickGeluDerivative>{}, slow);
                break;
        }
    });
}

// ---- where: out = cond != 0 ? a : b, the chosen value's bits copied as they are ----

#if RANKCLIP_AVX512
// 16 lanes of cond != 0 (NaN counts as true, as in the scalar test), then a bitwise blend.
static inline void where_lanes(const float* c, const float* a, const float* b, float* y, __mmask16 m) {
    __mmask16 take_a = _mm512_cmp_ps_mask(vec::load(c, m), _mm512_setzero_ps(), _CMP_NEQ_UQ);
    _mm512_mask_storeu_ps(y, m, _mm512_mask_blend_ps(take_a, vec::load(b, m), vec::load(a, m)));
}
static inline void where_lanes(const bf16* c, const bf16* a, const bf16* b, bf16* y, __mmask16 m) {
    __m256i cv = _mm256_maskz_loadu_epi16(m, c);  // nonzero unless +0 or -0
    __mmask16 take_a = _mm256_test_epi16_mask(cv, _mm256_set1_epi16(0x7fff));
    __m256i av = _mm256_maskz_loadu_epi16(m, a), bv = _mm256_maskz_loadu_epi16(m, b);
    _mm256_mask_storeu_epi16(y, m, _mm256_mask_blend_epi16(take_a, bv, av));
}
#endif

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
    RC_CHECK(cond.dtype() == a.dtype(), "where: condition must have the values' dtype here (", cond.str(), ")");
    dispatch_all(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* cs = static_cast<const T*>(cond.raw_data());
        const T* as = static_cast<const T*>(a.raw_data());
        const T* bs = static_cast<const T*>(b.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
        for_each_run<4>(out.shape(), {&out.strides(), &cond.strides(), &a.strides(), &b.strides()},
                        kElementwiseParallelMin,
                        [&](const std::array<int64_t, 4>& off, const std::array<int64_t, 4>& step, int64_t n) {
                            T* y = ys + off[0];
                            const T* c = cs + off[1];
                            const T* ap = as + off[2];
                            const T* bp = bs + off[3];
#if RANKCLIP_AVX512
                            if constexpr (vec::kVectorised<T>)
                                if (step[0] == 1 && step[1] == 1 && step[2] == 1 && step[3] == 1)
                                    return vec::for_lanes(n, [&](int64_t i, __mmask16 m) {
                                        where_lanes(c + i, ap + i, bp + i, y + i, m);
                                    });
#endif
                            for (int64_t j = 0; j < n; j++)
                                y[j * step[0]] = load(c + j * step[1]) != 0 ? ap[j * step[2]] : bp[j * step[3]];
                        });
    });
}

}  // namespace rankclip
