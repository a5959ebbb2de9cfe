// nn/multihead_attention.h
// defines: MultiheadAttention, self-attention with the parameter layout of
// torch.nn.MultiheadAttention (which OpenAI CLIP uses): one fused input projection
// in_proj_weight (3W, W) whose rows are q | k | v, in_proj_bias (3W), and out_proj (a Linear
// W -> W). Heads attend through the engine's fused self_attention over the packed projection
// (scale 1/sqrt(D)).
//
// Initialisation, in torch's order: out_proj is built as a Linear (kaiming weight, uniform bias:
// it consumes the generator), then _reset_parameters draws in_proj_weight with xavier_uniform
// and zeroes in_proj_bias and out_proj.bias.
//
// Inputs are batch-first (B, T, W); OpenAI's code feeds (T, B, W), which changes nothing in the
// parameters. `causal` (fixed at construction, as OpenAI's text tower fixes its attn_mask) lets
// position i attend to positions j <= i only.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/random.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace rankclip {

class MultiheadAttention : public Module {
public:
    MultiheadAttention(int64_t width, int64_t heads, Generator& gen, bool causal = false);

    // x: (B, T, W) -> (B, T, W)
    Tensor forward(const Tensor& x) const;

    int64_t width() const { return width_; }
    int64_t heads() const { return heads_; }
    bool causal() const { return causal_; }

    Tensor in_proj_weight;  // (3W, W): rows [0, W) make q, [W, 2W) k, [2W, 3W) v
    Tensor in_proj_bias;    // (3W)
    std::shared_ptr<Linear> out_proj;  // W -> W

private:
    int64_t width_, heads_;
    bool causal_;
};

}  // namespace rankclip
