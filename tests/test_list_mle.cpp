// tests/test_list_mle.cpp
// tests: the fused ListMLE op list_mle (engine/ops/list_mle.cpp, CPU kernels in
// engine/cpu/cpu_list_mle.cpp) against its composite list_mle_composite, values and gradients,
// F32 and F64, with and without position weights, for B in {1, 2, 7, 33, 100}, on scores full
// of ties (a tied row maximum included); an F64 central-difference gradcheck; the formulas of
// docs/RANKCLIP.md ("ListMLE") evaluated by hand on one row; large scores without overflow; and the argument
// checks (a ranking that is not a permutation is an error naming list_mle).
// Tolerances: F64 1e-12 relative (+1e-12 absolute), F32 1e-5 relative (+1e-6 * max(B, 10)
// absolute: the gradients exp(u_j) sum_k w_k / Z_k - w_j cancel, and each side's F32 sums of B
// terms are ~B ulps off).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "test_util.h"

using namespace rankclip;
using rankclip::test::error_of;
using rankclip::test::expect_close;

namespace {

// (N, B) I64: an independent random permutation of 0..B-1 in each row.
Tensor random_order(int64_t N, int64_t B, Generator& gen) {
    std::vector<int64_t> all(N * B);
    for (int64_t n = 0; n < N; n++) gen.randperm(all.data() + n * B, B);
    return from_vector(all, {N, B}, DType::I64);
}

// (N, B) F64 scores on a grid of 1/2, so rows hold many exact ties; every row with B >= 2 gets
// its maximum twice (the second copy at a random column), and row N-1 is constant.
Tensor tied_scores(int64_t N, int64_t B, Generator& gen, double scale = 2.0) {
    std::vector<double> x(N * B);
    gen.fill_normal(x.data(), N * B, 0.0, scale);
    for (double& v : x) v = std::round(v * 2) / 2;
    std::vector<int64_t> col(1);
    for (int64_t n = 0; n < N; n++) {
        double* row = x.data() + n * B;
        if (n == N - 1 && N > 1) {
            for (int64_t k = 0; k < B; k++) row[k] = 0.5;
            continue;
        }
        if (B < 2) continue;
        int64_t at = 0;
        for (int64_t k = 1; k < B; k++)
            if (row[k] > row[at]) at = k;
        gen.fill_randint(col.data(), 1, 0, B);
        if (col[0] == at) col[0] = (at + 1) % B;
        row[col[0]] = row[at];
    }
    return from_vector(x, {N, B}, DType::F64);
}

Tensor log_weights(int64_t B) {
    std::vector<double> mu(B);
    for (int64_t k = 1; k <= B; k++) mu[k - 1] = 1.0 / std::log(1.0 + double(k));
    return from_vector(mu, {B}, DType::F64);
}

Tensor random_weights(int64_t B, Generator& gen) {
    Tensor w = rand({B}, gen, DType::F64);
    return w * 2.0 + 0.1;
}

TEST(ListMLEOp, FusedMatchesCompositeWithTiesAndWeights) {
    Generator gen(2024);
    for (int64_t B : {1, 2, 7, 33, 100})
        for (int64_t N : {int64_t(1), int64_t(5), B}) {
            Tensor x64 = tied_scores(N, B, gen);
            Tensor order = random_order(N, B, gen);
            std::vector<std::pair<std::string, Tensor>> weightings = {
                {"none", Tensor()}, {"log", log_weights(B)}, {"random", random_weights(B, gen)}};
            for (auto& [wname, w64] : weightings)
                for (DType dtype : {DType::F64, DType::F32}) {
                    SCOPED_TRACE("B=" + std::to_string(B) + " N=" + std::to_string(N) + " weights " + wname + " " +
                                 dtype_name(dtype));
                    // F32: the gradients exp(u) * prefix - w cancel; both sides are ~B ulps from the
                    // F64 result (measured: 3e-5 at B = 100), so the absolute bound grows with B
                    double rtol = dtype == DType::F64 ? 1e-12 : 1e-5;
                    double atol = dtype == DType::F64 ? 1e-12 : 1e-6 * double(std::max<int64_t>(B, 10));
                    Tensor x = x64.to(dtype);
                    Tensor w = w64.defined() ? w64.to(dtype) : Tensor();
                    Tensor fused = list_mle(x, order, w), composite = list_mle_composite(x, order, w);
                    EXPECT_EQ(fused.shape(), Shape({N}));
                    EXPECT_EQ(fused.dtype(), dtype);
                    expect_close(fused, composite, rtol, atol, "value");
                    test::expect_gradients_match(
                        [&](const std::vector<Tensor>& in) { return list_mle(in[0], order, w); },
                        [&](const std::vector<Tensor>& in) { return list_mle_composite(in[0], order, w); }, {x},
                        rtol, atol);
                }
        }
}

TEST(ListMLEOp, GradcheckF64) {
    Generator gen(7);
    for (int64_t B : {1, 2, 7, 12}) {
        Tensor x = randn({3, B}, gen, DType::F64) * 3.0;
        Tensor order = random_order(3, B, gen);
        for (Tensor w : {Tensor(), log_weights(B), random_weights(B, gen)}) {
            SCOPED_TRACE("B=" + std::to_string(B) + (w.defined() ? " weighted" : ""));
            test::gradcheck([&](const std::vector<Tensor>& in) { return list_mle(in[0], order, w); }, {x.clone()});
            test::gradcheck([&](const std::vector<Tensor>& in) { return list_mle_composite(in[0], order, w); },
                            {x.clone()});
        }
    }
    // a non-contiguous view of the scores gives the same gradient
    Tensor base = randn({6, 4}, gen, DType::F64);
    Tensor order = random_order(4, 6, gen);
    test::gradcheck([&](const std::vector<Tensor>& in) { return list_mle(in[0].t(), order); }, {base.clone()});
}

// docs/RANKCLIP.md ("ListMLE") by hand on one row: l = sum_k [log Z_k - x_pi(k)], Z_k = sum_{j>=k} exp(x_pi(j)),
// dl/dx_pi(j) = exp(x_pi(j)) sum_{k<=j} 1/Z_k - 1 (eps 0 here, so the formulas are exact).
TEST(ListMLEOp, MatchesTheFormulaByHand) {
    std::vector<double> xs = {0.3, -1.2, 2.5, 0.0, 1.1};
    std::vector<int64_t> pi = {2, 0, 4, 1, 3};
    const int64_t B = 5;
    std::vector<double> Z(B);
    double run = 0, loss = 0;
    for (int64_t k = B - 1; k >= 0; k--) Z[k] = run += std::exp(xs[pi[k]]);
    for (int64_t k = 0; k < B; k++) loss += std::log(Z[k]) - xs[pi[k]];
    std::vector<double> grad(B);
    double prefix = 0;
    for (int64_t j = 0; j < B; j++) {
        prefix += 1 / Z[j];
        grad[pi[j]] = std::exp(xs[pi[j]]) * prefix - 1;
    }
    Tensor x = from_vector(xs, {1, B}, DType::F64);
    x.set_requires_grad(true);
    Tensor out = list_mle(x, from_vector(pi, {1, B}, DType::I64), Tensor(), 0.0);
    EXPECT_NEAR(out.item(), loss, 1e-13 * loss);
    out.backward();
    expect_close(x.grad(), from_vector(grad, {1, B}, DType::F64), 1e-12, 1e-14, "gradient");
}

TEST(ListMLEOp, OneColumnAndConstantRows) {
    // B = 1: log(1 + eps) - 0 per row, zero gradient
    Tensor x = from_vector(std::vector<double>{3.0, -7.0}, {2, 1}, DType::F64);
    x.set_requires_grad(true);
    Tensor out = list_mle(x, zeros({2, 1}, DType::I64));
    expect_close(out, full({2}, std::log(1.0 + 1e-10), DType::F64), 1e-12, 0, "B=1 value");  // log(Z + eps)
    sum(out).backward();
    expect_close(x.grad(), zeros({2, 1}, DType::F64), 0, 1e-12, "B=1 gradient");
    // equal scores: l = sum_k log(B - k) (+ eps), whatever the order
    const int64_t B = 6;
    Tensor c = full({1, B}, 1.25, DType::F64);
    Generator gen(1);
    double want = 0;
    for (int64_t k = 0; k < B; k++) want += std::log(double(B - k) + 1e-10);
    EXPECT_NEAR(list_mle(c, random_order(1, B, gen)).item(), want, 1e-12 * want);
}

// Scores far from 0 (cosine similarities times s = 100, and worse): the max subtraction keeps
// every exp in range, so the loss is finite and agrees with the composite.
TEST(ListMLEOp, LargeScoresDoNotOverflow) {
    Generator gen(5);
    for (DType dtype : {DType::F32, DType::F64}) {
        Tensor x = (randn({4, 50}, gen, DType::F64) * 400.0 + 1000.0).to(dtype);
        Tensor order = random_order(4, 50, gen);
        Tensor fused = list_mle(x, order), composite = list_mle_composite(x, order);
        for (double v : fused.to_vector<double>()) EXPECT_TRUE(std::isfinite(v)) << v;
        expect_close(fused, composite, dtype == DType::F64 ? 1e-12 : 1e-5, 0, "value");
    }
}

TEST(ListMLEOp, ARankingThatIsNotAPermutationIsAnError) {
    Tensor x = zeros({2, 4}, DType::F64);
    auto check = [&](std::vector<int64_t> o, const std::string& what) {
        Tensor order = from_vector(o, {2, 4}, DType::I64);
        for (bool fused : {true, false}) {
            std::string err = error_of([&] { fused ? list_mle(x, order) : list_mle_composite(x, order); });
            EXPECT_NE(err.find("list_mle"), std::string::npos) << what << (fused ? " (fused)" : " (composite)")
                                                               << ": " << err;
        }
    };
    check({0, 1, 2, 3, 0, 1, 1, 3}, "a repeated column");
    check({0, 1, 2, 3, 0, 1, 2, 4}, "a column out of range");
    check({0, 1, 2, -1, 0, 1, 2, 3}, "a negative column");
    std::string err = error_of([&] { list_mle(x, zeros({2, 3}, DType::I64)); });
    EXPECT_NE(err.find("list_mle"), std::string::npos) << "wrong order shape: " << err;
    err = error_of([&] { list_mle(x, zeros({2, 4}, DType::F64)); });
    EXPECT_NE(err.find("list_mle"), std::string::npos) << "floating order: " << err;
    err = error_of([&] { list_mle(x, from_vector(std::vector<int64_t>{0, 1, 2, 3, 3, 2, 1, 0}, {2, 4}, DType::I64),
                                  ones({3}, DType::F64)); });
    EXPECT_NE(err.find("list_mle"), std::string::npos) << "wrong weight length: " << err;
}

}  // namespace
