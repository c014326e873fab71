// The validation gate: the only way evaluation code reaches validation tokens (COMPLIANCE.md §5, C1–C4). Scoring a
// window hands out its tokens; committing the NLLs of a range of targets marks them scored, each at most once;
// adaptation may read only tokens whose targets are already committed. In enforce mode a violation throws a one-line
// error naming the range; in observe mode it proceeds and is recorded, so a non-compliant record can be reproduced and
// flagged. Every score, commit, adapt and violation goes to the gate's sink and to the engine's event sink
// (core/events.h) with its token range.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/tokenizer.h"

namespace pgolf {

enum class GateMode { enforce, observe };
std::string gate_mode_name(GateMode mode);  // "enforce", "observe"
GateMode gate_mode_parse(const std::string& name);

enum class GateEventKind { score, commit, adapt, violation };
std::string gate_event_kind_name(GateEventKind kind);

// Positions index the validation stream: token p is the target of position p (predicted from tokens [0, p)), so the
// targets are positions 1 … n−1 and a range [begin, end) of targets needs the input tokens [begin − 1, end − 1).
struct GateEvent {
    GateEventKind kind = GateEventKind::score;
    std::int64_t begin = 0;      // score/commit: first target; adapt: first token read
    std::int64_t end = 0;        // exclusive
    std::string weights_digest;  // of the weights scoring or adapting, as the caller names them; may be empty
    double nll_sum = 0.0;        // commit
    std::int64_t bytes = 0;      // commit
    std::string rule;            // violation: C3 (adapt before score) or C4 (scored twice)
    std::string message;         // violation
};
using GateEventSink = std::function<void(const GateEvent&)>;

struct GateViolation {
    std::string rule;
    std::string message;
    std::int64_t begin = 0;
    std::int64_t end = 0;
};

// What a window hands out: tokens [input_begin, input_begin + inputs.size()), and the targets they predict, the tokens
// one position later.
struct GateWindow {
    std::int64_t input_begin = 0;
    std::vector<std::int64_t> inputs;   // tokens [input_begin, input_end)
    std::vector<std::int64_t> targets;  // tokens [input_begin + 1, input_end + 1)
};

struct GateTotals {
    double nll_sum = 0.0;       // nats, summed in double
    std::int64_t targets = 0;   // committed target terms (a rescored target counts again, as the reference's sums do)
    std::int64_t bytes = 0;     // UTF-8 bytes of the committed targets under the tokenizer's byte tables
    std::int64_t unscored = 0;  // targets never committed
    std::int64_t rescored = 0;  // commits of an already committed target (observe mode only)
    double val_loss() const;    // nll_sum / targets
    double val_bpb() const;     // nll_sum / ln 2 / bytes
};

class ValidationGate {
public:
    // tokens: the whole validation stream as evaluated (n tokens, n − 1 targets).
    ValidationGate(std::vector<std::uint16_t> tokens, const TokenizerByteTables& tables, GateMode mode,
                   GateEventSink sink = {});

    GateMode mode() const { return mode_; }
    // Numbers the process's gates in order of creation; events in the sink (core/events.h) carry it.
    std::int64_t id() const { return id_; }
    std::int64_t token_count() const { return static_cast<std::int64_t>(tokens_.size()); }
    std::int64_t target_count() const { return token_count() - 1; }

    // Hands out the window of input tokens [input_begin, input_end) (and their targets) to score with the given
    // weights. Reading inputs is always allowed: they are the strict prefix of the targets the window scores.
    GateWindow score(std::int64_t input_begin, std::int64_t input_end, const std::string& weights_digest = {});
    // Commits the NLLs of targets [target_begin, target_begin + nll.size()). A target committed twice is a C4
    // violation. Returns the range's byte count.
    std::int64_t commit(std::int64_t target_begin, std::span<const float> nll);
    // Hands out tokens [begin, end) for adaptation (inputs [begin, end − 1), targets [begin + 1, end)). Every token
    // read that is a target (position ≥ 1) must already be committed, or it is a C3 violation.
    std::vector<std::int64_t> adapt(std::int64_t begin, std::int64_t end, const std::string& weights_digest = {});
    // Whether every target in [begin, end) is committed.
    bool committed(std::int64_t begin, std::int64_t end) const;

    GateTotals totals() const;
    const std::vector<GateViolation>& violations() const { return violations_; }
    // Per-target NLL as committed (the first commit when rescored), indexed by position; NaN where never committed.
    const std::vector<float>& target_nll() const { return nll_; }

private:
    void check_range(std::int64_t begin, std::int64_t end, std::int64_t low, std::int64_t high, const char* what) const;
    void violate(const std::string& rule, const std::string& message, std::int64_t begin, std::int64_t end);
    void emit(const GateEvent& event) const;

    std::vector<std::uint16_t> tokens_;
    TokenizerByteTables tables_;
    GateMode mode_;
    GateEventSink sink_;
    std::int64_t id_ = 0;
    std::vector<float> nll_;          // per position
    std::vector<std::uint8_t> done_;  // per position: committed
    // Committed targets form a prefix in every legal evaluation; the frontier makes adapt checks O(range) at worst.
    std::int64_t frontier_ = 1;  // every target < frontier_ is committed
    double nll_sum_ = 0.0;
    std::int64_t targets_ = 0;
    std::int64_t bytes_ = 0;
    std::int64_t rescored_ = 0;
    std::vector<GateViolation> violations_;
};

}  // namespace pgolf
