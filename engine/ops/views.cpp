// engine/ops/views.cpp
// defines: the differentiable views of Tensor — view/reshape, permute/transpose, narrow/select,
// expand, squeeze/unsqueeze, flatten. A view shares its base's storage (writes through it are
// seen by the base) and changes only shape, strides and offset. Each records the backward
// that undoes it: reshape back, inverse permutation, zero-padding, sum over expanded dims.
#include "engine/autograd.h"
#include "engine/ops.h"

namespace rankclip {

static Shape infer_shape(const Shape& requested, int64_t total, const char* op) {
    Shape shape = requested;
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < shape.size(); i++) {
        if (shape[i] == -1) {
            RC_CHECK(infer < 0, op, ": only one dimension can be -1 in ", shape_str(requested));
            infer = int64_t(i);
        } else {
            RC_CHECK(shape[i] >= 0, op, ": negative dimension in ", shape_str(requested));
            known *= shape[i];
        }
    }
    if (infer >= 0) {
        RC_CHECK(known > 0 && total % known == 0, op, ": cannot infer -1 in ", shape_str(requested), " for ",
                 total, " elements");
        shape[infer] = total / known;
    }
    RC_CHECK(numel(shape) == total, op, ": shape ", shape_str(requested), " is invalid for ", total, " elements");
    return shape;
}

Tensor Tensor::view(const Shape& requested) const {
    Shape shape = infer_shape(requested, numel(), "view");
    RC_CHECK(is_contiguous(), "view: tensor ", str(), " is not contiguous; use reshape() (which copies)");
    Tensor out = make_view(*this, shape, contiguous_strides(shape), offset());
    Shape in_shape = this->shape();
    record("view", out, {*this}, [in_shape](const Tensor& g) -> std::vector<Tensor> { return {g.reshape(in_shape)}; });
    return out;
}

Tensor Tensor::reshape(const Shape& shape) const { return is_contiguous() ? view(shape) : contiguous().view(shape); }

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
    RC_CHECK(int64_t(dims.size()) == dim(), "permute: got ", dims.size(), " dims for a tensor of ", dim(), " dims");
    Shape shape(dims.size()), strides(dims.size());
    std::vector<int64_t> inverse(dims.size(), -1);
    for (size_t i = 0; i < dims.size(); i++) {
        int64_t d = wrap_dim(dims[i], dim(), "permute");
        RC_CHECK(inverse[d] < 0, "permute: dim ", d, " repeated");
        inverse[d] = int64_t(i);
        shape[i] = this->shape()[d];
        strides[i] = this->strides()[d];
    }
    Tensor out = make_view(*this, shape, strides, offset());
    record("permute", out, {*this}, [inverse](const Tensor& g) -> std::vector<Tensor> { return {g.permute(inverse)}; });
    return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
    std::vector<int64_t> dims(static_cast<size_t>(dim()));
    for (int64_t i = 0; i < dim(); i++) dims[i] = i;
    d0 = wrap_dim(d0, dim(), "transpose");
    d1 = wrap_dim(d1, dim(), "transpose");
    if (dim() > 0) std::swap(dims[d0], dims[d1]);  // a 0-d tensor transposes to itself
    return permute(dims);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
    RC_CHECK(dim() > 0, "narrow: cannot narrow a 0-d tensor");
    d = wrap_dim(d, dim(), "narrow");
    if (start < 0) start += shape()[d];
    RC_CHECK(start >= 0 && length >= 0 && start + length <= shape()[d], "narrow: range [", start, ", ",
             start + length, ") out of bounds for dim ", d, " of ", str());
    Shape shape = this->shape();
    shape[d] = length;
    Tensor out = make_view(*this, shape, strides(), offset() + start * strides()[d]);
    Shape in_shape = this->shape();
    record("narrow", out, {*this}, [in_shape, d, start, length](const Tensor& g) -> std::vector<Tensor> {
        Tensor gx = zeros(in_shape, g.dtype(), g.device());
        gx.narrow(d, start, length).copy_(g);
        return {gx};
    });
    return out;
}

Tensor Tensor::select(int64_t d, int64_t index) const {
    RC_CHECK(dim() > 0, "select: cannot select from a 0-d tensor");
    d = wrap_dim(d, dim(), "select");
    if (index < 0) index += shape()[d];
    return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& target) const {
    RC_CHECK(int64_t(target.size()) >= dim(), "expand: cannot expand ", str(), " to fewer dims ", shape_str(target));
    size_t lead = target.size() - shape().size();
    Shape shape(target.size()), strides(target.size(), 0);
    for (size_t i = 0; i < target.size(); i++) {
        if (i < lead) {
            RC_CHECK(target[i] >= 0, "expand: -1 not allowed for new leading dims in ", shape_str(target));
            shape[i] = target[i];
            continue;
        }
        int64_t have = this->shape()[i - lead];
        int64_t want = target[i] == -1 ? have : target[i];
        RC_CHECK(have == want || have == 1, "expand: cannot expand ", str(), " to ", shape_str(target),
                 " (dim ", i, ": ", have, " -> ", want, ")");
        shape[i] = want;
        strides[i] = have == want ? this->strides()[i - lead] : 0;
    }
    Tensor out = make_view(*this, shape, strides, offset());
    Shape in_shape = this->shape();
    record("expand", out, {*this}, [in_shape](const Tensor& g) -> std::vector<Tensor> { return {sum_to(g, in_shape)}; });
    return out;
}

Tensor Tensor::squeeze(int64_t d) const {
    d = wrap_dim(d, dim(), "squeeze");
    if (dim() == 0 || shape()[d] != 1) return *this;
    Shape shape = this->shape(), strides = this->strides();
    shape.erase(shape.begin() + d);
    strides.erase(strides.begin() + d);
    Tensor out = make_view(*this, shape, strides, offset());
    Shape in_shape = this->shape();
    record("squeeze", out, {*this}, [in_shape](const Tensor& g) -> std::vector<Tensor> { return {g.reshape(in_shape)}; });
    return out;
}

Tensor Tensor::unsqueeze(int64_t d) const {
    d = wrap_dim(d, dim() + 1, "unsqueeze");
    Shape shape = this->shape(), strides = this->strides();
    int64_t stride = d < dim() ? shape[d] * strides[d] : 1;
    shape.insert(shape.begin() + d, 1);
    strides.insert(strides.begin() + d, stride);
    Tensor out = make_view(*this, shape, strides, offset());
    Shape in_shape = this->shape();
    record("unsqueeze", out, {*this}, [in_shape](const Tensor& g) -> std::vector<Tensor> { return {g.reshape(in_shape)}; });
    return out;
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
    if (dim() == 0) return reshape({1});
    start_dim = wrap_dim(start_dim, dim(), "flatten");
    end_dim = wrap_dim(end_dim, dim(), "flatten");
    Shape shape(this->shape().begin(), this->shape().begin() + start_dim);
    int64_t n = 1;
    for (int64_t i = start_dim; i <= end_dim; i++) n *= this->shape()[i];
    shape.push_back(n);
    shape.insert(shape.end(), this->shape().begin() + end_dim + 1, this->shape().end());
    return reshape(shape);
}

}  // namespace rankclip
