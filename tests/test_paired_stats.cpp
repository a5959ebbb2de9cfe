// tests/test_paired_stats.cpp
// tests: the statistics of eval/paired_stats.h against values that do not come from our code:
// Student's t quantiles from the standard tables, the closed forms of the t CDF for df = 1
// (Cauchy), 2 and 4, the normal limit, 50-digit incomplete-beta values from mpmath, a paired
// t-test and a sign test worked by hand in the comments, the exact sign-test tail of a large
// sample (Python's fractions), and the errors for malformed input.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "eval/paired_stats.h"
#include "test_util.h"

using namespace rankclip;
using rankclip::test::error_of;

namespace {

const double kPi = 3.14159265358979323846;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Closed forms of the t CDF (e.g. Wikipedia, "Student's t-distribution", table of CDFs):
double cauchy_cdf(double t) { return 0.5 + std::atan(t) / kPi; }                 // df = 1
double t2_cdf(double t) { return 0.5 + t / (2.0 * std::sqrt(2.0 + t * t)); }      // df = 2
double t4_cdf(double t) {                                                         // df = 4
    const double u = 1.0 + t * t / 4.0;
    return 0.5 + 0.375 * t / std::sqrt(u) * (1.0 - t * t / (12.0 * u));
}
double normal_cdf(double t) { return 0.5 * std::erfc(-t / std::sqrt(2.0)); }

}  // namespace

// ---- the incomplete beta function ----

TEST(PairedStats, IncompleteBetaClosedForms) {
    // I_x(a, 1) = x^a and I_x(1, b) = 1 - (1 - x)^b (the integrals of a x^(a-1) and b (1-x)^(b-1)),
    // I_{1/2}(a, a) = 1/2 by symmetry, and I_x(a, b) = 1 - I_{1-x}(b, a) always.
    // (x and 1 - x are both exact doubles here, so the last identity is not blurred by rounding.)
    for (double x : {0.0, 0x1p-20, 0.125, 0.375, 0.5, 0.8125, 1.0 - 0x1p-10, 1.0}) {
        for (double a : {0.3, 1.0, 2.5, 40.0}) {
            EXPECT_NEAR(incomplete_beta(a, 1.0, x), std::pow(x, a), 1e-14) << "a " << a << " x " << x;
            EXPECT_NEAR(incomplete_beta(1.0, a, x), 1.0 - std::pow(1.0 - x, a), 1e-14) << "b " << a << " x " << x;
            EXPECT_NEAR(incomplete_beta(a, 3.7, x) + incomplete_beta(3.7, a, 1.0 - x), 1.0, 1e-14);
        }
    }
    for (double a : {0.5, 1.0, 7.0, 123.0}) EXPECT_NEAR(incomplete_beta(a, a, 0.5), 0.5, 1e-13) << a;
    // With both parameters large the log-gamma terms cancel and cost digits (eval/paired_stats.h);
    // the t distribution never gets there (b = 1/2).
    EXPECT_NEAR(incomplete_beta(5000.0, 5000.0, 0.5), 0.5, 1e-11);
    EXPECT_TRUE(contains(error_of([] { incomplete_beta(0.0, 1.0, 0.5); }), "a and b must be finite and > 0"));
    EXPECT_TRUE(contains(error_of([] { incomplete_beta(1.0, 1.0, 1.5); }), "x must be in [0, 1]"));
}

// ---- Student's t ----

TEST(PairedStats, TQuantilesMatchTheTables) {
    // Two-sided 95% critical values t_{0.975, df}, as printed in the standard t tables (e.g. the
    // NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.6.7.2, to 3 decimals), here to 9
    // significant digits (they agree to every digit shown with a 30-digit mpmath inversion of
    // betainc).
    EXPECT_NEAR(student_t_quantile(0.975, 1), 12.7062047, 1e-6);
    EXPECT_NEAR(student_t_quantile(0.975, 2), 4.30265273, 1e-6);
    EXPECT_NEAR(student_t_quantile(0.975, 4), 2.77644511, 1e-6);
    EXPECT_NEAR(student_t_quantile(0.975, 5), 2.57058184, 1e-6);
    EXPECT_NEAR(student_t_quantile(0.975, 10), 2.22813885, 1e-6);
    EXPECT_NEAR(student_t_quantile(0.975, 30), 2.04227246, 1e-6);
    // The lower quantile is the negative of the upper one, and the median is 0.
    EXPECT_NEAR(student_t_quantile(0.025, 10), -2.22813885, 1e-6);
    EXPECT_EQ(student_t_quantile(0.5, 3), 0.0);
}

