// Compression codecs for model artifacts. Each codec reproduces byte for byte what the challenge's Python submissions
// produce (zlib, lzma, brotli and zstandard modules with their defaults), so compressed sizes agree to the byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pgolf {

enum class CodecKind { zstd, xz, brotli, zlib };

struct CodecSpec {
    CodecKind kind;
    int level;
    bool extreme = false;  // xz only: LZMA_PRESET_EXTREME, spelled "xz-9e"

    // Canonical spelling, accepted back by codec_parse_spec: "zstd-22", "xz-9e", "brotli-11", "zlib-9".
    std::string name() const;

    bool operator==(const CodecSpec&) const = default;
};

// Default ceiling on decompressed size, so a hostile or corrupt header cannot make us allocate without bound.
inline constexpr std::size_t codec_default_max_output_bytes = std::size_t{1} << 32;

// Accepts "zstd-N" (1..22), "xz-N" / "lzma-N" (0..9, optional "e" suffix), "brotli-N" (0..11), "zlib-N" (0..9).
CodecSpec codec_parse_spec(std::string_view text);

std::string codec_kind_name(CodecKind kind);

// zstd-N: zstandard.ZstdCompressor(level=N).compress(data)   (one frame, content size in header, no checksum)
// xz-N:   lzma.compress(data, preset=N [| PRESET_EXTREME])   (xz container, CRC64 check)
// brotli: brotli.compress(data, quality=N)                   (lgwin 22, generic mode)
// zlib-N: zlib.compress(data, N)                             (zlib container, windowBits 15, memLevel 8)
std::vector<std::uint8_t> codec_compress(const CodecSpec& spec, std::span<const std::uint8_t> input);

// Decodes exactly one stream. Throws pgolf::Error on corrupt or truncated input, on bytes after the end of the
// stream, and when the output would exceed max_output_bytes.
std::vector<std::uint8_t> codec_decompress(CodecKind kind, std::span<const std::uint8_t> input,
                                           std::size_t max_output_bytes = codec_default_max_output_bytes);

// The two other containers Python's lzma module writes, as participants' code wrappers use them:
// lzma.decompress(data, format=FORMAT_RAW, filters=[{"id": FILTER_LZMA2}]) (a bare LZMA2 stream, no header; decoded
// with a 64 MiB dictionary, enough for any stream whose output is smaller) and format=FORMAT_ALONE (.lzma). Same errors
// and limits as codec_decompress.
std::vector<std::uint8_t> codec_decompress_lzma2_raw(std::span<const std::uint8_t> input,
                                                     std::size_t max_output_bytes = codec_default_max_output_bytes);
std::vector<std::uint8_t> codec_decompress_lzma_alone(std::span<const std::uint8_t> input,
                                                      std::size_t max_output_bytes = codec_default_max_output_bytes);

// Identifies zstd, xz and zlib by their leading bytes; brotli has no magic, so it yields nullopt like unknown data.
std::optional<CodecKind> codec_detect(std::span<const std::uint8_t> input);

}  // namespace pgolf
