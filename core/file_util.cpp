// Atomic file writing and whole-file reading with one-line errors.
#include "core/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace pgolf {

namespace {

std::string errno_text() { return std::strerror(errno); }

// Makes the rename itself durable.
void fsync_parent_directory(const std::string& path) {
    std::string parent = std::filesystem::path(path).parent_path().string();
    if (parent.empty()) parent = ".";
    const int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
    temporary_path_ = path_ + ".tmp-" + std::to_string(::getpid());
    fd_ = ::open(temporary_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(path_ + ": cannot create: " + errno_text());
}

AtomicFileWriter::~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temporary_path_.c_str());
}

void AtomicFileWriter::write(const void* data, std::size_t bytes) {
    const auto* cursor = static_cast<const unsigned char*>(data);
    while (bytes > 0) {
        const ssize_t written = ::write(fd_, cursor, bytes);
        if (written < 0) {
            if (errno == EINTR) continue;
            throw Error(path_ + ": write failed: " + errno_text());
        }
        cursor += written;
        bytes -= static_cast<std::size_t>(written);
    }
}

void AtomicFileWriter::commit() {
    if (::fsync(fd_) != 0) throw Error(path_ + ": fsync failed: " + errno_text());
    if (::close(fd_) != 0) {
        fd_ = -1;
        throw Error(path_ + ": close failed: " + errno_text());
    }
    fd_ = -1;
    if (::rename(temporary_path_.c_str(), path_.c_str()) != 0) throw Error(path_ + ": rename failed: " + errno_text());
    committed_ = true;
    fsync_parent_directory(path_);
}

std::string file_read_text(const std::string& path) {
    const std::vector<std::uint8_t> bytes = file_read_bytes(path);
    return std::string(bytes.begin(), bytes.end());
}

std::vector<std::uint8_t> file_read_bytes(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(path + ": cannot open: " + errno_text());
    struct stat info {};
    if (::fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
        ::close(fd);
        throw Error(path + ": is a directory, expected a file");
    }
    std::vector<std::uint8_t> bytes;
    unsigned char buffer[1 << 16];
    for (;;) {
        const ssize_t got = ::read(fd, buffer, sizeof(buffer));
        if (got < 0) {
            if (errno == EINTR) continue;
            const std::string reason = errno_text();
            ::close(fd);
            throw Error(path + ": read failed: " + reason);
        }
        if (got == 0) break;
        bytes.insert(bytes.end(), buffer, buffer + got);
    }
    ::close(fd);
    return bytes;
}

void file_write_bytes(const std::string& path, const void* data, std::size_t bytes) {
    AtomicFileWriter writer(path);
    writer.write(data, bytes);
    writer.commit();
}

}  // namespace pgolf
