// The run ledger (docs/ledger-format.md): an append-only JSON-lines file in which every event carries its sequence
// number, the run's monotonic time, the phase, a payload and the SHA-256 of the previous line, so that an edit,
// deletion or reordering of any line breaks the chain at a line the reader names. A head file, rewritten atomically at
// every sync, anchors the last synced line (an edit of the last line has no successor to expose it).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pgolf {

inline constexpr const char* ledger_file_name = "ledger.jsonl";
inline constexpr const char* ledger_head_file_name = "ledger.head";
// The prev of the first line.
inline const std::string ledger_genesis_hash(64, '0');

class LedgerWriter {
public:
    // Creates path (refusing one that exists: a ledger is never rewritten) and its head file next to it.
    explicit LedgerWriter(const std::string& path);
    ~LedgerWriter();
    LedgerWriter(const LedgerWriter&) = delete;
    LedgerWriter& operator=(const LedgerWriter&) = delete;

    // Appends one event line (written to the file at once, so a crash keeps every whole line). Returns its seq.
    std::int64_t append(double t_ms, const std::string& phase, const std::string& event,
                        const nlohmann::ordered_json& payload);
    // fsync, then the head file (lines, last line's SHA-256) is replaced atomically.
    void sync();
    std::int64_t lines() const { return lines_; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    std::string head_path_;
    int fd_ = -1;
    std::int64_t lines_ = 0;
    std::string last_hash_;
};

struct LedgerEntry {
    std::int64_t line = 0;  // 1-based line number in the file
    std::int64_t seq = -1;
    double t_ms = 0.0;
    std::string phase;
    std::string event;
    nlohmann::ordered_json payload;
    bool parsed = false;  // false: the line is not a ledger event (the problem says why)
};

struct LedgerProblem {
    std::int64_t line = 0;
    std::string message;
};

struct LedgerHead {
    std::int64_t lines = 0;
    std::string last_line_sha256;
};

struct LedgerReading {
    std::vector<LedgerEntry> entries;     // every whole line, in file order (unparsed ones marked)
    std::vector<LedgerProblem> problems;  // chain breaks, each naming its line
    std::optional<LedgerHead> head;       // absent when the head file is missing or unreadable
    std::string head_problem;             // why the head is absent, or how the file disagrees with it
    std::int64_t unanchored_lines = 0;    // whole lines after the head's anchor (written after the last sync)
    bool truncated_tail = false;          // the file ends inside a line (a crash mid-write): ignored
};

// Reads and checks the chain: each line parses, has exactly the ledger's fields, seq equal to its index and prev equal
// to the SHA-256 of the line before; the head's line count and hash match. Throws only when the file cannot be read.
LedgerReading ledger_read(const std::string& path);

}  // namespace pgolf
