// tests/test_fused_ops.cpp
// tests: the fused ops against their composites built from primitive ops — layer_norm,
// softmax / log_softmax, cross_entropy, scaled_dot_product_attention — forward (to ~1e-12 in
// F64, ~1e-5 in F32) and gradients (expect_gradients_match), on odd shapes, size-1 dims and
// non-contiguous inputs; a few values known by hand; and the errors bad arguments raise.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "tests/test_util.h"

using namespace rankclip;
using rankclip::test::expect_close;
using rankclip::test::expect_gradients_match;
using rankclip::test::randn64;

namespace {

using Inputs = const std::vector<Tensor>&;
using Fn = std::function<Tensor(Inputs)>;

constexpr double kRtol64 = 1e-12, kAtol64 = 1e-12;
constexpr double kRtol32 = 1e-5, kAtol32 = 1e-5;

Tensor f64(const std::vector<double>& values, const Shape& shape) { return from_vector(values, shape, DType::F64); }
Tensor i64(const std::vector<int64_t>& values, const Shape& shape) { return from_vector(values, shape, DType::I64); }

std::vector<Tensor> to_dtype(const std::vector<Tensor>& in, DType dtype) {
    std::vector<Tensor> out;
    for (const Tensor& t : in) out.push_back(t.defined() && is_floating(t.dtype()) ? t.to(dtype) : t);
    return out;
}

// Fused and composite agree in F64 (forward ~1e-12, gradients ~1e-10) and in F32 (forward
// ~1e-5 against both the F32 composite and the F64 result, gradients ~1e-4).
void expect_fused_matches(const Fn& fused, const Fn& composite, const std::vector<Tensor>& inputs64,
                          const std::string& what) {
    SCOPED_TRACE(what);
    Tensor ref = composite(inputs64);
    expect_close(fused(inputs64), ref, kRtol64, kAtol64, what + " F64 forward");
    expect_gradients_match(fused, composite, inputs64, 1e-10, 1e-12);

    std::vector<Tensor> inputs32 = to_dtype(inputs64, DType::F32);
    Tensor out32 = fused(inputs32);
    EXPECT_EQ(out32.dtype(), DType::F32);
    expect_close(out32, composite(inputs32), kRtol32, kAtol32, what + " F32 forward vs F32 composite");
    expect_close(out32.to(DType::F64), ref, kRtol32, kAtol32, what + " F32 forward vs F64");
    expect_gradients_match(fused, composite, inputs32, 1e-4, 1e-5);
}

// f() throws rankclip::Error whose message names `op`.
void expect_error(const std::function<void()>& f, const std::string& op) {
    EXPECT_THROW(f(), Error) << op;
    try {
        f();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(op), std::string::npos) << "message does not name " << op << ": "
                                                                    << e.what();
    }
}

}  // namespace

// ---------------------------------------------------------------- layer_norm

TEST(FusedLayerNorm, MatchesComposite) {
    auto fused = [](Inputs in) { return layer_norm(in[0], in[1], in[2]); };
    auto comp = [](Inputs in) { return layer_norm_composite(in[0], in[1], in[2]); };
    for (const Shape& shape : {Shape{3, 5}, Shape{2, 3, 7}, Shape{7}, Shape{4, 1}, Shape{1, 1}, Shape{1, 9}}) {
        int64_t C = shape.back();
        expect_fused_matches(fused, comp, {randn64(shape, 1), randn64({C}, 2), randn64({C}, 3)},
                             "layer_norm " + shape_str(shape));
    }
}

TEST(FusedLayerNorm, WithoutWeightOrBias) {
    auto no_affine = [](Inputs in) { return layer_norm(in[0], Tensor(), Tensor()); };
    auto no_affine_c = [](Inputs in) { return layer_norm_composite(in[0], Tensor(), Tensor()); };
    expect_fused_matches(no_affine, no_affine_c, {randn64({5, 6}, 4)}, "layer_norm no w, b");
    auto w_only = [](Inputs in) { return layer_norm(in[0], in[1], Tensor()); };
    auto w_only_c = [](Inputs in) { return layer_norm_composite(in[0], in[1], Tensor()); };
    expect_fused_matches(w_only, w_only_c, {randn64({3, 4}, 5), randn64({4}, 6)}, "layer_norm w only");
    auto b_only = [](Inputs in) { return layer_norm(in[0], Tensor(), in[1]); };
    auto b_only_c = [](Inputs in) { return layer_norm_composite(in[0], Tensor(), in[1]); };
    expect_fused_matches(b_only, b_only_c, {randn64({3, 4}, 7), randn64({4}, 8)}, "layer_norm b only");
}

