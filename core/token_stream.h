// The training token stream and the validation token set, exactly as the reference train_gpt.py reads them
// (SEED-SYSTEMS.md §1.1): sorted shards read sequentially with wrap-around; per-rank spans of L+1 tokens; validation
// shards concatenated and truncated to floor((n-1)/T)*T+1 tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/shard.h"

namespace pgolf {

// One contiguous read from one shard: tokens [begin, end) of path. Reported so the audit layer can log data reads.
struct TokenRead {
    std::string path;
    std::int64_t begin = 0;
    std::int64_t end = 0;
};
using TokenReadObserver = std::function<void(const TokenRead&)>;

// Reports a read of tokens [begin, end) of the shard at path to the event sink (core/events.h). Every reader of shard
// tokens calls it, so a supervised run sees every training and validation read.
void token_stream_report_read(const std::string& path, std::int64_t begin, std::int64_t end);

// Sorted shards read front to back, wrapping from the last to the first. Shards are opened one at a time (mmap).
class TrainTokenStream {
public:
    explicit TrainTokenStream(std::vector<std::string> shard_paths, TokenReadObserver observer = {});

    // The next n tokens of the stream, crossing shard boundaries (and wrapping) as needed. result: (n,)
    std::vector<std::uint16_t> take(std::int64_t n);

    std::size_t shard_index() const { return shard_index_; }
    std::int64_t position() const { return position_; }

private:
    void advance_shard();

    std::vector<std::string> shard_paths_;
    TokenReadObserver observer_;
    std::optional<ShardFile> shard_;
    std::size_t shard_index_ = 0;
    std::int64_t position_ = 0;
    // Shards seen empty since the last token was delivered: all empty means the stream can never deliver.
    std::size_t consecutive_empty_ = 0;
};

// One micro-batch for one rank. inputs, targets: (rows, seq_len), row-major, ids widened to int64 as the model wants.
struct TokenBatch {
    std::int64_t rows = 0;
    std::int64_t seq_len = 0;
    std::vector<std::int64_t> inputs;
    std::vector<std::int64_t> targets;
};

// Each call takes world*(L+1) tokens from the shared stream, L = global_tokens/(world*grad_accum), and gives rank r
// the span [r(L+1), (r+1)(L+1)): inputs are its first L tokens, targets the span shifted by one.
class DistributedTokenLoader {
public:
    DistributedTokenLoader(std::vector<std::string> shard_paths, int rank, int world_size,
                           TokenReadObserver observer = {});
    TokenBatch next_batch(std::int64_t global_tokens, std::int64_t seq_len, std::int64_t grad_accum_steps);

private:
    int rank_;
    int world_size_;
    TrainTokenStream stream_;
};

// All validation shards concatenated in order, truncated to floor((n-1)/seq_len)*seq_len + 1 tokens, so that
// every scored target has a full window. result: (usable + 1,)
std::vector<std::uint16_t> validation_tokens_load(const std::vector<std::string>& shard_paths, std::int64_t seq_len);

// Number of scored targets floor((n-1)/seq_len)*seq_len for a stream of n tokens.
std::int64_t validation_scored_targets(std::int64_t token_count, std::int64_t seq_len);

}  // namespace pgolf
