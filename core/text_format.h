// printf-style formatting into a std::string, for log lines in the reference's exact numeric shapes (%.4f, %.8f, …).
#pragma once

#include <cstdio>
#include <string>

namespace pgolf {

template <typename... Values>
std::string text_format(const char* pattern, Values... values) {
    const int length = std::snprintf(nullptr, 0, pattern, values...);
    if (length <= 0) return {};
    std::string text(static_cast<std::size_t>(length) + 1, '\0');
    std::snprintf(text.data(), text.size(), pattern, values...);
    text.resize(static_cast<std::size_t>(length));
    return text;
}

}  // namespace pgolf