TEST(FusedLayerNorm, NonContiguousInputAndLargeEps) {
    auto fused = [](Inputs in) { return layer_norm(in[0], in[1], in[2], 0.5); };
    auto comp = [](Inputs in) { return layer_norm_composite(in[0], in[1], in[2], 0.5); };
    expect_fused_matches(fused, comp, {randn64({6, 4}, 9).t(), randn64({6}, 10), randn64({6}, 11)},
                         "layer_norm transposed input");
    // an offset mean and a large scale: the variance is computed around the mean
    auto shifted = [](Inputs in) { return layer_norm(in[0] * 100.0 + 1000.0, in[1], in[2]); };
    auto shifted_c = [](Inputs in) { return layer_norm_composite(in[0] * 100.0 + 1000.0, in[1], in[2]); };
    Tensor x = randn64({3, 5}, 12);
    expect_close(shifted({x, randn64({5}, 13), randn64({5}, 14)}),
                 shifted_c({x, randn64({5}, 13), randn64({5}, 14)}), 1e-10, 1e-10, "layer_norm shifted");
}

TEST(FusedLayerNorm, KnownValues) {
    // [1, 2, 3]: mean 2, variance 2/3 => (x - 2) * sqrt(3/2); eps 0
    Tensor y = layer_norm(f64({1, 2, 3}, {3}), Tensor(), Tensor(), 0.0);
    double s = std::sqrt(1.5);
    expect_close(y, f64({-s, 0, s}, {3}), 1e-15, 1e-15, "layer_norm [1, 2, 3]");
    // a constant row normalises to 0, then the bias is all that is left
    Tensor row = layer_norm(full({2, 4}, 3.0, DType::F64), ones({4}, DType::F64), f64({1, 2, 3, 4}, {4}));
    expect_close(row, f64({1, 2, 3, 4}, {4}).expand({2, 4}).contiguous(), 0, 1e-15, "layer_norm constant row");
    // F32 statistics: [1, 2, 3] * w + b
    Tensor y32 = layer_norm(from_vector({1.f, 2.f, 3.f}, {3}), from_vector({2.f, 2.f, 2.f}, {3}),
                            from_vector({0.f, 1.f, 0.f}, {3}), 0.0);
    expect_close(y32, f64({-2 * s, 1, 2 * s}, {3}), 1e-6, 1e-6, "layer_norm F32 affine");
}

// ---------------------------------------------------------------- softmax / log_softmax

TEST(FusedSoftmax, MatchesComposite) {
    for (int64_t dim : {0, 1, -1}) {
        auto sm = [dim](Inputs in) { return softmax(in[0], dim); };
        auto sm_c = [dim](Inputs in) { return softmax_composite(in[0], dim); };
        auto lsm = [dim](Inputs in) { return log_softmax(in[0], dim); };
        auto lsm_c = [dim](Inputs in) { return log_softmax_composite(in[0], dim); };
        std::string d = " dim " + std::to_string(dim);
        expect_fused_matches(sm, sm_c, {randn64({3, 7}, 20)}, "softmax (3, 7)" + d);
        expect_fused_matches(lsm, lsm_c, {randn64({3, 7}, 21)}, "log_softmax (3, 7)" + d);
        expect_fused_matches(sm, sm_c, {randn64({2, 3, 5}, 22)}, "softmax (2, 3, 5)" + d);
        expect_fused_matches(lsm, lsm_c, {randn64({2, 3, 5}, 23)}, "log_softmax (2, 3, 5)" + d);
        expect_fused_matches(sm, sm_c, {randn64({5, 4}, 24).t()}, "softmax transposed" + d);
        expect_fused_matches(lsm, lsm_c, {randn64({1, 1}, 25)}, "log_softmax (1, 1)" + d);
    }
    auto sm0 = [](Inputs in) { return softmax(in[0], 0); };
    auto sm0_c = [](Inputs in) { return softmax_composite(in[0], 0); };
    expect_fused_matches(sm0, sm0_c, {randn64({9}, 26)}, "softmax 1-D");
}

