// nn/mlp.h
// defines: MLP, the feed-forward half of a Transformer block as OpenAI CLIP names it:
// c_fc (W -> 4W), an activation, c_proj (4W -> W). Activation::GELU is the exact (erf) GELU;
// Activation::QuickGELU is x * sigmoid(1.702 x), which OpenAI's released CLIP models use.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/random.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace rankclip {

enum class Activation { GELU, QuickGELU };

const char* activation_name(Activation a);  // "gelu", "quick_gelu"

class MLP : public Module {
public:
    // Builds c_fc, then c_proj (torch's order); each draws with Linear's default init.
    MLP(int64_t width, int64_t hidden, Activation activation, Generator& gen);

    // x: (..., W) -> (..., W)
    Tensor forward(const Tensor& x) const;

    Activation activation() const { return activation_; }

    std::shared_ptr<Linear> c_fc;    // W -> hidden
    std::shared_ptr<Linear> c_proj;  // hidden -> W

private:
    Activation activation_;
};

}  // namespace rankclip
