// tests/test_linear.cpp
// tests: the fused linear op (GEMM with the bias added inside it) against its composite
// (matmul + add), forward and gradients, in F64 and F32, with and without bias, on 2-D and 3-D
// inputs and a non-contiguous input; empty inner (K = 0) and outer dimensions; the F64 gradient
// check; bf16 under autocast against the composite on bf16-rounded inputs; the bf16 output and
// weight and bias gradients (the CPU's inner-product path) against F64 and against the backend's
// default paths (matmul + add, matmul + reduce_cols); the fp32 weight and bias gradients on both
// of the CPU's paths (inner product, matmul) against F64; the CPU GEMMs giving the same bits twice
// (oneDNN, F32 and BF16); and the errors bad shapes raise.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "engine/autocast.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "tests/test_util.h"

using namespace rankclip;
using namespace rankclip::test;

namespace {

Tensor linear_of(const std::vector<Tensor>& in) { return linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor()); }
Tensor composite_of(const std::vector<Tensor>& in) {
    return linear_composite(in[0], in[1], in.size() > 2 ? in[2] : Tensor());
}

std::vector<Tensor> cases_inputs(const Shape& x_shape, int64_t out_features, bool bias, uint64_t seed) {
    std::vector<Tensor> in{randn64(x_shape, seed), randn64({out_features, x_shape.back()}, seed + 1)};
    if (bias) in.push_back(randn64({out_features}, seed + 2));
    return in;
}

std::vector<Tensor> as_f32(const std::vector<Tensor>& in) {
    std::vector<Tensor> out;
    for (const Tensor& t : in) out.push_back(t.to(DType::F32));
    return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    Tensor x = a.contiguous(), y = b.contiguous();
    return x.shape() == y.shape() && x.dtype() == y.dtype() &&
           std::memcmp(x.raw_data(), y.raw_data(), size_t(x.numel()) * dtype_size(x.dtype())) == 0;
}

}  // namespace

TEST(Linear, FusedMatchesCompositeForwardAndBackward) {
    struct Case {
        Shape x;
        int64_t out;
        bool bias;
    };
    for (const Case& c : {Case{{1, 1}, 1, true}, Case{{3, 7}, 5, true}, Case{{3, 7}, 5, false},
                          Case{{2, 5, 7}, 9, true}, Case{{4, 33}, 17, true}, Case{{65, 128}, 384, true}}) {
        SCOPED_TRACE(shape_str(c.x) + " -> " + std::to_string(c.out) + (c.bias ? " with bias" : " no bias"));
        std::vector<Tensor> in = cases_inputs(c.x, c.out, c.bias, 3);
        expect_close(linear_of(in), composite_of(in), 1e-12, 1e-12, "F64 forward");
        expect_gradients_match(linear_of, composite_of, in, 1e-10, 1e-12);
        std::vector<Tensor> in32 = as_f32(in);
        Tensor out32 = linear_of(in32);
        EXPECT_EQ(out32.dtype(), DType::F32);
        expect_close(out32.to(DType::F64), composite_of(in), 1e-5, 1e-5, "F32 forward vs F64");
        expect_gradients_match(linear_of, composite_of, in32, 1e-4, 1e-5);
    }
}

TEST(Linear, NonContiguousInput) {
    Tensor x = randn64({7, 3}, 5).t();  // (3, 7) transposed view
    Tensor w = randn64({4, 7}, 6), b = randn64({4}, 7);
    expect_close(linear(x, w, b), linear_composite(x, w, b), 1e-12, 1e-12);
    expect_close(linear(x.to(DType::F32), w.to(DType::F32), b.to(DType::F32)).to(DType::F64),
                 linear_composite(x, w, b), 1e-5, 1e-5);
}

// As in torch: no input features (K = 0) gives the bias on every row, and no output features an
// empty output; the gradients have the inputs' shapes.
TEST(Linear, EmptyInnerOrOuterDimension) {
    std::vector<Tensor> in = cases_inputs({2, 3, 0}, 4, true, 21);
    for (Tensor& t : in) t.set_requires_grad(true);
    Tensor out = linear_of(in);
    ASSERT_EQ(out.shape(), (Shape{2, 3, 4}));
    expect_close(out, in[2].detach().reshape({1, 1, 4}).expand({2, 3, 4}).contiguous(), 0, 0);
    sum(out).backward();
    EXPECT_EQ(in[0].grad().shape(), (Shape{2, 3, 0}));
    EXPECT_EQ(in[1].grad().shape(), (Shape{4, 0}));
    expect_close(in[2].grad(), full({4}, 6.0, DType::F64), 0, 0);  // 2 x 3 rows

    std::vector<Tensor> none = cases_inputs({5, 3}, 0, true, 22);
    EXPECT_EQ(linear_of(none).shape(), (Shape{5, 0}));
}

