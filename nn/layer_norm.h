// nn/layer_norm.h
// defines: LayerNorm over the last dim, as torch.nn.LayerNorm (weight ones, bias zeros,
// eps 1e-5), backed by the engine's fused layer_norm op.
#pragma once
#include <cstdint>

#include "nn/module.h"

namespace rankclip {

class LayerNorm : public Module {
public:
    explicit LayerNorm(int64_t width, double eps = 1e-5);

    // x: (..., width) -> (..., width)
    Tensor forward(const Tensor& x) const;

    int64_t width() const { return width_; }

    Tensor weight;  // (width)
    Tensor bias;    // (width)

private:
    int64_t width_;
    double eps_;
};

}  // namespace rankclip
