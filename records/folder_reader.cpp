// One record folder read as a whole: the JSON, every log, the code files, joined per seed, and the findings.
#include "records/folder_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numbers>
#include <set>
#include <sstream>

#include "core/digest.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/text_format.h"

namespace pgolf {

namespace fs = std::filesystem;

namespace {

bool folder_is_code_extension(const std::string& extension) {
    static const char* const extensions[] = {".py", ".c", ".cc", ".cpp", ".cu", ".h", ".hpp", ".cuh", ".sh"};
    return std::any_of(std::begin(extensions), std::end(extensions), [&](const char* e) { return extension == e; });
}

// Folders whose files are not shipped code: hidden folders, Python caches, logs.
bool folder_is_skipped_directory(const std::string& name) {
    return name.empty() || name[0] == '.' || name == "__pycache__" || name == "logs";
}

}  // namespace

std::vector<CodeFile> record_code_files(const std::string& folder) {
    std::vector<CodeFile> files;
    std::error_code error;
    fs::recursive_directory_iterator it(folder, fs::directory_options::skip_permission_denied, error), end;
    if (error) throw Error("cannot list " + folder + ": " + error.message());
    for (; it != end; it.increment(error)) {
        if (error) throw Error("cannot list " + folder + ": " + error.message());
        const fs::path& path = it->path();
        if (it->is_directory(error)) {
            if (folder_is_skipped_directory(path.filename().string())) it.disable_recursion_pending();
            continue;
        }
        if (!it->is_regular_file(error) || !folder_is_code_extension(path.extension().string())) continue;
        files.push_back({fs::relative(path, folder).generic_string(), static_cast<std::int64_t>(it->file_size())});
    }
    std::sort(files.begin(), files.end(), [](const CodeFile& a, const CodeFile& b) { return a.path < b.path; });
    return files;
}

double record_tokens_per_byte(double val_bpb, double val_loss) { return val_bpb * std::numbers::ln2 / val_loss; }

std::optional<double> record_tokenizer_tokens_per_byte(const std::string& tokenizer) {
    if (tokenizer == "sp1024") return 0.41052;
    if (tokenizer == "sp4096") return 0.30123;
    if (tokenizer == "sp8192") return 0.26834;
    if (tokenizer == "caseops") return 0.31674;
    if (tokenizer == "byte") return 1.0;
    return std::nullopt;
}

namespace {

constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
}

bool starts_with_date(const std::string& name) {
    if (name.size() < 10) return false;
    for (int i = 0; i < 10; ++i) {
        const bool dash = i == 4 || i == 7;
        if (dash ? name[i] != '-' : !std::isdigit(static_cast<unsigned char>(name[i]))) return false;
    }
    return true;
}

// Decimal places of the shortest text that reads back as value (1.1228 -> 4): how precisely the author wrote it.
int decimals_of(double value) {
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    const std::string text(buffer, result.ptr);
    if (text.find('e') != std::string::npos) return 8;
    const auto dot = text.find('.');
    return dot == std::string::npos ? 0 : static_cast<int>(text.size() - dot - 1);
}

// The precision a written value is held to: its own decimals, at least 3 (a JSON "1.2100" reads back as 1.21, so
// trailing zeros cannot be seen; real records write 4 or more decimals).
int precision_of(double value) { return std::max(decimals_of(value), 3); }

// Whether a written value is reference rounded or truncated to the digits it was written with. Authors round or
// truncate (10L_Int5MLP writes the mean 1.1427666 as 1.14276), so anything under one unit of the last decimal matches.
bool matches_written(double written, double reference) {
    const double tolerance = std::pow(10.0, -precision_of(written)) + 1e-9;
    return std::fabs(written - reference) < tolerance;
}

// Seed from a log's file name: "seed42", "seed_42", "seed-42", "s42" after a separator or at the start, or a stem
// "train_42" / "train42" / "log_42" / "run_42" / "42" (04-13's logs are train0.txt, train1.txt, ...). Nothing else
// (dates and step counts are not seeds).
std::optional<std::int64_t> seed_from_file_name(const std::string& file_name) {
    const std::string stem = lower(std::filesystem::path(file_name).stem().string());
    auto digits_at = [&](std::size_t i) -> std::optional<std::int64_t> {
        std::size_t j = i;
        while (j < stem.size() && std::isdigit(static_cast<unsigned char>(stem[j]))) ++j;
        if (j == i || j - i > 10) return std::nullopt;
        if (j < stem.size() && std::isalpha(static_cast<unsigned char>(stem[j]))) return std::nullopt;
        return std::stoll(stem.substr(i, j - i));
    };
    for (std::size_t i = 0; i < stem.size(); ++i) {
        const bool boundary = i == 0 || stem[i - 1] == '_' || stem[i - 1] == '-' || stem[i - 1] == '.';
        if (!boundary) continue;
        if (stem.compare(i, 4, "seed") == 0) {
            std::size_t j = i + 4;
            if (j < stem.size() && (stem[j] == '_' || stem[j] == '-' || stem[j] == '=')) ++j;
            if (auto seed = digits_at(j)) return seed;
        } else if (stem[i] == 's' && i + 1 < stem.size() && std::isdigit(static_cast<unsigned char>(stem[i + 1]))) {
            if (auto seed = digits_at(i + 1)) return seed;
        }
    }
    for (const char* prefix : {"train_", "log_", "run_", "train", "log", "run", ""}) {
        const std::string p = prefix;
        if (stem.compare(0, p.size(), p) != 0) continue;
        const std::string rest = stem.substr(p.size());
        if (!rest.empty() && rest.size() <= 10 &&
            std::all_of(rest.begin(), rest.end(), [](unsigned char c) { return std::isdigit(c); }))
            return std::stoll(rest);
    }
    return std::nullopt;
}

// Tokenizer named in a log's text (hyperparameter dumps, data paths), else in the folder name; "" when none.
std::string tokenizer_from_text(const std::string& text) {
    const std::string low = lower(text);
    if (low.find("caseops") != std::string::npos) return "caseops";
    for (const char* key : {"vocab_size:", "vocab_size=", "vocab_size: ", "vocab_size ="}) {
        std::size_t at = 0;
        while ((at = low.find(key, at)) != std::string::npos) {
            std::size_t i = at + std::string(key).size();
            while (i < low.size() && low[i] == ' ') ++i;
            std::size_t j = i;
            while (j < low.size() && std::isdigit(static_cast<unsigned char>(low[j]))) ++j;
            at = j;
            if (j == i) continue;
            const std::string number = low.substr(i, j - i);
            if (number == "1024") return "sp1024";
            if (number == "4096") return "sp4096";
            if (number == "8192") return "sp8192";
            if (number == "256" || number == "260") return "byte";
        }
    }
    for (const auto& [needle, name] :
         std::initializer_list<std::pair<const char*, const char*>>{{"sp8192", "sp8192"},
                                                                    {"8192_bpe", "sp8192"},
                                                                    {"sp4096", "sp4096"},
                                                                    {"4096_bpe", "sp4096"},
                                                                    {"sp1024", "sp1024"},
                                                                    {"1024_bpe", "sp1024"}}) {
        if (low.find(needle) != std::string::npos) return name;
    }
    return "";
}

// The full validation split's token count per tokenizer (COMPLIANCE.md D5).
std::optional<std::int64_t> full_split_tokens(const std::string& tokenizer) {
    if (tokenizer == "sp1024") return 62'021'632;
    if (tokenizer == "sp4096") return 45'508'608;
    if (tokenizer == "sp8192") return 40'540'160;
    if (tokenizer == "caseops") return 47'851'520;
    return std::nullopt;
}

bool is_stdlib_module(const std::string& name) {
    static const std::set<std::string> modules = {"__future__",  "abc",          "argparse",
                                                  "array",       "ast",          "asyncio",
                                                  "atexit",      "base64",       "binascii",
                                                  "bisect",      "builtins",     "bz2",
                                                  "calendar",    "cmath",        "codecs",
                                                  "collections", "concurrent",   "contextlib",
                                                  "copy",        "csv",          "ctypes",
                                                  "dataclasses", "datetime",     "decimal",
                                                  "difflib",     "dis",          "enum",
                                                  "errno",       "faulthandler", "fcntl",
                                                  "filecmp",     "fnmatch",      "fractions",
                                                  "functools",   "gc",           "getpass",
                                                  "glob",        "gzip",         "hashlib",
                                                  "heapq",       "hmac",         "html",
                                                  "http",        "importlib",    "inspect",
                                                  "io",          "itertools",    "json",
                                                  "keyword",     "linecache",    "locale",
                                                  "logging",     "lzma",         "marshal",
                                                  "math",        "mmap",         "multiprocessing",
                                                  "numbers",     "operator",     "os",
                                                  "pathlib",     "pickle",       "platform",
                                                  "pprint",      "queue",        "random",
                                                  "re",          "resource",     "secrets",
                                                  "select",      "shlex",        "shutil",
                                                  "signal",      "socket",       "sqlite3",
                                                  "stat",        "statistics",   "string",
                                                  "struct",      "subprocess",   "sys",
                                                  "sysconfig",   "tarfile",      "tempfile",
                                                  "textwrap",    "threading",    "time",
                                                  "timeit",      "token",        "tokenize",
                                                  "traceback",   "types",        "typing",
                                                  "unicodedata", "unittest",     "urllib",
                                                  "uuid",        "warnings",     "weakref",
                                                  "zipfile",     "zlib"};
    return modules.count(name) > 0;
}

// What the challenge's own requirements.txt already installs: importing these needs no requirements.txt of one's own.
bool is_base_environment_module(const std::string& name) {
    static const std::set<std::string> modules = {"torch",           "numpy",    "sentencepiece", "tqdm",
                                                  "huggingface_hub", "kernels",  "setuptools",    "typing_extensions",
                                                  "datasets",        "tiktoken", "triton"};
    return modules.count(name) > 0;
}

// Top-level modules imported by Python source at the start of a line (any indentation): "import a.b as c, d" and
// "from a.b import c"; relative imports are local.
void collect_imports(const std::string& text, std::set<std::string>& modules) {
    std::istringstream in(text);
    std::string line;
    auto take_name = [](const std::string& s, std::size_t i) {
        std::size_t j = i;
        while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
        return s.substr(i, j - i);
    };
    while (std::getline(in, line)) {
        std::size_t i = line.find_first_not_of(" \t");
        if (i == std::string::npos) continue;
        if (line.compare(i, 5, "from ") == 0) {
            i += 5;
            while (i < line.size() && line[i] == ' ') ++i;
            if (i < line.size() && line[i] == '.') continue;
            const std::string name = take_name(line, i);
            if (!name.empty() && line.find(" import", i) != std::string::npos) modules.insert(name);
        } else if (line.compare(i, 7, "import ") == 0) {
            std::string rest = line.substr(i + 7);
            std::istringstream parts(rest);
            std::string part;
            while (std::getline(parts, part, ',')) {
                const std::size_t k = part.find_first_not_of(" \t(");
                if (k == std::string::npos) continue;
                const std::string name = take_name(part, k);
                if (!name.empty()) modules.insert(name);
            }
        }
    }
}

bool is_log_candidate(const std::filesystem::path& path) {
    const std::string extension = lower(path.extension().string());
    const std::string name = lower(path.filename().string());
    if (extension == ".log") return true;
    return extension == ".txt" && name != "requirements.txt" && name.rfind("readme", 0) != 0;
}

// A .txt counts as a log only when the log reader finds something in it (a metric, a seed, a size, a stop line).
bool looks_like_log(const LogFacts& facts) {
    return !facts.metrics.empty() || facts.seed || facts.total_bytes || facts.stop_step || facts.train_time_ms;
}

class FindingList {
public:
    explicit FindingList(std::vector<RecordFinding>& findings) : findings_(findings) {}
    void add(const char* kind, const char* rule, const char* severity, std::string message, std::string evidence = "") {
        findings_.push_back({kind, rule, severity, std::move(message), std::move(evidence)});
    }

private:
    std::vector<RecordFinding>& findings_;
};

std::string at_line(const std::string& path, std::int64_t line) { return path + ":" + std::to_string(line); }

void read_files(RecordFolderFacts& facts) {
    namespace fs = std::filesystem;
    std::error_code error;
    fs::recursive_directory_iterator it(facts.folder, fs::directory_options::skip_permission_denied, error), end;
    if (error) throw Error("cannot list " + facts.folder + ": " + error.message());
    for (; it != end; it.increment(error)) {
        if (error) throw Error("cannot list " + facts.folder + ": " + error.message());
        const std::string name = it->path().filename().string();
        if (it->is_directory(error)) {
            if (!name.empty() && (name[0] == '.' || name == "__pycache__")) it.disable_recursion_pending();
            continue;
        }
        if (it->is_regular_file(error)) facts.files.push_back(fs::relative(it->path(), facts.folder).generic_string());
    }
    std::sort(facts.files.begin(), facts.files.end());
}

void read_logs(RecordFolderFacts& facts, std::string& tokenizer_text) {
    std::map<std::string, std::string> first_with_digest;
    for (const std::string& relative : facts.files) {
        const std::filesystem::path path(relative);
        if (!is_log_candidate(path)) continue;
        const std::string full = (std::filesystem::path(facts.folder) / path).string();
        const std::string text = file_read_text(full);
        FolderLog log;
        log.path = relative;
        log.bytes = static_cast<std::int64_t>(text.size());
        log.sha256 = digest_sha256_hex(std::string_view(text));
        log.facts = log_read_text(text, relative);
        if (lower(path.extension().string()) != ".log" && !looks_like_log(log.facts)) continue;
        log.name_seed = seed_from_file_name(path.filename().string());
        if (log.facts.seed) {
            log.seed = log.facts.seed;
            log.seed_from = at_line(relative, log.facts.seed_line);
        } else if (log.name_seed) {
            log.seed = log.name_seed;
            log.seed_from = relative + " (file name)";
        }
        const auto [it, inserted] = first_with_digest.emplace(log.sha256, relative);
        if (!inserted) log.duplicate_of = it->second;
        if (tokenizer_text.size() < (std::size_t{1} << 24)) tokenizer_text += text.substr(0, 1 << 20);
        facts.logs.push_back(std::move(log));
    }
}

void join_seeds(RecordFolderFacts& facts, FindingList& found) {
    std::map<std::int64_t, int> log_of_seed;
    std::vector<FolderSeed> unseeded;
    for (std::size_t i = 0; i < facts.logs.size(); ++i) {
        const FolderLog& log = facts.logs[i];
        if (!log.duplicate_of.empty()) continue;
        if (log.seed) {
            const auto [it, inserted] = log_of_seed.emplace(*log.seed, static_cast<int>(i));
            if (!inserted) {
                found.add("duplicate_log", "S5", "warn",
                          "two different logs report seed " + std::to_string(*log.seed) + "; " +
                              facts.logs[it->second].path + " is used, " + log.path + " is not",
                          log.seed_from);
            }
        } else {
            FolderSeed seed;
            seed.log = static_cast<int>(i);
            unseeded.push_back(seed);
        }
    }
    std::map<std::int64_t, FolderSeed> seeds;
    for (const auto& [value, index] : log_of_seed) {
        FolderSeed seed;
        seed.seed = value;
        seed.log = index;
        seeds[value] = seed;
    }
    if (facts.submission) {
        const auto& listed = facts.submission->seeds;
        for (std::size_t j = 0; j < listed.size(); ++j) {
            if (!listed[j].seed) continue;
            FolderSeed& seed = seeds[*listed[j].seed];
            seed.seed = listed[j].seed;
            if (seed.json < 0) seed.json = static_cast<int>(j);
        }
    }
    // A log that names no seed anywhere is the JSON's seed whose per-seed value it prints, when exactly one JSON-only
    // seed has that value (04-13: train0.txt ... with seed_results keyed "0" ...); otherwise it stays a seed of its
    // own.
    std::vector<FolderSeed> still_unseeded;
    for (FolderSeed& orphan : unseeded) {
        FolderLog& log = facts.logs[orphan.log];
        const LogMetric* metric = log_headline_metric(log.facts);
        FolderSeed* match = nullptr;
        int matches = 0;
        for (auto& [value, seed] : seeds) {
            if (metric == nullptr || seed.log >= 0 || seed.json < 0) continue;
            const auto& written = facts.submission->seeds[seed.json].val_bpb.value;
            if (written && matches_written(*written, metric->val_bpb)) {
                match = &seed;
                ++matches;
            }
        }
        if (matches == 1) {
            match->log = orphan.log;
            log.seed = match->seed;
            log.seed_from = std::filesystem::path(facts.submission->path).filename().string() + ":" +
                            facts.submission->seeds[match->json].val_bpb.from.key + " (matched by value)";
        } else {
            still_unseeded.push_back(orphan);
        }
    }
    facts.seeds.clear();
    for (auto& [value, seed] : seeds) facts.seeds.push_back(seed);
    for (auto& seed : still_unseeded) facts.seeds.push_back(seed);

    for (FolderSeed& seed : facts.seeds) {
        seed.val_bpb = nan_value;
        seed.val_loss = nan_value;
        if (seed.log >= 0) {
            const FolderLog& log = facts.logs[seed.log];
            if (const LogMetric* metric = log_headline_metric(log.facts)) {
                seed.val_bpb = metric->val_bpb;
                seed.val_loss = metric->val_loss;
                seed.family = metric->family;
                seed.eval_mode = metric->eval_mode;
                seed.from = at_line(log.path, metric->line);
                if (!log.facts.total_eval_time_s && metric->eval_time_ms)
                    seed.eval_time_s = *metric->eval_time_ms / 1e3;
            }
            if (log.facts.total_bytes) seed.total_bytes = log.facts.total_bytes;
            seed.train_time_ms = log.facts.train_time_ms;
            if (log.facts.total_eval_time_s) seed.eval_time_s = log.facts.total_eval_time_s;
        }
        if (seed.json >= 0) {
            const SubmissionSeed& entry = facts.submission->seeds[seed.json];
            if (std::isnan(seed.val_bpb) && entry.val_bpb.value) {
                seed.val_bpb = *entry.val_bpb.value;
                seed.val_loss = entry.val_loss.value.value_or(nan_value);
                seed.family = "json";
                seed.from =
                    std::filesystem::path(entry.val_bpb.from.file).filename().string() + ":" + entry.val_bpb.from.key;
            }
            if (!seed.total_bytes && entry.artifact_bytes.value) {
                seed.total_bytes = entry.artifact_bytes.value;
                seed.from_json.push_back("total_bytes");
            }
            if (!seed.train_time_ms && entry.train_time_s.value) {
                seed.train_time_ms = *entry.train_time_s.value * 1e3;
                seed.from_json.push_back("train_time");
            }
            if (!seed.eval_time_s && entry.eval_time_s.value) {
                seed.eval_time_s = entry.eval_time_s.value;
                seed.from_json.push_back("eval_time");
            }
        }
    }
}

void compute_statistics(RecordFolderFacts& facts) {
    std::vector<double> bpb, loss;
    for (const FolderSeed& seed : facts.seeds) {
        if (std::isnan(seed.val_bpb)) continue;
        bpb.push_back(seed.val_bpb);
        if (!std::isnan(seed.val_loss)) loss.push_back(seed.val_loss);
    }
    facts.seed_count = static_cast<int>(bpb.size());
    auto mean = [](const std::vector<double>& v) {
        double sum = 0.0;
        for (double x : v) sum += x;
        return v.empty() ? nan_value : sum / static_cast<double>(v.size());
    };
    facts.mean_bpb = mean(bpb);
    facts.mean_loss = loss.size() == bpb.size() ? mean(loss) : nan_value;
    facts.std_bpb = nan_value;
    if (bpb.size() >= 2) {
        double squares = 0.0;
        for (double x : bpb) squares += (x - facts.mean_bpb) * (x - facts.mean_bpb);
        facts.std_bpb = std::sqrt(squares / static_cast<double>(bpb.size() - 1));
    }
}

void check_required_files(const RecordFolderFacts& facts, FindingList& found) {
    bool readme = false, requirements = false, train_gpt = false, train_gpt_empty = false;
    for (const std::string& file : facts.files) {
        const std::string low = lower(file);
        if (low == "readme.md") readme = true;
        if (low == "requirements.txt") requirements = true;
        if (file.find('/') == std::string::npos && file.rfind("train_gpt", 0) == 0 && file.size() > 3 &&
            file.substr(file.size() - 3) == ".py") {
            const auto size = std::filesystem::file_size(std::filesystem::path(facts.folder) / file);
            (size > 0 ? train_gpt : train_gpt_empty) = true;
        }
    }
    if (!readme) found.add("missing_file", "F1", "fail", "no README.md");
    if (!facts.submission) found.add("missing_file", "F1", "fail", "no submission.json (nor any submission*.json)");
    const bool any_log = record_unique_log_count(facts) > 0;
    if (!any_log) found.add("missing_file", "F1", "fail", "no training log: nothing backs the reported score");
    if (!train_gpt) {
        found.add("missing_file", "F1", "fail",
                  train_gpt_empty ? "train_gpt.py is empty" : "no train_gpt.py (the script that produced the record)");
    }
    std::vector<std::string> extra;
    for (const std::string& module : facts.third_party_imports) {
        if (!is_base_environment_module(module)) extra.push_back(module);
    }
    if (!extra.empty() && !requirements) {
        std::string list;
        for (const std::string& module : extra) list += (list.empty() ? "" : ", ") + module;
        found.add(
            "requirements", "F2", "warn",
            "the scripts import " + list + " (not in the challenge's environment) and there is no requirements.txt");
    }
}

// The JSON headline weighed against the logs, and against the JSON's own per-seed values.
void check_headline(const RecordFolderFacts& facts, FindingList& found) {
    if (!facts.submission || !facts.submission->val_bpb.value) return;
    const double headline = *facts.submission->val_bpb.value;
    const std::string file = std::filesystem::path(facts.submission->path).filename().string();
    const std::string key_evidence = file + ":" + facts.submission->val_bpb.from.key;

    // Against the JSON's own per-seed values.
    std::vector<double> json_values;
    for (const SubmissionSeed& seed : facts.submission->seeds) {
        if (seed.val_bpb.value) json_values.push_back(*seed.val_bpb.value);
    }
    if (json_values.size() >= 2) {
        double sum = 0.0;
        for (double x : json_values) sum += x;
        const double mean = sum / static_cast<double>(json_values.size());
        if (!matches_written(headline, mean)) {
            const double best = *std::min_element(json_values.begin(), json_values.end());
            found.add("mean_mismatch", "S6", "warn",
                      "the headline " + format_fixed(headline, precision_of(headline)) + " is not the mean " +
                          format_fixed(mean, 8) + " of the JSON's " + std::to_string(json_values.size()) +
                          " per-seed values" + (matches_written(headline, best) ? " (it is the best seed)" : ""),
                      key_evidence);
        }
    }

    // Against the logs.
    std::vector<const FolderSeed*> backed;
    for (const FolderSeed& seed : facts.seeds) {
        if (seed.log >= 0 && !std::isnan(seed.val_bpb) && seed.family != "json") backed.push_back(&seed);
    }
    if (backed.empty()) {
        // No log at all is a missing file; logs that print no final score back nothing (DGAttention's JSON headline is
        // an in-training validation line).
        const bool any_log = record_unique_log_count(facts) > 0;
        if (any_log) {
            found.add("headline_unbacked", "S6", "fail",
                      "the headline " + format_fixed(headline, precision_of(headline)) +
                          " is not backed by the logs: none of them prints a final score",
                      key_evidence);
        }
        return;
    }
    double sum = 0.0;
    for (const FolderSeed* seed : backed) sum += seed->val_bpb;
    const double log_mean = sum / static_cast<double>(backed.size());
    if (matches_written(headline, log_mean)) return;
    for (const FolderSeed* seed : backed) {
        if (matches_written(headline, seed->val_bpb)) {
            const bool best = std::all_of(backed.begin(), backed.end(),
                                          [&](const FolderSeed* other) { return other->val_bpb >= seed->val_bpb; });
            if (backed.size() == 1) return;
            found.add("headline_not_mean", "S6", "warn",
                      "the headline " + format_fixed(headline, precision_of(headline)) + " is " +
                          (best ? "the best seed's score" : "one seed's score") + ", not the mean " +
                          format_fixed(log_mean, 8) + " of the " + std::to_string(backed.size()) + " logged seeds",
                      seed->from);
            return;
        }
    }
    // Another family: the same family in every log averages to the headline, or one log's family equals it.
    std::map<std::string, std::vector<double>> by_family;
    for (const FolderSeed* seed : backed) {
        for (const LogMetric& metric : facts.logs[seed->log].facts.metrics) {
            if (!std::isnan(metric.val_bpb)) by_family[metric.family].push_back(metric.val_bpb);
        }
    }
    for (const auto& [family, values] : by_family) {
        double family_sum = 0.0;
        for (double x : values) family_sum += x;
        const double family_mean = family_sum / static_cast<double>(values.size());
        const bool is_mean = values.size() == backed.size() && matches_written(headline, family_mean);
        const bool is_one =
            std::any_of(values.begin(), values.end(), [&](double x) { return matches_written(headline, x); });
        if (is_mean || is_one) {
            found.add("headline_not_mean", "S6", "warn",
                      "the headline " + format_fixed(headline, precision_of(headline)) + " is the " + family +
                          (is_mean ? " mean" : " score of one log") + ", not the scored family (" +
                          backed.front()->family + ", mean " + format_fixed(log_mean, 8) + ")",
                      key_evidence);
            return;
        }
    }
    found.add("headline_unbacked", "S6", "fail",
              "the headline " + format_fixed(headline, precision_of(headline)) +
                  " is not backed by the logs: their mean is " + format_fixed(log_mean, 8) + " over " +
                  std::to_string(backed.size()) + " seeds and no seed or metric family gives it",
              key_evidence);
}

void check_seeds(const RecordFolderFacts& facts, FindingList& found) {
    for (const FolderLog& log : facts.logs) {
        if (!log.duplicate_of.empty()) {
            found.add("duplicate_log", "S5", "info",
                      log.path + " is identical to " + log.duplicate_of + ": counted once", log.path);
            continue;
        }
        if (log.name_seed && log.facts.seed && *log.name_seed != *log.facts.seed) {
            found.add("seed_mismatch", "S5", "fail",
                      log.path + " is labelled seed " + std::to_string(*log.name_seed) + " but prints seed " +
                          std::to_string(*log.facts.seed),
                      log.seed_from);
        }
        if (log.facts.runs_appended > 1) {
            found.add("runs_appended", "S5", "info",
                      log.path + " holds " + std::to_string(log.facts.runs_appended) + " runs; the last is used",
                      log.path);
        }
        for (const std::string& note : log.facts.notes)
            found.add("log_note", "", "info", log.path + ": " + note, log.path);
    }
    const bool any_log = record_unique_log_count(facts) > 0;
    for (const FolderSeed& seed : facts.seeds) {
        if (seed.json < 0) continue;
        const SubmissionSeed& entry = facts.submission->seeds[seed.json];
        const std::string key = std::filesystem::path(facts.submission->path).filename().string() + ":" +
                                (entry.val_bpb.value ? entry.val_bpb.from.key : "seeds");
        if (seed.log < 0) {
            if (any_log) {
                found.add("seed_without_log", "S5", "warn",
                          "seed " + entry.label + " is reported in the JSON but no log prints it", key);
            }
            continue;
        }
        if (!entry.val_bpb.value || seed.family == "json" || std::isnan(seed.val_bpb)) continue;
        if (matches_written(*entry.val_bpb.value, seed.val_bpb)) continue;
        std::string other;
        for (const LogMetric& metric : facts.logs[seed.log].facts.metrics) {
            if (matches_written(*entry.val_bpb.value, metric.val_bpb)) other = metric.family;
        }
        found.add("seed_value_mismatch", "S6", other.empty() ? "warn" : "info",
                  "seed " + entry.label + ": the JSON says " +
                      format_fixed(*entry.val_bpb.value, precision_of(*entry.val_bpb.value)) + ", its log's " +
                      seed.family + " is " + format_fixed(seed.val_bpb, 8) +
                      (other.empty() ? "" : " (the JSON value is the log's " + other + ")"),
                  seed.from);
    }
    // Evidence is a log: seeds the JSON alone reports do not count towards the three.
    const auto logged = std::count_if(facts.seeds.begin(), facts.seeds.end(), [](const FolderSeed& seed) {
        return seed.log >= 0 && !std::isnan(seed.val_bpb);
    });
    if (logged < 3) {
        found.add("too_few_seeds", "S1", record_is_record_track(facts.track) ? "warn" : "info",
                  std::to_string(logged) + " seed" + (logged == 1 ? "" : "s") +
                      " with a scored log; records need at least 3 from one config");
    }
}

// S2: every seed from one config. The logs of one script print the same code size and the same planned step count;
// a seed whose log differs in either ran something else.
void check_one_config(const RecordFolderFacts& facts, FindingList& found) {
    auto compare = [&](const char* what, auto value_of) {
        const FolderLog* first = nullptr;
        for (const FolderLog& log : facts.logs) {
            if (!log.duplicate_of.empty() || !value_of(log)) continue;
            if (!first) {
                first = &log;
            } else if (*value_of(log) != *value_of(*first)) {
                found.add("config_mismatch", "S2", "warn",
                          log.path + " prints " + what + " " + std::to_string(*value_of(log)) + ", " + first->path +
                              " " + std::to_string(*value_of(*first)) + ": the seeds may not come from one config",
                          log.path);
                return;
            }
        }
    };
    compare("code size", [](const FolderLog& log) { return log.facts.code_bytes; });
    compare("planned steps", [](const FolderLog& log) { return log.facts.iterations; });
}

void check_bytes(const RecordFolderFacts& facts, FindingList& found) {
    std::vector<std::int64_t> totals, models;
    for (const FolderLog& log : facts.logs) {
        if (!log.duplicate_of.empty()) continue;
        if (log.facts.total_bytes) {
            totals.push_back(*log.facts.total_bytes);
            if (*log.facts.total_bytes > record_artifact_cap_bytes) {
                found.add("over_cap", "A1", "fail",
                          log.path + " prints a compressed total of " + format_count(*log.facts.total_bytes) +
                              " bytes, over the 16,000,000 cap by " +
                              format_count(*log.facts.total_bytes - record_artifact_cap_bytes),
                          at_line(log.path, log.facts.total_bytes_line));
            }
        }
        if (log.facts.model_bytes) {
            models.push_back(*log.facts.model_bytes);
        } else if (log.facts.total_bytes && log.facts.code_bytes) {
            models.push_back(*log.facts.total_bytes - *log.facts.code_bytes);
        }
    }
    if (facts.submission) {
        for (const SubmissionSeed& seed : facts.submission->seeds) {
            if (seed.artifact_bytes.value && *seed.artifact_bytes.value > record_artifact_cap_bytes) {
                found.add("over_cap", "A1", "fail",
                          "seed " + seed.label + " reports " + format_count(*seed.artifact_bytes.value) +
                              " artifact bytes, over the 16,000,000 cap",
                          std::filesystem::path(seed.artifact_bytes.from.file).filename().string() + ":" +
                              seed.artifact_bytes.from.key);
            }
        }
    }
    if (!facts.submission || !facts.submission->bytes_total.value || totals.empty()) return;
    const std::int64_t claimed = *facts.submission->bytes_total.value;
    const std::string evidence = std::filesystem::path(facts.submission->path).filename().string() + ":" +
                                 facts.submission->bytes_total.from.key;
    auto mean_of = [](const std::vector<std::int64_t>& v) {
        double sum = 0.0;
        for (auto x : v) sum += static_cast<double>(x);
        return sum / static_cast<double>(v.size());
    };
    auto matches = [&](const std::vector<std::int64_t>& v) {
        if (v.empty()) return false;
        if (std::find(v.begin(), v.end(), claimed) != v.end()) return true;
        return std::fabs(mean_of(v) - static_cast<double>(claimed)) <= 1.0 ||
               *std::max_element(v.begin(), v.end()) == claimed;
    };
    if (matches(totals)) return;
    const std::int64_t low = *std::min_element(totals.begin(), totals.end());
    const std::int64_t high = *std::max_element(totals.begin(), totals.end());
    const std::string range = format_count(low) + (low == high ? "" : "-" + format_count(high));
    if (matches(models)) {
        found.add("model_only_bytes", "A5", high > record_artifact_cap_bytes ? "fail" : "warn",
                  "the JSON's bytes " + format_count(claimed) + " count the model only; with the code the logs print " +
                      range + " bytes",
                  evidence);
        return;
    }
    found.add("bytes_disagree", "A9", "info",
              "the JSON's bytes " + format_count(claimed) + " are none of the logs' totals (" + range +
                  ") nor their mean or maximum",
              evidence);
}

void check_times(const RecordFolderFacts& facts, FindingList& found) {
    if (!record_is_record_track(facts.track)) return;
    for (const FolderLog& log : facts.logs) {
        if (!log.duplicate_of.empty()) continue;
        const LogFacts& f = log.facts;
        if (f.train_time_ms) {
            // The loop stops at the first step boundary past the cap, and the timer adds its synchronize overhead
            // (COMPLIANCE.md T2; merged records log up to 600,137 ms).
            const double tolerance = f.step_avg_ms.value_or(0.0) + record_train_overhead_ms;
            if (*f.train_time_ms > record_train_cap_ms + tolerance) {
                found.add("train_over_cap", "T1", "fail",
                          log.path + " trained " + format_fixed(*f.train_time_ms, 0) +
                              " ms, over 600,000 ms by more than one step and the timer's overhead (" +
                              format_fixed(tolerance, 1) + " ms)",
                          log.path);
            }
        }
        // The timed evaluation: total_eval_time when the log prints it, else the scored line's own eval_time.
        const LogMetric* headline = log_headline_metric(f);
        if (f.total_eval_time_s && *f.total_eval_time_s > record_eval_cap_s) {
            found.add("eval_over_cap", "E1", "fail",
                      log.path + " evaluated for " + format_fixed(*f.total_eval_time_s, 1) + " s, over 600 s",
                      log.path);
        } else if (!f.total_eval_time_s && headline && headline->eval_time_ms &&
                   *headline->eval_time_ms > record_eval_cap_s * 1e3) {
            found.add("eval_over_cap", "E1", "fail",
                      log.path + ": the " + headline->family + " evaluation took " +
                          format_fixed(*headline->eval_time_ms / 1e3, 1) + " s, over 600 s",
                      at_line(log.path, headline->line));
        }
    }
}

void check_tokenizer(const RecordFolderFacts& facts, FindingList& found) {
    const std::optional<double> constant = record_tokenizer_tokens_per_byte(facts.tokenizer);
    constexpr double relative_tolerance = 0.002;
    for (const FolderLog& log : facts.logs) {
        if (!log.duplicate_of.empty()) continue;
        const LogMetric* metric = log_headline_metric(log.facts);
        if (metric && metric->val_loss > 0.0 && std::isfinite(metric->val_loss)) {
            const double ratio = record_tokens_per_byte(metric->val_bpb, metric->val_loss);
            const std::string evidence = at_line(log.path, metric->line);
            if (constant) {
                if (std::fabs(ratio / *constant - 1.0) > relative_tolerance) {
                    found.add("tokens_per_byte", "K6", "warn",
                              log.path + ": val_bpb*ln2/val_loss = " + format_fixed(ratio, 5) + ", not the " +
                                  facts.tokenizer + " constant " + format_fixed(*constant, 5),
                              evidence);
                }
            } else {
                bool any = false;
                for (const char* name : {"sp1024", "sp4096", "sp8192", "caseops", "byte"}) {
                    any = any || std::fabs(ratio / *record_tokenizer_tokens_per_byte(name) - 1.0) <= relative_tolerance;
                }
                if (!any) {
                    found.add("tokens_per_byte", "K6", "warn",
                              log.path + ": val_bpb*ln2/val_loss = " + format_fixed(ratio, 5) +
                                  " matches no known tokenizer's constant",
                              evidence);
                }
            }
        }
        const auto expected = full_split_tokens(facts.tokenizer);
        if (expected && log.facts.val_tokens &&
            std::fabs(static_cast<double>(*log.facts.val_tokens) / static_cast<double>(*expected) - 1.0) > 0.001) {
            found.add("val_tokens", "D5", "warn",
                      log.path + " scores " + format_count(*log.facts.val_tokens) + " validation tokens; the full " +
                          facts.tokenizer + " split is " + format_count(*expected),
                      log.path);
        }
    }
}

}  // namespace

