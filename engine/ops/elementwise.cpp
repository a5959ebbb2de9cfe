// engine/ops/elementwise.cpp
// defines: the elementwise ops (binary with NumPy broadcasting, unary, where, cast) and their
// backward. Binary ops broadcast their inputs with stride-0 views (no copies); the backward of
// every binary op reduces its gradient back with sum_to(grad, input shape) — the one place
// broadcasting is undone.
#include <cmath>

#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

using Grads = std::vector<Tensor>;

// Result dtype of mixing a and b: the wider floating type (F64 > F32 > BF16).
static DType promote(const Tensor& a, const Tensor& b, const char* op) {
    RC_CHECK(is_floating(a.dtype()) && is_floating(b.dtype()), op, ": needs floating tensors, got ", a.str(),
             " and ", b.str());
    if (a.dtype() == b.dtype()) return a.dtype();
    if (a.dtype() == DType::F64 || b.dtype() == DType::F64) return DType::F64;
    return DType::F32;
}

// A copy in another dtype, not recorded (callers record the op as a whole).
static Tensor cast_raw(const Tensor& x, DType dtype) {
    if (x.dtype() == dtype) return x.detach();
    Tensor out = empty(x.shape(), dtype, x.device());
    backend_for(x.device()).copy(x, out);
    return out;
}

// Broadcast view of x to shape (stride 0 on broadcast dims), not recorded.
static Tensor expand_raw(const Tensor& x, const Shape& shape) {
    if (x.shape() == shape) return x.detach();
    Shape strides(shape.size(), 0);
    size_t lead = shape.size() - x.shape().size();
    for (size_t i = lead; i < shape.size(); i++)
        strides[i] = x.shape()[i - lead] == shape[i] ? x.strides()[i - lead] : 0;
    return make_view(x, shape, strides, x.offset());
}

static void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
    RC_CHECK(a.device() == b.device(), op, ": tensors on different devices: ", a.str(), " and ", b.str());
}

static Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b) {
    const char* name = binary_op_name(op);
    check_same_device(a, b, name);
    DType dtype = promote(a, b, name);
    Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
    Tensor out = empty(shape, dtype, a.device());
    Backend& backend = backend_for(a.device());
    bool arithmetic = op == BinaryOp::Add || op == BinaryOp::Sub || op == BinaryOp::Mul || op == BinaryOp::Div;
    bool mixed = a.dtype() != b.dtype() && dtype == DType::F32 && arithmetic && backend.binary_mixes_float_dtypes();
    if (mixed)  // F32 with BF16 (the residual stream plus a bf16 branch under autocast): no cast pass
        backend.binary(op, expand_raw(a, shape), expand_raw(b, shape), out);
    else
        backend.binary(op, expand_raw(cast_raw(a, dtype), shape), expand_raw(cast_raw(b, dtype), shape), out);
    return out;
}

static Tensor unary_forward(UnaryOp op, const Tensor& x, double p0 = 0, double p1 = 0) {
    RC_CHECK(is_floating(x.dtype()), unary_op_name(op), ": needs a floating tensor, got ", x.str());
    Tensor out = empty(x.shape(), x.dtype(), x.device());
    backend_for(x.device()).unary(op, x, out, p0, p1);
    return out;
}

Tensor add(const Tensor& a, const Tensor& b) {
    Tensor out = binary_forward(BinaryOp::Add, a, b);
    record("add", out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) -> Grads {
        return {sum_to(g, sa), sum_to(g, sb)};
    });
    return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
    Tensor out = binary_forward(BinaryOp::Sub, a, b);
    record("sub", out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) -> Grads {
        return {sum_to(g, sa), sum_to(neg(g), sb)};
    });
    return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
    Tensor out = binary_forward(BinaryOp::Mul, a, b);
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record("mul", out, {a, b}, [a = a.detach(), b = b.detach(), ga, gb](const Tensor& g) -> Grads {
        return {ga ? sum_to(g * b, a.shape()) : Tensor(), gb ? sum_to(g * a, b.shape()) : Tensor()};
    });
    return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
    Tensor out = binary_forward(BinaryOp::Div, a, b);
    bool gb = b.requires_grad();
    record("div", out, {a, b}, [a = a.detach(), b = b.detach(), gb](const Tensor& g) -> Grads {
        // out = a / b  =>  da = g / b,  db = -g * a / b^2
        Tensor ga = g / b;
        return {sum_to(ga, a.shape()), gb ? sum_to(neg(ga * a / b), b.shape()) : Tensor()};
    });
    return out;
}

