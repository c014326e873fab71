// The artifact container: bit-exact round trips under every codec, determinism, the documented layout, refusal of
// every single-byte corruption and truncation (compressed and not), and each malformed-header case by its message.
#include "model/artifact.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/digest.h"
#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::error_message;
using test::TemporaryFolder;
using Json = nlohmann::ordered_json;
using Bytes = std::vector<std::uint8_t>;

// A tensor holding exactly these bytes; bit patterns (-0.0, subnormals, NaN payloads) survive untouched.
template <typename T>
Tensor tensor_of(DType dtype, const Shape& shape, const std::vector<T>& values) {
    Tensor tensor = Tensor::empty(shape, dtype);
    EXPECT_EQ(tensor.nbytes(), values.size() * sizeof(T));
    if (!values.empty()) std::memcpy(tensor.raw_data(), values.data(), tensor.nbytes());
    return tensor;
}

float float_from_bits(std::uint32_t bits) {
    float out = 0;
    std::memcpy(&out, &bits, sizeof(out));
    return out;
}

QuantizedTensor per_row_tensor(const std::string& name, std::int64_t rows, std::int64_t cols) {
    QuantizedTensor tensor;
    tensor.name = name;
    tensor.shape = {rows, cols};
    tensor.encoding = QuantEncoding::per_row;
    tensor.method = "gptq_sdclip";
    tensor.qmin = -31;
    tensor.qmax = 31;
    std::vector<std::int8_t> values(static_cast<std::size_t>(rows * cols));
    for (std::size_t i = 0; i < values.size(); ++i)
        values[i] = static_cast<std::int8_t>(static_cast<int>(i * 7) % 63 - 31);
    std::vector<std::uint16_t> scales(static_cast<std::size_t>(rows));
    for (std::size_t r = 0; r < scales.size(); ++r) scales[r] = f16_from_float(0.01f * static_cast<float>(r + 1));
    tensor.values = tensor_of(DType::i8, tensor.shape, values);
    tensor.scales = tensor_of(DType::f16, {rows}, scales);
    return tensor;
}

QuantizedTensor per_tensor_tensor(const std::string& name) {
    QuantizedTensor tensor;
    tensor.name = name;
    tensor.shape = {2, 3, 2};
    tensor.encoding = QuantEncoding::per_tensor;
    tensor.method = "tensor_search";
    tensor.qmin = -32;
    tensor.qmax = 31;
    tensor.chosen_quantile = 0.9995;
    tensor.values = tensor_of<std::int8_t>(DType::i8, tensor.shape, {-32, 31, 0, 1, -1, 5, 7, -9, 30, -30, 2, 3});
    tensor.scales = tensor_of<float>(DType::f32, {}, {0.0123f});
    return tensor;
}

QuantizedTensor passthrough_tensor(const std::string& name, const Tensor& values) {
    QuantizedTensor tensor;
    tensor.name = name;
    tensor.shape = values.shape();
    tensor.encoding = QuantEncoding::passthrough;
    tensor.method = "passthrough";
    tensor.values = values;
    return tensor;
}

// Every encoding, both passthrough dtypes, a 3-D per-tensor shape, a 0-d scalar and a 0-element tensor.
Artifact full_artifact() {
    Artifact artifact;
    artifact.scheme = "int6_gptq_sdclip";
    artifact.metadata = {{"preset", "s3-int6-gptq"}, {"config_sha256", std::string(64, 'a')}, {"note", "ünïcödé"}};
    artifact.tensors.push_back(per_row_tensor("blocks.0.attn.qkv.weight", 4, 6));
    artifact.tensors.push_back(per_tensor_tensor("blocks.0.mlp.fc.weight"));
    artifact.tensors.push_back(passthrough_tensor(
        "tok_emb.weight",
        tensor_of<std::uint16_t>(DType::f16, {2, 3}, {0x3C00, 0x8000, 0x0001, 0x7E01, 0xFC00, 0x1234})));
    artifact.tensors.push_back(passthrough_tensor(
        "blocks.0.attn_scale",
        tensor_of<float>(DType::f32, {4}, {1.5f, -0.0f, float_from_bits(0x00000001u), float_from_bits(0x7FC00123u)})));
    artifact.tensors.push_back(per_row_tensor("empty.weight", 0, 8));
    artifact.tensors.push_back(passthrough_tensor("scalar_gain", tensor_of<float>(DType::f32, {}, {0.25f})));
    return artifact;
}

// Small enough that every byte position can be corrupted in a few milliseconds per codec.
Artifact small_artifact() {
    Artifact artifact;
    artifact.scheme = "int8";
    artifact.metadata = {{"preset", "tiny"}};
    artifact.tensors.push_back(per_row_tensor("w", 2, 3));
    artifact.tensors.push_back(per_tensor_tensor("p"));
    artifact.tensors.push_back(passthrough_tensor("g", tensor_of<float>(DType::f32, {2}, {1.0f, -2.0f})));
    return artifact;
}

