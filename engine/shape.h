// engine/shape.h
// defines: Shape (dims of a tensor), contiguous strides, numel, broadcast_shapes (NumPy rules,
// the one place broadcasting is decided), dim wrapping, and shape printing for error messages.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rankclip {

using Shape = std::vector<int64_t>;

int64_t numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape);  // "(2, 3, 4)"

// NumPy broadcasting: align trailing dims; each pair must be equal or one of them 1.
// `op` names the caller in the error message.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Turns a possibly negative dim into [0, ndim), with an error naming the op if out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

}  // namespace rankclip
