// The PGOLF artifact container (docs/artifact-format.md): quantized weights, their scheme and provenance in one
// versioned, checksummed, strictly validated binary that is compressed whole by one codec to make the counted file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/codec.h"
#include "model/quantize.h"

namespace pgolf {

inline constexpr std::string_view artifact_magic = "PGOLFART";  // the container's first 8 bytes
inline constexpr std::uint32_t artifact_format_version = 1;     // the only version this build reads or writes
// Ceiling on the decompressed container, so a corrupt or hostile stream cannot make a reader allocate without bound;
// a 16 MB artifact decompresses to a small fraction of it.
inline constexpr std::size_t artifact_max_container_bytes = std::size_t{1} << 30;
// Ceiling on the JSON header: parsed JSON takes many times its text in memory, and a real header (a few hundred bytes
// per tensor) is far below it.
inline constexpr std::size_t artifact_max_header_bytes = std::size_t{1} << 24;

struct Artifact {
    std::string scheme;                           // the quantization scheme's name, e.g. "int6_gptq_sdclip"
    std::map<std::string, std::string> metadata;  // free-form provenance: preset, config digest, checkpoint digest …
    std::vector<QuantizedTensor> tensors;         // in the order they were stored

    // Throws pgolf::Error naming the missing tensor.
    const QuantizedTensor& at(const std::string& name) const;
    bool contains(const std::string& name) const;
};

// What a read found besides the artifact itself.
struct ArtifactFile {
    Artifact artifact;
    CodecKind codec = CodecKind::zstd;  // the codec the file was compressed with
    std::int64_t file_bytes = 0;        // compressed size: what counts against the cap
    std::int64_t container_bytes = 0;   // decompressed container size
};

// Raw (uncompressed) payload bytes of one tensor, for byte reports.
struct ArtifactTensorBytes {
    std::string name;
    std::int64_t values_bytes = 0;
    std::int64_t scales_bytes = 0;  // 0 for passthrough
};

// The uncompressed container. Validates the artifact exactly as the reader would (so nothing unreadable is ever
// written) and throws a one-line pgolf::Error naming the tensor and the problem. Same artifact, same bytes.
std::vector<std::uint8_t> artifact_encode(const Artifact& artifact);

// Parses and validates an uncompressed container; source_name (a path or a description) starts every error message.
Artifact artifact_decode(std::span<const std::uint8_t> container, const std::string& source_name);

// The bytes of an artifact file: artifact_encode compressed by spec, nothing else.
std::vector<std::uint8_t> artifact_compress(const Artifact& artifact, const CodecSpec& spec);

// Decompresses and decodes the bytes of an artifact file. Without codec, the codec is detected: zstd, xz and zlib by
// their magic, brotli (which has none) when nothing else matches or a zlib guess fails.
ArtifactFile artifact_decompress(std::span<const std::uint8_t> file_bytes, const std::string& source_name,
                                 std::optional<CodecKind> codec = {});

// Writes artifact_compress's bytes through an AtomicFileWriter and returns how many were written.
std::int64_t artifact_write(const std::string& path, const Artifact& artifact, const CodecSpec& spec);

// Reads, decompresses and validates a file written by artifact_write; every problem is a one-line pgolf::Error that
// starts with the path.
ArtifactFile artifact_read(const std::string& path, std::optional<CodecKind> codec = {});

// Raw bytes per tensor in artifact order, and their total (the container's payload size).
std::vector<ArtifactTensorBytes> artifact_tensor_bytes(const Artifact& artifact);
std::int64_t artifact_payload_bytes(const Artifact& artifact);

}  // namespace pgolf
