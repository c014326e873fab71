// Reads the final metrics, seed, sizes and timings out of a real parameter-golf training log (every line shape in
// RECORDS-FORMATS.md section 3), so the records importer never has to guess from free text.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace pgolf {

struct LogMetric {
    // The line's name without a trailing "_exact" (e.g. "final_int6_sliding_window"), or one of the fixed names
    // "summary", "ttt_sliding", "compat_alias", "diagnostic_post_ema", "diagnostic_prequant", "diagnostic_quantized".
    std::string family;
    double val_loss = std::numeric_limits<double>::quiet_NaN();  // NaN where the line has none (the summary block)
    double val_bpb = std::numeric_limits<double>::quiet_NaN();
    std::int64_t line = 0;  // 1-based line of the source line in the file
    bool exact = false;     // the values came from the full-precision "_exact" line
    // The line's " eval_time:Nms" (or Ciprian's " time:Nms"); from the rounded line of the family when the exact line
    // has none.
    std::optional<double> eval_time_ms;
    // The word of the last "final_eval_mode:" line before this one ("sliding_window"): a roundtrip-named line printed
    // after it is that evaluation's score (RECORDS-FORMATS.md section 3). "" when none came before.
    std::string eval_mode;
};

struct LogFacts {
    std::string path;
    // One entry per family, in the order of their source lines: the last match of each, the "_exact" line preferred
    // over the rounded line of the same family.
    std::vector<LogMetric> metrics;
    std::optional<std::int64_t> seed;
    std::int64_t seed_line = 0;
    // The compressed artifact total (never the uncompressed "Total submission size: N bytes"), with the label the log
    // printed ("int6+zstd", "budget", "INT7+zlib", ...) because the label can be wrong and a reviewer must see it.
    std::optional<std::int64_t> total_bytes;
    std::string total_bytes_label;
    std::int64_t total_bytes_line = 0;
    std::optional<std::int64_t> code_bytes;  // what the total counts: "Code size:" or "Code size (compressed):"
    std::optional<std::int64_t> code_bytes_uncompressed;
    std::optional<std::int64_t> model_bytes;  // "Serialized model <fmt>: N bytes" (never the raw torch file)
    std::optional<double> train_time_ms;      // from the wallclock stop line
    std::optional<std::int64_t> stop_step;
    std::optional<std::int64_t> iterations;  // the planned step count (M of "step:N/M")
    bool stopped_early = false;
    std::optional<double> step_avg_ms;  // last step_avg / avg, else train_time_ms / stop_step
    std::optional<double> total_eval_time_s;
    std::optional<std::string> eval_mode;  // first word after the last "final_eval_mode:"
    std::optional<std::int64_t> val_tokens;
    bool has_embedded_source = false;  // the log starts with the training script's source
    bool timestamps_stripped = false;
    std::int64_t runs_appended = 1;  // most "_exact" lines of one family: >1 means several runs in one file
    std::vector<std::string> notes;  // what a reviewer should know (compat alias, failed TTT, suspicious labels)
};

// Never throws on odd content: a line it does not recognise is skipped.
LogFacts log_read_text(const std::string& text, const std::string& path);
// Throws pgolf::Error naming the path when the file cannot be read.
LogFacts log_read_file(const std::string& path);

// The family a record reports as its score: a TTT family (legal_ttt, then quantized_ttt*, then final_*ttt*, then
// ttt_sliding) unless its bpb is worse than the non-TTT score (a failed TTT), then the latest sliding family, then the
// latest roundtrip family, then the summary block; never a diagnostic and never the compat alias. nullptr when none.
const LogMetric* log_headline_metric(const LogFacts& facts);

}  // namespace pgolf
