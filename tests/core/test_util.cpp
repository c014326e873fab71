// Test helpers shared by the core suites.
#include "tests/core/test_util.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>

#include "core/error.h"

namespace pgolf::test {

std::string test_source_path(const std::string& relative) {
    // PGOLF_TEST_SOURCE_DIR: the checkout when the test binaries run elsewhere than they were built (a packed GPU
    // build).
    const char* directory = std::getenv("PGOLF_TEST_SOURCE_DIR");
    if (directory != nullptr && *directory != '\0') return std::string(directory) + "/" + relative;
    return std::string(PGOLF_SOURCE_DIR) + "/" + relative;
}

std::string test_reference_path(const std::string& name) {
    const char* directory = std::getenv("PGOLF_REFERENCE_DIR");
    if (directory == nullptr || *directory == '\0') return {};
    return std::string(directory) + "/" + name;
}

TemporaryFolder::TemporaryFolder() {
    std::string pattern = (std::filesystem::temp_directory_path() / "pgolf-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
}

TemporaryFolder::~TemporaryFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
}

std::string test_param_name(const ::testing::TestParamInfo<const char*>& info) {
    std::string name = info.param;
    for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    return name;
}

double max_abs_difference(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return std::numeric_limits<double>::infinity();
    double worst = 0.0;
    for (std::int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::abs(a.item(i) - b.item(i)));
    return worst;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

std::string error_message(const std::function<void()>& call) {
    try {
        call();
    } catch (const Error& error) {
        return error.what();
    }
    return "(no error)";
}

std::int64_t index4(const Tensor& t, std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t d) {
    return ((b * t.size(1) + h) * t.size(2) + i) * t.size(3) + d;
}

Tensor repeat_kv_heads(const Tensor& kv, std::int64_t group) {
    const std::int64_t batch = kv.size(0), kv_heads = kv.size(1), length = kv.size(2), head_dim = kv.size(3);
    Tensor repeated = Tensor::empty({batch, kv_heads * group, length, head_dim}, kv.dtype());
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t h = 0; h < kv_heads * group; ++h)
            for (std::int64_t i = 0; i < length; ++i)
                for (std::int64_t d = 0; d < head_dim; ++d)
                    repeated.set_item(index4(repeated, b, h, i, d), kv.item(index4(kv, b, h / group, i, d)));
    return repeated;
}

void test_write_file(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
}

std::vector<std::uint8_t> test_read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const nlohmann::json& test_oracle_fixture(const std::string& file) {
    static std::map<std::string, nlohmann::json> parsed;
    const auto found = parsed.find(file);
    if (found != parsed.end()) return found->second;
    const std::string path = test_source_path("tests/oracle/fixtures/" + file);
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::stringstream text;
    text << in.rdbuf();
    return parsed.emplace(file, nlohmann::json::parse(text.str())).first->second;
}

std::vector<float> test_json_floats(const nlohmann::json& values) {
    std::vector<float> result;
    result.reserve(values.size());
    for (const nlohmann::json& value : values) result.push_back(static_cast<float>(value.get<double>()));
    return result;
}

std::vector<int> test_int8_values(const Tensor& t) {
    const std::int8_t* data = t.data<std::int8_t>();
    return std::vector<int>(data, data + t.numel());
}

std::vector<int> test_f16_bits(const Tensor& t) {
    const std::uint16_t* data = t.data<std::uint16_t>();
    return std::vector<int>(data, data + t.numel());
}

std::uint32_t float_bits(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

std::vector<float> random_floats(std::size_t count, double low, double high, std::uint64_t seed) {
    std::mt19937_64 generator(seed);
    std::uniform_real_distribution<double> uniform(low, high);
    std::vector<float> values(count);
    for (float& value : values) value = static_cast<float>(uniform(generator));
    return values;
}

}  // namespace pgolf::test
