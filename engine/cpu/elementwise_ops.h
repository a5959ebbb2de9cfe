// engine/cpu/elementwise_ops.h
// defines: the CPU elementwise functions as small function objects, each with its scalar
// definition (`operator()(A)`, A = float or double: the reference, and the path for F64 and for
// strided runs) and, with AVX-512, the same on 16 floats (`vec`). The scalar and vector forms
// use the same operations in the same order; they differ only where the vector form calls SLEEF
// (exp, log, tanh, erf: within 1 ULP of libm) instead of libm. Where GCC contracts a scalar
// a * b + c into a multiply-add (-march=native, -ffp-contract=fast), the vector form uses
// _mm512_fmadd_ps too, so the basic ops (affine) agree bit for bit.
#pragma once
#include <algorithm>
#include <cmath>

#include "engine/cpu/vec.h"

namespace rankclip::ew {

#if RANKCLIP_AVX512
using V = __m512;
inline V add(V a, V b) { return _mm512_add_ps(a, b); }
inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
inline V div(V a, V b) { return _mm512_div_ps(a, b); }
inline V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }  // a * b + c, rounded once
inline V k(float c) { return _mm512_set1_ps(c); }
// 1.0 where the comparison holds, else 0.0 (ordered: false when either side is NaN)
template <int Cmp> V compare(V a, V b) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, b, Cmp), k(1.0f)); }
#endif

// ---- activations, shared by the forward and backward kernels ----

// GELU, exact: x Phi(x) = x/2 (1 + erf(x / sqrt 2))
struct Gelu {
    template <typename A> A operator()(A x) const { return A(0.5) * x * (A(1) + std::erf(x * A(M_SQRT1_2))); }
#if RANKCLIP_AVX512
    V vec(V x) const { return mul(x, vec::normal_cdf(x)); }  // Phi as a piecewise polynomial: see vec.h
#endif
};
// d/dx x Phi(x) = Phi(x) + x phi(x)
struct GeluDerivative {
    template <typename A> A operator()(A x) const {
        A cdf = A(0.5) * (A(1) + std::erf(x * A(M_SQRT1_2)));
        A pdf = std::exp(A(-0.5) * x * x) * A(0.5 * M_2_SQRTPI * M_SQRT1_2);  // 1/sqrt(2 pi)
        return cdf + x * pdf;
    }
#if RANKCLIP_AVX512
    V vec(V x) const { return vec::gelu_derivative(x); }  // a piecewise polynomial: see vec.h
#endif
};

// GELU, tanh approximation: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
constexpr double kGeluTanhScale = 0.7978845608028654;  // sqrt(2/pi)
struct GeluTanh {
    template <typename A> A operator()(A x) const {
        A u = A(kGeluTanhScale) * (x + A(0.044715) * x * x * x);
        return A(0.5) * x * (A(1) + std::tanh(u));
    }
#if RANKCLIP_AVX512
    V vec(V x) const {
        V u = mul(k(float(kGeluTanhScale)), fma(mul(mul(k(0.044715f), x), x), x, x));
        return mul(mul(k(0.5f), x), add(k(1.0f), vec::tanh(u)));
    }
#endif
};
// d/dx of GeluTanh, with sigma = sigmoid(2u) = (1 + tanh u) / 2 and sigma (1 - sigma) =
// (1 - tanh^2 u) / 4:  sigma + 2 x sigma (1 - sigma) du/dx. Both taken from e = exp(-2|u|), so
// neither is a difference of numbers near 1: in the left tail, where the textbook
// 1/2 (1 + t) + x/2 (1 - t^2) du/dx rounds t to -1 and returns 0 or a rounding residue of the
// size of the true value (x = -5: -1.6e-6), this keeps its relative accuracy.
struct GeluTanhDerivative {
    template <typename A> A operator()(A x) const {
        A u = A(kGeluTanhScale) * (x + A(0.044715) * x * x * x);
        A e = std::exp(A(-2) * std::abs(u));  // (0, 1]
        A r = A(1) / (A(1) + e);
        A er = e * r;
        A sigma = u >= A(0) ? r : er;  // sigmoid(2u)
        A sigma_1m = er * r;           // sigmoid(2u) sigmoid(-2u)
        A du = A(kGeluTanhScale) * (A(1) + A(3 * 0.044715) * x * x);
        return A(2) * x * sigma_1m * du + sigma;
    }
#if RANKCLIP_AVX512
    V vec(V x) const {
        V u = mul(k(float(kGeluTanhScale)), fma(mul(mul(k(0.044715f), x), x), x, x));
        V e = vec::exp(mul(k(-2.0f), _mm512_abs_ps(u)));
        V r = div(k(1.0f), add(k(1.0f), e));
        V er = mul(e, r);
        V sigma = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(u, k(0.0f), _CMP_GE_OQ), er, r);
        V sigma_1m = mul(er, r);
        V du = mul(k(float(kGeluTanhScale)), fma(mul(k(float(3 * 0.044715)), x), x, k(1.0f)));
        return fma(mul(mul(k(2.0f), x), sigma_1m), du, sigma);
    }
