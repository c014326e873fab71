// The PGOLF artifact container. The reader trusts nothing: the framing, the header's every field, the layout of the
// payload and the payload's values are checked before a tensor is built, so a bad file fails with one line.
#include "model/artifact.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "core/digest.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"

namespace pgolf {

// Tensor bytes are copied to and from the payload as they lie in memory; the format is little-endian.
static_assert(std::endian::native == std::endian::little, "artifact I/O assumes a little-endian host");

namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr std::size_t prefix_size = 16;    // magic, u32 version, u32 header length
constexpr std::size_t checksum_size = 32;  // SHA-256 of everything before it

// The format's own spellings. They are part of version 1, so they must not follow renames of the in-memory enums.
struct EncodingName {
    QuantEncoding encoding;
    const char* name;
};
constexpr EncodingName encoding_names[] = {
    {QuantEncoding::passthrough, "passthrough"},
    {QuantEncoding::per_row, "per_row"},
    {QuantEncoding::per_tensor, "per_tensor"},
};

struct DTypeName {
    DType dtype;
    const char* name;
};
constexpr DTypeName dtype_names[] = {{DType::i8, "i8"}, {DType::f16, "f16"}, {DType::f32, "f32"}};

const char* encoding_text(QuantEncoding encoding) {
    for (const auto& entry : encoding_names) {
        if (entry.encoding == encoding) return entry.name;
    }
    return nullptr;
}

const char* dtype_text(DType dtype) {
    for (const auto& entry : dtype_names) {
        if (entry.dtype == dtype) return entry.name;
    }
    return nullptr;
}

// Names come from the file and may hold any character; JSON quoting keeps them readable and on one line.
std::string quoted(const std::string& text) { return json_quote(text); }

// Shortest text that reads back as the same double ("0.9995", "2", "nan").
std::string number_string(double value) {
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
    return std::string(buffer, result.ptr);
}

std::string span_string(std::uint64_t begin, std::uint64_t end) {
    return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

// Every failure goes through here: a fixed prefix naming the source, and no control character from a hostile file
// (or a library's message about it) can break the one-line rule.
class Reporter {
public:
    explicit Reporter(std::string prefix) : prefix_(std::move(prefix)) {}
    [[noreturn]] void fail(const std::string& problem) const {
        std::string line = prefix_ + problem;
        for (char& c : line) {
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
        }
        throw Error(line);
    }

private:
    std::string prefix_;
};

Reporter reader_reporter(const std::string& source_name) { return Reporter(source_name + ": pgolf artifact: "); }
Reporter not_artifact_reporter(const std::string& source_name) {
    return Reporter(source_name + ": not a pgolf artifact: ");
}

struct Region {
    DType dtype = DType::i8;
    Shape shape;
    std::uint64_t offset = 0;
    std::uint64_t bytes = 0;
};

// One tensor as the header describes it; both the writer and the reader validate this form with the same code.
struct Record {
    std::string name;
    Shape shape;
    QuantEncoding encoding = QuantEncoding::passthrough;
    std::string method;
    std::int32_t qmin = 0;
    std::int32_t qmax = 0;
    double chosen_quantile = 0.0;
    Region values;
    std::optional<Region> scales;
};

std::string where(const Record& record) { return "tensor " + quoted(record.name) + ": "; }

// Element count of a shape, false when an extent is negative or the count (or a partial product) leaves int64.
bool shape_count(const Shape& shape, std::uint64_t& numel) {
    numel = 1;
    for (const std::int64_t extent : shape) {
        if (extent < 0) return false;
        if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(extent), &numel) ||
            numel > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return false;
        }
    }
    return true;
}

void check_region_size(const Reporter& reporter, const Record& record, const Region& region, const char* part) {
    std::uint64_t numel = 0;
    std::uint64_t expected = 0;
    if (!shape_count(region.shape, numel) || __builtin_mul_overflow(numel, dtype_size(region.dtype), &expected)) {
        reporter.fail(where(record) + part + " shape " + shape_string(region.shape) + " is too large");
    }
    if (region.bytes != expected) {
        reporter.fail(where(record) + part + " span " + std::to_string(region.bytes) + " bytes but " +
                      dtype_text(region.dtype) + " " + shape_string(region.shape) + " needs " +
                      std::to_string(expected));
    }
}