TEST(FusedSoftmax, LargeAndInfiniteLogits) {
    // large values: both shift by the row max, so nothing overflows
    Tensor big = randn64({3, 5}, 27) * 500.0 + 1e4;
    expect_close(softmax(big, 1), softmax_composite(big, 1), 1e-12, 1e-12, "softmax large");
    expect_close(log_softmax(big, 1), log_softmax_composite(big, 1), 1e-12, 1e-9, "log_softmax large");
    // -inf entries get probability 0 (a masked score)
    Tensor masked = f64({0.5, -INFINITY, 1.5, -INFINITY, 2.0, 0.0}, {2, 3});
    expect_close(softmax(masked, 1), softmax_composite(masked, 1), 1e-12, 1e-12, "softmax masked");
    expect_close(log_softmax(masked, 1), log_softmax_composite(masked, 1), 1e-12, 1e-12, "log_softmax masked");
    auto p = softmax(masked, 1).to_vector<double>();
    EXPECT_EQ(p[1], 0.0);
    EXPECT_EQ(p[3], 0.0);
    for (auto v : softmax(big.to(DType::F32), 1).to_vector<double>()) EXPECT_TRUE(std::isfinite(v));
}

TEST(FusedSoftmax, KnownValues) {
    // equal values: uniform
    Tensor eq_rows = full({2, 4}, 3.25, DType::F64);
    expect_close(softmax(eq_rows, 1), full({2, 4}, 0.25, DType::F64), 1e-15, 0, "softmax of equal values");
    expect_close(log_softmax(eq_rows, 1), full({2, 4}, -std::log(4.0), DType::F64), 1e-15, 0,
                 "log_softmax of equal values");
    expect_close(softmax(full({5, 1}, -2.0), 0), full({5, 1}, 0.2), 1e-6, 0, "softmax F32 of equal values");
    // [0, log 2, log 3]: probabilities 1/6, 2/6, 3/6
    Tensor x = f64({0, std::log(2.0), std::log(3.0)}, {3});
    expect_close(softmax(x, 0), f64({1 / 6.0, 2 / 6.0, 3 / 6.0}, {3}), 1e-15, 0, "softmax [0, ln 2, ln 3]");
    // a single element is 1 (log 0); its gradient is 0
    Tensor one = f64({7.5}, {1}).set_requires_grad();
    Tensor y = softmax(one, 0);
    EXPECT_EQ(y.item(), 1.0);
    EXPECT_EQ(log_softmax(one.detach(), 0).item(), 0.0);
    sum(y * 3.0).backward();
    EXPECT_EQ(one.grad().item(), 0.0);
}

// ---------------------------------------------------------------- cross_entropy

TEST(FusedCrossEntropy, MatchesComposite) {
    Tensor target = i64({3, 0, 6, 6, 2}, {5});
    for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
        auto ce = [target, r](Inputs in) { return cross_entropy(in[0], target, r); };
        auto ce_c = [target, r](Inputs in) { return cross_entropy_composite(in[0], target, r); };
        std::string name = "cross_entropy reduction " + std::to_string(int(r));
        expect_fused_matches(ce, ce_c, {randn64({5, 7}, 30)}, name + " (5, 7)");
        expect_fused_matches(ce, ce_c, {randn64({7, 5}, 31).t()}, name + " transposed logits");
        expect_fused_matches(ce, ce_c, {randn64({5, 7}, 32) * 30.0}, name + " large logits");
    }
    Tensor single = i64({0}, {1});
    auto ce1 = [single](Inputs in) { return cross_entropy(in[0], single); };
    auto ce1_c = [single](Inputs in) { return cross_entropy_composite(in[0], single); };
    expect_fused_matches(ce1, ce1_c, {randn64({1, 1}, 33)}, "cross_entropy (1, 1)");
    expect_fused_matches(ce1, ce1_c, {randn64({1, 4}, 34)}, "cross_entropy (1, 4)");
}

