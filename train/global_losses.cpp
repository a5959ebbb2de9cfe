// train/global_losses.cpp
// defines: global_loss_share (train/global_losses.h): this rank's rows of CLIP, SigLIP, CyCLIP and
// RankCLIP over the gathered global batch. Each function mirrors its one-process twin in
// train/losses.cpp / train/rankclip_loss.cpp, with (B, B) matrices replaced by this rank's rows.
#include "train/global_losses.h"

#include <vector>

#include "dist/all_gather.h"
#include "dist/comm.h"
#include "engine/error.h"
#include "engine/ops.h"

namespace rankclip {

namespace {

// This rank's rows of the global batch and every rank's, gathered with gradient.
struct GlobalBatch {
    Tensor v, t;         // (b, D) this rank's features
    Tensor V, T;         // (B, D) every rank's, in rank order
    Tensor s;            // () exp(logit_scale)
    Tensor labels;       // (b) I64: this rank's rows' pairs, start .. start + b - 1
    int64_t start = 0;   // this rank's first row in the global batch
    int64_t B = 0;       // the global batch
    double share = 0.0;  // b / B: a mean over this rank's rows, times share, is its part of the global mean
};

GlobalBatch gather_batch(const Tensor& v, const Tensor& t, const Tensor& logit_scale) {
    GlobalBatch g;
    g.v = v, g.t = t;
    std::vector<int64_t> rows;
    g.V = dist::all_gather_with_grad(v, &rows);
    g.T = dist::all_gather_with_grad(t);
    for (int r = 0; r < dist::rank(); r++) g.start += rows[r];
    g.B = g.V.size(0);
    g.share = double(v.size(0)) / double(g.B);
    g.s = exp(logit_scale);
    g.labels = arange(double(g.start), double(g.start + v.size(0)), 1, DType::I64, v.device());
    return g;
}

// (CE(S rows) + CE(S^T rows)) / 2, this rank's share. Returns S's and S^T's rows through the pointers.
Tensor contrastive_share(const GlobalBatch& g, Tensor* image_rows = nullptr, Tensor* text_rows = nullptr) {
    Tensor S = scaled_similarity(g.v, g.T, g.s);   // (b, B)
    Tensor St = scaled_similarity(g.t, g.V, g.s);  // (b, B)
    if (image_rows) *image_rows = S;
    if (text_rows) *text_rows = St;
    return (cross_entropy(S, g.labels) + cross_entropy(St, g.labels)) * (0.5 * g.share);
}

LossOutput clip_share(const GlobalBatch& g) {
    Tensor contrastive = contrastive_share(g);
    return {contrastive, {{"contrastive", contrastive.detach()}}};
}

// -(1/B) sum over this rank's rows i and every j of log sigmoid(z_ij (s <v_i, t_j> + bias))
LossOutput siglip_share(const GlobalBatch& g, const Tensor& logit_bias) {
    check_logit_bias("siglip_loss", logit_bias);
    Tensor logits = scaled_similarity(g.v, g.T, g.s) + logit_bias;  // (b, B)
    Tensor total = sigmoid_pairs_loss(logits, g.start);
    return {total, {{"sigmoid", total.detach()}}};
}

// L_I rows: (<v_j, v_k> - <t_j, t_k>)^2; L_C rows: (<v_j, t_k> - <v_k, t_j>)^2, summed, over B
LossOutput cyclip_share(const GlobalBatch& g, const LossOptions& o) {
    Tensor contrastive = contrastive_share(g);
    const double inv_B = 1.0 / double(g.B);
    Tensor in_modal = sum(pow(matmul(g.v, g.V.t()) - matmul(g.t, g.T.t()), 2.0)) * inv_B;
    Tensor cross_modal = sum(pow(matmul(g.v, g.T.t()) - matmul(g.t, g.V.t()), 2.0)) * inv_B;
    Tensor total = contrastive + in_modal * o.cyclip_lambda_in + cross_modal * o.cyclip_lambda_cross;
    return {total,
            {{"contrastive", contrastive.detach()}, {"cyclip_in", in_modal.detach()}, {"cyclip_cross", cross_modal.detach()}}};
}

// One process: ListMLE(S, S^T) + ListMLE(S^T, S) and ListMLE(A, C) + ListMLE(C, A). Row i of S^T
// is text i against every image, the rows this rank computes as s t V^T, so each ListMLE's rows
// here are this rank's rows of the one-process matrices; list_mle_loss's mean over them times
// `share` is this rank's part of the one-process mean. The tie-break permutations are drawn in the
// one-process order, over B columns.
LossOutput rankclip_share(const GlobalBatch& g, const LossOptions& o, double rank_weight, Generator& gen) {
    Tensor S, St;
    Tensor contrastive = contrastive_share(g, &S, &St);
    Tensor zero = zeros({}, contrastive.dtype(), contrastive.device());
    Tensor cross = zero, in_modal = zero;
    const double scale = g.share / o.rank_divisor;
    if (o.rank_cross) {
        Tensor image_rows = list_mle_loss(S, St, gen, o);
        Tensor text_rows = list_mle_loss(St, S, gen, o);
        cross = (image_rows + text_rows) * scale;
    }
    if (o.rank_in) {
        Tensor A = scaled_similarity(g.v, g.V, g.s);  // (b, B) image-image rows
        Tensor C = scaled_similarity(g.t, g.T, g.s);  // (b, B) text-text rows
        Tensor image_rows = list_mle_loss(A, C, gen, o);
        Tensor text_rows = list_mle_loss(C, A, gen, o);
        in_modal = (image_rows + text_rows) * scale;
    }
    double w_cross = o.lambda_cross.value_or(rank_weight), w_in = o.lambda_in.value_or(rank_weight);
    Tensor total = contrastive + (cross * w_cross + in_modal * w_in) * (1.0 / double(g.B));
    return {total,
            {{"contrastive", contrastive.detach()}, {"rank_cross", cross.detach()}, {"rank_in", in_modal.detach()}}};
}

}  // namespace

LossOutput global_loss_share(const LossOptions& o, const Tensor& v, const Tensor& t, const Tensor& logit_scale,
                             const Tensor& logit_bias, double rank_weight, Generator& gen) {
    if (dist::world_size() == 1) return compute_loss(o, v, t, logit_scale, logit_bias, rank_weight, gen);
    check_features("global_loss_share", v, t, logit_scale);
    const GlobalBatch g = gather_batch(v, t, logit_scale);
    switch (o.kind) {
        case LossKind::Clip: return clip_share(g);
        case LossKind::RankCLIP: return rankclip_share(g, o, rank_weight, gen);
        case LossKind::CyCLIP: return cyclip_share(g, o);
        case LossKind::SigLIP: return siglip_share(g, logit_bias);
    }
    throw Error("global_loss_share: unknown loss kind");
}

}  // namespace rankclip
