// engine/ops/linear.cpp
// defines: linear (torch.nn.functional.linear) with the bias added inside the GEMM, and
// linear_composite, the same from matmul + add, which it is tested against. Every Linear layer
// and the attention input projection run through it: a separate bias add would be one more full
// pass over each layer's output, forward, on tensors as large as (8320, 512) in the tiny ViT.
//   forward:  y = x W^T + b               x (M, K), W (N, K), b (N) -> y (M, N)
//   backward: dx = dy W,  dW = dy^T x,  db = sum over rows of dy   (dW and db in one backend call,
//             linear_weight_grad, which may sum db inside the GEMM)
#include "engine/autocast.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

Tensor linear(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in) {
    // under autocast every floating input goes to bf16, as torch's autocast does for linear
    Tensor x = autocast_low(x_in), w = autocast_low(w_in), b = autocast_low(b_in);
    RC_CHECK(x.dim() >= 1 && w.dim() == 2 && x.size(-1) == w.size(1), "linear: input ", x.str(),
             " does not fit weight ", w.str(), " (expected (..., ", w.dim() == 2 ? w.size(1) : -1, "))");
    RC_CHECK(!b.defined() || (b.dim() == 1 && b.size(0) == w.size(0)), "linear: bias ", b.str(),
             " does not fit weight ", w.str());
    RC_CHECK(x.dtype() == w.dtype() && (!b.defined() || b.dtype() == w.dtype()) && is_floating(x.dtype()),
             "linear: needs one floating dtype, got input ", x.str(), ", weight ", w.str(), ", bias ", b.str());
    RC_CHECK(x.device() == w.device() && (!b.defined() || b.device() == w.device()),
             "linear: tensors on different devices: ", x.str(), ", ", w.str(), ", ", b.str());
    const int64_t K = w.size(1), N = w.size(0);
    int64_t M = 1;  // rows: every dim of x but the last (explicit, so that K = 0 or N = 0 works)
    for (int64_t d = 0; d + 1 < x.dim(); d++) M *= x.size(d);
    Shape out_shape = x.shape();
    out_shape.back() = N;
    Tensor out = empty(out_shape, x.dtype(), x.device());
    {
        NoGradGuard no_grad;
        Tensor x2 = x.detach().contiguous().reshape({M, K});  // (M, K)
        Tensor out2 = out.view({M, N});                       // (M, N)
        if (out.numel()) backend_for(x.device()).linear(x2, w.detach().contiguous(), b.defined() ? b.detach().contiguous() : b, out2);
    }
    bool gx = x.requires_grad(), gw = w.requires_grad(), gb = b.defined() && b.requires_grad();
    record("linear", out, {x, w, b}, [x = x.detach(), w = w.detach(), M, gx, gw, gb](const Tensor& g) -> std::vector<Tensor> {
        const int64_t N = g.size(-1), K = x.size(-1);
        Tensor g2 = g.reshape({M, N});  // (M, N)
        Tensor dx, dw, db;
        if (gx) dx = matmul(g2, w).reshape(x.shape());  // (M, N) @ (N, K)
        if (gw && M > 0 && N > 0 && K > 0) {            // dw = g2^T x (N, K), db in the same call
            NoGradGuard no_grad;
            Tensor gc = g2.contiguous(), xc = x.reshape({M, K}).contiguous();
            dw = empty({N, K}, gc.dtype(), gc.device());
            if (gb) db = empty({N}, gc.dtype(), gc.device());
            backend_for(gc.device()).linear_weight_grad(gc, xc, dw, db);
            return {dx, dw, db};
        }
        if (gw) dw = matmul(g2.t(), x.reshape({M, K}));  // (N, M) @ (M, K): an empty one
        if (gb) db = sum_to(g2, {N});                    // (N)
        return {dx, dw, db};
    });
    return out;
}

Tensor linear_composite(const Tensor& x, const Tensor& w, const Tensor& b) {
    Tensor y = matmul(x, w.t());
    return b.defined() ? y + b : y;
}

}  // namespace rankclip