TEST(FusedCrossEntropy, IgnoreIndex) {
    Tensor target = i64({1, -100, 2, -100, 0, 1}, {6});
    Tensor target32 = from_vector(std::vector<int32_t>{4, 0, 4, 1}, {4}, DType::I32);
    for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
        std::string name = "cross_entropy ignore reduction " + std::to_string(int(r));
        auto ce = [target, r](Inputs in) { return cross_entropy(in[0], target, r); };
        auto ce_c = [target, r](Inputs in) { return cross_entropy_composite(in[0], target, r); };
        expect_fused_matches(ce, ce_c, {randn64({6, 3}, 35)}, name + " -100");
        // ignore a real class id, with an I32 target
        auto ce4 = [target32, r](Inputs in) { return cross_entropy(in[0], target32, r, 4); };
        auto ce4_c = [target32, r](Inputs in) { return cross_entropy_composite(in[0], target32, r, 4); };
        expect_fused_matches(ce4, ce4_c, {randn64({4, 5}, 36)}, name + " class 4");
    }
    // mean = sum over the counted rows / their count; ignored rows: loss 0, gradient 0
    Tensor logits = randn64({6, 3}, 37).set_requires_grad();
    Tensor mean_loss = cross_entropy(logits, target);
    auto none = cross_entropy(logits.detach(), target, Reduction::None).to_vector<double>();
    EXPECT_EQ(none[1], 0.0);
    EXPECT_EQ(none[3], 0.0);
    EXPECT_NEAR(mean_loss.item(), (none[0] + none[2] + none[4] + none[5]) / 4.0, 1e-14);
    mean_loss.backward();
    auto g = logits.grad().to_vector<double>();
    for (int c = 0; c < 3; c++) {
        EXPECT_EQ(g[1 * 3 + c], 0.0);
        EXPECT_EQ(g[3 * 3 + c], 0.0);
    }
    // every row ignored: the mean is 0/0 = NaN (as torch), the sum is 0
    Tensor all_ignored = i64({-100, -100}, {2});
    EXPECT_TRUE(std::isnan(cross_entropy(randn64({2, 3}, 38), all_ignored).item()));
    EXPECT_TRUE(std::isnan(cross_entropy_composite(randn64({2, 3}, 38), all_ignored).item()));
    EXPECT_EQ(cross_entropy(randn64({2, 3}, 38), all_ignored, Reduction::Sum).item(), 0.0);
}

TEST(FusedCrossEntropy, KnownValues) {
    // all-zero logits: every class has probability 1/C, the loss is log C
    Tensor zeros_logits = zeros({3, 5}, DType::F64).set_requires_grad();
    Tensor target = i64({0, 4, 2}, {3});
    Tensor loss = cross_entropy(zeros_logits, target);
    EXPECT_NEAR(loss.item(), std::log(5.0), 1e-15);
    // its gradient: (softmax - onehot) / N = (1/5 - [c == t]) / 3
    loss.backward();
    std::vector<double> expected(15);
    std::vector<int64_t> t = {0, 4, 2};
    for (int n = 0; n < 3; n++)
        for (int c = 0; c < 5; c++) expected[n * 5 + c] = (0.2 - (c == t[n])) / 3.0;
    expect_close(zeros_logits.grad(), f64(expected, {3, 5}), 1e-14, 1e-16, "cross_entropy gradient");
    // a one-hot logit row [0, L, 0, 0] with the target on L: log(e^L + 3) - L
    double L = 4.0;
    Tensor one_hot = f64({0, L, 0, 0}, {1, 4});
    EXPECT_NEAR(cross_entropy(one_hot, i64({1}, {1})).item(), std::log(std::exp(L) + 3.0) - L, 1e-15);
    // ... and with the target on a 0: log(e^L + 3)
    EXPECT_NEAR(cross_entropy(one_hot, i64({2}, {1})).item(), std::log(std::exp(L) + 3.0), 1e-14);
    // F32 agrees
    EXPECT_NEAR(cross_entropy(one_hot.to(DType::F32), i64({1}, {1})).item(), std::log(std::exp(L) + 3.0) - L, 1e-6);
    // the sum of two rows is the sum of their losses
    Tensor two = f64({0, L, 0, 0, 0, 0, 0, 0}, {2, 4});
    EXPECT_NEAR(cross_entropy(two, i64({1, 3}, {2}), Reduction::Sum).item(),
                std::log(std::exp(L) + 3.0) - L + std::log(4.0), 1e-14);
}

