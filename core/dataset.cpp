// Shard summaries, dataset verification and text-to-shard encoding.
#include "core/dataset.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "core/digest.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/shard.h"
#include "core/token_stream.h"
#include "core/tokenizer.h"

namespace pgolf {

namespace fs = std::filesystem;

namespace {

// Sorted shard paths of one split, or none (no throw: verification reports a missing split as a problem).
std::vector<std::string> dataset_list_split(const std::string& directory, const std::string& split) {
    std::vector<std::string> paths;
    const std::string prefix = "fineweb_" + split + "_";
    for (const auto& entry : fs::directory_iterator(directory)) {
        const std::string name = entry.path().filename().string();
        if (name.starts_with(prefix) && name.ends_with(".bin")) paths.push_back(entry.path().string());
    }
    std::sort(paths.begin(), paths.end());
    return paths;
}

void dataset_check_directory(const std::string& directory) {
    std::error_code error;
    if (!fs::is_directory(directory, error)) throw Error(directory + ": not a directory");
}

DatasetSplit dataset_verify_split(const std::string& directory, const std::string& split, int vocab_size, int bos_id,
                                  bool with_digests, std::vector<std::string>& problems) {
    DatasetSplit result;
    const std::vector<std::string> paths = dataset_list_split(directory, split);
    if (paths.empty()) problems.push_back(directory + ": no fineweb_" + split + "_*.bin shards");
    Progress progress("verify " + split, static_cast<std::int64_t>(paths.size()), "shards");
    for (const std::string& path : paths) {
        progress.update(static_cast<std::int64_t>(result.shards.size() + 1));
        try {
            ShardSummary summary = dataset_summarize_shard(path, bos_id, with_digests);
            if (summary.max_id >= vocab_size) {
                shard_check_vocab(ShardFile::open(path), vocab_size);  // throws with the index of the first bad id
            }
            result.tokens += summary.tokens;
            result.documents += summary.documents;
            result.max_id = std::max(result.max_id, summary.max_id);
            result.shards.push_back(std::move(summary));
        } catch (const Error& error) {
            problems.emplace_back(error.what());
        }
    }
    progress.finish();
    return result;
}

}  // namespace

ShardSummary dataset_summarize_shard(const std::string& path, int bos_id, bool with_digest) {
    const ShardFile shard = ShardFile::open(path);
    ShardSummary summary;
    summary.path = path;
    summary.file_bytes = shard.file_bytes();
    summary.tokens = shard.token_count();
    const auto tokens = shard.tokens();
    if (!tokens.empty()) {
        summary.starts_with_bos = tokens.front() == bos_id;
        const auto [low, high] = std::minmax_element(tokens.begin(), tokens.end());
        summary.min_id = *low;
        summary.max_id = *high;
        summary.documents = std::count(tokens.begin(), tokens.end(), static_cast<std::uint16_t>(bos_id));
    }
    if (with_digest) summary.sha256 = digest_sha256_file_hex(path);
    return summary;
}

DatasetVerifyReport dataset_verify(const std::string& directory, const Tokenizer& tokenizer, std::int64_t seq_len,
                                   bool with_digests) {
    dataset_check_directory(directory);
    if (seq_len <= 0) throw Error("seq_len must be positive");
    DatasetVerifyReport report;
    report.directory = directory;
    report.vocab_size = tokenizer.vocab_size();
    report.seq_len = seq_len;
    const int bos = tokenizer.bos_id();
    report.train = dataset_verify_split(directory, "train", report.vocab_size, bos, with_digests, report.problems);
    const std::size_t problems_before_val = report.problems.size();
    report.val = dataset_verify_split(directory, "val", report.vocab_size, bos, with_digests, report.problems);
    if (report.problems.size() != problems_before_val) return report;

    if (!tokenizer_has_standalone_space(tokenizer)) {
        report.warnings.push_back(tokenizer.path() +
                                  ": no standalone '\xE2\x96\x81' piece; byte tables derived from this vocabulary "
                                  "have been wrong before, check bytes against the raw text (COMPLIANCE.md K2)");
    }
    std::vector<std::string> val_paths;
    for (const ShardSummary& shard : report.val.shards) val_paths.push_back(shard.path);
    try {
        const std::vector<std::uint16_t> tokens = validation_tokens_load(val_paths, seq_len);
        const TokenizerByteTables tables = tokenizer.byte_tables();
        report.val_scored_targets = static_cast<std::int64_t>(tokens.size()) - 1;
        report.val_target_bytes = tokenizer_count_target_bytes(tables, tokens);
        if (report.val_target_bytes <= 0) {
            report.problems.push_back(directory + ": validation targets have no bytes under this tokenizer");
        } else {
            report.val_tokens_per_byte =
                static_cast<double>(report.val_scored_targets) / static_cast<double>(report.val_target_bytes);
        }
    } catch (const Error& error) {
        report.problems.emplace_back(error.what());
    }
    return report;
}

namespace {

// Accumulates one split's tokens and writes full shards into the staging folder.
class ShardPacker {
public:
    ShardPacker(std::string staging, std::string split, std::int64_t shard_tokens)
        : staging_(std::move(staging)), split_(std::move(split)), shard_tokens_(shard_tokens) {
        buffer_.reserve(static_cast<std::size_t>(std::min<std::int64_t>(shard_tokens_, 1 << 24)));
    }

