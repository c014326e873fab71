// The real-world submission.json reader: one hand-written fixture per variant of RECORDS-FORMATS.md section 2, each
// value checked together with the alias it was read from.
#include "records/submission_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::error_message;
using test::TemporaryFolder;

std::string fixture_folder(const std::string& name) {
    return test::test_source_path("tests/records/fixtures/submissions/" + name);
}

SubmissionFile read_fixture(const std::string& name) {
    return submission_read_variant(*submission_find(fixture_folder(name)));
}

bool has_note(const SubmissionFile& file, const std::string& text) {
    return std::any_of(file.notes.begin(), file.notes.end(),
                       [&](const std::string& note) { return note.find(text) != std::string::npos; });
}

std::string all_notes(const SubmissionFile& file) {
    std::string text;
    for (const std::string& note : file.notes) text += note + "\n";
    return text;
}

void write_text(const std::string& path, const std::string& text) {
    test::test_write_file(path, std::vector<std::uint8_t>(text.begin(), text.end()));
}

TEST(SubmissionReader, CanonicalModernSingleLineWithoutTrailingNewline) {
    const SubmissionFile f = read_fixture("canonical_modern");
    EXPECT_EQ(f.path, fixture_folder("canonical_modern") + "/submission.json");
    EXPECT_EQ(f.name.value, "SP8192 + 3-layer recurrence + legal TTT");
    EXPECT_EQ(f.name.from.key, "name");
    EXPECT_EQ(f.name.from.file, f.path);
    EXPECT_EQ(f.author.value, "Jane Golfer");
    EXPECT_EQ(f.github_id.value, "janegolfer");
    EXPECT_EQ(f.date.value, "2026-04-09");
    EXPECT_EQ(f.track.value, "10min_16mb");
    EXPECT_EQ(f.blurb.from.key, "blurb");
    EXPECT_EQ(f.val_bpb.value, 1.0811);
    EXPECT_EQ(f.val_bpb.from.key, "val_bpb");
    EXPECT_EQ(f.val_loss.value, 2.79231);
    EXPECT_EQ(f.val_loss.from.key, "val_loss");
    EXPECT_EQ(f.val_bpb_std.value, 0.00036);
    EXPECT_EQ(f.val_bpb_std.from.key, "val_bpb_std");
    EXPECT_EQ(f.bytes_total.value, 15991040);
    EXPECT_EQ(f.bytes_total.from.key, "bytes_total");
    EXPECT_EQ(f.bytes_code.value, 48213);
    EXPECT_EQ(f.bytes_code.from.key, "bytes_code");
    EXPECT_FALSE(f.bytes_model.value);
    EXPECT_EQ(f.artifact_bytes_max.value, 15991040);
    EXPECT_FALSE(f.artifact_bytes_mean.value);

    EXPECT_EQ(f.seed_shape, "seeds+seed_results");
    ASSERT_EQ(f.seeds.size(), 3u);
    EXPECT_EQ(f.seeds[0].label, "42");
    EXPECT_EQ(f.seeds[0].seed, 42);
    EXPECT_EQ(f.seeds[0].val_bpb.value, 1.08071);
    EXPECT_EQ(f.seeds[0].val_bpb.from.key, "seed_results.42.val_bpb");
    EXPECT_EQ(f.seeds[0].val_loss.value, 2.79148);
    EXPECT_EQ(f.seeds[0].artifact_bytes.value, 15987537);
    EXPECT_EQ(f.seeds[0].artifact_bytes.from.key, "seed_results.42.artifact_bytes");
    EXPECT_EQ(f.seeds[0].steps.value, 4550);
    EXPECT_EQ(f.seeds[0].step_avg_ms.value, 131.88);
    EXPECT_EQ(f.seeds[0].train_time_s.value, 600.1);
    EXPECT_EQ(f.seeds[0].eval_time_s.value, 412.5);
    EXPECT_EQ(f.seeds[0].eval_time_s.from.key, "seed_results.42.eval_time_s");
    EXPECT_EQ(f.seeds[1].label, "314");
    EXPECT_EQ(f.seeds[2].label, "999");
    EXPECT_EQ(f.seeds[2].eval_time_s.value, 405.1);
    EXPECT_EQ(f.seeds[2].eval_time_s.from.key, "seed_results.999.eval_time_ms");

    EXPECT_EQ(f.p_value, 0.0001);
    EXPECT_EQ(f.p_value_text, "");
    EXPECT_EQ(f.t_statistic, -12.4);
    EXPECT_EQ(f.welch_df, 3.8);
    ASSERT_EQ(f.compliance.size(), 3u);
    EXPECT_EQ(f.compliance.at("train_under_600s"), true);
    EXPECT_EQ(f.compliance.at("artifact_under_16mb"), true);
    EXPECT_EQ(f.compliance.at("no_ngram_cache"), true);
    EXPECT_FALSE(f.has_nested_compliance_rerun);
    EXPECT_TRUE(f.notes.empty()) << all_notes(f);
}