// ---------------------------------------------------------------- attention

namespace {

void expect_attention_matches(const Shape& q_shape, const Shape& kv_shape, bool causal, double scale, uint64_t seed) {
    auto fused = [causal, scale](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2], causal, scale); };
    auto comp = [causal, scale](Inputs in) { return attention_composite(in[0], in[1], in[2], causal, scale); };
    expect_fused_matches(fused, comp, {randn64(q_shape, seed), randn64(kv_shape, seed + 1), randn64(kv_shape, seed + 2)},
                         "attention q " + shape_str(q_shape) + " kv " + shape_str(kv_shape) +
                             (causal ? " causal" : "") + " scale " + std::to_string(scale));
}

}  // namespace

TEST(FusedAttention, NonCausalMatchesComposite) {
    expect_attention_matches({2, 3, 5, 4}, {2, 3, 7, 4}, false, -1, 40);  // Tq != Tk
    expect_attention_matches({1, 2, 6, 3}, {1, 2, 2, 3}, false, -1, 43);  // Tq > Tk
    expect_attention_matches({1, 1, 1, 1}, {1, 1, 1, 1}, false, -1, 46);  // T = 1, D = 1
    expect_attention_matches({2, 1, 3, 1}, {2, 1, 5, 1}, false, -1, 49);  // D = 1
    expect_attention_matches({1, 2, 1, 5}, {1, 2, 4, 5}, false, -1, 52);  // Tq = 1
    expect_attention_matches({3, 1, 4, 2}, {3, 1, 4, 2}, false, 2.5, 55); // explicit scale
}

TEST(FusedAttention, CausalMatchesComposite) {
    expect_attention_matches({2, 3, 5, 4}, {2, 3, 5, 4}, true, -1, 60);
    expect_attention_matches({1, 1, 1, 1}, {1, 1, 1, 1}, true, -1, 63);
    expect_attention_matches({1, 2, 7, 1}, {1, 2, 7, 1}, true, -1, 66);
    expect_attention_matches({2, 2, 3, 5}, {2, 2, 3, 5}, true, 0.3, 69);
    // top-left aligned with Tq != Tk: query i sees keys j <= i
    expect_attention_matches({1, 2, 3, 2}, {1, 2, 5, 2}, true, -1, 72);
    expect_attention_matches({1, 1, 5, 2}, {1, 1, 3, 2}, true, -1, 75);
}

TEST(FusedAttention, NonContiguousInputs) {
    // head-split views of (B, T, H, D) projections
    for (bool causal : {false, true}) {
        auto fused = [causal](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2], causal); };
        auto comp = [causal](Inputs in) { return attention_composite(in[0], in[1], in[2], causal); };
        expect_fused_matches(fused, comp,
                             {randn64({2, 4, 3, 2}, 80).transpose(1, 2), randn64({2, 4, 3, 2}, 81).transpose(1, 2),
                              randn64({2, 4, 3, 4}, 82).narrow(3, 1, 2).transpose(1, 2)},
                             std::string("attention head-split views") + (causal ? " causal" : ""));
    }
}

TEST(FusedAttention, KnownValues) {
    // one key: every query attends to it fully, the output is v
    Tensor q = randn64({1, 2, 3, 4}, 90), k = randn64({1, 2, 1, 4}, 91), v = randn64({1, 2, 1, 4}, 92);
    expect_close(scaled_dot_product_attention(q, k, v), v.expand({1, 2, 3, 4}).contiguous(), 1e-15, 1e-15,
                 "attention with one key");
    // equal keys: uniform weights, the output is the mean of the values
    Tensor same_k = randn64({1, 1, 1, 3}, 93).expand({1, 1, 4, 3});
    Tensor vals = randn64({1, 1, 4, 3}, 94);
    Tensor out = scaled_dot_product_attention(randn64({1, 1, 2, 3}, 95), same_k, vals);
    expect_close(out, mean(vals, {2}, true).expand({1, 1, 2, 3}).contiguous(), 1e-14, 1e-14,
                 "attention with equal keys");
    // causal: the first query sees only the first key
    Tensor qc = randn64({1, 1, 3, 2}, 96), kc = randn64({1, 1, 3, 2}, 97), vc = randn64({1, 1, 3, 2}, 98);
    Tensor oc = scaled_dot_product_attention(qc, kc, vc, true);
    expect_close(oc.narrow(2, 0, 1), vc.narrow(2, 0, 1), 1e-15, 1e-15, "causal first query");
    // scale 0 is "use the default"; a tiny explicit scale makes the weights uniform
    Tensor tiny = scaled_dot_product_attention(qc, kc, vc, false, 1e-300);
    expect_close(tiny, mean(vc, {2}, true).expand({1, 1, 3, 2}).contiguous(), 1e-14, 1e-14, "tiny scale");
    expect_close(scaled_dot_product_attention(qc, kc, vc, false, 0.0),
                 scaled_dot_product_attention(qc, kc, vc, false, 1 / std::sqrt(2.0)), 1e-15, 0, "default scale");
}

