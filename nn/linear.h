// nn/linear.h
// defines: Linear, y = x W^T + b, as torch.nn.Linear (weight (out, in), bias (out)), with
// torch's default initialisation: weight kaiming_uniform(a = sqrt(5)), bias U(-1/sqrt(in), 1/sqrt(in)).
#pragma once
#include <cstdint>

#include "engine/random.h"
#include "nn/module.h"

namespace rankclip {

class Linear : public Module {
public:
    // Draws weight, then bias, from `gen` (torch's order).
    Linear(int64_t in_features, int64_t out_features, Generator& gen, bool bias = true);

    // x: (..., in) -> (..., out)
    Tensor forward(const Tensor& x) const;

    int64_t in_features() const { return in_features_; }
    int64_t out_features() const { return out_features_; }

    Tensor weight;  // (out, in)
    Tensor bias;    // (out), undefined without bias

private:
    int64_t in_features_, out_features_;
};

}  // namespace rankclip
