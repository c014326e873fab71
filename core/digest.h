// SHA-256 digests (OpenSSL) for shards, artifacts, configs and the ledger chain, always as lowercase hex.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pgolf {

std::string digest_sha256_hex(std::span<const std::uint8_t> bytes);
std::string digest_sha256_hex(std::string_view text);
// Streams the file (shards can be hundreds of MB); throws naming the path.
std::string digest_sha256_file_hex(const std::string& path);

}  // namespace pgolf
