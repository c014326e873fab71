// The validation gate (C3, C4 in both modes, events), the sliding-window plan (every target once over a sweep of
// stream lengths, windows and strides; the reference's end quirk), the sliding evaluation through the gate, and the
// causality probe against an honest and a leaking evaluator.
#include "model/validation_gate.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/events.h"
#include "core/shard.h"
#include "core/token_stream.h"
#include "core/tokenizer.h"
#include "model/config.h"
#include "model/evaluate.h"
#include "model/gpt.h"
#include "model/random.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

const TokenizerByteTables& sp1024_tables() {
    static const TokenizerByteTables tables =
        Tokenizer::load(test::test_source_path("data/tokenizers/fineweb_1024_bpe.model")).byte_tables(1024);
    return tables;
}

std::vector<std::uint16_t> sample_tokens(std::size_t count) {
    const std::vector<std::uint16_t> all = validation_tokens_load(
        shard_glob(test::test_source_path("data/datasets/fineweb10B_sp1024_mini") + "/fineweb_val_*.bin"), 1);
    return std::vector<std::uint16_t>(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(count));
}

TEST(ValidationGate, HandsOutWindowsAndCountsBytesOfCommittedTargets) {
    const std::vector<std::uint16_t> tokens = sample_tokens(100);
    std::vector<GateEvent> events;
    ValidationGate gate(tokens, sp1024_tables(), GateMode::enforce, [&](const GateEvent& e) { events.push_back(e); });
    EXPECT_EQ(gate.target_count(), 99);
    const GateWindow window = gate.score(10, 20, "w0");
    ASSERT_EQ(window.inputs.size(), 10u);
    EXPECT_EQ(window.inputs.front(), tokens[10]);
    EXPECT_EQ(window.targets.front(), tokens[11]);
    EXPECT_EQ(window.targets.back(), tokens[20]);
    const std::vector<float> nll(10, 2.0f);
    const std::int64_t bytes = gate.commit(11, nll);
    std::int64_t expected = 0;
    for (std::size_t p = 11; p < 21; ++p) expected += sp1024_tables().target_bytes(tokens[p - 1], tokens[p]);
    EXPECT_EQ(bytes, expected);
    EXPECT_TRUE(gate.committed(11, 21));
    EXPECT_FALSE(gate.committed(10, 21));
    const GateTotals totals = gate.totals();
    EXPECT_EQ(totals.targets, 10);
    EXPECT_DOUBLE_EQ(totals.nll_sum, 20.0);
    EXPECT_EQ(totals.unscored, 89);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].kind, GateEventKind::score);
    EXPECT_EQ(events[0].weights_digest, "w0");
    EXPECT_EQ(events[1].kind, GateEventKind::commit);
    EXPECT_EQ(events[1].begin, 11);
    EXPECT_EQ(events[1].end, 21);
}

TEST(ValidationGate, EnforceRefusesAdaptOnUnscoredTokensAndDoubleCommits) {
    const std::vector<std::uint16_t> tokens = sample_tokens(100);
    ValidationGate gate(tokens, sp1024_tables(), GateMode::enforce);
    const std::vector<float> nll(49, 1.0f);
    gate.commit(1, nll);                       // targets [1, 50)
    EXPECT_EQ(gate.adapt(0, 50).size(), 50u);  // token 0 is no target; 1 … 49 are scored
    const std::string refused = test::error_message([&] { gate.adapt(40, 60); });
    EXPECT_NE(refused.find("C3"), std::string::npos) << refused;
    EXPECT_NE(refused.find("targets [50, 60)"), std::string::npos) << refused;
    const std::vector<float> again(5, 1.0f);
    const std::string twice = test::error_message([&] { gate.commit(45, again); });
    EXPECT_NE(twice.find("C4"), std::string::npos) << twice;
    EXPECT_NE(twice.find("[45, 50)"), std::string::npos) << twice;
    // A refused commit changed nothing.
    EXPECT_EQ(gate.totals().targets, 49);
    EXPECT_TRUE(gate.violations().empty());
    EXPECT_NE(test::error_message([&] { gate.score(90, 100); }).find("outside"), std::string::npos);
    const std::vector<float> bad(1, std::nanf(""));
    EXPECT_NE(test::error_message([&] { gate.commit(60, bad); }).find("non-finite"), std::string::npos);
}

