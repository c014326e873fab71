// Tests for audit/static_scan: each hand-written fixture (tests/audit/fixtures/scan) yields exactly its rule at its
// evidence line with the right reachability, the legal score-first script yields none, comments and strings are never
// matched, folder scans are ordered and relative, and lzma exec wrappers (xz, legacy .lzma, raw LZMA2) are decoded and
// their payload scanned.
#include "audit/static_scan.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "core/codec.h"
#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using namespace pgolf::test;

std::string fixture_path(const std::string& name) {
    return std::string(PGOLF_SOURCE_DIR) + "/tests/audit/fixtures/scan/" + name;
}

std::string read_fixture(const std::string& name) {
    std::ifstream in(fixture_path(name), std::ios::binary);
    EXPECT_TRUE(in.good()) << name;
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

ScanReport scan_fixture(const std::string& name) { return static_scan_source(read_fixture(name), name); }

void write_text(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream out(path, std::ios::binary);
    out << text;
}

// Every finding as "rule@line", for readable failure messages.
std::string summary(const ScanReport& report) {
    std::string out;
    for (const ScanFinding& f : report.findings)
        out += f.rule + "@" + f.file + ":" + std::to_string(f.line) + "(" + f.severity + ", " + f.reachability + ") ";
    return out.empty() ? "(none)" : out;
}

// Asserts the report holds exactly one finding and returns a copy of it.
ScanFinding only_finding(const ScanReport& report) {
    EXPECT_EQ(report.findings.size(), 1u) << summary(report);
    return report.findings.empty() ? ScanFinding{} : report.findings.front();
}

// Python's base64.b85encode (no padding).
std::string b85_encode(std::span<const std::uint8_t> bytes) {
    static const std::string alphabet =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); i += 4) {
        std::size_t n = std::min<std::size_t>(4, bytes.size() - i);
        std::uint32_t value = 0;
        for (std::size_t k = 0; k < 4; ++k) value = (value << 8) | (k < n ? bytes[i + k] : 0u);
        char group[5];
        for (int k = 4; k >= 0; --k) {
            group[k] = alphabet[value % 85];
            value /= 85;
        }
        out.append(group, n + 1);
    }
    return out;
}

std::string b64_encode(std::span<const std::uint8_t> bytes) {
    static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        std::uint32_t v = static_cast<std::uint32_t>(bytes[i]) << 16;
        if (i + 1 < bytes.size()) v |= static_cast<std::uint32_t>(bytes[i + 1]) << 8;
        if (i + 2 < bytes.size()) v |= bytes[i + 2];
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? alphabet[v & 63] : '=';
    }
    return out;
}

std::vector<std::uint8_t> xz_compress(const std::string& text) {
    std::vector<std::uint8_t> bytes(text.begin(), text.end());
    return codec_compress(codec_parse_spec("xz-6"), bytes);
}

// --- fixtures ---------------------------------------------------------------------------------------------------

TEST(StaticScan, LegalScoreFirstTttHasNoFindings) {
    ScanReport report = scan_fixture("legal_score_first_ttt.py");
    EXPECT_TRUE(report.findings.empty()) << summary(report);
    ASSERT_EQ(report.legal.size(), 3u);
    EXPECT_EQ(report.legal[0].rule, "BigramHash");
    EXPECT_EQ(report.legal[0].line, 28);
    EXPECT_EQ(report.legal[1].rule, "L2");
    EXPECT_EQ(report.legal[1].line, 63);
    EXPECT_EQ(report.legal[2].rule, "L1");
    EXPECT_EQ(report.legal[2].line, 70);
    EXPECT_NE(report.legal[2].message.find("eval_val_sliding_ttt"), std::string::npos);
    EXPECT_NE(report.legal[2].message.find("last chunk"), std::string::npos);
    ASSERT_EQ(report.files.size(), 1u);
    EXPECT_EQ(report.files[0].path, "legal_score_first_ttt.py");
    EXPECT_EQ(report.files[0].lines, 87);
    EXPECT_FALSE(report.files[0].decoded_wrapper);
}

