// engine/ops/indexing.cpp
// defines: index_select / embedding (backward: deterministic scatter-add of g into the selected
// rows), gather along a dim (backward: scatter_add), and sort / argsort (stable; the values
// carry the gradient back through the permutation, the indices carry none).
#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

using Grads = std::vector<Tensor>;

static void check_index(const Tensor& index, const Tensor& x, const char* op) {
    RC_CHECK(index.dtype() == DType::I64 || index.dtype() == DType::I32, op, ": index must be I64 or I32, got ",
             index.str());
    RC_CHECK(index.device() == x.device(), op, ": index on ", index.device().str(), ", input on ", x.device().str());
}

// (outer, n, inner) sizes around dim.
static void split_at(const Shape& shape, int64_t dim, int64_t& outer, int64_t& n, int64_t& inner) {
    outer = 1;
    inner = 1;
    for (int64_t d = 0; d < dim; d++) outer *= shape[d];
    n = shape[dim];
    for (int64_t d = dim + 1; d < int64_t(shape.size()); d++) inner *= shape[d];
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
    check_index(index, x, "index_select");
    RC_CHECK(index.dim() <= 1, "index_select: index must be 0-D or 1-D, got ", index.str());
    dim = wrap_dim(dim, x.dim(), "index_select");
    if (x.dim() == 0) {  // as torch: one index, a 0-d result
        RC_CHECK(index.numel() == 1, "index_select: a 0-d input needs one index, got ", index.str());
        return index_select(x.reshape({1}), 0, index.reshape({1})).reshape({});
    }
    int64_t outer, n, inner;
    split_at(x.shape(), dim, outer, n, inner);
    Shape shape = x.shape();
    shape[dim] = index.numel();
    Tensor xc = x.contiguous(), ic = index.contiguous();
    Tensor out = empty(shape, x.dtype(), x.device());
    backend_for(x.device()).index_select(xc, ic, out, outer, n, inner);
    record("index_select", out, {xc}, [ic, in = x.shape(), outer, n, inner](const Tensor& g) -> Grads {
        Tensor gx = zeros(in, g.dtype(), g.device());
        backend_for(g.device()).index_add(g.contiguous(), ic, gx, outer, n, inner);
        return {gx};
    });
    return out;
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
    RC_CHECK(weight.dim() == 2, "embedding: weight must be (V, C), got ", weight.str());
    Shape shape = ids.shape();
    shape.push_back(weight.size(1));
    return index_select(weight, 0, ids.reshape({-1})).view(shape);
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
    check_index(index, x, "gather");
    RC_CHECK(index.dim() == x.dim(), "gather: index ", index.str(), " and input ", x.str(), " differ in dims");
    dim = wrap_dim(dim, x.dim(), "gather");
    if (x.dim() == 0) return gather(x.reshape({1}), 0, index.reshape({1})).reshape({});
    Tensor src = x;
    for (int64_t d = 0; d < x.dim(); d++) {  // like torch, index may be smaller than x off the gather dim
        if (d == dim) continue;
        RC_CHECK(index.shape()[d] <= x.shape()[d], "gather: index ", index.str(), " larger than input ", x.str(),
                 " in dim ", d);
        if (index.shape()[d] < x.shape()[d]) src = src.narrow(d, 0, index.shape()[d]);
    }
    int64_t outer, n, inner;
    split_at(src.shape(), dim, outer, n, inner);
    int64_t m = index.shape()[dim];
    Tensor xc = src.contiguous(), ic = index.contiguous();
    Tensor out = empty(index.shape(), x.dtype(), x.device());
    backend_for(x.device()).gather(xc, ic, out, outer, n, m, inner);
    record("gather", out, {xc}, [ic, in = xc.shape(), outer, n, m, inner](const Tensor& g) -> Grads {
        Tensor gx = zeros(in, g.dtype(), g.device());
        backend_for(g.device()).scatter_add(g.contiguous(), ic, gx, outer, n, m, inner);
        return {gx};
    });
    return out;
}

// Along the last dim of x.
static std::pair<Tensor, Tensor> sort_last(const Tensor& x, bool descending) {
    Tensor xc = x.contiguous();
    Tensor values = empty(x.shape(), x.dtype(), x.device());
    Tensor indices = empty(x.shape(), DType::I64, x.device());
    if (x.numel()) backend_for(x.device()).sort_rows(xc, values, indices, descending);
    int64_t R = x.dim() ? x.shape().back() : 1;
    int64_t N = R ? x.numel() / R : 0;
    // values[n, r] = x[n, indices[n, r]]  =>  gx[n, indices[n, r]] = g[n, r]
    record("sort", values, {xc}, [indices, N, R](const Tensor& g) -> Grads {
        Tensor gx = zeros(g.shape(), g.dtype(), g.device());
        backend_for(g.device()).scatter_add(g.contiguous(), indices, gx, N, R, R, 1);
        return {gx};
    });
    return {values, indices};
}

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
    if (x.dim() == 0) return {x, zeros({}, DType::I64, x.device())};
    dim = wrap_dim(dim, x.dim(), "sort");
    if (dim == x.dim() - 1) return sort_last(x, descending);
    auto [values, indices] = sort_last(x.transpose(dim, -1), descending);
    return {values.transpose(dim, -1), indices.transpose(dim, -1).contiguous()};
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) {
    NoGradGuard no_grad;
    return sort(x.detach(), dim, descending).second;
}

}  // namespace rankclip
