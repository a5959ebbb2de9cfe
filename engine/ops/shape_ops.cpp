// engine/ops/shape_ops.cpp
// defines: cat, stack, flip and cumsum (forward and reverse), with their backward:
// cat's gradient is the matching slice of g, flip's is flip(g), cumsum's is the cumsum of g in
// the opposite direction.
#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

using Grads = std::vector<Tensor>;

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
    RC_CHECK(!tensors.empty(), "cat: no tensors given");
    const Tensor& first = tensors[0];
    RC_CHECK(first.dim() > 0, "cat: cannot concatenate 0-d tensors (use stack)");
    dim = wrap_dim(dim, first.dim(), "cat");
    Shape shape = first.shape();
    shape[dim] = 0;
    for (size_t i = 0; i < tensors.size(); i++) {
        const Tensor& t = tensors[i];
        RC_CHECK(t.dim() == first.dim() && t.dtype() == first.dtype() && t.device() == first.device(),
                 "cat: tensor ", i, " is ", t.str(), ", tensor 0 is ", first.str());
        for (int64_t d = 0; d < t.dim(); d++)
            RC_CHECK(d == dim || t.shape()[d] == first.shape()[d], "cat: tensor ", i, " has shape ",
                     shape_str(t.shape()), ", tensor 0 has ", shape_str(first.shape()), " (all but dim ", dim,
                     " must match)");
        shape[dim] += t.shape()[dim];
    }
    Tensor out = empty(shape, first.dtype(), first.device());
    std::vector<int64_t> starts;
    int64_t start = 0;
    {
        NoGradGuard no_grad;
        for (const Tensor& t : tensors) {
            Tensor slot = out.narrow(dim, start, t.shape()[dim]);
            backend_for(out.device()).copy(t, slot);
            starts.push_back(start);
            start += t.shape()[dim];
        }
    }
    std::vector<int64_t> lengths;
    for (const Tensor& t : tensors) lengths.push_back(t.shape()[dim]);
    record("cat", out, tensors, [dim, starts, lengths](const Tensor& g) -> Grads {
        Grads grads;
        for (size_t i = 0; i < starts.size(); i++) grads.push_back(g.narrow(dim, starts[i], lengths[i]));
        return grads;
    });
    return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
    RC_CHECK(!tensors.empty(), "stack: no tensors given");
    dim = wrap_dim(dim, tensors[0].dim() + 1, "stack");
    std::vector<Tensor> expanded;
    for (const Tensor& t : tensors) {
        RC_CHECK(t.shape() == tensors[0].shape(), "stack: shapes differ: ", t.str(), " vs ", tensors[0].str());
        expanded.push_back(t.unsqueeze(dim));
    }
    return cat(expanded, dim);
}

Tensor flip(const Tensor& x, const std::vector<int64_t>& dims) {
    Tensor out = x;
    for (int64_t d : dims) {
        d = wrap_dim(d, x.dim(), "flip");
        if (x.dim() == 0) continue;  // flipping a 0-d tensor is the identity
        int64_t n = x.shape()[d];
        out = index_select(out, d, arange(double(n - 1), -1.0, -1.0, DType::I64, x.device()));
    }
    return out;
}

// Along the last dim of a contiguous tensor.
static Tensor cumsum_last(const Tensor& x, bool reverse) {
    Tensor xc = x.contiguous();
    Tensor out = empty(x.shape(), x.dtype(), x.device());
    backend_for(x.device()).cumsum_rows(xc, out, reverse);
    // out[i] = sum_{j <= i} x[j]  =>  gx[j] = sum_{i >= j} g[i]: the cumsum in the other direction
    record("cumsum", out, {xc}, [reverse](const Tensor& g) -> Grads { return {cumsum_last(g, !reverse)}; });
    return out;
}

Tensor cumsum(const Tensor& x, int64_t dim, bool reverse) {
    RC_CHECK(is_floating(x.dtype()), "cumsum: needs a floating tensor, got ", x.str());
    if (x.dim() == 0) return x;
    dim = wrap_dim(dim, x.dim(), "cumsum");
    if (dim == x.dim() - 1) return cumsum_last(x, reverse);
    return cumsum_last(x.transpose(dim, -1), reverse).transpose(dim, -1);
}

}  // namespace rankclip
