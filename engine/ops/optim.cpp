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

// The L2 norm of all the tensors together: one reduce_rows launch per tensor (two where its size
// is not a multiple of 4096), each writing its partial sums of squares into its own slots of one
// shared vector, then one sum of that vector. A training step's ~300 gradients thus cost ~300
// small kernels, not ~900 (a sum and an add per tensor as well). F64 tensors are summed apart,
// in F64; BF16 ones are widened to F32 first. The slots depend only on the sizes: deterministic.
Tensor global_norm(const std::vector<Tensor>& tensors) {
    NoGradGuard no_grad;
    constexpr int64_t R = 4096;  // elements per row of a reduce_rows launch
    const Tensor* first = nullptr;
    for (const Tensor& t : tensors) {
        if (!t.defined()) continue;
        RC_CHECK(is_floating(t.dtype()), "global_norm: needs floating tensors, got ", t.str());
        if (first == nullptr) first = &t;
        RC_CHECK(t.device() == first->device(), "global_norm: tensors on different devices: ", first->str(), ", ",
                 t.str());
    }
    RC_CHECK(first != nullptr, "global_norm: no tensors given");
    const Device device = first->device();
    Tensor total;
    for (DType dtype : {DType::F32, DType::F64}) {
        auto mine = [dtype](const Tensor& t) { return t.defined() && (t.dtype() == DType::F64) == (dtype == DType::F64); };
        int64_t slots = 0;  // rows of 4096, and one more for a tail
        for (const Tensor& t : tensors)
            if (mine(t)) slots += t.numel() / R + (t.numel() % R != 0);
        if (slots == 0) continue;
        Tensor partials = empty({slots}, dtype, device);
        int64_t at = 0;
        for (const Tensor& t : tensors) {
            if (!mine(t)) continue;
            Tensor flat = (t.dtype() == dtype ? t.detach() : t.detach().to(dtype)).contiguous().reshape({-1});
            const int64_t n = flat.numel(), rows = n / R, tail = n - rows * R;
            for (auto [start, count, width] : {std::tuple{int64_t(0), rows, R}, std::tuple{rows * R, int64_t(1), tail}}) {
                if (count == 0 || width == 0) continue;
                Tensor block = flat.narrow(0, start, count * width).view({count, width});  // (count, width)
                Tensor out = partials.narrow(0, at, count);                                // (count)
                backend_for(device).reduce_rows(ReduceOp::SumSquares, block, out);
                at += count;
            }
        }
        Tensor part = sum(partials);
        total = total.defined() ? total.to(DType::F64) + part : part;
    }
    if (!total.defined()) total = zeros({}, DType::F32, device);  // only empty tensors
    return sqrt(total);
}

}  // namespace rankclip