bool same_tensor(const Tensor& a, const Tensor& b) {
    if (a.defined() != b.defined()) return false;
    if (!a.defined()) return true;
    return a.dtype() == b.dtype() && a.shape() == b.shape() &&
           (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
}

void expect_same(const Artifact& expected, const Artifact& actual) {
    EXPECT_EQ(expected.scheme, actual.scheme);
    EXPECT_EQ(expected.metadata, actual.metadata);
    ASSERT_EQ(expected.tensors.size(), actual.tensors.size());
    for (std::size_t i = 0; i < expected.tensors.size(); ++i) {
        const QuantizedTensor& a = expected.tensors[i];
        const QuantizedTensor& b = actual.tensors[i];
        SCOPED_TRACE(a.name);
        EXPECT_EQ(a.name, b.name);
        EXPECT_EQ(a.shape, b.shape);
        EXPECT_EQ(a.encoding, b.encoding);
        EXPECT_EQ(a.method, b.method);
        EXPECT_EQ(a.qmin, b.qmin);
        EXPECT_EQ(a.qmax, b.qmax);
        EXPECT_EQ(std::memcmp(&a.chosen_quantile, &b.chosen_quantile, sizeof(double)), 0);
        EXPECT_TRUE(same_tensor(a.values, b.values));
        EXPECT_TRUE(same_tensor(a.scales, b.scales));
    }
}

// ---- container surgery: split a container into its parts, edit them, and put it back together with a fresh
// checksum, so each malformed case reaches the check it is meant for.

struct Parts {
    std::uint32_t version = 0;
    std::string header;
    Bytes payload;
};

std::uint32_t u32_at(const Bytes& bytes, std::size_t at) {
    std::uint32_t value = 0;
    std::memcpy(&value, bytes.data() + at, sizeof(value));
    return value;
}

Parts split(const Bytes& container) {
    Parts parts;
    parts.version = u32_at(container, 8);
    const std::uint32_t header_size = u32_at(container, 12);
    parts.header.assign(reinterpret_cast<const char*>(container.data()) + 16, header_size);
    parts.payload.assign(container.begin() + 16 + header_size, container.end() - 32);
    return parts;
}

Bytes sha256_bytes(const Bytes& bytes) {
    const std::string hex = digest_sha256_hex(bytes);
    Bytes out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        out.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

Bytes seal(const Parts& parts) {
    Bytes out(artifact_magic.begin(), artifact_magic.end());
    const auto put_u32 = [&](std::uint32_t value) {
        for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
    };
    put_u32(parts.version);
    put_u32(static_cast<std::uint32_t>(parts.header.size()));
    out.insert(out.end(), parts.header.begin(), parts.header.end());
    out.insert(out.end(), parts.payload.begin(), parts.payload.end());
    const Bytes checksum = sha256_bytes(out);
    out.insert(out.end(), checksum.begin(), checksum.end());
    return out;
}

std::string decode_error(const Bytes& container) {
    return error_message([&] { artifact_decode(container, "model.ptz"); });
}

// The decode error after editing the parsed header of full_artifact's container (and resealing it).
std::string header_edit_error(const std::function<void(Json&)>& edit) {
    Parts parts = split(artifact_encode(full_artifact()));
    Json header = Json::parse(parts.header);
    edit(header);
    parts.header = header.dump();
    return decode_error(seal(parts));
}

Json& tensor_entry(Json& header, const std::string& name) {
    for (Json& entry : header["tensors"]) {
        if (entry["name"] == name) return entry;
    }
    throw std::runtime_error("no tensor " + name);
}

// ---- round trips ---------------------------------------------------------------------------------------------------

TEST(ArtifactTest, EncodeDecodeRoundTripIsBitExact) {
    const Artifact artifact = full_artifact();
    const Bytes container = artifact_encode(artifact);
    expect_same(artifact, artifact_decode(container, "memory"));
    // Passthrough tensors come back without scales, quantized ones with them.
    const Artifact decoded = artifact_decode(container, "memory");
    EXPECT_FALSE(decoded.at("tok_emb.weight").scales.defined());
    EXPECT_TRUE(decoded.at("empty.weight").scales.defined());
    EXPECT_EQ(decoded.at("empty.weight").values.shape(), (Shape{0, 8}));
    EXPECT_EQ(decoded.at("empty.weight").scales.shape(), (Shape{0}));
}

TEST(ArtifactTest, EmptyMetadataAndNoTensorsRoundTrip) {
    Artifact artifact;
    artifact.scheme = "";
    const Bytes container = artifact_encode(artifact);
    EXPECT_EQ(container.size(), 16 + split(container).header.size() + 32);
    expect_same(artifact, artifact_decode(container, "memory"));

    Artifact no_metadata = full_artifact();
    no_metadata.metadata.clear();
    expect_same(no_metadata, artifact_decode(artifact_encode(no_metadata), "memory"));
}

class ArtifactCodecTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ArtifactCodecTest, WriteReadRoundTripThroughFile) {
    const CodecSpec spec = codec_parse_spec(GetParam());
    const Artifact artifact = full_artifact();
    TemporaryFolder folder;
    const std::string path = folder.path("model.ptz");
    const std::int64_t written = artifact_write(path, artifact, spec);
    EXPECT_EQ(written, static_cast<std::int64_t>(std::filesystem::file_size(path)));
    EXPECT_EQ(test::test_read_file(path), artifact_compress(artifact, spec));

    const ArtifactFile file = artifact_read(path);
    EXPECT_EQ(file.codec, spec.kind);
    EXPECT_EQ(file.file_bytes, written);
    EXPECT_EQ(file.container_bytes, static_cast<std::int64_t>(artifact_encode(artifact).size()));
    expect_same(artifact, file.artifact);
    expect_same(artifact, artifact_read(path, spec.kind).artifact);
}

INSTANTIATE_TEST_SUITE_P(Codecs, ArtifactCodecTest,
                         ::testing::Values("zstd-22", "xz-6", "lzma-6", "xz-9", "brotli-11", "zlib-9"),
                         test::test_param_name);

TEST(ArtifactTest, EncodingIsDeterministicAndCanonical) {
    const Bytes first = artifact_encode(full_artifact());
    EXPECT_EQ(first, artifact_encode(full_artifact()));
    // Fresh storage with the same contents, and a decoded copy, encode to the same bytes.
    Artifact copy = full_artifact();
    for (QuantizedTensor& tensor : copy.tensors) {
        tensor.values = tensor.values.clone();
        if (tensor.scales.defined()) tensor.scales = tensor.scales.clone();
    }
    EXPECT_EQ(first, artifact_encode(copy));
    EXPECT_EQ(first, artifact_encode(artifact_decode(first, "memory")));
    for (const char* spec : {"zstd-22", "xz-9", "brotli-11", "zlib-9"}) {
        EXPECT_EQ(artifact_compress(full_artifact(), codec_parse_spec(spec)),
                  artifact_compress(copy, codec_parse_spec(spec)));
    }
}

// The documented layout: framing, header fields, payload order (i8 values, then scales, then passthrough values).
TEST(ArtifactTest, LayoutMatchesTheDocumentedFormat) {
    const Artifact artifact = full_artifact();
    const Bytes container = artifact_encode(artifact);
    EXPECT_EQ(std::string(container.begin(), container.begin() + 8), "PGOLFART");
    EXPECT_EQ(u32_at(container, 8), 1u);
    const Parts parts = split(container);
    const Json header = Json::parse(parts.header);
    EXPECT_EQ(header.dump(), parts.header);  // compact JSON, fields in a fixed order
    EXPECT_EQ(header["scheme"], "int6_gptq_sdclip");
    EXPECT_EQ(header["payload_bytes"], artifact_payload_bytes(artifact));
    EXPECT_EQ(parts.payload.size(), static_cast<std::size_t>(artifact_payload_bytes(artifact)));
    EXPECT_EQ(Bytes(container.end() - 32, container.end()),
              sha256_bytes(Bytes(container.begin(), container.end() - 32)));

    const Json& qkv = header["tensors"][0];
    EXPECT_EQ(qkv.dump(),
              R"({"name":"blocks.0.attn.qkv.weight","shape":[4,6],"encoding":"per_row","method":"gptq_sdclip",)"
              R"("qmin":-31,"qmax":31,"chosen_quantile":0.0,"values":{"dtype":"i8","shape":[4,6],"offset":0,)"
              R"("bytes":24},"scales":{"dtype":"f16","shape":[4],"offset":36,"bytes":8}})");
    EXPECT_FALSE(header["tensors"][2].contains("scales"));
    // Expected offsets: qkv values 24, mlp values 12, empty values 0 | qkv scales 8, mlp scale 4, empty scales 0 |
    // tok_emb 12, attn_scale 16, scalar_gain 4.
    const std::vector<std::pair<std::string, std::uint64_t>> value_offsets = {
        {"blocks.0.attn.qkv.weight", 0}, {"blocks.0.mlp.fc.weight", 24}, {"tok_emb.weight", 48},
        {"blocks.0.attn_scale", 60},     {"empty.weight", 36},           {"scalar_gain", 76}};
    for (std::size_t i = 0; i < value_offsets.size(); ++i) {
        EXPECT_EQ(header["tensors"][i]["name"], value_offsets[i].first);
        EXPECT_EQ(header["tensors"][i]["values"]["offset"], value_offsets[i].second) << value_offsets[i].first;
    }
    EXPECT_EQ(header["tensors"][1]["scales"]["offset"], 44);
    EXPECT_EQ(header["tensors"][4]["scales"]["offset"], 48);
    EXPECT_EQ(header["payload_bytes"], 80);
}

TEST(ArtifactTest, TensorBytesReport) {
    const std::vector<ArtifactTensorBytes> bytes = artifact_tensor_bytes(full_artifact());
    ASSERT_EQ(bytes.size(), 6u);
    EXPECT_EQ(bytes[0].name, "blocks.0.attn.qkv.weight");
    EXPECT_EQ(bytes[0].values_bytes, 24);
    EXPECT_EQ(bytes[0].scales_bytes, 8);
    EXPECT_EQ(bytes[1].scales_bytes, 4);
    EXPECT_EQ(bytes[2].values_bytes, 12);
    EXPECT_EQ(bytes[2].scales_bytes, 0);
    EXPECT_EQ(artifact_payload_bytes(full_artifact()), 80);
}

TEST(ArtifactTest, LookupByName) {
    const Artifact artifact = full_artifact();
    EXPECT_TRUE(artifact.contains("scalar_gain"));
    EXPECT_FALSE(artifact.contains("missing"));
    EXPECT_EQ(artifact.at("scalar_gain").values.item(), 0.25);
    EXPECT_NE(error_message([&] { artifact.at("missing"); }).find("no tensor named \"missing\""), std::string::npos);
}

// ---- corruption ----------------------------------------------------------------------------------------------------

// Every corrupted or truncated input must be refused with a pgolf::Error: the container's SHA-256 sees to it even
// where a codec carries no checksum of its own. Anything else (acceptance, another exception, a crash) fails.
void expect_refused(const std::function<void()>& call, const std::string& what) {
    try {
        call();
        ADD_FAILURE() << what << ": accepted";
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_EQ(message.find('\n'), std::string::npos) << what << ": " << message;
        EXPECT_EQ(message.rfind("model.ptz: ", 0), 0u) << what << ": " << message;
    } catch (const std::exception& error) {
        ADD_FAILURE() << what << ": not a pgolf::Error: " << error.what();
    }
}

// Codecs have bits their decoders ignore (deflate's padding after the final block, some of zstd's table encodings):
// a flip there changes the file but not the container, and the reader may accept it. Any flip that changes the
// container is refused by its SHA-256; so a file is accepted only when it decodes to exactly the original container.
TEST_P(ArtifactCodecTest, EveryByteFlipAndTruncationOfTheFileIsRefused) {
    const Bytes file = artifact_compress(small_artifact(), codec_parse_spec(GetParam()));
    const Bytes container = artifact_encode(small_artifact());
    ASSERT_LT(file.size(), 1000u);
    const ArtifactFile intact = artifact_decompress(file, "model.ptz");
    expect_same(small_artifact(), intact.artifact);
    int accepted_unchanged = 0;
    for (std::size_t position = 0; position < file.size(); ++position) {
        for (const std::uint8_t mask : {0x01, 0x80, 0xFF}) {
            Bytes corrupt = file;
            corrupt[position] ^= mask;
            const std::string what = "flip " + std::to_string(mask) + " at " + std::to_string(position);
            try {
                const ArtifactFile read = artifact_decompress(corrupt, "model.ptz");
                EXPECT_EQ(artifact_encode(read.artifact), container) << what << ": accepted with other content";
                EXPECT_EQ(read.codec, intact.codec) << what;
                ++accepted_unchanged;
            } catch (const Error& error) {
                const std::string message = error.what();
                EXPECT_EQ(message.find('\n'), std::string::npos) << what << ": " << message;
                EXPECT_EQ(message.rfind("model.ptz: ", 0), 0u) << what << ": " << message;
            } catch (const std::exception& error) {
                ADD_FAILURE() << what << ": not a pgolf::Error: " << error.what();
            }
        }
    }
    // A handful at most: nearly every flip must be caught.
    EXPECT_LE(accepted_unchanged, 8) << "of " << 3 * file.size() << " flips";
    for (std::size_t length = 0; length < file.size(); ++length) {
        const Bytes truncated(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(length));
        expect_refused([&] { artifact_decompress(truncated, "model.ptz"); }, "truncated to " + std::to_string(length));
    }
    for (const Bytes& garbage : {Bytes{0}, Bytes{'x', 'y', 'z'}, file}) {
        Bytes extended = file;
        extended.insert(extended.end(), garbage.begin(), garbage.end());
        expect_refused([&] { artifact_decompress(extended, "model.ptz"); }, "trailing garbage");
    }
}

TEST(ArtifactTest, EveryBitFlipAndTruncationOfTheContainerIsRefused) {
    const Bytes container = artifact_encode(small_artifact());
    for (std::size_t position = 0; position < container.size(); ++position) {
        for (int bit = 0; bit < 8; ++bit) {
            Bytes corrupt = container;
            corrupt[position] ^= static_cast<std::uint8_t>(1u << bit);
            expect_refused([&] { artifact_decode(corrupt, "model.ptz"); },
                           "bit " + std::to_string(bit) + " at " + std::to_string(position));
        }
    }
    for (std::size_t length = 0; length < container.size(); ++length) {
        const Bytes truncated(container.begin(), container.begin() + static_cast<std::ptrdiff_t>(length));
        expect_refused([&] { artifact_decode(truncated, "model.ptz"); }, "truncated to " + std::to_string(length));
    }
    Bytes extended = container;
    extended.push_back(0);
    EXPECT_NE(decode_error(extended).find("1 trailing bytes after the checksum"), std::string::npos);
}

// ---- malformed containers, each with its own message ---------------------------------------------------------------

void expect_error(const std::string& message, const std::string& expected) {
    EXPECT_NE(message.find(expected), std::string::npos) << "message: " << message << "\nexpected: " << expected;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(ArtifactTest, FramingErrors) {
    const Bytes container = artifact_encode(full_artifact());
    Bytes bad_magic = container;
    bad_magic[0] = 'X';
    expect_error(decode_error(bad_magic),
                 "model.ptz: not a pgolf artifact: starts with bytes 58474f4c46415254 instead of the magic");
    expect_error(decode_error(Bytes{'P', 'G', 'O'}), "model.ptz: pgolf artifact: truncated: 3 bytes");
    expect_error(decode_error(Bytes{}), "truncated: 0 bytes");

    Parts version_two = split(container);
    version_two.version = 2;
    expect_error(decode_error(seal(version_two)), "unsupported format version 2 (this build reads version 1)");

    Bytes long_header = container;
    long_header[12] = 0xFF;
    long_header[13] = 0xFF;
    long_header[14] = 0xFF;
    long_header[15] = 0xFF;
    expect_error(decode_error(long_header), "header length 4294967295 runs past the end of the");

    Bytes huge_header(16 + artifact_max_header_bytes + 1 + 32, ' ');
    std::copy(container.begin(), container.begin() + 12, huge_header.begin());
    const auto huge = static_cast<std::uint32_t>(artifact_max_header_bytes + 1);
    std::memcpy(huge_header.data() + 12, &huge, sizeof(huge));
    expect_error(decode_error(huge_header), "header length 16777217 exceeds the 16777216-byte limit");

    Parts bad_json = split(container);
    bad_json.header = "{\"scheme\": ";
    expect_error(decode_error(seal(bad_json)), "invalid JSON header");

    Parts not_object = split(container);
    not_object.header = "[1, 2]";
    expect_error(decode_error(seal(not_object)), "header is not a JSON object");

    // Deep nesting must neither overflow the stack nor take long.
    Parts deep = split(container);
    deep.header = std::string(100000, '[') + std::string(100000, ']');
    expect_error(decode_error(seal(deep)), "header is not a JSON object");

    Parts announced = split(container);
    announced.payload.pop_back();
    expect_error(decode_error(seal(announced)), "truncated: the header announces a 80-byte payload but");

    Bytes checksum = container;
    checksum[container.size() - 40] ^= 0x01;  // a payload byte
    expect_error(decode_error(checksum), "checksum mismatch: stored SHA-256");
    Bytes stored = container;
    stored.back() ^= 0x01;
    expect_error(decode_error(stored), "checksum mismatch");
}

TEST(ArtifactTest, HeaderFieldErrors) {
    expect_error(header_edit_error([](Json& h) { h.erase("metadata"); }), "header lacks the field \"metadata\"");
    expect_error(header_edit_error([](Json& h) { h["extra"] = 1; }), "header has an unknown field \"extra\"");
    expect_error(header_edit_error([](Json& h) { h["payload_bytes"] = -1; }),
                 "header field \"payload_bytes\" is -1, not a non-negative integer");
    expect_error(header_edit_error([](Json& h) { h["scheme"] = 3; }), "header field \"scheme\" is not a string");
    expect_error(header_edit_error([](Json& h) { h["metadata"]["preset"] = 1; }),
                 "metadata value for \"preset\" is not a string");
    expect_error(header_edit_error([](Json& h) { h["tensors"] = Json::object(); }),
                 "header field \"tensors\" is not an array");
    expect_error(header_edit_error([](Json& h) { h["tensors"][0] = 5; }), "tensors[0] is not a JSON object");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "scalar_gain").erase("method"); }),
                 "tensor \"scalar_gain\" lacks the field \"method\"");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "scalar_gain")["colour"] = "red"; }),
                 "tensor \"scalar_gain\" has an unknown field \"colour\"");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "scalar_gain")["values"].erase("offset"); }),
                 "tensor \"scalar_gain\" values lacks the field \"offset\"");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "blocks.0.mlp.fc.weight")["qmin"] = "-32"; }),
                 "field \"qmin\" is \"-32\", not a 32-bit integer");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "blocks.0.mlp.fc.weight")["qmax"] = 31.0; }),
                 "field \"qmax\" is 31.0, not a 32-bit integer");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "blocks.0.mlp.fc.weight")["qmax"] = 1ll << 40; }),
                 "not a 32-bit integer");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "scalar_gain")["chosen_quantile"] = "0.5"; }),
                 "field \"chosen_quantile\" is not a number");
    expect_error(header_edit_error([](Json& h) {
                     tensor_entry(h, "tok_emb.weight")["shape"] = {2, -3};
                 }),
                 "shape [2,-3] has a negative or non-integer extent");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "tok_emb.weight")["shape"] = "2x3"; }),
                 "tensor \"tok_emb.weight\" shape is not an array");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "tok_emb.weight")["encoding"] = "per_column"; }),
                 "tensor \"tok_emb.weight\" has unknown encoding \"per_column\"");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "tok_emb.weight")["values"]["dtype"] = "bf16"; }),
                 "tensor \"tok_emb.weight\" values has unknown dtype \"bf16\"");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "scalar_gain")["name"] = ""; }),
                 "a tensor has an empty name");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "scalar_gain")["name"] = "tok_emb.weight"; }),
                 "duplicate tensor name \"tok_emb.weight\"");

    // nlohmann would silently keep the last of two equal keys.
    Parts parts = split(artifact_encode(full_artifact()));
    const std::string key = "\"scheme\":\"int6_gptq_sdclip\"";
    parts.header.replace(parts.header.find(key), key.size(), key + "," + key);
    expect_error(decode_error(seal(parts)), "duplicate key \"scheme\" in header");
}