TEST(Linear, GradCheck) {
    gradcheck(linear_of, cases_inputs({2, 3, 4}, 5, true, 11));
    gradcheck(linear_of, cases_inputs({3, 4}, 2, false, 12));
}

TEST(Linear, Bf16UnderAutocastMatchesTheCompositeOnRoundedInputs) {
    std::vector<Tensor> in = as_f32(cases_inputs({2, 65, 128}, 96, true, 21));
    Tensor out;
    {
        AutocastGuard autocast(Device::cpu());
        out = linear_of(in);
    }
    EXPECT_EQ(out.dtype(), DType::BF16);
    // the reference: the same inputs rounded to bf16, computed in F64; bf16 output rounding
    // (2^-8 relative) plus fp32 accumulation order
    std::vector<Tensor> rounded;
    for (const Tensor& t : in) rounded.push_back(t.to(DType::BF16).to(DType::F64));
    expect_close(out.to(DType::F64), composite_of(rounded), 1.0 / 128, 1e-2, "bf16 linear");
}

// A bf16 linear layer's output and its weight and bias gradients, dW = g^T x and db = g's column
// sums, on shapes whose sizes are not multiples of any tile, against F64 on the same bf16 values.
// The CPU runs both on oneDNN's inner product where it has no AMX (engine/cpu/cpu_matmul.cpp).
TEST(Linear, Bf16ForwardAndParameterGradientsMatchF64) {
    struct Case {
        int64_t M, N, K;
        bool bias;
    };
    for (const Case& c : {Case{1, 1, 1, true}, Case{13, 17, 19, true}, Case{257, 33, 70, false},
                          Case{130, 96, 128, true}, Case{2049, 40, 24, true}}) {
        SCOPED_TRACE(std::to_string(c.M) + "x" + std::to_string(c.N) + "x" + std::to_string(c.K));
        std::vector<Tensor> in = cases_inputs({c.M, c.K}, c.N, c.bias, 41);
        for (Tensor& t : in) t = t.to(DType::BF16).set_requires_grad(true);
        Tensor g = randn64({c.M, c.N}, 45).to(DType::BF16);
        Tensor y = linear_of(in);
        sum(y * g).backward();  // the output's gradient is g, exactly
        Tensor x64 = in[0].detach().to(DType::F64), g64 = g.to(DType::F64);
        std::vector<Tensor> in64;
        for (const Tensor& t : in) in64.push_back(t.detach().to(DType::F64));
        ASSERT_EQ(y.dtype(), DType::BF16);
        expect_close(y.to(DType::F64), composite_of(in64), 1.0 / 128, 1e-5 * double(c.K), "y");
        ASSERT_EQ(in[1].grad().dtype(), DType::BF16);
        // bf16 output rounding (2^-8 relative) after M-long fp32 sums of unit-scale products
        const double atol = 1e-5 * double(c.M);
        expect_close(in[1].grad().to(DType::F64), matmul(g64.t(), x64), 1.0 / 128, atol, "dW");
        if (c.bias) expect_close(in[2].grad().to(DType::F64), sum_to(g64, {c.N}), 1.0 / 128, atol, "db");
    }
}

// The CPU backend's bf16 linear and linear_weight_grad against Backend's defaults (the matmul
// with the transposes as flags, then the bias as a broadcast add, or reduce_cols), on the same
// bf16 inputs: both round fp32 sums once. Each twice: the same bits.
TEST(Linear, CpuBf16LinearMatchesTheDefaultPath) {
    Backend& cpu = backend_for(Device::cpu());
    auto bf16_empty = [](const Shape& shape, bool defined = true) {
        return defined ? empty(shape, DType::BF16) : Tensor();
    };
    for (bool bias : {true, false}) {
        Tensor x = randn64({4160, 96}, 53).to(DType::BF16), w = randn64({256, 96}, 54).to(DType::BF16);
        Tensor b = bias ? randn64({256}, 55).to(DType::BF16) : Tensor();
        Tensor y = bf16_empty({4160, 256}), y_default = bf16_empty({4160, 256}), y_again = bf16_empty({4160, 256});
        cpu.linear(x, w, b, y);
        cpu.Backend::linear(x, w, b, y_default);
        cpu.linear(x, w, b, y_again);
        expect_close(y.to(DType::F64), y_default.to(DType::F64), 1.0 / 128, 1e-2, "y");
        EXPECT_TRUE(same_bits(y, y_again)) << "y twice";
    }
    for (bool bias : {true, false}) {
        Tensor g = randn64({4160, 256}, 51).to(DType::BF16), x = randn64({4160, 96}, 52).to(DType::BF16);
        Tensor gw = bf16_empty({256, 96}), gw_default = bf16_empty({256, 96}), gw_again = bf16_empty({256, 96});
        Tensor gb = bf16_empty({256}, bias), gb_default = bf16_empty({256}, bias), gb_again = bf16_empty({256}, bias);
        cpu.linear_weight_grad(g, x, gw, gb);
        cpu.Backend::linear_weight_grad(g, x, gw_default, gb_default);
        expect_close(gw.to(DType::F64), gw_default.to(DType::F64), 1.0 / 128, 1e-2, "dW");
        if (bias) expect_close(gb.to(DType::F64), gb_default.to(DType::F64), 1.0 / 128, 1e-2, "db");
        cpu.linear_weight_grad(g, x, gw_again, gb_again);
        EXPECT_TRUE(same_bits(gw, gw_again)) << "dW twice";
        if (bias) EXPECT_TRUE(same_bits(gb, gb_again)) << "db twice";
    }
}