bool record_is_record_track(const std::string& track) {
    return track.find("non") == std::string::npos && track.find("unlimited") == std::string::npos;
}

int record_unique_log_count(const RecordFolderFacts& facts) {
    return static_cast<int>(std::count_if(facts.logs.begin(), facts.logs.end(),
                                          [](const FolderLog& log) { return log.duplicate_of.empty(); }));
}

RecordFolderFacts record_folder_read(const std::string& folder) {
    namespace fs = std::filesystem;
    std::error_code error;
    if (!fs::is_directory(folder, error)) throw Error("not a record folder (no such directory): " + folder);
    RecordFolderFacts facts;
    facts.folder = folder;
    fs::path path = fs::path(folder).lexically_normal();
    if (path.filename().empty()) path = path.parent_path();
    facts.name = path.filename().string();
    const std::string parent = path.parent_path().filename().string();
    read_files(facts);
    if (const auto json = submission_find(folder)) facts.submission = submission_read_variant(*json);
    // The directory decides the track (the JSON key is absent in most files and spelled four ways in the rest).
    facts.track = parent.rfind("track_", 0) == 0 ? parent : "";
    if (facts.track.empty() && facts.submission && facts.submission->track.value &&
        !facts.submission->track.value->empty()) {
        facts.track = "track_" + *facts.submission->track.value;
        std::replace(facts.track.begin(), facts.track.end(), '-', '_');
    }
    if (facts.submission && facts.submission->date.value) facts.date = *facts.submission->date.value;
    if (facts.date.empty() && starts_with_date(facts.name)) facts.date = facts.name.substr(0, 10);

    std::string tokenizer_text;
    read_logs(facts, tokenizer_text);
    facts.tokenizer = tokenizer_from_text(tokenizer_text);
    if (facts.tokenizer.empty()) facts.tokenizer = tokenizer_from_text(facts.name);

    facts.code_files = record_code_files(folder);
    std::set<std::string> modules, local;
    for (const CodeFile& code : facts.code_files) {
        facts.code_bytes += code.bytes;
        const fs::path code_path(code.path);
        local.insert(code_path.stem().string());
        if (code_path.has_parent_path()) local.insert(code_path.begin()->string());
        if (code_path.extension() == ".py")
            collect_imports(file_read_text((fs::path(folder) / code_path).string()), modules);
    }
    for (const std::string& module : modules) {
        if (!is_stdlib_module(module) && !local.count(module)) facts.third_party_imports.push_back(module);
    }

    FindingList found(facts.findings);
    join_seeds(facts, found);
    compute_statistics(facts);
    check_required_files(facts, found);
    check_headline(facts, found);
    check_seeds(facts, found);
    check_one_config(facts, found);
    check_bytes(facts, found);
    check_times(facts, found);
    check_tokenizer(facts, found);
    if (facts.submission) {
        const std::string file = fs::path(facts.submission->path).filename().string();
        for (const std::string& note : facts.submission->notes)
            found.add("json_note", "", "info", file + ": " + note, file);
    }
    return facts;
}

std::vector<std::string> record_tree_folders(const std::string& root) {
    namespace fs = std::filesystem;
    std::error_code error;
    if (!fs::is_directory(root, error)) throw Error("not a records tree (no such directory): " + root);
    fs::path base = fs::path(root).lexically_normal();
    if (base.filename().empty()) base = base.parent_path();
    std::vector<fs::path> tracks;
    if (base.filename().string().rfind("track_", 0) == 0) {
        tracks.push_back(base);
    } else {
        for (const auto& entry : fs::directory_iterator(base, error)) {
            if (entry.is_directory() && entry.path().filename().string().rfind("track_", 0) == 0)
                tracks.push_back(entry.path());
        }
        if (error) throw Error("cannot list " + root + ": " + error.message());
    }
    std::vector<std::string> folders;
    for (const fs::path& track : tracks) {
        for (const auto& entry : fs::directory_iterator(track, error)) {
            const std::string name = entry.path().filename().string();
            if (entry.is_directory() && !name.empty() && name[0] != '.') folders.push_back(entry.path().string());
        }
        if (error) throw Error("cannot list " + track.string() + ": " + error.message());
    }
    std::sort(folders.begin(), folders.end());
    return folders;
}

}  // namespace pgolf
