// The log reader against hand-written excerpts of every final-metric line shape in RECORDS-FORMATS.md section 3: the
// right family, the exact printed values and their lines, and the sizes, seed and timings a record needs.
#include "records/log_reader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::error_message;

LogFacts read_fixture(const std::string& name) {
    return log_read_file(test::test_source_path("tests/records/fixtures/logs/" + name));
}

std::vector<std::string> families(const LogFacts& facts) {
    std::vector<std::string> names;
    for (const LogMetric& m : facts.metrics) names.push_back(m.family);
    return names;
}

const LogMetric* find_metric(const LogFacts& facts, const std::string& family) {
    for (const LogMetric& m : facts.metrics)
        if (m.family == family) return &m;
    return nullptr;
}

bool has_note(const LogFacts& facts, const std::string& part) {
    for (const std::string& note : facts.notes)
        if (note.find(part) != std::string::npos) return true;
    return false;
}

// Values compare with == on purpose: the reader must hand back the double the text spells, not a near one.
void expect_metric(const LogFacts& facts, const std::string& family, double loss, double bpb, std::int64_t line,
                   bool exact) {
    const LogMetric* m = find_metric(facts, family);
    ASSERT_NE(m, nullptr) << family;
    if (std::isnan(loss))
        EXPECT_TRUE(std::isnan(m->val_loss)) << family;
    else
        EXPECT_EQ(m->val_loss, loss) << family;
    EXPECT_EQ(m->val_bpb, bpb) << family;
    EXPECT_EQ(m->line, line) << family;
    EXPECT_EQ(m->exact, exact) << family;
}

std::string headline_family(const LogFacts& facts) {
    const LogMetric* m = log_headline_metric(facts);
    return m == nullptr ? "(none)" : m->family;
}

TEST(LogReader, BaselineRoundtripWithSeedSizesAndStopLine) {
    const LogFacts f = read_fixture("baseline_roundtrip.log");
    EXPECT_EQ(families(f), std::vector<std::string>{"final_int8_zlib_roundtrip"});
    expect_metric(f, "final_int8_zlib_roundtrip", 2.07269931, 1.22436570, 18, true);
    EXPECT_EQ(f.seed, 1337);
    EXPECT_EQ(f.seed_line, 4);
    // The uncompressed "Total submission size: 67272669 bytes" is not the artifact.
    EXPECT_EQ(f.total_bytes, 15863533);
    EXPECT_EQ(f.total_bytes_label, "int8+zlib");
    EXPECT_EQ(f.total_bytes_line, 16);
    EXPECT_EQ(f.model_bytes, 15815847);
    EXPECT_EQ(f.code_bytes, 47686);
    EXPECT_FALSE(f.code_bytes_uncompressed.has_value());
    EXPECT_TRUE(f.stopped_early);
    EXPECT_EQ(f.train_time_ms, 600038.0);
    EXPECT_EQ(f.stop_step, 13780);
    EXPECT_EQ(f.iterations, 20000);
    EXPECT_EQ(f.step_avg_ms, 43.54);
    EXPECT_EQ(f.val_tokens, 62021632);
    EXPECT_FALSE(f.has_embedded_source);
    EXPECT_FALSE(f.timestamps_stripped);
    EXPECT_EQ(f.runs_appended, 1);
    EXPECT_TRUE(f.notes.empty());
    EXPECT_EQ(headline_family(f), "final_int8_zlib_roundtrip");
    EXPECT_EQ(f.path, test::test_source_path("tests/records/fixtures/logs/baseline_roundtrip.log"));
}

