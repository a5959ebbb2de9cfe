// train/train_step.cpp
// defines: compute_gradients (one batch, or GradCache accumulation over micro-batches) and
// train_step (gradients, checks, clipping, AdamW, clamp).
#include "train/train_step.h"

#include <cmath>

#include "dist/comm.h"
#include "dist/gradients.h"
#include "engine/autocast.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "train/global_losses.h"

namespace rankclip {

namespace {

struct Features {
    Tensor image, text;  // (b, E) each, L2-normalised
};

Features encode(const CLIP& model, const Tensor& images, const Tensor& text, bool bf16) {
    AutocastGuard autocast(images.device(), bf16);
    return {l2_normalize(model.encode_image(images), -1).to(DType::F32),
            l2_normalize(model.encode_text(text), -1).to(DType::F32)};
}

// The loss and its parts of the whole (global) batch: each rank holds its share, one all_reduce
// adds them up (in a world of one, the values themselves).
StepStats stats_of(const LossOutput& out) {
    std::vector<double> values{out.loss.item()};
    for (const auto& part : out.parts) values.push_back(part.second.item());
    if (dist::world_size() > 1) {
        Tensor summed = from_vector(values, {int64_t(values.size())}, DType::F64, Device::cpu());
        dist::all_reduce_(summed, dist::Reduce::Sum);
        for (size_t i = 0; i < values.size(); i++) values[i] = summed.data<double>()[i];
    }
    StepStats s;
    s.loss = values[0];
    for (size_t i = 0; i < out.parts.size(); i++) s.parts.emplace_back(out.parts[i].first, values[i + 1]);
    return s;
}

}  // namespace

StepStats compute_gradients(CLIP& model, const Tensor& images, const Tensor& text, const StepOptions& o,
                            double rank_weight, Generator& loss_gen) {
    int64_t B = images.size(0);
    RC_CHECK(text.defined() && text.size(0) == B, "train step: ", B, " images but text ",
             text.defined() ? text.str() : std::string("is missing (no tokenizer for this dataset?)"));
    RC_CHECK(o.accum >= 1 && B % o.accum == 0, "train step: --accum ", o.accum, " must divide the batch size ", B);
    model.zero_grad();

    if (o.accum == 1) {
        Features f = encode(model, images, text, o.bf16);
        LossOutput out = global_loss_share(o.loss, f.image, f.text, model.logit_scale, model.logit_bias, rank_weight,
                                           loss_gen);
        out.loss.backward();
        dist::all_reduce_gradients(model.parameters());
        return stats_of(out);
    }

    // 1. features of every micro-batch, without a graph
    int64_t m = B / o.accum;
    std::vector<Tensor> image_parts, text_parts;
    {
        NoGradGuard no_grad;
        for (int64_t k = 0; k < o.accum; k++) {
            Features f = encode(model, images.narrow(0, k * m, m), text.narrow(0, k * m, m), o.bf16);
            image_parts.push_back(f.image);
            text_parts.push_back(f.text);
        }
    }
    // 2. the loss once over the whole batch; its gradient w.r.t. the cached features
    Tensor V = cat(image_parts, 0).set_requires_grad(true);  // (B, E) leaf
    Tensor T = cat(text_parts, 0).set_requires_grad(true);   // (B, E) leaf
    LossOutput out = global_loss_share(o.loss, V, T, model.logit_scale, model.logit_bias, rank_weight, loss_gen);
    out.loss.backward();  // also fills logit_scale's (and logit_bias's) gradient
    Tensor gV = V.grad(), gT = T.grad();
    // 3. each micro-batch again, with a graph, pulling its slice of the feature gradient
    for (int64_t k = 0; k < o.accum; k++) {
        Features f = encode(model, images.narrow(0, k * m, m), text.narrow(0, k * m, m), o.bf16);
        Tensor surrogate = sum(f.image * gV.narrow(0, k * m, m)) + sum(f.text * gT.narrow(0, k * m, m));
        surrogate.backward();
    }
    dist::all_reduce_gradients(model.parameters());
    return stats_of(out);
}

StepStats train_step(CLIP& model, AdamW& optimizer, const Tensor& images, const Tensor& text, const StepOptions& o,
                     double lr, double rank_weight, Generator& loss_gen, int64_t step) {
    StepStats s = compute_gradients(model, images, text, o, rank_weight, loss_gen);
    RC_CHECK(std::isfinite(s.loss), "step ", step, ": the loss is ", s.loss,
             " (not finite); stopping without updating the weights. Lower --lr, enable --grad-clip, or check the data.");
    std::vector<Tensor> params = model.parameters();
    s.grad_norm = clip_grad_norm(params, o.grad_clip);
    RC_CHECK(std::isfinite(s.grad_norm), "step ", step, ": the gradient norm is ", s.grad_norm,
             " (a NaN or Inf gradient); stopping without updating the weights.");
    optimizer.step(lr);
    clamp_logit_scale(model.logit_scale, o.max_logit_scale);
    return s;
}

}  // namespace rankclip
