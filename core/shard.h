// Token shards in the challenge's on-disk format: a 256 x int32 little-endian header (magic 20240520, version 1,
// token count) followed by that many little-endian uint16 token ids; file size is exactly 1024 + 2N bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace pgolf {

inline constexpr std::int32_t kShardMagic = 20240520;
inline constexpr std::int32_t kShardVersion = 1;
inline constexpr std::int64_t kShardHeaderInts = 256;
inline constexpr std::int64_t kShardHeaderBytes = kShardHeaderInts * 4;

// A validated, read-only, memory-mapped shard. Opening checks the header and the file size, so tokens() is always
// exactly the payload the header announces. Move-only: it owns the mapping.
class ShardFile {
public:
    static ShardFile open(const std::string& path);

    ShardFile(ShardFile&& other) noexcept;
    ShardFile& operator=(ShardFile&& other) noexcept;
    ShardFile(const ShardFile&) = delete;
    ShardFile& operator=(const ShardFile&) = delete;
    ~ShardFile();

    const std::string& path() const { return path_; }
    std::int64_t token_count() const { return token_count_; }
    std::int64_t file_bytes() const { return file_bytes_; }
    // tokens: (N,)
    std::span<const std::uint16_t> tokens() const;

private:
    ShardFile() = default;
    void release() noexcept;

    std::string path_;
    void* mapping_ = nullptr;
    std::int64_t file_bytes_ = 0;
    std::int64_t token_count_ = 0;
};

// Throws naming the file, the first offending index and id when any token id is >= vocab_size.
void shard_check_vocab(const ShardFile& shard, int vocab_size);

// Writes tokens as a shard: to PATH.tmp-<pid> first, fsync, then rename, so PATH is either absent or complete.
// tokens: (N,)
void shard_write(const std::string& path, std::span<const std::uint16_t> tokens);

// Paths matching a glob pattern, sorted (the order the reference loaders read them in). Throws when none match.
std::vector<std::string> shard_glob(const std::string& pattern);

}  // namespace pgolf
