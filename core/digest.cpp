// SHA-256 through OpenSSL's EVP interface.
#include "core/digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace pgolf {

namespace {

class Sha256 {
public:
    Sha256() : context_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
        if (!context_ || EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1) {
            throw Error("sha256: OpenSSL digest initialisation failed");
        }
    }
    void update(const void* data, std::size_t bytes) {
        if (EVP_DigestUpdate(context_.get(), data, bytes) != 1) throw Error("sha256: OpenSSL digest update failed");
    }
    std::string finish_hex() {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int length = 0;
        if (EVP_DigestFinal_ex(context_.get(), digest, &length) != 1) throw Error("sha256: OpenSSL digest failed");
        static constexpr char kHex[] = "0123456789abcdef";
        std::string hex;
        hex.reserve(length * 2);
        for (unsigned int i = 0; i < length; ++i) {
            hex.push_back(kHex[digest[i] >> 4]);
            hex.push_back(kHex[digest[i] & 15]);
        }
        return hex;
    }

private:
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context_;
};

}  // namespace

std::string digest_sha256_hex(std::span<const std::uint8_t> bytes) {
    Sha256 sha;
    sha.update(bytes.data(), bytes.size());
    return sha.finish_hex();
}

std::string digest_sha256_hex(std::string_view text) {
    Sha256 sha;
    sha.update(text.data(), text.size());
    return sha.finish_hex();
}

std::string digest_sha256_file_hex(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
    Sha256 sha;
    unsigned char buffer[1 << 16];
    for (;;) {
        const ssize_t got = ::read(fd, buffer, sizeof(buffer));
        if (got < 0) {
            if (errno == EINTR) continue;
            const std::string reason = std::strerror(errno);
            ::close(fd);
            throw Error(path + ": read failed: " + reason);
        }
        if (got == 0) break;
        sha.update(buffer, static_cast<std::size_t>(got));
    }
    ::close(fd);
    return sha.finish_hex();
}

}  // namespace pgolf
