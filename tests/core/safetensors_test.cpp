// Safetensors: bit-exact round trips of every dtype, each malformed-file case (one-line error naming the file), and
// files written by Python (the hand-written writer in tests/oracle/baseline_oracle.py), including the oracle fixture.
#include "core/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <numbers>
#include <set>

#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::TemporaryFolder;

// A tensor holding exactly these bytes; bit patterns (NaN payloads, -0.0) survive because nothing converts them.
template <typename T>
Tensor tensor_of(DType dtype, const Shape& shape, const std::vector<T>& values) {
    Tensor tensor = Tensor::empty(shape, dtype);
    EXPECT_EQ(tensor.nbytes(), values.size() * sizeof(T));
    if (!values.empty()) std::memcpy(tensor.raw_data(), values.data(), tensor.nbytes());
    return tensor;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
    return a.dtype() == b.dtype() && a.shape() == b.shape() &&
           (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
}

double double_from_bits(std::uint64_t bits) {
    double out = 0;
    std::memcpy(&out, &bits, sizeof(out));
    return out;
}

float float_from_bits(std::uint32_t bits) {
    float out = 0;
    std::memcpy(&out, &bits, sizeof(out));
    return out;
}

std::vector<std::pair<std::string, Tensor>> every_dtype() {
    return {
        {"f32", tensor_of<float>(DType::f32, {2, 3},
                                 {0.0f, -0.0f, 1.5f, std::numeric_limits<float>::infinity(),
                                  float_from_bits(0x7FC00123u), float_from_bits(0x00000001u)})},
        {"f64",
         tensor_of<double>(DType::f64, {3},
                           {-0.0, double_from_bits(0x7FF8000000000ABCull), double_from_bits(0xFFF0000000000001ull)})},
        {"bf16", tensor_of<std::uint16_t>(DType::bf16, {2, 2}, {0x3F80, 0x8000, 0x7FC1, 0xFF80})},
        {"f16", tensor_of<std::uint16_t>(DType::f16, {3}, {0x3C00, 0x8000, 0x7E01})},
        {"i64", tensor_of<std::int64_t>(DType::i64, {2}, {std::numeric_limits<std::int64_t>::min(), -1})},
        {"i32", tensor_of<std::int32_t>(DType::i32, {1, 1, 2}, {-5, std::numeric_limits<std::int32_t>::max()})},
        {"u16", tensor_of<std::uint16_t>(DType::u16, {2}, {0, 65535})},
        {"i8", tensor_of<std::int8_t>(DType::i8, {3}, {-128, 0, 127})},
        {"u8", tensor_of<std::uint8_t>(DType::u8, {5}, {0, 1, 2, 254, 255})},
        {"scalar", tensor_of<double>(DType::f64, {}, {3.25})},
        {"empty", tensor_of<float>(DType::f32, {0, 3}, {})},
    };
}

// A file from a header given as text and a buffer, with the length field overridable for the corrupt cases.
std::vector<std::uint8_t> raw_file(const std::string& header, const std::vector<std::uint8_t>& buffer,
                                   std::uint64_t length_field = std::numeric_limits<std::uint64_t>::max()) {
    const std::uint64_t length =
        length_field == std::numeric_limits<std::uint64_t>::max() ? header.size() : length_field;
    // Sized once: growing an 8-byte vector by insert trips a GCC 12 -Warray-bounds false positive at -O2.
    std::vector<std::uint8_t> bytes(8 + header.size() + buffer.size());
    std::memcpy(bytes.data(), &length, 8);
    std::copy(header.begin(), header.end(), bytes.begin() + 8);
    std::copy(buffer.begin(), buffer.end(), bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header.size()));
    return bytes;
}

// The error must name the file and contain the expected problem, on one line.
void expect_read_error(const std::string& path, const std::string& problem) {
    try {
        safetensors_read(path);
        FAIL() << "expected an error containing '" << problem << "'";
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(path), std::string::npos) << message;
        EXPECT_NE(message.find(problem), std::string::npos) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
}

void expect_corrupt(const std::string& header, std::size_t buffer_bytes, const std::string& problem) {
    TemporaryFolder folder;
    const std::string path = folder.path("corrupt.safetensors");
    test::test_write_file(path, raw_file(header, std::vector<std::uint8_t>(buffer_bytes, 0)));
    expect_read_error(path, problem);
}

