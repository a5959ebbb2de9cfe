// engine/shape.cpp
// defines: the Shape helpers declared in shape.h.
#include "engine/shape.h"

#include "engine/error.h"

namespace rankclip {

// A shape whose nonzero dimensions multiply past 2^63 is refused even when another dimension is
// 0 (then it has no elements, but its strides would still overflow).
int64_t numel(const Shape& shape) {
    int64_t nonzero = 1;
    bool has_zero = false;
    for (int64_t d : shape) {
        RC_CHECK(d >= 0, "shape ", shape_str(shape), ": negative dimension ", d);
        if (d == 0) has_zero = true;
        else RC_CHECK(!__builtin_mul_overflow(nonzero, d, &nonzero), "shape ", shape_str(shape),
                      ": more than 2^63 elements");
    }
    return has_zero ? 0 : nonzero;
}

Shape contiguous_strides(const Shape& shape) {
    Shape strides(shape.size());
    int64_t s = 1;
    for (int64_t i = int64_t(shape.size()) - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i];
    }
    return strides;
}

std::string shape_str(const Shape& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); i++) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + ")";
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (size_t i = 0; i < n; i++) {
        int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        RC_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                 " cannot be broadcast (dim ", i, ": ", da, " vs ", db, ")");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
    int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
    RC_CHECK(dim >= lo && dim <= hi, op, ": dim ", dim, " out of range for a tensor with ", ndim, " dims");
    return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

}  // namespace rankclip
