// The folder reader over the fixture records tree (tests/records/fixtures/tree, hand-written folders in the real
// shapes): the seeds joined across JSON and logs with provenance, and one test per finding kind, each asserting the
// rule, the severity and the evidence (file:line or file:key).
#include "records/folder_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::error_message;
using test::TemporaryFolder;

std::string tree() { return test::test_source_path("tests/records/fixtures/tree/records"); }

RecordFolderFacts read(const std::string& track, const std::string& name) {
    return record_folder_read(tree() + "/" + track + "/" + name);
}
RecordFolderFacts read_record(const std::string& name) { return read("track_10min_16mb", name); }

std::vector<RecordFinding> of_kind(const RecordFolderFacts& facts, const std::string& kind) {
    std::vector<RecordFinding> found;
    for (const RecordFinding& finding : facts.findings) {
        if (finding.kind == kind) found.push_back(finding);
    }
    return found;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

void write_file(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
}

TEST(RecordTree, ListsEveryFolderUnderEveryTrackSorted) {
    const std::vector<std::string> folders = record_tree_folders(tree());
    ASSERT_EQ(folders.size(), 9u);
    EXPECT_TRUE(contains(folders.front(), "track_10min_16mb/2026-03-17_CleanBaseline"));
    EXPECT_TRUE(contains(folders.back(), "track_non_record_16mb/2026-03-24_Ternary"));
    EXPECT_TRUE(std::is_sorted(folders.begin(), folders.end()));
    // A track folder lists its own children.
    EXPECT_EQ(record_tree_folders(tree() + "/track_non_record_16mb").size(), 1u);
    EXPECT_TRUE(contains(error_message([] { record_tree_folders("/nonexistent/records"); }), "not a records tree"));
}

TEST(RecordFolderReader, CleanFolderJoinsThreeSeedsWithProvenanceAndHasNoFindings) {
    const RecordFolderFacts facts = read_record("2026-03-17_CleanBaseline");
    EXPECT_EQ(facts.track, "track_10min_16mb");
    EXPECT_EQ(facts.date, "2026-03-17");
    EXPECT_EQ(facts.tokenizer, "sp1024");
    ASSERT_EQ(facts.seeds.size(), 3u);
    EXPECT_EQ(facts.seed_count, 3);
    // Ordered by seed; each from its log's exact line, joined with its JSON entry.
    EXPECT_EQ(*facts.seeds[0].seed, 42);
    EXPECT_EQ(facts.seeds[0].family, "final_int8_zlib_roundtrip");
    EXPECT_EQ(facts.seeds[0].from, "train_seed42.log:11");
    EXPECT_GE(facts.seeds[0].json, 0);
    EXPECT_EQ(*facts.seeds[0].total_bytes, 15863533);
    EXPECT_NEAR(facts.mean_bpb, 1.20916789, 1e-8);
    EXPECT_NEAR(facts.std_bpb, 0.00106001, 1e-8);
    EXPECT_EQ(facts.logs.size(), 3u);
    EXPECT_EQ(facts.logs[0].seed_from, "train_seed1337.log:3");
    EXPECT_EQ(facts.code_files.size(), 1u);
    EXPECT_EQ(facts.code_bytes, static_cast<std::int64_t>(std::filesystem::file_size(
                                    tree() + "/track_10min_16mb/2026-03-17_CleanBaseline/train_gpt.py")));
    EXPECT_EQ(facts.third_party_imports, (std::vector<std::string>{"numpy", "sentencepiece", "torch"}));
    EXPECT_TRUE(facts.findings.empty()) << facts.findings.front().kind << ": " << facts.findings.front().message;
}

TEST(RecordFolderReader, MissingFilesAreNamed) {
    const RecordFolderFacts facts = read_record("2026-03-21_MissingFiles");
    const auto missing = of_kind(facts, "missing_file");
    ASSERT_EQ(missing.size(), 3u);
    for (const auto& finding : missing) {
        EXPECT_EQ(finding.rule, "F1");
        EXPECT_EQ(finding.severity, "fail");
    }
    EXPECT_TRUE(contains(missing[0].message, "README.md"));
    EXPECT_TRUE(contains(missing[1].message, "no training log"));
    EXPECT_TRUE(contains(missing[2].message, "train_gpt.py is empty"));
    // The helper's third-party imports outside the challenge's environment, with no requirements.txt.
    const auto requirements = of_kind(facts, "requirements");
    ASSERT_EQ(requirements.size(), 1u);
    EXPECT_EQ(requirements[0].rule, "F2");
    EXPECT_TRUE(contains(requirements[0].message, "flash_attn, zstandard"));
    EXPECT_FALSE(contains(requirements[0].message, "torch"));
}

TEST(RecordFolderReader, RequirementsTxtSatisfiesThirdPartyImports) {
    const RecordFolderFacts facts = read_record("2026-03-20_RoundedBytes");
    EXPECT_TRUE(std::count(facts.third_party_imports.begin(), facts.third_party_imports.end(), "zstandard"));
    EXPECT_TRUE(of_kind(facts, "requirements").empty());
}

TEST(RecordFolderReader, HeadlineNotBackedByTheLogs) {
    const RecordFolderFacts facts = read_record("2026-03-19_UnbackedHeadline");
    const auto found = of_kind(facts, "headline_unbacked");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].rule, "S6");
    EXPECT_EQ(found[0].severity, "fail");
    EXPECT_EQ(found[0].evidence, "submission.json:val_bpb");
    EXPECT_TRUE(contains(found[0].message, "1.180"));
}

