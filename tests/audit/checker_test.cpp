// pgolf check's library side (audit/checker): the folder reader's findings, the cap recomputed with every shipped code
// file (A6), significance against the store's frontier or a named submission, the static scan's findings with
// file:line, the verdict and exit status, and the JSON report.
#include "audit/checker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "leaderboard/importer.h"
#include "leaderboard/store.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::error_message;
using test::TemporaryFolder;

std::string record(const std::string& name) {
    return test::test_source_path("tests/records/fixtures/tree/records/track_10min_16mb/" + name);
}

// A copy of a fixture record folder under track_10min_16mb in a temporary folder, so a test can change it.
std::string copy_record(const TemporaryFolder& temporary, const std::string& name) {
    const std::string target = temporary.path("records/track_10min_16mb/" + name);
    std::filesystem::create_directories(target);
    std::filesystem::copy(record(name), target, std::filesystem::copy_options::recursive);
    return target;
}

const RecordFinding* find_kind(const CheckReport& report, const std::string& kind) {
    for (const RecordFinding& finding : report.findings) {
        if (finding.kind == kind) return &finding;
    }
    return nullptr;
}

TEST(Checker, CleanFolderWithoutDatabasePasses) {
    CheckOptions options;
    options.folder = record("2026-03-17_CleanBaseline");
    const CheckReport report = check_folder(options);
    EXPECT_EQ(report.verdict, "PASS");
    EXPECT_EQ(check_exit_status(report), 0);
    EXPECT_FALSE(report.significance);
    EXPECT_NE(report.significance_note.find("significance not tested"), std::string::npos);
    EXPECT_EQ(*report.largest_total_bytes, 15863533);
    ASSERT_EQ(report.scan.files.size(), 1u);
    EXPECT_EQ(report.scan.files[0].path, "train_gpt.py");
    const std::string text = check_report_text(report);
    EXPECT_NE(text.find("verdict: PASS (0 fail, 0 warn, 0 info)"), std::string::npos) << text;
}

TEST(Checker, FailingAndWarningFindingsSetTheVerdict) {
    CheckOptions options;
    options.folder = record("2026-03-21_MissingFiles");
    const CheckReport missing = check_folder(options);
    EXPECT_EQ(missing.verdict, "FAIL");
    EXPECT_EQ(check_exit_status(missing), 2);
    // Failing findings are listed first.
    EXPECT_EQ(missing.findings.front().severity, "fail");
    options.folder = record("2026-03-19_BestSeedHeadline");
    const CheckReport best = check_folder(options);
    EXPECT_EQ(best.verdict, "WARN");
    EXPECT_EQ(check_exit_status(best), 1);
}

TEST(Checker, CodeThatTheLogsDidNotCountIsAddedBack) {
    TemporaryFolder temporary;
    const std::string folder = copy_record(temporary, "2026-03-17_CleanBaseline");
    // 200,000 bytes of helper code that the logs' 47,686 code bytes do not include: 15,815,847 + 200,369 > 16,000,000.
    std::ofstream(folder + "/ngram_helper.py") << "# " << std::string(200'000 - 3, 'x') << "\n";
    CheckOptions options;
    options.folder = folder;
    const CheckReport report = check_folder(options);
    const RecordFinding* found = find_kind(report, "code_not_counted");
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->rule, "A6");
    EXPECT_EQ(found->severity, "fail");
    EXPECT_EQ(found->evidence, "train_seed1337.log:9");  // the total line
    EXPECT_NE(found->message.find("16,016,216"), std::string::npos) << found->message;
    EXPECT_EQ(report.verdict, "FAIL");
}

TEST(Checker, SignificanceAgainstTheFrontierAndANamedSubmission) {
    TemporaryFolder temporary;
    Store store = Store::open(temporary.path("pgolf.db"));
    leaderboard_import_tree(store, test::test_source_path("tests/records/fixtures/tree/records"));
    CheckOptions options;
    options.db_path = temporary.path("pgolf.db");
    // The clean baseline against the frontier: the frontier's best other row is "Best seed headline" (lower mean).
    options.folder = record("2026-03-17_CleanBaseline");
    const CheckReport clean = check_folder(options);
    ASSERT_TRUE(clean.significance);
    EXPECT_EQ(clean.significance->against_name, "Best seed headline");
    ASSERT_TRUE(clean.significance->tests);
    EXPECT_FALSE(clean.significance->passes);
    EXPECT_GT(clean.significance->tests->welch_bpb.p, 0.9);
    ASSERT_NE(find_kind(clean, "not_significant"), nullptr);
    EXPECT_EQ(find_kind(clean, "not_significant")->rule, "P1");
    EXPECT_EQ(clean.verdict, "WARN");
    // The better folder against the clean one, named by id: passes the gate (Welch on bpb, p < 0.25).
    options.folder = record("2026-03-19_BestSeedHeadline");
    options.against = store.find_submission_by_folder("records/track_10min_16mb/2026-03-17_CleanBaseline")->id;
    const CheckReport best = check_folder(options);
    ASSERT_TRUE(best.significance);
    EXPECT_TRUE(best.significance->passes);
    EXPECT_LT(best.significance->tests->welch_bpb.p, 0.25);
    EXPECT_EQ(find_kind(best, "not_significant"), nullptr);
    const auto json = check_report_json(best);
    EXPECT_EQ(json["significance"]["gate"], "welch_bpb");
    EXPECT_EQ(json["significance"]["tests"].size(), 3u);
    // An id that is not stored is an error.
    options.against = 999;
    EXPECT_NE(error_message([&] { check_folder(options); }).find("no submission with id 999"), std::string::npos);
}

TEST(Checker, ScanFindingsCarryTheRuleAndTheLine) {
    TemporaryFolder temporary;
    const std::string folder = copy_record(temporary, "2026-03-17_CleanBaseline");
    std::filesystem::copy_file(test::test_source_path("tests/audit/fixtures/scan/prequant_ttt_adamw.py"),
                               folder + "/train_gpt.py", std::filesystem::copy_options::overwrite_existing);
    CheckOptions options;
    options.folder = folder;
    const CheckReport report = check_folder(options);
    ASSERT_FALSE(report.scan.findings.empty());
    const ScanFinding& scan = report.scan.findings.front();
    EXPECT_EQ(scan.rule, "L6");
    const RecordFinding* found = find_kind(report, "scan");
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->rule, "L6");
    EXPECT_EQ(found->severity, "fail");
    EXPECT_EQ(found->evidence, "train_gpt.py:" + std::to_string(scan.line));
    EXPECT_EQ(report.verdict, "FAIL");
}

TEST(Checker, JsonReportCarriesSeedsLogsCodeAndFindings) {
    CheckOptions options;
    options.folder = record("2026-04-06_SP8192_ModelOnlyBytes");
    const auto json = check_report_json(check_folder(options));
    EXPECT_EQ(json["verdict"], "FAIL");
    EXPECT_EQ(json["tokenizer"], "sp8192");
    EXPECT_EQ(json["seeds"].size(), 3u);
    EXPECT_EQ(json["seeds"][0]["family"], "quantized_sliding_window");
    EXPECT_EQ(json["logs"][0]["path"], "logs/train_seed1337.txt");
    EXPECT_EQ(json["code_files"][0]["path"], "train_gpt.py");
    EXPECT_TRUE(json["significance"].is_null());
    const auto& findings = json["findings"];
    EXPECT_TRUE(std::any_of(findings.begin(), findings.end(),
                            [](const auto& f) { return f["kind"] == "model_only_bytes" && f["rule"] == "A5"; }));
}

}  // namespace
}  // namespace pgolf