TEST(StaticScan, PrequantAdamwTttIsL6) {
    ScanFinding f = only_finding(scan_fixture("prequant_ttt_adamw.py"));
    EXPECT_EQ(f.rule, "L6");
    EXPECT_EQ(f.line, 32);
    EXPECT_EQ(f.severity, "fail");
    EXPECT_TRUE(f.reachable);
    EXPECT_EQ(f.reachability, "called from main");
    EXPECT_EQ(f.evidence, "optimizer.step()");
    EXPECT_EQ(f.file, "prequant_ttt_adamw.py");
    EXPECT_NE(f.message.find("ttt_adapt_adamw"), std::string::npos);
}

TEST(StaticScan, TrainThenScoreIsL4) {
    ScanFinding f = only_finding(scan_fixture("train_then_score.py"));
    EXPECT_EQ(f.rule, "L4");
    EXPECT_EQ(f.line, 31);
    EXPECT_EQ(f.severity, "fail");
    EXPECT_NE(f.message.find("eval_val_ttt"), std::string::npos);
}

TEST(StaticScan, MultiEpochRescoreIsL5) {
    ScanFinding f = only_finding(scan_fixture("multi_epoch_rescore.py"));
    EXPECT_EQ(f.rule, "L5");
    EXPECT_EQ(f.line, 26);
    EXPECT_EQ(f.severity, "fail");
    EXPECT_EQ(f.evidence, "loss_sum += loss.item() * seq_len");
}

TEST(StaticScan, ScoreAfterUpdateIsC3) {
    ScanFinding f = only_finding(scan_fixture("score_after_update.py"));
    EXPECT_EQ(f.rule, "C3");
    EXPECT_EQ(f.line, 34);
    EXPECT_EQ(f.severity, "fail");
    EXPECT_NE(f.message.find("line 39"), std::string::npos);
}

TEST(StaticScan, DoubleAccumulationIsC4) {
    ScanFinding f = only_finding(scan_fixture("double_accumulate.py"));
    EXPECT_EQ(f.rule, "C4");
    EXPECT_EQ(f.line, 38);
    EXPECT_EQ(f.severity, "fail");
    EXPECT_NE(f.message.find("line 33"), std::string::npos);
}

TEST(StaticScan, ScoredRegionSlotIsL8) {
    ScanFinding f = only_finding(scan_fixture("slot_scored_region.py"));
    EXPECT_EQ(f.rule, "L8");
    EXPECT_EQ(f.line, 35);
    EXPECT_EQ(f.severity, "fail");
    EXPECT_NE(f.message.find("line 31"), std::string::npos);
    EXPECT_NE(f.message.find("[s:wlen]"), std::string::npos);
}

TEST(StaticScan, ContextOnlySlotIsL9Warn) {
    ScanFinding f = only_finding(scan_fixture("slot_context_only.py"));
    EXPECT_EQ(f.rule, "L9");
    EXPECT_EQ(f.line, 35);
    EXPECT_EQ(f.severity, "warn");
    EXPECT_TRUE(f.reachable);
    EXPECT_NE(f.message.find("#1336"), std::string::npos);
}

TEST(StaticScan, TargetKeyNgramIsL10WhenEnabledByDefault) {
    ScanFinding f = only_finding(scan_fixture("ngram_target_key.py"));
    EXPECT_EQ(f.rule, "L10");
    EXPECT_EQ(f.line, 38);
    EXPECT_EQ(f.severity, "fail");
    EXPECT_TRUE(f.reachable);
    EXPECT_EQ(f.evidence, "full_key = (ctx_hash ^ (tgt * 1000003)) & mask");
}

TEST(StaticScan, TargetKeyNgramBehindDefaultOffFlagIsInfo) {
    ScanFinding f = only_finding(scan_fixture("ngram_dead_code.py"));
    EXPECT_EQ(f.rule, "L10");
    EXPECT_EQ(f.line, 38);
    EXPECT_EQ(f.severity, "info");
    EXPECT_FALSE(f.reachable);
    EXPECT_EQ(f.reachability, "behind NGRAM_EVAL_ORDER (default 0)");
}

TEST(StaticScan, BareTargetBatchInNgramKeyIsL10) {
    // Reduced from a real n-gram mixer: y = y_batch.long() hashed into the key. The context hash of update(), filled
    // from training shards, is not flagged.
    ScanFinding f = only_finding(scan_fixture("ngram_bare_y_target.py"));
    EXPECT_EQ(f.rule, "L10");
    EXPECT_EQ(f.line, 49);
    EXPECT_EQ(f.severity, "fail");
    EXPECT_TRUE(f.reachable);
    EXPECT_EQ(f.reachability, "called from main via eval_val");
    EXPECT_EQ(f.evidence, "full_key = ((ctx_hash ^ (y * self.primes[cw])) & self.mask).long()");
}

