// engine/backend.cpp
// defines: the backend registry (register_backend, has_backend, backend_for) and the default
// "missing kernel" implementations, so that a backend lacking a kernel fails with the op, device
// and dtype named.
#include "engine/backend.h"

#include "engine/cpu/cpu_backend.h"
#include "engine/profiler.h"

namespace rankclip {

const char* unary_op_name(UnaryOp op) {
    static const char* names[] = {"neg", "exp", "log", "sqrt", "rsqrt", "abs", "tanh", "sigmoid",
                                  "relu", "reciprocal", "gelu", "gelu_tanh", "quick_gelu", "pow",
                                  "clamp", "affine", "sign"};
    return names[int(op)];
}

const char* binary_op_name(BinaryOp op) {
    static const char* names[] = {"add", "sub", "mul", "div", "maximum", "minimum", "eq", "gt", "lt",
                                  "ge", "le", "gelu_backward", "gelu_tanh_backward",
                                  "quick_gelu_backward"};
    return names[int(op)];
}

// One slot per DeviceType (the CPU's stays empty: cpu_backend() is asked directly). Constant-
// initialised, so it is ready before any static initialiser calls register_backend.
static Backend* registry[2] = {nullptr, nullptr};

void register_backend(DeviceType type, Backend* backend) { registry[int(type)] = backend; }

bool has_backend(DeviceType type) {
    if (type == DeviceType::CPU) return true;
    Backend* b = registry[int(type)];
    return b != nullptr && b->device_count() > 0;
}

// While the op profiler runs, every backend is handed out inside its timing wrapper.
Backend& backend_for(Device device) {
    if (device.is_cpu()) return profiler::wrap(cpu_backend());
    Backend* b = registry[int(device.type)];
    RC_CHECK(b, "device ", device.str(), ": this build has no backend for it (build with `make cuda`)");
    RC_CHECK(b->device_count() > 0, "device ", device.str(), ": no ", b->name(),
             " device is available on this machine");
    return profiler::wrap(*b);
}

void Backend::missing(const char* op, const Tensor& t) const {
    throw Error(str_cat(op, ": no ", name(), " kernel for dtype ", dtype_name(t.dtype()), " (tensor ",
                        t.str(), ")"));
}

// No pinned memory unless a backend has it: callers fall back to plain CPU memory.
void* Backend::allocate_pinned_host(size_t) { return nullptr; }
void Backend::free_pinned_host(void*, size_t) {}

// Defaults: every kernel is "missing" until a backend overrides it.
void Backend::copy(const Tensor& src, Tensor&) { missing("copy", src); }
void Backend::copy_to_host(const void*, void*, size_t) { throw Error(str_cat("copy_to_host: not supported by ", name())); }
void Backend::copy_from_host(const void*, void*, size_t) { throw Error(str_cat("copy_from_host: not supported by ", name())); }
void Backend::fill(Tensor& dst, double) { missing("fill", dst); }
void Backend::unary(UnaryOp op, const Tensor& x, Tensor&, double, double) { missing(unary_op_name(op), x); }
void Backend::binary(BinaryOp op, const Tensor& a, const Tensor&, Tensor&) { missing(binary_op_name(op), a); }
void Backend::where(const Tensor&, const Tensor& a, const Tensor&, Tensor&) { missing("where", a); }
void Backend::reduce_rows(ReduceOp, const Tensor& x, Tensor&) { missing("reduce", x); }
void Backend::reduce_cols(ReduceOp op, const Tensor& x, Tensor& out) {
    // (A, R, C) -> (A, C, R) contiguous, then rows of R
    Tensor rows = x.detach().permute({0, 2, 1}).contiguous();
    reduce_rows(op, rows.view({x.size(0) * x.size(2), x.size(1)}), out);
}
void Backend::argmax_rows(const Tensor& x, Tensor&) { missing("argmax", x); }
void Backend::cumsum_rows(const Tensor& x, Tensor&, bool) { missing("cumsum", x); }
void Backend::sort_rows(const Tensor& x, Tensor&, Tensor&, bool) { missing("sort", x); }
void Backend::matmul(const Tensor& a, const Tensor&, Tensor&, bool, bool) { missing("matmul", a); }

void Backend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out) {
    // as a (1, M, K) @ (1, N, K)^T batch, then out += bias broadcast over the rows
    Tensor out3 = make_view(out, {1, out.size(0), out.size(1)}, {0, out.size(1), 1}, out.offset());
    matmul(make_view(x, {1, x.size(0), x.size(1)}, {0, x.size(1), 1}, x.offset()),
           make_view(w, {1, w.size(0), w.size(1)}, {0, w.size(1), 1}, w.offset()), out3, false, true);
    if (bias.defined()) binary(BinaryOp::Add, out, make_view(bias, out.shape(), {0, 1}, bias.offset()), out);
}
void Backend::linear_weight_grad(const Tensor& g, const Tensor& x, Tensor& gw, Tensor& gb) {
    // as a (1, M, N)^T @ (1, M, K) batch, then gb = the sums down g's columns, (1, M, N) -> (1, N)
    Tensor gw3 = make_view(gw, {1, gw.size(0), gw.size(1)}, {0, gw.size(1), 1}, gw.offset());
    Tensor g3 = make_view(g, {1, g.size(0), g.size(1)}, {0, g.size(1), 1}, g.offset());
    matmul(g3, make_view(x, {1, x.size(0), x.size(1)}, {0, x.size(1), 1}, x.offset()), gw3, true, false);
    if (gb.defined()) {
        Tensor gb2 = make_view(gb, {1, gb.size(0)}, {0, 1}, gb.offset());
        reduce_cols(ReduceOp::Sum, g3, gb2);
    }
}
void Backend::softmax_rows(const Tensor& x, Tensor&, bool) { missing("softmax", x); }
void Backend::softmax_rows_backward(const Tensor& y, const Tensor&, Tensor&, bool) { missing("softmax_backward", y); }
void Backend::layer_norm(const Tensor& x, const Tensor&, const Tensor&, Tensor&, Tensor&, Tensor&, double) {
    missing("layer_norm", x);
}
void Backend::layer_norm_backward(const Tensor& gy, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                  Tensor&, Tensor&, Tensor&) {
    missing("layer_norm_backward", gy);
}
void Backend::cross_entropy(const Tensor& logits, const Tensor&, Tensor&, Tensor&, int64_t) {
    missing("cross_entropy", logits);
}
void Backend::cross_entropy_backward(const Tensor& logits, const Tensor&, const Tensor&, const Tensor&, Tensor&,
                                     int64_t) {
    missing("cross_entropy_backward", logits);
}
void Backend::index_select(const Tensor& x, const Tensor&, Tensor&, int64_t, int64_t, int64_t) {
    missing("index_select", x);
}
void Backend::index_add(const Tensor& g, const Tensor&, Tensor&, int64_t, int64_t, int64_t) {
    missing("index_add", g);
}
void Backend::gather(const Tensor& x, const Tensor&, Tensor&, int64_t, int64_t, int64_t, int64_t) {
    missing("gather", x);
}
void Backend::scatter_add(const Tensor& g, const Tensor&, Tensor&, int64_t, int64_t, int64_t, int64_t) {
    missing("scatter_add", g);
}
void Backend::dropout_mask(Tensor& out, double, uint64_t, uint64_t) { missing("dropout", out); }
void Backend::adamw(Tensor& param, const Tensor&, Tensor&, Tensor&, const AdamWScalars&) {
    missing("adamw", param);
}
void Backend::list_mle(const Tensor& x, const Tensor&, const Tensor&, Tensor&, Tensor&, Tensor&, double) {
    missing("list_mle", x);
}
void Backend::list_mle_backward(const Tensor& x, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                const Tensor&, Tensor&, double) {
    missing("list_mle_backward", x);
}
void Backend::attention(const Tensor& q, const Tensor&, const Tensor&, Tensor&, Tensor&, bool, double) {
    missing("attention", q);
}
void Backend::attention_backward(const Tensor& q, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, Tensor&, Tensor&, Tensor&, bool, double) {
    missing("attention_backward", q);
}

}  // namespace rankclip