// The rules of docs/artifact-format.md "Validation" that concern one tensor's description.
void check_record(const Reporter& reporter, const Record& record) {
    if (record.name.empty()) reporter.fail("a tensor has an empty name");
    std::uint64_t numel = 0;
    if (!shape_count(record.shape, numel)) {
        reporter.fail(where(record) + "shape " + shape_string(record.shape) + " has a negative extent or is too large");
    }
    const bool quantized = record.encoding != QuantEncoding::passthrough;
    const std::string encoding = encoding_text(record.encoding);
    if (record.values.shape != record.shape) {
        reporter.fail(where(record) + "values shape " + shape_string(record.values.shape) +
                      " differs from the tensor shape " + shape_string(record.shape));
    }
    if (quantized && record.values.dtype != DType::i8) {
        reporter.fail(where(record) + encoding + " values must be i8, not " + dtype_text(record.values.dtype));
    }
    if (!quantized && record.values.dtype != DType::f32 && record.values.dtype != DType::f16) {
        reporter.fail(where(record) + "passthrough values must be f32 or f16, not " + dtype_text(record.values.dtype));
    }
    check_region_size(reporter, record, record.values, "values");

    if (!quantized) {
        if (record.scales) reporter.fail(where(record) + "a passthrough tensor has no scales, but scales are given");
    } else {
        if (!record.scales) reporter.fail(where(record) + encoding + " tensor has no scales");
        const Region& scales = *record.scales;
        if (record.encoding == QuantEncoding::per_row) {
            if (record.shape.size() != 2) {
                reporter.fail(where(record) + "per_row needs a 2-D shape, not " + shape_string(record.shape));
            }
            if (scales.dtype != DType::f16) {
                reporter.fail(where(record) + "per_row scales must be f16, not " + dtype_text(scales.dtype));
            }
            if (scales.shape != Shape{record.shape[0]}) {
                reporter.fail(where(record) + "per_row scales shape " + shape_string(scales.shape) +
                              " should be (rows,) = " + shape_string({record.shape[0]}));
            }
        } else {
            if (scales.dtype != DType::f32) {
                reporter.fail(where(record) + "per_tensor scale must be f32, not " + dtype_text(scales.dtype));
            }
            if (!scales.shape.empty()) {
                reporter.fail(where(record) + "per_tensor scale shape " + shape_string(scales.shape) + " should be ()");
            }
        }
        check_region_size(reporter, record, scales, "scales");
        if (record.qmin < -128 || record.qmax > 127 || record.qmin > record.qmax) {
            reporter.fail(where(record) + "integer range [" + std::to_string(record.qmin) + ", " +
                          std::to_string(record.qmax) + "] is not an ordered range within i8's [-128, 127]");
        }
    }
    if (!std::isfinite(record.chosen_quantile) || record.chosen_quantile < 0.0 || record.chosen_quantile > 1.0) {
        reporter.fail(where(record) + "chosen_quantile " + number_string(record.chosen_quantile) +
                      " is not within [0, 1]");
    }
}