TEST(Safetensors, RoundTripsEveryDtypeBitExactly) {
    TemporaryFolder folder;
    const std::string path = folder.path("all.safetensors");
    const auto tensors = every_dtype();
    safetensors_write(path, tensors);
    const SafetensorsFile file = safetensors_read(path);
    ASSERT_EQ(file.tensors.size(), tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        EXPECT_EQ(file.tensors[i].first, tensors[i].first);  // written in the given order, read in buffer order
        EXPECT_TRUE(same_bytes(file.tensors[i].second, tensors[i].second)) << tensors[i].first;
    }
    EXPECT_TRUE(file.metadata.empty());
    EXPECT_EQ(file.at("scalar").dim(), 0);
    EXPECT_EQ(file.at("scalar").item(), 3.25);
    EXPECT_EQ(file.at("empty").shape(), (Shape{0, 3}));
    EXPECT_TRUE(std::signbit(file.at("f64").item(0)));
    std::uint64_t nan_bits = 0;
    std::memcpy(&nan_bits, file.at("f64").data<double>() + 1, 8);
    EXPECT_EQ(nan_bits, 0x7FF8000000000ABCull);
}

TEST(Safetensors, MetadataRoundTrips) {
    TemporaryFolder folder;
    const std::string path = folder.path("meta.safetensors");
    const std::map<std::string, std::string> metadata = {
        {"format", "pt"}, {"empty", ""}, {"unicode", "π ≠ 3"}, {"quote\"and\nnewline", "a\tb"}};
    safetensors_write(path, {{"x", Tensor::scalar(1.0)}}, metadata);
    const SafetensorsFile file = safetensors_read(path);
    EXPECT_EQ(file.metadata, metadata);
}

TEST(Safetensors, LayoutFollowsTheFormat) {
    TemporaryFolder folder;
    const std::string path = folder.path("layout.safetensors");
    safetensors_write(
        path,
        {{"b", tensor_of<float>(DType::f32, {2}, {1.0f, 2.0f})}, {"a", tensor_of<std::int64_t>(DType::i64, {1}, {7})}},
        {{"k", "v"}});
    const auto bytes = test::test_read_file(path);
    std::uint64_t header_size = 0;
    std::memcpy(&header_size, bytes.data(), 8);
    EXPECT_EQ(header_size % 8, 0u);  // padded, so the buffer is 8-byte aligned
    ASSERT_EQ(bytes.size(), 8 + header_size + 16);
    const std::string text(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_size));
    const auto header = nlohmann::json::parse(text);
    EXPECT_EQ(header["__metadata__"]["k"], "v");
    EXPECT_EQ(header["b"]["dtype"], "F32");
    EXPECT_EQ(header["b"]["shape"], nlohmann::json::array({2}));
    EXPECT_EQ(header["b"]["data_offsets"], nlohmann::json::array({0, 8}));
    EXPECT_EQ(header["a"]["dtype"], "I64");
    EXPECT_EQ(header["a"]["data_offsets"], nlohmann::json::array({8, 16}));
    float first = 0;
    std::memcpy(&first, bytes.data() + 8 + header_size, 4);
    EXPECT_EQ(first, 1.0f);
}

TEST(Safetensors, ReadsViewsAndReturnsBufferOrder) {
    TemporaryFolder folder;
    const std::string path = folder.path("views.safetensors");
    const Tensor base = tensor_of<float>(DType::f32, {3, 2}, {1, 2, 3, 4, 5, 6});
    safetensors_write(path, {{"z", base.rows(1, 3)}, {"a", base.rows(0, 1)}});
    const SafetensorsFile file = safetensors_read(path);
    ASSERT_EQ(file.tensors.size(), 2u);
    EXPECT_EQ(file.tensors[0].first, "z");
    EXPECT_EQ(file.tensors[0].second.to_doubles(), (std::vector<double>{3, 4, 5, 6}));
    EXPECT_EQ(file.tensors[1].second.to_doubles(), (std::vector<double>{1, 2}));
}