TEST(ArtifactTest, EncodingRuleErrors) {
    expect_error(header_edit_error([](Json& h) {
                     Json& entry = tensor_entry(h, "blocks.0.mlp.fc.weight");
                     entry["values"]["dtype"] = "f16";
                     entry["values"]["bytes"] = 24;
                 }),
                 "tensor \"blocks.0.mlp.fc.weight\": per_tensor values must be i8, not f16");
    expect_error(header_edit_error([](Json& h) {
                     Json& entry = tensor_entry(h, "tok_emb.weight");
                     entry["values"]["dtype"] = "i8";
                     entry["values"]["bytes"] = 6;
                 }),
                 "tensor \"tok_emb.weight\": passthrough values must be f32 or f16, not i8");
    expect_error(header_edit_error([](Json& h) {
                     Json& entry = tensor_entry(h, "blocks.0.attn.qkv.weight");
                     entry["scales"]["dtype"] = "f32";
                     entry["scales"]["bytes"] = 16;
                 }),
                 "per_row scales must be f16, not f32");
    expect_error(header_edit_error([](Json& h) {
                     tensor_entry(h, "blocks.0.attn.qkv.weight")["scales"]["shape"] = {2, 2};
                 }),
                 "per_row scales shape (2, 2) should be (rows,) = (4)");
    expect_error(header_edit_error([](Json& h) {
                     Json& entry = tensor_entry(h, "blocks.0.attn.qkv.weight");
                     entry["shape"] = {4, 3, 2};
                     entry["values"]["shape"] = {4, 3, 2};
                 }),
                 "per_row needs a 2-D shape, not (4, 3, 2)");
    expect_error(header_edit_error([](Json& h) {
                     Json& entry = tensor_entry(h, "blocks.0.mlp.fc.weight");
                     entry["scales"]["dtype"] = "f16";
                     entry["scales"]["bytes"] = 2;
                 }),
                 "per_tensor scale must be f32, not f16");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "blocks.0.mlp.fc.weight")["scales"]["shape"] = {1}; }),
                 "per_tensor scale shape (1) should be ()");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "blocks.0.mlp.fc.weight").erase("scales"); }),
                 "tensor \"blocks.0.mlp.fc.weight\": per_tensor tensor has no scales");
    expect_error(header_edit_error([](Json& h) {
                     tensor_entry(h, "tok_emb.weight")["scales"] = tensor_entry(h, "blocks.0.mlp.fc.weight")["scales"];
                 }),
                 "tensor \"tok_emb.weight\": a passthrough tensor has no scales, but scales are given");
    expect_error(header_edit_error([](Json& h) {
                     tensor_entry(h, "tok_emb.weight")["values"]["shape"] = {3, 2};
                 }),
                 "values shape (3, 2) differs from the tensor shape (2, 3)");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "tok_emb.weight")["values"]["bytes"] = 13; }),
                 "tensor \"tok_emb.weight\": values span 13 bytes but f16 (2, 3) needs 12");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "blocks.0.mlp.fc.weight")["qmax"] = 200; }),
                 "integer range [-32, 200] is not an ordered range within i8's [-128, 127]");
    expect_error(header_edit_error([](Json& h) {
                     Json& entry = tensor_entry(h, "blocks.0.mlp.fc.weight");
                     entry["qmin"] = 5;
                     entry["qmax"] = 4;
                 }),
                 "integer range [5, 4] is not an ordered range");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "blocks.0.mlp.fc.weight")["chosen_quantile"] = 2; }),
                 "chosen_quantile 2 is not within [0, 1]");
}

