// Non-overlapping validation over the whole split, sums in double.
#include "model/evaluate.h"

#include <algorithm>

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
        const Tensor nll = model.token_losses(nullptr, inputs, targets).value();
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

}  // namespace pgolf