// Ties split the gradient evenly between the two inputs, as PyTorch does.
static Tensor extremum(BinaryOp op, const Tensor& a, const Tensor& b) {
    Tensor out = binary_forward(op, a, b);
    record(binary_op_name(op), out, {a, b}, [a = a.detach(), b = b.detach(), op](const Tensor& g) -> Grads {
        Tensor wins = op == BinaryOp::Maximum ? gt(a, b) : lt(a, b);
        Tensor share_a = wins + eq(a, b) * 0.5;  // 1 where a wins, 0.5 on ties
        return {sum_to(g * share_a, a.shape()), sum_to(g * (1.0 - share_a), b.shape())};
    });
    return out;
}
Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(BinaryOp::Maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(BinaryOp::Minimum, a, b); }

Tensor eq(const Tensor& a, const Tensor& b) { NoGradGuard ng; return binary_forward(BinaryOp::Eq, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { NoGradGuard ng; return binary_forward(BinaryOp::Gt, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { NoGradGuard ng; return binary_forward(BinaryOp::Lt, a, b); }

Tensor affine(const Tensor& x, double scale, double shift) {
    Tensor out = unary_forward(UnaryOp::Affine, x, scale, shift);
    record("affine", out, {x}, [scale](const Tensor& g) -> Grads { return {g * scale}; });
    return out;
}

Tensor neg(const Tensor& x) {
    Tensor out = unary_forward(UnaryOp::Neg, x);
    record("neg", out, {x}, [](const Tensor& g) -> Grads { return {neg(g)}; });
    return out;
}

Tensor exp(const Tensor& x) {
    Tensor out = unary_forward(UnaryOp::Exp, x);
    record("exp", out, {x}, [y = out.detach()](const Tensor& g) -> Grads { return {g * y}; });
    return out;
}

Tensor log(const Tensor& x) {
    Tensor out = unary_forward(UnaryOp::Log, x);
    record("log", out, {x}, [x = x.detach()](const Tensor& g) -> Grads { return {g / x}; });
    return out;
}

Tensor sqrt(const Tensor& x) {
    Tensor out = unary_forward(UnaryOp::Sqrt, x);
    // y = sqrt(x)  =>  dx = g / (2 y)
    record("sqrt", out, {x}, [y = out.detach()](const Tensor& g) -> Grads { return {g / y * 0.5}; });
    return out;
}

Tensor rsqrt(const Tensor& x) {
    Tensor out = unary_forward(UnaryOp::Rsqrt, x);
    // y = x^(-1/2)  =>  dx = -g y^3 / 2
    record("rsqrt", out, {x}, [y = out.detach()](const Tensor& g) -> Grads { return {g * y * y * y * -0.5}; });
    return out;
}

Tensor reciprocal(const Tensor& x) {
    Tensor out = unary_forward(UnaryOp::Reciprocal, x);
    // y = 1/x  =>  dx = -g y^2
    record("reciprocal", out, {x}, [y = out.detach()](const Tensor& g) -> Grads { return {neg(g * y * y)}; });
    return out;
}

Tensor pow(const Tensor& x, double p) {
    Tensor out = unary_forward(UnaryOp::Pow, x, p);
    // y = x^p  =>  dx = g p x^(p-1)
    record("pow", out, {x}, [x = x.detach(), p](const Tensor& g) -> Grads {
        return {p == 0 ? zeros_like(g) : g * pow(x, p - 1) * p};
    });
    return out;
}

static Tensor sign(const Tensor& x) { return unary_forward(UnaryOp::Sign, x); }

Tensor abs(const Tensor& x) {
    Tensor out = unary_forward(UnaryOp::Abs, x);
    record("abs", out, {x}, [x = x.detach()](const Tensor& g) -> Grads { return {g * sign(x)}; });
    return out;
}

Tensor tanh(const Tensor& x) {
    Tensor out = unary_forward(UnaryOp::Tanh, x);
    // y = tanh(x)  =>  dx = g (1 - y^2)
    record("tanh", out, {x}, [y = out.detach()](const Tensor& g) -> Grads { return {g * (1.0 - y * y)}; });
    return out;
}

Tensor sigmoid(const Tensor& x) {
    Tensor out = unary_forward(UnaryOp::Sigmoid, x);
    // y = sigmoid(x)  =>  dx = g y (1 - y)
    record("sigmoid", out, {x}, [y = out.detach()](const Tensor& g) -> Grads { return {g * y * (1.0 - y)}; });
    return out;
}

Tensor relu(const Tensor& x) {
    Tensor out = unary_forward(UnaryOp::Relu, x);
    // dx = g where x > 0: relu(sign(x)) is that 0/1 mask
    record("relu", out, {x}, [x = x.detach()](const Tensor& g) -> Grads {
        return {g * unary_forward(UnaryOp::Relu, sign(x))};
    });
    return out;
}

static Tensor activation(UnaryOp forward_op, BinaryOp backward_op, const Tensor& x) {
    Tensor out = unary_forward(forward_op, x);
    record(unary_op_name(forward_op), out, {x}, [x = x.detach(), backward_op](const Tensor& g) -> Grads {
        Tensor gc = g.dtype() == x.dtype() ? g : g.to(x.dtype());
        Tensor gx = empty(x.shape(), x.dtype(), x.device());
        backend_for(x.device()).binary(backward_op, x, expand_raw(gc, x.shape()), gx);
        return {gx};
    });
    return out;
}

Tensor gelu(const Tensor& x, bool tanh_approximation) {
    return tanh_approximation ? activation(UnaryOp::GeluTanh, BinaryOp::GeluTanhBackward, x)
                              : activation(UnaryOp::Gelu, BinaryOp::GeluBackward, x);
}

Tensor quick_gelu(const Tensor& x) { return activation(UnaryOp::QuickGelu, BinaryOp::QuickGeluBackward, x); }

Tensor clamp(const Tensor& x, double lo, double hi) {
    RC_CHECK(!(lo > hi), "clamp: lo ", lo, " > hi ", hi);
    Tensor out = unary_forward(UnaryOp::Clamp, x, lo, hi);
    // gradient passes where lo <= x <= hi, i.e. where clamping left x unchanged
    record("clamp", out, {x}, [x = x.detach(), y = out.detach()](const Tensor& g) -> Grads { return {g * eq(x, y)}; });
    return out;
}

Tensor clamp_min(const Tensor& x, double lo) { return clamp(x, lo, INFINITY); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    check_same_device(a, b, "where");
    check_same_device(cond, a, "where");
    DType dtype = promote(a, b, "where");
    Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
    Tensor out = empty(shape, dtype, a.device());
    Tensor c = expand_raw(cast_raw(cond, dtype), shape);
    backend_for(a.device()).where(c, expand_raw(cast_raw(a, dtype), shape), expand_raw(cast_raw(b, dtype), shape), out);
    record("where", out, {a, b}, [c, sa = a.shape(), sb = b.shape()](const Tensor& g) -> Grads {
        Tensor zero = zeros({}, g.dtype(), g.device());
        return {sum_to(where(c, g, zero), sa), sum_to(where(c, zero, g), sb)};
    });
    return out;
}

Tensor cast(const Tensor& x, DType dtype) {
    if (x.dtype() == dtype) return x;
    Tensor out = cast_raw(x, dtype);
    DType from = x.dtype();
    if (is_floating(dtype)) record("cast", out, {x}, [from](const Tensor& g) -> Grads { return {cast(g, from)}; });
    return out;
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double b) { return affine(a, 1.0, b); }
Tensor operator-(const Tensor& a, double b) { return affine(a, 1.0, -b); }
Tensor operator*(const Tensor& a, double b) { return affine(a, b, 0.0); }
Tensor operator/(const Tensor& a, double b) { return affine(a, 1.0 / b, 0.0); }
Tensor operator+(double a, const Tensor& b) { return affine(b, 1.0, a); }
Tensor operator-(double a, const Tensor& b) { return affine(b, -1.0, a); }
Tensor operator*(double a, const Tensor& b) { return affine(b, a, 0.0); }
Tensor operator/(double a, const Tensor& b) { return reciprocal(b) * a; }

}  // namespace rankclip
