// engine/backend.h
// defines: Backend, the op table of one device type, and the registry of backends. Every kernel
// the engine needs is a virtual function here; the CPU backend (engine/cpu/) implements all of
// them. A kernel a backend lacks throws an error naming the op, the device and the dtype (see
// `missing`). What the machine has (device count, bf16 support) is asked here too, with CPU
// answers as defaults, so the engine needs no other backend's headers.
//
// The engine knows only the CPU backend. Any other registers itself with register_backend() when
// the program starts (the CUDA backend does so from cuda/device.cpp, in a CUDA build; see there
// and docs/ARCHITECTURE.md for how its object is kept in the link).
//
// Contract: output tensors are allocated by the caller (contiguous, right shape and dtype, on
// this device). Inputs are contiguous unless the comment says "strided". All dims are already
// wrapped and checked by the op front-ends in engine/ops/, so kernels only compute.
#pragma once
#include <cstdint>
#include <string>

#include "engine/tensor.h"

namespace rankclip {

enum class UnaryOp {
    Neg, Exp, Log, Sqrt, Rsqrt, Abs, Tanh, Sigmoid, Relu, Reciprocal,
    Gelu,        // exact: x * Phi(x)
    GeluTanh,    // tanh approximation
    QuickGelu,   // x * sigmoid(1.702 x)
    Pow,         // x ^ p0
    Clamp,       // min(max(x, p0), p1)
    Affine,      // x * p0 + p1
    Sign,
};

enum class BinaryOp {
    Add, Sub, Mul, Div, Maximum, Minimum,
    Eq, Gt, Lt, Ge, Le,     // 1 where true, else 0, in the output dtype
    // gradients of the activations: a = x, b = grad of the output
    GeluBackward, GeluTanhBackward, QuickGeluBackward,
};

enum class ReduceOp { Sum, Max, Min, SumSquares };

// The scalars of one AdamW step, each computed in double and rounded once to float (as torch
// hands Python floats to its kernels: 1 - b1 is not 1.0f - float(b1)).
struct AdamWScalars {
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
    float decay;          // 1 - lr * weight_decay
    float neg_step_size;  // -lr / (1 - beta1^t)
    float bc2_sqrt;       // sqrt(1 - beta2^t)
};

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);

struct Backend {
    virtual ~Backend() = default;
    virtual const char* name() const = 0;

    // --- what the machine has: asked before anything runs, so these must create no device state
    //     (no context, no stream); the defaults are the CPU's answers ---
    // Usable devices of this type: 0 when the backend is built in but the machine has none (a
    // CUDA build on a machine without a GPU or driver).
    virtual int device_count() const { return 1; }
    // Whether bf16 kernels run on device `index`; when not, *why says why (autocast's error).
    virtual bool supports_bf16(int index, std::string* why) const { return true; }

    // --- memory ---
    virtual void* allocate(size_t nbytes) = 0;
    virtual void deallocate(void* ptr, size_t nbytes) = 0;
    // Page-locked ("pinned") host memory for CPU tensors whose contents go to this device: the
    // copy engine reads it directly instead of through the driver's staging buffer. Returns
    // nullptr when the backend has none (the default) or cannot get it; the caller then uses
    // plain CPU memory (see empty_pinned in engine/tensor.h). free_pinned_host takes back what
    // allocate_pinned_host returned and never throws (Storage's destructor calls it).
    virtual void* allocate_pinned_host(size_t nbytes);
    virtual void free_pinned_host(void* ptr, size_t nbytes);
    // dst and src have the same shape; src strided (any strides, may be 0), dst strided;
    // dtypes may differ (this is cast). Both live on this backend's device.
    virtual void copy(const Tensor& src, Tensor& dst);
    // Contiguous host <-> device transfer of nbytes.
    virtual void copy_to_host(const void* device_src, void* host_dst, size_t nbytes);
    virtual void copy_from_host(const void* host_src, void* device_dst, size_t nbytes);
    virtual void fill(Tensor& dst, double value);  // dst strided
    virtual void synchronize() {}

