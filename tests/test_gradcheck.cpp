// tests/test_gradcheck.cpp
// tests: the analytic gradient of every differentiable op of engine/ops.h and of every view of
// Tensor against F64 central differences (gradcheck in tests/test_util.h), on awkward shapes:
// odd sizes, size-1 dims, 0-d scalars, broadcasting between inputs and non-contiguous inputs
// (transposed / narrowed views). Inputs are kept away from points where an op is not
// differentiable (0 for abs/relu, clamp bounds, ties for max/sort). cast is checked
// analytically, since a round trip through F32 is not F64-exact.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "tests/test_util.h"

using namespace rankclip;
using rankclip::test::gradcheck;
using rankclip::test::randn64;

namespace {

using Inputs = const std::vector<Tensor>&;

// F64 tensor of `shape` from host values.
Tensor f64(const std::vector<double>& values, const Shape& shape) { return from_vector(values, shape, DType::F64); }

// Well-separated values: a random permutation of the half-integers * 0.25, plus noise of at
// most 0.02, so every value is >= 0.2 from every other and >= 0.1 from 0 and from every
// multiple of 0.25.
// Safe for max/sort (no ties), abs/relu (no zeros) and clamp at multiples of 0.25.
Tensor distinct(const Shape& shape, uint64_t seed) {
    Generator gen(seed);
    int64_t n = numel(shape);
    auto perm = randperm(n, gen).to_vector<int64_t>();
    auto noise = rand({n}, gen, DType::F64).to_vector<double>();
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) v[i] = (double(perm[i] - n / 2) + 0.5) * 0.25 + 0.04 * (noise[i] - 0.5);
    return f64(v, shape);
}

// Positive values in [0.5, ~3], for log / sqrt / rsqrt / fractional powers.
Tensor positive(const Shape& shape, uint64_t seed) {
    auto v = randn64(shape, seed).to_vector<double>();
    for (double& x : v) x = 0.5 + std::abs(x);
    return f64(v, shape);
}

// Values of either sign with |x| >= 0.5, for division and negative powers.
Tensor away_from_zero(const Shape& shape, uint64_t seed) {
    auto v = randn64(shape, seed).to_vector<double>();
    for (double& x : v) x = x >= 0 ? x + 0.5 : x - 0.5;
    return f64(v, shape);
}

Tensor i64(const std::vector<int64_t>& values, const Shape& shape) { return from_vector(values, shape, DType::I64); }

// A non-contiguous (R, C) view: the transpose of a contiguous (C, R) tensor.
Tensor transposed(int64_t rows, int64_t cols, uint64_t seed) { return randn64({cols, rows}, seed).transpose(0, 1); }

}  // namespace

// ---------------------------------------------------------------- the checker itself

