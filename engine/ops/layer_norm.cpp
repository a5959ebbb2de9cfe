// engine/ops/layer_norm.cpp
// defines: layer_norm (fused kernel; forward saves mean and rstd per row, backward computes
// dx, dw, db in one kernel) and layer_norm_composite (the same from primitive ops: the
// reference the fused op is tested against). Normalises over the last dim.
#include "engine/autocast.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

Tensor layer_norm(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, double eps) {
    Tensor x = autocast_full(x_in), w = autocast_full(w_in), b = autocast_full(b_in);  // fp32 under autocast
    RC_CHECK(x.dim() >= 1 && is_floating(x.dtype()), "layer_norm: needs a floating tensor of at least 1 dim, got ",
             x.str());
    int64_t C = x.shape().back();
    for (const Tensor* p : {&w, &b})
        if (p->defined())
            RC_CHECK(p->shape() == Shape{C} && p->dtype() == x.dtype() && p->device() == x.device(),
                     "layer_norm: weight/bias ", p->str(), " does not fit input ", x.str(), " (need (", C, "))");
    Tensor xc = x.contiguous();
    Tensor wc = w.defined() ? w.contiguous() : w, bc = b.defined() ? b.contiguous() : b;
    DType stat = x.dtype() == DType::F64 ? DType::F64 : DType::F32;
    Shape rows(x.shape().begin(), x.shape().end() - 1);
    Tensor out = empty(x.shape(), x.dtype(), x.device());
    Tensor mean = empty(rows, stat, x.device()), rstd = empty(rows, stat, x.device());
    if (x.numel()) backend_for(x.device()).layer_norm(xc, wc, bc, out, mean, rstd, eps);
    bool has_w = w.defined(), has_b = b.defined();
    record("layer_norm", out, {xc, wc, bc},
           [x = xc.detach(), w = has_w ? wc.detach() : Tensor(), mean, rstd, has_b](const Tensor& g) -> std::vector<Tensor> {
               Tensor gx = empty(x.shape(), x.dtype(), x.device());
               Tensor gw = w.defined() ? empty(w.shape(), x.dtype(), x.device()) : Tensor();
               Tensor gb = has_b ? empty({x.shape().back()}, x.dtype(), x.device()) : Tensor();
               Tensor gc = g.dtype() == x.dtype() ? g.contiguous() : g.to(x.dtype()).contiguous();
               if (x.numel()) backend_for(x.device()).layer_norm_backward(gc, x, w, mean, rstd, gx, gw, gb);
               else {
                   if (gw.defined()) gw.zero_();
                   if (gb.defined()) gb.zero_();
               }
               return {gx, gw, gb};
           });
    return out;
}

Tensor layer_norm_composite(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
    Tensor centered = x - mean(x, {-1}, true);
    Tensor variance = mean(centered * centered, {-1}, true);
    Tensor y = centered * rsqrt(variance + eps);
    if (w.defined()) y = y * w;
    if (b.defined()) y = y + b;
    return y;
}

}  // namespace rankclip
