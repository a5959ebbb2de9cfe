// nn/multihead_attention.cpp
// defines: MultiheadAttention's construction (torch's initialisation order) and forward.
// The backward is the engine's: the projections and the fused self_attention op record theirs.
#include "nn/multihead_attention.h"

#include "engine/ops.h"
#include "nn/init.h"

namespace rankclip {

MultiheadAttention::MultiheadAttention(int64_t width, int64_t heads, Generator& gen, bool causal)
    : width_(width), heads_(heads), causal_(causal) {
    RC_CHECK(width > 0 && heads > 0 && width % heads == 0, "MultiheadAttention: width ", width,
             " must be a positive multiple of heads ", heads);
    in_proj_weight = register_parameter("in_proj_weight", empty({3 * width, width}));
    in_proj_bias = register_parameter("in_proj_bias", empty({3 * width}));
    out_proj = register_module("out_proj", std::make_shared<Linear>(width, width, gen));
    // torch's _reset_parameters, after out_proj has drawn its own values
    init::xavier_uniform_(in_proj_weight, gen);
    init::constant_(in_proj_bias, 0.0);
    init::constant_(out_proj->bias, 0.0);
}

Tensor MultiheadAttention::forward(const Tensor& x) const {
    RC_CHECK(x.dim() == 3 && x.size(2) == width_, "MultiheadAttention(width ", width_, "): input must be (B, T, ",
             width_, "), got ", x.str());
    Tensor qkv = linear(x, in_proj_weight, in_proj_bias);      // (B, T, 3W): per token q | k | v
    // the fused op reads q, k, v inside qkv and writes (B, T, W) with the heads side by side; its
    // composite (head-split views + scaled_dot_product_attention) is the tested reference
    Tensor y = self_attention(qkv, heads_, causal_);            // (B, T, W)
    return out_proj->forward(y);                                // (B, T, W)
}

}  // namespace rankclip
