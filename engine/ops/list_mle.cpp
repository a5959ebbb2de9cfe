// engine/ops/list_mle.cpp
// defines: list_mle, the fused ListMLE (Plackett-Luce negative log-likelihood) of each row under
// a given ranking, with its analytic O(B) backward, and list_mle_composite, the same formula built
// from gather / max / exp / cumsum / log, which the fused op is tested against. The ranking is an
// input: the caller sorts the targets (train/rankclip_loss.cpp breaks ties and sorts once).
#include <vector>

#include "engine/autocast.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

static void check_list_mle_args(const Tensor& x, const Tensor& order, const Tensor& w) {
    RC_CHECK(x.dim() == 2 && is_floating(x.dtype()), "list_mle: scores must be floating (N, B), got ", x.str());
    RC_CHECK(order.dtype() == DType::I64 && order.shape() == x.shape(), "list_mle: order must be I64 ",
             shape_str(x.shape()), " like the scores, got ", order.str());
    RC_CHECK(order.device() == x.device(), "list_mle: order on ", order.device().str(), ", scores on ",
             x.device().str());
    if (w.defined())
        RC_CHECK(w.dim() == 1 && w.size(0) == x.size(1) && w.device() == x.device(),
                 "list_mle: position weights must be (", x.size(1), ") on ", x.device().str(), ", got ", w.str());
    if (order.device().is_cpu()) {  // each row a permutation (checked where it is cheap to read)
        int64_t N = x.size(0), B = x.size(1);
        Tensor oc = order.contiguous();
        const int64_t* o = oc.data<int64_t>();
        std::vector<int64_t> seen(B, -1);
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < B; k++) {
                int64_t c = o[n * B + k];
                RC_CHECK(c >= 0 && c < B && seen[c] != n, "list_mle: order row ", n,
                         " is not a permutation of 0..", B - 1, " (entry ", k, " is ", c, ")");
                seen[c] = n;
            }
    }
}

Tensor list_mle(const Tensor& scores, const Tensor& order, const Tensor& position_weights, double eps) {
    Tensor x = autocast_full(scores).contiguous();  // fp32 under autocast
    Tensor w = position_weights.defined() ? position_weights.to(x.dtype()).contiguous() : Tensor();
    check_list_mle_args(x, order, w);
    Tensor oc = order.contiguous();
    int64_t N = x.size(0), B = x.size(1);
    DType acc = x.dtype() == DType::F64 ? DType::F64 : DType::F32;
    Tensor losses = empty({N}, x.dtype(), x.device());
    Tensor maxpos = empty({N}, DType::I64, x.device());
    Tensor suffix = empty({N, B}, acc, x.device());  // Z_k, the suffix sums, saved for backward
    if (x.numel()) backend_for(x.device()).list_mle(x, oc, w, losses, maxpos, suffix, eps);
    else if (N) losses.fill_(0.0);
    record("list_mle", losses, {x},
           [x = x.detach(), oc, w, maxpos, suffix, eps](const Tensor& g) -> std::vector<Tensor> {
               Tensor gx = empty(x.shape(), x.dtype(), x.device());
               Tensor gc = g.dtype() == x.dtype() ? g.contiguous() : g.to(x.dtype()).contiguous();
               if (x.numel()) backend_for(x.device()).list_mle_backward(x, oc, w, maxpos, suffix, gc, gx, eps);
               return {gx};
           });
    return losses;
}

// The released RankCLIP code's listMLE line by line (without its shuffle and sort, done by the
// caller): preds sorted by the ranking, minus their max, reverse cumulative sum of exp, log + eps.
Tensor list_mle_composite(const Tensor& scores, const Tensor& order, const Tensor& position_weights, double eps) {
    check_list_mle_args(scores, order, position_weights);
    Tensor sorted = gather(scores, 1, order);                         // (N, B) in ranked order
    Tensor u = sorted - max(sorted, 1, true).first;                   // (N, B), gradient to the first max
    Tensor z = cumsum(exp(u), 1, /*reverse=*/true);                   // (N, B) suffix sums
    Tensor terms = log(z + eps) - u;                                  // (N, B)
    if (position_weights.defined()) terms = terms * position_weights.to(scores.dtype());
    return sum(terms, {1});                                           // (N)
}

}  // namespace rankclip
