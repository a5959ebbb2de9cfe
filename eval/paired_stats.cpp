// eval/paired_stats.cpp
// defines: incomplete_beta, student_t_cdf, student_t_quantile, paired_t_test, sign_test,
// interval_excludes_zero (eval/paired_stats.h). Plain double arithmetic, no tables: the t
// distribution comes from the regularized incomplete beta function, whose continued fraction is
// evaluated with the modified Lentz method (Numerical Recipes, 3rd ed., section 6.4), and for
// df > 1e5, where that fraction cancels, from the expansion of the t CDF in powers of 1/df.
#include "eval/paired_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/error.h"

namespace rankclip {

static const double kInf = std::numeric_limits<double>::infinity();

// ---- the regularized incomplete beta function ----

// The continued fraction of I_x(a, b) / (x^a (1-x)^b / (a B(a, b))):
//   1 / (1 + d1 / (1 + d2 / (1 + ...))),
//   d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)),
//   d_{2m}   =  m (b - m) x / ((a + 2m - 1)(a + 2m)),
// evaluated front to back with the modified Lentz method. It converges quickly for
// x < (a + 1) / (a + b + 2); the number of terms grows like sqrt(max(a, b)).
static double beta_continued_fraction(double a, double b, double x) {
    const double tiny = 1e-300;   // stands in for a zero denominator (Lentz)
    const double eps = 1e-16;
    const int max_terms = 1000000;
    double c = 1.0;
    double d = 1.0 - (a + b) * x / (a + 1.0);
    if (std::fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= max_terms; m++) {
        const double m2 = 2.0 * m;
        // even step: d_{2m}
        double coef = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + coef * d;
        if (std::fabs(d) < tiny) d = tiny;
        c = 1.0 + coef / c;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        h *= d * c;
        // odd step: d_{2m+1}
        coef = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + coef * d;
        if (std::fabs(d) < tiny) d = tiny;
        c = 1.0 + coef / c;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        const double delta = d * c;
        h *= delta;
        if (std::fabs(delta - 1.0) < eps) return h;
    }
    RC_CHECK(false, "incomplete_beta: the continued fraction did not converge in ", max_terms,
             " terms for a = ", a, ", b = ", b, ", x = ", x);
    return h;
}

// ln Gamma(x + s) - ln Gamma(x) for x >= 100 and s > 0, without the cancellation of two huge
// lgamma values: Stirling's series ln Gamma(x) = (x - 1/2) ln x - x + ln(2 pi) / 2 + c(x),
// c(x) = 1/(12x) - 1/(360x^3) + 1/(1260x^5) - 1/(1680x^7) (next term below 1e-21 at x = 100), so
//   ln Gamma(x + s) - ln Gamma(x) = s ln x + (x + s - 1/2) log1p(s / x) - s + c(x + s) - c(x).
static double log_gamma_ratio_large(double x, double s) {
    auto c = [](double z) {
        const double z2 = 1.0 / (z * z);
        return (1.0 / 12.0 - z2 * (1.0 / 360.0 - z2 * (1.0 / 1260.0 - z2 / 1680.0))) / z;
    };
    return s * std::log(x) + (x + s - 0.5) * std::log1p(s / x) - s + (c(x + s) - c(x));
}

// ln B(a, b) = ln Gamma(a) + ln Gamma(b) - ln Gamma(a + b). With a large and b small (the t
// distribution at large df: a = df / 2, b = 1/2) the plain formula loses about eps * a ln a to
// cancellation (1e-8 at df = 1e7), so there the large parameter's two terms go through
// log_gamma_ratio_large.
static double log_beta(double a, double b) {
    const double big = std::max(a, b), small = std::min(a, b);
    if (big >= 100.0) return std::lgamma(small) - log_gamma_ratio_large(big, small);
    return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
}

// I_x(a, b) with y = 1 - x given separately, so that a caller who knows 1 - x more accurately
// than the subtraction would give it (x close to 1) does not lose digits.
static double incomplete_beta_xy(double a, double b, double x, double y) {
    if (x <= 0.0) return 0.0;
    if (y <= 0.0) return 1.0;
    // log of the front factor x^a y^b / B(a, b); log(x) through log1p(-y) when x is close to 1.
    const double log_x = x < 0.5 ? std::log(x) : std::log1p(-y);
    const double log_y = y < 0.5 ? std::log(y) : std::log1p(-x);
    const double log_front = a * log_x + b * log_y - log_beta(a, b);
    const double front = std::exp(log_front);
    if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(a, b, x) / a;
    return 1.0 - front * beta_continued_fraction(b, a, y) / b;   // I_x(a, b) = 1 - I_{1-x}(b, a)
}

double incomplete_beta(double a, double b, double x) {
    RC_CHECK(a > 0 && b > 0 && std::isfinite(a) && std::isfinite(b), "incomplete_beta: a and b must be finite and > 0, got a = ",
             a, ", b = ", b);
    RC_CHECK(x >= 0 && x <= 1, "incomplete_beta: x must be in [0, 1], got ", x);
    return incomplete_beta_xy(a, b, x, 1.0 - x);
}

// ---- Student's t ----

static void check_df(double df, const char* op) {
    RC_CHECK(df > 0, op, ": degrees of freedom must be > 0, got ", df);   // also rejects NaN
}

// Above this df the continued fraction loses digits (its terms approach -1 and cancel: about
// 1e-18 * df absolute error for |t| > sqrt(3)), and the expansion in 1/df below is used instead.
static const double kLargeDf = 1e5;

// P(T >= t) for t >= 0 and df >= kLargeDf (or infinite), from the asymptotic expansion of the t
// distribution around the normal (Fisher's; derived by expanding the density
// (1 + t^2/df)^(-(df+1)/2) Gamma((df+1)/2) / (sqrt(df pi) Gamma(df/2)) in powers of 1/df):
//   P(T <= t) = Phi(t) - phi(t) (g1(t)/df + g2(t)/df^2 + g3(t)/df^3 + ...),
//   g1 = t (t^2 + 1) / 4,  g2 = t (t^2 - 3)(3t^4 + 2t^2 + 1) / 96,
//   g3 = t (t^10 - 11t^8 + 14t^6 + 6t^4 - 3t^2 - 15) / 384.
// Against 50-digit incomplete-beta values the truncation error is below 1e-19 from df = 1e5 on.
static double upper_tail_large_df(double t, double df) {
    const double v = std::isinf(df) ? 0.0 : 1.0 / df;
    const double t2 = t * t;
    const double g1 = t * (t2 + 1.0) / 4.0;
    const double g2 = t * (t2 - 3.0) * ((3.0 * t2 + 2.0) * t2 + 1.0) / 96.0;
    const double g3 = t * (((((t2 - 11.0) * t2 + 14.0) * t2 + 6.0) * t2 - 3.0) * t2 - 15.0) / 384.0;
    const double phi = std::exp(-0.5 * t2) / 2.5066282746310002;   // / sqrt(2 pi)
    return 0.5 * std::erfc(t / std::sqrt(2.0)) + phi * v * (g1 + v * (g2 + v * g3));
}

// P(T >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2) / 2, the one-sided tail, with both x and 1 - x
// formed without cancellation.
static double upper_tail(double t, double df) {
    t = std::fabs(t);
    if (std::isinf(t)) return 0.0;
    if (df >= kLargeDf) return upper_tail_large_df(t, df);
    // x = df / (df + t^2), 1 - x = t^2 / (df + t^2); through r = t / sqrt(df) so t^2 cannot overflow
    // before df is divided out.
    const double r = t / std::sqrt(df);
    double x, y;
    if (r < 1.0) {
        const double r2 = r * r;
        x = 1.0 / (1.0 + r2);
        y = r2 / (1.0 + r2);
    } else {
        const double s = 1.0 / r, s2 = s * s;   // x = s^2 / (1 + s^2)
        x = s2 / (1.0 + s2);
        y = 1.0 / (1.0 + s2);
    }
    return 0.5 * incomplete_beta_xy(0.5 * df, 0.5, x, y);
}

double student_t_cdf(double t, double df) {
    check_df(df, "student_t_cdf");
    RC_CHECK(!std::isnan(t), "student_t_cdf: t is NaN");
    const double tail = upper_tail(t, df);
    return t < 0 ? tail : 1.0 - tail;
}

double student_t_quantile(double p, double df) {
    check_df(df, "student_t_quantile");
    RC_CHECK(p > 0 && p < 1, "student_t_quantile: p must be in (0, 1), got ", p);
    if (p == 0.5) return 0.0;
    // Solve upper_tail(t) = q for t >= 0 with q = min(p, 1 - p) (the tail, not the CDF, so
    // that p close to 1 keeps its digits), then give the solution p's sign.
    const double q = std::min(p, 1.0 - p);
    double lo = 0.0, hi = 1.0;
    while (upper_tail(hi, df) > q && hi < 1e300) {   // the tail decreases in t: find a bracket
        lo = hi;
        hi *= 2.0;
    }
    // Bisection until lo and hi are adjacent doubles (or the midpoint rounds onto one of them).
    for (int i = 0; i < 4000; i++) {
        const double mid = lo + 0.5 * (hi - lo);
        if (mid <= lo || mid >= hi) break;
        if (upper_tail(mid, df) > q)
            lo = mid;
        else
            hi = mid;
    }
    const double t = lo + 0.5 * (hi - lo);
    return p < 0.5 ? -t : t;
}

// ---- paired tests ----

static void check_pairs(const std::vector<double>& a, const std::vector<double>& b, const char* op) {
    RC_CHECK(a.size() == b.size(), op, ": the two arms must have one value per seed, paired, but have different lengths (a: ",
             a.size(), ", b: ", b.size(), ")");
    for (size_t i = 0; i < a.size(); i++) {
        RC_CHECK(!std::isnan(a[i]), op, ": a[", i, "] is NaN");
        RC_CHECK(!std::isnan(b[i]), op, ": b[", i, "] is NaN");
        RC_CHECK(std::isfinite(a[i]), op, ": a[", i, "] is infinite (", a[i], ")");
        RC_CHECK(std::isfinite(b[i]), op, ": b[", i, "] is infinite (", b[i], ")");
    }
}

PairedTTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b, double confidence) {
    check_pairs(a, b, "paired_t_test");
    RC_CHECK(a.size() >= 2, "paired_t_test: needs at least 2 pairs (n - 1 degrees of freedom), got n = ", a.size());
    RC_CHECK(confidence > 0 && confidence < 1, "paired_t_test: confidence must be in (0, 1), got ", confidence);
    const size_t n = a.size();
    std::vector<double> d(n);
    for (size_t i = 0; i < n; i++) d[i] = a[i] - b[i];

    PairedTTest r;
    r.n = static_cast<int>(n);
    r.df = static_cast<double>(n - 1);
    const bool all_equal = std::all_of(d.begin(), d.end(), [&](double v) { return v == d[0]; });
    if (all_equal) {   // sd = 0 exactly (the sum below could leave a rounding residue)
        r.mean_diff = d[0];
        r.sd_diff = 0.0;
        r.t = d[0] > 0 ? kInf : d[0] < 0 ? -kInf : 0.0;
        r.p_two_sided = d[0] == 0 ? 1.0 : 0.0;
        r.ci_low = r.ci_high = d[0];
        return r;
    }
    double sum = 0;
    for (double v : d) sum += v;
    r.mean_diff = sum / static_cast<double>(n);
    double squares = 0;   // two passes: no cancellation from sum(d^2) - n mean^2
    for (double v : d) squares += (v - r.mean_diff) * (v - r.mean_diff);
    r.sd_diff = std::sqrt(squares / r.df);
    const double se = r.sd_diff / std::sqrt(static_cast<double>(n));
    r.t = r.mean_diff / se;
    r.p_two_sided = std::min(1.0, 2.0 * upper_tail(r.t, r.df));
    const double half_width = student_t_quantile(0.5 * (1.0 + confidence), r.df) * se;
    r.ci_low = r.mean_diff - half_width;
    r.ci_high = r.mean_diff + half_width;
    return r;
}