// Runs gradcheck with its failures captured, and returns how many elements it rejected.
static int rejected_elements(const test::TensorFn& f, std::vector<Tensor> inputs) {
    ::testing::TestPartResultArray failures;
    {
        ::testing::ScopedFakeTestPartResultReporter reporter(
            ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
        gradcheck(f, std::move(inputs));
    }
    return failures.size();
}

TEST(GradCheckSelf, CatchesAWrongGradient) {
    // x * detach(x) has value x^2 but analytic gradient x, not 2x: every element is rejected
    EXPECT_EQ(rejected_elements([](Inputs in) { return in[0] * in[0].detach(); }, {randn64({3}, 1)}), 3);
    // a wrong gradient of one column of a non-contiguous input: exactly that column is rejected
    EXPECT_EQ(rejected_elements([](Inputs in) { return in[0] * in[0].narrow(1, 0, 1).detach(); },
                                {randn64({2, 3}, 2).t()}),
              3);
    // and a correct one passes
    EXPECT_EQ(rejected_elements([](Inputs in) { return in[0] * in[0]; }, {randn64({2, 3}, 3).t()}), 0);
}

// ---------------------------------------------------------------- binary elementwise

TEST(GradCheckBinary, AddSubSameShape) {
    gradcheck([](Inputs in) { return add(in[0], in[1]); }, {randn64({3, 5}, 1), randn64({3, 5}, 2)});
    gradcheck([](Inputs in) { return sub(in[0], in[1]); }, {randn64({3, 5}, 3), randn64({3, 5}, 4)});
}

TEST(GradCheckBinary, AddSubBroadcast) {
    // (2, 1, 3) with (4, 1): both sides broadcast, and the result has more dims than b
    gradcheck([](Inputs in) { return add(in[0], in[1]); }, {randn64({2, 1, 3}, 5), randn64({4, 1}, 6)});
    gradcheck([](Inputs in) { return sub(in[0], in[1]); }, {randn64({4, 1}, 7), randn64({2, 1, 3}, 8)});
    // 0-d scalar with a tensor, both orders
    gradcheck([](Inputs in) { return add(in[0], in[1]); }, {randn64({}, 9), randn64({3, 2}, 10)});
    gradcheck([](Inputs in) { return sub(in[0], in[1]); }, {randn64({5}, 11), randn64({}, 12)});
}

TEST(GradCheckBinary, AddNonContiguous) {
    gradcheck([](Inputs in) { return add(in[0], in[1]); }, {transposed(3, 5, 13), randn64({4, 6}, 14).narrow(0, 1, 3).narrow(1, 1, 5)});
}

TEST(GradCheckBinary, MulDivBroadcast) {
    gradcheck([](Inputs in) { return mul(in[0], in[1]); }, {randn64({3, 1, 5}, 15), randn64({1, 4, 5}, 16)});
    gradcheck([](Inputs in) { return mul(in[0], in[1]); }, {randn64({}, 17), transposed(2, 3, 18)});
    gradcheck([](Inputs in) { return div(in[0], in[1]); }, {randn64({2, 3}, 19), away_from_zero({3}, 20)});
    gradcheck([](Inputs in) { return div(in[0], in[1]); }, {randn64({1, 3}, 21), away_from_zero({4, 1}, 22)});
    gradcheck([](Inputs in) { return div(in[0], in[1]); }, {transposed(3, 2, 23), away_from_zero({}, 24)});
}

TEST(GradCheckBinary, MulSameInputTwice) {
    // both operands are the same leaf: the two gradient contributions must add up
    gradcheck([](Inputs in) { return mul(in[0], in[0]); }, {randn64({7}, 25)});
    gradcheck([](Inputs in) { return div(in[0], in[0] * in[0] + 1.0); }, {randn64({2, 3}, 26)});
}

TEST(GradCheckBinary, MaximumMinimum) {
    // a on odd multiples of 0.125, b on multiples of 0.25: never tied
    auto a = [] { return distinct({3, 4}, 27); };
    auto b = [] { return distinct({4}, 28) + 0.125; };
    gradcheck([](Inputs in) { return maximum(in[0], in[1]); }, {a(), b()});
    gradcheck([](Inputs in) { return minimum(in[0], in[1]); }, {a(), b()});
    gradcheck([](Inputs in) { return maximum(in[0], in[1]); }, {distinct({2, 1, 3}, 29), distinct({5, 1}, 30) + 0.125});
    gradcheck([](Inputs in) { return minimum(in[0], in[1]); }, {distinct({}, 31) + 0.125, distinct({3, 5}, 32).t()});
}

TEST(GradCheckBinary, MaximumMinimumSplitTies) {
    // not a finite-difference check (a tie is not differentiable): each side gets half
    Tensor a = f64({1, 2, 3}, {3}).set_requires_grad(), b = f64({1, 0, 3}, {3}).set_requires_grad();
    sum(maximum(a, b) + minimum(a, b) * 2.0).backward();
    test::expect_close(a.grad(), f64({1.5, 1, 1.5}, {3}), 0, 1e-15, "maximum/minimum ties, a");
    test::expect_close(b.grad(), f64({1.5, 2, 1.5}, {3}), 0, 1e-15, "maximum/minimum ties, b");
}

TEST(GradCheckBinary, Operators) {
    gradcheck([](Inputs in) { return in[0] + 2.5; }, {randn64({3}, 33)});
    gradcheck([](Inputs in) { return in[0] - 1.5; }, {randn64({3}, 34)});
    gradcheck([](Inputs in) { return in[0] * -3.0; }, {randn64({3}, 35)});
    gradcheck([](Inputs in) { return in[0] / 4.0; }, {randn64({3}, 36)});
    gradcheck([](Inputs in) { return 2.0 + in[0]; }, {randn64({3}, 37)});
    gradcheck([](Inputs in) { return 2.0 - in[0]; }, {randn64({3}, 38)});
    gradcheck([](Inputs in) { return 0.5 * in[0]; }, {randn64({3}, 39)});
    gradcheck([](Inputs in) { return 2.0 / in[0]; }, {away_from_zero({2, 3}, 40)});
    gradcheck([](Inputs in) { return -in[0]; }, {randn64({2, 3}, 41)});
    gradcheck([](Inputs in) { return (in[0] - in[1]) * in[1] / in[2]; },
              {randn64({2, 3}, 42), randn64({3}, 43), away_from_zero({2, 1}, 44)});
}

// ---------------------------------------------------------------- unary elementwise

TEST(GradCheckUnary, AffineNegExp) {
    gradcheck([](Inputs in) { return affine(in[0], -1.75, 0.5); }, {transposed(3, 4, 50)});
    gradcheck([](Inputs in) { return affine(in[0], 3.0, -2.0); }, {randn64({}, 51)});
    gradcheck([](Inputs in) { return neg(in[0]); }, {randn64({1, 5, 1}, 52)});
    gradcheck([](Inputs in) { return exp(in[0]); }, {randn64({3, 5}, 53)});
    gradcheck([](Inputs in) { return exp(in[0]); }, {randn64({}, 54)});
    gradcheck([](Inputs in) { return exp(in[0]); }, {transposed(2, 5, 55)});
}

TEST(GradCheckUnary, LogSqrtRsqrtReciprocal) {
    gradcheck([](Inputs in) { return log(in[0]); }, {positive({3, 5}, 56)});
    gradcheck([](Inputs in) { return log(in[0]); }, {positive({7, 3}, 57).narrow(0, 2, 4)});
    gradcheck([](Inputs in) { return sqrt(in[0]); }, {positive({2, 3, 1}, 58)});
    gradcheck([](Inputs in) { return sqrt(in[0]); }, {positive({}, 59)});
    gradcheck([](Inputs in) { return rsqrt(in[0]); }, {positive({9}, 60)});
    gradcheck([](Inputs in) { return rsqrt(in[0]); }, {positive({3, 4}, 61).t()});
    gradcheck([](Inputs in) { return reciprocal(in[0]); }, {away_from_zero({5, 3}, 62)});
    gradcheck([](Inputs in) { return reciprocal(in[0]); }, {away_from_zero({}, 63)});
}

TEST(GradCheckUnary, PowSeveralExponents) {
    gradcheck([](Inputs in) { return pow(in[0], 2.0); }, {randn64({3, 5}, 64)});
    gradcheck([](Inputs in) { return pow(in[0], 3.0); }, {randn64({2, 7}, 65)});
    gradcheck([](Inputs in) { return pow(in[0], -1.0); }, {away_from_zero({11}, 66)});
    gradcheck([](Inputs in) { return pow(in[0], -2.0); }, {away_from_zero({2, 3}, 67).t()});
    gradcheck([](Inputs in) { return pow(in[0], 0.5); }, {positive({4, 3}, 68)});
    gradcheck([](Inputs in) { return pow(in[0], 1.5); }, {positive({}, 69)});
    gradcheck([](Inputs in) { return pow(in[0], -0.5); }, {positive({5}, 70)});
    gradcheck([](Inputs in) { return pow(in[0], 1.0); }, {randn64({5}, 71)});
    gradcheck([](Inputs in) { return pow(in[0], 0.0); }, {randn64({2, 2}, 72)});  // constant: zero gradient
}

TEST(GradCheckUnary, AbsReluAwayFromZero) {
    gradcheck([](Inputs in) { return abs(in[0]); }, {distinct({3, 5}, 73)});
    gradcheck([](Inputs in) { return abs(in[0]); }, {distinct({4, 3}, 74).t()});
    gradcheck([](Inputs in) { return relu(in[0]); }, {distinct({3, 5}, 75)});
    gradcheck([](Inputs in) { return relu(in[0]); }, {distinct({2, 1, 5}, 76).narrow(2, 1, 3)});
    gradcheck([](Inputs in) { return relu(in[0]); }, {distinct({}, 77)});
}

TEST(GradCheckUnary, TanhSigmoid) {
    gradcheck([](Inputs in) { return tanh(in[0]); }, {randn64({3, 5}, 78)});
    gradcheck([](Inputs in) { return tanh(in[0]); }, {transposed(4, 3, 79)});
    gradcheck([](Inputs in) { return sigmoid(in[0]); }, {distinct({3, 5}, 80)});
    gradcheck([](Inputs in) { return sigmoid(in[0]); }, {randn64({}, 81)});
}

TEST(GradCheckUnary, GeluVariants) {
    gradcheck([](Inputs in) { return gelu(in[0]); }, {distinct({3, 5}, 82)});
    gradcheck([](Inputs in) { return gelu(in[0], false); }, {transposed(3, 4, 83)});
    gradcheck([](Inputs in) { return gelu(in[0], true); }, {distinct({3, 5}, 84)});
    gradcheck([](Inputs in) { return gelu(in[0], true); }, {transposed(5, 2, 85)});
    gradcheck([](Inputs in) { return quick_gelu(in[0]); }, {distinct({3, 5}, 86)});
    gradcheck([](Inputs in) { return quick_gelu(in[0]); }, {randn64({6, 2}, 87).narrow(0, 1, 4)});
    gradcheck([](Inputs in) { return gelu(in[0]) + gelu(in[0], true) + quick_gelu(in[0]); }, {randn64({}, 88)});
}

TEST(GradCheckUnary, ClampAwayFromBounds) {
    // distinct() keeps every value >= ~0.1 from every multiple of 0.25, so from both bounds
    gradcheck([](Inputs in) { return clamp(in[0], -0.5, 0.75); }, {distinct({3, 5}, 89)});
    gradcheck([](Inputs in) { return clamp(in[0], -1.0, 1.0); }, {distinct({5, 3}, 90).t()});
    gradcheck([](Inputs in) { return clamp_min(in[0], 0.25); }, {distinct({4, 4}, 91)});
    gradcheck([](Inputs in) { return clamp_min(in[0], -0.5); }, {distinct({}, 92)});
    // all values inside / all outside the range
    gradcheck([](Inputs in) { return clamp(in[0], -100.0, 100.0); }, {randn64({7}, 93)});
    gradcheck([](Inputs in) { return clamp(in[0], 50.0, 60.0); }, {randn64({7}, 94)});
}

TEST(GradCheckUnary, Where) {
    // the condition is not differentiable, so it is captured rather than passed as an input
    Tensor cond = f64({1, 0, 0, 1, 1, 0}, {2, 3});
    gradcheck([cond](Inputs in) { return where(cond, in[0], in[1]); }, {randn64({2, 3}, 95), randn64({2, 3}, 96)});
    // broadcast between condition (2, 1, 3), a (4, 1) and b (): result (2, 4, 3)
    Tensor cond3 = f64({0, 1, 1, 1, 0, 0}, {2, 1, 3});
    gradcheck([cond3](Inputs in) { return where(cond3, in[0], in[1]); }, {randn64({4, 1}, 97), randn64({}, 98)});
    // integer condition, non-contiguous a
    Tensor icond = i64({1, 0, 1}, {3});
    gradcheck([icond](Inputs in) { return where(icond, in[0], in[1]); }, {transposed(4, 3, 99), randn64({3}, 100)});
}

TEST(GradCheckUnary, CastGradientIsCastBack) {
    // F64 -> F32: the gradient reaching the F64 leaf is the F32 upstream gradient, cast to F64
    for (DType to : {DType::F32, DType::BF16}) {
        Tensor x = randn64({3, 4}, 101).set_requires_grad();
        Tensor y = cast(x, to);
        ASSERT_EQ(y.dtype(), to);
        Tensor w = randn64({3, 4}, 102).to(to);
        sum(y * w).backward();
        ASSERT_TRUE(x.grad().defined());
        EXPECT_EQ(x.grad().dtype(), DType::F64);
        test::expect_close(x.grad(), w.to(DType::F64), 0, 0, "cast gradient");
    }
    // F32 -> F64, through a non-contiguous view: the gradient is the F64 gradient rounded to F32
    Generator gen(103);
    Tensor x = randn({4, 3}, gen).t().set_requires_grad();
    Tensor y = x.to(DType::F64);
    Tensor w = randn64({3, 4}, 104);
    sum(y * w).backward();
    EXPECT_EQ(x.grad().dtype(), DType::F32);
    test::expect_close(x.grad(), w.to(DType::F32), 0, 0, "cast gradient to F32");
    // casting to the same dtype is the identity
    gradcheck([](Inputs in) { return cast(in[0], DType::F64) * 2.0; }, {randn64({3}, 105)});
}

// ---------------------------------------------------------------- reductions

TEST(GradCheckReduce, SumMean) {
    for (bool keep : {false, true}) {
        gradcheck([keep](Inputs in) { return sum(in[0], {}, keep); }, {randn64({3, 4}, 110)});
        gradcheck([keep](Inputs in) { return sum(in[0], {1}, keep); }, {randn64({3, 4, 2}, 111)});
        gradcheck([keep](Inputs in) { return sum(in[0], {0, -1}, keep); }, {randn64({3, 1, 5}, 112)});
        gradcheck([keep](Inputs in) { return sum(in[0], {-2}, keep); }, {transposed(5, 3, 113)});
        gradcheck([keep](Inputs in) { return mean(in[0], {}, keep); }, {randn64({5, 3}, 114)});
        gradcheck([keep](Inputs in) { return mean(in[0], {2, 0}, keep); }, {randn64({2, 3, 4}, 115)});
        gradcheck([keep](Inputs in) { return mean(in[0], {1}, keep); }, {randn64({4, 6}, 116).narrow(1, 1, 3)});
    }
    gradcheck([](Inputs in) { return sum(in[0]); }, {randn64({}, 117)});
    gradcheck([](Inputs in) { return mean(in[0]); }, {randn64({}, 118)});
}

TEST(GradCheckReduce, AmaxAmin) {
    for (bool keep : {false, true}) {
        gradcheck([keep](Inputs in) { return amax(in[0], {}, keep); }, {distinct({3, 5}, 120)});
        gradcheck([keep](Inputs in) { return amax(in[0], {1}, keep); }, {distinct({3, 5}, 121)});
        gradcheck([keep](Inputs in) { return amax(in[0], {0, 2}, keep); }, {distinct({2, 3, 4}, 122)});
        gradcheck([keep](Inputs in) { return amin(in[0], {-1}, keep); }, {distinct({4, 3}, 123).t()});
        gradcheck([keep](Inputs in) { return amin(in[0], {0}, keep); }, {distinct({1, 5}, 124)});
        gradcheck([keep](Inputs in) { return amin(in[0], {1, 2}, keep); }, {distinct({3, 2, 3}, 125)});
    }
}

TEST(GradCheckReduce, AmaxSplitsTiesEvenly) {
    // not a finite-difference check (a tie is not differentiable): the documented subgradient
    Tensor x = f64({1, 3, 3, 2, -1, -1}, {2, 3}).set_requires_grad();
    sum(amax(x, {1}) + amin(x, {1})).backward();
    // row 0: amax tied at 1, 2 (0.5 each), amin at 0; row 1: amax at 0, amin tied at 1, 2
    test::expect_close(x.grad(), f64({1, 0.5, 0.5, 1, 0.5, 0.5}, {2, 3}), 0, 1e-15, "amax/amin ties");
}

TEST(GradCheckReduce, MaxDimValues) {
    for (bool keep : {false, true}) {
        gradcheck([keep](Inputs in) { return max(in[0], 0, keep).first; }, {distinct({3, 5}, 130)});
        gradcheck([keep](Inputs in) { return max(in[0], 1, keep).first; }, {distinct({3, 5}, 131)});
        gradcheck([keep](Inputs in) { return max(in[0], -1, keep).first; }, {distinct({2, 3, 4}, 132)});
        gradcheck([keep](Inputs in) { return max(in[0], 1, keep).first; }, {distinct({5, 3}, 133).t()});
        gradcheck([keep](Inputs in) { return max(in[0], 0, keep).first; }, {distinct({1, 4}, 134)});
    }
}

TEST(GradCheckReduce, Logsumexp) {
    for (bool keep : {false, true}) {
        gradcheck([keep](Inputs in) { return logsumexp(in[0], {1}, keep); }, {randn64({3, 5}, 140)});
        gradcheck([keep](Inputs in) { return logsumexp(in[0], {0}, keep); }, {transposed(3, 5, 141)});
        gradcheck([keep](Inputs in) { return logsumexp(in[0], {0, 2}, keep); }, {randn64({2, 3, 3}, 142)});
        gradcheck([keep](Inputs in) { return logsumexp(in[0], {}, keep); }, {randn64({4, 3}, 143)});
        gradcheck([keep](Inputs in) { return logsumexp(in[0], {-1}, keep); }, {randn64({3, 1}, 144)});
    }
    // large values: the shift keeps it finite and the gradient is still the softmax
    gradcheck([](Inputs in) { return logsumexp(in[0] * 300.0, {1}); }, {randn64({2, 4}, 145)}, 1e-7, 1e-6, 1e-5);
}

TEST(GradCheckReduce, SumTo) {
    gradcheck([](Inputs in) { return sum_to(in[0], {3, 1}); }, {randn64({2, 3, 4}, 150)});
    gradcheck([](Inputs in) { return sum_to(in[0], {1, 4}); }, {randn64({2, 3, 4}, 151)});
    gradcheck([](Inputs in) { return sum_to(in[0], {4}); }, {randn64({2, 3, 4}, 152)});
    gradcheck([](Inputs in) { return sum_to(in[0], {}); }, {randn64({2, 3}, 153)});
    gradcheck([](Inputs in) { return sum_to(in[0], {1, 3, 1}); }, {transposed(3, 5, 154).unsqueeze(0)});
    gradcheck([](Inputs in) { return sum_to(in[0], {3, 5}); }, {randn64({3, 5}, 155)});
}

// ---------------------------------------------------------------- matmul

TEST(GradCheckMatmul, VectorCases) {
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({5}, 160), randn64({5}, 161)});       // 1-D . 1-D
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({4}, 162), randn64({4, 3}, 163)});    // 1-D . 2-D
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({3, 4}, 164), randn64({4}, 165)});    // 2-D . 1-D
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({2, 3, 4}, 166), randn64({4}, 167)}); // 3-D . 1-D
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({3}, 168), randn64({2, 3, 5}, 169)}); // 1-D . 3-D
}

