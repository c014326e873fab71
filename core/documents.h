// Source of text documents for encoding user text into shards: one plain text file, or JSONL with a "text" field.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace pgolf {

enum class DocumentFormat { automatic, plain, jsonl };

// automatic → jsonl for a ".jsonl"/".ndjson" extension (any case), else plain; plain and jsonl are returned as is.
DocumentFormat documents_resolve_format(const std::string& path, DocumentFormat format);

// Calls on_document(text) for each document in file order and returns how many there were.
// jsonl: one JSON object per non-blank line with a required string field "text" (other fields ignored); empty texts
// are passed on. plain: the whole file is one document (even when empty). JSONL is read line by line, so files can be
// larger than memory. Throws pgolf::Error naming path (and path:line for JSONL) on any problem; the text given to
// on_document is only valid during the call.
std::int64_t documents_read(const std::string& path, DocumentFormat format,
                            const std::function<void(std::string_view)>& on_document);

}  // namespace pgolf