TEST(RecordFolderReader, HeadlineThatIsTheBestSeedAndDuplicateLogs) {
    const RecordFolderFacts facts = read_record("2026-03-19_BestSeedHeadline");
    const auto found = of_kind(facts, "headline_not_mean");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].severity, "warn");
    EXPECT_TRUE(contains(found[0].message, "best seed"));
    EXPECT_EQ(found[0].evidence, "train.log:11");
    // train_seed42.log repeats train.log byte for byte: counted once.
    const auto duplicates = of_kind(facts, "duplicate_log");
    ASSERT_EQ(duplicates.size(), 1u);
    EXPECT_EQ(duplicates[0].rule, "S5");
    EXPECT_TRUE(contains(duplicates[0].message, "train_seed42.log is identical to train.log"));
    EXPECT_EQ(facts.seed_count, 3);
    EXPECT_EQ(facts.logs.size(), 4u);
    // The JSON date keeps its time.
    EXPECT_EQ(facts.date, "2026-03-19T10:00:00Z");
}

TEST(RecordFolderReader, SeedLabelAgainstTheSeedInTheLogAndMeanMismatch) {
    const RecordFolderFacts facts = read_record("2026-03-20_SeedMislabelled");
    const auto mismatch = of_kind(facts, "seed_mismatch");
    ASSERT_EQ(mismatch.size(), 1u);
    EXPECT_EQ(mismatch[0].rule, "S5");
    EXPECT_EQ(mismatch[0].severity, "fail");
    EXPECT_EQ(mismatch[0].evidence, "train_seed7.log:3");
    EXPECT_TRUE(contains(mismatch[0].message, "labelled seed 7 but prints seed 1337"));
    // Two different logs now claim seed 1337, and the JSON's seed 7 has no log of its own.
    EXPECT_EQ(of_kind(facts, "duplicate_log").size(), 1u);
    ASSERT_EQ(of_kind(facts, "seed_without_log").size(), 1u);
    EXPECT_EQ(of_kind(facts, "seed_without_log")[0].evidence, "submission.json:seed_results.7.val_bpb");
    // The headline 1.2100 is not the mean of the JSON's own per-seed values (about 1.2147).
    const auto mean = of_kind(facts, "mean_mismatch");
    ASSERT_EQ(mean.size(), 1u);
    EXPECT_EQ(mean[0].rule, "S6");
    EXPECT_EQ(mean[0].evidence, "submission.json:val_bpb");
}

