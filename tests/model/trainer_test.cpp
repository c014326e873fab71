// The trainer end to end on real shards (a short validation split so each run takes seconds): the loss starts at
// ln V and falls, runs are deterministic per seed, warmup-then-restore changes nothing, the deadline stops training,
// and the checkpoint is written.
#include "model/trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>

#include "core/error.h"
#include "core/events.h"
#include "core/safetensors.h"
#include "core/shard.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

// The shipped train shard and the first 8,193 validation tokens.
class TrainerTest : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string source = test::test_source_path("data/datasets/fineweb10B_sp1024_mini");
        std::filesystem::copy_file(source + "/fineweb_train_000000.bin", folder_.path("fineweb_train_000000.bin"));
        const ShardFile val = ShardFile::open(source + "/fineweb_val_000000.bin");
        shard_write(folder_.path("fineweb_val_000000.bin"), val.tokens().subspan(0, 8193));
    }

    struct Run {
        std::vector<std::string> lines;
        TrainResult result;
        // Loss lines without their timings, for comparing runs.
        std::vector<std::string> losses() const {
            std::vector<std::string> out;
            const std::regex loss("(step:\\d+/\\d+ (train_loss|val_loss):[0-9.]+( val_bpb:[0-9.]+)?)");
            for (const std::string& line : lines) {
                std::smatch match;
                if (std::regex_search(line, match, loss)) out.push_back(match[1]);
            }
            return out;
        }
    };

    Run train(const std::vector<std::string>& overrides, const std::string& out = "", double budget_ms = 0.0) {
        Config config = config_load_preset("baseline", "smoke");
        config.apply_override("ITERATIONS=6");
        config.apply_override("VAL_LOSS_EVERY=3");
        config.apply_override("TRAIN_LOG_EVERY=1");
        config.apply_override("WARMUP_STEPS=0");
        for (const std::string& assignment : overrides) config.apply_override(assignment);
        Run run;
        TrainOptions options;
        options.config = config;
        options.data_directory = folder_.root();
        options.tokenizer_path = test::test_source_path("data/tokenizers/fineweb_1024_bpe.model");
        options.output_directory = out;
        options.log = [&run](const std::string& line) { run.lines.push_back(line); };
        options.budget_ms = budget_ms;
        run.result = trainer_run(options);
        return run;
    }

    test::TemporaryFolder folder_;
};

double first_train_loss(const std::vector<std::string>& lines) {
    const std::regex loss("step:1/\\d+ train_loss:([0-9.]+)");
    for (const std::string& line : lines) {
        std::smatch match;
        if (std::regex_search(line, match, loss)) return std::stod(match[1]);
    }
    return -1;
}

TEST_F(TrainerTest, LossStartsAtLogVocabAndFalls) {
    const Run run = train({"ITERATIONS=20", "VAL_LOSS_EVERY=0"});
    EXPECT_NEAR(first_train_loss(run.lines), std::log(1024.0), 0.05);
    EXPECT_EQ(run.result.steps, 20);
    EXPECT_LT(run.result.final_val_loss, std::log(1024.0) - 1.0);
    EXPECT_GT(run.result.final_val_bpb, 0.0);
    EXPECT_FALSE(run.result.stopped_early);
    EXPECT_GT(run.result.tokens_per_second, 0.0);
}

TEST_F(TrainerTest, SameSeedSameLossesOtherSeedOtherLosses) {
    const Run a = train({});
    const Run b = train({});
    const Run c = train({"SEED=42"});
    ASSERT_EQ(a.losses().size(), 6u + 3u);  // six train lines, validation at steps 0, 3 and 6
    EXPECT_EQ(a.losses(), b.losses());
    EXPECT_NE(a.losses(), c.losses());
}

TEST_F(TrainerTest, WarmupThenRestoreLeavesTheRunUnchanged) {
    const Run plain = train({});
    const Run warmed = train({"WARMUP_STEPS=2"});
    EXPECT_EQ(plain.losses(), warmed.losses());
    EXPECT_NE(std::find(warmed.lines.begin(), warmed.lines.end(), "warmup_step:2/2"), warmed.lines.end());
}

TEST_F(TrainerTest, DeadlineStopsAtAStepBoundary) {
    const Run run = train({"ITERATIONS=100000", "MAX_WALLCLOCK_SECONDS=1.0", "VAL_LOSS_EVERY=0"});
    EXPECT_TRUE(run.result.stopped_early);
    EXPECT_LT(run.result.steps, 100000);
    EXPECT_GE(run.result.train_time_ms, 1000.0);
    bool logged = false;
    for (const std::string& line : run.lines) logged |= line.rfind("stopping_early: wallclock_cap", 0) == 0;
    EXPECT_TRUE(logged);
}

// A supervisor's budget stops the loop like the cap, and the run's stages, pauses and end reach the event sink.
TEST_F(TrainerTest, SupervisorBudgetStopsTheLoopAndStagesReachTheEventSink) {
    std::vector<std::string> names;
    nlohmann::json end;
    EventScope scope([&](const std::string& name, const nlohmann::json& payload) {
        if (name == event_names::data_read) return;
        names.push_back(name == event_names::stage ? "stage:" + payload["stage"].get<std::string>() : name);
        if (name == event_names::train_end) end = payload;
    });
    const Run run = train({"ITERATIONS=100000", "VAL_LOSS_EVERY=0", "WARMUP_STEPS=1"}, "", 500.0);
    EXPECT_TRUE(run.result.stopped_by_budget);
    EXPECT_FALSE(run.result.stopped_early);  // the config's own cap did not stop it
    EXPECT_LT(run.result.steps, 100000);
    EXPECT_GE(run.result.train_time_ms, 500.0);
    bool logged = false;
    for (const std::string& line : run.lines) logged |= line.rfind("stopping_early: train_budget", 0) == 0;
    EXPECT_TRUE(logged);
    const std::vector<std::string> expected = {"stage:build",      "stage:warmup",   "stage:train",
                                               "validation_begin", "validation_end", "train_end"};
    EXPECT_EQ(names, expected);
    EXPECT_EQ(end["steps"], run.result.steps);
    EXPECT_TRUE(end["stopped_by_budget"].get<bool>());
    EXPECT_GT(end["max_step_ms"].get<double>(), 0.0);
}