// The rules that concern the stored numbers: quantized values inside [qmin, qmax], finite scales.
void check_contents(const Reporter& reporter, const Record& record, const std::uint8_t* values,
                    const std::uint8_t* scales) {
    if (record.encoding == QuantEncoding::passthrough) return;
    for (std::uint64_t i = 0; i < record.values.bytes; ++i) {
        const auto value = static_cast<std::int8_t>(values[i]);
        if (value < record.qmin || value > record.qmax) {
            reporter.fail(where(record) + "value " + std::to_string(value) + " at index " + std::to_string(i) +
                          " is outside [" + std::to_string(record.qmin) + ", " + std::to_string(record.qmax) + "]");
        }
    }
    const Region& region = *record.scales;
    const std::size_t width = dtype_size(region.dtype);
    for (std::uint64_t i = 0; i < region.bytes / width; ++i) {
        bool finite = false;
        if (region.dtype == DType::f16) {
            std::uint16_t bits = 0;
            std::memcpy(&bits, scales + i * width, width);
            finite = (bits & 0x7C00u) != 0x7C00u;
        } else {
            std::uint32_t bits = 0;
            std::memcpy(&bits, scales + i * width, width);
            finite = (bits & 0x7F800000u) != 0x7F800000u;
        }
        if (!finite) reporter.fail(where(record) + "scale at index " + std::to_string(i) + " is not finite");
    }
}

void check_unique_names(const Reporter& reporter, const std::vector<Record>& records) {
    std::set<std::string> names;
    for (const Record& record : records) {
        if (!names.insert(record.name).second) reporter.fail("duplicate tensor name " + quoted(record.name));
    }
}

