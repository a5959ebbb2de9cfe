// engine/ops/reduce.cpp
// defines: reductions over any set of dims — sum, mean, amax/amin, max (values + indices),
// argmax, logsumexp — and sum_to, which undoes broadcasting in every binary op's backward.
// The kernels reduce the last dim of an (N, R) matrix, the front-end permuting the reduced dims
// to the end first, or the middle dim of an (A, R, C) one when the reduced dims of a contiguous
// tensor are one block (no copy).
#include <algorithm>
#include <cmath>

#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

using Grads = std::vector<Tensor>;

// Sorted, unique, wrapped dims; empty means all dims.
static std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
    std::vector<int64_t> out;
    if (ndim == 0) {  // a 0-d tensor accepts dim 0 / -1 (as torch) and has nothing to reduce
        for (int64_t d : dims) wrap_dim(d, ndim, op);
        return out;
    }
    if (dims.empty())
        for (int64_t d = 0; d < ndim; d++) out.push_back(d);
    for (int64_t d : dims) out.push_back(wrap_dim(d, ndim, op));
    std::sort(out.begin(), out.end());
    RC_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op, ": a dim appears twice");
    return out;
}

static Shape keepdim_shape(const Shape& shape, const std::vector<int64_t>& dims) {
    Shape out = shape;
    for (int64_t d : dims) out[d] = 1;
    return out;
}

static Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& dims, bool keepdim) {
    if (keepdim) return keepdim_shape(shape, dims);
    Shape out;
    for (int64_t d = 0; d < int64_t(shape.size()); d++)
        if (!std::binary_search(dims.begin(), dims.end(), d)) out.push_back(shape[d]);
    return out;
}

// x with the reduced dims moved last, as a contiguous (N, R) matrix. Not recorded.
static Tensor as_rows(const Tensor& x, const std::vector<int64_t>& dims) {
    std::vector<int64_t> order;
    for (int64_t d = 0; d < x.dim(); d++)
        if (!std::binary_search(dims.begin(), dims.end(), d)) order.push_back(d);
    int64_t R = 1;
    for (int64_t d : dims) {
        order.push_back(d);
        R *= x.shape()[d];
    }
    NoGradGuard no_grad;
    Tensor rows = x.detach().permute(order).contiguous();
    return rows.view({R == 0 ? 0 : x.numel() / R, R});
}

static Tensor reduce_forward(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    Tensor out = empty(reduced_shape(x.shape(), dims, keepdim), x.dtype(), x.device());
    // Reduced dims forming one block d0..d1 of a contiguous x, with dims after it (a bias
    // gradient (B, T, N) -> (N)): x is (A, R, C), reduced down its columns without the copy
    // that moves them last.
    if (x.is_contiguous() && x.numel() > 0 && !dims.empty() && dims.back() - dims.front() + 1 == int64_t(dims.size())) {
        int64_t A = 1, R = 1, C = 1;
        for (int64_t d = 0; d < x.dim(); d++)
            (d < dims.front() ? A : d <= dims.back() ? R : C) *= x.shape()[d];
        if (C > 1) {
            backend_for(x.device()).reduce_cols(op, x.detach().view({A, R, C}), out);
            return out;
        }
    }
    Tensor rows = as_rows(x, dims);
    if (x.dim() && rows.size(1) == 0 && op == ReduceOp::Sum) return out.fill_(0.0);
    backend_for(x.device()).reduce_rows(op, rows, out);
    return out;
}

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
    RC_CHECK(is_floating(x.dtype()), "sum: needs a floating tensor, got ", x.str());
    auto dims = normalize_dims(dims_in, x.dim(), "sum");
    Tensor out = reduce_forward(ReduceOp::Sum, x, dims, keepdim);
    record("sum", out, {x}, [in = x.shape(), kept = keepdim_shape(x.shape(), dims)](const Tensor& g) -> Grads {
        return {g.reshape(kept).expand(in)};
    });
    return out;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
    auto dims = normalize_dims(dims_in, x.dim(), "mean");
    int64_t count = 1;
    for (int64_t d : dims) count *= x.shape()[d];
    return sum(x, dims, keepdim) * (1.0 / double(count));
}

// amax/amin: the gradient is shared evenly by all elements equal to the extremum.
static Tensor extremum(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
    const char* name = op == ReduceOp::Max ? "amax" : "amin";
    RC_CHECK(is_floating(x.dtype()), name, ": needs a floating tensor, got ", x.str());
    auto dims = normalize_dims(dims_in, x.dim(), name);
    Tensor out = reduce_forward(op, x, dims, keepdim);
    Shape kept = keepdim_shape(x.shape(), dims);
    record(name, out, {x}, [x = x.detach(), y = out.detach(), kept, dims](const Tensor& g) -> Grads {
        Tensor mask = eq(x, y.reshape(kept));
        Tensor count = sum(mask, dims, true);
        return {g.reshape(kept) * mask / count};
    });
    return out;
}
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) { return extremum(ReduceOp::Max, x, dims, keepdim); }
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) { return extremum(ReduceOp::Min, x, dims, keepdim); }

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
    dim = wrap_dim(dim, x.dim(), "argmax");
    if (x.dim() == 0) return zeros({}, DType::I64, x.device());
    Tensor rows = as_rows(x, {dim});
    Tensor out = empty(reduced_shape(x.shape(), {dim}, keepdim), DType::I64, x.device());
    backend_for(x.device()).argmax_rows(rows, out);
    return out;
}

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
    Tensor index = argmax(x, dim, true);
    Tensor values = gather(x, dim, index);  // gradient flows to the first maximal element
    if (!keepdim) {
        values = values.squeeze(dim);
        index = index.squeeze(dim);
    }
    return {values, index};
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
    auto dims = normalize_dims(dims_in, x.dim(), "logsumexp");
    Tensor m;
    {
        NoGradGuard no_grad;  // the shift is a constant for the gradient
        m = amax(x.detach(), dims, true);
        m = where(eq(abs(m), full({}, INFINITY, m.dtype(), m.device())), zeros({}, m.dtype(), m.device()), m);
    }
    Tensor out = log(sum(exp(x - m), dims, true)) + m;
    if (!keepdim)
        for (auto it = dims.rbegin(); it != dims.rend(); ++it) out = out.squeeze(*it);
    return out;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
    if (x.shape() == shape) return x;
    RC_CHECK(int64_t(shape.size()) <= x.dim(), "sum_to: cannot sum ", x.str(), " to ", shape_str(shape));
    size_t lead = x.shape().size() - shape.size();
    std::vector<int64_t> dims;
    for (size_t d = 0; d < x.shape().size(); d++) {
        if (d < lead) dims.push_back(int64_t(d));
        else if (shape[d - lead] == 1 && x.shape()[d] != 1) dims.push_back(int64_t(d));
        else RC_CHECK(shape[d - lead] == x.shape()[d], "sum_to: cannot sum ", x.str(), " to ", shape_str(shape));
    }
    if (dims.empty()) return x.reshape(shape);
    return sum(x, dims, true).reshape(shape);
}

}  // namespace rankclip