TEST_F(TrainerTest, WritesLogAndSafetensorsCheckpoint) {
    const std::string out = folder_.path("run");
    const Run run = train({"ITERATIONS=2"}, out);
    EXPECT_TRUE(std::filesystem::exists(out + "/train.log"));
    const SafetensorsFile checkpoint = safetensors_read(out + "/final_model.safetensors");
    std::int64_t count = 0;
    for (const auto& [name, tensor] : checkpoint.tensors) count += tensor.numel();
    EXPECT_EQ(count, run.result.parameters);
    EXPECT_EQ(checkpoint.metadata.at("steps"), "2");
    EXPECT_TRUE(checkpoint.contains("blocks.3.mlp.fc.weight"));
}

TEST_F(TrainerTest, RejectsAMismatchedTokenizerAndMissingData) {
    EXPECT_THROW(train({"VOCAB_SIZE=512"}), Error);
    std::filesystem::remove(folder_.path("fineweb_val_000000.bin"));
    EXPECT_THROW(train({}), Error);
}

}  // namespace
}  // namespace pgolf

namespace pgolf {
namespace {

// Each seed preset at smoke scale on its shipped data (sp8192 for S3): a few steps, loss falling, the seed's
// averaging applied, and the same loss lines on a second run.
class SeedPresetTraining : public ::testing::TestWithParam<const char*> {
protected:
    std::vector<std::string> run(const Config& config, const std::string& data) {
        std::vector<std::string> lines;
        TrainOptions options;
        options.config = config;
        options.data_directory = data;
        options.tokenizer_path = test::test_source_path(config.get_string("TOKENIZER_PATH"));
        options.log = [&lines](const std::string& line) { lines.push_back(line); };
        trainer_run(options);
        return lines;
    }
};

std::vector<std::string> loss_lines(const std::vector<std::string>& lines) {
    std::vector<std::string> out;
    const std::regex loss("((step:\\d+/\\d+ (train_loss|val_loss):[0-9.]+( val_bpb:[0-9.]+)?)|final_\\w+ .*)");
    for (const std::string& line : lines) {
        std::smatch match;
        if (std::regex_search(line, match, loss)) out.push_back(match[1]);
    }
    return out;
}

double train_loss_at(const std::vector<std::string>& lines, int step) {
    const std::regex loss("step:" + std::to_string(step) + "/\\d+ train_loss:([0-9.]+)");
    for (const std::string& line : lines) {
        std::smatch match;
        if (std::regex_search(line, match, loss)) return std::stod(match[1]);
    }
    return -1;
}

TEST_P(SeedPresetTraining, TrainsDeterministicallyWithFallingLoss) {
    Config config = config_load_preset(GetParam(), "smoke");
    config.apply_override("ITERATIONS=5");
    config.apply_override("VAL_LOSS_EVERY=0");
    config.apply_override("TRAIN_LOG_EVERY=1");
    config.apply_override("WARMUP_STEPS=1");
    config.apply_override("SWA_EVERY=2");
    config.apply_override("WARMDOWN_ITERS=6");  // lr_mul(4) = 1/6 < 0.2: the SWA window opens at step 4
    if (config.has("PASSES_SCHEDULE") && !config.get_string("PASSES_SCHEDULE").empty()) {
        config.apply_override("PASSES_SCHEDULE=0:1,2:2,4:3");
    }
    // The shipped train shard and a short validation split.
    test::TemporaryFolder folder;
    const std::string source = test::test_source_path(config.get_string("DATA_PATH"));
    std::filesystem::copy_file(source + "/fineweb_train_000000.bin", folder.path("fineweb_train_000000.bin"));
    const ShardFile val = ShardFile::open(source + "/fineweb_val_000000.bin");
    shard_write(folder.path("fineweb_val_000000.bin"), val.tokens().subspan(0, 4097));

    const std::vector<std::string> first = run(config, folder.root());
    const std::vector<std::string> second = run(config, folder.root());
    EXPECT_EQ(loss_lines(first), loss_lines(second));
    const double vocab = static_cast<double>(config.get_int("VOCAB_SIZE"));
    EXPECT_NEAR(train_loss_at(first, 1), std::log(vocab), 0.1);
    EXPECT_LT(train_loss_at(first, 5), train_loss_at(first, 1) - 0.05);
    const bool averaged = std::any_of(first.begin(), first.end(), [](const std::string& line) {
        return line.rfind("swa:applied", 0) == 0 || line.rfind("ema:applied", 0) == 0;
    });
    EXPECT_TRUE(averaged) << "each seed averages its weights (SWA or EMA)";
}

INSTANTIATE_TEST_SUITE_P(Seeds, SeedPresetTraining,
                         ::testing::Values("s1-recursive-4b7l", "s2-growing-recurrence", "s3-crawler-3f2cx2",
                                           "s4-11l-recurrence-prequant"),
                         test::test_param_name);

}  // namespace
}  // namespace pgolf