TEST(GradCheckMatmul, TwoD) {
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({3, 4}, 170), randn64({4, 5}, 171)});
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({1, 7}, 172), randn64({7, 1}, 173)});
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({5, 1}, 174), randn64({1, 3}, 175)});
}

TEST(GradCheckMatmul, TransposedOperands) {
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {transposed(3, 4, 180), randn64({4, 5}, 181)});
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({3, 4}, 182), transposed(4, 5, 183)});
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {transposed(3, 4, 184), transposed(4, 5, 185)});
    // a transposed batch and a narrowed (neither dense nor transposed-dense) operand
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); },
              {randn64({2, 4, 3}, 186).transpose(1, 2), randn64({2, 4, 7}, 187).narrow(2, 2, 3)});
    // a non-contiguous 3-D operand with a shared 2-D weight
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); },
              {randn64({4, 2, 3}, 188).transpose(0, 1), transposed(3, 2, 189)});
}

TEST(GradCheckMatmul, Batched) {
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({2, 3, 4}, 190), randn64({2, 4, 2}, 191)});
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({2, 3, 4}, 192), randn64({4, 5}, 193)});
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({3, 4}, 194), randn64({2, 4, 3}, 195)});
}

TEST(GradCheckMatmul, BroadcastBatchDims) {
    // (2, 1, 3, 4) @ (5, 4, 2) -> (2, 5, 3, 2)
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({2, 1, 3, 4}, 200), randn64({5, 4, 2}, 201)});
    // (1, 3, 2) @ (3, 1, 2, 2): batch broadcast on both sides
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({3, 1, 3, 2}, 202), randn64({1, 4, 2, 2}, 203)});
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {randn64({1, 3, 2}, 204), randn64({4, 2, 1}, 205)});
}

