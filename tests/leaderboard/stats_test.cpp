// Tests for leaderboard/stats: the known answers of COMPLIANCE.md §7 (submitters' one-sample and Welch tests and the
// maintainers' p-value progression rows), closed forms of the Student-t and incomplete-beta functions, and rejections.
#include "leaderboard/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "core/error.h"

namespace pgolf {
namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// PR #1019 (new) and PR #549 (old) per-seed val_loss in nats, COMPLIANCE.md §7 item 2.
const std::vector<double> welch_a = {1.88276292, 1.88156874, 1.88220393};
const std::vector<double> welch_b = {1.88976776, 1.88919190, 1.89110239};

// A sample of n values with exactly the given mean and n − 1 standard deviation: evenly spaced deviations around
// the mean, scaled. Lets the tests reproduce results that were published only as summary statistics.
std::vector<double> sample_with(double mean, double std, std::size_t n) {
    std::vector<double> dev(n);
    double squares = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        dev[i] = static_cast<double>(i) - static_cast<double>(n - 1) / 2.0;
        squares += dev[i] * dev[i];
    }
    const double scale = std / std::sqrt(squares / static_cast<double>(n - 1));
    std::vector<double> values(n);
    for (std::size_t i = 0; i < n; ++i) {
        values[i] = mean + dev[i] * scale;
    }
    return values;
}

// Any proportional nats → bpb map keeps the Welch t and df; this one has the shape of 1/ln 2 · tokens/byte.
std::vector<double> to_bpb(const std::vector<double>& nats) {
    std::vector<double> bpb;
    for (const double v : nats) {
        bpb.push_back(v / std::numbers::ln2 * 0.41);
    }
    return bpb;
}

template <typename F>
std::string error_message(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "<no Error thrown>";
}

// --- Known answers ---------------------------------------------------------------------------------------------

TEST(StatsOneSample, LongContextSeq2048ThreeSeeds) {
    // rec:2026-03-18_LongContextSeq2048: 3 seeds against 1.2243657 − 0.005 (in bpb), reported t = 31.42, p = 0.00051.
    const std::vector<double> a = {1.20576485, 1.2061746, 1.20715923};
    const SampleSummary s = stats_summary(a);
    EXPECT_EQ(s.n, 3);
    EXPECT_NEAR(s.mean, 1.20636623, 1e-8);
    EXPECT_NEAR(s.std, 0.00071667, 1e-8);
    const TTest test = stats_one_sample_lower(a, 1.2193657, 0.01);
    EXPECT_EQ(test.name, "one_sample");
    EXPECT_NEAR(test.t, -31.417, 0.001);
    EXPECT_EQ(test.df, 2.0);
    EXPECT_NEAR(test.p, 0.000506, 2e-6);
    EXPECT_EQ(test.alpha, 0.01);
    EXPECT_EQ(test.margin, 0.0);
    EXPECT_TRUE(test.significant);
}

TEST(StatsOneSample, LoraTttFourRuns) {
    // rec:2026-03-17_LoRA_TTT: README p = 0.00234486.
    const std::vector<double> a = {1.1927, 1.1935, 1.1921, 1.1929};
    const TTest test = stats_one_sample_lower(a, 1.195, 0.01);
    EXPECT_NEAR(test.t, -7.62, 0.01);
    EXPECT_EQ(test.df, 3.0);
    EXPECT_NEAR(test.p, 0.002345, 2e-6);
    EXPECT_NEAR(test.p, 0.00234486, 1e-7);
    EXPECT_TRUE(test.significant);
}

TEST(StatsOneSample, SignificantIsStrictlyPBelowAlpha) {
    const std::vector<double> a = {1.1927, 1.1935, 1.1921, 1.1929};
    const TTest loose = stats_one_sample_lower(a, 1.195, 0.0024);
    EXPECT_TRUE(loose.significant);
    const TTest tight = stats_one_sample_lower(a, 1.195, 0.0023);
    EXPECT_FALSE(tight.significant);
    // A above mu0 is the wrong direction: p > 0.5.
    const TTest worse = stats_one_sample_lower(a, 1.19, 0.25);
    EXPECT_GT(worse.t, 0.0);
    EXPECT_GT(worse.p, 0.5);
    EXPECT_FALSE(worse.significant);
}