TEST(StaticScan, BareTargetNamesCountOnlyOnTheRightHandSide) {
    const std::string source = R"PY(def keys(h, k, y_batch, labels, mask):
    y = (h ^ (k * 1000003)) & mask
    a_key = (h ^ (y_batch * 1000003)) & mask
    b_key = hash((h, labels)) % 4096
    return y, a_key, b_key


keys(1, 2, 3, 4, 5)
)PY";
    ScanFinding f = only_finding(static_scan_source(source, "bare.py"));
    EXPECT_EQ(f.rule, "L10");
    EXPECT_EQ(f.line, 3);
}

TEST(StaticScan, ValFilesLoraTttScoredByHelperIsLegal) {
    ScanReport report = scan_fixture("lora_ttt_val_files_legal.py");
    EXPECT_TRUE(report.findings.empty()) << summary(report);
    ASSERT_EQ(report.legal.size(), 1u);
    EXPECT_EQ(report.legal[0].rule, "L1");
    EXPECT_EQ(report.legal[0].line, 51);
    EXPECT_NE(report.legal[0].message.find("scored (line 47)"), std::string::npos) << report.legal[0].message;
    EXPECT_NE(report.legal[0].message.find("last chunk"), std::string::npos);
}

TEST(StaticScan, ValFilesLoraTttStepBeforeHelperScoringIsC3) {
    ScanFinding f = only_finding(scan_fixture("lora_ttt_val_files_c3.py"));
    EXPECT_EQ(f.rule, "C3");
    EXPECT_EQ(f.line, 49);
    EXPECT_EQ(f.severity, "fail");
    EXPECT_EQ(f.evidence, "opt.step()");
    EXPECT_NE(f.message.find("loss_sum (line 52)"), std::string::npos) << f.message;
}

TEST(StaticScan, LbfgsClosureSlotOnScoredRegionIsL8) {
    ScanFinding f = only_finding(scan_fixture("slot_lbfgs_closure_scored.py"));
    EXPECT_EQ(f.rule, "L8");
    EXPECT_EQ(f.line, 38);
    EXPECT_EQ(f.severity, "fail");
    EXPECT_EQ(f.evidence, "loss = F.cross_entropy(adjusted.float(), opt_targets, reduction=\"mean\")");
    EXPECT_NE(f.message.find("line 33"), std::string::npos);
    EXPECT_NE(f.message.find("[opt_start:wlen]"), std::string::npos);
}

TEST(StaticScan, LbfgsClosureSlotOnContextIsL9Warn) {
    ScanFinding f = only_finding(scan_fixture("slot_lbfgs_closure_context.py"));
    EXPECT_EQ(f.rule, "L9");
    EXPECT_EQ(f.line, 37);
    EXPECT_EQ(f.severity, "warn");
    EXPECT_TRUE(f.reachable);
    EXPECT_NE(f.message.find("[:s]"), std::string::npos);
}

TEST(StaticScan, ClosureBehindFlagIsNotReachedThroughAnOptimizersStep) {
    // The real record keeps its L-BFGS SLOT behind LBFGS_SLOT_ENABLED (default 0) while Muon.step(self, closure=None),
    // which names `closure` too, runs in training: the nested closure is local to its function.
    std::string source = read_fixture("slot_lbfgs_closure_scored.py");
    const std::string call = "    val_loss, val_bpb = eval_val_sliding_lbfgs_slot(args, base_model, val_tokens)\n";
    ASSERT_NE(source.find(call), std::string::npos);
    source.replace(source.find(call), call.size(),
                   "    Muon([]).step()\n    val_loss, val_bpb = 0.0, 0.0\n    if SLOT_ON:\n    "
                   "    val_loss, val_bpb = eval_val_sliding_lbfgs_slot(args, base_model, val_tokens)\n");
    source = "import os\nSLOT_ON = bool(int(os.environ.get(\"LBFGS_SLOT_ENABLED\", \"0\")))\n" + source;
    ScanFinding f = only_finding(static_scan_source(source, "flagged.py"));
    EXPECT_EQ(f.rule, "L8");
    EXPECT_EQ(f.line, 40);
    EXPECT_EQ(f.severity, "info");
    EXPECT_EQ(f.reachability, "behind LBFGS_SLOT_ENABLED (default 0)");
}

