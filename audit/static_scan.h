// Static scan of a submission's Python scripts for the illegal evaluation patterns of COMPLIANCE.md §5
// (train-then-score and pre-quant TTT, multi-epoch rescoring, score-after-update, double accumulation, scored-region
// SLOT, target-in-key n-gram hashes), each with file:line evidence and whether the code can run by default (call graph
// and env flags).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pgolf {

struct ScanFinding {
    std::string rule;      // "L4", "L5", "L6", "L8", "L9", "L10", "C3", "C4"
    std::string severity;  // "fail" when reachable ("warn" for L9); "info" when the code cannot run by default
    std::string file;  // path relative to the scanned folder ('/' separated), or the name given to static_scan_source;
                       // a finding inside a decoded exec wrapper names "<file> (decoded payload)"
    std::int64_t line = 0;  // 1-based line of the key evidence (the step() call, the accumulation, the hash key line)
    std::string message;    // one sentence: what pattern, in which function
    std::string evidence;   // the source line, trimmed
    bool reachable = true;
    std::string
        reachability;  // "called from main via eval_val_ttt", "never called", "behind NGRAM_EVAL_ORDER (default 0)"
};

// A recognised legal pattern, kept for the report: "L1" score-first TTT, "L2" epochs on an already-scored chunk,
// "BigramHash" a hash of context tokens only.
struct ScanLegalPattern {
    std::string rule;
    std::string file;
    std::int64_t line = 0;
    std::string message;
};

struct ScannedFile {
    std::string path;
    std::int64_t lines = 0;
    bool decoded_wrapper = false;    // an lzma exec wrapper (xz, .lzma or raw LZMA2) whose payload was scanned
    std::int64_t payload_lines = 0;  // lines of the decoded payload (0 without one)
};

struct ScanReport {
    std::vector<ScannedFile> files;
    std::vector<ScanFinding> findings;    // sorted by file, line
    std::vector<ScanLegalPattern> legal;  // sorted by file, line
    std::vector<std::string> notes;       // e.g. "train_gpt.py: an lzma+base85 exec wrapper (xz), its payload was ..."
};

// Scans one script given as text; file names it in the findings.
ScanReport static_scan_source(const std::string& text, const std::string& file);

// Scans every *.py under folder, recursively (hidden folders and __pycache__ skipped), in path order. A function that
// no file calls by name is unreachable; a name used in another scanned file counts as a use. Throws pgolf::Error when
// the folder or one of its scripts cannot be read.
ScanReport static_scan_folder(const std::string& folder);

// Number of findings with severity "fail".
std::int64_t static_scan_count_failures(const ScanReport& report);

// Human-readable listing: one line per finding ("fail L6 train_gpt.py:412 ... [called from main]"), then legal
// patterns and notes.
std::string static_scan_report_text(const ScanReport& report);

}  // namespace pgolf