// The regions must tile the payload exactly: in bounds, no overlap, no gap, nothing left over. Order is free (the
// writer's is documented), so the check sorts by offset.
void check_layout(const Reporter& reporter, const std::vector<Record>& records, std::uint64_t payload_bytes) {
    struct Placed {
        const Record* record;
        const char* part;
        std::uint64_t begin;
        std::uint64_t end;
    };
    std::vector<Placed> placed;
    const auto place = [&](const Record& record, const Region& region, const char* part) {
        if (region.offset > payload_bytes || region.bytes > payload_bytes - region.offset) {
            reporter.fail(where(record) + part + " at offset " + std::to_string(region.offset) + " with " +
                          std::to_string(region.bytes) + " bytes runs past the " + std::to_string(payload_bytes) +
                          "-byte payload");
        }
        placed.push_back({&record, part, region.offset, region.offset + region.bytes});
    };
    for (const Record& record : records) {
        place(record, record.values, "values");
        if (record.scales) place(record, *record.scales, "scales");
    }
    // Stable, so zero-byte regions sharing an offset keep their header order.
    std::stable_sort(placed.begin(), placed.end(), [](const Placed& a, const Placed& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t covered = 0;
    const Placed* previous = nullptr;
    for (const Placed& region : placed) {
        if (region.begin < covered) {
            reporter.fail("tensor " + quoted(region.record->name) + " " + region.part + " " +
                          span_string(region.begin, region.end) + " overlaps tensor " + quoted(previous->record->name) +
                          " " + previous->part + " " + span_string(previous->begin, previous->end) + " in the payload");
        }
        if (region.begin > covered) {
            reporter.fail("gap of " + std::to_string(region.begin - covered) + " payload bytes before tensor " +
                          quoted(region.record->name) + " " + region.part + " (regions must be tightly packed)");
        }
        covered = region.end;
        previous = &region;
    }
    if (covered != payload_bytes) {
        reporter.fail(std::to_string(payload_bytes - covered) +
                      " payload bytes after the last region belong to no "
                      "tensor");
    }
}

std::vector<std::uint8_t> hex_to_bytes(const std::string& hex) {
    std::vector<std::uint8_t> bytes(hex.size() / 2);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    }
    return bytes;
}

std::string bytes_to_hex(std::span<const std::uint8_t> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    for (const std::uint8_t byte : bytes) {
        hex += digits[byte >> 4];
        hex += digits[byte & 0x0F];
    }
    return hex;
}

std::uint32_t read_u32(const std::uint8_t* at) {
    std::uint32_t value = 0;
    std::memcpy(&value, at, sizeof(value));
    return value;
}

bool starts_with_magic(std::span<const std::uint8_t> bytes) {
    return bytes.size() >= artifact_magic.size() &&
           std::equal(artifact_magic.begin(), artifact_magic.end(), bytes.begin(),
                      [](char a, std::uint8_t b) { return static_cast<std::uint8_t>(a) == b; });
}

// ---- header JSON ---------------------------------------------------------------------------------------------------

OrderedJson region_json(const Region& region) {
    OrderedJson json = OrderedJson::object();
    json["dtype"] = dtype_text(region.dtype);
    json["shape"] = region.shape;
    json["offset"] = region.offset;
    json["bytes"] = region.bytes;
    return json;
}

OrderedJson record_json(const Record& record) {
    OrderedJson json = OrderedJson::object();
    json["name"] = record.name;
    json["shape"] = record.shape;
    json["encoding"] = encoding_text(record.encoding);
    json["method"] = record.method;
    json["qmin"] = record.qmin;
    json["qmax"] = record.qmax;
    json["chosen_quantile"] = record.chosen_quantile;
    json["values"] = region_json(record.values);
    if (record.scales) json["scales"] = region_json(*record.scales);
    return json;
}

// A header with two "offset"s is ambiguous: the parse refuses repeated keys.
OrderedJson parse_header(const Reporter& reporter, std::string_view text) {
    try {
        return json_parse_unique_keys(text, "header");
    } catch (const Error& error) {
        reporter.fail(error.what());
    }
}

// A non-negative integer that fits in int64 (3.0 and -1 are rejected, not rounded).
bool as_count(const OrderedJson& value, std::uint64_t& out) {
    if (value.is_number_unsigned()) {
        out = value.get<std::uint64_t>();
        return out <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    }
    if (value.is_number_integer()) {
        const auto signed_value = value.get<std::int64_t>();
        out = static_cast<std::uint64_t>(signed_value);
        return signed_value >= 0;
    }
    return false;
}

// Exactly the fields named (required ones present, nothing unknown); what is the object's place, for messages.
void check_fields(const Reporter& reporter, const OrderedJson& json, const std::string& what,
                  std::initializer_list<const char*> required, std::initializer_list<const char*> optional = {}) {
    if (!json.is_object()) reporter.fail(what + " is not a JSON object");
    for (const char* key : required) {
        if (!json.contains(key)) reporter.fail(what + " lacks the field \"" + key + "\"");
    }
    for (const auto& [key, unused] : json.items()) {
        const auto known = [&](const char* name) { return key == name; };
        if (std::none_of(required.begin(), required.end(), known) &&
            std::none_of(optional.begin(), optional.end(), known)) {
            reporter.fail(what + " has an unknown field " + quoted(key));
        }
    }
}

std::string string_field(const Reporter& reporter, const OrderedJson& json, const char* key, const std::string& what) {
    const OrderedJson& value = json.at(key);
    if (!value.is_string()) reporter.fail(what + " field \"" + key + "\" is not a string");
    return value.get<std::string>();
}

std::uint64_t count_field(const Reporter& reporter, const OrderedJson& json, const char* key, const std::string& what) {
    std::uint64_t out = 0;
    if (!as_count(json.at(key), out)) {
        reporter.fail(what + " field \"" + key + "\" is " + json.at(key).dump() + ", not a non-negative integer");
    }
    return out;
}

std::int32_t int32_field(const Reporter& reporter, const OrderedJson& json, const char* key, const std::string& what) {
    const OrderedJson& value = json.at(key);
    const bool fits = (value.is_number_unsigned() &&
                       value.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<int32_t>::max())) ||
                      (value.is_number_integer() && !value.is_number_unsigned() &&
                       value.get<std::int64_t>() >= std::numeric_limits<std::int32_t>::min() &&
                       value.get<std::int64_t>() <= std::numeric_limits<std::int32_t>::max());
    if (!fits) reporter.fail(what + " field \"" + key + "\" is " + value.dump() + ", not a 32-bit integer");
    return static_cast<std::int32_t>(value.get<std::int64_t>());
}

Shape shape_field(const Reporter& reporter, const OrderedJson& json, const std::string& what) {
    const OrderedJson& value = json.at("shape");
    if (!value.is_array()) reporter.fail(what + " shape is not an array");
    Shape shape;
    for (const OrderedJson& extent : value) {
        std::uint64_t count = 0;
        if (!as_count(extent, count)) {
            reporter.fail(what + " shape " + value.dump() + " has a negative or non-integer extent");
        }
        shape.push_back(static_cast<std::int64_t>(count));
    }
    return shape;
}

