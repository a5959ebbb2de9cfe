// models/vision_transformer.cpp
// defines: VisionTransformer's construction (torch's draw order) and forward.
#include "models/vision_transformer.h"

#include <cmath>

#include "engine/ops.h"
#include "nn/init.h"

namespace rankclip {

namespace {

// conv1 lives in a child module so that its name is "conv1.weight", as torch's Conv2d's is.
class PatchConv : public Module {
public:
    PatchConv(int64_t width, int64_t patch, Generator& gen) {
        weight = register_parameter("weight", empty({width, 3, patch, patch}));
        init::kaiming_uniform_(weight, gen, std::sqrt(5.0));  // torch's _ConvNd.reset_parameters; no bias
    }
    Tensor weight;  // (W, 3, P, P)
};

}  // namespace

VisionTransformer::VisionTransformer(const CLIPConfig& config, Generator& gen)
    : image_size_(config.image_size), patch_size_(config.patch_size), width_(config.vision_width) {
    config.validate();
    const int64_t W = config.vision_width, P = config.patch_size, G = config.grid_size();
    const double scale = std::pow(double(W), -0.5);  // OpenAI: width ** -0.5
    conv1_weight = register_module("conv1", std::make_shared<PatchConv>(W, P, gen))->weight;
    class_embedding = register_parameter("class_embedding", empty({W}));
    init::scaled_randn_(class_embedding, gen, scale);
    positional_embedding = register_parameter("positional_embedding", empty({G * G + 1, W}));
    init::scaled_randn_(positional_embedding, gen, scale);
    ln_pre = register_module("ln_pre", std::make_shared<LayerNorm>(W));
    transformer = register_module("transformer", std::make_shared<Transformer>(W, config.vision_layers,
                                                                               config.vision_heads,
                                                                               config.activation(), false, gen));
    ln_post = register_module("ln_post", std::make_shared<LayerNorm>(W));
    proj = register_parameter("proj", empty({W, config.embed_dim}));
    init::scaled_randn_(proj, gen, scale);
}

Tensor VisionTransformer::forward(const Tensor& images) const {
    const int64_t S = image_size_, P = patch_size_, G = S / P, W = width_;
    RC_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == S && images.size(3) == S,
             "VisionTransformer: images must be (B, 3, ", S, ", ", S, "), got ", images.str());
    RC_CHECK(is_floating(images.dtype()), "VisionTransformer: images must be floating, got ", images.str());
    const int64_t B = images.size(0);
    Tensor x = images.dtype() == conv1_weight.dtype() ? images : images.to(conv1_weight.dtype());
    // unfold: (B, 3, G, P, G, P) -> (B, G, G, 3, P, P) -> (B, G*G, 3*P*P); patches in row-major grid order
    Tensor patches = x.reshape({B, 3, G, P, G, P}).permute({0, 2, 4, 1, 3, 5}).reshape({B, G * G, 3 * P * P});
    x = matmul(patches, conv1_weight.reshape({W, 3 * P * P}).t());     // (B, G*G, W)
    // under bf16 autocast x is bf16 here: the embeddings join it in its dtype (OpenAI's .to(x.dtype))
    Tensor cls = class_embedding.to(x.dtype()).reshape({1, 1, W}).expand({B, 1, W});  // (B, 1, W)
    x = cat({cls, x}, 1) + positional_embedding.to(x.dtype());                        // (B, G*G + 1, W)
    x = ln_pre->forward(x);
    x = transformer->forward(x);                                        // (B, G*G + 1, W)
    x = ln_post->forward(x.select(1, 0));                               // (B, W), the class token
    return matmul(x, proj);                                             // (B, E)
}

}  // namespace rankclip
