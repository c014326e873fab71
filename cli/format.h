// Number formatting for terminal output (thousands separators, fixed decimals).
#pragma once

#include <cstdint>
#include <string>

namespace pgolf {

std::string format_count(std::int64_t value);  // 1234567 -> "1,234,567"
std::string format_fixed(double value, int decimals);

}  // namespace pgolf
