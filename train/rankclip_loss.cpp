// train/rankclip_loss.cpp
// defines: the RankCLIP loss (RANKCLIP.md): CLIP's InfoNCE plus list-wise ranking consistency,
// ListMLE between the cross-modal similarity rows (S against S^T) and between the in-modal ones
// (A = s V V^T against C = s T T^T), and the ListMLE loss with the seeded random tie-break.
// The Plackett-Luce likelihood itself is the engine's fused list_mle op (engine/ops/list_mle.cpp).
#include <cmath>
#include <vector>

#include "engine/error.h"
#include "engine/ops.h"
#include "train/losses.h"

namespace rankclip {

// The released code: shuffle the columns with randperm(B), then sort the targets descending
// (stable, so equal targets keep the shuffled order: a random tie-break shared by all rows).
// order[n, k] = perm[argsort(Y[:, perm])[n, k]] names the column in Y's own numbering.
Tensor ranking_with_tie_break(const Tensor& targets, Generator& gen) {
    RC_CHECK(targets.dim() == 2, "ListMLE: targets must be (N, B), got ", targets.str());
    NoGradGuard no_grad;  // the targets enter only through the sort
    int64_t N = targets.size(0), B = targets.size(1);
    Tensor perm = randperm(B, gen).to(targets.device());                          // (B) I64
    Tensor shuffled_order = argsort(index_select(targets.detach(), 1, perm), 1, /*descending=*/true);
    return index_select(perm, 0, shuffled_order.reshape({N * B})).reshape({N, B});  // (N, B)
}

// mu_k = 1 / ln(1 + k), k = 1..B (the paper's v1 position weighting)
static Tensor log_position_weights(int64_t B, DType dtype, Device device) {
    std::vector<double> mu(B);
    for (int64_t k = 1; k <= B; k++) mu[k - 1] = 1.0 / std::log(1.0 + double(k));
    return from_vector(mu, {B}, dtype, device);
}

Tensor list_mle_loss(const Tensor& scores, const Tensor& targets, Generator& gen, const LossOptions& o, bool fused) {
    RC_CHECK(scores.dim() == 2 && scores.shape() == targets.shape(), "ListMLE: scores and targets must be the same (N, B), got ",
             scores.str(), " and ", targets.str());
    Tensor order = ranking_with_tie_break(targets, gen);
    Tensor w = o.position_weighting == PositionWeighting::Log
                   ? log_position_weights(scores.size(1), scores.dtype(), scores.device())
                   : Tensor();
    Tensor per_row = fused ? list_mle(scores, order, w, o.listmle_eps) : list_mle_composite(scores, order, w, o.listmle_eps);
    return mean(per_row);
}

LossOutput rankclip_loss(const Tensor& v, const Tensor& t, const Tensor& logit_scale, const LossOptions& o,
                         double rank_weight, Generator& gen) {
    check_features("rankclip_loss", v, t, logit_scale);
    double B = double(v.size(0));
    Tensor s = exp(logit_scale);
    Tensor S = scaled_similarity(v, t, s);  // (B, B) image i against every text
    Tensor contrastive = symmetric_infonce(S);

    Tensor zero = zeros({}, contrastive.dtype(), contrastive.device());
    Tensor cross = zero, in_modal = zero;
    // Each ListMLE draws its tie-break permutation: named statements fix the draw order (the two
    // operands of one `+` may be evaluated in either order).
    if (o.rank_cross) {  // image i's scores over texts follow text i's scores over images, and back
        Tensor image_rows = list_mle_loss(S, S.t(), gen, o);
        Tensor text_rows = list_mle_loss(S.t(), S, gen, o);
        cross = (image_rows + text_rows) * (1.0 / o.rank_divisor);
    }
    if (o.rank_in) {
        Tensor A = scaled_similarity(v, v, s);  // (B, B) image-image
        Tensor C = scaled_similarity(t, t, s);  // (B, B) text-text
        Tensor image_rows = list_mle_loss(A, C, gen, o);
        Tensor text_rows = list_mle_loss(C, A, gen, o);
        in_modal = (image_rows + text_rows) * (1.0 / o.rank_divisor);
    }
    double w_cross = o.lambda_cross.value_or(rank_weight), w_in = o.lambda_in.value_or(rank_weight);
    Tensor total = contrastive + (cross * w_cross + in_modal * w_in) * (1.0 / B);
    return {total,
            {{"contrastive", contrastive.detach()}, {"rank_cross", cross.detach()}, {"rank_in", in_modal.detach()}}};
}

}  // namespace rankclip