TEST(SubmissionReader, NotapplicaSeedResultsOnlyWithMeanValBpb) {
    const SubmissionFile f = read_fixture("notapplica");
    EXPECT_EQ(f.val_bpb.value, 1.16152);
    EXPECT_EQ(f.val_bpb.from.key, "mean_val_bpb");
    EXPECT_EQ(f.val_bpb_std.value, 0.00104);
    EXPECT_EQ(f.val_bpb_std.from.key, "std_bpb");
    EXPECT_EQ(f.bytes_total.value, 15854211);
    EXPECT_EQ(f.bytes_total.from.key, "artifact_bytes");
    EXPECT_FALSE(f.github_id.value);
    EXPECT_EQ(f.github_id.from.key, "");
    EXPECT_FALSE(f.val_loss.value);
    EXPECT_FALSE(f.track.value);
    EXPECT_EQ(f.seed_shape, "seed_results");
    ASSERT_EQ(f.seeds.size(), 3u);
    EXPECT_EQ(f.seeds[0].label, "1337");
    EXPECT_EQ(f.seeds[0].val_loss.value, 1.95916);
    // A seed_results entry that is a bare number is that seed's bpb.
    EXPECT_EQ(f.seeds[1].label, "42");
    EXPECT_EQ(f.seeds[1].val_bpb.value, 1.16212);
    EXPECT_EQ(f.seeds[1].val_bpb.from.key, "seed_results.42");
    EXPECT_FALSE(f.seeds[1].val_loss.value);
    EXPECT_EQ(f.seeds[2].seed, 2024);
    EXPECT_TRUE(f.notes.empty()) << all_notes(f);
}

TEST(SubmissionReader, DexhunterSeedsDictWithTrainTimeMsAndMeanBpb) {
    const SubmissionFile f = read_fixture("dexhunter_0406");
    EXPECT_EQ(f.val_bpb.value, 1.0795);
    EXPECT_EQ(f.val_bpb.from.key, "val_bpb");
    EXPECT_TRUE(has_note(f, "mean_bpb 1.07983 beside val_bpb 1.0795")) << all_notes(f);
    EXPECT_EQ(f.seed_shape, "seeds_dict");
    ASSERT_EQ(f.seeds.size(), 3u);
    EXPECT_EQ(f.seeds[1].label, "1337");
    EXPECT_EQ(f.seeds[1].seed, 1337);
    EXPECT_EQ(f.seeds[1].val_bpb.value, 1.08002);
    EXPECT_EQ(f.seeds[1].val_bpb.from.key, "seeds.1337.val_bpb");
    EXPECT_EQ(f.seeds[0].train_time_s.value, 588.123);
    EXPECT_EQ(f.seeds[0].train_time_s.from.key, "seeds.42.train_time_ms");
    EXPECT_EQ(f.seeds[0].artifact_bytes.value, 15979876);
    EXPECT_EQ(f.seeds[0].artifact_bytes.from.key, "seeds.42.bytes_total");
    EXPECT_FALSE(f.seeds[0].eval_time_s.value);  // ttt_time_ms is not the eval time
    EXPECT_FALSE(f.p_value);
    EXPECT_EQ(f.p_value_text, "<0.001");
}