Region parse_region(const Reporter& reporter, const OrderedJson& json, const std::string& what) {
    check_fields(reporter, json, what, {"dtype", "shape", "offset", "bytes"});
    Region region;
    const std::string dtype = string_field(reporter, json, "dtype", what);
    const auto* entry = std::find_if(std::begin(dtype_names), std::end(dtype_names),
                                     [&](const DTypeName& candidate) { return dtype == candidate.name; });
    if (entry == std::end(dtype_names)) reporter.fail(what + " has unknown dtype " + quoted(dtype));
    region.dtype = entry->dtype;
    region.shape = shape_field(reporter, json, what);
    region.offset = count_field(reporter, json, "offset", what);
    region.bytes = count_field(reporter, json, "bytes", what);
    return region;
}

Record parse_record(const Reporter& reporter, const OrderedJson& json, std::size_t index) {
    std::string what = "tensors[" + std::to_string(index) + "]";
    if (json.is_object() && json.contains("name") && json.at("name").is_string()) {
        what = "tensor " + quoted(json.at("name").get<std::string>());
    }
    check_fields(reporter, json, what,
                 {"name", "shape", "encoding", "method", "qmin", "qmax", "chosen_quantile", "values"}, {"scales"});
    Record record;
    record.name = string_field(reporter, json, "name", what);
    record.shape = shape_field(reporter, json, what);
    const std::string encoding = string_field(reporter, json, "encoding", what);
    const auto* entry = std::find_if(std::begin(encoding_names), std::end(encoding_names),
                                     [&](const EncodingName& candidate) { return encoding == candidate.name; });
    if (entry == std::end(encoding_names)) reporter.fail(what + " has unknown encoding " + quoted(encoding));
    record.encoding = entry->encoding;
    record.method = string_field(reporter, json, "method", what);
    record.qmin = int32_field(reporter, json, "qmin", what);
    record.qmax = int32_field(reporter, json, "qmax", what);
    const OrderedJson& quantile = json.at("chosen_quantile");
    if (!quantile.is_number()) reporter.fail(what + " field \"chosen_quantile\" is not a number");
    record.chosen_quantile = quantile.get<double>();
    record.values = parse_region(reporter, json.at("values"), what + " values");
    if (json.contains("scales")) record.scales = parse_region(reporter, json.at("scales"), what + " scales");
    return record;
}

}  // namespace

const QuantizedTensor& Artifact::at(const std::string& name) const {
    for (const QuantizedTensor& tensor : tensors) {
        if (tensor.name == name) return tensor;
    }
    throw Error("artifact: no tensor named " + quoted(name));
}

bool Artifact::contains(const std::string& name) const {
    return std::any_of(tensors.begin(), tensors.end(),
                       [&](const QuantizedTensor& tensor) { return tensor.name == name; });
}