SignTest sign_test(const std::vector<double>& a, const std::vector<double>& b) {
    check_pairs(a, b, "sign_test");
    SignTest r;
    for (size_t i = 0; i < a.size(); i++) {
        if (a[i] > b[i])
            r.positive++;
        else if (a[i] < b[i])
            r.negative++;
        else
            r.ties++;
    }
    const int m = r.positive + r.negative;
    const int k = std::min(r.positive, r.negative);
    if (m == 0) {
        r.p_two_sided = 1.0;
        return r;
    }
    // sum_{j=0..k} C(m, j), built term by term (C(m, j) = C(m, j-1) (m - j + 1) / j), exact
    // while the terms fit in 53 bits. Term and sum share a power-of-two scale that is moved out
    // whenever the term grows large, so m in the thousands cannot overflow; the scale returns
    // with the division by 2^m.
    double term = 1.0, sum = 1.0;
    int scale = 0;   // the true values are term * 2^scale and sum * 2^scale
    for (int j = 1; j <= k; j++) {
        term = term * (m - j + 1) / j;
        sum += term;
        if (term > 0x1p500) {
            term = std::ldexp(term, -500);
            sum = std::ldexp(sum, -500);
            scale += 500;
        }
    }
    r.p_two_sided = std::min(1.0, 2.0 * std::ldexp(sum, scale - m));
    return r;
}

bool interval_excludes_zero(const PairedTTest& t) { return t.ci_low > 0 || t.ci_high < 0; }

}  // namespace rankclip