// ---------------------------------------------------------------- other known values

TEST(FusedKnownValues, GeluAndQuickGelu) {
    Tensor x = f64({0, 1, -1, 10, -10}, {5});
    // Phi(1) = 0.841344746068543; gelu(x) = x Phi(x)
    expect_close(gelu(x), f64({0, 0.841344746068543, -0.158655253931457, 10, 0}, {5}), 1e-13, 1e-15, "gelu");
    double u = std::sqrt(2 / std::acos(-1.0)) * (1 + 0.044715);
    double gt1 = 0.5 * (1 + std::tanh(u));
    expect_close(gelu(x, true), f64({0, gt1, gt1 - 1, 10, 0}, {5}), 1e-13, 1e-15, "gelu tanh");
    double q1 = 1 / (1 + std::exp(-1.702));
    expect_close(quick_gelu(x), f64({0, q1, q1 - 1, 10 / (1 + std::exp(-17.02)), -10 / (1 + std::exp(17.02))}, {5}),
                 1e-13, 1e-15, "quick_gelu");
    // derivative at 0 is 1/2 for all three
    for (int variant = 0; variant < 3; variant++) {
        Tensor z = zeros({1}, DType::F64).set_requires_grad();
        Tensor y = variant == 0 ? gelu(z) : variant == 1 ? gelu(z, true) : quick_gelu(z);
        EXPECT_EQ(y.item(), 0.0);
        sum(y).backward();
        EXPECT_NEAR(z.grad().item(), 0.5, 1e-15) << "variant " << variant;
    }
}

TEST(FusedKnownValues, CumsumOfOnes) {
    Tensor x = ones({2, 5}, DType::F64);
    expect_close(cumsum(x, 1), f64({1, 2, 3, 4, 5, 1, 2, 3, 4, 5}, {2, 5}), 0, 0, "cumsum of ones");
    expect_close(cumsum(x, 1, true), f64({5, 4, 3, 2, 1, 5, 4, 3, 2, 1}, {2, 5}), 0, 0, "reverse cumsum of ones");
    expect_close(cumsum(x, 0), f64({1, 1, 1, 1, 1, 2, 2, 2, 2, 2}, {2, 5}), 0, 0, "cumsum of ones, dim 0");
    expect_close(cumsum(ones({4}), 0), from_vector({1.f, 2.f, 3.f, 4.f}, {4}), 0, 0, "cumsum F32");
}

TEST(FusedKnownValues, L2NormalizeAndLogsumexp) {
    Tensor x = f64({3, 4, 0, 0}, {2, 2});
    expect_close(l2_normalize(x), f64({0.6, 0.8, 0, 0}, {2, 2}), 1e-15, 0, "l2_normalize (zero row stays 0)");
    Tensor lse = logsumexp(f64({0, std::log(2.0), std::log(5.0)}, {3}), {0});
    EXPECT_NEAR(lse.item(), std::log(8.0), 1e-15);
    // all -inf: -inf, not NaN
    EXPECT_EQ(logsumexp(f64({-INFINITY, -INFINITY}, {2}), {0}).item(), -INFINITY);
}

// ---------------------------------------------------------------- errors

