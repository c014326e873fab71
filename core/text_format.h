// Text formatting of numbers: printf-style into a std::string, for log lines in the reference's exact numeric shapes
// (%.4f, %.8f, …), and the shapes reports print (thousands separators, fixed decimals).
#pragma once

#include <cstdint>
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

std::string format_count(std::int64_t value);          // 1234567 -> "1,234,567"
std::string format_fixed(double value, int decimals);  // "%.*f"

}  // namespace pgolf
