// engine/ops/attention.cpp
// defines: scaled_dot_product_attention (fused kernel: never materialises the (Tq, Tk) score
// matrix in memory; saves the row log-sum-exp for backward) and attention_composite, the same
// from matmul + softmax, which is the reference the fused kernel is tested against; and
// self_attention, attention over a packed (B, T, 3W) projection with no copies around the
// kernel, with self_attention_composite (head-split views + scaled_dot_product_attention) as its
// reference. Causal masking is top-left aligned, as torch's is_causal: query i sees keys j <= i.
//
// Layouts. The kernels take (B, H, T, D) views with any strides for B, H, T and unit stride
// along D (backend.h), so q, k, v are never copied unless their last dim is strided, and the
// output is allocated as (B, T, H, D) and returned permuted to (B, H, T, D): the usual
// `y.permute({0, 2, 1, 3}).reshape({B, T, W})` that puts the heads back side by side is then a
// view. self_attention goes one step further for the model: its backward writes dq, dk, dv into
// one (B, T, 3W) gradient, where head-split views of a packed projection would have each of
// select's backwards zero-fill a (3, B, H, T, D) tensor and autograd add the three.
#include <array>
#include <cmath>

#include "engine/autocast.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

static double default_scale(int64_t head_dim, double scale) {
    return scale > 0 ? scale : 1.0 / std::sqrt(double(head_dim));
}

static void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v) {
    RC_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: q, k, v must be (B, H, T, D), got ", q.str(),
             ", ", k.str(), ", ", v.str());
    RC_CHECK(k.shape() == v.shape() && q.size(0) == k.size(0) && q.size(1) == k.size(1) && q.size(3) == k.size(3),
             "attention: shapes do not fit: q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ",
             shape_str(v.shape()));
    RC_CHECK(q.dtype() == k.dtype() && k.dtype() == v.dtype() && is_floating(q.dtype()),
             "attention: q, k, v need one floating dtype: ", q.str(), ", ", k.str(), ", ", v.str());
    RC_CHECK(q.device() == k.device() && k.device() == v.device(), "attention: q, k, v on different devices");
}

// t itself when its last dim has unit stride (what the kernels need), else a contiguous copy.
static Tensor unit_last_stride(const Tensor& t) {
    return t.dim() == 0 || t.size(-1) <= 1 || t.strides().back() == 1 ? t : t.contiguous();
}

static DType stat_dtype(DType dtype) { return dtype == DType::F64 ? DType::F64 : DType::F32; }

// A new (B, H, T, D) tensor laid out as a contiguous (B, T, H, D): heads side by side per token.
static Tensor empty_heads_interleaved(int64_t B, int64_t H, int64_t T, int64_t D, DType dtype, Device device) {
    Tensor buffer = empty({B, T, H, D}, dtype, device);
    return make_view(buffer, {B, H, T, D}, {T * H * D, D, H * D, 1}, 0);
}

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, bool causal,
                                    double scale) {
    Tensor q = autocast_low(q_in), k = autocast_low(k_in), v = autocast_low(v_in);  // bf16 under autocast
    check_qkv(q, k, v);
    scale = default_scale(q.size(-1), scale);
    q = unit_last_stride(q), k = unit_last_stride(k), v = unit_last_stride(v);
    Tensor out = empty_heads_interleaved(q.size(0), q.size(1), q.size(2), q.size(3), q.dtype(), q.device());
    Tensor lse = empty({q.size(0), q.size(1), q.size(2)}, stat_dtype(q.dtype()), q.device());
    if (q.numel()) backend_for(q.device()).attention(q, k, v, out, lse, causal, scale);
    record("attention", out, {q, k, v},
           [q = q.detach(), k = k.detach(), v = v.detach(), o = out.detach(), lse, causal,
            scale](const Tensor& g) -> std::vector<Tensor> {
               Tensor gq = empty(q.shape(), q.dtype(), q.device());
               Tensor gk = empty(k.shape(), k.dtype(), k.device());
               Tensor gv = empty(v.shape(), v.dtype(), v.device());
               Tensor gc = unit_last_stride(g.dtype() == q.dtype() ? g : g.to(q.dtype()));
               if (q.numel())
                   backend_for(q.device()).attention_backward(q, k, v, o, lse, gc, gq, gk, gv, causal, scale);
               else {  // no queries (Tq = 0): k and v still get their (zero) gradient
                   gk.zero_();
                   gv.zero_();
               }
               return {gq, gk, gv};
           });
    return out;
}