TEST(PairedStats, TQuantilesInvertTheClosedForms) {
    // df = 1: the Cauchy quantile tan(pi (p - 1/2)); df = 2: (2p - 1) / sqrt(2 p (1 - p)).
    for (double p : {1e-6, 0.01, 0.1, 0.3, 0.6, 0.9, 0.975, 0.995, 1 - 1e-6}) {
        const double cauchy = std::tan(kPi * (p - 0.5));
        EXPECT_NEAR(student_t_quantile(p, 1), cauchy, 1e-9 * std::max(1.0, std::fabs(cauchy))) << p;
        const double t2 = (2 * p - 1) / std::sqrt(2 * p * (1 - p));
        EXPECT_NEAR(student_t_quantile(p, 2), t2, 1e-9 * std::max(1.0, std::fabs(t2))) << p;
        // And for any df the quantile is where the CDF reaches p.
        for (double df : {0.7, 4.0, 17.5, 300.0})
            EXPECT_NEAR(student_t_cdf(student_t_quantile(p, df), df), p, 1e-12) << "p " << p << " df " << df;
    }
    EXPECT_TRUE(contains(error_of([] { student_t_quantile(1.0, 3); }), "p must be in (0, 1)"));
    EXPECT_TRUE(contains(error_of([] { student_t_quantile(0.0, 3); }), "p must be in (0, 1)"));
    EXPECT_TRUE(contains(error_of([] { student_t_quantile(0.5, 0); }), "degrees of freedom must be > 0"));
}

TEST(PairedStats, TCdfMatchesTheClosedForms) {
    const std::vector<double> ts = {-1e4, -50, -3, -1, -0.2, 0, 0.3, 1, 2.5, 10, 1e3};
    for (double t : ts) {
        EXPECT_NEAR(student_t_cdf(t, 1), cauchy_cdf(t), 1e-12) << t;
        EXPECT_NEAR(student_t_cdf(t, 2), t2_cdf(t), 1e-12) << t;
        EXPECT_NEAR(student_t_cdf(t, 4), t4_cdf(t), 1e-12) << t;
    }
    for (double df : {0.2, 1.0, 3.0, 7.5, 29.0, 1e3, 1e6}) {
        EXPECT_EQ(student_t_cdf(0.0, df), 0.5) << df;
        for (double t : ts) EXPECT_NEAR(student_t_cdf(-t, df), 1.0 - student_t_cdf(t, df), 1e-15) << t << " " << df;
    }
    const double inf = std::numeric_limits<double>::infinity();
    EXPECT_EQ(student_t_cdf(inf, 3), 1.0);
    EXPECT_EQ(student_t_cdf(-inf, 3), 0.0);
    EXPECT_TRUE(contains(error_of([] { student_t_cdf(kNaN, 3); }), "t is NaN"));
    EXPECT_TRUE(contains(error_of([] { student_t_cdf(1.0, -2); }), "degrees of freedom must be > 0"));
}

