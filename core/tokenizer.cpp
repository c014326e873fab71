// SentencePiece tokenizer wrapper and the challenge's byte tables (the denominator of val_bpb).
// The table rule mirrors build_sentencepiece_luts in the challenge's train_gpt.py; any deviation changes every score.
#include "core/tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <limits>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "core/file_util.h"

namespace pgolf {

namespace {

// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's marker for "a space preceded this piece".
constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";

// sentencepiece's status text for a protobuf parse failure is a source location; say what it means instead.
std::string describe(const sentencepiece::util::Status& status) {
    std::string text = status.message();
    if (text.find("ParseFromArray") != std::string::npos) {
        return "parse failed";
    }
    std::replace(text.begin(), text.end(), '\n', ' ');
    std::replace(text.begin(), text.end(), '\r', ' ');
    while (!text.empty() && text.back() == ' ') {
        text.pop_back();
    }
    return text;
}

}  // namespace

int TokenizerByteTables::target_bytes(std::uint32_t previous, std::uint32_t target) const {
    if (previous >= size() || target >= size()) {
        std::ostringstream message;
        message << "token id " << (previous >= size() ? previous : target) << " outside byte tables of size " << size();
        throw Error(message.str());
    }
    return base_bytes[target] + ((has_leading_space[target] != 0 && is_boundary[previous] == 0) ? 1 : 0);
}

Tokenizer::Tokenizer(std::string path, std::unique_ptr<sentencepiece::SentencePieceProcessor> processor)
    : path_(std::move(path)), processor_(std::move(processor)) {}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& model_path) {
    // Reading the bytes ourselves gives a plain "cannot open" message instead of sentencepiece's errno text.
    const std::vector<std::uint8_t> bytes = file_read_bytes(model_path);
    const std::string serialized(bytes.begin(), bytes.end());
    auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
    const auto status = processor->LoadFromSerializedProto(serialized);
    if (!status.ok()) {
        throw Error(model_path + ": not a SentencePiece model (" + describe(status) + ")");
    }
    if (processor->GetPieceSize() <= 0) {
        throw Error(model_path + ": SentencePiece model has an empty vocabulary");
    }
    return Tokenizer(model_path, std::move(processor));
}

int Tokenizer::vocab_size() const { return processor_->GetPieceSize(); }

int Tokenizer::bos_id() const { return processor_->bos_id(); }

int Tokenizer::eos_id() const { return processor_->eos_id(); }

TokenizerByteTables Tokenizer::byte_tables(int model_vocab_size) const {
    const int sp_vocab = vocab_size();
    const std::size_t table_size = static_cast<std::size_t>(std::max(sp_vocab, model_vocab_size));
    TokenizerByteTables tables;
    tables.base_bytes.assign(table_size, 0);
    tables.has_leading_space.assign(table_size, 0);
    tables.is_boundary.assign(table_size, 1);

    for (int id = 0; id < sp_vocab; ++id) {
        // Control/unknown/unused pieces stand for no text and reset the "space after a word" rule.
        if (processor_->IsControl(id) || processor_->IsUnknown(id) || processor_->IsUnused(id)) {
            continue;
        }
        const auto index = static_cast<std::size_t>(id);
        tables.is_boundary[index] = 0;
        if (processor_->IsByte(id)) {
            tables.base_bytes[index] = 1;
            continue;
        }
        std::string_view text = processor_->IdToPiece(id);
        if (text.starts_with(kSpaceMarker)) {
            tables.has_leading_space[index] = 1;
            text.remove_prefix(kSpaceMarker.size());
        }
        if (text.size() > static_cast<std::size_t>(std::numeric_limits<std::int16_t>::max())) {
            throw Error(path_ + ": piece " + std::to_string(id) + " is too long for the byte tables");
        }
        tables.base_bytes[index] = static_cast<std::int16_t>(text.size());
    }
    return tables;
}

std::vector<std::uint32_t> Tokenizer::encode(std::string_view text) const {
    std::vector<int> ids;
    const auto status = processor_->Encode(text, &ids);
    if (!status.ok()) {
        throw Error(path_ + ": encode failed (" + describe(status) + ")");
    }
    return std::vector<std::uint32_t>(ids.begin(), ids.end());
}

std::string Tokenizer::decode(std::span<const std::uint32_t> ids) const {
    const auto sp_vocab = static_cast<std::uint32_t>(vocab_size());
    std::vector<int> signed_ids;
    signed_ids.reserve(ids.size());
    for (const std::uint32_t id : ids) {
        if (id >= sp_vocab) {
            throw Error(path_ + ": cannot decode token id " + std::to_string(id) + " (vocab size " +
                        std::to_string(sp_vocab) + ")");
        }
        signed_ids.push_back(static_cast<int>(id));
    }
    std::string text;
    const auto status = processor_->Decode(signed_ids, &text);
    if (!status.ok()) {
        throw Error(path_ + ": decode failed (" + describe(status) + ")");
    }
    return text;
}

std::string Tokenizer::piece(int id) const {
    if (id < 0 || id >= vocab_size()) {
        throw Error(path_ + ": token id " + std::to_string(id) + " outside vocab of size " +
                    std::to_string(vocab_size()));
    }
    return processor_->IdToPiece(id);
}

bool tokenizer_has_standalone_space(const Tokenizer& tokenizer) {
    for (int id = 0; id < tokenizer.vocab_size(); ++id) {
        if (tokenizer.piece(id) == kSpaceMarker) return true;
    }
    return false;
}

std::int64_t tokenizer_count_target_bytes(const TokenizerByteTables& tables, std::span<const std::uint16_t> tokens) {
    if (tokens.empty()) {
        return 0;
    }
    const std::size_t size = tables.size();
    std::int64_t total = 0;
    std::uint16_t previous = tokens[0];
    if (previous >= size) {
        throw Error("token id " + std::to_string(previous) + " at position 0 outside byte tables of size " +
                    std::to_string(size));
    }
    for (std::size_t i = 1; i < tokens.size(); ++i) {
        const std::uint16_t target = tokens[i];
        if (target >= size) {
            throw Error("token id " + std::to_string(target) + " at position " + std::to_string(i) +
                        " outside byte tables of size " + std::to_string(size));
        }
        const bool space_counts = tables.has_leading_space[target] != 0 && tables.is_boundary[previous] == 0;
        total += tables.base_bytes[target] + (space_counts ? 1 : 0);
        previous = target;
    }
    return total;
}

}  // namespace pgolf
