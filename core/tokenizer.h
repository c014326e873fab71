// SentencePiece tokenizer wrapper plus the per-token byte tables that define the challenge's bits-per-byte metric.
// The sentencepiece headers stay in tokenizer.cpp so that code using this header does not need them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace pgolf {

// How many UTF-8 bytes of original text each token stands for, exactly as the challenge's scorer counts them.
// All three arrays are indexed by token id: shape [size()], size() = max(sentencepiece vocab, model vocab).
struct TokenizerByteTables {
    std::vector<std::int16_t> base_bytes;         // UTF-8 bytes of the piece without its leading "▁"; 1 for <0xNN>
    std::vector<std::uint8_t> has_leading_space;  // piece began with "▁": one more byte unless after a boundary
    std::vector<std::uint8_t> is_boundary;        // control/unknown/unused ids and ids beyond the sp vocab

    std::size_t size() const { return base_bytes.size(); }

    // Bytes credited to `target` when it follows `previous`; throws pgolf::Error when either id is out of range.
    int target_bytes(std::uint32_t previous, std::uint32_t target) const;
};

class Tokenizer {
public:
    // Throws pgolf::Error naming model_path when the file is missing, unreadable or not a SentencePiece model.
    static Tokenizer load(const std::string& model_path);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    const std::string& path() const { return path_; }
    int vocab_size() const;
    int bos_id() const;
    int eos_id() const;

    // model_vocab_size > vocab_size() pads the tables with boundary entries of 0 bytes (ids only the model has).
    TokenizerByteTables byte_tables(int model_vocab_size = 0) const;

    std::vector<std::uint32_t> encode(std::string_view text) const;  // ids without BOS/EOS
    std::string decode(std::span<const std::uint32_t> ids) const;    // throws pgolf::Error on ids >= vocab_size()
    std::string piece(int id) const;                                 // throws pgolf::Error on ids outside the vocab

private:
    Tokenizer(std::string path, std::unique_ptr<sentencepiece::SentencePieceProcessor> processor);

    std::string path_;
    std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

// Whether "▁" (a lone space) is a piece of its own. Later challenge scripts assert it, because byte tables of a
// vocabulary without it mis-counted spaces in at least one submission (COMPLIANCE.md K2).
bool tokenizer_has_standalone_space(const Tokenizer& tokenizer);

// Bytes of the targets tokens[1..n-1] of a token stream, each credited against the token before it.
// tokens: shape [n]; n < 2 gives 0. Throws pgolf::Error when an id is outside the tables.
std::int64_t tokenizer_count_target_bytes(const TokenizerByteTables& tables, std::span<const std::uint16_t> tokens);

}  // namespace pgolf
