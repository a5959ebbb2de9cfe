// nn/transformer.cpp
// defines: Transformer's construction (blocks built in order, each drawing its own
// initialisation) and forward.
#include "nn/transformer.h"

#include <string>

namespace rankclip {

Transformer::Transformer(int64_t width, int64_t layers, int64_t heads, Activation activation, bool causal,
                         Generator& gen)
    : width_(width) {
    RC_CHECK(layers >= 0, "Transformer: layers must be >= 0, got ", layers);
    for (int64_t i = 0; i < layers; i++) {
        auto block = std::make_shared<ResidualAttentionBlock>(width, heads, activation, causal, gen);
        resblocks.push_back(register_module("resblocks." + std::to_string(i), block));
    }
}

Tensor Transformer::forward(const Tensor& x) const {
    Tensor h = x;  // (B, T, W)
    for (const auto& block : resblocks) h = block->forward(h);
    return h;
}

}  // namespace rankclip