#endif
};

struct Sigmoid {
    template <typename A> A operator()(A x) const { return A(1) / (A(1) + std::exp(-x)); }
#if RANKCLIP_AVX512
    V vec(V x) const { return div(k(1.0f), add(k(1.0f), vec::exp(sub(k(0.0f), x)))); }
#endif
};
// QuickGELU: x sigmoid(1.702 x)
struct QuickGelu {
    template <typename A> A operator()(A x) const { return x * Sigmoid{}(A(1.702) * x); }
#if RANKCLIP_AVX512
    V vec(V x) const { return mul(x, Sigmoid{}.vec(mul(k(1.702f), x))); }
#endif
};
// d/dx x s(1.702 x) = s + 1.702 x s (1 - s)
struct QuickGeluDerivative {
    template <typename A> A operator()(A x) const {
        A s = Sigmoid{}(A(1.702) * x);
        return s + x * A(1.702) * s * (A(1) - s);
    }
#if RANKCLIP_AVX512
    V vec(V x) const {
        V s = Sigmoid{}.vec(mul(k(1.702f), x));
        return fma(mul(mul(x, k(1.702f)), s), sub(k(1.0f), s), s);
    }
#endif
};

// ---- unary ops (UnaryOp) ----

struct Neg {
    template <typename A> A operator()(A x) const { return -x; }
#if RANKCLIP_AVX512
    V vec(V x) const { return _mm512_xor_ps(x, k(-0.0f)); }
#endif
};
struct Exp {
    template <typename A> A operator()(A x) const { return std::exp(x); }
#if RANKCLIP_AVX512
    V vec(V x) const { return vec::exp(x); }
#endif
};
struct Log {
    template <typename A> A operator()(A x) const { return std::log(x); }
#if RANKCLIP_AVX512
    V vec(V x) const { return vec::log(x); }
#endif
};
struct Sqrt {
    template <typename A> A operator()(A x) const { return std::sqrt(x); }
#if RANKCLIP_AVX512
    V vec(V x) const { return _mm512_sqrt_ps(x); }
#endif
};
struct Rsqrt {
    template <typename A> A operator()(A x) const { return A(1) / std::sqrt(x); }
#if RANKCLIP_AVX512
    V vec(V x) const { return div(k(1.0f), _mm512_sqrt_ps(x)); }
#endif
};
struct Abs {
    template <typename A> A operator()(A x) const { return std::abs(x); }
#if RANKCLIP_AVX512
    V vec(V x) const { return _mm512_abs_ps(x); }
#endif
};
struct Tanh {
    template <typename A> A operator()(A x) const { return std::tanh(x); }
#if RANKCLIP_AVX512
    V vec(V x) const { return vec::tanh(x); }
#endif
};
struct Relu {  // NaN -> 0, as the comparison is false
    template <typename A> A operator()(A x) const { return x > A(0) ? x : A(0); }
#if RANKCLIP_AVX512
    V vec(V x) const { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, k(0.0f), _CMP_GT_OQ), x); }
#endif
};
struct Reciprocal {
    template <typename A> A operator()(A x) const { return A(1) / x; }
#if RANKCLIP_AVX512
    V vec(V x) const { return div(k(1.0f), x); }
#endif
};
struct Pow {  // scalar only: std::pow's exact cases (x^2 == x * x) matter to its callers
    double p;
    template <typename A> A operator()(A x) const { return std::pow(x, A(p)); }
};
struct Clamp {  // NaN stays NaN
    double lo, hi;
    template <typename A> A operator()(A x) const { return std::min(std::max(x, A(lo)), A(hi)); }
#if RANKCLIP_AVX512
    V vec(V x) const {
        V m = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, k(float(lo)), _CMP_LT_OQ), x, k(float(lo)));  // max(x, lo)
        return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(k(float(hi)), m, _CMP_LT_OQ), m, k(float(hi)));  // min(m, hi)
    }
