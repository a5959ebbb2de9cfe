// engine/ops/matmul.cpp
// defines: matmul with torch.matmul's rules (1-D operands, 2-D, batched with broadcast batch
// dims) and its backward. A transposed operand is passed to the GEMM as a transpose flag, not
// copied; (B, T, K) @ (K, N) runs as one (B*T, K) @ (K, N) GEMM.
//   forward:  C = A B      backward:  dA = dC B^T,  dB = A^T dC   (summed over broadcast batches)
#include "engine/autocast.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

// A 3-D operand the GEMM can read: its own contiguous layout, or the contiguous layout of its
// transpose (then transposed = true). Copies only when neither holds.
static Tensor gemm_operand(const Tensor& t, bool& transposed) {
    transposed = false;
    if (t.is_contiguous()) return t;
    Tensor tt = t.transpose(1, 2);
    if (tt.is_contiguous()) {
        transposed = true;
        return tt;
    }
    return t.contiguous();
}

// a (..., M, K) @ b (..., K, N), both at least 2-D.
static Tensor matmul_batched(const Tensor& a, const Tensor& b) {
    int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
    RC_CHECK(b.size(-2) == K, "matmul: inner dimensions differ: a is ", shape_str(a.shape()), ", b is ",
             shape_str(b.shape()));
    Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
    Shape batch = broadcast_shapes(batch_a, batch_b, "matmul (batch dims)");
    int64_t nbatch = numel(batch);
    Shape shape_a = batch, shape_b = batch, shape_out = batch;
    shape_a.insert(shape_a.end(), {M, K});
    shape_b.insert(shape_b.end(), {K, N});
    shape_out.insert(shape_out.end(), {M, N});

    NoGradGuard no_grad;
    // (..., R, C) -> (batch, R, C) without copying when the operand, or its transpose, is dense;
    // an operand without batch dims (or all ones) is shared by every batch: the kernel broadcasts it
    auto flatten_operand = [&](const Tensor& t, const Shape& expanded, int64_t rows, int64_t cols) {
        bool shared = numel(Shape(t.shape().begin(), t.shape().end() - 2)) == 1;
        int64_t n = shared ? 1 : nbatch;
        Tensor d = shared ? t.detach() : t.detach().expand(expanded);
        if (d.is_contiguous()) return d.reshape({n, rows, cols});
        Tensor dt = d.transpose(-1, -2);
        if (dt.is_contiguous()) return dt.reshape({n, cols, rows}).transpose(1, 2);
        return d.contiguous().reshape({n, rows, cols});
    };
    bool ta, tb;
    Tensor a3 = gemm_operand(flatten_operand(a, shape_a, M, K), ta);
    Tensor b3 = gemm_operand(flatten_operand(b, shape_b, K, N), tb);
    Tensor out = empty({nbatch, M, N}, a.dtype(), a.device());
    backend_for(a.device()).matmul(a3, b3, out, ta, tb);
    return out.view(shape_out);
}

static Tensor matmul_recorded(const Tensor& a, const Tensor& b) {
    RC_CHECK(a.device() == b.device(), "matmul: tensors on different devices: ", a.str(), " and ", b.str());
    RC_CHECK(a.dtype() == b.dtype(), "matmul: dtypes differ: ", a.str(), " and ", b.str());
    RC_CHECK(is_floating(a.dtype()), "matmul: needs floating tensors, got ", a.str());
    Tensor out = matmul_batched(a, b);
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record("matmul", out, {a, b}, [a = a.detach(), b = b.detach(), ga, gb](const Tensor& g) -> std::vector<Tensor> {
        Tensor grad_a, grad_b;
        if (ga) grad_a = sum_to(matmul(g, b.transpose(-1, -2)), a.shape());
        if (gb) {
            if (b.dim() == 2 && a.dim() > 2)  // shared weight: one GEMM over all rows
                grad_b = matmul(a.reshape({-1, a.size(-1)}).t(), g.reshape({-1, g.size(-1)}));
            else
                grad_b = sum_to(matmul(a.transpose(-1, -2), g), b.shape());
        }
        return {grad_a, grad_b};
    });
    return out;
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
    Tensor a = autocast_low(a_in), b = autocast_low(b_in);  // bf16 under autocast
    RC_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least 1 dim, got ", a.str(), " and ",
             b.str());
    if (a.dim() == 1 && b.dim() == 1) return matmul(a.unsqueeze(0), b.unsqueeze(-1)).reshape({});  // dot product
    if (a.dim() == 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
    if (b.dim() == 1) return matmul(a, b.unsqueeze(-1)).squeeze(-1);
    if (b.dim() == 2 && a.dim() > 2 && a.is_contiguous()) {  // (..., K) @ (K, N) as one 2-D GEMM
        Shape out_shape = a.shape();
        out_shape.back() = b.size(1);
        return matmul_recorded(a.reshape({-1, a.size(-1)}), b).reshape(out_shape);
    }
    return matmul_recorded(a, b);
}

}  // namespace rankclip
