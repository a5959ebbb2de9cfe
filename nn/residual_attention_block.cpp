// nn/residual_attention_block.cpp
// defines: ResidualAttentionBlock's construction and forward.
#include "nn/residual_attention_block.h"

#include "engine/ops.h"

namespace rankclip {

ResidualAttentionBlock::ResidualAttentionBlock(int64_t width, int64_t heads, Activation activation, bool causal,
                                               Generator& gen) {
    attn = register_module("attn", std::make_shared<MultiheadAttention>(width, heads, gen, causal));
    ln_1 = register_module("ln_1", std::make_shared<LayerNorm>(width));
    mlp = register_module("mlp", std::make_shared<MLP>(width, 4 * width, activation, gen));
    ln_2 = register_module("ln_2", std::make_shared<LayerNorm>(width));
}

Tensor ResidualAttentionBlock::forward(const Tensor& x) const {
    Tensor h = x + attn->forward(ln_1->forward(x));  // (B, T, W)
    return h + mlp->forward(ln_2->forward(h));       // (B, T, W)
}

}  // namespace rankclip
