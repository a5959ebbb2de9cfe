// nn/transformer.h
// defines: Transformer, a stack of `layers` ResidualAttentionBlocks named resblocks.{i}, as in
// OpenAI CLIP (both towers use it; the text tower's is causal).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/random.h"
#include "nn/module.h"
#include "nn/residual_attention_block.h"

namespace rankclip {

class Transformer : public Module {
public:
    Transformer(int64_t width, int64_t layers, int64_t heads, Activation activation, bool causal, Generator& gen);

    // x: (B, T, W) -> (B, T, W)
    Tensor forward(const Tensor& x) const;

    int64_t width() const { return width_; }
    int64_t layers() const { return int64_t(resblocks.size()); }

    std::vector<std::shared_ptr<ResidualAttentionBlock>> resblocks;

private:
    int64_t width_;
};

}  // namespace rankclip
