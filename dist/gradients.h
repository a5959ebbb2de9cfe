// dist/gradients.h
// defines: all_reduce_gradients, the gradient exchange of data-parallel training: every
// parameter's gradient summed over the ranks, in buckets.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace rankclip::dist {

// Sums each parameter's gradient over the ranks, in place (parameters without a gradient are
// skipped; every rank must hold the same parameters with the same gradients defined). Gradients
// are copied into flat buckets of up to `bucket_bytes` (one dtype and device each) so that a model
// of many small tensors costs a few large all_reduce calls, not one per tensor. A sum, not a mean:
// the global-batch losses (train/global_losses.h) give each rank its share of the loss, whose
// gradients add up to the one-process gradient. In a world of one: nothing.
void all_reduce_gradients(const std::vector<Tensor>& parameters, int64_t bucket_bytes = int64_t(32) << 20);

}  // namespace rankclip::dist