    void append(std::span<const std::uint16_t> tokens) {
        while (!tokens.empty()) {
            const std::size_t room = static_cast<std::size_t>(shard_tokens_) - buffer_.size();
            const std::size_t k = std::min(room, tokens.size());
            buffer_.insert(buffer_.end(), tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(k));
            tokens = tokens.subspan(k);
            total_ += static_cast<std::int64_t>(k);
            if (buffer_.size() == static_cast<std::size_t>(shard_tokens_)) flush();
        }
    }

    void flush() {
        if (buffer_.empty()) return;
        char name[64];
        std::snprintf(name, sizeof(name), "fineweb_%s_%06zu.bin", split_.c_str(), names_.size());
        shard_write(staging_ + "/" + name, buffer_);
        names_.emplace_back(name);
        buffer_.clear();
    }

    const std::vector<std::string>& names() const { return names_; }
    std::int64_t total() const { return total_; }

private:
    std::string staging_;
    std::string split_;
    std::int64_t shard_tokens_;
    std::vector<std::uint16_t> buffer_;
    std::vector<std::string> names_;
    std::int64_t total_ = 0;
};

// Removes the staging folder unless released, so a failed encode leaves nothing behind.
class StagingFolder {
public:
    explicit StagingFolder(std::string path) : path_(std::move(path)) { fs::create_directories(path_); }
    ~StagingFolder() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    StagingFolder(const StagingFolder&) = delete;
    StagingFolder& operator=(const StagingFolder&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace

DatasetEncodeReport dataset_encode(const Tokenizer& tokenizer, const DatasetEncodeOptions& options) {
    if (options.inputs.empty()) throw Error("encode: no input files");
    if (options.shard_tokens <= 0 || options.shard_tokens > INT32_MAX) {
        throw Error("encode: shard size must be between 1 and 2147483647 tokens");
    }
    if (tokenizer.vocab_size() > 65536) {
        throw Error("encode: vocabulary of " + std::to_string(tokenizer.vocab_size()) +
                    " does not fit uint16 shard tokens");
    }
    const std::string& out = options.output_directory;
    fs::create_directories(out);
    std::vector<std::string> existing = dataset_list_split(out, "train");
    for (const std::string& path : dataset_list_split(out, "val")) existing.push_back(path);
    if (!existing.empty() && !options.overwrite) {
        throw Error(out + ": already holds " + std::to_string(existing.size()) + " shards (e.g. " +
                    fs::path(existing.front()).filename().string() + "); pass --force to replace them");
    }

    StagingFolder staging(out + "/.pgolf-encode-" + std::to_string(::getpid()));
    ShardPacker val(staging.path(), "val", options.shard_tokens);
    ShardPacker train(staging.path(), "train", options.shard_tokens);
    DatasetEncodeReport report;
    const auto bos = static_cast<std::uint16_t>(tokenizer.bos_id());
    const auto vocab = static_cast<std::uint32_t>(tokenizer.vocab_size());
    Progress progress("encode", 0, "docs");
    std::vector<std::uint16_t> document;
    std::int64_t index = 0;

    for (const std::string& input : options.inputs) {
        documents_read(input, options.format, [&](std::string_view text) {
            const std::vector<std::uint32_t> ids = tokenizer.encode(text);
            document.clear();
            document.push_back(bos);
            for (const std::uint32_t id : ids) {
                if (id >= vocab) throw Error(input + ": tokenizer produced id " + std::to_string(id) + " >= vocab");
                document.push_back(static_cast<std::uint16_t>(id));
            }
            const bool to_val = options.val_documents < 0 || index < options.val_documents;
            if (to_val) {
                val.append(document);
                ++report.val_documents;
            } else {
                // The val split ends with the last val document, as in the official export.
                val.flush();
                train.append(document);
                ++report.train_documents;
            }
            ++index;
            progress.update(index);
        });
    }
    val.flush();
    train.flush();
    progress.finish();

    for (const std::string& path : existing) fs::remove(path);
    for (const auto* packer : {&val, &train}) {
        for (const std::string& name : packer->names()) {
            fs::rename(staging.path() + "/" + name, out + "/" + name);
            report.files.push_back(out + "/" + name);
        }
    }
    report.val_tokens = val.total();
    report.train_tokens = train.total();
    return report;
}

}  // namespace pgolf