// ---------------------------------------------------------------- shape ops

TEST(GradCheckShape, Cat) {
    gradcheck([](Inputs in) { return cat({in[0], in[1], in[2]}, 0); },
              {randn64({1, 3}, 210), randn64({4, 3}, 211), randn64({2, 3}, 212)});
    gradcheck([](Inputs in) { return cat({in[0], in[1]}, -1); }, {transposed(3, 2, 213), randn64({3, 5}, 214)});
    gradcheck([](Inputs in) { return cat({in[0], in[1]}, 1); }, {randn64({2, 1, 3}, 215), randn64({2, 4, 3}, 216)});
    gradcheck([](Inputs in) { return cat({in[0]}, 0); }, {randn64({3}, 217)});
    // the same tensor twice
    gradcheck([](Inputs in) { return cat({in[0], in[0] * 2.0}, 0); }, {randn64({2, 2}, 218)});
}

TEST(GradCheckShape, Stack) {
    gradcheck([](Inputs in) { return stack({in[0], in[1], in[2]}, 0); },
              {randn64({2, 3}, 220), randn64({2, 3}, 221), transposed(2, 3, 222)});
    gradcheck([](Inputs in) { return stack({in[0], in[1]}, -1); }, {randn64({3, 2}, 223), randn64({3, 2}, 224)});
    gradcheck([](Inputs in) { return stack({in[0], in[1]}, 1); }, {randn64({5}, 225), randn64({5}, 226)});
    gradcheck([](Inputs in) { return stack({in[0], in[1]}, 0); }, {randn64({}, 227), randn64({}, 228)});
}

