// JSON helpers shared by every reader of stored JSON (safetensors and artifact headers, ledger lines): a parse that
// refuses a key repeated within one object, and one-line quoting of untrusted text for error messages.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace pgolf {

// Parses text, keeping key order. nlohmann keeps the last of duplicate keys silently, which makes a stored header
// or event ambiguous, so a key repeated within one object is refused. Errors (pgolf::Error) read
// "invalid JSON <what>: <reason>" or "duplicate key \"k\" in <what>".
nlohmann::ordered_json json_parse_unique_keys(std::string_view text, const std::string& what);

// text as a JSON string literal, invalid UTF-8 replaced: safe to put any name from a file in a one-line message.
std::string json_quote(const std::string& text);

}  // namespace pgolf
