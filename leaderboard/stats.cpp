// Significance statistics for record claims (COMPLIANCE.md §7): Student-t tail probabilities from the regularized
// incomplete beta function, one-sample and Welch one-sided t-tests, and the three forms compared side by side.
#include "leaderboard/stats.h"

#include <cmath>
#include <cstddef>
#include <string>

#include "core/error.h"

namespace pgolf {

namespace {

// The continued fraction converges in O(√max(a, b)) steps on the side of the symmetry point where it is used, so
// this cap is only reached by arguments far outside anything a t-test produces; hitting it is reported, not hidden.
constexpr int beta_max_iterations = 100000;
constexpr double beta_epsilon = 1e-15;
// Lentz's method replaces exact zeros in numerators and denominators by this to keep the recurrences finite.
constexpr double lentz_tiny = 1e-300;

double lentz_guard(double v) { return std::fabs(v) < lentz_tiny ? lentz_tiny : v; }

// Continued fraction for I_x(a, b) / prefactor, evaluated with the modified Lentz method. Only accurate where
// x < (a + 1) / (a + b + 2); the caller swaps arguments otherwise.
double beta_continued_fraction(double a, double b, double x) {
    // The fraction is 1 / (1 + d1 / (1 + d2 / (1 + ...))); the first step (d1) is folded into the starting values.
    double c = 1.0;
    double d = 1.0 / lentz_guard(1.0 - (a + b) * x / (a + 1.0));
    double f = d;
    for (int m = 1; m <= beta_max_iterations; ++m) {
        const double md = static_cast<double>(m);
        const double a2m = a + 2.0 * md;
        // Even coefficient d_{2m}.
        const double even = md * (b - md) * x / ((a2m - 1.0) * a2m);
        d = 1.0 / lentz_guard(1.0 + even * d);
        c = lentz_guard(1.0 + even / c);
        f *= c * d;
        // Odd coefficient d_{2m+1}.
        const double odd = -(a + md) * (a + b + md) * x / (a2m * (a2m + 1.0));
        d = 1.0 / lentz_guard(1.0 + odd * d);
        c = lentz_guard(1.0 + odd / c);
        const double delta = c * d;
        f *= delta;
        if (std::fabs(delta - 1.0) < beta_epsilon) {
            return f;
        }
    }
    throw Error("incomplete beta: continued fraction did not converge for a = " + std::to_string(a) +
                ", b = " + std::to_string(b) + ", x = " + std::to_string(x));
}

// Standard normal CDF, the df → ∞ limit of Student's t.
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

void check_alpha(const char* what, double alpha) {
    if (!(alpha >= 0.0 && alpha <= 1.0)) {
        throw Error(std::string(what) + ": alpha must be in [0, 1], got " + std::to_string(alpha));
    }
}

// Summarises one of stats_compare's four samples, naming it in any error so the user knows which input is wrong.
SampleSummary labelled_summary(const std::string& label, std::span<const double> values) {
    try {
        return stats_summary(values);
    } catch (const Error& e) {
        throw Error("significance: " + label + ": " + e.what());
    }
}

// The one-sample form of (b) and (c) when B has a single seed: its value is the only estimate of B's mean, and it
// carries no variance, so the test reduces to A against that value (minus the margin).
TTest one_sample_fallback(std::span<const double> a, double b_value, double margin, double alpha) {
    TTest test = stats_one_sample_lower(a, b_value - margin, alpha);
    test.margin = margin;
    return test;
}

}  // namespace

SampleSummary stats_summary(std::span<const double> values) {
    if (values.empty()) {
        throw Error("sample statistics: empty sample");
    }
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i])) {
            throw Error("sample statistics: non-finite value " + std::to_string(values[i]) + " at index " +
                        std::to_string(i));
        }
    }
    SampleSummary summary;
    summary.n = static_cast<std::int64_t>(values.size());
    double sum = 0.0;
    for (const double v : values) {
        sum += v;
    }
    summary.mean = sum / static_cast<double>(values.size());
    if (values.size() >= 2) {
        // Two passes: seed scores agree to many digits, so the one-pass Σx² − n·mean² form would cancel badly.
        double squares = 0.0;
        for (const double v : values) {
            const double dev = v - summary.mean;
            squares += dev * dev;
        }
        summary.std = std::sqrt(squares / static_cast<double>(values.size() - 1));
    }
    return summary;
}