TEST(ArtifactTest, LayoutErrors) {
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "scalar_gain")["values"]["offset"] = 78; }),
                 "tensor \"scalar_gain\": values at offset 78 with 4 bytes runs past the 80-byte payload");
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "scalar_gain")["values"]["offset"] = 1ll << 62; }),
                 "runs past the 80-byte payload");
    // mlp values [24, 36) moved onto qkv values [0, 24).
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "blocks.0.mlp.fc.weight")["values"]["offset"] = 20; }),
                 "tensor \"blocks.0.mlp.fc.weight\" values [20, 32) overlaps tensor \"blocks.0.attn.qkv.weight\" "
                 "values [0, 24) in the payload");
    // A zero-byte region must sit on a boundary too.
    expect_error(header_edit_error([](Json& h) { tensor_entry(h, "empty.weight")["values"]["offset"] = 5; }),
                 "tensor \"empty.weight\" values [5, 5) overlaps");

    // A gap: the last region moved one byte on, into an extra byte.
    Parts gap = split(artifact_encode(full_artifact()));
    Json header = Json::parse(gap.header);
    header["payload_bytes"] = 81;
    tensor_entry(header, "scalar_gain")["values"]["offset"] = 77;
    gap.header = header.dump();
    gap.payload.insert(gap.payload.begin() + 76, 0);
    expect_error(decode_error(seal(gap)),
                 "gap of 1 payload bytes before tensor \"scalar_gain\" values (regions must be tightly packed)");

    Parts spare = split(artifact_encode(full_artifact()));
    header = Json::parse(spare.header);
    header["payload_bytes"] = 81;
    spare.header = header.dump();
    spare.payload.push_back(0);
    expect_error(decode_error(seal(spare)), "1 payload bytes after the last region belong to no tensor");
}

