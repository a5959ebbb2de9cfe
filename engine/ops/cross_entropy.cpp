// engine/ops/cross_entropy.cpp
// defines: cross_entropy with integer class targets — a fused log-softmax + NLL kernel whose
// backward is the fused (softmax - onehot) — and cross_entropy_composite, the reference built
// from log_softmax and gather. Reductions as torch: mean over rows whose target is not
// ignore_index, sum, or none.
#include "engine/autocast.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

static void check_ce_args(const Tensor& logits, const Tensor& target) {
    RC_CHECK(logits.dim() == 2 && is_floating(logits.dtype()), "cross_entropy: logits must be floating (N, C), got ",
             logits.str());
    RC_CHECK(target.dim() == 1 && target.size(0) == logits.size(0) &&
                 (target.dtype() == DType::I64 || target.dtype() == DType::I32),
             "cross_entropy: target must be integer (N) with N = ", logits.size(0), ", got ", target.str());
    RC_CHECK(target.device() == logits.device(), "cross_entropy: target on ", target.device().str(), ", logits on ",
             logits.device().str());
}

static Tensor reduce_losses(const Tensor& losses, const Tensor& target, Reduction reduction, int64_t ignore_index) {
    if (reduction == Reduction::None) return losses;
    if (reduction == Reduction::Sum) return sum(losses);
    int64_t counted = 0;
    for (int64_t t : target.to_vector<int64_t>()) counted += t != ignore_index;
    return sum(losses) * (1.0 / double(counted));  // 0/0 = NaN when every row is ignored, as torch
}

Tensor cross_entropy(const Tensor& logits_in, const Tensor& target, Reduction reduction, int64_t ignore_index) {
    Tensor logits = autocast_full(logits_in);  // fp32 under autocast
    check_ce_args(logits, target);
    Tensor lc = logits.contiguous(), tc = target.contiguous();
    DType stat = logits.dtype() == DType::F64 ? DType::F64 : DType::F32;
    Tensor losses = empty({logits.size(0)}, logits.dtype(), logits.device());
    Tensor lse = empty({logits.size(0)}, stat, logits.device());
    if (logits.numel()) backend_for(logits.device()).cross_entropy(lc, tc, losses, lse, ignore_index);
    record("cross_entropy", losses, {lc}, [x = lc.detach(), tc, lse, ignore_index](const Tensor& g) -> std::vector<Tensor> {
        Tensor gx = empty(x.shape(), x.dtype(), x.device());
        Tensor gc = g.dtype() == x.dtype() ? g.contiguous() : g.to(x.dtype()).contiguous();
        if (x.numel()) backend_for(x.device()).cross_entropy_backward(x, tc, lse, gc, gx, ignore_index);
        return {gx};
    });
    return reduce_losses(losses, tc, reduction, ignore_index);
}

Tensor cross_entropy_composite(const Tensor& logits, const Tensor& target, Reduction reduction, int64_t ignore_index) {
    check_ce_args(logits, target);
    std::vector<int64_t> t = target.to_vector<int64_t>();
    std::vector<int64_t> safe(t.size());
    std::vector<double> keep(t.size());
    for (size_t i = 0; i < t.size(); i++) {
        keep[i] = t[i] != ignore_index;
        safe[i] = keep[i] ? t[i] : 0;
    }
    Tensor index = from_vector(safe, {int64_t(t.size()), 1}, DType::I64, logits.device());
    Tensor picked = gather(log_softmax_composite(logits, 1), 1, index).squeeze(1);
    // where, not a multiply by keep: when every row is ignored the mean's gradient is inf, and
    // inf * 0 would make the logits' gradient NaN; torch gives 0 there
    Tensor keep_mask = from_vector(keep, {int64_t(t.size())}, logits.dtype(), logits.device());
    Tensor losses = where(keep_mask, -picked, zeros({}, logits.dtype(), logits.device()));
    return reduce_losses(losses, target, reduction, ignore_index);
}

}  // namespace rankclip