double stats_regularized_incomplete_beta(double a, double b, double x) {
    if (!(a > 0.0) || !(b > 0.0) || !std::isfinite(a) || !std::isfinite(b)) {
        throw Error("incomplete beta: a and b must be finite and > 0, got a = " + std::to_string(a) +
                    ", b = " + std::to_string(b));
    }
    if (!(x >= 0.0 && x <= 1.0)) {
        throw Error("incomplete beta: x must be in [0, 1], got " + std::to_string(x));
    }
    if (x == 0.0) {
        return 0.0;
    }
    if (x == 1.0) {
        return 1.0;
    }
    // x^a (1 − x)^b / (a B(a, b)) in logs: the powers and the beta function overflow or underflow separately for the
    // large df/2 arguments of the t distribution, while their ratio is moderate.
    const double log_beta = std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
    const double log_front = a * std::log(x) + b * std::log1p(-x) - log_beta;
    if (x > (a + 1.0) / (a + b + 2.0)) {
        // The fraction converges slowly past its symmetry point; I_x(a, b) = 1 − I_{1−x}(b, a) moves back before it.
        return 1.0 - std::exp(log_front) * beta_continued_fraction(b, a, 1.0 - x) / b;
    }
    return std::exp(log_front) * beta_continued_fraction(a, b, x) / a;
}

double stats_student_t_cdf(double t, double df) {
    if (std::isnan(t)) {
        throw Error("student t cdf: t is NaN");
    }
    if (!(df > 0.0)) {
        throw Error("student t cdf: df must be > 0, got " + std::to_string(df));
    }
    if (std::isinf(t)) {
        return t < 0.0 ? 0.0 : 1.0;
    }
    if (std::isinf(df)) {
        return normal_cdf(t);
    }
    // P(|T| > |t|) = I_{df/(df+t²)}(df/2, 1/2); each tail holds half of it by symmetry.
    const double x = df / (df + t * t);
    const double two_tail = stats_regularized_incomplete_beta(0.5 * df, 0.5, x);
    return t < 0.0 ? 0.5 * two_tail : 1.0 - 0.5 * two_tail;
}

TTest stats_one_sample_lower(std::span<const double> a, double mu0, double alpha) {
    if (!std::isfinite(mu0)) {
        throw Error("one-sample t-test: mu0 must be finite, got " + std::to_string(mu0));
    }
    check_alpha("one-sample t-test", alpha);
    const SampleSummary s = stats_summary(a);
    if (s.n < 2) {
        throw Error("one-sample t-test: needs at least 2 values, got " + std::to_string(s.n));
    }
    if (s.std == 0.0) {
        throw Error("one-sample t-test: all " + std::to_string(s.n) + " values are equal, so t is undefined");
    }
    TTest test;
    test.name = "one_sample";
    test.t = (s.mean - mu0) / (s.std / std::sqrt(static_cast<double>(s.n)));
    test.df = static_cast<double>(s.n - 1);
    test.p = stats_student_t_cdf(test.t, test.df);
    test.margin = 0.0;
    test.alpha = alpha;
    test.significant = test.p < alpha;
    return test;
}