TEST(LogReader, CompatAliasAfterInt6SlidingKeepsTheRoundtripValues) {
    const LogFacts f = read_fixture("int6_sliding_compat_alias.log");
    EXPECT_EQ(families(f),
              (std::vector<std::string>{"final_int6_roundtrip", "final_int6_sliding_window", "compat_alias"}));
    expect_metric(f, "final_int6_roundtrip", 1.94996580, 1.15487203, 12, true);
    expect_metric(f, "final_int6_sliding_window", 1.90990733, 1.13115281, 14, true);
    expect_metric(f, "compat_alias", 1.90990733, 1.13115281, 15, true);
    EXPECT_EQ(find_metric(f, "final_int8_zlib_roundtrip"), nullptr);
    EXPECT_TRUE(has_note(f, "compat alias: final_int8_zlib_roundtrip_exact repeats the sliding values"));
    EXPECT_EQ(headline_family(f), "final_int6_sliding_window");
    EXPECT_EQ(f.seed, 42);
    EXPECT_EQ(f.total_bytes, 15594212);
    EXPECT_EQ(f.total_bytes_label, "int6+zstd");
    EXPECT_EQ(f.step_avg_ms, 85.11);
    EXPECT_EQ(f.stop_step, 7051);
}

TEST(LogReader, StrideFirstSlidingAndEvalModeAndMislabelledTotal) {
    const LogFacts f = read_fixture("stride_first_sliding.log");
    expect_metric(f, "final_int8_zlib_roundtrip", 2.04503317, 1.21117736, 8, true);
    expect_metric(f, "final_sliding_window_eval", 1.96158312, 1.16176513, 11, true);
    EXPECT_EQ(headline_family(f), "final_sliding_window_eval");
    EXPECT_EQ(f.eval_mode, "sliding_window");
    // thwu1-style: the label says int8+zlib for an int6+zstd model; the value is still the artifact, with a note.
    EXPECT_EQ(f.total_bytes, 15262001);
    EXPECT_EQ(f.total_bytes_label, "int8+zlib");
    EXPECT_EQ(f.model_bytes, 15210987);
    EXPECT_TRUE(has_note(f, "total labelled int8+zlib follows Serialized model int6+zstd"));
    // The roundtrip before the eval-mode line is a roundtrip; the sliding family after it carries the mode, and its
    // exact line (no eval_time of its own) takes the rounded line's 72004 ms.
    EXPECT_EQ(find_metric(f, "final_int8_zlib_roundtrip")->eval_mode, "");
    EXPECT_EQ(find_metric(f, "final_sliding_window_eval")->eval_mode, "sliding_window");
    EXPECT_EQ(find_metric(f, "final_sliding_window_eval")->eval_time_ms, 72004.0);
}

TEST(LogReader, RoundtripNamedLineAfterSlidingEvalModeCarriesTheMode) {
    // SlidingWindowEval (03-19): the sliding score is printed under the roundtrip name after the eval-mode line.
    const LogFacts f = log_read_text(
        "final_eval_mode:sliding_window stride:64 batch_seqs:1024\n"
        "final_int8_zlib_roundtrip val_loss:2.0135 val_bpb:1.1925 eval_time:71201ms\n"
        "final_int8_zlib_roundtrip_exact val_loss:2.01348383 val_bpb:1.19250007\n"
        "final_ttt_lora val_loss:2.0153 val_bpb:1.1935 time:72361ms\n",
        "train.log");
    const LogMetric* roundtrip = find_metric(f, "final_int8_zlib_roundtrip");
    ASSERT_NE(roundtrip, nullptr);
    EXPECT_EQ(roundtrip->eval_mode, "sliding_window");
    EXPECT_EQ(roundtrip->eval_time_ms, 71201.0);
    EXPECT_EQ(find_metric(f, "final_ttt_lora")->eval_time_ms, 72361.0);  // Ciprian's " time:" form
}