TEST(StatsWelch, Pr1019VsPr549NoMargin) {
    // Matches the submission JSON's t_statistic / welch_df exactly.
    const TTest test = stats_welch_lower(welch_a, welch_b, 0.0, 0.01);
    EXPECT_EQ(test.name, "welch");
    EXPECT_NEAR(test.t, -11.8338, 1e-4);
    EXPECT_NEAR(test.df, 3.3063, 1e-4);
    EXPECT_NEAR(test.p, 0.000403393, 1e-8);  // mpmath reference
    EXPECT_EQ(test.margin, 0.0);
    EXPECT_TRUE(test.significant);
}

TEST(StatsWelch, Pr1019VsPr549WithRecordMargin) {
    // The README requirement Δ < −0.005 nats: t = −4.29, p = 0.0095 < 0.01.
    const TTest test = stats_welch_lower(welch_a, welch_b, stats_record_margin_nats, stats_readme_alpha);
    EXPECT_NEAR(test.t, -4.29, 0.01);
    EXPECT_NEAR(test.df, 3.3063, 1e-4);
    EXPECT_NEAR(test.p, 0.0095, 5e-4);
    EXPECT_EQ(test.margin, 0.005);
    EXPECT_EQ(test.alpha, 0.01);
    EXPECT_TRUE(test.significant);
}

TEST(StatsWelch, Pr1855SixSamplesVsPr1868Rerun) {
    // Only summary statistics were published (#1967): reproduce them with constructed samples.
    const std::vector<double> a = sample_with(1.060755, 0.000933, 6);
    const std::vector<double> b = sample_with(1.0614094, 0.0009347, 3);
    const SampleSummary sa = stats_summary(a);
    const SampleSummary sb = stats_summary(b);
    ASSERT_NEAR(sa.mean, 1.060755, 1e-12);
    ASSERT_NEAR(sa.std, 0.000933, 1e-12);
    ASSERT_NEAR(sb.mean, 1.0614094, 1e-12);
    ASSERT_NEAR(sb.std, 0.0009347, 1e-12);
    const TTest test = stats_welch_lower(a, b, 0.0, stats_progression_alpha);
    EXPECT_NEAR(test.t, -0.991, 0.005);
    EXPECT_NEAR(test.df, 4.08, 0.02);
    EXPECT_NEAR(test.p, 0.188, 0.003);  // README "p=0.188 vs PR #1868 latest rerun"
    EXPECT_TRUE(test.significant);
}

TEST(StatsWelch, SwappingSamplesMirrorsTheTest) {
    const TTest ab = stats_welch_lower(welch_a, welch_b, 0.0, 0.25);
    const TTest ba = stats_welch_lower(welch_b, welch_a, 0.0, 0.25);
    EXPECT_NEAR(ba.t, -ab.t, 1e-12);
    EXPECT_NEAR(ba.df, ab.df, 1e-12);
    EXPECT_NEAR(ba.p, 1.0 - ab.p, 1e-12);
    EXPECT_FALSE(ba.significant);
}

TEST(StatsWelch, OneZeroVarianceSampleGivesTheOtherSamplesDf) {
    // With s_b = 0 Welch–Satterthwaite reduces to n_a − 1 and t to the one-sample t against mean(b).
    const std::vector<double> b = {1.9, 1.9, 1.9, 1.9};
    const TTest welch = stats_welch_lower(welch_a, b, 0.0, 0.01);
    const TTest one = stats_one_sample_lower(welch_a, 1.9, 0.01);
    EXPECT_NEAR(welch.df, 2.0, 1e-12);
    EXPECT_NEAR(welch.t, one.t, 1e-9);
    EXPECT_NEAR(welch.p, one.p, 1e-12);
}

