// eval/paired_stats.h
// defines: the statistics that compare two training arms run over the same seeds (arm A and arm
// B with seed i form pair i), for `rankclip experiment`:
//   student_t_cdf, student_t_quantile   Student's t distribution (any real df > 0), from the
//                                       regularized incomplete beta function I_x(a, b)
//                                       (beyond df = 1e5, an expansion in powers of 1/df)
//   paired_t_test                       the paired t-test on d_i = a_i - b_i, with its p-value
//                                       and a confidence interval for the mean difference
//   sign_test                           the exact binomial sign test on the signs of d_i
//   interval_excludes_zero              the decision rule: a difference counts only when the
//                                       confidence interval of the paired t-test excludes 0
//
// Conventions:
//   - Every p-value is two-sided.
//   - The paired t-test uses the sample standard deviation (divisor n - 1): with
//     mean = sum(d) / n and sd = sqrt(sum((d - mean)^2) / (n - 1)),
//       t = mean / (sd / sqrt(n)),  df = n - 1,  p = 2 P(T_df >= |t|),
//       interval = mean -/+ t_{(1 + confidence) / 2, df} * sd / sqrt(n).
//     When every d_i is the same (sd = 0) the test degenerates: t = +-inf and p = 0 (t = 0 and
//     p = 1 when that common difference is 0), and the interval is [mean, mean].
//   - The sign test drops ties (d_i == 0 exactly) and counts the positive and negative
//     differences; with m = positive + negative and k = min(positive, negative),
//       p = min(1, 2 * sum_{j=0..k} C(m, j) / 2^m),  and p = 1 when m = 0.
//   - Inputs must be finite numbers (a NaN from a diverged run is an Error, never a silent
//     result). Everything is computed in double and is deterministic.
#pragma once
#include <vector>

namespace rankclip {

// ---- Student's t distribution ----

// The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1 (Lentz's
// continued fraction, evaluated where it converges fast: for x > (a + 1) / (a + b + 2) it is
// computed as 1 - I_{1-x}(b, a)). Absolute error about 1e-14 while a and b are below a few
// hundred, or when only one of them is large (the t distribution: b = 1/2); with both large the
// log-gamma terms cancel and it grows like 1e-16 * min(a, b) (5e-13 at a = b = 5000).
double incomplete_beta(double a, double b, double x);

// P(T <= t) for T ~ Student's t with df degrees of freedom (df > 0, any real; df = inf gives the
// normal distribution). t may be +-inf. About 1e-14 absolute error for every df: up to df = 1e5
// from the incomplete beta function, above it (where the continued fraction loses digits to
// cancellation) from the asymptotic expansion of the t distribution in powers of 1/df.
double student_t_cdf(double t, double df);

// The t with student_t_cdf(t, df) = p, for 0 < p < 1 (bisection on the CDF down to adjacent
// doubles, so as accurate as the CDF allows: 1e-9 or better for the usual p and df).
double student_t_quantile(double p, double df);

// ---- paired tests ----

struct PairedTTest {
    int n = 0;                // pairs
    double mean_diff = 0;     // mean of d_i = a_i - b_i
    double sd_diff = 0;       // sample standard deviation of the d_i (divisor n - 1)
    double t = 0;             // mean_diff / (sd_diff / sqrt(n))
    double df = 0;            // n - 1
    double p_two_sided = 1;   // 2 P(T_df >= |t|)
    double ci_low = 0, ci_high = 0;   // the confidence interval of the mean difference
};

// a[i] and b[i] are the two arms' results for seed i. Needs equal lengths, at least 2 pairs,
// finite values and 0 < confidence < 1.
PairedTTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b, double confidence = 0.95);

struct SignTest {
    int positive = 0;         // pairs with a_i > b_i
    int negative = 0;         // pairs with a_i < b_i
    int ties = 0;             // pairs with a_i == b_i (dropped from the test)
    double p_two_sided = 1;
};

// Same inputs as paired_t_test, but any number of pairs (0 included: p = 1).
SignTest sign_test(const std::vector<double>& a, const std::vector<double>& b);

// True when the confidence interval of t lies entirely above or entirely below 0.
bool interval_excludes_zero(const PairedTTest& t);

}  // namespace rankclip
