// Test helpers: repository paths and self-cleaning temporary folders.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pgolf::test {

// Absolute path of a file in the source tree, e.g. test_source_path("data/tokenizers/fineweb_1024_bpe.model").
std::string test_source_path(const std::string& relative);

// Path of a file written by the Python reference fixture (tests/tools/sp_reference.py) in the folder named by the
// PGOLF_REFERENCE_DIR environment variable, which CTest sets; empty when the variable is unset (a direct run).
std::string test_reference_path(const std::string& name);

// A fresh folder under the system temp dir, removed with everything in it when the object dies.
class TemporaryFolder {
public:
    TemporaryFolder();
    ~TemporaryFolder();
    TemporaryFolder(const TemporaryFolder&) = delete;
    TemporaryFolder& operator=(const TemporaryFolder&) = delete;
    std::string path(const std::string& name) const { return root_ + "/" + name; }
    const std::string& root() const { return root_; }

private:
    std::string root_;
};

// Largest |a − b| over the elements; infinity when the shapes differ.
double max_abs_difference(const Tensor& a, const Tensor& b);
// A string test parameter as a GoogleTest name ("s1-recursive-4b7l" -> "s1_recursive_4b7l").
std::string test_param_name(const ::testing::TestParamInfo<const char*>& info);
// Same shape, dtype and bytes.
bool bitwise_equal(const Tensor& a, const Tensor& b);
// The message of the pgolf::Error that call throws, or "(no error)".
std::string error_message(const std::function<void()>& call);
// Flat index into a contiguous (B, H, T, Dh) tensor.
std::int64_t index4(const Tensor& t, std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t d);
// Copies KV head h / group into head h (torch's repeat_interleave layout for GQA): (B, Hkv, T, Dh) -> (B, Hkv·group, T,
// Dh).
Tensor repeat_kv_heads(const Tensor& kv, std::int64_t group);

// A committed oracle fixture, tests/oracle/fixtures/<file> (JSON), parsed once per process.
const nlohmann::json& test_oracle_fixture(const std::string& file);
// The values of an i8 tensor, and the bit patterns of an f16 tensor, as ints (for comparisons with fixtures).
std::vector<int> test_int8_values(const Tensor& t);
std::vector<int> test_f16_bits(const Tensor& t);
// A JSON array of numbers as floats.
std::vector<float> test_json_floats(const nlohmann::json& values);

void test_write_file(const std::string& path, const std::vector<std::uint8_t>& bytes);
// The bit pattern of a float (bitwise comparisons that tell -0 from +0 and NaN payloads apart).
std::uint32_t float_bits(float value);
// count floats uniform in [low, high) from a seeded stream (the CUDA math replays' inputs).
std::vector<float> random_floats(std::size_t count, double low, double high, std::uint64_t seed);
std::vector<std::uint8_t> test_read_file(const std::string& path);

}  // namespace pgolf::test
