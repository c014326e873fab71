// Dataset-level operations on token shards: summarize one shard, verify a dataset folder against a tokenizer
// (every shard valid, validation tokens per byte), and encode user text into shards the way the official export does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/documents.h"

namespace pgolf {

class Tokenizer;

struct ShardSummary {
    std::string path;
    std::int64_t file_bytes = 0;
    std::int64_t tokens = 0;
    std::int64_t documents = 0;    // BOS tokens: the export puts one before every document
    bool starts_with_bos = false;  // false means the first document was cut from the previous shard
    int min_id = -1;               // -1 when the shard has no tokens
    int max_id = -1;
    std::string sha256;  // empty when not computed
};

// Opens and validates the shard (throws a one-line pgolf::Error on any format problem), then summarizes it.
ShardSummary dataset_summarize_shard(const std::string& path, int bos_id, bool with_digest);

struct DatasetSplit {
    std::vector<ShardSummary> shards;  // only the valid ones
    std::int64_t tokens = 0;
    std::int64_t documents = 0;
    int max_id = -1;
};

struct DatasetVerifyReport {
    std::string directory;
    int vocab_size = 0;
    DatasetSplit train;
    DatasetSplit val;
    // One line each: a shard that failed validation, a token outside the vocabulary, a missing split.
    std::vector<std::string> problems;
    // One line each: things a reviewer should look at that do not make the dataset invalid.
    std::vector<std::string> warnings;
    // Validation figures, filled when the val split is valid: the reference's truncation to whole sequences.
    std::int64_t seq_len = 0;
    std::int64_t val_scored_targets = 0;
    std::int64_t val_target_bytes = 0;
    double val_tokens_per_byte = 0.0;
    bool ok() const { return problems.empty(); }
};

// Checks every fineweb_train_*.bin and fineweb_val_*.bin in directory. Problems are collected, not thrown, so a
// reviewer sees every bad shard at once; only an unreadable tokenizer or directory throws.
DatasetVerifyReport dataset_verify(const std::string& directory, const Tokenizer& tokenizer, std::int64_t seq_len,
                                   bool with_digests);

struct DatasetEncodeOptions {
    std::string output_directory;
    std::vector<std::string> inputs;
    DocumentFormat format = DocumentFormat::automatic;
    // The first val_documents documents go to the val split and the rest to train (the official export puts its
    // first 50,000 documents in val). Negative: every document goes to val.
    std::int64_t val_documents = 0;
    std::int64_t shard_tokens = 100'000'000;  // the official export's shard size
    bool overwrite = false;                   // replace existing shards in output_directory
};

struct DatasetEncodeReport {
    std::int64_t val_documents = 0;
    std::int64_t train_documents = 0;
    std::int64_t val_tokens = 0;
    std::int64_t train_tokens = 0;
    std::vector<std::string> files;
};

// Each document becomes [BOS] + encode(text) (no EOS), packed into shards of shard_tokens tokens; a document may
// continue into the next shard, as in the official export. Shards are staged in a hidden folder and moved into place
// only when all are written, so a failure leaves output_directory as it was.
DatasetEncodeReport dataset_encode(const Tokenizer& tokenizer, const DatasetEncodeOptions& options);

}  // namespace pgolf
