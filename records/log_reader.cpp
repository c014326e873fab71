// Hand-written line matchers rather than std::regex: libstdc++'s regex recurses per character and can overflow the
// stack on the very long lines some logs hold (hyperparameter dumps, embedded source), and the reader must never fail
// on odd content. Every matcher is anchored at the start of the (timestamp-stripped) line, as RECORDS-FORMATS.md asks.
#include "records/log_reader.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string_view>

#include "core/error.h"
#include "core/file_util.h"

namespace pgolf {
namespace {

using std::string_view;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_blank(char c) { return c == ' ' || c == '\t'; }

string_view trim_left(string_view s) {
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    return s;
}

string_view trim_right(string_view s) {
    while (!s.empty() && (is_blank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// A position in one line; each matcher consumes on success and leaves the position alone on failure, so callers can
// try alternatives in order.
class Cursor {
public:
    explicit Cursor(string_view text) : text_(text) {}

    bool literal(string_view expected) {
        if (!text_.substr(pos_).starts_with(expected)) return false;
        pos_ += expected.size();
        return true;
    }
    bool optional_space() {
        if (pos_ < text_.size() && text_[pos_] == ' ') ++pos_;
        return true;
    }
    string_view word() {
        const std::size_t start = pos_;
        while (pos_ < text_.size() && is_word(text_[pos_])) ++pos_;
        return text_.substr(start, pos_ - start);
    }
    // Up to the next blank: labels such as "int6+zstd-22" hold characters a word does not.
    string_view token_until(char stop) {
        const std::size_t start = pos_;
        while (pos_ < text_.size() && !is_blank(text_[pos_]) && text_[pos_] != stop) ++pos_;
        return text_.substr(start, pos_ - start);
    }
    bool integer(std::int64_t& out) {
        std::size_t end = pos_;
        while (end < text_.size() && is_digit(text_[end])) ++end;
        if (end == pos_) return false;
        std::int64_t value = 0;
        const auto [ptr, ec] = std::from_chars(text_.data() + pos_, text_.data() + end, value);
        if (ec != std::errc() || ptr != text_.data() + end) return false;  // out of range: not a number we trust
        out = value;
        pos_ = end;
        return true;
    }
    // \d+(\.\d+)? only: "nan", "{x:.4f}" and friends are never a value.
    bool number(double& out) {
        std::size_t end = pos_;
        while (end < text_.size() && is_digit(text_[end])) ++end;
        if (end == pos_) return false;
        if (end + 1 < text_.size() && text_[end] == '.' && is_digit(text_[end + 1])) {
            ++end;
            while (end < text_.size() && is_digit(text_[end])) ++end;
        }
        double value = 0.0;
        const auto [ptr, ec] = std::from_chars(text_.data() + pos_, text_.data() + end, value);
        if (ec != std::errc() || ptr != text_.data() + end) return false;
        out = value;
        pos_ = end;
        return true;
    }
    bool at_end() const { return trim_right(text_.substr(pos_)).empty(); }

private:
    string_view text_;
    std::size_t pos_ = 0;
};

// "<sep>" is ':' for most lines and '=' for ttt_sliding:done.
bool read_loss_and_bpb(Cursor& c, char sep, double& loss, double& bpb) {
    const std::string loss_key = std::string(" val_loss") + sep;
    const std::string bpb_key = std::string(" val_bpb") + sep;
    return c.literal(loss_key) && c.number(loss) && c.literal(bpb_key) && c.number(bpb);
}

// Finds "key" starting a token (preceded by the line start, a blank or ':') followed by digits.
std::optional<std::int64_t> find_keyed_integer(string_view line, string_view key) {
    std::optional<std::int64_t> found;
    for (std::size_t at = line.find(key); at != string_view::npos; at = line.find(key, at + 1)) {
        if (at > 0 && is_word(line[at - 1])) continue;  // "data_seed=" is not "seed="
        Cursor c(line.substr(at + key.size()));
        std::int64_t value = 0;
        if (c.integer(value)) found = value;
    }
    return found;
}

bool ends_with_exact(string_view name) { return name.ends_with("_exact"); }
string_view without_exact(string_view name) { return ends_with_exact(name) ? name.substr(0, name.size() - 6) : name; }

enum class Kind { ttt, sliding, roundtrip, summary, excluded };

Kind family_kind(const std::string& family) {
    if (family == "compat_alias" || family.starts_with("diagnostic_")) return Kind::excluded;
    if (family == "summary") return Kind::summary;
    if (family.find("ttt") != std::string::npos) return Kind::ttt;
    if (family.find("sliding") != std::string::npos) return Kind::sliding;
    return Kind::roundtrip;
}

// Lower is preferred: the legal (score-first) TTT is what the records declare when several TTT lines are printed.
int ttt_rank(const std::string& family) {
    if (family == "legal_ttt") return 0;
    if (family.starts_with("quantized_ttt")) return 1;
    if (family.starts_with("final_")) return 2;
    return 3;
}

const LogMetric* latest_of_kind(const LogFacts& facts, Kind kind) {
    const LogMetric* best = nullptr;
    for (const LogMetric& m : facts.metrics)
        if (family_kind(m.family) == kind && (best == nullptr || m.line > best->line)) best = &m;
    return best;
}

// The score without test-time training; a TTT that ends worse than it failed (RECORDS-FORMATS.md: the 04-04
// final_int6_ttt at 1.336) and is kept as a family but never reported.
const LogMetric* non_ttt_score(const LogFacts& facts) {
    const LogMetric* sliding = latest_of_kind(facts, Kind::sliding);
    return sliding != nullptr ? sliding : latest_of_kind(facts, Kind::roundtrip);
}

bool ttt_failed(const LogMetric& ttt, const LogMetric* base) { return base != nullptr && ttt.val_bpb > base->val_bpb; }

struct FamilyState {
    LogMetric rounded;
    LogMetric exact;
    bool has_rounded = false;
    bool has_exact = false;
    std::int64_t exact_count = 0;
};

class Reader {
public:
    explicit Reader(LogFacts& facts) : facts_(facts) {}

    void line(string_view text, std::int64_t number) {
        line_ = number;
        text = strip_timestamp(trim_right(text));
        text_ = text;
        if (!seen_content_ && !trim_left(text).empty()) {
            seen_content_ = true;
            facts_.has_embedded_source = looks_like_python(trim_left(text));
        }
        // Before the source-code filter: a hyperparameter dump may print dicts, and seed= still needs digits.
        if (text.starts_with("--- Hyperparameters ---")) {
            if (const auto seed = find_keyed_integer(text, "seed=")) set_seed(*seed);
            return;
        }
        if (text.find('{') != string_view::npos) return;  // a format string of the embedded source, not a value
        if (text.starts_with("step:")) return step_line(text);
        if (is_progress(text)) return;
        if (metric_line(text)) return;
        size_or_timing_line(text);
    }

    void finish() {
        std::vector<const FamilyState*> ordered;
        for (const auto& [name, state] : families_) ordered.push_back(&state);
        auto chosen = [](const FamilyState* s) -> const LogMetric& { return s->has_exact ? s->exact : s->rounded; };
        for (auto& [name, state] : families_) {
            if (state.has_exact && state.has_rounded && !state.exact.eval_time_ms)
                state.exact.eval_time_ms = state.rounded.eval_time_ms;
        }
        std::stable_sort(ordered.begin(), ordered.end(),
                         [&](const FamilyState* a, const FamilyState* b) { return chosen(a).line < chosen(b).line; });
        for (const FamilyState* s : ordered) {
            facts_.metrics.push_back(chosen(s));
            facts_.runs_appended = std::max(facts_.runs_appended, s->exact_count);
        }
        if (facts_.runs_appended > 1)
            facts_.notes.push_back(std::to_string(facts_.runs_appended) +
                                   " runs appended in one file: the last run's values are used");
        if (!facts_.step_avg_ms && facts_.train_time_ms && facts_.stop_step && *facts_.stop_step > 0)
            facts_.step_avg_ms = *facts_.train_time_ms / static_cast<double>(*facts_.stop_step);
        const LogMetric* base = non_ttt_score(facts_);
        for (const LogMetric& m : facts_.metrics)
            if (family_kind(m.family) == Kind::ttt && ttt_failed(m, base))
                facts_.notes.push_back("failed TTT: " + m.family + " val_bpb " + format_double(m.val_bpb) +
                                       " is worse than " + base->family + " " + format_double(base->val_bpb) +
                                       ", not the headline");
    }

private:
    string_view strip_timestamp(string_view text) {
        // ^\d{10}\.\d{3} (the 2026-04-13 logs stamp every line)
        if (text.size() < 15 || text[10] != '.' || text[14] != ' ') return text;
        for (int i = 0; i < 14; ++i)
            if (i != 10 && !is_digit(text[i])) return text;
        facts_.timestamps_stripped = true;
        return text.substr(15);
    }

    static bool looks_like_python(string_view text) {
        for (const string_view start : {"import ", "from ", "\"\"\"", "#!", "def "})
            if (text.starts_with(start)) return true;
        return false;
    }

    static bool is_progress(string_view text) {
        for (const string_view start : {"ttt_progress:", "ttp:", "tttg:", "sliding_eval [", "ttt_sliding:chunk"})
            if (text.starts_with(start)) return true;
        return false;
    }

    static std::string format_double(double v) {
        char buffer[32];
        const auto [ptr, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
        return ec == std::errc() ? std::string(buffer, ptr) : std::string("?");
    }

    void set_seed(std::int64_t seed) {
        facts_.seed = seed;
        facts_.seed_line = line_;
    }

    void record(const std::string& family, double loss, double bpb, bool exact) {
        FamilyState& s = families_[family];
        LogMetric& m = exact ? s.exact : s.rounded;
        m = LogMetric{family, loss, bpb, line_, exact, eval_time_on_line(), eval_mode_};
        if (exact) {
            s.has_exact = true;
            ++s.exact_count;
        } else {
            s.has_rounded = true;
        }
        if (exact && family_kind(family) == Kind::sliding) last_sliding_exact_ = m;
    }

    // " eval_time:Nms" or " time:Nms" anywhere on the current metric line.
    std::optional<double> eval_time_on_line() const {
        for (const string_view key : {" eval_time:", " time:"}) {
            const std::size_t at = text_.find(key);
            if (at == string_view::npos) continue;
            Cursor c(text_.substr(at + key.size()));
            double ms = 0.0;
            if (c.number(ms) && c.literal("ms")) return ms;
        }
        return std::nullopt;
    }

    // step:N/M … step_avg:X.XXms (baseline) or step:N/M loss:X t:Nms avg:X.Xms (Ciprian); never a metric.
    void step_line(string_view text) {
        Cursor c(text);
        std::int64_t step = 0, planned = 0;
        if (!(c.literal("step:") && c.integer(step) && c.literal("/") && c.integer(planned))) return;
        if (!facts_.stopped_early) facts_.iterations = planned;
        for (const string_view key : {" step_avg:", " avg:"}) {
            const std::size_t at = text.rfind(key);
            if (at == string_view::npos) continue;
            Cursor v(text.substr(at + key.size()));
            double avg = 0.0;
            if (v.number(avg) && v.literal("ms")) {
                facts_.step_avg_ms = avg;
                return;
            }
        }
    }

    bool metric_line(string_view text) {
        Cursor c(text);
        double loss = 0.0, bpb = 0.0;
        if (text.starts_with("final_") && !text.starts_with("final_eval_mode:")) {
            const string_view name = c.word();
            if (name.size() <= 6) return false;
            const bool exact = ends_with_exact(name);
            if (c.literal(" sliding val_loss:")) {
                // final_X_exact sliding val_loss:N sliding val_bpb:N (Random_Linear_Adapter): a sliding score
                if (!(c.number(loss) && c.literal(" sliding val_bpb:") && c.number(bpb))) return false;
                record(std::string(without_exact(name.substr(6))) + "_sliding", loss, bpb, exact);
                return true;
            }
            std::int64_t stride = 0;
            if (c.literal(" stride:") && !c.integer(stride)) return false;
            if (!read_loss_and_bpb(c, ':', loss, bpb)) return false;
            const std::string family(without_exact(name));
            if (exact && family.ends_with("roundtrip") && last_sliding_exact_ &&
                last_sliding_exact_->val_loss == loss && last_sliding_exact_->val_bpb == bpb) {
                // Printed after the sliding score with the sliding values, for tools that only read this name: it is
                // not a roundtrip measurement and must not overwrite one.
                record("compat_alias", loss, bpb, true);
                facts_.notes.push_back("compat alias: " + std::string(name) + " repeats the sliding values of " +
                                       last_sliding_exact_->family + " (line " + std::to_string(line_) + ")");
                return true;
            }
            record(family, loss, bpb, exact);
            return true;
        }
        if (text.starts_with("quantized") || text.starts_with("legal_ttt")) {
            const string_view name = c.word();
            const string_view base = without_exact(name);
            const bool known = base == "legal_ttt" || base == "quantized" || base.starts_with("quantized_");
            if (!known || !read_loss_and_bpb(c, ':', loss, bpb)) return false;
            record(std::string(base), loss, bpb, ends_with_exact(name));
            return true;
        }
        if (c.literal("ttt_sliding:done")) {
            if (!read_loss_and_bpb(c, '=', loss, bpb)) return false;
            record("ttt_sliding", loss, bpb, false);
            return true;
        }
        static const std::pair<string_view, const char*> diagnostics[] = {
            {"DIAGNOSTIC post_ema", "diagnostic_post_ema"},
            {"diagnostic pre-quantization post-ema", "diagnostic_prequant"},
            {"pre-quantization post-ema", "diagnostic_prequant"},
            {"diagnostic quantized", "diagnostic_quantized"},
        };
        for (const auto& [prefix, family] : diagnostics) {
            Cursor d(text);
            if (d.literal(prefix) && read_loss_and_bpb(d, ':', loss, bpb)) {
                record(family, loss, bpb, false);
                return true;
            }
        }
        if (c.literal("val_bpb:")) {
            // The 03-22 trailing summary block: "val_bpb:" then padding, the number and nothing else.
            if (text.size() <= 8 || !is_blank(text[8])) return false;
            Cursor v(trim_left(text.substr(8)));
            if (!(v.number(bpb) && v.at_end())) return false;
            record("summary", std::numeric_limits<double>::quiet_NaN(), bpb, false);
            return true;
        }
        return false;
    }

    void size_or_timing_line(string_view text) {
        Cursor c(text);
        std::int64_t n = 0, m = 0;
        if (c.literal("seed:")) {
            if (c.integer(n)) set_seed(n);
        } else if (!text.empty() && is_blank(text.front())) {
            Cursor s(trim_left(text));
            if (s.literal("seed: ") && s.integer(n)) set_seed(n);  // the 04-01+ hyperparameter dump
        } else if (c.literal("params:")) {
            // "... s:42" closes the Ciprian params line
            const std::size_t at = text.rfind(" s:");
            Cursor s(text.substr(at == string_view::npos ? text.size() : at + 3));
            if (at != string_view::npos && s.integer(n) && s.at_end()) set_seed(n);
        } else if (c.literal("Total submission size: ")) {
            // Uncompressed model + code everywhere except DGAttention, whose only total follows its rdquant+zstd model.
            if (c.integer(n) && c.literal(" bytes") && last_serialized_format_ == "rdquant+zstd") {
                set_total(n, "rdquant+zstd");
                facts_.notes.push_back(
                    "unlabelled total after Serialized model rdquant+zstd taken as the artifact (line " +
                    std::to_string(line_) + ")");
            }
        } else if (c.literal("Total submission size ")) {
            const string_view label = c.token_until(':');
            if (!label.empty() && c.literal(": ") && c.integer(n) && c.literal(" bytes")) {
                set_total(n, std::string(label));
                if (!last_serialized_format_.empty() && last_serialized_format_ != label)
                    facts_.notes.push_back("total labelled " + std::string(label) + " follows Serialized model " +
                                           last_serialized_format_ + " (line " + std::to_string(line_) + ")");
            }
        } else if (c.literal("Serialized model: ")) {
            last_serialized_format_.clear();  // the raw torch file: not the artifact
        } else if (c.literal("Serialized model ")) {
            const string_view format = c.token_until(':');
            if (!format.empty() && c.literal(": ") && c.integer(n) && c.literal(" bytes")) {
                facts_.model_bytes = n;
                last_serialized_format_ = std::string(format);
            }
        } else if (c.literal("budget:")) {
            if (c.integer(n) && c.literal("/16000000")) set_total(n, "budget");
        } else if (c.literal("artifact:")) {
            if (const auto code = find_keyed_integer(text, "code:")) facts_.code_bytes = *code;
        } else if (c.literal("Code size: ")) {
            if (c.integer(n) && c.literal(" bytes")) facts_.code_bytes = n;
        } else if (c.literal("Code size (compressed): ")) {
            if (c.integer(n) && c.literal(" bytes")) facts_.code_bytes = n;
        } else if (c.literal("Code size (uncompressed): ")) {
            if (c.integer(n) && c.literal(" bytes")) facts_.code_bytes_uncompressed = n;
        } else if (c.literal("stopping_early: wallclock_cap train_time:")) {
            c.optional_space();
            if (!(c.integer(n) && c.literal("ms"))) return;
            facts_.stopped_early = true;
            facts_.train_time_ms = static_cast<double>(n);
            facts_.stop_step.reset();
            if (c.literal(" step:") && c.optional_space() && c.integer(n) && c.literal("/") && c.integer(m)) {
                facts_.stop_step = n;
                facts_.iterations = m;
            }
        } else if (c.literal("total_eval_time:")) {
            double seconds = 0.0;
            if (c.optional_space() && c.number(seconds) && c.literal("s")) facts_.total_eval_time_s = seconds;
        } else if (c.literal("final_eval_mode:")) {
            const string_view mode = c.token_until(' ');
            if (!mode.empty()) {
                facts_.eval_mode = std::string(mode);
                eval_mode_ = std::string(mode);
            }
        } else if (c.literal("val_loader:")) {
            if (const auto tokens = find_keyed_integer(text, "tokens:")) facts_.val_tokens = *tokens;
        } else if (c.literal("val_tokens:")) {
            if (c.optional_space() && c.integer(n)) facts_.val_tokens = n;
        } else {
            legendre_line(text);
        }
    }

    // LegendreGPT: "INT7+zlib model: N bytes | Total submission: N bytes"
    void legendre_line(string_view text) {
        Cursor c(text);
        const string_view format = c.token_until(' ');
        std::int64_t model = 0, total = 0;
        if (format.empty() || !c.literal(" model: ") || !c.integer(model) ||
            !c.literal(" bytes | Total submission: ") || !c.integer(total) || !c.literal(" bytes"))
            return;
        facts_.model_bytes = model;
        set_total(total, std::string(format));
    }

    void set_total(std::int64_t bytes, std::string label) {
        facts_.total_bytes = bytes;
        facts_.total_bytes_label = std::move(label);
        facts_.total_bytes_line = line_;
    }

    LogFacts& facts_;
    std::int64_t line_ = 0;
    string_view text_;  // the current line, timestamp stripped
    bool seen_content_ = false;
    std::map<std::string, FamilyState> families_;
    std::optional<LogMetric> last_sliding_exact_;
    std::string eval_mode_;  // the last final_eval_mode: word
    std::string last_serialized_format_;
};

}  // namespace

LogFacts log_read_text(const std::string& text, const std::string& path) {
    LogFacts facts;
    facts.path = path;
    Reader reader(facts);
    const string_view all(text);
    std::int64_t number = 0;
    std::size_t start = 0;
    while (start < all.size()) {
        const std::size_t end = std::min(all.find('\n', start), all.size());
        reader.line(all.substr(start, end - start), ++number);
        start = end + 1;
    }
    reader.finish();
    return facts;
}

LogFacts log_read_file(const std::string& path) {
    return log_read_text(file_read_text(path), path);  // errors name the path
}

const LogMetric* log_headline_metric(const LogFacts& facts) {
    const LogMetric* base = non_ttt_score(facts);
    const LogMetric* ttt = nullptr;
    for (const LogMetric& m : facts.metrics) {
        if (family_kind(m.family) != Kind::ttt || ttt_failed(m, base)) continue;
        if (ttt == nullptr || ttt_rank(m.family) < ttt_rank(ttt->family) ||
            (ttt_rank(m.family) == ttt_rank(ttt->family) && m.line > ttt->line))
            ttt = &m;
    }
    if (ttt != nullptr) return ttt;
    if (base != nullptr) return base;
    return latest_of_kind(facts, Kind::summary);
}

}  // namespace pgolf