TEST(SubmissionReader, DexhunterSeedScoresAndEvalTimeLists) {
    const SubmissionFile f = read_fixture("dexhunter_0403");
    EXPECT_EQ(f.date.value, "2026-04-03T10:00:00Z");
    EXPECT_EQ(f.bytes_code.value, 51022);
    EXPECT_EQ(f.bytes_code.from.key, "code_bytes");
    EXPECT_EQ(f.seed_shape, "seeds+seed_scores");
    ASSERT_EQ(f.seeds.size(), 3u);
    EXPECT_EQ(f.seeds[1].label, "1337");
    EXPECT_EQ(f.seeds[1].val_bpb.value, 1.0846);
    EXPECT_EQ(f.seeds[1].val_bpb.from.key, "seed_scores[1]");
    EXPECT_EQ(f.seeds[1].eval_time_s.value, 428.9);
    EXPECT_EQ(f.seeds[1].eval_time_s.from.key, "eval_time_seconds[1]");
    EXPECT_EQ(f.seeds[2].val_bpb.value, 1.0839);
    EXPECT_TRUE(f.notes.empty()) << all_notes(f);
}

TEST(SubmissionReader, SmeargateSingleSeedWithoutDateOrName) {
    const SubmissionFile f = read_fixture("smeargate");
    EXPECT_EQ(f.seed_shape, "single_seed");
    ASSERT_EQ(f.seeds.size(), 1u);
    EXPECT_EQ(f.seeds[0].label, "1337");
    EXPECT_EQ(f.seeds[0].seed, 1337);
    EXPECT_FALSE(f.seeds[0].val_bpb.value);
    EXPECT_EQ(f.bytes_total.value, 15861204);
    EXPECT_EQ(f.bytes_total.from.key, "artifact_size_bytes");
    EXPECT_FALSE(f.date.value);
    EXPECT_FALSE(f.name.value);
    EXPECT_FALSE(f.github_id.value);
    EXPECT_EQ(f.val_bpb.value, 1.1556);
    EXPECT_EQ(f.val_loss.value, 1.9512);  // a bpb key exists, so a small val_loss is not reread
}

TEST(SubmissionReader, AruniyerSeedsOnlyRunNameAndMeanBytes) {
    const SubmissionFile f = read_fixture("aruniyer");
    EXPECT_EQ(f.name.value, "MLP3x_int6_sliding");
    EXPECT_EQ(f.name.from.key, "run_name");
    EXPECT_EQ(f.blurb.from.key, "description");
    EXPECT_EQ(f.seed_shape, "seeds_only");
    ASSERT_EQ(f.seeds.size(), 3u);
    EXPECT_EQ(f.seeds[2].label, "7");
    EXPECT_FALSE(f.seeds[2].val_bpb.value);
    EXPECT_FALSE(f.bytes_total.value);
    EXPECT_EQ(f.artifact_bytes_mean.value, 15712044);
    EXPECT_EQ(f.artifact_bytes_mean.from.key, "artifact_bytes_mean");
    EXPECT_TRUE(f.notes.empty()) << all_notes(f);
}

TEST(SubmissionReader, TenLayerInt5MlpBpbFiledUnderValLoss) {
    const SubmissionFile f = read_fixture("10L_Int5MLP");
    EXPECT_EQ(f.val_bpb.value, 1.14276);
    EXPECT_EQ(f.val_bpb.from.key, "val_loss");
    EXPECT_FALSE(f.val_loss.value);
    EXPECT_TRUE(has_note(f, "mean val_bpb stored under val_loss (10L_Int5MLP)")) << all_notes(f);
    EXPECT_EQ(f.bytes_total.value, 15900000);
    EXPECT_EQ(f.seed_shape, "none");
    EXPECT_TRUE(f.seeds.empty());
}