TEST(LogReader, CiprianTernaryBudgetAvgAndParamsSeed) {
    const LogFacts f = read_fixture("ciprian_ternary.log");
    EXPECT_EQ(families(f), (std::vector<std::string>{"final_ternary_roundtrip", "final_sliding"}));
    expect_metric(f, "final_ternary_roundtrip", 1.9876, 1.1772, 8, false);
    expect_metric(f, "final_sliding", 1.9612, 1.1615, 9, false);
    EXPECT_EQ(headline_family(f), "final_sliding");
    EXPECT_EQ(f.seed, 42);
    EXPECT_EQ(f.seed_line, 1);
    EXPECT_EQ(f.total_bytes, 15923456);
    EXPECT_EQ(f.total_bytes_label, "budget");
    EXPECT_EQ(f.total_bytes_line, 7);
    EXPECT_EQ(f.code_bytes, 61234);
    EXPECT_EQ(f.step_avg_ms, 90.8);
    EXPECT_EQ(f.stop_step, 6600);
    EXPECT_EQ(f.train_time_ms, 599500.0);
}

TEST(LogReader, SuffixFormSlidingIsItsOwnSlidingFamily) {
    const LogFacts f = read_fixture("suffix_sliding.log");
    expect_metric(f, "final_int8_zlib_roundtrip", 2.08012345, 1.23194567, 7, true);
    expect_metric(f, "int8_zlib_roundtrip_sliding", 2.04561234, 1.21151234, 9, true);
    EXPECT_EQ(f.metrics.size(), 2u);
    EXPECT_EQ(headline_family(f), "int8_zlib_roundtrip_sliding");
    EXPECT_TRUE(f.notes.empty());
}

TEST(LogReader, Sp8192QuantizedDiagnosticsAndCompressedCodeSize) {
    const LogFacts f = read_fixture("sp8192_quantized.log");
    expect_metric(f, "diagnostic_post_ema", 2.8070, 1.0867, 9, false);
    expect_metric(f, "diagnostic_prequant", 2.8071, 1.0868, 10, false);
    expect_metric(f, "diagnostic_quantized", 2.8312, 1.0961, 16, false);
    expect_metric(f, "quantized", 2.8312, 1.0961, 17, false);
    expect_metric(f, "quantized_sliding_window", 2.7910, 1.0805, 18, false);
    EXPECT_EQ(f.metrics.size(), 5u);
    EXPECT_EQ(headline_family(f), "quantized_sliding_window");
    EXPECT_EQ(f.seed, 1337);
    EXPECT_EQ(f.seed_line, 3);
    EXPECT_EQ(f.val_tokens, 40540160);
    EXPECT_EQ(f.code_bytes, 18456);
    EXPECT_EQ(f.code_bytes_uncompressed, 71234);
    EXPECT_EQ(f.model_bytes, 15912345);
    EXPECT_EQ(f.total_bytes, 15930801);
    EXPECT_EQ(f.total_bytes_label, "quantized+brotli");
    // The spaced stop line, and no step average printed: train_time / stop_step.
    EXPECT_EQ(f.train_time_ms, 590009.0);
    EXPECT_EQ(f.stop_step, 5962);
    EXPECT_EQ(f.iterations, 20000);
    ASSERT_TRUE(f.step_avg_ms.has_value());
    EXPECT_DOUBLE_EQ(*f.step_avg_ms, 590009.0 / 5962.0);
    EXPECT_EQ(f.total_eval_time_s, 98.4);
}

TEST(LogReader, LegalTttAndTttSlidingDone) {
    const LogFacts f = read_fixture("legal_ttt.log");
    expect_metric(f, "legal_ttt", 1.88901234, 1.11879876, 14, true);
    expect_metric(f, "ttt_sliding", 1.88901234, 1.11880000, 12, false);
    expect_metric(f, "final_int6_sliding_window", 1.90501234, 1.12826543, 9, true);
    EXPECT_EQ(f.metrics.size(), 4u);
    EXPECT_EQ(headline_family(f), "legal_ttt");
    EXPECT_EQ(f.seed, 2025);
}

