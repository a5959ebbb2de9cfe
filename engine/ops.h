// engine/ops.h
// defines: every differentiable op of the engine, as free functions on Tensors, and the
// creation functions. Each op is implemented in engine/ops/<group>.cpp with its backward next
// to its forward; fused ops (layer_norm, cross_entropy, attention) also keep their composite
// reference (`*_composite`), built from primitive ops, which the tests compare them against.
// Broadcasting follows NumPy rules in every binary op (broadcast_shapes in shape.h).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/tensor.h"

namespace rankclip {

class Generator;

// ---- creation (engine/ops/creation.cpp) ----
Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::cpu());
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::F32,
              Device device = Device::cpu());
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor scalar_tensor(double value, DType dtype = DType::F32, Device device = Device::cpu());
// From host values; values.size() must equal numel(shape).
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, DType dtype,
                   Device device = Device::cpu());
Tensor from_vector(const std::vector<float>& values, const Shape& shape);

// ---- random (engine/ops/creation.cpp; the generator is engine/random.h) ----
// Same values as torch.randn / torch.rand / torch.randint after torch.manual_seed(seed).
Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::F32, Device device = Device::cpu());
Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::F32, Device device = Device::cpu());
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen,
               DType dtype = DType::I64, Device device = Device::cpu());
Tensor randperm(int64_t n, Generator& gen, Device device = Device::cpu());

// ---- elementwise (engine/ops/elementwise.cpp) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor affine(const Tensor& x, double scale, double shift);  // x * scale + shift
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor abs(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
Tensor quick_gelu(const Tensor& x);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor clamp_min(const Tensor& x, double lo);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor cast(const Tensor& x, DType dtype);  // differentiable; same as x.to(dtype)
// comparisons: 1 where true else 0, in a's dtype; never differentiable
Tensor eq(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

// ---- reductions (engine/ops/reduce.cpp); dims may be negative; empty dims = all ----
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// amax: gradient split evenly between equal maxima (as torch.amax)
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// max over one dim: values (gradient to the first maximal index, as torch.max(dim)) and indices
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Sums a broadcast gradient back to `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra (engine/ops/matmul.cpp) ----
// 1-D/2-D/batched with broadcast batch dims, as torch.matmul.
Tensor matmul(const Tensor& a, const Tensor& b);
// (engine/ops/linear.cpp) torch.nn.functional.linear: x (..., in) @ weight (out, in)^T + bias
// (out; may be undefined), with the bias added inside the GEMM; linear_composite is matmul + add.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
Tensor linear_composite(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- shape ops (engine/ops/shape_ops.cpp) ----
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
Tensor flip(const Tensor& x, const std::vector<int64_t>& dims);
Tensor cumsum(const Tensor& x, int64_t dim, bool reverse = false);

// ---- indexing (engine/ops/indexing.cpp); index tensors are I64 or I32 ----
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor embedding(const Tensor& weight, const Tensor& ids);  // weight (V, C), ids (...) -> (..., C)
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// values are differentiable through the permutation, indices (I64) are not; stable
std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);

// ---- nn (engine/ops/softmax.cpp, layer_norm.cpp, cross_entropy.cpp, attention.cpp, ...) ----
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
Tensor softmax_composite(const Tensor& x, int64_t dim);
Tensor log_softmax_composite(const Tensor& x, int64_t dim);
// over the last dim; w, b: (C) or undefined
Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps = 1e-5);
Tensor layer_norm_composite(const Tensor& x, const Tensor& w, const Tensor& b, double eps = 1e-5);
enum class Reduction { None, Mean, Sum };
// logits (N, C), target (N) integer class ids; mean over non-ignored rows, as torch
Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::Mean,
                     int64_t ignore_index = -100);
Tensor cross_entropy_composite(const Tensor& logits, const Tensor& target,
                               Reduction reduction = Reduction::Mean, int64_t ignore_index = -100);
// x / max(||x||_2, eps) along dim, as torch.nn.functional.normalize
Tensor l2_normalize(const Tensor& x, int64_t dim = -1, double eps = 1e-12);
// Inverted dropout; identity when !training or p == 0. The mask comes from a counter-based
// generator keyed by (seed, offset) drawn from `gen`, so CPU and CUDA give the same mask.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);
// q (B, H, Tq, D), k, v (B, H, Tk, D) -> (B, H, Tq, D); scale defaults to 1/sqrt(D) when <= 0.
// q, k, v may be strided views (no copy when the last dim has unit stride); the output is laid
// out as (B, Tq, H, D), so permute({0, 2, 1, 3}) then reshape({B, Tq, H D}) is a view.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    bool causal = false, double scale = -1.0);
Tensor attention_composite(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = false,
                           double scale = -1.0);
// Self-attention over a packed projection: qkv (B, T, 3W) holds per token q | k | v, each
// W = heads x D wide with the heads side by side (torch's in_proj layout) -> (B, T, W), heads side
// by side. Equals self_attention_composite (head-split views of qkv, scaled_dot_product_attention,
// heads merged back) without a copy: the kernels read q, k, v inside qkv, write (B, T, W), and the
// backward writes the (B, T, 3W) gradient in one buffer.
Tensor self_attention(const Tensor& qkv, int64_t heads, bool causal = false, double scale = -1.0);
Tensor self_attention_composite(const Tensor& qkv, int64_t heads, bool causal = false, double scale = -1.0);

// ListMLE (the Plackett-Luce negative log-likelihood) of each row of `scores` (N, B) under the
// ranking `order` (N, B) I64: order[n, k] is the column ranked k-th for row n (a permutation of
// 0..B-1). Per row, with x sorted by order, m = max(x) and u = x - m:
//     loss[n] = sum_k  w_k * ( log(sum_{j>=k} exp(u_j) + eps) - u_k )
// in log space, exactly the RankCLIP release's formula (eps 1e-10 inside the log). w (B) are
// optional position weights (undefined: all 1). Returns (N); only `scores` gets a gradient.
// Fused: one O(B) pass for the forward and one for the analytic backward per row.
Tensor list_mle(const Tensor& scores, const Tensor& order, const Tensor& position_weights = Tensor(),
                double eps = 1e-10);
Tensor list_mle_composite(const Tensor& scores, const Tensor& order, const Tensor& position_weights = Tensor(),
                          double eps = 1e-10);

// ---- optimizer kernels (engine/ops/optim.cpp); in place, never recorded ----
struct AdamWHyper {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};
// One fused AdamW step (torch.optim.AdamW's update) over contiguous F32 tensors of one shape,
// typically flat slabs holding every parameter; step counts from 1.
void adamw_step_(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWHyper& hyper, int64_t step);
// sqrt(sum of squares of every element of every tensor), 0-d (F64 if any input is, else F32);
// deterministic. For gradient clipping.
Tensor global_norm(const std::vector<Tensor>& tensors);

// ---- runtime settings (engine/parallel.cpp) ----
// Number of CPU threads for kernels; default from RANKCLIP_THREADS, else all cores.
void set_num_threads(int n);
int get_num_threads();
// For a program's main(), first thing: restarts the program once with GOMP_SPINCOUNT=3000 in
// its environment unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is already set (see parallel.cpp
// for why and the measurements). Returns only when nothing needs to change or exec fails.
void use_short_openmp_spin(char** argv);

}  // namespace rankclip