TEST(SubmissionReader, RandomLinearAdapterSlidingBesideValBpb) {
    const SubmissionFile f = read_fixture("random_linear_adapter");
    EXPECT_EQ(f.val_bpb.value, 1.2184);
    EXPECT_EQ(f.val_bpb.from.key, "val_bpb");
    EXPECT_TRUE(has_note(f, "sliding_val_bpb 1.1971 beside val_bpb 1.2184")) << all_notes(f);
    EXPECT_EQ(f.val_loss.value, 2.0573);
    EXPECT_EQ(f.track.value, "non-record-16mb");
}

TEST(SubmissionReader, MdlmPerSeedValVarBpb) {
    const SubmissionFile f = read_fixture("mdlm");
    EXPECT_EQ(f.seed_shape, "seeds+seed_results");
    ASSERT_EQ(f.seeds.size(), 2u);
    EXPECT_EQ(f.seeds[0].val_bpb.value, 1.3915);
    EXPECT_EQ(f.seeds[0].val_bpb.from.key, "seed_results.17.val_var_bpb");
    EXPECT_EQ(f.seeds[1].val_bpb.value, 1.3927);
    EXPECT_EQ(f.seeds[1].steps.value, 12000);
}

TEST(SubmissionReader, NullsAreAbsentAndEmptyAuthorIsKept) {
    const SubmissionFile f = read_fixture("swiglu_nulls");
    EXPECT_FALSE(f.val_loss.value);
    EXPECT_EQ(f.val_loss.from.key, "");
    EXPECT_FALSE(f.val_bpb_std.value);
    EXPECT_FALSE(f.bytes_code.value);
    EXPECT_EQ(f.author.value, "");
    EXPECT_EQ(f.author.from.key, "author");
    EXPECT_FALSE(f.github_id.value);
    EXPECT_EQ(f.val_bpb.value, 1.2544);
    EXPECT_EQ(f.seed_shape, "seed_results");
    ASSERT_EQ(f.seeds.size(), 2u);
    EXPECT_FALSE(f.seeds[0].val_loss.value);
    // A seed key that is not an integer keeps its label.
    EXPECT_EQ(f.seeds[1].label, "1337b");
    EXPECT_FALSE(f.seeds[1].seed);
    EXPECT_EQ(f.seeds[1].val_bpb.value, 1.2551);
    EXPECT_EQ(f.seeds[1].val_bpb.from.key, "seed_results.1337b.val_bpb");
    EXPECT_TRUE(f.notes.empty()) << all_notes(f);
}

TEST(SubmissionReader, RecordSupportNestedComplianceRerunIsFlaggedNotMerged) {
    const SubmissionFile f = read_fixture("record_support_0429");
    EXPECT_TRUE(f.has_nested_compliance_rerun);
    EXPECT_EQ(f.seed_shape, "seeds+seed_results");
    ASSERT_EQ(f.seeds.size(), 2u);
    EXPECT_EQ(f.seeds[0].val_bpb.value, 1.0709);
    EXPECT_EQ(f.seeds[1].val_bpb.value, 1.0715);
    EXPECT_EQ(f.artifact_bytes_max.value, 15996001);
    EXPECT_EQ(f.artifact_bytes_mean.value, 15995506);
    EXPECT_FALSE(f.bytes_total.value);
    // The other spellings, and numbers, as written.
    ASSERT_EQ(f.compliance.size(), 6u);
    EXPECT_EQ(f.compliance.at("training_under_600s"), true);
    EXPECT_EQ(f.compliance.at("artifact_under_16_mb"), true);
    EXPECT_EQ(f.compliance.at("no_hashed_ngram_cache"), true);
    EXPECT_EQ(f.compliance.at("artifact_bytes_max"), 15996001);
    EXPECT_EQ(f.compliance.at("train_time_max_s"), 599.2);
    EXPECT_EQ(f.compliance.at("rerun_train_plus_hessian_max_s"), 608.4);
}

