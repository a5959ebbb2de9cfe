// dist/all_gather.cpp
// defines: all_gather_with_grad (dist/all_gather.h), an op recorded on the engine's tape through
// its public record() like the ops in engine/ops/, living in dist/ so that engine/ never depends
// on the communication layer.
//
// Why the gradient is summed over ranks: with the global batch gathered, rank q's loss L_q
// depends on every rank's features, so d(sum_q L_q)/dx_r = sum_q (dL_q/dgathered)[rows of r].
// Each rank holds one term of that sum; all_reduce adds them and rank r keeps its rows.
#include "dist/all_gather.h"

#include "dist/comm.h"
#include "engine/autograd.h"
#include "engine/error.h"

namespace rankclip::dist {

Tensor all_gather_with_grad(const Tensor& x, std::vector<int64_t>* rows_out) {
    RC_CHECK(x.defined() && x.dim() >= 1, "all_gather_with_grad: needs a tensor of at least 1 dim, got ",
             x.defined() ? x.str() : std::string("an undefined tensor"));
    Tensor local = x.contiguous();
    std::vector<int64_t> ranks_rows;
    Tensor out = all_gather(local.detach(), &ranks_rows);
    // This rank's rows in the gathered tensor start after the rows of the ranks before it.
    int64_t rows = x.shape()[0], start = 0;
    for (int r = 0; r < rank(); r++) start += ranks_rows[r];
    record("all_gather_with_grad", out, {x}, [start, rows](const Tensor& grad) -> std::vector<Tensor> {
        Tensor summed = grad.contiguous().clone();
        all_reduce_(summed, Reduce::Sum);
        return {summed.narrow(0, start, rows).contiguous()};
    });
    if (rows_out) *rows_out = ranks_rows;
    return out;
}

}  // namespace rankclip::dist
