// The deterministic ustar writer and the cached bundle measurements.
#include "core/engine_sources.h"

#include <cstdio>
#include <cstring>
#include <mutex>

#include "core/codec.h"
#include "core/digest.h"
#include "core/error.h"

namespace pgolf {

namespace {

constexpr std::size_t tar_block = 512;

// An octal field of `width` bytes: digits padded with zeros, then a NUL, as ustar requires.
void tar_write_octal(std::uint8_t* field, std::size_t width, std::uint64_t value) {
    char text[32];
    std::snprintf(text, sizeof(text), "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(value));
    if (std::strlen(text) != width - 1) throw Error("engine sources: a value does not fit a tar header field");
    std::memcpy(field, text, width - 1);
    field[width - 1] = 0;
}

void tar_append_file(std::vector<std::uint8_t>& out, std::string_view path, std::string_view content) {
    std::uint8_t header[tar_block] = {};
    // Paths up to 100 bytes go in name; longer ones split at a slash into prefix (155) and name (100).
    std::string_view prefix, name = path;
    if (path.size() > 100) {
        const std::size_t slash = path.rfind('/', 155);
        if (slash == std::string_view::npos || path.size() - slash - 1 > 100) {
            throw Error("engine sources: path too long for a tar header: " + std::string(path));
        }
        prefix = path.substr(0, slash);
        name = path.substr(slash + 1);
    }
    std::memcpy(header, name.data(), name.size());
    tar_write_octal(header + 100, 8, 0644);
    tar_write_octal(header + 108, 8, 0);
    tar_write_octal(header + 116, 8, 0);
    tar_write_octal(header + 124, 12, content.size());
    tar_write_octal(header + 136, 12, 0);
    header[156] = '0';  // regular file
    std::memcpy(header + 257, "ustar", 6);
    std::memcpy(header + 263, "00", 2);
    std::memcpy(header + 345, prefix.data(), prefix.size());
    // The checksum is computed with its own field as spaces, then written as six octal digits, NUL, space.
    std::memset(header + 148, ' ', 8);
    unsigned sum = 0;
    for (const std::uint8_t byte : header) sum += byte;
    char checksum[8];
    std::snprintf(checksum, sizeof(checksum), "%06o", sum);
    std::memcpy(header + 148, checksum, 6);
    header[154] = 0;
    header[155] = ' ';
    out.insert(out.end(), header, header + tar_block);
    out.insert(out.end(), content.begin(), content.end());
    out.resize(out.size() + (tar_block - content.size() % tar_block) % tar_block, 0);
}

struct Bundle {
    EngineCodeSize size;
    std::vector<std::uint8_t> compressed;
};

const Bundle& engine_bundle() {
    static std::once_flag once;
    static Bundle bundle;
    std::call_once(once, [] {
        const std::vector<std::uint8_t> tar = engine_source_tar();
        bundle.compressed = codec_compress(codec_parse_spec(engine_source_codec), tar);
        for (const EngineSourceFile& file : engine_source_files()) {
            bundle.size.files += 1;
            bundle.size.raw_bytes += static_cast<std::int64_t>(file.content.size());
        }
        bundle.size.tar_bytes = static_cast<std::int64_t>(tar.size());
        bundle.size.compressed_bytes = static_cast<std::int64_t>(bundle.compressed.size());
        bundle.size.digest = digest_sha256_hex(tar);
    });
    return bundle;
}

}  // namespace

std::vector<std::uint8_t> engine_source_tar() {
    std::vector<std::uint8_t> out;
    for (const EngineSourceFile& file : engine_source_files()) tar_append_file(out, file.path, file.content);
    out.resize(out.size() + 2 * tar_block, 0);  // end-of-archive marker
    return out;
}

const EngineCodeSize& engine_code_size() { return engine_bundle().size; }

const std::vector<std::uint8_t>& engine_source_bundle() { return engine_bundle().compressed; }

}  // namespace pgolf