TEST(StaticScan, NeverCalledFunctionIsInfo) {
    ScanFinding f = only_finding(scan_fixture("never_called.py"));
    EXPECT_EQ(f.rule, "L6");
    EXPECT_EQ(f.line, 23);
    EXPECT_EQ(f.severity, "info");
    EXPECT_FALSE(f.reachable);
    EXPECT_EQ(f.reachability, "never called");
}

// --- Python handling --------------------------------------------------------------------------------------------

TEST(StaticScan, CommentsAndStringsAreNotMatched) {
    const std::string source = R"PY(import torch


def eval_val(model, val_tokens):
    """Reference notes, not code:

    for epoch in range(3):
        loss = model(val_tokens[:-1], val_tokens[1:])
        loss.backward()
        optimizer.step()
    full_key = ctx_hash ^ (tgt * 1000003)
    """
    total = 0.0  # loss.backward(); optimizer.step() on val_tokens would be illegal
    note = "full_key = ctx_hash ^ (tgt * 1000003); loss.backward(); opt.step()"
    with torch.no_grad():
        for i in range(10):
            total += model(val_tokens[i : i + 2]).item()
    print(note, '''opt = torch.optim.AdamW([delta]); loss.backward()''')
    return total


eval_val(None, None)
)PY";
    ScanReport report = static_scan_source(source, "docstring.py");
    EXPECT_TRUE(report.findings.empty()) << summary(report);
}

TEST(StaticScan, ContinuationLinesReportTheirFirstLine) {
    const std::string source = R"PY(import torch


def ngram_score(val_np, counts, mask):
    total = 0.0
    for pos in range(1, len(val_np)):
        tgt = int(val_np[pos])
        full_key = (
            (int(val_np[pos - 1]) * 1000003)
            ^ (tgt * 999983)
        ) & mask
        total += counts[full_key]
    return total


ngram_score([], [], 0)
)PY";
    ScanFinding f = only_finding(static_scan_source(source, "cont.py"));
    EXPECT_EQ(f.rule, "L10");
    EXPECT_EQ(f.line, 8);
    EXPECT_EQ(f.evidence, "full_key = (");
    EXPECT_EQ(f.reachability, "called at module level");
}

TEST(StaticScan, FlagsInConditionsAndEarlyReturns) {
    const std::string source = R"PY(import os

USE_SLOT = bool(int(os.environ.get("USE_SLOT", "0")))
MIX = os.environ.get("MIX_MODE", "off") == "on"


def key_a(tgt, h):
    return (h ^ (tgt * 1000003)) % 4096


def key_b(tgt, h):
    bucket = hash((h, tgt)) % 4096
    return bucket


def key_c(target, h):
    if not USE_SLOT:
        return 0
    slot_key = (h * 31) ^ target
    return slot_key


def key_d(tgt, h):
    key = h ^ (tgt * 1000003)
    return key


if USE_SLOT and h > 0:
    key_a(1, 2)
if MIX:
    key_b(1, 2)
key_c(1, 2)
if not USE_SLOT:
    key_d(1, 2)
)PY";
    ScanReport report = static_scan_source(source, "flags.py");
    ASSERT_EQ(report.findings.size(), 4u) << summary(report);
    EXPECT_EQ(report.findings[0].line, 8);
    EXPECT_EQ(report.findings[0].reachability, "behind USE_SLOT (default 0)");
    EXPECT_EQ(report.findings[1].line, 12);
    EXPECT_EQ(report.findings[1].reachability, "behind MIX_MODE (default off)");
    EXPECT_EQ(report.findings[2].line, 19);
    EXPECT_EQ(report.findings[2].reachability, "behind USE_SLOT (default 0)");
    EXPECT_EQ(report.findings[3].line, 24);
    EXPECT_TRUE(report.findings[3].reachable);
    EXPECT_EQ(report.findings[3].severity, "fail");
    for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(report.findings[i].severity, "info");
    EXPECT_EQ(static_scan_count_failures(report), 1);
}

