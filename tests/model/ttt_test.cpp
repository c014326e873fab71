// Test-time training through the validation gate: score-first TTT improves on plain sliding evaluation, adapts only on
// committed targets, passes the causality probe bit for bit; pre-quant TTT is refused (enforce) or flagged (observe).
#include "model/ttt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/shard.h"
#include "core/token_stream.h"
#include "core/tokenizer.h"
#include "model/config.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

constexpr std::int64_t kSeqLen = 128;
constexpr std::int64_t kChunk = 1024;
constexpr std::int64_t kTargets = 4 * kChunk;  // four chunks
constexpr std::uint64_t kSeed = 1234;

const std::vector<std::uint16_t>& ttt_test_tokens() {
    static const std::vector<std::uint16_t> tokens = [] {
        std::vector<std::uint16_t> all = validation_tokens_load(
            shard_glob(test::test_source_path("data/datasets/fineweb10B_sp1024_mini") + "/fineweb_val_*.bin"), kSeqLen);
        if (static_cast<std::int64_t>(all.size()) < kTargets + 1) throw Error("validation shard too short");
        all.resize(static_cast<std::size_t>(kTargets + 1));
        return all;
    }();
    return tokens;
}

const TokenizerByteTables& ttt_test_tables() {
    static const TokenizerByteTables tables =
        Tokenizer::load(test::test_source_path("data/tokenizers/fineweb_1024_bpe.model")).byte_tables(1024);
    return tables;
}

std::unique_ptr<Gpt> ttt_test_model(const std::string& preset = "baseline") {
    const Config config = config_load_preset(preset, "smoke");
    auto model = std::make_unique<Gpt>(GptConfig::from_config(config));
    model->initialize(kSeed);
    return model;
}

TttOptions ttt_test_options() {
    TttOptions options;
    options.chunk_tokens = kChunk;
    options.epochs = 2;
    options.lr = 0.5;  // far above the seeds' 0.002, so a random model visibly learns within a few steps
    options.batch_sequences = 4;
    options.seq_len = kSeqLen;
    options.sliding.window = kSeqLen;
    options.sliding.stride = 64;
    options.sliding.batch_windows = 16;
    return options;
}

std::vector<std::pair<std::string, Tensor>> ttt_test_snapshot(const Gpt& model) {
    std::vector<std::pair<std::string, Tensor>> copy;
    for (const auto& [name, tensor] : model.named_tensors()) copy.emplace_back(name, tensor.clone());
    return copy;
}

// Names of the tensors whose bytes differ from the snapshot.
std::set<std::string> ttt_test_changed(const Gpt& model, const std::vector<std::pair<std::string, Tensor>>& before) {
    std::set<std::string> changed;
    const auto now = model.named_tensors();
    EXPECT_EQ(now.size(), before.size());
    for (std::size_t i = 0; i < now.size() && i < before.size(); ++i) {
        if (!test::bitwise_equal(now[i].second, before[i].second)) changed.insert(now[i].first);
    }
    return changed;
}

TEST(TttTest, ScoreFirstImprovesOnPlainSlidingWindow) {
    const TttOptions options = ttt_test_options();
    auto plain_model = ttt_test_model();
    ValidationGate plain_gate(ttt_test_tokens(), ttt_test_tables(), GateMode::enforce);
    const SlidingWindowResult plain =
        evaluate_sliding_window(*plain_model, plain_gate, options.sliding, ttt_digest_weights(*plain_model));

    auto model = ttt_test_model();
    ValidationGate gate(ttt_test_tokens(), ttt_test_tables(), GateMode::enforce);
    std::vector<std::string> lines;
    const TttResult result =
        ttt_score_first(*model, gate, options, [&](const std::string& line) { lines.push_back(line); });
    EXPECT_EQ(result.chunks, 4);
    EXPECT_EQ(result.chunks_adapted, 3);
    EXPECT_EQ(result.epochs_run, 3 * options.epochs);
    // 8 sequences per chunk in micro-batches of 4.
    EXPECT_EQ(result.steps, 3 * options.epochs * 2);
    EXPECT_EQ(result.windows, plain.windows);
    EXPECT_EQ(lines.size(), 4u);
    EXPECT_EQ(result.totals.targets, kTargets);
    EXPECT_EQ(result.totals.unscored, 0);
    EXPECT_EQ(result.totals.rescored, 0);
    EXPECT_EQ(result.totals.bytes, plain.totals.bytes);
    EXPECT_GT(result.scoring_ms, 0.0);
    EXPECT_GT(result.adaptation_ms, 0.0);
    EXPECT_LT(result.totals.val_bpb(), plain.totals.val_bpb() - 0.05)
        << "ttt " << result.totals.val_bpb() << " plain " << plain.totals.val_bpb();
}