TEST(PairedStats, TCdfApproachesTheNormalForLargeDf) {
    // The t CDF differs from the normal by about phi(t) (t^3 + t) / (4 df): below 1e-7 at df = 1e7.
    for (double t : {-6.0, -2.5, -1.0, -0.1, 0.4, 1.96, 3.0, 8.0}) {
        EXPECT_NEAR(student_t_cdf(t, 1e7), normal_cdf(t), 1e-6) << t;
        EXPECT_NEAR(student_t_cdf(t, std::numeric_limits<double>::infinity()), normal_cdf(t), 1e-15) << t;
    }
    // Against mpmath (50 digits: betainc(df/2, 1/2, 0, df/(df + t^2), regularized=True) / 2), on
    // both sides of df = 1e5, where the code changes from the continued fraction to the
    // expansion in 1/df.
    EXPECT_NEAR(student_t_cdf(-2.0, 1e5), 0.022751481728753232, 1e-15);
    EXPECT_NEAR(student_t_cdf(3.0, 1e5), 0.99864976955796764, 1e-15);
    EXPECT_NEAR(student_t_cdf(-2.0, 1e9), 0.022750132083156624, 1e-15);
    EXPECT_NEAR(student_t_cdf(3.0, 1e12), 0.99865010196833667, 1e-15);
    EXPECT_NEAR(student_t_cdf(2.5, 99999.0), student_t_cdf(2.5, 100001.0), 1e-9);
}

// ---- paired t-test ----

TEST(PairedStats, PairedTTestWorkedByHand) {
    // d = a - b = {0.5, 0.2, 0.9, -0.4, 1.1}, n = 5.
    //   mean = 2.3 / 5 = 0.46
    //   d - mean = {0.04, -0.26, 0.44, -0.86, 0.64}
    //   squares  = {0.0016, 0.0676, 0.1936, 0.7396, 0.4096}, sum = 1.412
    //   variance = 1.412 / (n - 1) = 0.353, sd = sqrt(0.353) = 0.59413803...
    //   se = sd / sqrt(5) = sqrt(0.353 / 5) = sqrt(0.0706) = 0.26570661...
    //   t = 0.46 / sqrt(0.0706) = 1.73123284..., df = 4
    //   p = 2 (1 - F_4(t)) with the df = 4 closed form F_4 (t4_cdf above) = 0.15845393...
    //   95% interval: 0.46 -/+ 2.77644511 * sqrt(0.0706) = 0.46 -/+ 0.73771980 = [-0.27771980, 1.19771980]
    const std::vector<double> a = {1, 2, 3, 4, 5}, b = {0.5, 1.8, 2.1, 4.4, 3.9};
    PairedTTest r = paired_t_test(a, b);
    EXPECT_EQ(r.n, 5);
    EXPECT_EQ(r.df, 4.0);
    EXPECT_NEAR(r.mean_diff, 0.46, 1e-12);
    EXPECT_NEAR(r.sd_diff, std::sqrt(0.353), 1e-12);
    const double t = 0.46 / std::sqrt(0.0706);
    EXPECT_NEAR(r.t, t, 1e-11);
    EXPECT_NEAR(r.t, 1.73123284, 1e-8);
    EXPECT_NEAR(r.p_two_sided, 2.0 * (1.0 - t4_cdf(t)), 1e-11);
    EXPECT_NEAR(r.p_two_sided, 0.15845393, 1e-8);
    const double half = 2.77644511 * std::sqrt(0.0706);   // the table quantile, 9 digits
    EXPECT_NEAR(r.ci_low, 0.46 - half, 1e-8);
    EXPECT_NEAR(r.ci_high, 0.46 + half, 1e-8);
    EXPECT_FALSE(interval_excludes_zero(r));   // p = 0.16: the interval spans 0

    // A 90% interval uses t_{0.95, 4} = 2.13184679 (tables).
    PairedTTest r90 = paired_t_test(a, b, 0.90);
    EXPECT_NEAR(r90.ci_high - r90.mean_diff, 2.13184679 * std::sqrt(0.0706), 1e-8);
    EXPECT_EQ(r90.p_two_sided, r.p_two_sided);

    // Swapping the arms flips the signs and keeps p.
    PairedTTest s = paired_t_test(b, a);
    EXPECT_NEAR(s.mean_diff, -0.46, 1e-12);
    EXPECT_NEAR(s.t, -t, 1e-11);
    EXPECT_NEAR(s.p_two_sided, r.p_two_sided, 1e-15);
    EXPECT_NEAR(s.ci_low, -r.ci_high, 1e-12);
}

