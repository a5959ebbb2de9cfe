// train/losses.h
// defines: the training losses of docs/RANKCLIP.md — clip (symmetric InfoNCE), rankclip
// (CLIP + list-wise ranking consistency with ListMLE), cyclip and siglip — their options, the
// RankCLIP weight schedules, and LossOutput, the total plus its named parts for logging.
//
// Every loss takes the L2-normalised features V (B, D) and T (B, D) of one batch (row i of each
// is pair i) and the model's logit_scale parameter (the log of the inverse temperature s); SigLIP
// also takes logit_bias. The total is differentiable in all of them.
//
// Randomness: rankclip's ListMLE breaks ties in the targets with one random column permutation
// per ListMLE call, drawn with randperm(B, gen) in this order: cross-modal ListMLE(S, S^T),
// ListMLE(S^T, S), then in-modal ListMLE(A, C), ListMLE(C, A) (terms switched off draw nothing).
// With torch.randperm on a torch.Generator of the same state, the permutations are the same.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"

namespace rankclip {

enum class LossKind { Clip, RankCLIP, CyCLIP, SigLIP };
LossKind parse_loss_kind(const std::string& name);  // "clip", "rankclip", "cyclip", "siglip"
const char* loss_kind_name(LossKind kind);

// How RankCLIP's weight w evolves (docs/RANKCLIP.md, "The weight schedule w"): the released code's epoch ramp
// w(e) = clamp(3 (e - 1) / (E - 1), 0, 2) for epoch e = 1..E, the same ramp over steps
// w(t) = clamp(3 t / (T - 1), 0, 2) for step t = 0..T-1, or a constant.
enum class RankWeightSchedule { EpochRamp, StepRamp, Constant };
RankWeightSchedule parse_rank_weight_schedule(const std::string& name);  // "epoch-ramp", "step-ramp", "constant"
const char* rank_weight_schedule_name(RankWeightSchedule schedule);

// ListMLE position weights: none (released code) or the paper's mu_k = 1 / ln(1 + k), k = 1..B.
enum class PositionWeighting { None, Log };

struct LossOptions {
    LossKind kind = LossKind::Clip;

    // rankclip
    bool rank_cross = true;  // cross-modal consistency term (RankCLIP^C keeps only this one)
    bool rank_in = true;     // in-modal consistency term (RankCLIP^I keeps only this one)
    RankWeightSchedule rank_schedule = RankWeightSchedule::EpochRamp;
    double rank_weight = 1.0;                  // w of the Constant schedule
    double rank_ramp_slope = 3.0;              // the ramp's 3
    double rank_ramp_cap = 2.0;                // the ramp's cap
    std::optional<double> lambda_cross;        // separate constant weights (the paper's ablation):
    std::optional<double> lambda_in;           //   when set, replace w for that term
    PositionWeighting position_weighting = PositionWeighting::None;
    double listmle_eps = 1e-10;                // inside the log, as the released code
    double rank_divisor = 32.0;                // the released code's /32 on each term

    // cyclip
    double cyclip_lambda_in = 0.25;     // lambda1, in-modal
    double cyclip_lambda_cross = 0.25;  // lambda2, cross-modal
};

// The ramp/constant weight w for a position in the run. epoch counts from 1 (of epochs); step
// from 0 (of total_steps). Only the fields the schedule needs are read.
double rank_weight_at(const LossOptions& options, int64_t epoch, int64_t epochs, int64_t step, int64_t total_steps);

struct LossOutput {
    Tensor loss;                                        // () the total, differentiable
    std::vector<std::pair<std::string, Tensor>> parts;  // () detached parts for logging, in a fixed order:
                                                        //   clip:     contrastive
                                                        //   rankclip: contrastive, rank_cross, rank_in
                                                        //   cyclip:   contrastive, cyclip_in, cyclip_cross
                                                        //   siglip:   sigmoid
};

// (CE(logits, arange) + CE(logits^T, arange)) / 2 for a (B, B) matrix whose diagonal holds the pairs
Tensor symmetric_infonce(const Tensor& logits);

// What every loss checks first: V and T both (B, D) with B > 0 and logit_scale a scalar; else an
// Error naming `loss`.
void check_features(const char* loss, const Tensor& v, const Tensor& t, const Tensor& logit_scale);

// SigLIP's model needs its logit_bias: an Error naming `loss` when it has none.
void check_logit_bias(const char* loss, const Tensor& logit_bias);

// -(1/B) sum_ij log sigmoid(z_ij logits_ij) over logits (N, B), z_ij = +1 where column j is row i's
// pair (column first_pair + i) and -1 elsewhere: SigLIP's loss over N rows of its (B, B) matrix
// (all of them: first_pair 0, N = B).
Tensor sigmoid_pairs_loss(const Tensor& logits, int64_t first_pair);

// (scale A) B^T (N, M) for A (N, D), B (M, D) and scale = exp(logit_scale), grouped as
// CLIP::forward groups it: S = scaled_similarity(V, T, exp(logit_scale)) holds image i's row over
// every text; a loss that needs several such matrices passes the one exp to each.
Tensor scaled_similarity(const Tensor& a, const Tensor& b, const Tensor& scale);

// L = (CE(S, arange) + CE(S^T, arange)) / 2, S = exp(logit_scale) V T^T
LossOutput clip_loss(const Tensor& image_features, const Tensor& text_features, const Tensor& logit_scale);

// L = L_clip + (w_cross L_cross + w_in L_in) / B with
//   L_cross = [ListMLE(S, S^T) + ListMLE(S^T, S)] / 32, L_in = [ListMLE(A, C) + ListMLE(C, A)] / 32,
//   A = s V V^T, C = s T T^T; w_cross = lambda_cross or w, w_in = lambda_in or w.
// The parts rank_cross / rank_in are L_cross and L_in before weighting (0 when switched off).
LossOutput rankclip_loss(const Tensor& image_features, const Tensor& text_features, const Tensor& logit_scale,
                         const LossOptions& options, double rank_weight, Generator& gen);

// L = L_clip + lambda1 L_I + lambda2 L_C (docs/RANKCLIP.md, "CyCLIP")
LossOutput cyclip_loss(const Tensor& image_features, const Tensor& text_features, const Tensor& logit_scale,
                       const LossOptions& options);

// L = -(1/B) sum_ij log sigmoid(z_ij (exp(logit_scale) <v_i, t_j> + logit_bias)), z = 2 I - 1
LossOutput siglip_loss(const Tensor& image_features, const Tensor& text_features, const Tensor& logit_scale,
                       const Tensor& logit_bias);

// ListMLE(X, Y): the mean over rows of the Plackett-Luce NLL of X's row under the descending
// order of Y's row, ties in Y broken by one randperm(B, gen) column shuffle shared by all rows.
// Y gets no gradient. `fused` picks the fused op (list_mle) or its composite (tests compare).
Tensor list_mle_loss(const Tensor& scores, const Tensor& targets, Generator& gen, const LossOptions& options,
                     bool fused = true);
// The ranking list_mle_loss uses: order[n, k] = column ranked k-th in targets' row n (I64 (N, B)).
Tensor ranking_with_tie_break(const Tensor& targets, Generator& gen);

// Dispatch on options.kind. logit_bias is used by siglip only (undefined otherwise).
LossOutput compute_loss(const LossOptions& options, const Tensor& image_features, const Tensor& text_features,
                        const Tensor& logit_scale, const Tensor& logit_bias, double rank_weight, Generator& gen);

}  // namespace rankclip