TEST(GradCheckShape, Flip) {
    gradcheck([](Inputs in) { return flip(in[0], {0}); }, {randn64({5}, 230)});
    gradcheck([](Inputs in) { return flip(in[0], {1}); }, {randn64({3, 4}, 231)});
    gradcheck([](Inputs in) { return flip(in[0], {0, -1}); }, {randn64({2, 3, 4}, 232)});
    gradcheck([](Inputs in) { return flip(in[0], {0}); }, {transposed(3, 4, 233)});
    gradcheck([](Inputs in) { return flip(in[0], {1}); }, {randn64({3, 1}, 234)});
}

TEST(GradCheckShape, Cumsum) {
    for (bool reverse : {false, true}) {
        gradcheck([reverse](Inputs in) { return cumsum(in[0], 0, reverse); }, {randn64({7}, 240)});
        gradcheck([reverse](Inputs in) { return cumsum(in[0], 1, reverse); }, {randn64({3, 5}, 241)});
        gradcheck([reverse](Inputs in) { return cumsum(in[0], 0, reverse); }, {randn64({3, 5}, 242)});
        gradcheck([reverse](Inputs in) { return cumsum(in[0], 1, reverse); }, {randn64({2, 3, 4}, 243)});
        gradcheck([reverse](Inputs in) { return cumsum(in[0], -1, reverse); }, {transposed(4, 3, 244)});
        gradcheck([reverse](Inputs in) { return cumsum(in[0], 0, reverse); }, {randn64({1, 4}, 245)});
        gradcheck([reverse](Inputs in) { return cumsum(in[0], 0, reverse); }, {randn64({}, 246)});
    }
}

// ---------------------------------------------------------------- indexing

TEST(GradCheckIndex, IndexSelect) {
    Tensor rows = i64({2, 0, 2, 3, 2}, {5});  // repeated indices accumulate
    gradcheck([rows](Inputs in) { return index_select(in[0], 0, rows); }, {randn64({4, 3}, 250)});
    gradcheck([rows](Inputs in) { return index_select(in[0], 1, rows); }, {randn64({2, 5}, 251)});
    gradcheck([rows](Inputs in) { return index_select(in[0], -1, rows); }, {transposed(3, 4, 252)});
    Tensor cols32 = from_vector(std::vector<int32_t>{1, 1, 0}, {3}, DType::I32);
    gradcheck([cols32](Inputs in) { return index_select(in[0], 1, cols32); }, {randn64({2, 3, 2}, 253)});
    Tensor one = i64({1}, {});  // a 0-d index keeps the dim, with size 1
    gradcheck([one](Inputs in) { return index_select(in[0], 0, one); }, {randn64({3, 2}, 254)});
}

TEST(GradCheckIndex, EmbeddingRepeatedIds) {
    Tensor ids = i64({3, 1, 3, 0, 3, 4}, {2, 3});
    gradcheck([ids](Inputs in) { return embedding(in[0], ids); }, {randn64({5, 4}, 260)});
    Tensor flat = from_vector(std::vector<int32_t>{2, 2, 2}, {3}, DType::I32);
    gradcheck([flat](Inputs in) { return embedding(in[0], flat); }, {transposed(3, 5, 261)});
    Tensor single = i64({0}, {});  // 0-d ids -> (C)
    gradcheck([single](Inputs in) { return embedding(in[0], single); }, {randn64({2, 3}, 262)});
}

TEST(GradCheckIndex, Gather) {
    Tensor idx0 = i64({2, 0, 1, 2, 2, 0, 1, 1}, {2, 4});
    gradcheck([idx0](Inputs in) { return gather(in[0], 0, idx0); }, {randn64({3, 4}, 270)});
    Tensor idx1 = i64({3, 3, 0, 1, 0, 2}, {3, 2});
    gradcheck([idx1](Inputs in) { return gather(in[0], 1, idx1); }, {randn64({3, 4}, 271)});
    gradcheck([idx1](Inputs in) { return gather(in[0], -1, idx1); }, {transposed(3, 4, 272)});
    // index smaller than the input off the gather dim
    Tensor small = i64({1, 0, 1, 1}, {2, 2});
    gradcheck([small](Inputs in) { return gather(in[0], 1, small); }, {randn64({3, 5}, 273)});
    Tensor idx3 = i64({0, 1, 1, 0, 0, 0}, {1, 2, 3});
    gradcheck([idx3](Inputs in) { return gather(in[0], 1, idx3); }, {randn64({2, 2, 3}, 274)});
}

TEST(GradCheckIndex, SortValues) {
    for (bool desc : {false, true}) {
        gradcheck([desc](Inputs in) { return sort(in[0], -1, desc).first; }, {distinct({7}, 280)});
        gradcheck([desc](Inputs in) { return sort(in[0], 1, desc).first; }, {distinct({3, 5}, 281)});
        gradcheck([desc](Inputs in) { return sort(in[0], 0, desc).first; }, {distinct({4, 3}, 282)});
        gradcheck([desc](Inputs in) { return sort(in[0], 1, desc).first; }, {distinct({2, 3, 4}, 283)});
        gradcheck([desc](Inputs in) { return sort(in[0], -1, desc).first; }, {distinct({5, 3}, 284).t()});
        gradcheck([desc](Inputs in) { return sort(in[0], 0, desc).first; }, {distinct({1, 3}, 285)});
    }
}

// ---------------------------------------------------------------- nn ops