// --- Student-t CDF ---------------------------------------------------------------------------------------------

TEST(StatsStudentT, ZeroIsTheMedianForAnyDf) {
    for (const double df : {0.5, 1.0, 2.0, 3.3063, 30.0, 1e6}) {
        EXPECT_DOUBLE_EQ(stats_student_t_cdf(0.0, df), 0.5) << "df " << df;
    }
}

TEST(StatsStudentT, Symmetric) {
    for (const double df : {1.0, 2.5, 4.08, 17.0}) {
        for (const double t : {0.1, 0.991, 2.0, 11.8}) {
            EXPECT_NEAR(stats_student_t_cdf(-t, df), 1.0 - stats_student_t_cdf(t, df), 1e-14)
                << "t " << t << " df " << df;
        }
    }
}

TEST(StatsStudentT, CauchyAtOne) { EXPECT_NEAR(stats_student_t_cdf(1.0, 1.0), 0.75, 1e-12); }

TEST(StatsStudentT, CauchyClosedForm) {
    for (const double t : {-20.0, -0.3, 0.7, 5.0}) {
        EXPECT_NEAR(stats_student_t_cdf(t, 1.0), 0.5 + std::atan(t) / std::numbers::pi, 1e-12) << "t " << t;
    }
}

TEST(StatsStudentT, TwoDfClosedForm) {
    for (const double t : {-31.417, -4.0, -1.0, -0.25, 0.5, 1.0, 3.0, 100.0}) {
        EXPECT_NEAR(stats_student_t_cdf(t, 2.0), 0.5 + t / (2.0 * std::sqrt(t * t + 2.0)), 1e-12) << "t " << t;
    }
}

TEST(StatsStudentT, NonIntegerAndModerateDfAgainstReference) {
    // mpmath (40 digits) references.
    EXPECT_NEAR(stats_student_t_cdf(2.5, 3.0), 0.9561466764959672, 1e-13);
    EXPECT_NEAR(stats_student_t_cdf(-0.7, 4.5), 0.2592198011558090, 1e-13);
    EXPECT_NEAR(stats_student_t_cdf(3.0, 30.0), 0.9973050179671740, 1e-13);
}

TEST(StatsStudentT, LargeDfApproachesNormal) {
    EXPECT_NEAR(stats_student_t_cdf(1.96, 1e7), 0.9750021, 1e-6);
    EXPECT_NEAR(stats_student_t_cdf(1.96, inf), 0.5 * std::erfc(-1.96 / std::numbers::sqrt2), 1e-15);
}

TEST(StatsStudentT, InfiniteT) {
    EXPECT_EQ(stats_student_t_cdf(-inf, 3.0), 0.0);
    EXPECT_EQ(stats_student_t_cdf(inf, 3.0), 1.0);
    EXPECT_EQ(stats_student_t_cdf(-inf, 0.5), 0.0);
    EXPECT_EQ(stats_student_t_cdf(inf, 1e7), 1.0);
}

TEST(StatsStudentT, RejectsBadArguments) {
    EXPECT_THROW(stats_student_t_cdf(1.0, 0.0), Error);
    EXPECT_THROW(stats_student_t_cdf(1.0, -2.0), Error);
    EXPECT_THROW(stats_student_t_cdf(1.0, nan), Error);
    EXPECT_THROW(stats_student_t_cdf(nan, 3.0), Error);
}

// --- Regularized incomplete beta -------------------------------------------------------------------------------

TEST(StatsIncompleteBeta, UniformIsIdentity) {
    for (const double x : {0.0, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0}) {
        EXPECT_NEAR(stats_regularized_incomplete_beta(1.0, 1.0, x), x, 1e-14) << "x " << x;
    }
}