TEST(StaticScan, RescoringPassAfterAdaptationIsC4) {
    const std::string source = R"PY(import torch


def eval_two_pass(model, opt, val_tokens, n):
    loss_sum = 0.0
    with torch.no_grad():
        for i in range(n):
            loss_sum += model(val_tokens[i : i + 9]).item()
    for i in range(n):
        loss = model(val_tokens[i : i + 9])
        loss.backward()
        opt.step()
    with torch.no_grad():
        for i in range(n):
            loss_sum += model(val_tokens[i : i + 9]).item()
    return loss_sum / (2 * n)


eval_two_pass(None, None, None, 0)
)PY";
    ScanFinding f = only_finding(static_scan_source(source, "two_pass.py"));
    EXPECT_EQ(f.rule, "C4");
    EXPECT_EQ(f.line, 15);
    EXPECT_NE(f.message.find("line 12"), std::string::npos);
}

TEST(StaticScan, FirstEpochOnlyScoringAndTrainingDataAreNotFlagged) {
    const std::string source = R"PY(import torch


def eval_first_epoch(model, opt, val_tokens, n, epochs):
    nll_sum = 0.0
    for epoch in range(epochs):
        for i in range(n):
            loss = model(val_tokens[i : i + 9])
            if epoch == 0:
                nll_sum += loss.item()
            loss.backward()
            opt.step()
    return nll_sum / n


def train(model, opt, train_loader, val_tokens, steps):
    for step in range(steps):
        x, y = train_loader.next_batch()
        loss = model(x, y)
        loss.backward()
        opt.step()
        scheduler.step()
        if step % 100 == 0:
            val_loss = eval_first_epoch(model, opt, val_tokens, 4, 1)
    return val_loss


train(None, None, None, None, 10)
)PY";
    ScanReport report = static_scan_source(source, "first_epoch.py");
    EXPECT_TRUE(report.findings.empty()) << summary(report);
    ASSERT_EQ(report.legal.size(), 1u);
    EXPECT_EQ(report.legal[0].rule, "L1");
    EXPECT_EQ(report.legal[0].line, 12);
}

TEST(StaticScan, ValidationTokensPassedUnderAnotherName) {
    const std::string source = R"PY(import torch


def finetune(model, opt, tokens, epochs):
    for epoch in range(epochs):
        for i in range(0, len(tokens) - 9, 8):
            loss = model(tokens[i : i + 9])
            opt.zero_grad()
            loss.backward()
            opt.step()


def warmup_compile(model, opt, data):
    loss = model(data)
    loss.backward()
    opt.step()


def main():
    val_tokens = torch.load("val.pt")
    train_tokens = torch.load("train.pt")
    model = torch.load("model.pt")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    finetune(model, opt, tokens=val_tokens, epochs=2)
    warmup_compile(model, opt, train_tokens[:64])


main()
)PY";
    ScanFinding f = only_finding(static_scan_source(source, "renamed.py"));
    EXPECT_EQ(f.rule, "L6");
    EXPECT_EQ(f.line, 10);
    EXPECT_EQ(f.reachability, "called from main");
}

// --- folders ----------------------------------------------------------------------------------------------------

TEST(StaticScan, FolderScanIsOrderedAndRelative) {
    TemporaryFolder folder;
    write_text(folder.path("z_last.py"), read_fixture("score_after_update.py"));
    write_text(folder.path("records/b/train_gpt.py"), read_fixture("prequant_ttt_adamw.py"));
    write_text(folder.path("records/a/train_gpt.py"), read_fixture("legal_score_first_ttt.py"));
    write_text(folder.path(".git/hooks/x.py"), read_fixture("prequant_ttt_adamw.py"));
    write_text(folder.path("__pycache__/cached.py"), read_fixture("prequant_ttt_adamw.py"));
    write_text(folder.path("records/b/notes.txt"), "loss.backward()\n");
    ScanReport report = static_scan_folder(folder.root());
    ASSERT_EQ(report.files.size(), 3u);
    EXPECT_EQ(report.files[0].path, "records/a/train_gpt.py");
    EXPECT_EQ(report.files[1].path, "records/b/train_gpt.py");
    EXPECT_EQ(report.files[2].path, "z_last.py");
    ASSERT_EQ(report.findings.size(), 2u) << summary(report);
    EXPECT_EQ(report.findings[0].file, "records/b/train_gpt.py");
    EXPECT_EQ(report.findings[0].rule, "L6");
    EXPECT_EQ(report.findings[0].line, 32);
    EXPECT_EQ(report.findings[1].file, "z_last.py");
    EXPECT_EQ(report.findings[1].rule, "C3");
    ASSERT_EQ(report.legal.size(), 3u);
    EXPECT_EQ(report.legal[0].file, "records/a/train_gpt.py");
}