TEST(GradCheckNN, SoftmaxLogSoftmax) {
    for (int64_t dim : {0, 1, -1}) {
        gradcheck([dim](Inputs in) { return softmax(in[0], dim); }, {randn64({3, 5}, 290)});
        gradcheck([dim](Inputs in) { return log_softmax(in[0], dim); }, {randn64({3, 5}, 291)});
        gradcheck([dim](Inputs in) { return softmax(in[0], dim); }, {transposed(4, 3, 292)});
        gradcheck([dim](Inputs in) { return log_softmax(in[0], dim); }, {transposed(4, 3, 293)});
    }
    gradcheck([](Inputs in) { return softmax(in[0], 1); }, {randn64({2, 3, 4}, 294)});
    gradcheck([](Inputs in) { return log_softmax(in[0], 0); }, {randn64({2, 3, 4}, 295)});
    gradcheck([](Inputs in) { return softmax(in[0], -1); }, {randn64({3, 1}, 296)});
    gradcheck([](Inputs in) { return log_softmax(in[0], 0); }, {randn64({}, 297)});
    gradcheck([](Inputs in) { return softmax_composite(in[0], 1); }, {randn64({3, 4}, 298)});
    gradcheck([](Inputs in) { return log_softmax_composite(in[0], 0); }, {randn64({3, 4}, 299)});
}

TEST(GradCheckNN, LayerNorm) {
    gradcheck([](Inputs in) { return layer_norm(in[0], in[1], in[2]); },
              {randn64({3, 5}, 300), randn64({5}, 301), randn64({5}, 302)});
    gradcheck([](Inputs in) { return layer_norm(in[0], Tensor(), Tensor()); }, {randn64({2, 3, 4}, 303)});
    gradcheck([](Inputs in) { return layer_norm(in[0], in[1], Tensor()); }, {randn64({4, 3}, 304), randn64({3}, 305)});
    gradcheck([](Inputs in) { return layer_norm(in[0], Tensor(), in[1]); }, {randn64({4, 3}, 306), randn64({3}, 307)});
    gradcheck([](Inputs in) { return layer_norm(in[0], in[1], in[2]); },
              {transposed(4, 5, 308), randn64({5}, 309), randn64({5}, 310)});
    gradcheck([](Inputs in) { return layer_norm(in[0], in[1], in[2]); }, {randn64({7}, 311), randn64({7}, 312), randn64({7}, 313)});
    gradcheck([](Inputs in) { return layer_norm(in[0], in[1], in[2], 0.1); },
              {randn64({3, 2}, 314), randn64({2}, 315), randn64({2}, 316)});
    gradcheck([](Inputs in) { return layer_norm_composite(in[0], in[1], in[2]); },
              {randn64({3, 5}, 317), randn64({5}, 318), randn64({5}, 319)});
}

TEST(GradCheckNN, CrossEntropy) {
    Tensor target = i64({2, 0, 4, 4, 1}, {5});
    for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
        gradcheck([target, r](Inputs in) { return cross_entropy(in[0], target, r); }, {randn64({5, 6}, 320)});
        gradcheck([target, r](Inputs in) { return cross_entropy_composite(in[0], target, r); }, {randn64({5, 6}, 321)});
        gradcheck([target, r](Inputs in) { return cross_entropy(in[0], target, r); }, {transposed(5, 5, 322)});
    }
    // ignore_index: the default -100 and a class id; ignored rows get no gradient
    Tensor with_ignored = i64({2, -100, 1, -100}, {4});
    Tensor ignore_class = from_vector(std::vector<int32_t>{2, 0, 1, 2}, {4}, DType::I32);
    for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
        gradcheck([with_ignored, r](Inputs in) { return cross_entropy(in[0], with_ignored, r); }, {randn64({4, 3}, 323)});
        gradcheck([ignore_class, r](Inputs in) { return cross_entropy(in[0], ignore_class, r, 2); }, {randn64({4, 3}, 324)});
    }
    // one row, one class (loss 0, gradient 0)
    Tensor zero = i64({0}, {1});
    gradcheck([zero](Inputs in) { return cross_entropy(in[0], zero); }, {randn64({1, 1}, 325)});
}

TEST(GradCheckNN, L2Normalize) {
    gradcheck([](Inputs in) { return l2_normalize(in[0]); }, {randn64({3, 5}, 330)});
    gradcheck([](Inputs in) { return l2_normalize(in[0], 0); }, {randn64({3, 5}, 331)});
    gradcheck([](Inputs in) { return l2_normalize(in[0], 1); }, {randn64({2, 3, 4}, 332)});
    gradcheck([](Inputs in) { return l2_normalize(in[0], -1); }, {transposed(4, 3, 333)});
    gradcheck([](Inputs in) { return l2_normalize(in[0], 0); }, {randn64({6}, 334)});
    // below eps the norm is clamped: x / eps, a linear map
    gradcheck([](Inputs in) { return l2_normalize(in[0] * 1e-3, -1, 1.0); }, {randn64({2, 3}, 335)});
}

TEST(GradCheckNN, DropoutWithFixedMask) {
    // the mask is a function of the generator's seed: a fresh Generator per evaluation
    gradcheck([](Inputs in) { Generator gen(7); return dropout(in[0], 0.3, true, gen); }, {randn64({5, 7}, 340)});
    gradcheck([](Inputs in) { Generator gen(8); return dropout(in[0], 0.5, true, gen); }, {transposed(4, 3, 341)});
    gradcheck([](Inputs in) { Generator gen(9); return dropout(in[0], 0.5, false, gen); }, {randn64({3, 2}, 342)});
    gradcheck([](Inputs in) { Generator gen(10); return dropout(in[0], 1.0, true, gen); }, {randn64({3}, 343)});
}

TEST(GradCheckNN, DropoutMaskIsNonTrivial) {
    // the gradient check above is only meaningful if some, but not all, elements are dropped
    Generator gen(7);
    Tensor x = ones({5, 7}, DType::F64);
    auto y = dropout(x, 0.3, true, gen).to_vector<double>();
    int zeros_seen = 0, kept = 0;
    for (double v : y) {
        if (v == 0) zeros_seen++;
        else {
            kept++;
            EXPECT_NEAR(v, 1.0 / 0.7, 1e-12);
        }
    }
    EXPECT_GT(zeros_seen, 0);
    EXPECT_GT(kept, 0);
}

TEST(GradCheckNN, AttentionNonCausal) {
    // (B, H, Tq, D) with Tq != Tk
    gradcheck([](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2]); },
              {randn64({1, 2, 3, 4}, 350), randn64({1, 2, 5, 4}, 351), randn64({1, 2, 5, 4}, 352)});
    gradcheck([](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2], false, 0.7); },
              {randn64({2, 1, 4, 3}, 353), randn64({2, 1, 2, 3}, 354), randn64({2, 1, 2, 3}, 355)});
    // T = 1, D = 1
    gradcheck([](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2]); },
              {randn64({1, 1, 1, 1}, 356), randn64({1, 1, 3, 1}, 357), randn64({1, 1, 3, 1}, 358)});
}