TEST(SubmissionReader, FindsSubmissionTernaryJson) {
    const std::optional<std::string> path = submission_find(fixture_folder("ternary"));
    ASSERT_TRUE(path);
    EXPECT_EQ(*path, fixture_folder("ternary") + "/submission_ternary.json");
    const SubmissionFile f = submission_read_variant(*path);
    EXPECT_EQ(f.path, *path);
    EXPECT_EQ(f.val_bpb.value, 1.2411);
    EXPECT_EQ(f.val_bpb.from.file, *path);
    EXPECT_EQ(f.bytes_model.value, 13970012);
    EXPECT_EQ(f.bytes_model.from.key, "bytes_model_compressed");
    EXPECT_EQ(f.seed_shape, "none");
}

TEST(SubmissionReader, FindPrefersSubmissionJsonThenNameOrder) {
    TemporaryFolder folder;
    EXPECT_FALSE(submission_find(folder.root()));  // a folder with none
    write_text(folder.path("train.log"), "val_bpb:1.2\n");
    write_text(folder.path("submission_jepa.json"), "{}");
    write_text(folder.path("submission_binary.json"), "{}");
    EXPECT_EQ(submission_find(folder.root()), folder.path("submission_binary.json"));
    write_text(folder.path("submission.json"), "{}");
    EXPECT_EQ(submission_find(folder.root()), folder.path("submission.json"));
    EXPECT_FALSE(submission_find(folder.path("missing")));
}

TEST(SubmissionReader, InvalidJsonIsOneLineErrorNamingThePath) {
    const std::string path = fixture_folder("invalid") + "/submission.json";
    const std::string message = error_message([&] { submission_read_variant(path); });
    EXPECT_NE(message, "(no error)");
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("invalid JSON"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(SubmissionReader, DuplicateKeysAreRefused) {
    const std::string path = fixture_folder("duplicate_keys") + "/submission.json";
    const std::string message = error_message([&] { submission_read_variant(path); });
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("duplicate key \"val_bpb\""), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(SubmissionReader, NonObjectTopLevelAndMissingFileAreErrors) {
    TemporaryFolder folder;
    write_text(folder.path("submission.json"), "[1, 2]\n");
    const std::string message = error_message([&] { submission_read_variant(folder.path("submission.json")); });
    EXPECT_NE(message.find(folder.path("submission.json")), std::string::npos) << message;
    EXPECT_NE(message.find("expected an object"), std::string::npos) << message;
    const std::string missing = error_message([&] { submission_read_variant(folder.path("absent.json")); });
    EXPECT_NE(missing.find(folder.path("absent.json")), std::string::npos) << missing;
}

TEST(SubmissionReader, WrongTypesAreNotedNotFatal) {
    TemporaryFolder folder;
    write_text(folder.path("submission.json"),
               R"({"val_bpb": "1.2", "mean_val_bpb": 1.21, "bytes_total": 1.59e7, "seeds": [1, 2], "n_seeds": 3})");
    const SubmissionFile f = submission_read_variant(folder.path("submission.json"));
    EXPECT_EQ(f.val_bpb.value, 1.21);
    EXPECT_EQ(f.val_bpb.from.key, "mean_val_bpb");
    EXPECT_TRUE(has_note(f, "val_bpb is string, not a number: ignored")) << all_notes(f);
    EXPECT_EQ(f.bytes_total.value, 15900000);
    EXPECT_TRUE(has_note(f, "n_seeds 3 but 2 seeds are listed")) << all_notes(f);
}

}  // namespace
}  // namespace pgolf