TEST(RecordFolderReader, JsonPerSeedValueAgainstItsLog) {
    TemporaryFolder temporary;
    const std::string folder = temporary.path("track_10min_16mb/2026-03-18_SeedValue");
    std::filesystem::create_directories(folder);
    std::filesystem::copy(tree() + "/track_10min_16mb/2026-03-17_CleanBaseline", folder,
                          std::filesystem::copy_options::recursive);
    std::string json;
    {
        std::ifstream in(folder + "/submission.json");
        json.assign(std::istreambuf_iterator<char>(in), {});
    }
    // Seed 42's JSON value becomes its log's in-training validation value (another line, not the score).
    const std::string from = "\"val_bpb\": 1.21033266";
    ASSERT_NE(json.find(from), std::string::npos);
    json.replace(json.find(from), from.size(), "\"val_bpb\": 1.2160");
    write_file(folder + "/submission.json", json);
    const RecordFolderFacts facts = record_folder_read(folder);
    const auto found = of_kind(facts, "seed_value_mismatch");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].rule, "S6");
    EXPECT_EQ(found[0].severity, "warn");
    EXPECT_EQ(found[0].evidence, "train_seed42.log:11");
    EXPECT_TRUE(contains(found[0].message, "seed 42"));
}

TEST(RecordFolderReader, TotalsOverTheCapAndModelOnlyJsonBytes) {
    const RecordFolderFacts facts = read_record("2026-04-06_SP8192_ModelOnlyBytes");
    EXPECT_EQ(facts.tokenizer, "sp8192");
    ASSERT_EQ(facts.seed_count, 3);
    EXPECT_EQ(facts.seeds[0].family, "quantized_sliding_window");
    EXPECT_EQ(facts.logs[0].path, "logs/train_seed1337.txt");
    const auto over = of_kind(facts, "over_cap");
    ASSERT_EQ(over.size(), 3u);
    EXPECT_EQ(over[0].rule, "A1");
    EXPECT_EQ(over[0].severity, "fail");
    EXPECT_EQ(over[0].evidence, "logs/train_seed1337.txt:10");
    EXPECT_TRUE(contains(over[0].message, "16,056,858"));
    const auto model_only = of_kind(facts, "model_only_bytes");
    ASSERT_EQ(model_only.size(), 1u);
    EXPECT_EQ(model_only[0].rule, "A5");
    EXPECT_EQ(model_only[0].evidence, "submission.json:bytes_total");
    EXPECT_TRUE(contains(model_only[0].message, "16,055,285-16,058,423"));
    // Its three logs print three different code sizes (78,737 / 78,724 / 78,742): not one script.
    const auto config = of_kind(facts, "config_mismatch");
    ASSERT_EQ(config.size(), 1u);
    EXPECT_EQ(config[0].rule, "S2");
    EXPECT_EQ(config[0].severity, "warn");
    EXPECT_EQ(config[0].evidence, "logs/train_seed2024.txt");
    EXPECT_TRUE(contains(config[0].message, "code size 78724"));
}

TEST(RecordFolderReader, JsonBytesThatNoLogPrints) {
    const RecordFolderFacts facts = read_record("2026-03-20_RoundedBytes");
    const auto found = of_kind(facts, "bytes_disagree");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].rule, "A9");
    EXPECT_EQ(found[0].severity, "info");
    // Seeds from bare numeric log names in a logs/ sub-folder.
    EXPECT_EQ(facts.logs[0].path, "logs/1337.log");
    EXPECT_EQ(*facts.logs[0].name_seed, 1337);
}

