// models/clip.h
// defines: CLIP, the two towers and the learned temperature, with parameter names exactly those
// of OpenAI CLIP's state_dict: visual.* (VisionTransformer), the text tower at the top level
// (token_embedding.weight, positional_embedding, transformer.resblocks.*, ln_final.*,
// text_projection) and logit_scale. See docs/ARCHITECTURE.md, "Models".
//
//   encode_image / encode_text   projected features, NOT normalised (as OpenAI's)
//   forward                      L2-normalised features and the logits
//                                logits_per_image = exp(logit_scale) * img @ txt^T   (B_img, B_txt)
//                                logits_per_text  = its transpose
// logit_scale starts at config.init_logit_scale (ln(1/0.07)) and is not clamped here (the trainer
// clamps it to ln 100); logit_bias (OpenCLIP's name) exists only for SigLIP configs.
//
// Construction from (config, generator) draws every initial value in the order PyTorch does for
// the same architecture (tools/clip_mirror.py, OpenAI's model.py): vision tower, text tower,
// then OpenAI's initialize_parameters. After torch.manual_seed(s) and Generator(s) the two
// models are equal bit for bit (tests/test_clip_parity.cpp).
#pragma once
#include <memory>

#include "engine/random.h"
#include "models/clip_config.h"
#include "models/text_transformer.h"
#include "models/vision_transformer.h"
#include "nn/module.h"

namespace rankclip {

struct CLIPOutput {
    Tensor image_features;    // (B_img, E), L2-normalised
    Tensor text_features;     // (B_txt, E), L2-normalised
    Tensor logits_per_image;  // (B_img, B_txt)
    Tensor logits_per_text;   // (B_txt, B_img), a transposed view of logits_per_image
};

class CLIP : public Module {
public:
    // Validates the config, then builds and initialises the model on the CPU (move it with to()).
    CLIP(const CLIPConfig& config, Generator& gen);

    const CLIPConfig& config() const { return config_; }

    // images: (B, 3, S, S) -> (B, E)
    Tensor encode_image(const Tensor& images) const;
    // ids: (B, T) I64/I32 -> (B, E)
    Tensor encode_text(const Tensor& ids) const;
    CLIPOutput forward(const Tensor& images, const Tensor& ids) const;

    std::shared_ptr<VisionTransformer> visual;
    std::shared_ptr<TextTransformer> text;  // registered under the empty name: its names are top-level
    Tensor logit_scale;                     // () F32
    Tensor logit_bias;                      // () F32, only when config.logit_bias (SigLIP); else undefined

private:
    CLIPConfig config_;
};

}  // namespace rankclip
