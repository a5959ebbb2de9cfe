// models/vision_transformer.h
// defines: VisionTransformer, CLIP's image tower (OpenAI's ViT), with OpenAI's parameter names:
//   conv1.weight (W, 3, P, P)   patch embedding, a stride-P convolution without bias
//   class_embedding (W)         the [class] token
//   positional_embedding (G*G + 1, W)
//   ln_pre, transformer (resblocks.{i}), ln_post (applied to the class token only)
//   proj (W, E)                 projection to the joint embedding
//
// The patch embedding is computed as unfold + matmul: the image is cut into G*G patches of
// 3*P*P values in (channel, row, column) order, which is the order of conv1.weight's last three
// dims, so conv1.weight.reshape(W, 3*P*P) is the matrix and the weight stays torch's Conv2d layout.
//
// Initialisation, in the order torch runs it (OpenAI's CLIP keeps torch's module defaults for
// the vision tower): conv1 kaiming_uniform(a = sqrt(5)); class_embedding, positional_embedding
// = W^-0.5 * randn; the blocks as nn/ builds them; proj = W^-0.5 * randn.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/random.h"
#include "models/clip_config.h"
#include "nn/layer_norm.h"
#include "nn/module.h"
#include "nn/transformer.h"

namespace rankclip {

class VisionTransformer : public Module {
public:
    // Uses the vision fields of `config` and embed_dim.
    VisionTransformer(const CLIPConfig& config, Generator& gen);

    // images: (B, 3, S, S) floating, S = image_size -> (B, E), projected, not normalised
    Tensor forward(const Tensor& images) const;

    Tensor conv1_weight;          // registered as conv1.weight
    Tensor class_embedding;       // (W)
    Tensor positional_embedding;  // (G*G + 1, W)
    std::shared_ptr<LayerNorm> ln_pre;
    std::shared_ptr<Transformer> transformer;
    std::shared_ptr<LayerNorm> ln_post;
    Tensor proj;                  // (W, E)

private:
    int64_t image_size_, patch_size_, width_;
};

}  // namespace rankclip