TEST(ArtifactTest, ContentErrors) {
    Parts parts = split(artifact_encode(full_artifact()));
    parts.payload[2] = 100;  // qkv values start the payload; their range is [-31, 31]
    expect_error(decode_error(seal(parts)),
                 "tensor \"blocks.0.attn.qkv.weight\": value 100 at index 2 is outside [-31, 31]");

    parts = split(artifact_encode(full_artifact()));
    parts.payload[36 + 2] = 0x00;  // qkv scale 1 (f16 at 36 + 2) becomes +inf
    parts.payload[36 + 3] = 0x7C;
    expect_error(decode_error(seal(parts)), "tensor \"blocks.0.attn.qkv.weight\": scale at index 1 is not finite");

    parts = split(artifact_encode(full_artifact()));
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(parts.payload.data() + 44, &nan, sizeof(nan));  // the per-tensor scale
    expect_error(decode_error(seal(parts)), "tensor \"blocks.0.mlp.fc.weight\": scale at index 0 is not finite");
}

// ---- what the writer refuses -------------------------------------------------------------------------------------

std::string encode_error(const std::function<void(Artifact&)>& edit) {
    Artifact artifact = full_artifact();
    edit(artifact);
    return error_message([&] { artifact_encode(artifact); });
}

TEST(ArtifactTest, EncoderRefusesWhatTheReaderWouldRefuse) {
    expect_error(encode_error([](Artifact& a) { a.tensors[5].name = a.tensors[0].name; }),
                 "pgolf artifact: cannot encode: duplicate tensor name \"blocks.0.attn.qkv.weight\"");
    expect_error(encode_error([](Artifact& a) { a.tensors[0].values.data<std::int8_t>()[3] = -32; }),
                 "tensor \"blocks.0.attn.qkv.weight\": value -32 at index 3 is outside [-31, 31]");
    expect_error(encode_error([](Artifact& a) { a.tensors[1].scales.data<float>()[0] = std::nanf(""); }),
                 "scale at index 0 is not finite");
    expect_error(encode_error([](Artifact& a) { a.tensors[1].chosen_quantile = std::nan(""); }),
                 "chosen_quantile nan is not within [0, 1]");
    expect_error(encode_error([](Artifact& a) { a.tensors[2].values = Tensor(); }),
                 "tensor \"tok_emb.weight\": values are undefined");
    expect_error(encode_error([](Artifact& a) {
                     a.tensors[2].values = Tensor::zeros({2, 3}, DType::bf16);
                 }),
                 "values have dtype bf16, which the format does not store (i8, f16, f32)");
    expect_error(encode_error([](Artifact& a) { a.tensors[0].scales = Tensor(); }), "per_row tensor has no scales");
    expect_error(encode_error([](Artifact& a) { a.tensors[2].scales = Tensor::scalar(1.0); }),
                 "a passthrough tensor has no scales, but scales are given");
    expect_error(encode_error([](Artifact& a) { a.tensors[2].shape = {6}; }),
                 "values shape (2, 3) differs from the tensor shape (6)");
    expect_error(encode_error([](Artifact& a) { a.tensors[0].encoding = static_cast<QuantEncoding>(9); }),
                 "unknown encoding 9");
    expect_error(encode_error([](Artifact& a) { a.tensors[0].name = "bad\xff"; }), "must be UTF-8");
    expect_error(encode_error([](Artifact& a) { a.metadata["k"] = "\xc3"; }), "must be UTF-8");
}