TEST(LogReader, PhasedTttWithTimestampsOnEveryLine) {
    const LogFacts f = read_fixture("phased_ttt_timestamps.log");
    EXPECT_TRUE(f.timestamps_stripped);
    EXPECT_EQ(f.seed, 42);
    EXPECT_EQ(f.seed_line, 2);
    EXPECT_EQ(f.val_tokens, 40540160);
    EXPECT_EQ(families(f),
              (std::vector<std::string>{"diagnostic_prequant", "diagnostic_quantized", "quantized_ttt_phased"}));
    expect_metric(f, "diagnostic_prequant", 2.7990, 1.0836, 7, false);
    expect_metric(f, "quantized_ttt_phased", 2.7801, 1.07632145, 16, false);
    EXPECT_EQ(headline_family(f), "quantized_ttt_phased");
    EXPECT_EQ(f.total_eval_time_s, 478.3);
    EXPECT_EQ(f.total_bytes, 15921345);
    EXPECT_EQ(f.total_bytes_label, "quantized+pergroup");
    EXPECT_EQ(f.code_bytes, 20111);
    EXPECT_EQ(f.code_bytes_uncompressed, 80123);
    EXPECT_EQ(f.stop_step, 4512);
    ASSERT_TRUE(f.step_avg_ms.has_value());
    EXPECT_DOUBLE_EQ(*f.step_avg_ms, 596123.0 / 4512.0);
}

TEST(LogReader, EmbeddedSourceLinesNeverMatch) {
    const LogFacts f = read_fixture("embedded_source.log");
    EXPECT_TRUE(f.has_embedded_source);
    EXPECT_EQ(families(f), std::vector<std::string>{"final_int8_zlib_roundtrip"});
    expect_metric(f, "final_int8_zlib_roundtrip", 2.07551234, 1.22921111, 30, true);
    EXPECT_EQ(f.seed, 7);
    EXPECT_EQ(f.seed_line, 24);
    EXPECT_EQ(f.total_bytes, 15858797);
    EXPECT_FALSE(f.total_eval_time_s.has_value());
    EXPECT_EQ(f.step_avg_ms, 44.12);
}

TEST(LogReader, TwoRunsAppendedLastRunWins) {
    const LogFacts f = read_fixture("two_runs_appended.log");
    EXPECT_EQ(f.runs_appended, 2);
    EXPECT_TRUE(has_note(f, "2 runs appended"));
    expect_metric(f, "final_int8_zlib_roundtrip", 2.12153333, 1.25654444, 14, true);
    EXPECT_EQ(f.seed, 1337);
    EXPECT_EQ(f.seed_line, 8);
    EXPECT_EQ(f.total_bytes, 14950778);
    EXPECT_EQ(f.model_bytes, 14900777);
    EXPECT_EQ(f.stop_step, 3100);
    EXPECT_EQ(f.step_avg_ms, 193.61);
}

TEST(LogReader, LegendreSizeLine) {
    const LogFacts f = read_fixture("legendre_sizes.log");
    expect_metric(f, "final_INT7_zlib_roundtrip", 2.10112345, 1.24437890, 7, true);
    EXPECT_EQ(f.model_bytes, 15234567);
    EXPECT_EQ(f.total_bytes, 15290123);
    EXPECT_EQ(f.total_bytes_label, "INT7+zlib");
    EXPECT_EQ(f.total_bytes_line, 5);
    EXPECT_FALSE(f.seed.has_value());
    EXPECT_FALSE(f.stopped_early);
    EXPECT_EQ(f.iterations, 9000);
    EXPECT_EQ(headline_family(f), "final_INT7_zlib_roundtrip");
}

TEST(LogReader, DgAttentionUnlabelledTotalAfterRdquant) {
    const LogFacts f = read_fixture("dgattention_unlabelled_total.log");
    EXPECT_EQ(f.total_bytes, 16638468);
    EXPECT_EQ(f.total_bytes_label, "rdquant+zstd");
    EXPECT_EQ(f.total_bytes_line, 8);
    EXPECT_EQ(f.model_bytes, 16586127);
    EXPECT_EQ(f.code_bytes, 52341);
    EXPECT_TRUE(f.metrics.empty());
    EXPECT_EQ(log_headline_metric(f), nullptr);
}