TEST(PairedStats, PairedTTestTwoPairsIsCauchy) {
    // d = {3 - 1, 5 - 2} = {2, 3}: mean 2.5, deviations -/+0.5, variance (0.25 + 0.25) / 1 = 0.5,
    // se = sqrt(0.5) / sqrt(2) = 0.5, t = 2.5 / 0.5 = 5, df = 1 (Cauchy):
    //   p = 2 P(T >= 5) = 1 - 2 atan(5) / pi = 0.12566591...
    //   95% interval: 2.5 -/+ 12.7062047 * 0.5 = [-3.85310235, 8.85310235] (spans 0)
    PairedTTest r = paired_t_test({3, 5}, {1, 2});
    EXPECT_EQ(r.n, 2);
    EXPECT_EQ(r.df, 1.0);
    EXPECT_NEAR(r.mean_diff, 2.5, 1e-15);
    EXPECT_NEAR(r.sd_diff, std::sqrt(0.5), 1e-15);
    EXPECT_NEAR(r.t, 5.0, 1e-14);
    EXPECT_NEAR(r.p_two_sided, 1.0 - 2.0 * std::atan(5.0) / kPi, 1e-14);
    EXPECT_NEAR(r.ci_low, 2.5 - 0.5 * std::tan(0.475 * kPi), 1e-9);   // t_{0.975,1} = tan(0.475 pi)
    EXPECT_NEAR(r.ci_high, 2.5 + 0.5 * 12.7062047, 1e-6);
    EXPECT_FALSE(interval_excludes_zero(r));
}

TEST(PairedStats, IntervalExcludesZeroOnAClearDifference) {
    // d = {1.0, 1.2, 0.9, 1.1, 1.0, 1.05} (6 seeds, arm A better every time):
    //   mean = 6.25 / 6 = 1.0416667, squares of deviations sum to 0.0520833, sd = sqrt(0.0104167) = 0.1020621,
    //   se = 0.0416667, t = 25.0, df = 5, half-width = 2.57058184 * 0.0416667 = 0.1071076:
    //   interval [0.9345591, 1.1487743], far above 0.
    const std::vector<double> b = {10.0, 10.5, 11.0, 10.2, 10.8, 10.4};
    const std::vector<double> d = {1.0, 1.2, 0.9, 1.1, 1.0, 1.05};
    std::vector<double> a(b.size());
    for (size_t i = 0; i < b.size(); i++) a[i] = b[i] + d[i];
    PairedTTest r = paired_t_test(a, b);
    EXPECT_NEAR(r.mean_diff, 6.25 / 6, 1e-12);
    EXPECT_NEAR(r.sd_diff, std::sqrt(0.0625 / 6), 1e-12);   // 0.0520833 / 5 = 0.0104167 = 0.0625 / 6
    EXPECT_NEAR(r.t, 25.0, 1e-9);
    EXPECT_NEAR(r.ci_low, 6.25 / 6 - 2.57058184 * 0.25 / 6, 1e-8);
    EXPECT_LT(r.p_two_sided, 1e-5);
    EXPECT_TRUE(interval_excludes_zero(r));
    PairedTTest s = paired_t_test(b, a);   // arm A worse every time: the interval is below 0
    EXPECT_LT(s.ci_high, 0.0);
    EXPECT_TRUE(interval_excludes_zero(s));
}