TEST(StaticScan, FolderCountsUsesFromImportingScripts) {
    const std::string helper = R"PY(import torch


def adapt_on(model, opt, val_tokens):
    for epoch in range(2):
        loss = model(val_tokens)
        loss.backward()
        opt.step()
)PY";
    TemporaryFolder imported;
    write_text(imported.path("ttt_helpers.py"), helper);
    write_text(imported.path("train_gpt.py"), "from ttt_helpers import adapt_on\n\nadapt_on(model, opt, val_tokens)\n");
    ScanReport report = static_scan_folder(imported.root());
    ScanFinding f = only_finding(report);
    EXPECT_EQ(f.file, "ttt_helpers.py");
    EXPECT_EQ(f.line, 8);
    EXPECT_EQ(f.severity, "fail");
    EXPECT_EQ(f.reachability, "used from another scanned file");

    TemporaryFolder unused;
    write_text(unused.path("ttt_helpers.py"), helper);
    write_text(unused.path("train_gpt.py"), "def main():\n    adapt_on = None\n\nmain()\n");
    ScanFinding g = only_finding(static_scan_folder(unused.root()));
    EXPECT_EQ(g.severity, "info");
    EXPECT_EQ(g.reachability, "never called");
}

TEST(StaticScan, UnreadableFolderThrows) {
    TemporaryFolder folder;
    EXPECT_THROW(static_scan_folder(folder.path("missing")), Error);
    write_text(folder.path("plain.py"), "x = 1\n");
    EXPECT_THROW(static_scan_folder(folder.path("plain.py")), Error);
    std::string message = error_message([&] { static_scan_folder(folder.path("missing")); });
    EXPECT_NE(message.find("missing"), std::string::npos);
    EXPECT_EQ(message.find('\n'), std::string::npos);
}

// --- exec wrappers ----------------------------------------------------------------------------------------------

TEST(StaticScan, LzmaBase85WrapperPayloadIsScanned) {
    std::string payload = read_fixture("prequant_ttt_adamw.py");
    std::string wrapper =
        "import lzma as L,base64 as B\nexec(L.decompress(B.b85decode(\"" + b85_encode(xz_compress(payload)) + "\")))\n";
    ScanReport report = static_scan_source(wrapper, "train_gpt.py");
    ASSERT_EQ(report.files.size(), 1u);
    EXPECT_TRUE(report.files[0].decoded_wrapper);
    EXPECT_EQ(report.files[0].lines, 2);
    EXPECT_EQ(report.files[0].payload_lines, 67);
    ScanFinding f = only_finding(report);
    EXPECT_EQ(f.rule, "L6");
    EXPECT_EQ(f.file, "train_gpt.py (decoded payload)");
    EXPECT_EQ(f.line, 32);
    EXPECT_EQ(f.evidence, "optimizer.step()");
    ASSERT_EQ(report.notes.size(), 1u);
    EXPECT_NE(report.notes[0].find("payload was scanned"), std::string::npos);

    // The same payload base64-encoded, split over adjacent literals.
    std::string b64 = b64_encode(xz_compress(payload));
    std::string half = b64.substr(0, b64.size() / 2);
    std::string rest = b64.substr(b64.size() / 2);
    std::string wrapper64 = "import lzma, base64\nexec(lzma.decompress(base64.b64decode(\n    b'" + half + "'\n    b'" +
                            rest + "'\n)).decode())\n";
    ScanReport report64 = static_scan_source(wrapper64, "train_gpt.py");
    EXPECT_EQ(only_finding(report64).line, 32);
    EXPECT_TRUE(report64.files[0].decoded_wrapper);
}

