// train/global_losses.h
// defines: global_loss_share, the losses of train/losses.h over the global batch of data-parallel
// training (dist/), computed as OpenCLIP's "local loss": each rank holds b rows of the global batch
// of B, gathers every rank's features with gradient (dist::all_gather_with_grad), and computes
// its own rows of the similarity matrices against all B columns.
//
// Every loss of docs/RANKCLIP.md is a sum over the rows of (B, B) matrices (a mean is a sum over
// B): rank r's share is the sum over its rows, with the same global normalisation. The shares add
// up to the one-process loss of the whole batch, in value and in gradient: the gathered features'
// backward sums every rank's gradient (dist/all_gather.h), so each rank's features get exactly the
// one-process gradient, and the parameters' gradients of the ranks add up to the one-process
// gradient (the trainer sums them: dist::all_reduce_gradients). RankCLIP's ListMLE rows are
// ranked over all B columns and its tie-break draws randperm(B) from a generator in the same state
// on every rank, so every rank uses the permutations one process would draw.
//
// The rows each rank computes, for its features v, t (b, D) and the gathered V, T (B, D):
//   S's rows   s v T^T   (b, B)  image i against every text       (rows start + 0..b-1)
//   S^T's rows s t V^T   (b, B)  text j against every image
//   A's rows   s v V^T,  C's rows s t T^T  (in-modal, RankCLIP and CyCLIP)
#pragma once
#include "engine/random.h"
#include "engine/tensor.h"
#include "train/losses.h"

namespace rankclip {

// This rank's share of the loss over the global batch (the loss and each of its parts; summed over
// the ranks they are the one-process values). In a world of one: compute_loss itself.
LossOutput global_loss_share(const LossOptions& options, const Tensor& image_features, const Tensor& text_features,
                             const Tensor& logit_scale, const Tensor& logit_bias, double rank_weight, Generator& gen);

}  // namespace rankclip