TEST(Safetensors, WriteRejectsBadInputAndKeepsTheOldFile) {
    TemporaryFolder folder;
    const std::string path = folder.path("keep.safetensors");
    safetensors_write(path, {{"old", Tensor::scalar(1.0)}});
    EXPECT_THROW(safetensors_write(path, {{"x", Tensor::scalar(1.0)}, {"x", Tensor::scalar(2.0)}}), Error);
    EXPECT_THROW(safetensors_write(path, {{"__metadata__", Tensor::scalar(1.0)}}), Error);
    EXPECT_THROW(safetensors_write(path, {{"undefined", Tensor()}}), Error);
    EXPECT_TRUE(safetensors_read(path).contains("old"));
    for (const auto& entry : std::filesystem::directory_iterator(folder.root())) {
        EXPECT_EQ(entry.path().filename(), "keep.safetensors");  // no temporary left behind
    }
}

TEST(Safetensors, AtNamesTheMissingTensor) {
    SafetensorsFile file;
    file.tensors.emplace_back("present", Tensor::scalar(1.0));
    EXPECT_EQ(file.at("present").item(), 1.0);
    try {
        file.at("absent");
        FAIL();
    } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find("\"absent\""), std::string::npos) << error.what();
    }
}

TEST(Safetensors, DtypeNames) {
    const std::set<std::string> names = {"F32", "F64", "BF16", "F16", "I64", "I32", "U16", "I8", "U8"};
    for (const std::string& name : names) EXPECT_EQ(safetensors_dtype_name(safetensors_dtype_parse(name)), name);
    EXPECT_THROW(safetensors_dtype_parse("F8_E4M3"), Error);
    EXPECT_THROW(safetensors_dtype_parse("f32"), Error);
}

TEST(Safetensors, RejectsShortFile) {
    TemporaryFolder folder;
    const std::string path = folder.path("short.safetensors");
    test::test_write_file(path, {1, 0, 0});
    expect_read_error(path, "shorter than the 8-byte header length");
}

TEST(Safetensors, RejectsHeaderLengthBeyondTheFile) {
    TemporaryFolder folder;
    const std::string path = folder.path("long.safetensors");
    test::test_write_file(path, raw_file("{}", {}, 3));
    expect_read_error(path, "header length 3 runs past the end of the 10-byte file");
    test::test_write_file(path, raw_file("{}", {}, std::numeric_limits<std::uint64_t>::max() - 1));
    expect_read_error(path, "runs past the end");
}

TEST(Safetensors, AcceptsAnEmptyFile) {
    TemporaryFolder folder;
    const std::string path = folder.path("nothing.safetensors");
    test::test_write_file(path, raw_file("{}      ", {}));
    EXPECT_TRUE(safetensors_read(path).tensors.empty());
    safetensors_write(path, {});
    EXPECT_TRUE(safetensors_read(path).tensors.empty());
}

TEST(Safetensors, RejectsInvalidJson) {
    expect_corrupt("{\"a\": ", 0, "invalid JSON header");
    expect_corrupt("not json", 0, "invalid JSON header");
    expect_corrupt("{\"a\":{}} \xff", 0, "invalid JSON header");
    expect_corrupt("{\"\xff\":{}}", 0, "invalid JSON header");  // not UTF-8
    expect_corrupt("[1, 2]", 0, "header is not a JSON object");
}

TEST(Safetensors, RejectsEntryThatIsNotAnObject) {
    expect_corrupt(R"({"a": [1, 2]})", 0, "tensor \"a\": entry is not an object");
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": []}})", 4, "needs dtype, shape and data_offsets");
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": [], "data_offsets": [0, 4], "x": 1}})", 4, "unknown field \"x\"");
}

TEST(Safetensors, RejectsUnknownDtype) {
    expect_corrupt(R"({"a": {"dtype": "F8_E5M2", "shape": [1], "data_offsets": [0, 1]}})", 1,
                   "unknown dtype \"F8_E5M2\"");
    expect_corrupt(R"({"a": {"dtype": 3, "shape": [1], "data_offsets": [0, 1]}})", 1, "dtype is not a string");
}

TEST(Safetensors, RejectsBadShape) {
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}})", 0, "negative or non-integer");
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}})", 4, "negative or non-integer");
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}})", 16, "shape is not an array");
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", 0,
                   "too large");
}

TEST(Safetensors, RejectsOffsetsNotMatchingTheShape) {
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 12,
                   "span 12 bytes but F32 (2, 2) needs 16");
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": [], "data_offsets": [4, 0]}})", 4, "0 <= begin <= end");
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": [], "data_offsets": [0]}})", 4, "is not a pair");
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": [], "data_offsets": [-4, 0]}})", 4, "is not a pair");
}

