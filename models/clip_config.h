// models/clip_config.h
// defines: CLIPConfig, every shape of a CLIP model (the field names are OpenAI's build_model
// quantities, spelled out), the named presets, validation, and JSON reading/writing.
//
// Presets (clip_config(name)):
//   tiny   32 px, patch 4, vision 128 wide x 4 layers x 4 heads; text context 32, vocab 49408,
//          128 wide x 4 layers x 4 heads; embed 128; GELU. For CPU.
//   small  64 px, patch 8, vision 256 x 6 x 4; text context 32, vocab 49408, 256 x 6 x 4;
//          embed 256; GELU.
//   b32    OpenAI ViT-B/32: 224 px, patch 32, vision 768 x 12 x 12; text context 77, vocab 49408,
//          512 x 12 x 8; embed 512; QuickGELU (as the released weights were trained).
//   b16    OpenAI ViT-B/16: as b32 with patch 16.
//
// JSON: one object with exactly these keys (quick_gelu may be left out: false), e.g.
//   {"image_size": 32, "patch_size": 4, "vision_width": 128, "vision_layers": 4,
//    "vision_heads": 4, "context_length": 32, "vocab_size": 49408, "text_width": 128,
//    "text_layers": 4, "text_heads": 4, "embed_dim": 128, "quick_gelu": false}
// Optional keys: "init_logit_scale" (a number; written only when it is not ln(1/0.07)) and
// "init_logit_bias" (a number: the model has a learned logit_bias; absent: it has none).
// Unknown keys, missing keys, wrong types and invalid values are Errors naming the key.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/json.h"
#include "nn/mlp.h"

namespace rankclip {

struct CLIPConfig {
    // vision tower (ViT)
    int64_t image_size = 32;     // input images are (3, image_size, image_size)
    int64_t patch_size = 4;      // image_size must be a multiple of it
    int64_t vision_width = 128;
    int64_t vision_layers = 4;
    int64_t vision_heads = 4;    // must divide vision_width
    // text tower (causal Transformer)
    int64_t context_length = 32;
    int64_t vocab_size = 49408;  // the end-of-text token is the largest id in each sequence
    int64_t text_width = 128;
    int64_t text_layers = 4;
    int64_t text_heads = 4;      // must divide text_width
    // shared
    int64_t embed_dim = 128;     // the joint embedding both towers project to
    bool quick_gelu = false;     // QuickGELU (OpenAI's released models) instead of exact GELU
    // the learned temperature and, for SigLIP, a learned bias (OpenCLIP's init_logit_scale /
    // init_logit_bias): CLIP starts at ln(1/0.07) without a bias; SigLIP at ln 10 with bias -10
    double init_logit_scale = std::log(1 / 0.07);
    bool logit_bias = false;
    double init_logit_bias = -10.0;

    int64_t grid_size() const { return image_size / patch_size; }                 // patches per side
    int64_t num_patches() const { return grid_size() * grid_size(); }
    Activation activation() const { return quick_gelu ? Activation::QuickGELU : Activation::GELU; }

    // Throws an Error naming the first invalid field and why.
    void validate() const;

    Json to_json() const;
    // Reads the object described at the top of this file, then validates it.
    static CLIPConfig from_json(const Json& json);
    static CLIPConfig from_json_string(const std::string& text);
    static CLIPConfig from_json_file(const std::string& path);

    bool operator==(const CLIPConfig& o) const;
    bool operator!=(const CLIPConfig& o) const { return !(*this == o); }
};

// The preset of that name ("tiny", "small", "b32", "b16"); an Error listing them otherwise.
CLIPConfig clip_config(const std::string& name);
std::vector<std::string> clip_config_names();

}  // namespace rankclip