TEST(RecordFolderReader, WallclockTokensPerByteValidationTokensAndAppendedRuns) {
    const RecordFolderFacts facts = read_record("2026-03-24_TimeAndTokenizer");
    const auto train = of_kind(facts, "train_over_cap");
    ASSERT_EQ(train.size(), 1u);
    EXPECT_EQ(train[0].rule, "T1");
    EXPECT_TRUE(contains(train[0].message, "601500 ms"));
    const auto eval = of_kind(facts, "eval_over_cap");
    ASSERT_EQ(eval.size(), 1u);
    EXPECT_EQ(eval[0].rule, "E1");
    // 1.22436570 * ln 2 / 2.0727 is 0.40945, not sp1024's 0.41052 (the NaiveBaseline's different export).
    const auto tokens_per_byte = of_kind(facts, "tokens_per_byte");
    ASSERT_EQ(tokens_per_byte.size(), 1u);
    EXPECT_EQ(tokens_per_byte[0].rule, "K6");
    EXPECT_EQ(tokens_per_byte[0].evidence, "train_seed1337.log:22");
    EXPECT_TRUE(contains(tokens_per_byte[0].message, "0.40945"));
    const auto val_tokens = of_kind(facts, "val_tokens");
    ASSERT_EQ(val_tokens.size(), 1u);
    EXPECT_EQ(val_tokens[0].rule, "D5");
    EXPECT_TRUE(contains(val_tokens[0].message, "63,779,840"));
    const auto appended = of_kind(facts, "runs_appended");
    ASSERT_EQ(appended.size(), 1u);
    // The log reader's own note on it comes through as information, naming the log.
    const auto log_notes = of_kind(facts, "log_note");
    ASSERT_EQ(log_notes.size(), 1u);
    EXPECT_EQ(log_notes[0].severity, "info");
    EXPECT_TRUE(contains(log_notes[0].message, "train_seed1337.log: 2 runs appended"));
    // The last run's score is the seed's.
    EXPECT_EQ(facts.seeds[1].from, "train_seed1337.log:22");
    EXPECT_NEAR(facts.seeds[1].val_bpb, 1.22436570, 1e-9);
}

TEST(RecordFolderReader, NonRecordTrackSkipsTheWallclockCapsAndFewSeedsIsInformation) {
    const RecordFolderFacts facts = read("track_non_record_16mb", "2026-03-24_Ternary");
    EXPECT_EQ(facts.track, "track_non_record_16mb");
    ASSERT_TRUE(facts.submission);
    EXPECT_TRUE(contains(facts.submission->path, "submission_ternary.json"));
    ASSERT_EQ(facts.seed_count, 1);
    EXPECT_EQ(facts.seeds[0].family, "final_sliding");
    EXPECT_EQ(*facts.seeds[0].total_bytes, 15920000);
    EXPECT_TRUE(of_kind(facts, "eval_over_cap").empty());
    const auto few = of_kind(facts, "too_few_seeds");
    ASSERT_EQ(few.size(), 1u);
    EXPECT_EQ(few[0].severity, "info");
    EXPECT_EQ(of_kind(read_record("2026-03-21_MissingFiles"), "too_few_seeds")[0].severity, "warn");
}

TEST(RecordFolderReader, ReaderNotesBecomeInformationFindings) {
    TemporaryFolder temporary;
    const std::string folder = temporary.path("2026-03-22_Notes");
    std::filesystem::copy(tree() + "/track_10min_16mb/2026-03-17_CleanBaseline", folder,
                          std::filesystem::copy_options::recursive);
    write_file(folder + "/submission.json",
               "{\"val_bpb\": 1.20917, \"val_loss\": \"n/a\", \"track\": \"10min_16mb\"}\n");
    const RecordFolderFacts facts = record_folder_read(folder);
    // No track folder above it: the JSON's key names the track.
    EXPECT_EQ(facts.track, "track_10min_16mb");
    EXPECT_EQ(facts.date, "2026-03-22");
    const auto notes = of_kind(facts, "json_note");
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_EQ(notes[0].severity, "info");
    EXPECT_TRUE(contains(notes[0].message, "val_loss"));
}

TEST(RecordFolderReader, SeedsFromFileNamesAndLogsWithoutSeeds) {
    TemporaryFolder temporary;
    const std::string folder = temporary.path("2026-04-01_Names");
    auto line = [](const char* bpb) {
        return std::string("final_int6_sliding_window_exact val_loss:2.04000000 val_bpb:") + bpb + "\n";
    };
    write_file(folder + "/logs/seed_42.txt", line("1.20818000"));
    write_file(folder + "/logs/train_s7.log", line("1.20828000"));
    write_file(folder + "/run_2024.log", line("1.20838000"));
    write_file(folder + "/train.log", "no seed anywhere\n" + line("1.20848000"));
    write_file(folder + "/notes.txt", "just notes, not a log\n");
    write_file(folder + "/requirements.txt", "zstandard\n");
    const RecordFolderFacts facts = record_folder_read(folder);
    ASSERT_EQ(facts.logs.size(), 4u);  // notes.txt holds nothing a log holds
    std::set<std::int64_t> seeds;
    int unseeded = 0;
    for (const FolderSeed& seed : facts.seeds) {
        if (seed.seed) {
            seeds.insert(*seed.seed);
        } else {
            ++unseeded;
        }
    }
    EXPECT_EQ(seeds, (std::set<std::int64_t>{7, 42, 2024}));
    EXPECT_EQ(unseeded, 1);
    EXPECT_EQ(facts.seeds.back().from, "train.log:2");  // unseeded logs come last
    for (const FolderLog& log : facts.logs) {
        if (log.path == "logs/train_s7.log") {
            EXPECT_EQ(log.seed_from, "logs/train_s7.log (file name)");
        }
    }
}