TTest stats_welch_lower(std::span<const double> a, std::span<const double> b, double margin, double alpha) {
    if (!std::isfinite(margin)) {
        throw Error("welch t-test: margin must be finite, got " + std::to_string(margin));
    }
    check_alpha("welch t-test", alpha);
    const SampleSummary sa = stats_summary(a);
    const SampleSummary sb = stats_summary(b);
    if (sa.n < 2 || sb.n < 2) {
        throw Error("welch t-test: needs at least 2 values in each sample, got " + std::to_string(sa.n) + " and " +
                    std::to_string(sb.n));
    }
    const double va = sa.std * sa.std / static_cast<double>(sa.n);
    const double vb = sb.std * sb.std / static_cast<double>(sb.n);
    const double var = va + vb;
    if (var == 0.0) {
        throw Error("welch t-test: both samples have zero spread, so the standard error is zero");
    }
    TTest test;
    test.name = "welch";
    test.t = (sa.mean - sb.mean + margin) / std::sqrt(var);
    // Welch–Satterthwaite with each variance term taken as a share of the total, which is algebraically the same as
    // (va + vb)² / (va²/(na−1) + vb²/(nb−1)) but cannot underflow to 0/0 when the variances are tiny.
    const double ra = va / var;
    const double rb = vb / var;
    test.df = 1.0 / (ra * ra / static_cast<double>(sa.n - 1) + rb * rb / static_cast<double>(sb.n - 1));
    test.p = stats_student_t_cdf(test.t, test.df);
    test.margin = margin;
    test.alpha = alpha;
    test.significant = test.p < alpha;
    return test;
}

Significance stats_compare(std::span<const double> a_bpb, std::span<const double> a_nats, std::span<const double> b_bpb,
                           std::span<const double> b_nats) {
    if (a_bpb.size() != a_nats.size()) {
        throw Error("significance: A has " + std::to_string(a_bpb.size()) + " bpb values but " +
                    std::to_string(a_nats.size()) + " nats values");
    }
    if (b_bpb.size() != b_nats.size()) {
        throw Error("significance: B has " + std::to_string(b_bpb.size()) + " bpb values but " +
                    std::to_string(b_nats.size()) + " nats values");
    }
    // Validate up front so that errors name the sample at fault rather than the test that happened to run first.
    const SampleSummary an = labelled_summary("A nats", a_nats);
    const SampleSummary ab = labelled_summary("A bpb", a_bpb);
    const SampleSummary bn = labelled_summary("B nats", b_nats);
    const SampleSummary bb = labelled_summary("B bpb", b_bpb);
    if (an.n < 2) {
        throw Error("significance: A needs at least 2 seeds for a t-test, got " + std::to_string(an.n));
    }
    const bool b_single = bn.n == 1;
    // Test (a) always, and the one-sample fallbacks, divide by A's own standard deviation alone.
    if (an.std == 0.0) {
        throw Error("significance: A's nats values are all equal; the one-sample test needs a non-zero spread");
    }
    if (b_single && ab.std == 0.0) {
        throw Error("significance: A's bpb values are all equal and B has a single seed; the test needs a spread");
    }
    if (!b_single && ab.std == 0.0 && bb.std == 0.0) {
        throw Error("significance: A's and B's bpb values are all equal; the Welch test needs a spread in one of them");
    }

    Significance result;
    result.one_sample_nats = stats_one_sample_lower(a_nats, bn.mean - stats_record_margin_nats, stats_readme_alpha);
    result.one_sample_nats.margin = stats_record_margin_nats;
    if (b_single) {
        result.welch_nats = one_sample_fallback(a_nats, b_nats[0], stats_record_margin_nats, stats_readme_alpha);
        result.welch_bpb = one_sample_fallback(a_bpb, b_bpb[0], 0.0, stats_progression_alpha);
    } else {
        result.welch_nats = stats_welch_lower(a_nats, b_nats, stats_record_margin_nats, stats_readme_alpha);
        result.welch_bpb = stats_welch_lower(a_bpb, b_bpb, 0.0, stats_progression_alpha);
    }
    result.one_sample_nats.name = "one_sample_nats";
    result.welch_nats.name = "welch_nats";
    result.welch_bpb.name = "welch_bpb";
    result.gate = "welch_bpb";
    result.passes = result.welch_bpb.significant;
    return result;
}

}  // namespace pgolf
