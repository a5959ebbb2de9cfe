// engine/ops/optim.cpp
// defines: the optimizer kernels' front-ends — adamw_step_ (one fused AdamW update, in place)
// and global_norm (the L2 norm of many tensors, for gradient clipping). Neither is recorded:
// they run on parameters and gradients, outside the graph.
#include <cmath>
#include <tuple>

#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

void adamw_step_(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWHyper& h, int64_t step) {
    RC_CHECK(step >= 1, "adamw: step counts from 1, got ", step);
    for (const Tensor* t : std::initializer_list<const Tensor*>{&param, &grad, &m, &v})
        RC_CHECK(t->dtype() == DType::F32 && t->is_contiguous() && t->shape() == param.shape() &&
                     t->device() == param.device(),
                 "adamw: param, grad, m and v must be contiguous F32 of one shape on one device; got ", t->str(),
                 " for param ", param.str());
    AdamWScalars s;
    s.beta1 = float(h.beta1);
    s.one_minus_beta1 = float(1.0 - h.beta1);
    s.beta2 = float(h.beta2);
    s.one_minus_beta2 = float(1.0 - h.beta2);
    s.eps = float(h.eps);
    s.decay = float(1.0 - h.lr * h.weight_decay);
    s.neg_step_size = float(-h.lr / (1.0 - std::pow(h.beta1, double(step))));
    s.bc2_sqrt = float(std::sqrt(1.0 - std::pow(h.beta2, double(step))));
    backend_for(param.device()).adamw(param, grad, m, v, s);
}

// Sum of squares of x as a 0-d tensor (double accumulation): rows of 4096 reduced in one
// kernel, then the row results summed. The split depends only on the size: deterministic.
static Tensor sum_of_squares(const Tensor& x) {
    constexpr int64_t R = 4096;
    Tensor flat = x.detach().contiguous().reshape({-1});
    int64_t n = flat.numel(), rows = n / R, tail = n - rows * R;
    std::vector<Tensor> parts;
    for (auto [start, count, width] : {std::tuple{int64_t(0), rows, R}, std::tuple{rows * R, int64_t(1), tail}}) {
        if (count == 0 || width == 0) continue;
        Tensor block = flat.narrow(0, start, count * width).view({count, width});
        Tensor out = empty({count}, x.dtype(), x.device());
        backend_for(x.device()).reduce_rows(ReduceOp::SumSquares, block, out);
        parts.push_back(out);
    }
    if (parts.empty()) return zeros({}, x.dtype(), x.device());
    return sum(parts.size() == 1 ? parts[0] : cat(parts, 0));
}

Tensor global_norm(const std::vector<Tensor>& tensors) {
    NoGradGuard no_grad;
    Tensor total;
    for (const Tensor& t : tensors) {
        if (!t.defined()) continue;
        RC_CHECK(is_floating(t.dtype()), "global_norm: needs floating tensors, got ", t.str());
        Tensor s = sum_of_squares(t.dtype() == DType::BF16 ? t.to(DType::F32) : t);
        if (s.dtype() != DType::F64 && t.dtype() != DType::F64) s = s.to(DType::F32);
        total = total.defined() ? total + s : s;
    }
    RC_CHECK(total.defined(), "global_norm: no tensors given");
    return sqrt(total);
}

}  // namespace rankclip