// ---- files and codec detection -------------------------------------------------------------------------------------

TEST(ArtifactTest, FileErrorsNameThePath) {
    TemporaryFolder folder;
    const std::string path = folder.path("model.ptz");
    expect_error(error_message([&] { artifact_read(path); }), path);

    test::test_write_file(path, artifact_encode(full_artifact()));
    expect_error(error_message([&] { artifact_read(path); }),
                 path +
                     ": not a pgolf artifact: an uncompressed container; an artifact file is the container "
                     "compressed by one codec");

    test::test_write_file(path, Bytes{});
    expect_error(error_message([&] { artifact_read(path); }), path + ": not a pgolf artifact: brotli:");

    test::test_write_file(path, Bytes{'h', 'e', 'l', 'l', 'o'});
    expect_error(error_message([&] { artifact_read(path); }), path + ": not a pgolf artifact:");

    // A compressed stream of something else.
    test::test_write_file(path, codec_compress(codec_parse_spec("zstd-3"), Bytes(100, 'a')));
    expect_error(error_message([&] { artifact_read(path); }),
                 path + ": not a pgolf artifact: zstd: decompressed bytes do not start with the artifact magic");

    // The named codec is the only one tried.
    artifact_write(path, small_artifact(), codec_parse_spec("xz-6"));
    expect_error(error_message([&] { artifact_read(path, CodecKind::zstd); }), path + ": not a pgolf artifact: zstd:");
}

