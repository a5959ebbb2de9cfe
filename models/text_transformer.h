// models/text_transformer.h
// defines: TextTransformer, CLIP's text tower, with OpenAI's parameter names (which sit at the
// top level of a CLIP state_dict):
//   token_embedding.weight (V, W), positional_embedding (L, W), transformer (causal,
//   resblocks.{i}), ln_final, text_projection (W, E)
// The sequence is pooled at its end-of-text token, found as the argmax of the token ids (the
// end-of-text id is the largest of the vocabulary; the first maximum wins, as torch.argmax).
//
// Initialisation, in the order torch runs it: the transformer's blocks with torch's module
// defaults, token_embedding N(0, 1) (nn.Embedding's default), then OpenAI's
// CLIP.initialize_parameters for this tower: token_embedding N(0, 0.02), positional_embedding
// N(0, 0.01), and per block in_proj N(0, W^-0.5), out_proj N(0, W^-0.5 (2L)^-0.5),
// c_fc N(0, (2W)^-0.5), c_proj N(0, W^-0.5 (2L)^-0.5); text_projection N(0, W^-0.5).
// Biases keep their module defaults. OpenAI builds the text tower after the vision tower and
// draws nothing between the two, so building it last in CLIP reproduces the whole sequence.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/random.h"
#include "models/clip_config.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/module.h"
#include "nn/transformer.h"

namespace rankclip {

class TextTransformer : public Module {
public:
    // Uses the text fields of `config` and embed_dim.
    TextTransformer(const CLIPConfig& config, Generator& gen);

    // ids: (B, T) I64 or I32, T <= context_length, each id in [0, vocab_size) -> (B, E), projected,
    // not normalised. With T < context_length the first T positions are used; as attention is
    // causal this equals padding the sequence to context_length.
    Tensor forward(const Tensor& ids) const;

    std::shared_ptr<Transformer> transformer;
    std::shared_ptr<Embedding> token_embedding;
    Tensor positional_embedding;  // (L, W)
    std::shared_ptr<LayerNorm> ln_final;
    Tensor text_projection;       // (W, E)

private:
    int64_t context_length_, vocab_size_, width_;
};

}  // namespace rankclip