// The shapes the first run over real record folders got wrong (excerpts of their real lines).
TEST(RecordFolderReader, LogsWithoutSeedsJoinTheJsonSeedWhoseValueTheyPrint) {
    TemporaryFolder temporary;
    const std::string folder = temporary.path("2026-04-13_VarLen");
    write_file(folder + "/logs/first.txt",
               "1776144156.999 quantized_ttt_phased val_loss:2.76951521 val_bpb:1.07216564 eval_time:500104ms\n");
    write_file(folder + "/logs/second.txt",
               "1776144157.999 quantized_ttt_phased val_loss:2.77101521 val_bpb:1.07280628 eval_time:499104ms\n");
    write_file(folder + "/logs/train2.txt",
               "1776144158.999 quantized_ttt_phased val_loss:2.77251521 val_bpb:1.07344692 eval_time:498104ms\n");
    write_file(folder + "/submission.json",
               R"({"val_bpb": 1.0728, "seed_results": {"0": {"val_bpb": 1.07216564}, "1": {"val_bpb": 1.07280628},)"
               R"( "2": {"val_bpb": 1.07344692}}})");
    const RecordFolderFacts facts = record_folder_read(folder);
    ASSERT_EQ(facts.seeds.size(), 3u);  // three seeds, not three logs plus three JSON seeds
    EXPECT_EQ(facts.seed_count, 3);
    for (const FolderSeed& seed : facts.seeds) EXPECT_GE(seed.log, 0) << *seed.seed;
    EXPECT_EQ(facts.logs[0].seed_from, "submission.json:seed_results.0.val_bpb (matched by value)");
    EXPECT_EQ(facts.logs[2].seed_from, "logs/train2.txt (file name)");  // train2.txt names seed 2
    EXPECT_TRUE(of_kind(facts, "seed_without_log").empty());
    // Each seed's evaluation time is its scored line's eval_time.
    EXPECT_DOUBLE_EQ(*facts.seeds[0].eval_time_s, 500.104);
}

TEST(RecordFolderReader, TruncatedHeadlineSlidingModeAndTheTimerOverhead) {
    TemporaryFolder temporary;
    const std::string folder = temporary.path("track_10min_16mb/2026-03-20_Truncated");
    // 10L_Int5MLP: the mean 1.1427666 written as 1.14276 (truncated, not rounded).
    const char* values[] = {"1.14271194", "1.14298416", "1.14260369"};
    for (int i = 0; i < 3; ++i) {
        write_file(folder + "/train_seed" + std::to_string(i + 1) + ".log",
                   std::string("seed:") + std::to_string(i + 1) +
                       "\nstep:13764/20000 train_loss:2.0 train_time:600000ms step_avg:43.60ms\n"
                       "stopping_early: wallclock_cap train_time:600061ms step:13764/20000\n"
                       "final_eval_mode:sliding_window stride:64 batch_seqs:32\n"
                       "final_int8_zlib_roundtrip_exact val_loss:1.92950000 val_bpb:" +
                       values[i] + "\n");
    }
    write_file(folder + "/submission.json", R"({"val_bpb": 1.14276})");
    const RecordFolderFacts facts = record_folder_read(folder);
    EXPECT_TRUE(of_kind(facts, "headline_unbacked").empty());
    EXPECT_TRUE(of_kind(facts, "headline_not_mean").empty());
    // 600,061 ms with 43.6 ms steps: within one step and the timer's overhead (LoRA_TTT's v0 log).
    EXPECT_TRUE(of_kind(facts, "train_over_cap").empty());
    ASSERT_EQ(facts.seeds.size(), 3u);
    EXPECT_EQ(facts.seeds[0].family, "final_int8_zlib_roundtrip");
    EXPECT_EQ(facts.seeds[0].eval_mode, "sliding_window");
}

