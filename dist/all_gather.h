// dist/all_gather.h
// defines: all_gather_with_grad, the differentiable all-gather the global-batch losses use
// (OpenCLIP's gather_with_grad).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace rankclip::dist {

// x: (B_r, ...) on this rank -> (sum_r B_r, ...), the ranks' tensors in rank order (rank r's rows
// start at B_0 + ... + B_{r-1}). Backward: the incoming gradient is summed over the ranks
// (all_reduce) and this rank's rows are kept, i.e. the gradient of the sum of every rank's loss
// with respect to this rank's x. Every rank must run the backward (it is a collective). In a world
// of one it is the identity. `rows`, when given, receives every rank's B_r.
Tensor all_gather_with_grad(const Tensor& x, std::vector<int64_t>* rows = nullptr);

}  // namespace rankclip::dist