TEST(GradCheckNN, AttentionCausal) {
    gradcheck([](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2], true); },
              {randn64({1, 2, 4, 3}, 360), randn64({1, 2, 4, 3}, 361), randn64({1, 2, 4, 3}, 362)});
    gradcheck([](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2], true, 0.5); },
              {randn64({2, 1, 5, 2}, 363), randn64({2, 1, 5, 2}, 364), randn64({2, 1, 5, 2}, 365)});
    gradcheck([](Inputs in) { return attention_composite(in[0], in[1], in[2], true); },
              {randn64({1, 1, 3, 2}, 366), randn64({1, 1, 3, 2}, 367), randn64({1, 1, 3, 2}, 368)});
}

TEST(GradCheckNN, AttentionNonContiguousInputs) {
    // q, k, v as head-split views of (B, T, H, D) tensors, as a transformer makes them
    gradcheck([](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2], true); },
              {randn64({1, 3, 2, 2}, 370).transpose(1, 2), randn64({1, 3, 2, 2}, 371).transpose(1, 2),
               randn64({1, 3, 2, 2}, 372).transpose(1, 2)});
    gradcheck([](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2]); },
              {randn64({1, 2, 3, 5}, 373).narrow(3, 1, 3), randn64({1, 4, 2, 3}, 374).transpose(1, 2),
               randn64({1, 2, 4, 3}, 375)});
}

// ---------------------------------------------------------------- views

TEST(GradCheckViews, ReshapeView) {
    gradcheck([](Inputs in) { return in[0].reshape({5, 3}); }, {randn64({3, 5}, 380)});
    gradcheck([](Inputs in) { return in[0].reshape({-1}); }, {transposed(3, 5, 381)});  // copies
    gradcheck([](Inputs in) { return in[0].reshape({2, -1, 1}); }, {randn64({2, 3}, 382)});
    gradcheck([](Inputs in) { return in[0].reshape({}); }, {randn64({1, 1}, 383)});
    gradcheck([](Inputs in) { return in[0].view({3, 2}); }, {randn64({6}, 384)});
    gradcheck([](Inputs in) { return in[0].view({1, 4, 1}); }, {randn64({2, 2}, 385)});
    // a view of a view, then an op that reads it
    gradcheck([](Inputs in) { return exp(in[0].view({2, 3}).reshape({3, 2})); }, {randn64({6}, 386)});
}

TEST(GradCheckViews, PermuteTranspose) {
    gradcheck([](Inputs in) { return in[0].permute({2, 0, 1}); }, {randn64({2, 3, 4}, 390)});
    gradcheck([](Inputs in) { return in[0].permute({1, 0, 2}) * 3.0; }, {randn64({2, 3, 1}, 391)});
    gradcheck([](Inputs in) { return in[0].transpose(0, 2); }, {randn64({2, 3, 4}, 392)});
    gradcheck([](Inputs in) { return in[0].transpose(-1, -2); }, {transposed(3, 4, 393)});
    gradcheck([](Inputs in) { return in[0].t(); }, {randn64({5, 1}, 394)});
}

TEST(GradCheckViews, NarrowSelectSlice) {
    gradcheck([](Inputs in) { return in[0].narrow(1, 1, 3); }, {randn64({3, 5}, 400)});
    gradcheck([](Inputs in) { return in[0].narrow(0, -2, 2); }, {randn64({4, 3}, 401)});
    gradcheck([](Inputs in) { return in[0].narrow(1, 2, 0); }, {randn64({2, 3}, 402)});  // empty slice: zero grad
    gradcheck([](Inputs in) { return in[0].select(0, 2); }, {randn64({3, 4}, 403)});
    gradcheck([](Inputs in) { return in[0].select(-1, -1); }, {transposed(3, 4, 404)});
    gradcheck([](Inputs in) { return in[0].select(0, 0); }, {randn64({5}, 405)});
    gradcheck([](Inputs in) { return in[0].slice(1, 1, 4); }, {randn64({2, 5, 2}, 406)});
    // overlapping slices of one input add up
    gradcheck([](Inputs in) { return in[0].narrow(0, 0, 3) * in[0].narrow(0, 1, 3); }, {randn64({4, 2}, 407)});
}

TEST(GradCheckViews, Expand) {
    gradcheck([](Inputs in) { return in[0].expand({3, 4}); }, {randn64({3, 1}, 410)});
    gradcheck([](Inputs in) { return in[0].expand({2, 3, 4}); }, {randn64({4}, 411)});
    gradcheck([](Inputs in) { return in[0].expand({2, -1, 3}); }, {randn64({1, 5, 1}, 412)});
    gradcheck([](Inputs in) { return in[0].expand({4, 2}); }, {randn64({}, 413)});
    gradcheck([](Inputs in) { return in[0].expand({3, 2, 3}); }, {transposed(2, 3, 414)});
    // an expanded tensor fed to a kernel that needs a contiguous copy
    gradcheck([](Inputs in) { return softmax(in[0].expand({3, 4}), 0); }, {randn64({1, 4}, 415)});
}

TEST(GradCheckViews, SqueezeUnsqueezeFlatten) {
    gradcheck([](Inputs in) { return in[0].squeeze(1); }, {randn64({3, 1, 2}, 420)});
    gradcheck([](Inputs in) { return in[0].squeeze(0); }, {randn64({3, 2}, 421)});  // not size 1: no-op
    gradcheck([](Inputs in) { return in[0].squeeze(-1); }, {randn64({1}, 422)});
    gradcheck([](Inputs in) { return in[0].unsqueeze(0); }, {randn64({3, 2}, 423)});
    gradcheck([](Inputs in) { return in[0].unsqueeze(-1); }, {transposed(3, 2, 424)});
    gradcheck([](Inputs in) { return in[0].unsqueeze(1); }, {randn64({3, 2}, 425)});
    gradcheck([](Inputs in) { return in[0].unsqueeze(0); }, {randn64({}, 426)});
    gradcheck([](Inputs in) { return in[0].flatten(); }, {randn64({2, 3, 2}, 427)});
    gradcheck([](Inputs in) { return in[0].flatten(1); }, {randn64({2, 3, 2}, 428)});
    gradcheck([](Inputs in) { return in[0].flatten(0, 1); }, {randn64({4, 3, 2}, 429).transpose(0, 2)});
    gradcheck([](Inputs in) { return in[0].flatten(); }, {randn64({}, 430)});
}

