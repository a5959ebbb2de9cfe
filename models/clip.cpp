// models/clip.cpp
// defines: CLIP's construction and its encoders / forward.
#include "models/clip.h"

#include <cmath>

#include "engine/ops.h"

namespace rankclip {

CLIP::CLIP(const CLIPConfig& config, Generator& gen) : config_(config) {
    config.validate();
    visual = register_module("visual", std::make_shared<VisionTransformer>(config, gen));
    text = register_module("", std::make_shared<TextTransformer>(config, gen));
    // torch: torch.ones([]) * np.log(1 / 0.07), a float32 scalar
    logit_scale = register_parameter("logit_scale", full({}, float(config.init_logit_scale)));
    // OpenCLIP's SigLIP models: torch.ones([]) * init_logit_bias
    if (config.logit_bias) logit_bias = register_parameter("logit_bias", full({}, float(config.init_logit_bias)));
}

Tensor CLIP::encode_image(const Tensor& images) const { return visual->forward(images); }

Tensor CLIP::encode_text(const Tensor& ids) const { return text->forward(ids); }

CLIPOutput CLIP::forward(const Tensor& images, const Tensor& ids) const {
    CLIPOutput out;
    out.image_features = l2_normalize(encode_image(images), -1);  // (B_img, E)
    out.text_features = l2_normalize(encode_text(ids), -1);       // (B_txt, E)
    // OpenAI: logit_scale.exp() * image_features @ text_features.t(), which groups left to right
    out.logits_per_image = matmul(exp(logit_scale) * out.image_features, out.text_features.t());
    out.logits_per_text = out.logits_per_image.t();
    return out;
}

}  // namespace rankclip