TEST(ValidationGate, ObserveRecordsViolationsAndProceeds) {
    const std::vector<std::uint16_t> tokens = sample_tokens(100);
    std::int64_t violation_events = 0;
    ValidationGate gate(tokens, sp1024_tables(), GateMode::observe, [&](const GateEvent& e) {
        if (e.kind == GateEventKind::violation) ++violation_events;
    });
    EXPECT_EQ(gate.adapt(0, 100).size(), 100u);
    const std::vector<float> nll(10, 1.0f);
    gate.commit(1, nll);
    gate.commit(5, nll);
    ASSERT_EQ(gate.violations().size(), 2u);
    EXPECT_EQ(gate.violations()[0].rule, "C3");
    EXPECT_EQ(gate.violations()[1].rule, "C4");
    EXPECT_EQ(violation_events, 2);
    const GateTotals totals = gate.totals();
    EXPECT_EQ(totals.targets, 20);  // the reference's sums count a rescored target again
    EXPECT_EQ(totals.rescored, 6);
    EXPECT_EQ(gate.target_nll()[5], 1.0f);
    EXPECT_EQ(gate_mode_parse("observe"), GateMode::observe);
    EXPECT_NE(test::error_message([] { gate_mode_parse("lenient"); }).find("known: enforce, observe"),
              std::string::npos);
}

TEST(ValidationGate, ReportsItsEventsToTheEngineSinkUnderItsId) {
    std::vector<std::pair<std::string, nlohmann::json>> events;
    EventScope scope([&](const std::string& name, const nlohmann::json& p) { events.emplace_back(name, p); });
    ValidationGate first(sample_tokens(30), sp1024_tables(), GateMode::observe);
    ValidationGate gate(sample_tokens(30), sp1024_tables(), GateMode::observe);
    EXPECT_EQ(gate.id(), first.id() + 1);
    gate.score(0, 10, "w0");
    const std::vector<float> nll(10, 0.5f);
    gate.commit(1, nll);
    gate.adapt(0, 20);  // targets 11 … 19 unscored: recorded as C3 in observe mode
    std::vector<std::string> kinds;
    for (const auto& [name, payload] : events) {
        if (name == event_names::data_read) continue;  // sample_tokens reads the shipped shard
        if (name == event_names::gate_open) {
            EXPECT_EQ(payload["targets"], 29);
            EXPECT_EQ(payload["mode"], "observe");
            EXPECT_EQ(payload["tokens_sha256"].get<std::string>().size(), 64u);
            continue;
        }
        ASSERT_EQ(name, event_names::gate);
        EXPECT_EQ(payload["gate"], gate.id());
        kinds.push_back(payload["kind"].get<std::string>());
        if (kinds.back() == "score") {
            EXPECT_EQ(payload["weights"], "w0");
        }
        if (kinds.back() == "commit") {
            EXPECT_EQ(payload["begin"], 1);
            EXPECT_EQ(payload["end"], 11);
            EXPECT_DOUBLE_EQ(payload["nll_sum"].get<double>(), 5.0);
        }
        if (kinds.back() == "violation") {
            EXPECT_EQ(payload["rule"], "C3");
        }
    }
    EXPECT_EQ(kinds, (std::vector<std::string>{"score", "commit", "violation", "adapt"}));
}

// Every target 1 … n−1 exactly once, for a sweep of stream lengths, windows and strides.
TEST(SlidingWindowPlan, ScoresEveryTargetOnceAcrossASweep) {
    for (const std::int64_t n : {2, 3, 64, 65, 100, 129, 1000, 2049, 4097}) {
        for (const std::int64_t window : {1, 16, 128, 2048}) {
            for (const std::int64_t stride : {1, 8, 64}) {
                if (stride > window) continue;
                SlidingWindowOptions options{window, stride, 4, false};
                const std::vector<SlidingWindow> plan = sliding_window_plan(n, options);
                std::vector<int> count(static_cast<std::size_t>(n), 0);
                for (const SlidingWindow& w : plan) {
                    ASSERT_LE(w.input_end - w.input_begin, window);
                    ASSERT_GE(w.score_begin, w.input_begin + 1);
                    ASSERT_LE(w.score_end, w.input_end + 1);
                    for (std::int64_t p = w.score_begin; p < w.score_end; ++p) ++count[static_cast<std::size_t>(p)];
                }
                for (std::int64_t p = 1; p < n; ++p) {
                    ASSERT_EQ(count[static_cast<std::size_t>(p)], 1)
                        << "n " << n << " T " << window << " S " << stride << " target " << p;
                }
            }
        }
    }
}

// The reference's end of stream: truncated windows score the same last S positions again.
TEST(SlidingWindowPlan, ReferenceQuirkDoubleCountsTheEndOfTheStream) {
    const std::int64_t n = 1000, window = 256, stride = 64;
    const auto clean = sliding_window_plan(n, SlidingWindowOptions{window, stride, 4, false});
    const auto quirk = sliding_window_plan(n, SlidingWindowOptions{window, stride, 4, true});
    std::int64_t clean_scored = 0, quirk_scored = 0;
    for (const auto& w : clean) clean_scored += w.score_end - w.score_begin;
    for (const auto& w : quirk) quirk_scored += w.score_end - w.score_begin;
    EXPECT_EQ(clean_scored, n - 1);
    // 999 targets; starts 0, 64, …, 896 (960 would leave a 39-token window, dropped). Windows 0 … 704 are full and
    // cover targets 1 … 960; the truncated 768, 832 and 896 each score 936 … 999: 25 + 64 + 64 targets again.
    EXPECT_EQ(static_cast<std::int64_t>(quirk.size()), 15);
    EXPECT_EQ(quirk_scored - clean_scored, 153);
    EXPECT_EQ(quirk.back().score_begin, n - stride);
    EXPECT_EQ(quirk.back().score_end, n);
}

