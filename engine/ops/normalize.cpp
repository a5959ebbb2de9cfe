// engine/ops/normalize.cpp
// defines: l2_normalize, x / max(||x||_2, eps) along a dim (torch.nn.functional.normalize),
// composed from primitive ops so its backward comes from theirs.
#include "engine/ops.h"

namespace rankclip {

Tensor l2_normalize(const Tensor& x, int64_t dim, double eps) {
    Tensor norm = sqrt(sum(x * x, {dim}, true));
    return x / clamp_min(norm, eps);
}

}  // namespace rankclip