TEST(GradCheckViews, ContiguousClone) {
    gradcheck([](Inputs in) { return in[0].contiguous(); }, {transposed(3, 4, 440)});
    gradcheck([](Inputs in) { return in[0].contiguous() * 2.0; }, {randn64({3, 4}, 441)});  // already contiguous
    gradcheck([](Inputs in) { return in[0].clone(); }, {randn64({2, 3}, 442)});
    gradcheck([](Inputs in) { return in[0].clone(); }, {randn64({4, 5}, 443).narrow(1, 1, 2)});
    gradcheck([](Inputs in) { return in[0].expand({3, 3}).clone(); }, {randn64({3, 1}, 444)});
}

// ---------------------------------------------------------------- 0-d tensors with dim 0 / -1

TEST(GradCheckScalar, DimArgumentsOnZeroDimTensors) {
    // as torch, a 0-d tensor accepts dim 0 and -1, and reducing over it is the identity
    gradcheck([](Inputs in) { return sum(in[0], {0}); }, {randn64({}, 470)});
    gradcheck([](Inputs in) { return sum(in[0], {-1}, true); }, {randn64({}, 471)});
    gradcheck([](Inputs in) { return mean(in[0], {0}); }, {randn64({}, 472)});
    gradcheck([](Inputs in) { return amax(in[0], {0}) + amin(in[0], {-1}); }, {randn64({}, 473)});
    gradcheck([](Inputs in) { return logsumexp(in[0], {0}); }, {randn64({}, 474)});
    gradcheck([](Inputs in) { return max(in[0], 0).first; }, {randn64({}, 475)});
    gradcheck([](Inputs in) { return gather(in[0], 0, i64({0}, {})); }, {randn64({}, 476)});
    gradcheck([](Inputs in) { return index_select(in[0], -1, i64({0}, {1})); }, {randn64({}, 477)});
    gradcheck([](Inputs in) { return flip(in[0], {0}); }, {randn64({}, 478)});
    gradcheck([](Inputs in) { return in[0].squeeze(0) * 2.0; }, {randn64({}, 479)});
    gradcheck([](Inputs in) { return in[0].transpose(0, -1) * 2.0; }, {randn64({}, 480)});
    gradcheck([](Inputs in) { return l2_normalize(in[0] + 3.0) * in[0]; }, {randn64({}, 481)});
    gradcheck([](Inputs in) { return sort(in[0], 0).first * in[0]; }, {randn64({}, 482)});
    EXPECT_EQ(sum(randn64({}, 483), {0}).dim(), 0);
    EXPECT_EQ(max(randn64({}, 484), -1).second.item(), 0);
    EXPECT_EQ(argmax(randn64({}, 485), 0).dim(), 0);
}

TEST(GradCheckScalar, ZeroDimErrors) {
    // dims other than 0 / -1, and ops that need a dim to cut, throw (never read out of bounds)
    Tensor x = randn64({}, 486);
    auto expect_error = [](const std::function<void()>& f, const std::string& op) {
        try {
            f();
            ADD_FAILURE() << op << ": no error";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(op), std::string::npos) << e.what();
        }
    };
    expect_error([&] { sum(x, {1}); }, "sum");
    expect_error([&] { amax(x, {-2}); }, "amax");
    expect_error([&] { max(x, 1); }, "argmax");
    expect_error([&] { cat({x, x}, 0); }, "cat");
    expect_error([&] { x.narrow(0, 0, 1); }, "narrow");
    expect_error([&] { x.select(0, 0); }, "select");
    expect_error([&] { x.size(0); }, "size");
    expect_error([&] { index_select(x, 0, i64({0, 0}, {2})); }, "index_select");
}

// ---------------------------------------------------------------- empty tensors

TEST(GradCheckEmpty, GradientsOfEmptyAndZeroSizedInputs) {
    // an empty input still gets a (empty) gradient; a non-empty one gets exact zeros where its
    // elements do not reach the output
    Tensor empty03 = zeros({0, 3}, DType::F64);
    gradcheck([](Inputs in) { return cat({in[0], in[1]}, 0); }, {empty03, randn64({2, 3}, 490)});
    gradcheck([](Inputs in) { return sum(in[0], {0}); }, {empty03});
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {zeros({2, 0}, DType::F64), zeros({0, 3}, DType::F64)});
    gradcheck([](Inputs in) { return matmul(in[0], in[1]); }, {empty03, randn64({3, 2}, 491)});
    gradcheck([](Inputs in) { return softmax(in[0], -1) + log_softmax(in[0], 0); }, {empty03});
    gradcheck([](Inputs in) { return layer_norm(in[0], in[1], in[2]); }, {empty03, randn64({3}, 492), randn64({3}, 493)});
    gradcheck([](Inputs in) { return cross_entropy(in[0], zeros({0}, DType::I64), Reduction::Sum); }, {empty03});
    gradcheck([](Inputs in) { return index_select(in[0], 0, zeros({0}, DType::I64)); }, {randn64({3, 2}, 494)});
    // no queries: k and v get zero gradients
    gradcheck([](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2]); },
              {zeros({1, 2, 0, 3}, DType::F64), randn64({1, 2, 2, 3}, 495), randn64({1, 2, 2, 3}, 496)});
}

// ---------------------------------------------------------------- compositions

TEST(GradCheckComposite, SmallMlpAndLoss) {
    // a two-layer MLP with a cross-entropy loss: every piece of a training step at once
    Tensor target = i64({1, 0, 2}, {3});
    gradcheck(
        [target](Inputs in) {
            Tensor h = gelu(matmul(in[0], in[1]) + in[2]);
            Tensor logits = matmul(layer_norm(h, Tensor(), Tensor()), in[3]);
            return cross_entropy(logits, target);
        },
        {randn64({3, 4}, 450), randn64({4, 5}, 451), randn64({5}, 452), randn64({5, 3}, 453)});
}

TEST(GradCheckComposite, ContrastiveLogits) {
    // CLIP's loss: normalised embeddings, scaled cosine similarities, symmetric cross entropy
    Tensor labels = i64({0, 1, 2}, {3});
    gradcheck(
        [labels](Inputs in) {
            Tensor a = l2_normalize(in[0], -1), b = l2_normalize(in[1], -1);
            Tensor logits = matmul(a, b.t()) * exp(in[2]);
            return (cross_entropy(logits, labels) + cross_entropy(logits.t(), labels)) * 0.5;
        },
        {randn64({3, 4}, 460), randn64({3, 4}, 461), randn64({}, 462)});
}
