// engine/ops/softmax.cpp
// defines: softmax and log_softmax (fused row kernels, backward from the saved output) and their
// composites from primitive ops, which the fused versions are tested against.
#include "engine/autocast.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

// Over the last dim.
static Tensor softmax_last(const Tensor& x, bool log) {
    RC_CHECK(is_floating(x.dtype()), log ? "log_softmax" : "softmax", ": needs a floating tensor, got ", x.str());
    Tensor xc = x.contiguous();
    Tensor out = empty(x.shape(), x.dtype(), x.device());
    if (x.numel()) backend_for(x.device()).softmax_rows(xc, out, log);
    record(log ? "log_softmax" : "softmax", out, {xc}, [y = out.detach(), log](const Tensor& g) -> std::vector<Tensor> {
        Tensor gx = empty(y.shape(), y.dtype(), y.device());
        Tensor gc = g.dtype() == y.dtype() ? g.contiguous() : g.to(y.dtype()).contiguous();
        if (y.numel()) backend_for(y.device()).softmax_rows_backward(y, gc, gx, log);
        return {gx};
    });
    return out;
}

static Tensor softmax_dim(const Tensor& x_in, int64_t dim, bool log) {
    Tensor x = autocast_full(x_in);  // fp32 under autocast
    if (x.dim() == 0) return softmax_last(x.reshape({1}), log).reshape({});
    dim = wrap_dim(dim, x.dim(), log ? "log_softmax" : "softmax");
    if (dim == x.dim() - 1) return softmax_last(x, log);
    return softmax_last(x.transpose(dim, -1), log).transpose(dim, -1);
}

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_dim(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_dim(x, dim, true); }

Tensor log_softmax_composite(const Tensor& x, int64_t dim) { return x - logsumexp(x, {dim}, true); }
Tensor softmax_composite(const Tensor& x, int64_t dim) {
    Tensor shifted = x - amax(x, {dim}, true).detach();
    Tensor e = exp(shifted);
    return e / sum(e, {dim}, true);
}

}  // namespace rankclip