TEST(RecordFolderReader, LogsWithoutAFinalScoreBackNoHeadline) {
    TemporaryFolder temporary;
    const std::string folder = temporary.path("2026-03-21_DGAttention");
    // The JSON's 1.1898 is the in-training validation line, before quantization.
    write_file(folder + "/train.log",
               "step:2979/20000 val_loss:2.0089 val_bpb:1.1898 train_time:600055ms step_avg:201.43ms\n"
               "Serialized model rdquant+zstd: 16580000 bytes\nTotal submission size: 16638468 bytes\n");
    write_file(folder + "/submission.json", R"({"val_bpb": 1.1898})");
    const RecordFolderFacts facts = record_folder_read(folder);
    const auto found = of_kind(facts, "headline_unbacked");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_TRUE(contains(found[0].message, "none of them prints a final score"));
    EXPECT_EQ(of_kind(facts, "over_cap").size(), 1u);
}

TEST(RecordFolderReader, EvaluationOverTheCapFromTheScoredLineAndJsonValuesMarked) {
    TemporaryFolder temporary;
    const std::string folder = temporary.path("track_10min_16mb/2026-04-06_QK5");
    write_file(folder + "/train_seed42.log",
               "seed:42\nlegal_ttt_exact val_loss:2.79517119 val_bpb:1.08209788 eval_time:693430ms\n");
    write_file(folder + "/submission.json",
               R"({"val_bpb": 1.0821, "seeds": {"42": {"val_bpb": 1.08209788, "bytes_total": 15992546,)"
               R"( "train_time_ms": 588035}}})");
    const RecordFolderFacts facts = record_folder_read(folder);
    const auto eval = of_kind(facts, "eval_over_cap");
    ASSERT_EQ(eval.size(), 1u);
    EXPECT_EQ(eval[0].evidence, "train_seed42.log:2");
    EXPECT_TRUE(contains(eval[0].message, "693.4 s"));
    ASSERT_EQ(facts.seeds.size(), 1u);
    EXPECT_EQ(*facts.seeds[0].total_bytes, 15992546);
    EXPECT_EQ(facts.seeds[0].from_json, (std::vector<std::string>{"total_bytes", "train_time"}));
}

TEST(RecordFolderReader, UnreadableInputIsOneLineError) {
    EXPECT_TRUE(contains(error_message([] { record_folder_read("/nonexistent/folder"); }), "not a record folder"));
    const std::string invalid = error_message(
        [] { record_folder_read(test::test_source_path("tests/records/fixtures/submissions/duplicate_keys")); });
    EXPECT_TRUE(contains(invalid, "duplicate")) << invalid;
}

TEST(RecordFolderReader, TokensPerByteConstants) {
    EXPECT_NEAR(record_tokens_per_byte(1.0805, 2.7910), 0.26834, 2e-5);
    EXPECT_DOUBLE_EQ(*record_tokenizer_tokens_per_byte("caseops"), 0.31674);
    EXPECT_FALSE(record_tokenizer_tokens_per_byte("gpt2"));
}

TEST(RecordFolderReader, CodeFilesSkipLogsCachesAndHiddenFolders) {
    TemporaryFolder temporary;
    const std::string folder = temporary.path("code");
    write_file(folder + "/train_gpt.py", "print(1)\n");
    write_file(folder + "/ngram/kernel.cpp", "int x;\n");
    write_file(folder + "/logs/helper.py", "x\n");
    write_file(folder + "/__pycache__/a.py", "x\n");
    write_file(folder + "/.git/b.py", "x\n");
    write_file(folder + "/README.md", "x\n");
    const std::vector<CodeFile> files = record_code_files(folder);
    ASSERT_EQ(files.size(), 2u);
    EXPECT_EQ(files[0].path, "ngram/kernel.cpp");
    EXPECT_EQ(files[0].bytes, 7);
    EXPECT_EQ(files[1].path, "train_gpt.py");
}

}  // namespace
}  // namespace pgolf