std::vector<std::uint8_t> artifact_encode(const Artifact& artifact) {
    const Reporter reporter("pgolf artifact: cannot encode: ");
    std::vector<Record> records;
    records.reserve(artifact.tensors.size());
    const auto describe = [&](const Record& record, const Tensor& tensor, const char* part) {
        if (tensor.device() != Device::cpu) reporter.fail(where(record) + part + " are not on the CPU");
        if (dtype_text(tensor.dtype()) == nullptr) {
            reporter.fail(where(record) + part + " have dtype " + dtype_name(tensor.dtype()) +
                          ", which the format does not store (i8, f16, f32)");
        }
        return Region{tensor.dtype(), tensor.shape(), 0, tensor.nbytes()};
    };
    for (const QuantizedTensor& tensor : artifact.tensors) {
        Record record;
        record.name = tensor.name;
        record.shape = tensor.shape;
        record.encoding = tensor.encoding;
        record.method = tensor.method;
        record.qmin = tensor.qmin;
        record.qmax = tensor.qmax;
        record.chosen_quantile = tensor.chosen_quantile;
        if (encoding_text(tensor.encoding) == nullptr) {
            reporter.fail(where(record) + "unknown encoding " + std::to_string(static_cast<int>(tensor.encoding)));
        }
        if (!tensor.values.defined()) reporter.fail(where(record) + "values are undefined");
        record.values = describe(record, tensor.values, "values");
        if (tensor.scales.defined()) record.scales = describe(record, tensor.scales, "scales");
        check_record(reporter, record);
        records.push_back(std::move(record));
    }
    check_unique_names(reporter, records);

    // Payload order, chosen for the compressor: all i8 values first (one long run of similar small integers), then
    // every scale, then passthrough floats, so no float bytes break up the integer statistics.
    std::vector<std::pair<Region*, const Tensor*>> order;
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (records[i].encoding != QuantEncoding::passthrough)
            order.emplace_back(&records[i].values, &artifact.tensors[i].values);
    }
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (records[i].scales) order.emplace_back(&*records[i].scales, &artifact.tensors[i].scales);
    }
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (records[i].encoding == QuantEncoding::passthrough)
            order.emplace_back(&records[i].values, &artifact.tensors[i].values);
    }
    std::uint64_t payload_bytes = 0;
    for (auto& [region, tensor] : order) {
        region->offset = payload_bytes;
        payload_bytes += region->bytes;
    }
    for (std::size_t i = 0; i < records.size(); ++i) {
        const QuantizedTensor& tensor = artifact.tensors[i];
        check_contents(reporter, records[i], static_cast<const std::uint8_t*>(tensor.values.raw_data()),
                       tensor.scales.defined() ? static_cast<const std::uint8_t*>(tensor.scales.raw_data()) : nullptr);
    }

    OrderedJson header = OrderedJson::object();
    header["scheme"] = artifact.scheme;
    OrderedJson metadata = OrderedJson::object();
    for (const auto& [key, value] : artifact.metadata) metadata[key] = value;
    header["metadata"] = std::move(metadata);
    header["payload_bytes"] = payload_bytes;
    OrderedJson tensors = OrderedJson::array();
    for (const Record& record : records) tensors.push_back(record_json(record));
    header["tensors"] = std::move(tensors);
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& error) {
        reporter.fail(std::string("scheme, metadata, names and methods must be UTF-8: ") + error.what());
    }
    if (text.size() > artifact_max_header_bytes) {
        reporter.fail("the header would be " + std::to_string(text.size()) + " bytes, over the " +
                      std::to_string(artifact_max_header_bytes) + "-byte limit");
    }

    // Sized once and filled by memcpy: every piece's length is known, and the container may be tens of megabytes.
    std::vector<std::uint8_t> out(prefix_size + text.size() + payload_bytes + checksum_size);
    std::size_t cursor = 0;
    const auto put = [&](const void* data, std::size_t bytes) {
        if (bytes > 0) std::memcpy(out.data() + cursor, data, bytes);
        cursor += bytes;
    };
    const std::uint32_t version = artifact_format_version;
    const auto header_size = static_cast<std::uint32_t>(text.size());
    put(artifact_magic.data(), artifact_magic.size());
    put(&version, sizeof(version));
    put(&header_size, sizeof(header_size));
    put(text.data(), text.size());
    for (const auto& [region, tensor] : order) put(tensor->raw_data(), region->bytes);
    const std::vector<std::uint8_t> checksum =
        hex_to_bytes(digest_sha256_hex(std::span<const std::uint8_t>(out).first(cursor)));
    put(checksum.data(), checksum.size());
    return out;
}