#endif
};
struct Affine {  // x * scale + shift, rounded once (what GCC makes of the scalar expression)
    double scale, shift;
    template <typename A> A operator()(A x) const { return std::fma(x, A(scale), A(shift)); }
#if RANKCLIP_AVX512
    V vec(V x) const { return fma(x, k(float(scale)), k(float(shift))); }
#endif
};
struct Sign {  // -1, 0 or 1; NaN -> 0
    template <typename A> A operator()(A x) const { return A((x > A(0)) - (x < A(0))); }
#if RANKCLIP_AVX512
    V vec(V x) const {
        V pos = compare<_CMP_GT_OQ>(x, k(0.0f)), negative = compare<_CMP_LT_OQ>(x, k(0.0f));
        return sub(pos, negative);
    }
#endif
};

// ---- binary ops (BinaryOp) ----

struct Add {
    template <typename A> A operator()(A a, A b) const { return a + b; }
#if RANKCLIP_AVX512
    V vec(V a, V b) const { return add(a, b); }
#endif
};
struct Sub {
    template <typename A> A operator()(A a, A b) const { return a - b; }
#if RANKCLIP_AVX512
    V vec(V a, V b) const { return sub(a, b); }
#endif
};
struct Mul {
    template <typename A> A operator()(A a, A b) const { return a * b; }
#if RANKCLIP_AVX512
    V vec(V a, V b) const { return mul(a, b); }
#endif
};
struct Div {
    template <typename A> A operator()(A a, A b) const { return a / b; }
#if RANKCLIP_AVX512
    V vec(V a, V b) const { return div(a, b); }
#endif
};
// NaN in a wins; NaN in b wins unless a is the larger (the comparison is false)
struct Maximum {
    template <typename A> A operator()(A a, A b) const { return (a != a || a > b) ? a : b; }
#if RANKCLIP_AVX512
    V vec(V a, V b) const {
        __mmask16 take_a = _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ);
        return _mm512_mask_blend_ps(take_a, b, a);
    }
#endif
};
struct Minimum {
    template <typename A> A operator()(A a, A b) const { return (a != a || a < b) ? a : b; }
#if RANKCLIP_AVX512
    V vec(V a, V b) const {
        __mmask16 take_a = _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ);
        return _mm512_mask_blend_ps(take_a, b, a);
    }
#endif
};
// comparisons: 1 where true, else 0 (false when either side is NaN)
struct Eq {
    template <typename A> A operator()(A a, A b) const { return A(a == b); }
#if RANKCLIP_AVX512
    V vec(V a, V b) const { return compare<_CMP_EQ_OQ>(a, b); }
#endif
};
struct Gt {
    template <typename A> A operator()(A a, A b) const { return A(a > b); }
#if RANKCLIP_AVX512
    V vec(V a, V b) const { return compare<_CMP_GT_OQ>(a, b); }
#endif
};
struct Lt {
    template <typename A> A operator()(A a, A b) const { return A(a < b); }
#if RANKCLIP_AVX512
    V vec(V a, V b) const { return compare<_CMP_LT_OQ>(a, b); }
#endif
};
struct Ge {
    template <typename A> A operator()(A a, A b) const { return A(a >= b); }
#if RANKCLIP_AVX512
    V vec(V a, V b) const { return compare<_CMP_GE_OQ>(a, b); }
#endif
};
struct Le {
    template <typename A> A operator()(A a, A b) const { return A(a <= b); }
#if RANKCLIP_AVX512
    V vec(V a, V b) const { return compare<_CMP_LE_OQ>(a, b); }
#endif
};

// The activations' backward: a = x, b = the output's gradient; gx = g * f'(x).
template <typename Derivative>
struct ActivationBackward {
    template <typename A> A operator()(A x, A g) const { return g * Derivative{}(x); }
#if RANKCLIP_AVX512
    V vec(V x, V g) const { return mul(g, Derivative{}.vec(x)); }
#endif
};

}  // namespace rankclip::ew
