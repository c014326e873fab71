// Token shard reading (mmap + validation) and atomic writing.
#include "core/shard.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/file_util.h"

namespace pgolf {

static_assert(std::endian::native == std::endian::little,
              "shards are little-endian; big-endian hosts are not supported");

namespace {

std::string errno_text() { return std::strerror(errno); }

class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

}  // namespace

ShardFile ShardFile::open(const std::string& path) {
    FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) throw Error(path + ": cannot open: " + errno_text());
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) throw Error(path + ": cannot stat: " + errno_text());
    if (!S_ISREG(info.st_mode)) throw Error(path + ": not a regular file");
    const std::int64_t size = info.st_size;
    if (size == 0) throw Error(path + ": empty file (a shard starts with a 1024-byte header)");
    if (size < kShardHeaderBytes) {
        throw Error(path + ": truncated header: " + std::to_string(size) + " bytes, a shard header is 1024");
    }

    ShardFile shard;
    shard.path_ = path;
    shard.file_bytes_ = size;
    void* mapping = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_SHARED, fd.get(), 0);
    if (mapping == MAP_FAILED) throw Error(path + ": cannot memory-map: " + errno_text());
    shard.mapping_ = mapping;

    std::int32_t header[3];
    std::memcpy(header, mapping, sizeof(header));
    if (header[0] != kShardMagic) {
        throw Error(path + ": bad magic " + std::to_string(header[0]) + " (expected " + std::to_string(kShardMagic) +
                    "; not a token shard)");
    }
    if (header[1] != kShardVersion) {
        throw Error(path + ": unsupported version " + std::to_string(header[1]) + " (expected " +
                    std::to_string(kShardVersion) + ")");
    }
    if (header[2] < 0) throw Error(path + ": negative token count " + std::to_string(header[2]) + " in header");
    const std::int64_t count = header[2];
    const std::int64_t expected = kShardHeaderBytes + 2 * count;
    if (size < expected) {
        throw Error(path + ": truncated: header says " + std::to_string(count) + " tokens (" +
                    std::to_string(expected) + " bytes) but the file has " + std::to_string(size) + " bytes");
    }
    if (size > expected) {
        throw Error(path + ": size mismatch: header says " + std::to_string(count) + " tokens (" +
                    std::to_string(expected) + " bytes) but the file has " + std::to_string(size) +
                    " bytes (trailing data)");
    }
    shard.token_count_ = count;
    // The mapping is read sequentially by every consumer.
    ::madvise(mapping, static_cast<std::size_t>(size), MADV_SEQUENTIAL);
    return shard;
}

ShardFile::ShardFile(ShardFile&& other) noexcept { *this = std::move(other); }

ShardFile& ShardFile::operator=(ShardFile&& other) noexcept {
    if (this != &other) {
        release();
        path_ = std::move(other.path_);
        mapping_ = other.mapping_;
        file_bytes_ = other.file_bytes_;
        token_count_ = other.token_count_;
        other.mapping_ = nullptr;
        other.file_bytes_ = 0;
        other.token_count_ = 0;
    }
    return *this;
}

ShardFile::~ShardFile() { release(); }

void ShardFile::release() noexcept {
    if (mapping_ != nullptr) ::munmap(mapping_, static_cast<std::size_t>(file_bytes_));
    mapping_ = nullptr;
}

std::span<const std::uint16_t> ShardFile::tokens() const {
    if (mapping_ == nullptr) return {};
    const auto* payload = static_cast<const unsigned char*>(mapping_) + kShardHeaderBytes;
    // The header is 1024 bytes and mmap is page aligned, so the payload is 2-byte aligned.
    return {reinterpret_cast<const std::uint16_t*>(payload), static_cast<std::size_t>(token_count_)};
}

void shard_check_vocab(const ShardFile& shard, int vocab_size) {
    const auto tokens = shard.tokens();
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] >= vocab_size) {
            throw Error(shard.path() + ": token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                        " is outside the vocabulary (size " + std::to_string(vocab_size) + ")");
        }
    }
}

void shard_write(const std::string& path, std::span<const std::uint16_t> tokens) {
    if (tokens.size() > static_cast<std::size_t>(INT32_MAX)) {
        throw Error(path + ": " + std::to_string(tokens.size()) + " tokens do not fit a shard header (max 2^31-1)");
    }
    std::int32_t header[kShardHeaderInts] = {};
    header[0] = kShardMagic;
    header[1] = kShardVersion;
    header[2] = static_cast<std::int32_t>(tokens.size());
    AtomicFileWriter writer(path);
    writer.write(header, sizeof(header));
    writer.write(tokens.data(), tokens.size_bytes());
    writer.commit();
}

std::vector<std::string> shard_glob(const std::string& pattern) {
    glob_t matches{};
    // Sorted by bytes, as Python's sorted(glob(...)) does, whatever the locale.
    const int status = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &matches);
    std::vector<std::string> paths;
    if (status == 0) {
        for (std::size_t i = 0; i < matches.gl_pathc; ++i) paths.emplace_back(matches.gl_pathv[i]);
    }
    ::globfree(&matches);
    if (status == GLOB_NOMATCH || paths.empty()) throw Error("no files match " + pattern);
    if (status != 0) throw Error(pattern + ": cannot list files");
    std::sort(paths.begin(), paths.end());
    return paths;
}

}  // namespace pgolf
