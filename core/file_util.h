// File helpers shared by every writer: nothing stored is ever half-written (write to a temporary, fsync, rename).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pgolf {

// Writes to "<path>.tmp-<pid>" and renames over path on commit(); destroyed without commit() it removes the
// temporary, so path keeps its old content (or stays absent).
class AtomicFileWriter {
public:
    explicit AtomicFileWriter(std::string path);
    ~AtomicFileWriter();
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    void write(const void* data, std::size_t bytes);
    void commit();
    const std::string& path() const { return path_; }

private:
    std::string path_;
    std::string temporary_path_;
    int fd_ = -1;
    bool committed_ = false;
};

// Whole file into memory; throws naming the path.
std::vector<std::uint8_t> file_read_bytes(const std::string& path);
// Whole file as text (no decoding: the bytes as they are); throws naming the path, like file_read_bytes.
std::string file_read_text(const std::string& path);
// Atomic whole-file write.
void file_write_bytes(const std::string& path, const void* data, std::size_t bytes);

}  // namespace pgolf
