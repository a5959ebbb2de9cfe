// nn/residual_attention_block.h
// defines: ResidualAttentionBlock, OpenAI CLIP's pre-LayerNorm Transformer block:
//   x = x + attn(ln_1(x))
//   x = x + mlp(ln_2(x))
// Submodules are built (and registered) in OpenAI's order: attn, ln_1, mlp, ln_2.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/random.h"
#include "nn/layer_norm.h"
#include "nn/mlp.h"
#include "nn/module.h"
#include "nn/multihead_attention.h"

namespace rankclip {

class ResidualAttentionBlock : public Module {
public:
    // The MLP's hidden width is 4 * width, as in CLIP.
    ResidualAttentionBlock(int64_t width, int64_t heads, Activation activation, bool causal, Generator& gen);

    // x: (B, T, W) -> (B, T, W)
    Tensor forward(const Tensor& x) const;

    std::shared_ptr<MultiheadAttention> attn;
    std::shared_ptr<LayerNorm> ln_1;
    std::shared_ptr<MLP> mlp;
    std::shared_ptr<LayerNorm> ln_2;
};

}  // namespace rankclip
