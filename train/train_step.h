// train/train_step.h
// defines: one training step of a CLIP model — features, loss, gradients (optionally accumulated
// over micro-batches the GradCache way), gradient clipping, the AdamW update and the logit_scale
// clamp — as the trainer runs it and as the parity tests drive it.
//
// Gradient accumulation for contrastive losses: the loss couples every pair of the batch, so
// summing per-micro-batch losses would change it. With accum = k > 1 the batch is split into k
// micro-batches and (GradCache, Gao et al. 2021; OpenCLIP's accum-freq does the same job):
//   1. without a graph, compute the normalised features of every micro-batch and concatenate;
//   2. compute the loss once on the concatenated features (leaves) with the live logit_scale
//      (and logit_bias): backward gives d loss / d features and the temperature's gradient;
//   3. for each micro-batch, recompute its features with a graph and backpropagate the cached
//      feature gradient through them (sum(features * grad)).
// The parameters' gradients then equal those of one batch of N (up to float summation order),
// at the memory of one micro-batch plus the (N, E) features, and one extra forward.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"
#include "models/clip.h"
#include "train/losses.h"
#include "train/optimizer.h"

namespace rankclip {

struct StepOptions {
    LossOptions loss;
    int accum = 1;               // micro-batches per batch (must divide the batch size)
    bool bf16 = false;           // autocast the forward to bf16 (fp32 master weights and loss)
    double grad_clip = 0.0;      // max global gradient norm; 0 = no clipping
    double max_logit_scale = std::log(100.0);
};

struct StepStats {
    double loss = 0.0;
    std::vector<std::pair<std::string, double>> parts;  // the loss's named parts (train/losses.h)
    double grad_norm = 0.0;                             // before clipping
};

// Zeroes the model's gradients and fills them with those of the loss on (images (B, 3, S, S),
// text (B, T)). Returns the loss and its parts; grad_norm is left 0.
// Data-parallel (dist::world_size() > 1): images and text are this rank's rows of the global
// batch; the loss is the global batch's (train/global_losses.h), the gradients are summed over
// the ranks (dist/gradients.h) and the returned values are the global batch's, the same on every
// rank, as are the gradients: AdamW then keeps the parameters identical across ranks.
StepStats compute_gradients(CLIP& model, const Tensor& images, const Tensor& text, const StepOptions& options,
                            double rank_weight, Generator& loss_gen);

// compute_gradients, then: a non-finite loss or gradient norm is an Error naming `step` (and
// nothing is updated); clip to options.grad_clip; AdamW at lr; clamp logit_scale.
StepStats train_step(CLIP& model, AdamW& optimizer, const Tensor& images, const Tensor& text,
                     const StepOptions& options, double lr, double rank_weight, Generator& loss_gen, int64_t step);

}  // namespace rankclip