TEST(Safetensors, RejectsOffsetsOutOfTheBuffer) {
    expect_corrupt(R"({"a": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}})", 8,
                   "run past the 8-byte buffer");
}

TEST(Safetensors, RejectsOverlappingTensors) {
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                       "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                   12, "tensor \"b\" overlaps tensor \"a\"");
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                       "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
                   8, "overlaps");
}

TEST(Safetensors, RejectsGaps) {
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                       "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
                   12, "gap of 4 bytes before tensor \"b\"");
    expect_corrupt(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8, "gap of 4 bytes");
}

TEST(Safetensors, RejectsTrailingBytes) {
    expect_corrupt(R"({"a": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]}})", 5,
                   "2 trailing bytes after the last tensor");
    expect_corrupt("{}", 1, "1 trailing bytes");
}

TEST(Safetensors, RejectsDuplicateNames) {
    expect_corrupt(R"({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                       "a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})",
                   2, "duplicate key \"a\"");
    expect_corrupt(R"({"__metadata__": {"k": "1", "k": "2"}})", 0, "duplicate key \"k\"");
}

TEST(Safetensors, RejectsNonStringMetadata) {
    expect_corrupt(R"({"__metadata__": {"k": 1}})", 0, "metadata value for \"k\" is not a string");
    expect_corrupt(R"({"__metadata__": ["k"]})", 0, "__metadata__ is not an object");
}

TEST(Safetensors, ErrorMessagesStayOnOneLine) {
    expect_corrupt("{\"a\\nb\": 1}", 0, "tensor \"a\\nb\": entry is not an object");
}