Gpt smoke_model(std::uint64_t seed) {
    Gpt model(GptConfig::from_config(config_load_preset("baseline", "smoke")));
    model.initialize(seed);
    // Away from the zero output projections, so context matters to every NLL.
    RandomStream random(seed + 1);
    for (const auto& [name, tensor] : model.named_tensors()) {
        Tensor value = tensor;
        for (std::int64_t i = 0; i < value.numel(); ++i) value.set_item(i, value.item(i) + 0.05 * random.normal());
    }
    return model;
}

TEST(SlidingWindowEvaluation, ScoresEachTargetOnceAndMatchesFullContextWhenTheWindowCoversIt) {
    const std::vector<std::uint16_t> tokens = sample_tokens(300);
    const Gpt model = smoke_model(3);
    ValidationGate gate(tokens, sp1024_tables(), GateMode::enforce);
    const SlidingWindowResult result =
        evaluate_sliding_window(model, gate, SlidingWindowOptions{128, 32, 4, false}, "digest");
    EXPECT_EQ(result.totals.targets, 299);
    EXPECT_EQ(result.totals.unscored, 0);
    EXPECT_EQ(result.totals.rescored, 0);
    // Targets of the first window were scored with the full prefix: the same as one forward over [0, 128).
    std::vector<std::int64_t> x(tokens.begin(), tokens.begin() + 128), y(tokens.begin() + 1, tokens.begin() + 129);
    const Tensor nll =
        model.token_losses(nullptr, Tensor::from_ids(x, {1, 128}), Tensor::from_ids(y, {1, 128})).value();
    for (std::int64_t p = 1; p <= 128; ++p) {
        // Equal up to the GEMM's blocking for a batch of 4 windows against a batch of 1.
        EXPECT_NEAR(gate.target_nll()[static_cast<std::size_t>(p)], nll.item(p - 1), 1e-5 * nll.item(p - 1)) << p;
    }
    ValidationGate enforce(tokens, sp1024_tables(), GateMode::enforce);
    EXPECT_NE(test::error_message([&] {
                  evaluate_sliding_window(model, enforce, SlidingWindowOptions{128, 32, 4, true}, "");
              }).find("observe mode"),
              std::string::npos);
    ValidationGate observe(tokens, sp1024_tables(), GateMode::observe);
    const SlidingWindowResult quirk =
        evaluate_sliding_window(model, observe, SlidingWindowOptions{128, 32, 4, true}, "");
    EXPECT_GT(quirk.totals.rescored, 0);
    EXPECT_EQ(quirk.totals.targets, 299 + quirk.totals.rescored);
}

TEST(CausalityProbe, PassesForSlidingWindowsAndCatchesALeakingEvaluator) {
    const std::vector<std::uint16_t> tokens = sample_tokens(400);
    const Gpt model = smoke_model(4);
    auto sliding = [&](const std::vector<std::uint16_t>& stream) {
        ValidationGate gate(stream, sp1024_tables(), GateMode::enforce);
        evaluate_sliding_window(model, gate, SlidingWindowOptions{128, 32, 4, false}, "");
        return gate.target_nll();
    };
    const CausalityProbeResult honest = evaluate_causality_probe(tokens, 250, 1024, sliding);
    EXPECT_TRUE(honest.passed());
    EXPECT_EQ(honest.checked, 250);
    EXPECT_GT(honest.changed_after, 0);
    // Leaks one token ahead: target p's NLL also depends on token p + 1.
    auto leaking = [&](const std::vector<std::uint16_t>& stream) {
        std::vector<float> nll = sliding(stream);
        for (std::size_t p = 1; p + 1 < stream.size(); ++p) nll[p] += 1e-4f * static_cast<float>(stream[p + 1]);
        return nll;
    };
    const CausalityProbeResult leak = evaluate_causality_probe(tokens, 250, 1024, leaking);
    EXPECT_FALSE(leak.passed());
    EXPECT_EQ(leak.first_mismatch, 250);
    EXPECT_NE(test::error_message([&] { evaluate_causality_probe(tokens, 0, 1024, sliding); }).find("position"),
              std::string::npos);
}

}  // namespace
}  // namespace pgolf