Artifact artifact_decode(std::span<const std::uint8_t> container, const std::string& source_name) {
    const Reporter reporter = reader_reporter(source_name);
    const std::size_t size = container.size();
    const std::size_t magic_checked = std::min(size, artifact_magic.size());
    if (!std::equal(container.begin(), container.begin() + static_cast<std::ptrdiff_t>(magic_checked),
                    artifact_magic.begin(), [](std::uint8_t a, char b) { return a == static_cast<std::uint8_t>(b); })) {
        not_artifact_reporter(source_name)
            .fail("starts with bytes " + bytes_to_hex(container.first(magic_checked)) + " instead of the magic \"" +
                  std::string(artifact_magic) + "\"");
    }
    if (size < prefix_size + checksum_size) {
        reporter.fail("truncated: " + std::to_string(size) + " bytes cannot hold the " +
                      std::to_string(prefix_size + checksum_size) + " bytes of framing");
    }
    const std::uint32_t version = read_u32(container.data() + 8);
    if (version != artifact_format_version) {
        reporter.fail("unsupported format version " + std::to_string(version) + " (this build reads version " +
                      std::to_string(artifact_format_version) + ")");
    }
    const std::uint64_t header_size = read_u32(container.data() + 12);
    if (header_size > size - prefix_size - checksum_size) {
        reporter.fail("header length " + std::to_string(header_size) + " runs past the end of the " +
                      std::to_string(size) + "-byte container");
    }
    if (header_size > artifact_max_header_bytes) {
        reporter.fail("header length " + std::to_string(header_size) + " exceeds the " +
                      std::to_string(artifact_max_header_bytes) + "-byte limit");
    }
    const std::string_view text(reinterpret_cast<const char*>(container.data()) + prefix_size, header_size);
    const OrderedJson header = parse_header(reporter, text);
    check_fields(reporter, header, "header", {"scheme", "metadata", "payload_bytes", "tensors"});

    // Sizes and the checksum before any other field is believed: a truncated or corrupted file should say so, rather
    // than whatever its damaged header happens to look like.
    const std::uint64_t payload_bytes = count_field(reporter, header, "payload_bytes", "header");
    const std::uint64_t available = size - prefix_size - header_size - checksum_size;
    if (payload_bytes > available) {
        reporter.fail("truncated: the header announces a " + std::to_string(payload_bytes) + "-byte payload but " +
                      std::to_string(size) + " bytes hold only " + std::to_string(available));
    }
    if (payload_bytes < available) {
        reporter.fail(std::to_string(available - payload_bytes) + " trailing bytes after the checksum");
    }
    const std::size_t checked = size - checksum_size;
    const std::string stored = bytes_to_hex(container.subspan(checked));
    const std::string actual = digest_sha256_hex(container.first(checked));
    if (stored != actual)
        reporter.fail("checksum mismatch: stored SHA-256 " + stored + ", content hashes to " + actual);

    Artifact artifact;
    artifact.scheme = string_field(reporter, header, "scheme", "header");
    const OrderedJson& metadata = header.at("metadata");
    if (!metadata.is_object()) reporter.fail("header field \"metadata\" is not a JSON object");
    for (const auto& [key, value] : metadata.items()) {
        if (!value.is_string()) reporter.fail("metadata value for " + quoted(key) + " is not a string");
        artifact.metadata[key] = value.get<std::string>();
    }
    const OrderedJson& tensors = header.at("tensors");
    if (!tensors.is_array()) reporter.fail("header field \"tensors\" is not an array");
    std::vector<Record> records;
    records.reserve(tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        records.push_back(parse_record(reporter, tensors[i], i));
        check_record(reporter, records.back());
    }
    check_unique_names(reporter, records);
    check_layout(reporter, records, payload_bytes);

    const std::uint8_t* payload = container.data() + prefix_size + header_size;
    artifact.tensors.reserve(records.size());
    for (const Record& record : records) {
        check_contents(reporter, record, payload + record.values.offset,
                       record.scales ? payload + record.scales->offset : nullptr);
        const auto build = [&](const Region& region) {
            Tensor tensor = Tensor::empty(region.shape, region.dtype);
            if (region.bytes > 0) std::memcpy(tensor.raw_data(), payload + region.offset, region.bytes);
            return tensor;
        };
        QuantizedTensor tensor;
        tensor.name = record.name;
        tensor.shape = record.shape;
        tensor.encoding = record.encoding;
        tensor.method = record.method;
        tensor.qmin = record.qmin;
        tensor.qmax = record.qmax;
        tensor.chosen_quantile = record.chosen_quantile;
        tensor.values = build(record.values);
        if (record.scales) tensor.scales = build(*record.scales);
        artifact.tensors.push_back(std::move(tensor));
    }
    return artifact;
}

