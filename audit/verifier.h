// The verifier (`pgolf audit RUN`): trusts nothing printed. It re-reads the ledger and checks its chain, re-measures
// and re-hashes the shipped files, recomputes the clocks (training time with validation pauses removed, the training
// clock at every data read, the evaluation stages) and the score (from the gate's commits), and checks each rule of
// COMPLIANCE.md that a run's files can prove (docs/audit.md lists them), giving every finding a rule id, a severity
// and its evidence (the ledger line, the numbers). V* ids are the verifier's own checks of the evidence itself.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pgolf {

enum class FindingSeverity { info, warn, fail };
std::string finding_severity_name(FindingSeverity severity);  // "info", "warn", "fail"

struct AuditFinding {
    std::string rule;  // COMPLIANCE.md id (A1, T4, L6, …) or the verifier's own (V1 …)
    FindingSeverity severity = FindingSeverity::info;
    std::string message;
    std::int64_t line = 0;  // ledger line (1-based) the evidence is on; 0: none
    nlohmann::ordered_json evidence = nlohmann::ordered_json::object();
};

struct AuditReport {
    std::string run_directory;
    std::string verdict;     // PASS, WARN, FAIL, INCOMPLETE
    std::string status;      // the run's: complete, stopped, failed, or incomplete (no run_end)
    std::string last_phase;  // the phase of the ledger's last event
    std::int64_t ledger_lines = 0;
    std::vector<AuditFinding> findings;
    nlohmann::ordered_json measures = nlohmann::ordered_json::object();  // the recomputed numbers
};

struct AuditOptions {
    // 0: the cap the run recorded, never above the challenge's 16,000,000.
    std::int64_t cap_bytes = 0;
};

// Throws only when the folder holds no ledger.
AuditReport audit_run(const std::string& run_directory, const AuditOptions& options = {});

nlohmann::ordered_json audit_report_json(const AuditReport& report);
std::string audit_report_text(const AuditReport& report);
// RUN/audit.json, written atomically.
void audit_write_json(const AuditReport& report, const std::string& path);
// 0 PASS, 1 WARN, 2 FAIL, 3 INCOMPLETE.
int audit_exit_status(const AuditReport& report);

}  // namespace pgolf