TEST(StatsIncompleteBeta, BEqualsOneIsPower) {
    for (const double a : {0.5, 2.0, 7.5}) {
        for (const double x : {0.05, 0.4, 0.9}) {
            EXPECT_NEAR(stats_regularized_incomplete_beta(a, 1.0, x), std::pow(x, a), 1e-14) << "a " << a << " x " << x;
        }
    }
}

TEST(StatsIncompleteBeta, AEqualsOneIsComplementPower) {
    for (const double b : {0.5, 3.0, 12.0}) {
        for (const double x : {0.05, 0.4, 0.9}) {
            EXPECT_NEAR(stats_regularized_incomplete_beta(1.0, b, x), 1.0 - std::pow(1.0 - x, b), 1e-14)
                << "b " << b << " x " << x;
        }
    }
}

TEST(StatsIncompleteBeta, SymmetricArgumentsAtOneHalf) {
    for (const double a : {0.5, 1.0, 3.7, 50.0, 1000.0}) {
        EXPECT_NEAR(stats_regularized_incomplete_beta(a, a, 0.5), 0.5, 1e-13) << "a " << a;
    }
}

TEST(StatsIncompleteBeta, GeneralValuesAgainstReference) {
    // mpmath references, on both sides of the symmetry point (a + 1) / (a + b + 2).
    EXPECT_NEAR(stats_regularized_incomplete_beta(2.5, 3.5, 0.3), 0.2967529892956664, 1e-14);
    EXPECT_NEAR(stats_regularized_incomplete_beta(100.0, 200.0, 0.35), 0.7325714649575441, 1e-12);
    EXPECT_NEAR(stats_regularized_incomplete_beta(0.5, 0.5, 0.9), 0.7951672353008666, 1e-14);
}

TEST(StatsIncompleteBeta, Endpoints) {
    for (const double a : {0.3, 1.0, 4.0}) {
        EXPECT_EQ(stats_regularized_incomplete_beta(a, 2.0, 0.0), 0.0);
        EXPECT_EQ(stats_regularized_incomplete_beta(a, 2.0, 1.0), 1.0);
    }
}

TEST(StatsIncompleteBeta, RejectsBadArguments) {
    EXPECT_THROW(stats_regularized_incomplete_beta(0.0, 1.0, 0.5), Error);
    EXPECT_THROW(stats_regularized_incomplete_beta(-1.0, 1.0, 0.5), Error);
    EXPECT_THROW(stats_regularized_incomplete_beta(1.0, 0.0, 0.5), Error);
    EXPECT_THROW(stats_regularized_incomplete_beta(1.0, 1.0, -0.01), Error);
    EXPECT_THROW(stats_regularized_incomplete_beta(1.0, 1.0, 1.01), Error);
    EXPECT_THROW(stats_regularized_incomplete_beta(1.0, 1.0, nan), Error);
    EXPECT_THROW(stats_regularized_incomplete_beta(nan, 1.0, 0.5), Error);
}

// --- Summary ---------------------------------------------------------------------------------------------------

TEST(StatsSummary, MeanAndSampleStd) {
    const std::vector<double> v = {2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0};
    const SampleSummary s = stats_summary(v);
    EXPECT_EQ(s.n, 8);
    EXPECT_DOUBLE_EQ(s.mean, 5.0);
    EXPECT_NEAR(s.std, std::sqrt(32.0 / 7.0), 1e-14);  // n − 1, not the population 2.0
}

TEST(StatsSummary, SingleValueHasZeroStd) {
    const std::vector<double> v = {1.2345};
    const SampleSummary s = stats_summary(v);
    EXPECT_EQ(s.n, 1);
    EXPECT_EQ(s.mean, 1.2345);
    EXPECT_EQ(s.std, 0.0);
}

TEST(StatsSummary, RejectsEmptyAndNonFinite) {
    EXPECT_THROW(stats_summary(std::vector<double>{}), Error);
    EXPECT_THROW(stats_summary(std::vector<double>{1.0, nan, 2.0}), Error);
    EXPECT_THROW(stats_summary(std::vector<double>{1.0, inf}), Error);
}

