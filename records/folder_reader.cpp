// One record folder read as a whole: the JSON, every log, the code files, joined per seed, and the findings.
#include "records/folder_reader.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numbers>

#include "core/error.h"

namespace pgolf {

namespace fs = std::filesystem;

namespace {

bool folder_is_code_extension(const std::string& extension) {
    static const char* const extensions[] = {".py", ".c", ".cc", ".cpp", ".cu", ".h", ".hpp", ".cuh", ".sh"};
    return std::any_of(std::begin(extensions), std::end(extensions),
                       [&](const char* e) { return extension == e; });
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

}  // namespace pgolf
