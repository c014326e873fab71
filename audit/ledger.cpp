// Ledger writing (one write per line, fsync and an atomically replaced head at syncs) and chain checking.
#include "audit/ledger.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/digest.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"

namespace pgolf {

namespace {

std::string ledger_head_path(const std::string& ledger_path) {
    return (std::filesystem::path(ledger_path).parent_path() / ledger_head_file_name).string();
}

}  // namespace

LedgerWriter::LedgerWriter(const std::string& path)
    : path_(path), head_path_(ledger_head_path(path)), last_hash_(ledger_genesis_hash) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        if (errno == EEXIST) throw Error(path + ": a ledger already exists here (a run folder is used once)");
        throw Error(path + ": cannot create: " + std::strerror(errno));
    }
    sync();  // an empty ledger has a head too
}

LedgerWriter::~LedgerWriter() {
    if (fd_ >= 0) {
        try {
            sync();
        } catch (...) {
            // Destructors must not throw; the synced prefix stays valid.
        }
        ::close(fd_);
    }
}

std::int64_t LedgerWriter::append(double t_ms, const std::string& phase, const std::string& event,
                                  const nlohmann::ordered_json& payload) {
    nlohmann::ordered_json line;
    line["seq"] = lines_;
    line["t_ms"] = std::round(t_ms * 1000.0) / 1000.0;  // microseconds are plenty for budgets of seconds
    line["phase"] = phase;
    line["event"] = event;
    line["payload"] = payload;
    line["prev"] = last_hash_;
    const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    const std::string record = text + "\n";
    // One write per line: a crash leaves whole lines, at worst one cut short at the end (which readers ignore).
    std::size_t written = 0;
    while (written < record.size()) {
        const ssize_t n = ::write(fd_, record.data() + written, record.size() - written);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Error(path_ + ": cannot append: " + std::strerror(errno));
        }
        written += static_cast<std::size_t>(n);
    }
    last_hash_ = digest_sha256_hex(std::string_view(text));
    return lines_++;
}

void LedgerWriter::sync() {
    if (::fsync(fd_) != 0) throw Error(path_ + ": fsync failed: " + std::strerror(errno));
    const nlohmann::ordered_json head = {{"lines", lines_}, {"last_line_sha256", last_hash_}};
    const std::string text = head.dump() + "\n";
    file_write_bytes(head_path_, text.data(), text.size());
}

LedgerReading ledger_read(const std::string& path) {
    const std::vector<std::uint8_t> bytes = file_read_bytes(path);
    LedgerReading reading;
    std::string previous_hash = ledger_genesis_hash;
    std::size_t start = 0;
    std::int64_t index = 0;
    while (start < bytes.size()) {
        std::size_t end = start;
        while (end < bytes.size() && bytes[end] != '\n') ++end;
        if (end == bytes.size()) {
            reading.truncated_tail = true;  // no newline: the last write was cut short
            break;
        }
        const std::string text(reinterpret_cast<const char*>(bytes.data()) + start, end - start);
        start = end + 1;
        LedgerEntry entry;
        entry.line = index + 1;
        auto problem = [&](const std::string& message) {
            reading.problems.push_back(
                LedgerProblem{entry.line, "line " + std::to_string(entry.line) + ": " + message});
        };
        try {
            const nlohmann::ordered_json json = json_parse_unique_keys(text, "ledger line");
            static const char* const fields[] = {"seq", "t_ms", "phase", "event", "payload", "prev"};
            bool shaped = json.is_object() && json.size() == std::size(fields);
            for (const char* field : fields) shaped = shaped && json.contains(field);
            if (!shaped || !json["seq"].is_number_integer() || !json["t_ms"].is_number() ||
                !json["phase"].is_string() || !json["event"].is_string() || !json["payload"].is_object() ||
                !json["prev"].is_string()) {
                problem("not a ledger event (fields seq, t_ms, phase, event, payload, prev expected)");
            } else {
                entry.seq = json["seq"].get<std::int64_t>();
                entry.t_ms = json["t_ms"].get<double>();
                entry.phase = json["phase"].get<std::string>();
                entry.event = json["event"].get<std::string>();
                entry.payload = json["payload"];
                entry.parsed = true;
                if (entry.seq != index) {
                    problem("sequence number " + std::to_string(entry.seq) + ", expected " + std::to_string(index) +
                            " (a line was deleted, inserted or moved)");
                }
                if (json["prev"].get<std::string>() != previous_hash) {
                    problem(index == 0
                                ? std::string("the first line does not start the chain (edited)")
                                : "its previous-line hash does not match line " + std::to_string(index) + " (line " +
                                      std::to_string(index) + " was edited, or lines were deleted or moved)");
                }
            }
        } catch (const Error& error) {
            problem(std::string("not a ledger event (") + error.what() + ")");
        }
        previous_hash = digest_sha256_hex(std::string_view(text));
        reading.entries.push_back(std::move(entry));
        ++index;
    }

    const std::string head_path = ledger_head_path(path);
    try {
        const std::vector<std::uint8_t> head_bytes = file_read_bytes(head_path);
        const nlohmann::ordered_json json = json_parse_unique_keys(
            std::string_view(reinterpret_cast<const char*>(head_bytes.data()), head_bytes.size()), "ledger head");
        if (!json.is_object() || !json.contains("lines") || !json["lines"].is_number_integer() ||
            !json.contains("last_line_sha256") || !json["last_line_sha256"].is_string()) {
            throw Error("fields lines and last_line_sha256 expected");
        }
        reading.head = LedgerHead{json["lines"].get<std::int64_t>(), json["last_line_sha256"].get<std::string>()};
    } catch (const Error& error) {
        reading.head_problem = std::string(ledger_head_file_name) + ": " + error.what();
    }
    if (reading.head) {
        const auto count = static_cast<std::int64_t>(reading.entries.size());
        const LedgerHead& head = *reading.head;
        if (head.lines > count) {
            reading.problems.push_back(
                LedgerProblem{count + 1, "line " + std::to_string(count + 1) + ": missing: the head anchors " +
                                             std::to_string(head.lines) + " lines but the ledger has " +
                                             std::to_string(count) + " (lines were deleted)"});
        } else if (head.lines > 0) {
            // Re-hash the anchored line from the file's bytes.
            std::size_t line_start = 0;
            for (std::int64_t i = 0; i + 1 < head.lines; ++i) {
                while (bytes[line_start] != '\n') ++line_start;
                ++line_start;
            }
            std::size_t line_end = line_start;
            while (bytes[line_end] != '\n') ++line_end;
            const std::string text(reinterpret_cast<const char*>(bytes.data()) + line_start, line_end - line_start);
            if (digest_sha256_hex(std::string_view(text)) != head.last_line_sha256) {
                reading.problems.push_back(
                    LedgerProblem{head.lines, "line " + std::to_string(head.lines) +
                                                  ": does not match the hash the head anchored (the line was edited)"});
            }
            reading.unanchored_lines = count - head.lines;
        } else {
            reading.unanchored_lines = count;
        }
    }
    return reading;
}

}  // namespace pgolf