TEST(StatsTests, RejectDegenerateSamples) {
    const std::vector<double> one = {1.0};
    const std::vector<double> flat = {1.0, 1.0, 1.0};
    EXPECT_THROW(stats_one_sample_lower(one, 0.5, 0.01), Error);
    EXPECT_THROW(stats_one_sample_lower(flat, 0.5, 0.01), Error);
    EXPECT_THROW(stats_one_sample_lower(welch_a, nan, 0.01), Error);
    EXPECT_THROW(stats_welch_lower(one, welch_b, 0.0, 0.01), Error);
    EXPECT_THROW(stats_welch_lower(welch_a, one, 0.0, 0.01), Error);
    EXPECT_THROW(stats_welch_lower(flat, flat, 0.0, 0.01), Error);
    EXPECT_THROW(stats_welch_lower(welch_a, welch_b, inf, 0.01), Error);
}

// --- The three forms -------------------------------------------------------------------------------------------

TEST(StatsCompare, ThreeNamedTestsOnPr1019Data) {
    const Significance sig = stats_compare(to_bpb(welch_a), welch_a, to_bpb(welch_b), welch_b);
    EXPECT_EQ(sig.one_sample_nats.name, "one_sample_nats");
    EXPECT_EQ(sig.welch_nats.name, "welch_nats");
    EXPECT_EQ(sig.welch_bpb.name, "welch_bpb");
    EXPECT_EQ(sig.gate, "welch_bpb");

    // (a) A's nats against mean(B nats) − 0.005, df = n − 1 (mpmath: t = −8.238987, p = 0.00720697).
    EXPECT_NEAR(sig.one_sample_nats.t, -8.238987, 1e-5);
    EXPECT_EQ(sig.one_sample_nats.df, 2.0);
    EXPECT_NEAR(sig.one_sample_nats.p, 0.00720697, 1e-7);
    EXPECT_EQ(sig.one_sample_nats.margin, 0.005);
    EXPECT_EQ(sig.one_sample_nats.alpha, 0.01);
    EXPECT_TRUE(sig.one_sample_nats.significant);

    // (b) Welch in nats with the margin.
    EXPECT_NEAR(sig.welch_nats.t, -4.29, 0.01);
    EXPECT_NEAR(sig.welch_nats.p, 0.0095, 5e-4);
    EXPECT_EQ(sig.welch_nats.margin, 0.005);
    EXPECT_EQ(sig.welch_nats.alpha, 0.01);
    EXPECT_TRUE(sig.welch_nats.significant);

    // (c) Welch on bpb with no margin: a proportional unit change leaves t and df as in nats.
    EXPECT_NEAR(sig.welch_bpb.t, -11.8338, 1e-4);
    EXPECT_NEAR(sig.welch_bpb.df, 3.3063, 1e-4);
    EXPECT_EQ(sig.welch_bpb.margin, 0.0);
    EXPECT_EQ(sig.welch_bpb.alpha, 0.25);
    EXPECT_TRUE(sig.welch_bpb.significant);
    EXPECT_EQ(sig.passes, sig.welch_bpb.significant);
    EXPECT_TRUE(sig.passes);
}

TEST(StatsCompare, WorseRunDoesNotPass) {
    const Significance sig = stats_compare(to_bpb(welch_b), welch_b, to_bpb(welch_a), welch_a);
    EXPECT_FALSE(sig.welch_bpb.significant);
    EXPECT_FALSE(sig.passes);
    EXPECT_FALSE(sig.welch_nats.significant);
    EXPECT_FALSE(sig.one_sample_nats.significant);
}

TEST(StatsCompare, GateIgnoresTheNatsForms) {
    // #1514-style: a small bpb improvement passes the progression rule while failing the 0.005-nat README rule.
    const std::vector<double> a = {1.08120, 1.08150, 1.08090};
    const std::vector<double> b = {1.08240, 1.08280, 1.08270};
    const Significance sig = stats_compare(a, a, b, b);
    EXPECT_FALSE(sig.welch_nats.significant);
    EXPECT_FALSE(sig.one_sample_nats.significant);
    EXPECT_TRUE(sig.welch_bpb.significant);
    EXPECT_TRUE(sig.passes);
}