TEST(TttTest, AdaptsOnlyOnCommittedTargetsAndNeverOnTheLastChunk) {
    const TttOptions options = ttt_test_options();
    std::vector<std::uint8_t> committed(static_cast<std::size_t>(kTargets + 1), 0);
    std::int64_t adapts = 0, violations = 0, double_commits = 0;
    std::vector<std::string> problems;
    auto sink = [&](const GateEvent& event) {
        if (event.kind == GateEventKind::commit) {
            for (std::int64_t p = event.begin; p < event.end; ++p) {
                if (committed[static_cast<std::size_t>(p)]) ++double_commits;
                committed[static_cast<std::size_t>(p)] = 1;
            }
        } else if (event.kind == GateEventKind::adapt) {
            ++adapts;
            for (std::int64_t p = std::max<std::int64_t>(event.begin, 1); p < event.end; ++p) {
                if (!committed[static_cast<std::size_t>(p)]) {
                    problems.push_back("adapt reads uncommitted target " + std::to_string(p));
                    break;
                }
            }
            // Targets of the last chunk are those of input indices ≥ (C − 1)·chunk, i.e. positions > (C − 1)·chunk.
            if (event.end > 3 * kChunk + 1) problems.push_back("adapt reaches the last chunk");
            if (event.weights_digest.empty()) problems.push_back("adapt without weights digest");
        } else if (event.kind == GateEventKind::violation) {
            ++violations;
        }
    };
    auto model = ttt_test_model();
    ValidationGate gate(ttt_test_tokens(), ttt_test_tables(), GateMode::enforce, sink);
    const TttResult result = ttt_score_first(*model, gate, options);
    EXPECT_TRUE(problems.empty()) << problems.front();
    EXPECT_EQ(adapts, 3);
    EXPECT_EQ(violations, 0);
    EXPECT_EQ(double_commits, 0);
    EXPECT_EQ(result.totals.unscored, 0);
    EXPECT_EQ(result.totals.targets, kTargets);
    for (std::int64_t p = 1; p <= kTargets; ++p) ASSERT_TRUE(committed[static_cast<std::size_t>(p)]) << p;
    EXPECT_TRUE(gate.violations().empty());
}

// The NLLs a fresh model and gate give for a token stream under score-first TTT.
std::vector<float> ttt_test_score_first_nll(const std::vector<std::uint16_t>& tokens, const TttOptions& options) {
    auto model = ttt_test_model();
    ValidationGate gate(tokens, ttt_test_tables(), GateMode::enforce);
    ttt_score_first(*model, gate, options);
    return gate.target_nll();
}

TEST(TttTest, ScoreFirstPassesTheCausalityProbe) {
    const TttOptions options = ttt_test_options();
    const std::int64_t position = 2 * kChunk + 700;  // inside the third chunk, after two adaptations
    const CausalityProbeResult probe = evaluate_causality_probe(
        ttt_test_tokens(), position, 1024,
        [&](const std::vector<std::uint16_t>& tokens) { return ttt_test_score_first_nll(tokens, options); });
    EXPECT_TRUE(probe.passed()) << "first mismatch at " << probe.first_mismatch;
    EXPECT_EQ(probe.checked, position);
    EXPECT_GT(probe.changed_after, 0);
}

TEST(TttTest, CausalityProbeCatchesPrequantTttAndALeakingEvaluator) {
    const TttOptions options = ttt_test_options();
    const std::int64_t position = 2 * kChunk + 700;
    PrequantTttOptions prequant;
    prequant.epochs = 1;
    prequant.seq_len = kSeqLen;
    prequant.batch_sequences = 16;
    const CausalityProbeResult trained_first =
        evaluate_causality_probe(ttt_test_tokens(), position, 1024, [&](const std::vector<std::uint16_t>& tokens) {
            auto model = ttt_test_model();
            ValidationGate gate(tokens, ttt_test_tables(), GateMode::observe);
            ttt_prequant_adamw(*model, gate, prequant);
            evaluate_sliding_window(*model, gate, options.sliding, ttt_digest_weights(*model));
            return gate.target_nll();
        });
    EXPECT_FALSE(trained_first.passed());

    // Peeks at the token after each target: a lookahead the probe must see.
    const CausalityProbeResult peeking =
        evaluate_causality_probe(ttt_test_tokens(), position, 1024, [&](const std::vector<std::uint16_t>& tokens) {
            auto model = ttt_test_model();
            ValidationGate gate(tokens, ttt_test_tables(), GateMode::enforce);
            evaluate_sliding_window(*model, gate, options.sliding, ttt_digest_weights(*model));
            std::vector<float> nll = gate.target_nll();
            for (std::size_t p = 1; p + 1 < nll.size(); ++p) nll[p] += 1e-3F * static_cast<float>(tokens[p + 1] % 7);
            return nll;
        });
    EXPECT_FALSE(peeking.passed());
    EXPECT_LE(peeking.first_mismatch, position);
}

