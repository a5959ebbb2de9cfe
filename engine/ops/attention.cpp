// engine/ops/attention.cpp
// defines: scaled_dot_product_attention (fused kernel: never materialises the (Tq, Tk) score
// matrix in memory; saves the row log-sum-exp for backward) and attention_composite, the same
// from matmul + softmax, which is the reference the fused kernel is tested against.
// Causal masking is top-left aligned, as torch's is_causal: query i sees keys j <= i.
#include <cmath>

#include "engine/autocast.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

static double default_scale(const Tensor& q, double scale) {
    return scale > 0 ? scale : 1.0 / std::sqrt(double(q.size(-1)));
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

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, bool causal,
                                    double scale) {
    Tensor q = autocast_low(q_in), k = autocast_low(k_in), v = autocast_low(v_in);  // bf16 under autocast
    check_qkv(q, k, v);
    scale = default_scale(q, scale);
    Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
    DType stat = q.dtype() == DType::F64 ? DType::F64 : DType::F32;
    Tensor out = empty(q.shape(), q.dtype(), q.device());
    Tensor lse = empty({q.size(0), q.size(1), q.size(2)}, stat, q.device());
    if (q.numel()) backend_for(q.device()).attention(qc, kc, vc, out, lse, causal, scale);
    record("attention", out, {qc, kc, vc},
           [q = qc.detach(), k = kc.detach(), v = vc.detach(), o = out.detach(), lse, causal,
            scale](const Tensor& g) -> std::vector<Tensor> {
               Tensor gq = empty(q.shape(), q.dtype(), q.device());
               Tensor gk = empty(k.shape(), k.dtype(), k.device());
               Tensor gv = empty(v.shape(), v.dtype(), v.device());
               Tensor gc = g.dtype() == q.dtype() ? g.contiguous() : g.to(q.dtype()).contiguous();
               if (q.numel()) backend_for(q.device()).attention_backward(q, k, v, o, lse, gc, gq, gk, gv, causal, scale);
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
    scale = default_scale(q, scale);
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

}  // namespace rankclip
