// Significance tests for "is this a record?" (COMPLIANCE.md §7): sample statistics with the n−1 standard deviation,
// the Student-t distribution through the regularized incomplete beta function, a one-sample one-sided t-test and
// Welch's one-sided two-sample test with the Welch–Satterthwaite degrees of freedom, and the three forms submitters
// and maintainers have used, with the maintainers' current progression rule (Welch on bpb, no margin, p < 0.25) as
// the gate.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace pgolf {

struct SampleSummary {
    std::int64_t n = 0;
    double mean = 0.0;
    double std = 0.0;  // sample standard deviation (n − 1); 0 when n < 2
};
// Throws on an empty sample or a non-finite value.
SampleSummary stats_summary(std::span<const double> values);

// I_x(a, b) for a, b > 0 and 0 ≤ x ≤ 1 (continued fraction): about 1e-14 relative for the arguments t-tests give;
// very large a or b lose about log10(a + b) digits in the lgamma prefactor (1e-9 at df = 1e7).
double stats_regularized_incomplete_beta(double a, double b, double x);
// P(T ≤ t) for Student's t with df > 0 degrees of freedom (df need not be an integer).
double stats_student_t_cdf(double t, double df);

struct TTest {
    std::string name;  // "one_sample_nats", "welch_nats", "welch_bpb", or the caller's
    double t = 0.0;
    double df = 0.0;
    double p = 1.0;            // one-sided: P(T ≤ t), small when A is lower (better)
    double margin = 0.0;       // what A must beat B's mean by, in the test's units
    double alpha = 0.0;        // the threshold the rule compares p with
    bool significant = false;  // p < alpha
};

// H1: mean(a) < mu0. t = (mean − mu0) / (s / √n), df = n − 1. Needs n ≥ 2 and s > 0 (throws otherwise).
TTest stats_one_sample_lower(std::span<const double> a, double mu0, double alpha);
// H1: mean(a) < mean(b) − margin. t = (mean_a − mean_b + margin) / √(s_a²/n_a + s_b²/n_b), Welch–Satterthwaite df.
// Needs n ≥ 2 in each sample and a non-zero standard error (throws otherwise).
TTest stats_welch_lower(std::span<const double> a, std::span<const double> b, double margin, double alpha);

// The challenge's margin (README: "at least 0.005 nats") and thresholds.
inline constexpr double stats_record_margin_nats = 0.005;
inline constexpr double stats_readme_alpha = 0.01;       // README text rule, p < 0.01
inline constexpr double stats_progression_alpha = 0.25;  // maintainers' progression rule since PR #1902

// The three forms of COMPLIANCE.md §7 for A (new) against B (previous), per-seed samples in both units:
// (a) one-sample test of A's nats against mean(B nats) − 0.005 (README rule, p < 0.01),
// (b) Welch in nats with the 0.005 margin (README rule, p < 0.01),
// (c) Welch on bpb with no margin (maintainers' progression rule, p < 0.25): the gate.
// B with a single sample makes (b) and (c) fall back to the one-sample form against B's value.
struct Significance {
    TTest one_sample_nats;
    TTest welch_nats;
    TTest welch_bpb;
    std::string gate = "welch_bpb";
    bool passes = false;  // the gate's verdict
};
Significance stats_compare(std::span<const double> a_bpb, std::span<const double> a_nats, std::span<const double> b_bpb,
                           std::span<const double> b_nats);

}  // namespace pgolf