TEST(TttTest, PrequantIsRefusedInEnforceModeAndFlaggedInObserveMode) {
    PrequantTttOptions options;
    options.epochs = 2;
    options.seq_len = kSeqLen;
    options.batch_sequences = 32;
    {
        auto model = ttt_test_model();
        const auto before = ttt_test_snapshot(*model);
        ValidationGate gate(ttt_test_tokens(), ttt_test_tables(), GateMode::enforce);
        try {
            ttt_prequant_adamw(*model, gate, options);
            ADD_FAILURE() << "pre-quant TTT was not refused";
        } catch (const Error& error) {
            const std::string message = error.what();
            EXPECT_NE(message.find("C3"), std::string::npos) << message;
            EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        }
        EXPECT_TRUE(ttt_test_changed(*model, before).empty());
    }
    {
        auto model = ttt_test_model();
        const auto before = ttt_test_snapshot(*model);
        ValidationGate gate(ttt_test_tokens(), ttt_test_tables(), GateMode::observe);
        const PrequantTttResult result = ttt_prequant_adamw(*model, gate, options);
        EXPECT_EQ(result.epochs_run, 2);
        EXPECT_EQ(result.steps, 2 * 1);  // 32 sequences in micro-batches of 32
        ASSERT_EQ(result.epoch_loss.size(), 2u);
        EXPECT_LT(result.epoch_loss[1], result.epoch_loss[0]);
        EXPECT_FALSE(ttt_test_changed(*model, before).empty());
        ASSERT_FALSE(gate.violations().empty());
        EXPECT_EQ(gate.violations().front().rule, "C3");
    }
}

TEST(TttTest, FrozenBlocksStayBitIdentical) {
    TttOptions options = ttt_test_options();
    options.epochs = 1;
    options.frozen_blocks = {0};
    auto model = ttt_test_model();
    const auto before = ttt_test_snapshot(*model);
    ValidationGate gate(ttt_test_tokens(), ttt_test_tables(), GateMode::enforce);
    ttt_score_first(*model, gate, options);
    const std::set<std::string> changed = ttt_test_changed(*model, before);
    for (const auto& [name, tensor] : before) {
        if (name.rfind("blocks.0.", 0) == 0) {
            EXPECT_FALSE(changed.contains(name)) << name;
        }
    }
    EXPECT_TRUE(changed.contains("tok_emb.weight"));
    EXPECT_TRUE(changed.contains("blocks.1.attn.c_q.weight"));
    EXPECT_TRUE(changed.contains("blocks.1.mlp.fc.weight"));
}

TEST(TttTest, FrozenBlocksKeepTheirBankSlicesAndMuonStyleMovesTheRest) {
    TttOptions options = ttt_test_options();
    options.epochs = 1;
    options.optimizer = TttOptimizerKind::muon_style;
    options.lr = 0.002;
    options.frozen_blocks = {0, 3};
    auto model = ttt_test_model("s4-11l-recurrence-prequant");
    ASSERT_TRUE(model->has_parameter("qo_bank"));
    const auto before = ttt_test_snapshot(*model);
    ValidationGate gate(ttt_test_tokens(), ttt_test_tables(), GateMode::enforce);
    const TttResult result = ttt_score_first(*model, gate, options);
    EXPECT_EQ(result.chunks_adapted, 3);
    const std::set<std::string> changed = ttt_test_changed(*model, before);
    for (const auto& [name, tensor] : before) {
        if (name.rfind("blocks.0.", 0) == 0 || name.rfind("blocks.3.", 0) == 0) {
            EXPECT_FALSE(changed.contains(name)) << name;
        }
    }
    EXPECT_TRUE(changed.contains("blocks.1.attn.c_q.weight"));
    EXPECT_TRUE(changed.contains("blocks.1.mlp.fc.weight"));
    EXPECT_TRUE(changed.contains("tok_emb.weight"));
}

TEST(TttTest, EntropyAdaptiveEpochsFollowTheThresholdsOnlyWhenIntended) {
    TttOptions options = ttt_test_options();
    options.epochs = 1;
    options.optimizer = TttOptimizerKind::muon_style;
    options.lr = 0.002;
    auto run = [&](TttEntropyEpochs mode, double high, double low) {
        TttOptions o = options;
        o.entropy_epochs = mode;
        o.entropy_high = high;
        o.entropy_low = low;
        auto model = ttt_test_model();
        ValidationGate gate(ttt_test_tokens(), ttt_test_tables(), GateMode::enforce);
        return ttt_score_first(*model, gate, o);
    };
    // A random model's NLL is ≈ ln 1024 ≈ 6.9 nats, above 2.1: one extra epoch per adapted chunk.
    const TttResult intended = run(TttEntropyEpochs::intended, 2.1, 1.75);
    EXPECT_EQ(intended.chunks_adapted, 3);
    EXPECT_EQ(intended.epochs_run, 3 * 2);
    const TttResult as_ran = run(TttEntropyEpochs::as_ran, 2.1, 1.75);
    EXPECT_EQ(as_ran.epochs_run, 3 * 1);
    // Below the low threshold: one epoch fewer, here none, so nothing is adapted.
    const TttResult low = run(TttEntropyEpochs::intended, 200.0, 100.0);
    EXPECT_EQ(low.epochs_run, 0);
    EXPECT_EQ(low.chunks_adapted, 0);
}

}  // namespace
}  // namespace pgolf
