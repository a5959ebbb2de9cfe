// train/losses.cpp
// defines: the loss names and schedules, clip_loss (symmetric InfoNCE), cyclip_loss, siglip_loss
// and compute_loss, the dispatch the trainer calls. rankclip_loss and ListMLE live in
// train/rankclip_loss.cpp.
#include "train/losses.h"

#include <algorithm>

#include "engine/error.h"
#include "engine/ops.h"

namespace rankclip {

LossKind parse_loss_kind(const std::string& name) {
    if (name == "clip") return LossKind::Clip;
    if (name == "rankclip") return LossKind::RankCLIP;
    if (name == "cyclip") return LossKind::CyCLIP;
    if (name == "siglip") return LossKind::SigLIP;
    throw Error(str_cat("unknown loss '", name, "' (known: clip, rankclip, cyclip, siglip)"));
}

const char* loss_kind_name(LossKind kind) {
    switch (kind) {
        case LossKind::Clip: return "clip";
        case LossKind::RankCLIP: return "rankclip";
        case LossKind::CyCLIP: return "cyclip";
        case LossKind::SigLIP: return "siglip";
    }
    return "?";
}

RankWeightSchedule parse_rank_weight_schedule(const std::string& name) {
    if (name == "epoch-ramp") return RankWeightSchedule::EpochRamp;
    if (name == "step-ramp") return RankWeightSchedule::StepRamp;
    if (name == "constant") return RankWeightSchedule::Constant;
    throw Error(str_cat("unknown rank weight schedule '", name, "' (known: epoch-ramp, step-ramp, constant)"));
}

const char* rank_weight_schedule_name(RankWeightSchedule schedule) {
    switch (schedule) {
        case RankWeightSchedule::EpochRamp: return "epoch-ramp";
        case RankWeightSchedule::StepRamp: return "step-ramp";
        case RankWeightSchedule::Constant: return "constant";
    }
    return "?";
}

double rank_weight_at(const LossOptions& o, int64_t epoch, int64_t epochs, int64_t step, int64_t total_steps) {
    auto ramp = [&](double position, double last) {  // clamp(slope * position / last, 0, cap)
        if (last <= 0) return o.rank_ramp_cap;        // a one-epoch (one-step) run: the cap, not 0/0
        return std::clamp(o.rank_ramp_slope * position / last, 0.0, o.rank_ramp_cap);
    };
    switch (o.rank_schedule) {
        case RankWeightSchedule::EpochRamp: return ramp(double(epoch - 1), double(epochs - 1));
        case RankWeightSchedule::StepRamp: return ramp(double(step), double(total_steps - 1));
        case RankWeightSchedule::Constant: return o.rank_weight;
    }
    return o.rank_weight;
}

void check_features(const char* loss, const Tensor& v, const Tensor& t, const Tensor& logit_scale) {
    RC_CHECK(v.dim() == 2 && t.dim() == 2 && v.shape() == t.shape(), loss,
             ": image and text features must both be (B, D), got ", v.str(), " and ", t.str());
    RC_CHECK(v.size(0) > 0, loss, ": empty batch");
    RC_CHECK(logit_scale.defined() && logit_scale.numel() == 1, loss, ": logit_scale must be a scalar, got ",
             logit_scale.defined() ? logit_scale.str() : std::string("undefined"));
}

Tensor scaled_similarity(const Tensor& a, const Tensor& b, const Tensor& scale) {
    return matmul(scale * a, b.t());
}

Tensor symmetric_infonce(const Tensor& logits) {
    Tensor labels = arange(0, double(logits.size(0)), 1, DType::I64, logits.device());
    return (cross_entropy(logits, labels) + cross_entropy(logits.t(), labels)) * 0.5;
}

LossOutput clip_loss(const Tensor& v, const Tensor& t, const Tensor& logit_scale) {
    check_features("clip_loss", v, t, logit_scale);
    Tensor contrastive = symmetric_infonce(scaled_similarity(v, t, exp(logit_scale)));
    return {contrastive, {{"contrastive", contrastive.detach()}}};
}

LossOutput cyclip_loss(const Tensor& v, const Tensor& t, const Tensor& logit_scale, const LossOptions& o) {
    check_features("cyclip_loss", v, t, logit_scale);
    double B = double(v.size(0));
    Tensor contrastive = symmetric_infonce(scaled_similarity(v, t, exp(logit_scale)));
    // L_I = (1/B) sum_jk (<v_j, v_k> - <t_j, t_k>)^2;  L_C = (1/B) sum_jk (<v_j, t_k> - <v_k, t_j>)^2
    Tensor in_modal = sum(pow(matmul(v, v.t()) - matmul(t, t.t()), 2.0)) * (1.0 / B);
    Tensor vt = matmul(v, t.t());  // (B, B)
    Tensor cross_modal = sum(pow(vt - vt.t(), 2.0)) * (1.0 / B);
    Tensor total = contrastive + in_modal * o.cyclip_lambda_in + cross_modal * o.cyclip_lambda_cross;
    return {total,
            {{"contrastive", contrastive.detach()}, {"cyclip_in", in_modal.detach()}, {"cyclip_cross", cross_modal.detach()}}};
}

LossOutput siglip_loss(const Tensor& v, const Tensor& t, const Tensor& logit_scale, const Tensor& logit_bias) {
    check_features("siglip_loss", v, t, logit_scale);
    check_logit_bias("siglip_loss", logit_bias);
    Tensor logits = scaled_similarity(v, t, exp(logit_scale)) + logit_bias;  // (B, B)
    Tensor total = sigmoid_pairs_loss(logits, 0);
    return {total, {{"sigmoid", total.detach()}}};
}

void check_logit_bias(const char* loss, const Tensor& logit_bias) {
    RC_CHECK(logit_bias.defined() && logit_bias.numel() == 1, loss,
             ": the model has no logit_bias (build it with a SigLIP config: init_logit_bias)");
}

Tensor sigmoid_pairs_loss(const Tensor& logits, int64_t first_pair) {
    const int64_t N = logits.size(0), B = logits.size(1);
    Tensor rows = arange(double(first_pair), double(first_pair + N), 1, logits.dtype(), logits.device());
    Tensor cols = arange(0, double(B), 1, logits.dtype(), logits.device());
    Tensor z = affine(eq(rows.unsqueeze(1), cols.unsqueeze(0)), 2.0, -1.0);  // (N, B): +1 at the pairs
    Tensor x = z * logits;
    // log sigmoid(x) = min(x, 0) - log(1 + exp(-|x|)), stable for any x
    Tensor log_sig = minimum(x, zeros({}, x.dtype(), x.device())) - log(exp(-abs(x)) + 1.0);
    return -sum(log_sig) * (1.0 / double(B));
}

LossOutput compute_loss(const LossOptions& o, const Tensor& v, const Tensor& t, const Tensor& logit_scale,
                        const Tensor& logit_bias, double rank_weight, Generator& gen) {
    switch (o.kind) {
        case LossKind::Clip: return clip_loss(v, t, logit_scale);
        case LossKind::RankCLIP: return rankclip_loss(v, t, logit_scale, o, rank_weight, gen);
        case LossKind::CyCLIP: return cyclip_loss(v, t, logit_scale, o);
        case LossKind::SigLIP: return siglip_loss(v, t, logit_scale, logit_bias);
    }
    throw Error("compute_loss: unknown loss kind");
}

}  // namespace rankclip