// The CPU backend's fp32 weight and bias gradients on both of its paths (the inner product's
// backward weights where gw has no more rows than columns, the matmul + reduce_cols elsewhere)
// against F64 and against Backend's default path, on odd shapes; each twice: the same bits.
TEST(Linear, CpuF32WeightGradientsMatchF64OnBothPaths) {
    Backend& cpu = backend_for(Device::cpu());
    struct Case {
        int64_t M, N, K;
    };
    for (const Case& c : {Case{1, 1, 1}, Case{8320, 128, 512}, Case{4161, 33, 70}, Case{257, 70, 33},
                          Case{130, 96, 96}, Case{2049, 17, 300}}) {
        for (bool bias : {true, false}) {
            SCOPED_TRACE(std::to_string(c.M) + "x" + std::to_string(c.N) + "x" + std::to_string(c.K) +
                         (bias ? " bias" : ""));
            Tensor g64 = randn64({c.M, c.N}, 61), x64 = randn64({c.M, c.K}, 62);
            Tensor g = g64.to(DType::F32), x = x64.to(DType::F32);
            auto grads = [&](bool default_path) {
                Tensor gw = empty({c.N, c.K}), gb = bias ? empty({c.N}) : Tensor();
                if (default_path) cpu.Backend::linear_weight_grad(g, x, gw, gb);
                else cpu.linear_weight_grad(g, x, gw, gb);
                return std::make_pair(gw, gb);
            };
            auto [gw, gb] = grads(false);
            auto [gw_default, gb_default] = grads(true);
            auto [gw_again, gb_again] = grads(false);
            // fp32 sums of M unit-scale products: errors grow like sqrt(M) ulps of the sum's size
            const double atol = 1e-5 * std::sqrt(double(c.M));
            expect_close(gw.to(DType::F64), matmul(g64.t(), x64), 1e-5, atol, "dW");
            expect_close(gw.to(DType::F64), gw_default.to(DType::F64), 1e-5, atol, "dW against the default path");
            EXPECT_TRUE(same_bits(gw, gw_again)) << "dW twice";
            if (bias) {
                expect_close(gb.to(DType::F64), sum_to(g64, {c.N}), 1e-5, atol, "db");
                EXPECT_TRUE(same_bits(gb, gb_again)) << "db twice";
            }
        }
    }
}

TEST(Linear, CpuGemmGivesTheSameBitsTwice) {
    for (DType dtype : {DType::F32, DType::BF16}) {
        Tensor x = randn64({520, 128}, 31).to(dtype), w = randn64({384, 128}, 32).to(dtype);
        Tensor b = randn64({384}, 33).to(dtype);
        EXPECT_TRUE(same_bits(linear(x, w, b), linear(x, w, b))) << dtype_name(dtype) << " linear";
        Tensor g = randn64({520, 384}, 34).to(dtype);
        EXPECT_TRUE(same_bits(matmul(g.t(), x), matmul(g.t(), x))) << dtype_name(dtype) << " weight gradient";
    }
}

TEST(Linear, BadShapesAreErrors) {
    Tensor x = randn64({3, 4}, 1), w = randn64({5, 4}, 2);
    EXPECT_NE(error_of([&] { linear(x, randn64({5, 3}, 3)); }).find("linear: input"), std::string::npos);
    EXPECT_NE(error_of([&] { linear(x, w, randn64({4}, 3)); }).find("linear: bias"), std::string::npos);
    EXPECT_NE(error_of([&] { linear(x.to(DType::F32), w); }).find("linear: needs one floating dtype"),
              std::string::npos);
}