TEST(PairedStats, PairedTTestWithZeroSpread) {
    // Every difference 0.25 (exact in binary): sd = 0, t = +inf, p = 0, interval [0.25, 0.25].
    PairedTTest r = paired_t_test({1.25, 2.25, 3.25}, {1, 2, 3});
    EXPECT_EQ(r.mean_diff, 0.25);
    EXPECT_EQ(r.sd_diff, 0.0);
    EXPECT_EQ(r.t, std::numeric_limits<double>::infinity());
    EXPECT_EQ(r.p_two_sided, 0.0);
    EXPECT_EQ(r.ci_low, 0.25);
    EXPECT_EQ(r.ci_high, 0.25);
    EXPECT_TRUE(interval_excludes_zero(r));
    PairedTTest neg = paired_t_test({1, 2, 3}, {1.25, 2.25, 3.25});
    EXPECT_EQ(neg.t, -std::numeric_limits<double>::infinity());
    EXPECT_EQ(neg.p_two_sided, 0.0);
    // Identical arms: t = 0, p = 1, interval [0, 0], which contains 0.
    PairedTTest same = paired_t_test({0.3, 0.7}, {0.3, 0.7});
    EXPECT_EQ(same.t, 0.0);
    EXPECT_EQ(same.p_two_sided, 1.0);
    EXPECT_EQ(same.ci_low, 0.0);
    EXPECT_EQ(same.ci_high, 0.0);
    EXPECT_FALSE(interval_excludes_zero(same));
}

TEST(PairedStats, PairedTTestErrors) {
    const std::string lengths = error_of([] { paired_t_test({1, 2, 3}, {1, 2}); });
    EXPECT_TRUE(contains(lengths, "different lengths (a: 3, b: 2)")) << lengths;
    const std::string one = error_of([] { paired_t_test({1}, {2}); });
    EXPECT_TRUE(contains(one, "at least 2 pairs")) << one;
    EXPECT_TRUE(contains(one, "n = 1")) << one;
    EXPECT_TRUE(contains(error_of([] { paired_t_test({}, {}); }), "at least 2 pairs"));
    const std::string nan_a = error_of([] { paired_t_test({1, kNaN, 3}, {1, 2, 3}); });
    EXPECT_TRUE(contains(nan_a, "a[1] is NaN")) << nan_a;
    const std::string nan_b = error_of([] { paired_t_test({1, 2, 3}, {1, 2, kNaN}); });
    EXPECT_TRUE(contains(nan_b, "b[2] is NaN")) << nan_b;
    const std::string inf = error_of([] { paired_t_test({1, std::numeric_limits<double>::infinity()}, {1, 2}); });
    EXPECT_TRUE(contains(inf, "a[1] is infinite")) << inf;
    EXPECT_TRUE(contains(error_of([] { paired_t_test({1, 2}, {2, 2}, 1.0); }), "confidence must be in (0, 1)"));
}

// ---- sign test ----

TEST(PairedStats, SignTestExactBinomial) {
    // 5 positive, 0 negative: p = 2 C(5,0) / 2^5 = 2 / 32 = 0.0625.
    SignTest r = sign_test({1, 2, 3, 4, 5}, {0, 0, 0, 0, 0});
    EXPECT_EQ(r.positive, 5);
    EXPECT_EQ(r.negative, 0);
    EXPECT_EQ(r.ties, 0);
    EXPECT_DOUBLE_EQ(r.p_two_sided, 0.0625);

    // 9 positive, 1 negative: p = 2 (C(10,0) + C(10,1)) / 2^10 = 2 * 11 / 1024 = 0.021484375.
    std::vector<double> a(10, 1.0), b(10, 0.0);
    b[3] = 2.0;
    r = sign_test(a, b);
    EXPECT_EQ(r.positive, 9);
    EXPECT_EQ(r.negative, 1);
    EXPECT_DOUBLE_EQ(r.p_two_sided, 0.021484375);
    // The same with the arms swapped.
    r = sign_test(b, a);
    EXPECT_EQ(r.positive, 1);
    EXPECT_EQ(r.negative, 9);
    EXPECT_DOUBLE_EQ(r.p_two_sided, 0.021484375);

    // 3 and 3: 2 (1 + 6 + 15 + 20) / 64 = 84 / 64 > 1, so p = 1.
    r = sign_test({1, 1, 1, 0, 0, 0}, {0, 0, 0, 1, 1, 1});
    EXPECT_EQ(r.positive, 3);
    EXPECT_EQ(r.negative, 3);
    EXPECT_EQ(r.p_two_sided, 1.0);
}