TEST(StaticScan, RawLzma2WrapperPayloadIsScanned) {
    // wrapper_raw_lzma2.py holds prequant_ttt_adamw.py compressed by Python's
    // lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}]), base85-encoded.
    std::string wrapper = read_fixture("wrapper_raw_lzma2.py");
    ScanReport report = static_scan_source(wrapper, "train_gpt.py");
    ASSERT_EQ(report.files.size(), 1u);
    EXPECT_TRUE(report.files[0].decoded_wrapper);
    EXPECT_EQ(report.files[0].payload_lines, 67);
    ScanFinding f = only_finding(report);
    EXPECT_EQ(f.rule, "L6");
    EXPECT_EQ(f.file, "train_gpt.py (decoded payload)");
    EXPECT_EQ(f.line, 32);
    EXPECT_EQ(f.severity, "fail");
    EXPECT_EQ(f.evidence, "optimizer.step()");
    ASSERT_EQ(report.notes.size(), 1u);
    EXPECT_NE(report.notes[0].find("(raw LZMA2), its payload was scanned"), std::string::npos) << report.notes[0];
    EXPECT_EQ(report.notes[0].find("could not be decoded"), std::string::npos);

    // Without the format keyword the containers are tried in turn (xz, .lzma, raw LZMA2).
    const std::string format = ",format=L.FORMAT_RAW,filters=[{\"id\":L.FILTER_LZMA2}]";
    ASSERT_NE(wrapper.find(format), std::string::npos);
    std::string bare = wrapper;
    bare.erase(bare.find(format), format.size());
    ScanReport guessed = static_scan_source(bare, "train_gpt.py");
    EXPECT_EQ(only_finding(guessed).line, 32);
    EXPECT_TRUE(guessed.files[0].decoded_wrapper);
}

TEST(StaticScan, LegacyLzmaWrapperPayloadIsScanned) {
    // Python: base64.b85encode(lzma.compress(payload, format=lzma.FORMAT_ALONE)) of a short prequant_ttt script
    // whose opt.step() is on line 7.
    const std::string b85 =
        "T>t=p0RR90|NsC0{{S?bN@uuIJahX3D{oi@EpHZ&Kn4jS0$tMC8cfmk?Xau*Mig5G0Xj^Vr!#8qyN=QkW!5tJ;X%{$KxLp%7y@xj&048`"
        "Qhd6Ps3og{mN59o{bbrqVjZbkXuhbu_)^tpKSU}oM9S`(U;N}ezy";
    std::string wrapper =
        "import lzma as L, base64 as B\nexec(L.decompress(B.b85decode(\"" + b85 + "\"), format=L.FORMAT_ALONE))\n";
    ScanReport report = static_scan_source(wrapper, "train_gpt.py");
    ScanFinding f = only_finding(report);
    EXPECT_EQ(f.rule, "L6");
    EXPECT_EQ(f.line, 7);
    EXPECT_EQ(f.evidence, "opt.step()");
    ASSERT_EQ(report.notes.size(), 1u);
    EXPECT_NE(report.notes[0].find("(legacy .lzma)"), std::string::npos) << report.notes[0];
}

TEST(StaticScan, UndecodableWrapperIsNotedAndScannedAsIs) {
    std::vector<std::uint8_t> junk = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    std::string wrapper = "import lzma as L,base64 as B\nexec(L.decompress(B.b85decode(\"" + b85_encode(junk) +
                          "\"),format=L.FORMAT_RAW,filters=[{\"id\":L.FILTER_LZMA2}]))\n";
    ScanReport report = static_scan_source(wrapper, "train_gpt.py");
    EXPECT_TRUE(report.findings.empty()) << summary(report);
    EXPECT_FALSE(report.files[0].decoded_wrapper);
    ASSERT_EQ(report.notes.size(), 1u);
    EXPECT_NE(report.notes[0].find("payload could not be decoded"), std::string::npos);
    EXPECT_NE(report.notes[0].find("raw LZMA2"), std::string::npos);
}

TEST(StaticScan, ReportTextListsFindingsLegalAndNotes) {
    ScanReport report = scan_fixture("ngram_dead_code.py");
    std::string text = static_scan_report_text(report);
    EXPECT_NE(text.find("info L10 ngram_dead_code.py:38"), std::string::npos) << text;
    EXPECT_NE(text.find("behind NGRAM_EVAL_ORDER (default 0)"), std::string::npos);
    EXPECT_EQ(static_scan_count_failures(report), 0);
}

}  // namespace
}  // namespace pgolf