std::vector<std::uint8_t> artifact_compress(const Artifact& artifact, const CodecSpec& spec) {
    return codec_compress(spec, artifact_encode(artifact));
}

ArtifactFile artifact_decompress(std::span<const std::uint8_t> file_bytes, const std::string& source_name,
                                 std::optional<CodecKind> codec) {
    std::vector<CodecKind> candidates;
    if (codec) {
        candidates.push_back(*codec);
    } else {
        const std::optional<CodecKind> detected = codec_detect(file_bytes);
        if (detected) candidates.push_back(*detected);
        // Brotli has no magic, and the zlib guess rests on two header bytes that a brotli stream can match by chance.
        if (!detected || *detected == CodecKind::zlib) candidates.push_back(CodecKind::brotli);
    }
    std::string reasons;
    for (const CodecKind kind : candidates) {
        std::vector<std::uint8_t> container;
        try {
            container = codec_decompress(kind, file_bytes, artifact_max_container_bytes);
        } catch (const Error& error) {
            reasons += std::string(reasons.empty() ? "" : "; ") + error.what();
            continue;
        }
        // A wrong guess can still decode to something; only a stream that yields the magic is this codec's.
        if (!starts_with_magic(container)) {
            reasons += std::string(reasons.empty() ? "" : "; ") + codec_kind_name(kind) +
                       ": decompressed bytes do not start with the artifact magic";
            continue;
        }
        ArtifactFile file;
        file.artifact = artifact_decode(container, source_name);
        file.codec = kind;
        file.file_bytes = static_cast<std::int64_t>(file_bytes.size());
        file.container_bytes = static_cast<std::int64_t>(container.size());
        return file;
    }
    if (starts_with_magic(file_bytes)) {
        not_artifact_reporter(source_name)
            .fail("an uncompressed container; an artifact file is the container compressed by one codec");
    }
    not_artifact_reporter(source_name).fail(reasons);
}

std::int64_t artifact_write(const std::string& path, const Artifact& artifact, const CodecSpec& spec) {
    std::vector<std::uint8_t> bytes;
    try {
        bytes = artifact_compress(artifact, spec);
    } catch (const Error& error) {
        throw Error(path + ": " + error.what());
    }
    AtomicFileWriter writer(path);
    writer.write(bytes.data(), bytes.size());
    writer.commit();
    return static_cast<std::int64_t>(bytes.size());
}

ArtifactFile artifact_read(const std::string& path, std::optional<CodecKind> codec) {
    const std::vector<std::uint8_t> bytes = file_read_bytes(path);
    return artifact_decompress(bytes, path, codec);
}

std::vector<ArtifactTensorBytes> artifact_tensor_bytes(const Artifact& artifact) {
    std::vector<ArtifactTensorBytes> out;
    out.reserve(artifact.tensors.size());
    for (const QuantizedTensor& tensor : artifact.tensors) {
        out.push_back({tensor.name, tensor.values.defined() ? static_cast<std::int64_t>(tensor.values.nbytes()) : 0,
                       tensor.scales.defined() ? static_cast<std::int64_t>(tensor.scales.nbytes()) : 0});
    }
    return out;
}

std::int64_t artifact_payload_bytes(const Artifact& artifact) {
    std::int64_t total = 0;
    for (const ArtifactTensorBytes& entry : artifact_tensor_bytes(artifact)) {
        total += entry.values_bytes + entry.scales_bytes;
    }
    return total;
}

}  // namespace pgolf
