// Non-overlapping validation over the whole split, sums in double.
#include "model/evaluate.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/progress.h"
#include "core/shard.h"
#include "core/token_stream.h"

namespace pgolf {

ValidationResult evaluate_validation(const Gpt& model, std::span<const std::uint16_t> tokens,
                                     const TokenizerByteTables& tables, std::int64_t seq_len,
                                     std::int64_t batch_sequences,
                                     const std::function<void(std::int64_t, std::int64_t)>& progress) {
    if (seq_len <= 0 || batch_sequences <= 0) throw Error("evaluate: seq_len and batch size must be positive");
    const std::int64_t total = tokens.empty() ? 0 : (static_cast<std::int64_t>(tokens.size()) - 1) / seq_len;
    if (total == 0) throw Error("evaluate: fewer validation tokens than one sequence");
    BpbAccumulator accumulator;
    for (std::int64_t first = 0; first < total; first += batch_sequences) {
        const std::int64_t count = std::min(batch_sequences, total - first);
        Tensor inputs = Tensor::empty({count, seq_len}, DType::i64);
        Tensor targets = Tensor::empty({count, seq_len}, DType::i64);
        std::int64_t* x = inputs.data<std::int64_t>();
        std::int64_t* y = targets.data<std::int64_t>();
        std::int64_t bytes = 0;
        for (std::int64_t i = 0; i < count * seq_len; ++i) {
            const std::size_t position = static_cast<std::size_t>(first * seq_len + i);
            x[i] = tokens[position];
            y[i] = tokens[position + 1];
            bytes += tables.target_bytes(tokens[position], tokens[position + 1]);
        }
        const Tensor nll = model.token_losses(nullptr, inputs, targets).value().host();  // from cuda for the sums
        double nll_sum = 0.0;
        for (std::int64_t i = 0; i < nll.numel(); ++i) nll_sum += nll.item(i);
        accumulator.add_sums(nll_sum, count * seq_len, bytes);
        if (progress) progress(first + count, total);
    }
    return ValidationResult{accumulator.mean_loss(), accumulator.bits_per_byte(), accumulator.target_count(),
                            accumulator.byte_count()};
}

ValidationData validation_data_load(const Config& config, const std::string& data_directory,
                                    const std::string& tokenizer_path) {
    ValidationData data;
    data.seq_len = config.get_int("TRAIN_SEQ_LEN");
    const std::int64_t vocab_size = config.get_int("VOCAB_SIZE");
    const Tokenizer tokenizer = Tokenizer::load(tokenizer_path);
    if (tokenizer.vocab_size() != vocab_size) {
        throw Error("VOCAB_SIZE=" + std::to_string(vocab_size) +
                    " does not match tokenizer vocab_size=" + std::to_string(tokenizer.vocab_size()));
    }
    data.tables = tokenizer.byte_tables(static_cast<int>(vocab_size));
    data.pattern = data_directory + "/fineweb_val_*.bin";
    data.tokens = validation_tokens_load(shard_glob(data.pattern), data.seq_len);
    const std::int64_t val_batch_size = config.get_int("VAL_BATCH_SIZE");
    data.batch_sequences =
        val_batch_size / (config.get_int("WORLD_SIZE") * config.get_int("GRAD_ACCUM_STEPS")) / data.seq_len;
    if (data.batch_sequences < 1) {
        throw Error("VAL_BATCH_SIZE must provide at least one sequence per rank; got VAL_BATCH_SIZE=" +
                    std::to_string(val_batch_size));
    }
    return data;
}

ValidationResult evaluate_validation(const Gpt& model, const ValidationData& data, const char* label) {
    Progress progress(label, 0, "sequences");
    const ValidationResult result =
        evaluate_validation(model, data.tokens, data.tables, data.seq_len, data.batch_sequences,
                            [&progress](std::int64_t done, std::int64_t) { progress.update(done); });
    progress.clear();
    return result;
}

std::vector<SlidingWindow> sliding_window_plan(std::int64_t token_count, const SlidingWindowOptions& options) {
    const std::int64_t window = options.window, stride = options.stride;
    if (window <= 0 || stride <= 0 || stride > window) {
        throw Error("sliding window: need 0 < stride <= window, got window " + std::to_string(window) + " stride " +
                    std::to_string(stride));
    }
    const std::int64_t targets = token_count - 1;
    if (targets < 1) throw Error("sliding window: the stream has no targets");
    std::vector<SlidingWindow> plan;
    std::int64_t scored_end = 1;  // targets [1, scored_end) are scored by earlier windows
    for (std::int64_t start = 0; start < targets; start += stride) {
        const std::int64_t end = std::min(start + window, targets);
        const std::int64_t length = end - start;
        if (length < stride && start != 0) continue;
        SlidingWindow w{start, end, start == 0 ? 1 : end - stride + 1, end + 1};
        if (!options.reference_end_quirk) {
            w.score_begin = std::max(w.score_begin, scored_end);
            if (w.score_begin >= w.score_end) continue;
        }
        scored_end = std::max(scored_end, w.score_end);
        plan.push_back(w);
    }
    return plan;
}

void evaluate_score_windows(const Gpt& model, ValidationGate& gate, std::span<const SlidingWindow> windows,
                            std::int64_t batch_windows, const std::string& weights_digest) {
    std::size_t first = 0;
    while (first < windows.size()) {
        // A batch holds windows of one length (all full windows but the last few).
        const std::int64_t length = windows[first].input_end - windows[first].input_begin;
        std::size_t last = first;
        while (last < windows.size() && static_cast<std::int64_t>(last - first) < batch_windows &&
               windows[last].input_end - windows[last].input_begin == length) {
            ++last;
        }
        const auto count = static_cast<std::int64_t>(last - first);
        std::vector<std::int64_t> inputs, targets;
        inputs.reserve(static_cast<std::size_t>(count * length));
        targets.reserve(static_cast<std::size_t>(count * length));
        for (std::size_t i = first; i < last; ++i) {
            const GateWindow handed = gate.score(windows[i].input_begin, windows[i].input_end, weights_digest);
            inputs.insert(inputs.end(), handed.inputs.begin(), handed.inputs.end());
            targets.insert(targets.end(), handed.targets.begin(), handed.targets.end());
        }
        const Tensor nll = model
                               .token_losses(nullptr, Tensor::from_ids(inputs, {count, length}),
                                             Tensor::from_ids(targets, {count, length}))
                               .value()
                               .host()
                               .to(DType::f32);
        const float* values = nll.data<float>();
        for (std::size_t i = first; i < last; ++i) {
            const SlidingWindow& w = windows[i];
            // Local position j predicts target input_begin + 1 + j.
            const std::int64_t offset =
                static_cast<std::int64_t>(i - first) * length + (w.score_begin - w.input_begin - 1);
            gate.commit(w.score_begin,
                        std::span<const float>(values + offset, static_cast<std::size_t>(w.score_end - w.score_begin)));
        }
        first = last;
    }
}

SlidingWindowResult evaluate_sliding_window(const Gpt& model, ValidationGate& gate, const SlidingWindowOptions& options,
                                            const std::string& weights_digest,
                                            const std::function<void(std::int64_t, std::int64_t)>& progress) {
    if (options.reference_end_quirk && gate.mode() != GateMode::observe) {
        throw Error(
            "sliding window: the reference's end-of-stream double counting scores targets twice (C4); it runs "
            "only with the gate in observe mode");
    }
    const std::vector<SlidingWindow> plan = sliding_window_plan(gate.token_count(), options);
    const auto total = static_cast<std::int64_t>(plan.size());
    const std::int64_t chunk = std::max<std::int64_t>(options.batch_windows, 1) * 8;
    for (std::int64_t first = 0; first < total; first += chunk) {
        const std::int64_t count = std::min(chunk, total - first);
        evaluate_score_windows(model, gate,
                               std::span<const SlidingWindow>(plan).subspan(static_cast<std::size_t>(first),
                                                                            static_cast<std::size_t>(count)),
                               options.batch_windows, weights_digest);
        if (progress) progress(first + count, total);
    }
    SlidingWindowResult result;
    result.totals = gate.totals();
    result.windows = total;
    return result;
}

CausalityProbeResult evaluate_causality_probe(
    const std::vector<std::uint16_t>& tokens, std::int64_t position, std::int64_t vocab_size,
    const std::function<std::vector<float>(const std::vector<std::uint16_t>&)>& evaluate) {
    const auto n = static_cast<std::int64_t>(tokens.size());
    if (position < 1 || position >= n - 1) {
        throw Error("causality probe: position must be in [1, " + std::to_string(n - 1) + "), got " +
                    std::to_string(position));
    }
    std::vector<std::uint16_t> altered = tokens;
    for (std::int64_t p = position + 1; p < n; ++p) {
        const auto index = static_cast<std::size_t>(p);
        altered[index] = static_cast<std::uint16_t>((tokens[index] + 1 + p % 7) % vocab_size);
    }
    const std::vector<float> original = evaluate(tokens);
    const std::vector<float> changed = evaluate(altered);
    if (original.size() != tokens.size() || changed.size() != tokens.size()) {
        throw Error("causality probe: the evaluator must return one NLL per position");
    }
    CausalityProbeResult result;
    result.position = position;
    for (std::int64_t p = 1; p <= position; ++p) {
        const auto index = static_cast<std::size_t>(p);
        ++result.checked;
        const bool same = std::memcmp(&original[index], &changed[index], sizeof(float)) == 0;
        if (!same) {
            ++result.mismatches;
            if (result.first_mismatch < 0) result.first_mismatch = p;
        }
    }
    for (std::int64_t p = position + 1; p < n; ++p) {
        const auto index = static_cast<std::size_t>(p);
        if (std::memcmp(&original[index], &changed[index], sizeof(float)) != 0) ++result.changed_after;
    }
    return result;
}

}  // namespace pgolf
