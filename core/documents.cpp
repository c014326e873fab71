// Reads documents from plain text or JSONL files; every error is one line naming the file (and line) at fault.
#include "core/documents.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"

namespace pgolf {

namespace {

std::ifstream open_document_file(const std::string& path) {
    std::error_code ec;
    // A directory opens fine as an ifstream on Linux and then reads as empty; reject it explicitly.
    if (std::filesystem::is_directory(path, ec)) {
        throw Error(path + ": is a directory, expected a text or JSONL file");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw Error(path + ": cannot open document file");
    }
    return in;
}

bool is_blank(std::string_view line) {
    return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

// nlohmann's message repeats the position ("[json.exception.parse_error.101] parse error at line 1, column 9: ...")
// and quotes the last token, which on a long unterminated string is the rest of the line; keep the reason, short.
std::string json_error_reason(const nlohmann::json::exception& e) {
    constexpr std::size_t kMaxReason = 160;
    std::string reason = e.what();
    if (const auto colon = reason.find(": "); colon != std::string::npos) {
        reason.erase(0, colon + 2);
    }
    if (reason.size() > kMaxReason) {
        reason.resize(kMaxReason);
        while (!reason.empty() && (static_cast<unsigned char>(reason.back()) & 0x80) != 0) {
            reason.pop_back();  // never leave half a UTF-8 sequence
        }
        reason += "...";
    }
    std::replace_if(
        reason.begin(), reason.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
    return reason;
}

// Offset of the first byte that does not start or continue a well-formed UTF-8 sequence (RFC 3629: no overlongs, no
// surrogates, nothing past U+10FFFF), or npos. SentencePiece would silently turn such bytes into U+FFFD, whose 3 bytes
// are not the file's bytes, so the byte tables would no longer count the real text.
std::size_t first_invalid_utf8(std::string_view text) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    std::size_t i = 0;
    while (i < text.size()) {
        const unsigned char lead = bytes[i];
        std::size_t length = 0;
        unsigned char low = 0x80, high = 0xBF;  // allowed range of the first continuation byte
        if (lead < 0x80) {
            ++i;
            continue;
        } else if (lead >= 0xC2 && lead <= 0xDF) {
            length = 2;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            length = 3;
            if (lead == 0xE0) low = 0xA0;   // no overlongs
            if (lead == 0xED) high = 0x9F;  // no surrogates
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            length = 4;
            if (lead == 0xF0) low = 0x90;
            if (lead == 0xF4) high = 0x8F;  // nothing past U+10FFFF
        } else {
            return i;
        }
        if (i + length > text.size()) return i;
        if (bytes[i + 1] < low || bytes[i + 1] > high) return i;
        for (std::size_t k = 2; k < length; ++k) {
            if ((bytes[i + k] & 0xC0) != 0x80) return i;
        }
        i += length;
    }
    return std::string_view::npos;
}

std::int64_t read_plain(const std::string& path, const std::function<void(std::string_view)>& on_document) {
    const std::vector<std::uint8_t> bytes = file_read_bytes(path);
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (const std::size_t bad = first_invalid_utf8(text); bad != std::string_view::npos) {
        throw Error(path + ": not valid UTF-8 at byte " + std::to_string(bad));
    }
    on_document(text);
    return 1;
}

std::int64_t read_jsonl(const std::string& path, const std::function<void(std::string_view)>& on_document) {
    std::ifstream in = open_document_file(path);
    std::string line;
    std::int64_t line_number = 0;
    std::int64_t count = 0;
    while (std::getline(in, line)) {
        ++line_number;
        if (is_blank(line)) {
            continue;
        }
        const std::string where = path + ":" + std::to_string(line_number) + ": ";
        nlohmann::json record;
        try {
            record = nlohmann::json::parse(line);
        } catch (const nlohmann::json::parse_error& e) {
            throw Error(where + "invalid JSON at byte " + std::to_string(e.byte) + ": " + json_error_reason(e));
        } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range for a number beyond double
            throw Error(where + "invalid JSON: " + json_error_reason(e));
        }
        if (!record.is_object()) {
            throw Error(where + "expected a JSON object, got " + record.type_name());
        }
        const auto text = record.find("text");
        if (text == record.end()) {
            throw Error(where + "missing string field \"text\"");
        }
        if (!text->is_string()) {
            throw Error(where + "field \"text\" is " + text->type_name() + ", expected a string");
        }
        on_document(text->get_ref<const std::string&>());
        ++count;
    }
    if (in.bad()) {
        throw Error(path + ":" + std::to_string(line_number + 1) + ": read error");
    }
    return count;
}

}  // namespace

DocumentFormat documents_resolve_format(const std::string& path, DocumentFormat format) {
    if (format != DocumentFormat::automatic) {
        return format;
    }
    std::string extension = std::filesystem::path(path).extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return (extension == ".jsonl" || extension == ".ndjson") ? DocumentFormat::jsonl : DocumentFormat::plain;
}

std::int64_t documents_read(const std::string& path, DocumentFormat format,
                            const std::function<void(std::string_view)>& on_document) {
    if (documents_resolve_format(path, format) == DocumentFormat::jsonl) {
        return read_jsonl(path, on_document);
    }
    return read_plain(path, on_document);
}

}  // namespace pgolf
