// Library-boundary error type: every failure the user can cause (bad file, bad flag, bad data) is a pgolf::Error whose
// message is one complete line naming the thing at fault, so the CLI can print it as is and exit non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace pgolf {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace pgolf