TEST(Safetensors, ReadsAFileWrittenByPython) {
    const SafetensorsFile file =
        safetensors_read(test::test_source_path("tests/oracle/fixtures/python_written.safetensors"));
    EXPECT_EQ(file.metadata.at("note"), "π ≠ 3");
    const std::vector<std::string> order = {"f32", "f64", "bf16", "f16",    "i64",  "i32",
                                            "u16", "i8",  "u8",   "scalar", "empty"};
    ASSERT_EQ(file.tensors.size(), order.size());
    for (std::size_t i = 0; i < order.size(); ++i) EXPECT_EQ(file.tensors[i].first, order[i]);  // buffer order

    const Tensor& f32 = file.at("f32");
    EXPECT_EQ(f32.shape(), (Shape{2, 3}));
    EXPECT_TRUE(std::signbit(f32.item(1)) && f32.item(1) == 0.0);
    EXPECT_EQ(f32.item(3), -2.5);
    EXPECT_TRUE(std::isinf(f32.item(4)));
    EXPECT_EQ(f32.data<float>()[5], 3.0e-39f);  // subnormal
    const Tensor& f64 = file.at("f64");
    std::uint64_t nan_bits = 0;
    std::memcpy(&nan_bits, f64.data<double>() + 4, 8);
    EXPECT_EQ(nan_bits, 0x7FF8000000000123ull);
    EXPECT_EQ(file.at("bf16").to_doubles()[1], -2.0);
    EXPECT_TRUE(std::isnan(file.at("bf16").item(2)));
    EXPECT_EQ(file.at("f16").to_doubles(), (std::vector<double>{1.0, -1.0}));
    EXPECT_EQ(file.at("i64").data<std::int64_t>()[1], std::int64_t{1} << 40);
    EXPECT_EQ(file.at("i64").data<std::int64_t>()[3], std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(file.at("i32").to_doubles(), (std::vector<double>{-7, 0, 2147483647}));
    EXPECT_EQ(file.at("u16").to_doubles(), (std::vector<double>{0, 65535}));
    EXPECT_EQ(file.at("i8").to_doubles(), (std::vector<double>{-128, 127}));
    EXPECT_EQ(file.at("u8").to_doubles(), (std::vector<double>{0, 1, 255}));
    EXPECT_EQ(file.at("scalar").item(), std::numbers::pi);
    EXPECT_EQ(file.at("empty").shape(), (Shape{0, 3}));
}

// The layout the model golden test relies on: 2 global + 10 per-block parameters, each with a gradient.
std::vector<std::pair<std::string, Shape>> tiny_parameter_shapes() {
    const std::int64_t V = 32, D = 16, Hkv = 2, Dh = 4, hidden = 32;
    std::vector<std::pair<std::string, Shape>> shapes = {{"tok_emb.weight", {V, D}}, {"skip_weights", {1, D}}};
    for (int i = 0; i < 3; ++i) {
        const std::string p = "blocks." + std::to_string(i) + ".";
        shapes.insert(shapes.end(), {{p + "attn.c_q.weight", {D, D}},
                                     {p + "attn.c_k.weight", {Hkv * Dh, D}},
                                     {p + "attn.c_v.weight", {Hkv * Dh, D}},
                                     {p + "attn.proj.weight", {D, D}},
                                     {p + "attn.q_gain", {4}},
                                     {p + "mlp.fc.weight", {hidden, D}},
                                     {p + "mlp.proj.weight", {D, hidden}},
                                     {p + "attn_scale", {D}},
                                     {p + "mlp_scale", {D}},
                                     {p + "resid_mix", {2, D}}});
    }
    return shapes;
}

void check_oracle_fixture(const SafetensorsFile& file, DType dtype, const std::string& loss_name) {
    const auto shapes = tiny_parameter_shapes();
    ASSERT_EQ(shapes.size(), 32u);
    ASSERT_EQ(file.tensors.size(), 2 * shapes.size() + 3);
    for (const auto& [name, shape] : shapes) {
        for (const std::string prefix : {"param/", "grad/"}) {
            const Tensor& tensor = file.at(prefix + name);
            EXPECT_EQ(tensor.dtype(), dtype) << prefix << name;
            EXPECT_EQ(tensor.shape(), shape) << prefix << name;
            double largest = 0;
            for (const double value : tensor.to_doubles()) {
                ASSERT_TRUE(std::isfinite(value)) << prefix << name;
                largest = std::max(largest, std::abs(value));
            }
            EXPECT_GT(largest, 0.0) << prefix << name << " is all zero";
        }
    }
    for (const std::string name : {"input_ids", "target_ids"}) {
        const Tensor& ids = file.at(name);
        EXPECT_EQ(ids.dtype(), DType::i64);
        EXPECT_EQ(ids.shape(), (Shape{2, 8}));
        for (const double id : ids.to_doubles()) EXPECT_TRUE(id >= 0 && id < 32) << name;
    }
    const Tensor& loss = file.at(loss_name);
    EXPECT_EQ(loss.dtype(), dtype);
    EXPECT_EQ(loss.dim(), 0);
    EXPECT_TRUE(std::isfinite(loss.item()));
    EXPECT_NEAR(loss.item(), std::log(32.0), 2.0);
    const std::map<std::string, std::string> expected = {
        {"VOCAB_SIZE", "32"},    {"NUM_LAYERS", "3"},     {"MODEL_DIM", "16"},    {"NUM_HEADS", "4"},
        {"NUM_KV_HEADS", "2"},   {"MLP_MULT", "2"},       {"ROPE_BASE", "10000"}, {"LOGIT_SOFTCAP", "30"},
        {"TIE_EMBEDDINGS", "1"}, {"QK_GAIN_INIT", "1.5"}, {"BATCH_SIZE", "2"},    {"SEQ_LEN", "8"}};
    for (const auto& [key, value] : expected) {
        ASSERT_TRUE(file.metadata.count(key)) << key;
        EXPECT_EQ(file.metadata.at(key), value) << key;
    }
    EXPECT_TRUE(file.metadata.count("TORCH_VERSION"));
    EXPECT_TRUE(file.metadata.count("GENERATOR_COMMAND"));
}

TEST(Safetensors, ReadsTheOracleFixture) {
    const SafetensorsFile f64 =
        safetensors_read(test::test_source_path("tests/oracle/fixtures/baseline_tiny.safetensors"));
    check_oracle_fixture(f64, DType::f64, "loss");
    const SafetensorsFile f32 =
        safetensors_read(test::test_source_path("tests/oracle/fixtures/baseline_tiny_f32.safetensors"));
    check_oracle_fixture(f32, DType::f32, "loss_f32");
    // Same weights and ids in both, so the float32 loss sits within float32 rounding of the float64 one.
    EXPECT_NEAR(f32.at("loss_f32").item(), f64.at("loss").item(), 1e-4);
    EXPECT_TRUE(same_bytes(f32.at("input_ids"), f64.at("input_ids")));
    EXPECT_TRUE(
        same_bytes(f32.at("param/blocks.1.attn.c_q.weight"), f64.at("param/blocks.1.attn.c_q.weight").to(DType::f32)));
}

}  // namespace
}  // namespace pgolf