Tensor attention_composite(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale) {
    check_qkv(q, k, v);
    scale = default_scale(q.size(-1), scale);
    Tensor scores = matmul(q, k.transpose(-1, -2)) * scale;  // (B, H, Tq, Tk)
    if (causal) {
        int64_t Tq = q.size(2), Tk = k.size(2);
        std::vector<float> visible(size_t(Tq * Tk));
        for (int64_t i = 0; i < Tq; i++)
            for (int64_t j = 0; j < Tk; j++) visible[i * Tk + j] = j <= i;
        Tensor mask = from_vector(visible, {Tq, Tk}, scores.dtype(), scores.device());
        scores = where(mask, scores, full({}, -INFINITY, scores.dtype(), scores.device()));
    }
    return matmul(softmax_composite(scores, -1), v);
}

// ---------------------------------------------------------------------------------------------
// self-attention over a packed projection

static void check_packed(const Tensor& qkv, int64_t heads) {
    RC_CHECK(qkv.dim() == 3, "self_attention: qkv must be (B, T, 3W), got ", qkv.str());
    RC_CHECK(heads > 0 && qkv.size(2) % (3 * heads) == 0, "self_attention: the last dim of qkv ", qkv.str(),
             " must be 3 x heads x D with heads = ", heads);
    RC_CHECK(is_floating(qkv.dtype()), "self_attention: qkv must be floating, got ", qkv.str());
}

// The (B, H, T, D) views of q, k, v (part = 0, 1, 2) inside a (B, T, 3W) tensor with unit stride
// along its last dim: head h of token t is the D values at t * s1 + (part W + h D).
static Tensor packed_heads(const Tensor& qkv, int64_t part, int64_t heads) {
    int64_t B = qkv.size(0), T = qkv.size(1), W = qkv.size(2) / 3, D = W / heads;
    const Shape& s = qkv.strides();
    return make_view(qkv, {B, heads, T, D}, {s[0], D, s[1], 1}, qkv.offset() + part * W);
}

Tensor self_attention(const Tensor& qkv_in, int64_t heads, bool causal, double scale) {
    Tensor qkv = autocast_low(qkv_in);  // bf16 under autocast
    check_packed(qkv, heads);
    qkv = unit_last_stride(qkv);
    const int64_t B = qkv.size(0), T = qkv.size(1), W = qkv.size(2) / 3, D = W / heads;
    scale = default_scale(D, scale);
    Tensor q = packed_heads(qkv, 0, heads), k = packed_heads(qkv, 1, heads), v = packed_heads(qkv, 2, heads);
    Tensor out = empty({B, T, W}, qkv.dtype(), qkv.device());             // (B, T, W), heads side by side
    Tensor out_heads = make_view(out, {B, heads, T, D}, {T * W, D, W, 1}, 0);  // (B, H, T, D) view of it
    Tensor lse = empty({B, heads, T}, stat_dtype(qkv.dtype()), qkv.device());
    if (out.numel()) backend_for(qkv.device()).attention(q, k, v, out_heads, lse, causal, scale);
    record("self_attention", out, {qkv},
           [q, k, v, o = out_heads, lse, heads, causal, scale](const Tensor& g) -> std::vector<Tensor> {
               // g (B, T, W) as (B, H, T, D) heads; the gradient (B, T, 3W) written by the kernel
               // through its q, k, v parts, every element once
               Tensor gc = unit_last_stride(g.dtype() == q.dtype() ? g : g.to(q.dtype()));
               const int64_t D = q.size(3);
               Tensor g_heads = make_view(gc, q.shape(), {gc.strides()[0], D, gc.strides()[1], 1}, gc.offset());
               Tensor dqkv = empty({q.size(0), q.size(2), 3 * heads * D}, q.dtype(), q.device());
               Tensor gq = packed_heads(dqkv, 0, heads), gk = packed_heads(dqkv, 1, heads),
                      gv = packed_heads(dqkv, 2, heads);
               if (dqkv.numel())
                   backend_for(q.device()).attention_backward(q, k, v, o, lse, g_heads, gq, gk, gv, causal, scale);
               return {dqkv};
           });
    return out;
}

Tensor self_attention_composite(const Tensor& qkv, int64_t heads, bool causal, double scale) {
    check_packed(qkv, heads);
    const int64_t B = qkv.size(0), T = qkv.size(1), W = qkv.size(2) / 3, D = W / heads;
    Tensor h = qkv.reshape({B, T, 3, heads, D}).permute({2, 0, 3, 1, 4});  // (3, B, H, T, D)
    Tensor y = scaled_dot_product_attention(h.select(0, 0), h.select(0, 1), h.select(0, 2), causal, scale);
    return y.permute({0, 2, 1, 3}).reshape({B, T, W});  // (B, T, W), heads side by side
}

}  // namespace rankclip
