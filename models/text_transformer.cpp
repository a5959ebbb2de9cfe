// models/text_transformer.cpp
// defines: TextTransformer's construction (torch's draw order, then OpenAI's re-initialisation)
// and forward.
#include "models/text_transformer.h"

#include <cmath>
#include <vector>

#include "engine/ops.h"
#include "nn/init.h"

namespace rankclip {

TextTransformer::TextTransformer(const CLIPConfig& config, Generator& gen)
    : context_length_(config.context_length), vocab_size_(config.vocab_size), width_(config.text_width) {
    config.validate();
    const int64_t W = config.text_width, L = config.text_layers;
    // torch construction order: transformer, token_embedding, positional_embedding, ln_final, text_projection
    transformer = register_module("transformer", std::make_shared<Transformer>(W, L, config.text_heads,
                                                                               config.activation(), true, gen));
    token_embedding = register_module("token_embedding", std::make_shared<Embedding>(config.vocab_size, W, gen));
    positional_embedding = register_parameter("positional_embedding", empty({config.context_length, W}));
    ln_final = register_module("ln_final", std::make_shared<LayerNorm>(W));
    text_projection = register_parameter("text_projection", empty({W, config.embed_dim}));

    // OpenAI's initialize_parameters (the same expressions, so the same doubles)
    init::normal_(token_embedding->weight, gen, 0.0, 0.02);
    init::normal_(positional_embedding, gen, 0.0, 0.01);
    const double proj_std = std::pow(double(W), -0.5) * std::pow(double(2 * L), -0.5);
    const double attn_std = std::pow(double(W), -0.5);
    const double fc_std = std::pow(double(2 * W), -0.5);
    for (const auto& block : transformer->resblocks) {
        init::normal_(block->attn->in_proj_weight, gen, 0.0, attn_std);
        init::normal_(block->attn->out_proj->weight, gen, 0.0, proj_std);
        init::normal_(block->mlp->c_fc->weight, gen, 0.0, fc_std);
        init::normal_(block->mlp->c_proj->weight, gen, 0.0, proj_std);
    }
    init::normal_(text_projection, gen, 0.0, attn_std);
}

Tensor TextTransformer::forward(const Tensor& ids) const {
    RC_CHECK(ids.dim() == 2 && (ids.dtype() == DType::I64 || ids.dtype() == DType::I32),
             "TextTransformer: token ids must be (B, T) I64 or I32, got ", ids.str());
    const int64_t B = ids.size(0), T = ids.size(1);
    RC_CHECK(T >= 1 && T <= context_length_, "TextTransformer: sequence length ", T, " is not in [1, ",
             context_length_, "] (context_length)");
    // The end-of-text position of each row, found on the host (B*T ids: a tiny copy).
    std::vector<int64_t> host = ids.to_vector<int64_t>();
    std::vector<int64_t> rows(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; b++) {
        int64_t best = 0;
        for (int64_t t = 0; t < T; t++) {
            int64_t id = host[b * T + t];
            RC_CHECK(id >= 0 && id < vocab_size_, "TextTransformer: token id ", id, " at (", b, ", ", t,
                     ") is outside the vocabulary [0, ", vocab_size_, ")");
            if (id > host[b * T + best]) best = t;
        }
        rows[b] = b * T + best;  // row of the flattened (B*T, W) activations
    }
    Tensor x = token_embedding->forward(ids) + positional_embedding.narrow(0, 0, T);  // (B, T, W)
    x = transformer->forward(x);                                                       // (B, T, W), causal
    x = ln_final->forward(x);
    Tensor index = from_vector(rows, {B}, DType::I64, x.device());
    Tensor pooled = index_select(x.reshape({B * T, width_}), 0, index);  // (B, W), the end-of-text tokens
    return matmul(pooled, text_projection);                              // (B, E)
}

}  // namespace rankclip