TEST(LogReader, SummaryBlock) {
    const LogFacts f = read_fixture("summary_block.log");
    expect_metric(f, "summary", std::nan(""), 1.14276000, 10, false);
    expect_metric(f, "compat_alias", 1.92954321, 1.14276000, 8, true);
    EXPECT_EQ(headline_family(f), "final_int6_sliding_window");
    EXPECT_EQ(f.total_bytes, 15766666);
    EXPECT_EQ(f.total_bytes_label, "int6+zstd-22");
    // Alone, the summary block is the score.
    const LogFacts only = log_read_text("---\nval_bpb:          1.14276000\nvalid: true\n", "summary.log");
    EXPECT_EQ(headline_family(only), "summary");
}

TEST(LogReader, NoFinalLine) {
    const LogFacts f = read_fixture("no_final_line.log");
    EXPECT_TRUE(f.metrics.empty());
    EXPECT_EQ(log_headline_metric(f), nullptr);
    EXPECT_EQ(f.seed, 1337);
    // The XNOR stop line has no step part.
    EXPECT_TRUE(f.stopped_early);
    EXPECT_EQ(f.train_time_ms, 600100.0);
    EXPECT_FALSE(f.stop_step.has_value());
    EXPECT_EQ(f.step_avg_ms, 150.0);
    EXPECT_FALSE(f.total_bytes.has_value());
}

TEST(LogReader, ProgressLinesAreIgnored) {
    const LogFacts f = read_fixture("progress_lines.log");
    EXPECT_EQ(families(f), std::vector<std::string>{"final_int6_sliding_window"});
    expect_metric(f, "final_int6_sliding_window", 1.90123456, 1.12600001, 6, true);
    EXPECT_EQ(headline_family(f), "final_int6_sliding_window");
}

TEST(LogReader, FailedTttIsAFamilyButNotTheHeadline) {
    const std::string text =
        "final_int6_sliding_window_exact val_loss:1.89012345 val_bpb:1.11943210\n"
        "final_int6_ttt val_loss:2.2561 val_bpb:1.3362 eval_time:400123ms\n";
    const LogFacts f = log_read_text(text, "ttt_failed.log");
    expect_metric(f, "final_int6_ttt", 2.2561, 1.3362, 2, false);
    EXPECT_EQ(headline_family(f), "final_int6_sliding_window");
    EXPECT_TRUE(has_note(f, "failed TTT: final_int6_ttt"));
}

TEST(LogReader, RoundedLineAloneAndCrlfAndOddContentNeverThrow) {
    const LogFacts f = log_read_text(
        "final_int8_zlib_roundtrip val_loss:2.0727 val_bpb:1.2244 eval_time:1403ms\r\n"
        "final_int8_zlib_roundtrip_exact val_loss:nan val_bpb:nan\r\n"
        "seed:99999999999999999999999\r\n"
        "1234567890.12 not a timestamp\r\n"
        "\x01\xff{{{ val_loss:1\r\n",
        "odd.log");
    expect_metric(f, "final_int8_zlib_roundtrip", 2.0727, 1.2244, 1, false);
    EXPECT_FALSE(f.seed.has_value());
    EXPECT_FALSE(f.timestamps_stripped);
    const LogFacts empty = log_read_text("", "empty.log");
    EXPECT_TRUE(empty.metrics.empty());
    EXPECT_FALSE(empty.has_embedded_source);
    EXPECT_EQ(empty.runs_appended, 1);
}

TEST(LogReader, UnreadableFileNamesThePath) {
    const std::string missing = test::test_source_path("tests/records/fixtures/logs/does_not_exist.log");
    const std::string message = error_message([&] { log_read_file(missing); });
    EXPECT_NE(message.find(missing), std::string::npos) << message;
    const std::string folder = test::test_source_path("tests/records/fixtures/logs");
    EXPECT_NE(error_message([&] { log_read_file(folder); }).find(folder), std::string::npos);
}

}  // namespace
}  // namespace pgolf