TEST(ArtifactTest, FailedWriteKeepsTheOldFile) {
    TemporaryFolder folder;
    const std::string path = folder.path("model.ptz");
    artifact_write(path, small_artifact(), codec_parse_spec("zstd-22"));
    const Bytes before = test::test_read_file(path);
    Artifact bad = small_artifact();
    bad.tensors[1].name = bad.tensors[0].name;
    expect_error(error_message([&] { artifact_write(path, bad, codec_parse_spec("zstd-22")); }),
                 path + ": pgolf artifact: cannot encode: duplicate tensor name");
    EXPECT_EQ(test::test_read_file(path), before);
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(folder.root()), {}), 1);
}

// codec_detect's zlib test rests on two header bytes, so a stream that fails as zlib is tried as brotli too, and the
// message gives both reasons. (Streams with brotli's window 22, as codec_compress and Python write them, begin with the
// nibble 0xB and never pass the zlib test; the fallback is for foreign streams with other windows.)
TEST(ArtifactTest, FailedZlibGuessFallsBackToBrotli) {
    Bytes file = artifact_compress(small_artifact(), codec_parse_spec("zlib-9"));
    file[file.size() / 2] ^= 0xFF;
    ASSERT_EQ(codec_detect(file), CodecKind::zlib);
    const std::string message = error_message([&] { artifact_decompress(file, "model.ptz"); });
    expect_error(message, "model.ptz: not a pgolf artifact: zlib: corrupt input");
    expect_error(message, "; brotli: ");
    // Named explicitly, zlib is the only codec tried.
    expect_error(error_message([&] { artifact_decompress(file, "model.ptz", CodecKind::zlib); }),
                 "model.ptz: not a pgolf artifact: zlib: corrupt input");
    EXPECT_EQ(error_message([&] { artifact_decompress(file, "model.ptz", CodecKind::zlib); }).find("brotli"),
              std::string::npos);
}

}  // namespace
}  // namespace pgolf