TEST(PairedStats, SignTestDropsTies) {
    // d = {+, 0, +, 0, +, +, +}: 5 positive, 2 ties dropped, so m = 5 and p = 2 / 32 as above.
    SignTest r = sign_test({2, 1, 2, 1, 2, 2, 2}, {1, 1, 1, 1, 1, 1, 1});
    EXPECT_EQ(r.positive, 5);
    EXPECT_EQ(r.negative, 0);
    EXPECT_EQ(r.ties, 2);
    EXPECT_DOUBLE_EQ(r.p_two_sided, 0.0625);
    // All ties (m = 0) and no pairs at all: nothing to test, p = 1.
    r = sign_test({1, 2, 3}, {1, 2, 3});
    EXPECT_EQ(r.ties, 3);
    EXPECT_EQ(r.positive + r.negative, 0);
    EXPECT_EQ(r.p_two_sided, 1.0);
    EXPECT_EQ(sign_test({}, {}).p_two_sided, 1.0);
}

TEST(PairedStats, SignTestLargeSamples) {
    // 600 positive, 400 negative: p = 2 sum_{j<=400} C(1000, j) / 2^1000. Exactly (Python:
    // Fraction(2 * sum(math.comb(1000, j) for j in range(401)), 2**1000)) 2.7284641560660184e-10.
    std::vector<double> a(1000, 0.0), b(1000, 0.0);
    for (int i = 0; i < 600; i++) a[i] = 1.0;
    for (int i = 600; i < 1000; i++) b[i] = 1.0;
    SignTest r = sign_test(a, b);
    EXPECT_EQ(r.positive, 600);
    EXPECT_EQ(r.negative, 400);
    EXPECT_GT(r.p_two_sided, 0.0);
    EXPECT_NEAR(r.p_two_sided, 2.7284641560660184e-10, 1e-9 * 2.7284641560660184e-10);
    // The same sum in log space with lgamma, a different route to the same number.
    double log_space = 0;
    for (int j = 0; j <= 400; j++)
        log_space += std::exp(std::lgamma(1001.0) - std::lgamma(j + 1.0) - std::lgamma(1001.0 - j) - 1000 * std::log(2.0));
    EXPECT_NEAR(r.p_two_sided, 2 * log_space, 1e-9 * r.p_two_sided);

    // 500 and 500: 2 sum_{j<=500} C(1000, j) / 2^1000 = 1 + C(1000, 500) / 2^1000 > 1, so p = 1.
    for (int i = 0; i < 1000; i++) {
        a[i] = i < 500 ? 1.0 : 0.0;
        b[i] = i < 500 ? 0.0 : 1.0;
    }
    r = sign_test(a, b);
    EXPECT_EQ(r.positive, 500);
    EXPECT_EQ(r.negative, 500);
    EXPECT_EQ(r.p_two_sided, 1.0);

    // 3000 and 0, past the range of a double for 2^m: p = 2^-2999, below the smallest double, is 0;
    // 1100 vs 1000 still works term by term: a finite p between 0 and 1.
    std::vector<double> ones(3000, 1.0), zeros(3000, 0.0);
    EXPECT_EQ(sign_test(ones, zeros).p_two_sided, 0.0);
    std::vector<double> c(2100, 0.0), e(2100, 0.0);
    for (int i = 0; i < 1100; i++) c[i] = 1.0;
    for (int i = 1100; i < 2100; i++) e[i] = 1.0;
    const double p = sign_test(c, e).p_two_sided;
    EXPECT_GT(p, 0.0);
    EXPECT_LT(p, 1.0);
}

TEST(PairedStats, SignTestErrors) {
    const std::string lengths = error_of([] { sign_test({1, 2}, {1}); });
    EXPECT_TRUE(contains(lengths, "different lengths (a: 2, b: 1)")) << lengths;
    const std::string nan = error_of([] { sign_test({1, 2}, {kNaN, 1}); });
    EXPECT_TRUE(contains(nan, "b[0] is NaN")) << nan;
}