TEST(StatsCompare, SingleSeedBFallsBackToOneSample) {
    const std::vector<double> b_nats = {1.89};
    const std::vector<double> b_bpb = to_bpb(b_nats);
    const Significance sig = stats_compare(to_bpb(welch_a), welch_a, b_bpb, b_nats);
    EXPECT_EQ(sig.welch_nats.name, "welch_nats");
    EXPECT_EQ(sig.welch_bpb.name, "welch_bpb");
    EXPECT_EQ(sig.welch_nats.df, static_cast<double>(welch_a.size() - 1));
    EXPECT_EQ(sig.welch_bpb.df, static_cast<double>(welch_a.size() - 1));
    // (b) is A's nats against 1.89 − 0.005 (mpmath: t = −8.179029), (c) A's bpb against B's bpb value.
    EXPECT_NEAR(sig.welch_nats.t, -8.179029, 1e-5);
    EXPECT_EQ(sig.welch_nats.margin, 0.005);
    const TTest expected_bpb = stats_one_sample_lower(to_bpb(welch_a), b_bpb[0], 0.25);
    EXPECT_NEAR(sig.welch_bpb.t, expected_bpb.t, 1e-9);
    EXPECT_NEAR(sig.welch_bpb.p, expected_bpb.p, 1e-12);
    EXPECT_EQ(sig.welch_bpb.margin, 0.0);
    EXPECT_EQ(sig.passes, sig.welch_bpb.significant);
    // (a) is unchanged in form: mean(B) is B's single value.
    EXPECT_NEAR(sig.one_sample_nats.t, sig.welch_nats.t, 1e-9);
}

TEST(StatsCompare, SingleSeedAThrowsNamingA) {
    const std::vector<double> a_nats = {1.88};
    const std::string message = error_message([&] { stats_compare(to_bpb(a_nats), a_nats, to_bpb(welch_b), welch_b); });
    EXPECT_NE(message.find("A needs at least 2 seeds"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(StatsCompare, FlatANatsThrowsNamingA) {
    const std::vector<double> flat = {1.88, 1.88, 1.88};
    const std::string message = error_message([&] { stats_compare(to_bpb(flat), flat, to_bpb(welch_b), welch_b); });
    EXPECT_NE(message.find("A's nats"), std::string::npos) << message;
}

TEST(StatsCompare, MismatchedSizesThrow) {
    const std::vector<double> short_a = {1.88, 1.87};
    const std::vector<double> short_b = {1.89, 1.90};
    const std::string a_message = error_message([&] { stats_compare(short_a, welch_a, to_bpb(welch_b), welch_b); });
    EXPECT_NE(a_message.find("A has 2 bpb values but 3 nats values"), std::string::npos) << a_message;
    const std::string b_message = error_message([&] { stats_compare(to_bpb(welch_a), welch_a, short_b, welch_b); });
    EXPECT_NE(b_message.find("B has 2 bpb values but 3 nats values"), std::string::npos) << b_message;
}

TEST(StatsCompare, EmptyOrNonFiniteBThrowsNamingB) {
    const std::vector<double> empty;
    const std::string empty_message = error_message([&] { stats_compare(to_bpb(welch_a), welch_a, empty, empty); });
    EXPECT_NE(empty_message.find("B nats"), std::string::npos) << empty_message;
    const std::vector<double> bad = {1.89, nan, 1.90};
    const std::string nan_message =
        error_message([&] { stats_compare(to_bpb(welch_a), welch_a, to_bpb(welch_b), bad); });
    EXPECT_NE(nan_message.find("B nats"), std::string::npos) << nan_message;
}

}  // namespace
}  // namespace pgolf
