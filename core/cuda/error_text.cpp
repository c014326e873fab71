// Formats failed CUDA-family calls into one-line pgolf::Error messages (see error_text.h).
#include "core/cuda/error_text.h"

#include <string_view>

#include "core/error.h"

namespace pgolf {

namespace {

// __FILE__ is absolute in CMake builds; the part from the first engine folder on is what a reader can open.
std::string_view cuda_error_short_path(std::string_view file) {
    for (const std::string_view folder : {"/core/", "/model/", "/tests/", "/cli/", "/audit/"}) {
        const std::size_t at = file.rfind(folder);
        if (at != std::string_view::npos) return file.substr(at + 1);
    }
    return file;
}

}  // namespace

std::string cuda_error_message(const char* library, const std::string& status, const char* expression, const char* file,
                               int line) {
    return std::string(library) + " error: " + status + " in " + expression + " at " +
           std::string(cuda_error_short_path(file)) + ":" + std::to_string(line);
}

void cuda_throw_error(const char* library, const std::string& status, const char* expression, const char* file,
                      int line) {
    throw Error(cuda_error_message(library, status, expression, file, line));
}

}  // namespace pgolf