TEST(FusedErrors, Matmul) {
    expect_error([] { matmul(randn64({2, 3}, 1), randn64({4, 2}, 2)); }, "matmul");
    expect_error([] { matmul(randn64({3}, 1), randn64({4}, 2)); }, "matmul");
    expect_error([] { matmul(randn64({2, 2, 3}, 1), randn64({3, 3, 2}, 2)); }, "matmul");  // batch 2 vs 3
    expect_error([] { matmul(randn64({}, 1), randn64({3}, 2)); }, "matmul");
    expect_error([] { matmul(randn64({2, 3}, 1), randn64({3, 2}, 2).to(DType::F32)); }, "matmul");
}

TEST(FusedErrors, Cat) {
    expect_error([] { cat({randn64({2, 3}, 1), randn64({2, 4}, 2)}, 0); }, "cat");
    expect_error([] { cat({randn64({2, 3}, 1), randn64({2, 3, 1}, 2)}, 0); }, "cat");
    expect_error([] { cat({randn64({2, 3}, 1), randn64({2, 3}, 2).to(DType::F32)}, 0); }, "cat");
    expect_error([] { cat({randn64({2, 3}, 1)}, 2); }, "cat");
    expect_error([] { cat({}, 0); }, "cat");
    expect_error([] { stack({randn64({2, 3}, 1), randn64({3, 2}, 2)}, 0); }, "stack");
}

TEST(FusedErrors, LayerNorm) {
    expect_error([] { layer_norm(randn64({2, 3}, 1), randn64({4}, 2), Tensor()); }, "layer_norm");
    expect_error([] { layer_norm(randn64({2, 3}, 1), Tensor(), randn64({1, 3}, 2)); }, "layer_norm");
    expect_error([] { layer_norm(randn64({2, 3}, 1), randn64({3}, 2).to(DType::F32), Tensor()); }, "layer_norm");
    expect_error([] { layer_norm(randn64({}, 1), Tensor(), Tensor()); }, "layer_norm");
}

TEST(FusedErrors, CrossEntropy) {
    expect_error([] { cross_entropy(randn64({2, 3}, 1), i64({0, 3}, {2})); }, "cross_entropy");   // C = 3
    expect_error([] { cross_entropy(randn64({2, 3}, 1), i64({-1, 0}, {2})); }, "cross_entropy");  // negative
    expect_error([] { cross_entropy(randn64({2, 3}, 1).to(DType::F32), i64({0, 7}, {2})); }, "cross_entropy");
    expect_error([] { cross_entropy(randn64({2, 3}, 1), i64({0, 1, 2}, {3})); }, "cross_entropy");  // N mismatch
    expect_error([] { cross_entropy(randn64({3}, 1), i64({0}, {1})); }, "cross_entropy");           // 1-D logits
    expect_error([] { cross_entropy(randn64({2, 3}, 1), f64({0, 1}, {2})); }, "cross_entropy");     // float target
    expect_error([] { cross_entropy_composite(randn64({2, 3}, 1), i64({0, 1}, {1, 2})); }, "cross_entropy");
    // -100 is only skipped when it is the ignore_index
    expect_error([] { cross_entropy(randn64({2, 3}, 1), i64({-100, 0}, {2}), Reduction::Mean, 1); }, "cross_entropy");
}

TEST(FusedErrors, Attention) {
    Tensor q = randn64({1, 2, 3, 4}, 1), k = randn64({1, 2, 5, 4}, 2), v = randn64({1, 2, 5, 4}, 3);
    expect_error([&] { scaled_dot_product_attention(randn64({2, 3, 4}, 1), k, v); }, "attention");     // 3-D q
    expect_error([&] { scaled_dot_product_attention(q, k, randn64({1, 2, 4, 4}, 4)); }, "attention");  // Tk vs Tv
    expect_error([&] { scaled_dot_product_attention(q, randn64({1, 2, 5, 3}, 5), randn64({1, 2, 5, 3}, 6)); },
                 "attention");  // D differs
    expect_error([&] { scaled_dot_product_attention(q, randn64({1, 3, 5, 4}, 7), randn64({1, 3, 5, 4}, 8)); },
                 "attention");  // H differs
    expect_error([&] { scaled_dot_product_attention(q.to(DType::F32), k, v); }, "attention");
    expect_error([&] { attention_composite(randn64({2, 3, 4}, 1), k, v); }, "attention");
}
