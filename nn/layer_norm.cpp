// nn/layer_norm.cpp
// defines: LayerNorm's construction and forward (the engine's fused layer_norm, which has its
// own backward).
#include "nn/layer_norm.h"

#include "engine/ops.h"

namespace rankclip {

LayerNorm::LayerNorm(int64_t width, double eps) : width_(width), eps_(eps) {
    RC_CHECK(width > 0, "LayerNorm: width must be positive, got ", width);
    weight = register_parameter("weight", ones({width}));
    bias = register_parameter("bias", zeros({width}));
}

Tensor LayerNorm::forward(const Tensor& x) const {
    RC_CHECK(x.dim() >= 1 && x.size(-1) == width_, "LayerNorm(", width_, "): input ", x.str(), " does not end in ",
             width_);
    return layer_norm(x, weight, bias, eps_);
}

}  // namespace rankclip
