// nn/linear.cpp
// defines: Linear's construction (torch's reset_parameters) and forward. The backward is the
// engine's: the fused linear op (engine/ops/linear.cpp) records its own.
#include "nn/linear.h"

#include <cmath>

#include "engine/ops.h"
#include "nn/init.h"

namespace rankclip {

Linear::Linear(int64_t in_features, int64_t out_features, Generator& gen, bool with_bias)
    : in_features_(in_features), out_features_(out_features) {
    RC_CHECK(in_features > 0 && out_features > 0, "Linear: features must be positive, got in ", in_features,
             ", out ", out_features);
    weight = register_parameter("weight", empty({out_features, in_features}));
    init::kaiming_uniform_(weight, gen, std::sqrt(5.0));
    if (with_bias) {
        bias = register_parameter("bias", empty({out_features}));
        // torch: bound = 1 / sqrt(fan_in)
        double bound = 1 / std::sqrt(double(init::fan_in_and_fan_out(weight).in));
        init::uniform_(bias, gen, -bound, bound);
    }
}

Tensor Linear::forward(const Tensor& x) const {
    RC_CHECK(x.dim() >= 1 && x.size(-1) == in_features_, "Linear(", in_features_, " -> ", out_features_,
             "): input ", x.str(), " does not end in ", in_features_, " features");
    return linear(x, weight, bias);  // (..., in) @ (in, out) + (out) -> (..., out)
}

}  // namespace rankclip
