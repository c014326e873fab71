// Train stream, distributed loader and validation loader.
#include "core/token_stream.h"

#include <algorithm>

#include "core/error.h"
#include "core/events.h"

namespace pgolf {

void token_stream_report_read(const std::string& path, std::int64_t begin, std::int64_t end) {
    if (events_active()) events_emit(event_names::data_read, {{"path", path}, {"begin", begin}, {"end", end}});
}

TrainTokenStream::TrainTokenStream(std::vector<std::string> shard_paths, TokenReadObserver observer)
    : shard_paths_(std::move(shard_paths)), observer_(std::move(observer)) {
    if (shard_paths_.empty()) throw Error("training stream: no shards given");
    std::sort(shard_paths_.begin(), shard_paths_.end());
    shard_.emplace(ShardFile::open(shard_paths_[0]));
}

void TrainTokenStream::advance_shard() {
    shard_index_ = (shard_index_ + 1) % shard_paths_.size();
    shard_.reset();  // unmap before mapping the next one
    shard_.emplace(ShardFile::open(shard_paths_[shard_index_]));
    position_ = 0;
}

std::vector<std::uint16_t> TrainTokenStream::take(std::int64_t n) {
    if (n < 0) throw Error("training stream: negative token count requested");
    std::vector<std::uint16_t> out;
    out.reserve(static_cast<std::size_t>(n));
    std::int64_t remaining = n;
    while (remaining > 0) {
        const std::int64_t available = shard_->token_count() - position_;
        if (available <= 0) {
            if (++consecutive_empty_ > shard_paths_.size()) {
                throw Error("training stream: every shard is empty, no tokens to read");
            }
            advance_shard();
            continue;
        }
        consecutive_empty_ = 0;
        const std::int64_t k = std::min(remaining, available);
        const auto tokens = shard_->tokens().subspan(static_cast<std::size_t>(position_), static_cast<std::size_t>(k));
        out.insert(out.end(), tokens.begin(), tokens.end());
        if (observer_) observer_(TokenRead{shard_->path(), position_, position_ + k});
        token_stream_report_read(shard_->path(), position_, position_ + k);
        position_ += k;
        remaining -= k;
    }
    return out;
}

DistributedTokenLoader::DistributedTokenLoader(std::vector<std::string> shard_paths, int rank, int world_size,
                                               TokenReadObserver observer)
    : rank_(rank), world_size_(world_size), stream_(std::move(shard_paths), std::move(observer)) {
    if (world_size < 1 || rank < 0 || rank >= world_size) {
        throw Error("token loader: rank " + std::to_string(rank) + " is not in a world of size " +
                    std::to_string(world_size));
    }
}

TokenBatch DistributedTokenLoader::next_batch(std::int64_t global_tokens, std::int64_t seq_len,
                                              std::int64_t grad_accum_steps) {
    if (seq_len <= 0 || grad_accum_steps <= 0 || global_tokens <= 0) {
        throw Error("token loader: global_tokens, seq_len and grad_accum_steps must be positive");
    }
    const std::int64_t local_tokens = global_tokens / (world_size_ * grad_accum_steps);
    if (local_tokens == 0 || local_tokens % seq_len != 0) {
        throw Error("token loader: " + std::to_string(global_tokens) + " tokens over " + std::to_string(world_size_) +
                    " ranks x " + std::to_string(grad_accum_steps) + " accumulation steps gives " +
                    std::to_string(local_tokens) + " tokens per micro-batch, not a positive multiple of seq_len " +
                    std::to_string(seq_len));
    }
    const std::int64_t span = local_tokens + 1;
    const std::vector<std::uint16_t> chunk = stream_.take(span * world_size_);
    const auto first = chunk.begin() + rank_ * span;

    TokenBatch batch;
    batch.rows = local_tokens / seq_len;
    batch.seq_len = seq_len;
    batch.inputs.assign(first, first + local_tokens);
    batch.targets.assign(first + 1, first + span);
    return batch;
}

std::int64_t validation_scored_targets(std::int64_t token_count, std::int64_t seq_len) {
    if (seq_len <= 0) throw Error("validation: seq_len must be positive");
    if (token_count <= 1) return 0;
    return ((token_count - 1) / seq_len) * seq_len;
}

std::vector<std::uint16_t> validation_tokens_load(const std::vector<std::string>& shard_paths, std::int64_t seq_len) {
    if (shard_paths.empty()) throw Error("validation: no shards given");
    std::vector<std::uint16_t> tokens;
    for (const std::string& path : shard_paths) {
        const ShardFile shard = ShardFile::open(path);
        const auto payload = shard.tokens();
        token_stream_report_read(path, 0, shard.token_count());
        tokens.insert(tokens.end(), payload.begin(), payload.end());
    }
    const std::int64_t usable = validation_scored_targets(static_cast<std::int64_t>(tokens.size()), seq_len);
    if (usable == 0) {
        throw Error("validation: " + std::to_string(tokens.size()) + " tokens are too few for one sequence of " +
                    std::to_string(seq_len));
    }
    tokens.resize(static_cast<std::size_t>(usable + 1));
    return tokens;
}

}  // namespace pgolf