    // --- elementwise (inputs strided; already expanded to out's shape) ---
    virtual void unary(UnaryOp op, const Tensor& x, Tensor& out, double p0, double p1);
    virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out);
    // Whether binary() takes an F32 and a BF16 operand (Add, Sub, Mul, Div; out F32) as they
    // are; otherwise the op front-end casts the BF16 one first (an extra pass over it).
    virtual bool binary_mixes_float_dtypes() const { return false; }
    virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out);

    // --- reductions over the last dim of x: (N, R) -> (N) ---
    virtual void reduce_rows(ReduceOp op, const Tensor& x, Tensor& out);
    // --- reductions over the middle dim of x: (A, R, C) -> (A, C), e.g. a bias gradient summed
    //     over the leading dims without a transposing copy. The default permutes R last
    //     (a contiguous copy) and calls reduce_rows. ---
    virtual void reduce_cols(ReduceOp op, const Tensor& x, Tensor& out);
    virtual void argmax_rows(const Tensor& x, Tensor& out_i64);
    // inclusive cumulative sum along rows: (N, R) -> (N, R); reverse sums from the end
    virtual void cumsum_rows(const Tensor& x, Tensor& out, bool reverse);
    // stable sort of each row; indices are I64
    virtual void sort_rows(const Tensor& x, Tensor& values, Tensor& indices, bool descending);

    // --- matmul: a (batch, M, K) or (batch, K, M) if trans_a; b (batch, K, N) or (batch, N, K)
    //     if trans_b; out (batch, M, N). out = a @ b. ---
    virtual void matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b);
    // --- linear: x (M, K) @ w (N, K)^T + bias (N) -> out (M, N); bias may be undefined. The
    //     default is matmul then an in-place broadcast add; a backend may add the bias inside
    //     its GEMM (one pass over out instead of two). ---
    virtual void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out);
    // --- linear_weight_grad: linear's weight and bias gradients, gw (N, K) = g (M, N)^T @
    //     x (M, K) and gb (N) = the column sums of g (gb may be undefined); all contiguous,
    //     M, N, K > 0. The default is matmul then reduce_cols; a backend may sum gb inside its
    //     GEMM (one pass over g instead of two). ---
    virtual void linear_weight_grad(const Tensor& g, const Tensor& x, Tensor& gw, Tensor& gb);

    // --- fused nn kernels, rows of x are (N, C) ---
    virtual void softmax_rows(const Tensor& x, Tensor& out, bool log);
    // gx = y * (gy - sum(gy * y)) for softmax; gx = gy - exp(y) * sum(gy) for log_softmax
    virtual void softmax_rows_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log);
    virtual void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& out,
                            Tensor& mean, Tensor& rstd, double eps);
    virtual void layer_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& w,
                                     const Tensor& mean, const Tensor& rstd, Tensor& gx,
                                     Tensor& gw, Tensor& gb);
    // losses[n] = logsumexp(logits[n]) - logits[n, target[n]]; lse saved; target I64;
    // rows whose target equals ignore_index get loss 0.
    virtual void cross_entropy(const Tensor& logits, const Tensor& target, Tensor& losses,
                               Tensor& lse, int64_t ignore_index);
    // glogits[n] = grad_losses[n] * (softmax(logits[n]) - onehot(target[n]))
    virtual void cross_entropy_backward(const Tensor& logits, const Tensor& target,
                                        const Tensor& lse, const Tensor& grad_losses,
                                        Tensor& glogits, int64_t ignore_index);

    // --- indexing. x viewed as (outer, n, inner) around the indexed dim; index I64 ---
    // out (outer, len(index), inner) = x[:, index, :]
    virtual void index_select(const Tensor& x, const Tensor& index, Tensor& out,
                              int64_t outer, int64_t n, int64_t inner);
    // gx (outer, n, inner) += g (outer, len(index), inner) scattered by index, deterministic
    virtual void index_add(const Tensor& g, const Tensor& index, Tensor& gx,
                           int64_t outer, int64_t n, int64_t inner);
    // out (outer, m, inner)[o, j, i] = x (outer, n, inner)[o, index[o, j, i], i]
    virtual void gather(const Tensor& x, const Tensor& index, Tensor& out,
                        int64_t outer, int64_t n, int64_t m, int64_t inner);
    // gx[o, index[o, j, i], i] += g[o, j, i], deterministic
    virtual void scatter_add(const Tensor& g, const Tensor& index, Tensor& gx,
                             int64_t outer, int64_t n, int64_t m, int64_t inner);

    // --- randomness: out[i] = 1/(1-p) if keep else 0, keep iff uniform(seed, offset+i) >= p
    virtual void dropout_mask(Tensor& out, double p, uint64_t seed, uint64_t offset);

    // --- optimizer: one AdamW step over contiguous F32 param/grad/m/v of the same size, in place,
    //     with torch.optim.AdamW's operations in its order (so results agree to the last bits):
    //     p = p * decay;  m = m * b1 + (1 - b1) * g;  v = v * b2 + ((1 - b2) * g) * g;
    //     p = p + (-step_size * m) / (sqrt(v) / bc2_sqrt + eps)
    //     with decay = 1 - lr wd, step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t) ---
    virtual void adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWScalars& s);

    // --- ListMLE: x (N, B) scores, order (N, B) I64 (each row a permutation: order[n, k] is the
    //     column ranked k-th), w (B) position weights of x's dtype or undefined (all 1).
    //     Forward, per row with u_k = x[order[k]] - max: suffix[n, k] = sum_{j>=k} exp(u_j) (Acc
    //     dtype, saved), losses[n] = sum_k w_k (log(suffix_k + eps) - u_k), maxpos[n] = the first
    //     sorted position holding the row's maximum (I64, saved: the max's gradient goes there).
    virtual void list_mle(const Tensor& x, const Tensor& order, const Tensor& w, Tensor& losses,
                          Tensor& maxpos, Tensor& suffix, double eps);
    //     Backward: gx (N, B), every element written:
    //     du_k = g (exp(u_k) sum_{j<=k} w_j / (suffix_j + eps) - w_k); gx[order[k]] = du_k;
    //     gx[order[maxpos]] -= sum_k du_k (through the subtracted max). ---
    virtual void list_mle_backward(const Tensor& x, const Tensor& order, const Tensor& w,
                                   const Tensor& maxpos, const Tensor& suffix, const Tensor& grad_losses,
                                   Tensor& gx, double eps);

    // --- attention: q (B, H, Tq, D), k, v (B, H, Tk, D) -> out (B, H, Tq, D), lse (B, H, Tq)
    //     (contiguous, Acc dtype: float for F32/BF16, double for F64). q, k, v, out, and in the
    //     backward gout, gq, gk, gv, are strided: any strides for B, H, T (q, k, v, gout may
    //     repeat rows: stride 0) and unit stride along D — the heads of a packed (B, T, 3, H, D)
    //     projection, an output laid out as (B, T, H, D). Outputs do not overlap; the kernels
    //     write every element of them.
    //     Causal: query i sees keys j <= i (top-left aligned); a query that sees no key (Tk = 0)
    //     gets out 0, lse -inf.
    //     forward:  S = scale Q K^T, P = softmax(S), O = P V, lse = logsumexp(S) per row
    //     backward: dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)), dQ = scale dS K,
    //               dK = scale dS^T Q ---
    virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                           Tensor& lse, bool causal, double scale);
    virtual void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& out, const Tensor& lse, const Tensor& gout,
                                    Tensor& gq, Tensor& gk, Tensor& gv, bool causal, double scale);

protected:
    [[noreturn]] void missing(const char* op, const Tensor& t) const;
};

// The backend of a device; an Error when no backend of its type is registered (a CPU-only build)
// or the machine has none of its devices (device_count() == 0).
Backend& backend_for(Device device);
// Called by a backend other than the CPU's to make itself known, once, before main (from a
// static initialiser: it must only store the pointer, not touch the device). The backend lives
// for the whole process.
void register_backend(DeviceType type, Backend* backend);
// Whether tensors can live on devices of this type here: CPU always; another type when its
// backend is registered and sees at least one device.
bool has_backend(DeviceType type);

}  // namespace rankclip
