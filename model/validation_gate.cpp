// The validation gate's bookkeeping: per-target commit flags and NLLs, byte counts from the tokenizer's tables, and the
// two rules it enforces (C3: no adaptation on unscored tokens; C4: no target scored twice).
#include "model/validation_gate.h"

#include <cmath>
#include <limits>
#include <numbers>

#include "core/digest.h"
#include "core/error.h"
#include "core/events.h"

namespace pgolf {

namespace {

// Names each gate of the process in the event sink's records.
std::int64_t next_gate_id = 1;

std::string gate_range(std::int64_t begin, std::int64_t end) {
    return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

}  // namespace

std::string gate_mode_name(GateMode mode) { return mode == GateMode::enforce ? "enforce" : "observe"; }

GateMode gate_mode_parse(const std::string& name) {
    if (name == "enforce") return GateMode::enforce;
    if (name == "observe") return GateMode::observe;
    throw Error("unknown validation gate mode '" + name + "' (known: enforce, observe)");
}

std::string gate_event_kind_name(GateEventKind kind) {
    switch (kind) {
        case GateEventKind::score:
            return "score";
        case GateEventKind::commit:
            return "commit";
        case GateEventKind::adapt:
            return "adapt";
        case GateEventKind::violation:
            return "violation";
    }
    return "unknown";
}

double GateTotals::val_loss() const { return targets > 0 ? nll_sum / static_cast<double>(targets) : 0.0; }

double GateTotals::val_bpb() const {
    return bytes > 0 ? nll_sum / std::numbers::ln2 / static_cast<double>(bytes) : 0.0;
}

ValidationGate::ValidationGate(std::vector<std::uint16_t> tokens, const TokenizerByteTables& tables, GateMode mode,
                               GateEventSink sink)
    : tokens_(std::move(tokens)), tables_(tables), mode_(mode), sink_(std::move(sink)) {
    if (tokens_.size() < 2) throw Error("validation gate: the validation stream needs at least two tokens");
    nll_.assign(tokens_.size(), std::numeric_limits<float>::quiet_NaN());
    done_.assign(tokens_.size(), 0);
    id_ = next_gate_id++;
    if (events_active()) {
        // The stream's digest ties the gate to the validation shards the run hashed.
        const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(tokens_.data()),
                                                  tokens_.size() * sizeof(std::uint16_t));
        events_emit(event_names::gate_open, {{"gate", id_},
                                             {"tokens", token_count()},
                                             {"targets", target_count()},
                                             {"mode", gate_mode_name(mode_)},
                                             {"tokens_sha256", digest_sha256_hex(bytes)}});
    }
}

void ValidationGate::check_range(std::int64_t begin, std::int64_t end, std::int64_t low, std::int64_t high,
                                 const char* what) const {
    if (begin < low || end > high || begin >= end) {
        throw Error(std::string("validation gate: ") + what + " range " + gate_range(begin, end) + " is outside " +
                    gate_range(low, high) + " or empty");
    }
}

void ValidationGate::emit(const GateEvent& event) const {
    if (sink_) sink_(event);
    if (events_active()) {
        nlohmann::json payload = {
            {"gate", id_}, {"kind", gate_event_kind_name(event.kind)}, {"begin", event.begin}, {"end", event.end}};
        if (!event.weights_digest.empty()) payload["weights"] = event.weights_digest;
        if (event.kind == GateEventKind::commit) {
            payload["nll_sum"] = event.nll_sum;
            payload["bytes"] = event.bytes;
        }
        if (event.kind == GateEventKind::violation) {
            payload["rule"] = event.rule;
            payload["message"] = event.message;
        }
        events_emit(event_names::gate, payload);
    }
}

void ValidationGate::violate(const std::string& rule, const std::string& message, std::int64_t begin,
                             std::int64_t end) {
    GateEvent event;
    event.kind = GateEventKind::violation;
    event.begin = begin;
    event.end = end;
    event.rule = rule;
    event.message = message;
    emit(event);
    if (mode_ == GateMode::enforce) throw Error("validation gate (" + rule + "): " + message);
    violations_.push_back(GateViolation{rule, message, begin, end});
}

GateWindow ValidationGate::score(std::int64_t input_begin, std::int64_t input_end, const std::string& weights_digest) {
    check_range(input_begin, input_end, 0, target_count(), "score");
    GateWindow window;
    window.input_begin = input_begin;
    window.inputs.assign(tokens_.begin() + input_begin, tokens_.begin() + input_end);
    window.targets.assign(tokens_.begin() + input_begin + 1, tokens_.begin() + input_end + 1);
    GateEvent event;
    event.kind = GateEventKind::score;
    event.begin = input_begin + 1;
    event.end = input_end + 1;
    event.weights_digest = weights_digest;
    emit(event);
    return window;
}

std::int64_t ValidationGate::commit(std::int64_t target_begin, std::span<const float> nll) {
    const std::int64_t target_end = target_begin + static_cast<std::int64_t>(nll.size());
    check_range(target_begin, target_end, 1, token_count(), "commit");
    std::int64_t twice_begin = -1, twice_end = -1;
    double sum = 0.0;
    std::int64_t bytes = 0, fresh = 0;
    for (std::int64_t p = target_begin; p < target_end; ++p) {
        const auto index = static_cast<std::size_t>(p);
        const float value = nll[static_cast<std::size_t>(p - target_begin)];
        if (!std::isfinite(value)) {
            throw Error("validation gate: non-finite NLL committed for target " + std::to_string(p));
        }
        const int target_bytes = tables_.target_bytes(tokens_[index - 1], tokens_[index]);
        if (done_[index] != 0) {
            if (twice_begin < 0) twice_begin = p;
            twice_end = p + 1;
        }
        sum += static_cast<double>(value);
        bytes += target_bytes;
        ++fresh;
    }
    if (twice_begin >= 0) {
        // Checked before anything is recorded, so an enforce-mode refusal leaves the gate as it was.
        violate("C4", "targets " + gate_range(twice_begin, twice_end) + " were already scored", twice_begin, twice_end);
        rescored_ += twice_end - twice_begin;
    }
    for (std::int64_t p = target_begin; p < target_end; ++p) {
        const auto index = static_cast<std::size_t>(p);
        if (done_[index] == 0) nll_[index] = nll[static_cast<std::size_t>(p - target_begin)];
        done_[index] = 1;
    }
    while (frontier_ < token_count() && done_[static_cast<std::size_t>(frontier_)] != 0) ++frontier_;
    nll_sum_ += sum;
    targets_ += fresh;
    bytes_ += bytes;
    GateEvent event;
    event.kind = GateEventKind::commit;
    event.begin = target_begin;
    event.end = target_end;
    event.nll_sum = sum;
    event.bytes = bytes;
    emit(event);
    return bytes;
}

bool ValidationGate::committed(std::int64_t begin, std::int64_t end) const {
    if (end <= frontier_) return true;
    for (std::int64_t p = std::max<std::int64_t>(begin, frontier_); p < end; ++p) {
        if (done_[static_cast<std::size_t>(p)] == 0) return false;
    }
    return true;
}

std::vector<std::int64_t> ValidationGate::adapt(std::int64_t begin, std::int64_t end,
                                                const std::string& weights_digest) {
    check_range(begin, end, 0, token_count(), "adapt");
    // Token 0 is never a target; every other token read must have been scored.
    const std::int64_t first_target = std::max<std::int64_t>(begin, 1);
    if (first_target < end && !committed(first_target, end)) {
        std::int64_t unscored_begin = first_target;
        while (done_[static_cast<std::size_t>(unscored_begin)] != 0) ++unscored_begin;
        std::int64_t unscored_end = unscored_begin;
        while (unscored_end < end && done_[static_cast<std::size_t>(unscored_end)] == 0) ++unscored_end;
        violate("C3",
                "adaptation reads tokens " + gate_range(begin, end) + " but targets " +
                    gate_range(unscored_begin, unscored_end) + " were not scored yet",
                unscored_begin, unscored_end);
    }
    GateEvent event;
    event.kind = GateEventKind::adapt;
    event.begin = begin;
    event.end = end;
    event.weights_digest = weights_digest;
    emit(event);
    return std::vector<std::int64_t>(tokens_.begin() + begin, tokens_.begin() + end);
}

GateTotals ValidationGate::totals() const {
    GateTotals totals;
    totals.nll_sum = nll_sum_;
    totals.targets = targets_;
    totals.bytes = bytes_;
    totals.rescored = rescored_;
    for (std::size_t p = 1; p < done_.size(); ++p) totals.unscored += done_[p] == 0 ? 1 : 0;
    return totals;
}

}  // namespace pgolf
