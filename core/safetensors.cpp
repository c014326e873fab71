// Safetensors reading and writing. The reader trusts nothing in the file: every header field is checked before a
// byte of the buffer is used, so a corrupt checkpoint fails with one line instead of a crash or silent garbage.
#include "core/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"

namespace pgolf {

// Tensors are copied to and from the file byte for byte; the format is little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr const char* metadata_key = "__metadata__";

struct DTypeName {
    DType dtype;
    const char* name;
};

constexpr DTypeName dtype_names[] = {
    {DType::f32, "F32"}, {DType::f64, "F64"}, {DType::bf16, "BF16"}, {DType::f16, "F16"}, {DType::i64, "I64"},
    {DType::i32, "I32"}, {DType::u16, "U16"}, {DType::i8, "I8"},     {DType::u8, "U8"},
};

// Names come from the file and may hold any character; JSON quoting keeps every error message on one line.
std::string quoted(const std::string& text) { return json_quote(text); }

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
    throw Error(path + ": safetensors: " + problem);
}

// Two entries of one name in a checkpoint are ambiguous: the parse refuses repeated keys.
OrderedJson parse_header(const std::string& path, const std::string& text) {
    try {
        return json_parse_unique_keys(text, "header");
    } catch (const Error& error) {
        fail(path, error.what());
    }
}

// A non-negative integer that fits in int64 (JSON numbers like 3.0 or -1 are rejected, not rounded).
bool as_count(const OrderedJson& value, std::int64_t& out) {
    if (value.is_number_unsigned()) {
        const auto raw = value.get<std::uint64_t>();
        if (raw > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
        out = static_cast<std::int64_t>(raw);
        return true;
    }
    if (value.is_number_integer()) {
        out = value.get<std::int64_t>();
        return out >= 0;
    }
    return false;
}

struct Entry {
    std::string name;
    DType dtype = DType::f32;
    Shape shape;
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
};

Entry parse_entry(const std::string& path, const std::string& name, const OrderedJson& value,
                  std::uint64_t buffer_size) {
    const std::string where = "tensor " + quoted(name);
    if (!value.is_object()) fail(path, where + ": entry is not an object");
    for (const auto& [key, unused] : value.items()) {
        if (key != "dtype" && key != "shape" && key != "data_offsets") {
            fail(path, where + ": unknown field " + quoted(key));
        }
    }
    if (!value.contains("dtype") || !value.contains("shape") || !value.contains("data_offsets")) {
        fail(path, where + ": entry needs dtype, shape and data_offsets");
    }
    Entry entry;
    entry.name = name;
    const OrderedJson& dtype = value.at("dtype");
    if (!dtype.is_string()) fail(path, where + ": dtype is not a string");
    try {
        entry.dtype = safetensors_dtype_parse(dtype.get<std::string>());
    } catch (const Error&) {
        fail(path, where + ": unknown dtype " + quoted(dtype.get<std::string>()));
    }

    const OrderedJson& shape = value.at("shape");
    if (!shape.is_array()) fail(path, where + ": shape is not an array");
    std::uint64_t numel = 1;
    bool overflow = false;
    for (const OrderedJson& extent_json : shape) {
        std::int64_t extent = 0;
        if (!as_count(extent_json, extent))
            fail(path, where + ": shape " + shape.dump() + " has a negative or non-integer extent");
        entry.shape.push_back(extent);
        // Partial products must stay within int64 as well: Tensor's element count is signed.
        overflow = overflow || __builtin_mul_overflow(numel, static_cast<std::uint64_t>(extent), &numel) ||
                   numel > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    }
    std::uint64_t expected_bytes = 0;
    overflow =
        overflow || __builtin_mul_overflow(numel, static_cast<std::uint64_t>(dtype_size(entry.dtype)), &expected_bytes);
    if (overflow) fail(path, where + ": shape " + shape.dump() + " is too large");

    const OrderedJson& offsets = value.at("data_offsets");
    std::int64_t begin = 0;
    std::int64_t end = 0;
    if (!offsets.is_array() || offsets.size() != 2 || !as_count(offsets[0], begin) || !as_count(offsets[1], end) ||
        begin > end) {
        fail(path, where + ": data_offsets " + offsets.dump() + " is not a pair [begin, end] with 0 <= begin <= end");
    }
    entry.begin = static_cast<std::uint64_t>(begin);
    entry.end = static_cast<std::uint64_t>(end);
    if (entry.end - entry.begin != expected_bytes) {
        fail(path, where + ": data_offsets " + offsets.dump() + " span " + std::to_string(entry.end - entry.begin) +
                       " bytes but " + dtype.get<std::string>() + " " + shape_string(entry.shape) + " needs " +
                       std::to_string(expected_bytes));
    }
    if (entry.end > buffer_size) {
        fail(path, where + ": data_offsets " + offsets.dump() + " run past the " + std::to_string(buffer_size) +
                       "-byte buffer");
    }
    return entry;
}

}  // namespace

std::string safetensors_dtype_name(DType dtype) {
    for (const auto& entry : dtype_names) {
        if (entry.dtype == dtype) return entry.name;
    }
    throw Error("safetensors: no format name for dtype " + dtype_name(dtype));
}

DType safetensors_dtype_parse(const std::string& name) {
    for (const auto& entry : dtype_names) {
        if (name == entry.name) return entry.dtype;
    }
    throw Error("safetensors: unknown dtype " + quoted(name));
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
    for (const auto& [tensor_name, tensor] : tensors) {
        if (tensor_name == name) return tensor;
    }
    throw Error("safetensors: no tensor named " + quoted(name));
}

bool SafetensorsFile::contains(const std::string& name) const {
    return std::any_of(tensors.begin(), tensors.end(), [&](const auto& entry) { return entry.first == name; });
}

void safetensors_write(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    OrderedJson header = OrderedJson::object();
    if (!metadata.empty()) {
        OrderedJson meta = OrderedJson::object();
        for (const auto& [key, value] : metadata) meta[key] = value;
        header[metadata_key] = std::move(meta);
    }
    std::set<std::string> seen;
    std::uint64_t offset = 0;
    for (const auto& [name, tensor] : tensors) {
        if (name == metadata_key) fail(path, "a tensor may not be named \"__metadata__\"");
        if (!seen.insert(name).second) fail(path, "duplicate tensor name " + quoted(name));
        if (!tensor.defined()) fail(path, "tensor " + quoted(name) + " is undefined");
        if (tensor.device() != Device::cpu) fail(path, "tensor " + quoted(name) + " is not on the CPU");
        OrderedJson entry = OrderedJson::object();
        entry["dtype"] = safetensors_dtype_name(tensor.dtype());
        entry["shape"] = tensor.shape();
        entry["data_offsets"] = {offset, offset + tensor.nbytes()};
        header[name] = std::move(entry);
        offset += tensor.nbytes();
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& error) {
        fail(path, std::string("cannot encode header (names and metadata must be UTF-8): ") + error.what());
    }
    // Padding keeps the buffer 8-byte aligned in the file, as the Python library does, so readers may mmap it.
    text.append((8 - text.size() % 8) % 8, ' ');
    const std::uint64_t header_size = text.size();

    AtomicFileWriter writer(path);
    writer.write(&header_size, sizeof(header_size));
    writer.write(text.data(), text.size());
    for (const auto& [name, tensor] : tensors) {
        if (tensor.nbytes() > 0) writer.write(tensor.raw_data(), tensor.nbytes());
    }
    writer.commit();
}

SafetensorsFile safetensors_read(const std::string& path) {
    const std::vector<std::uint8_t> bytes = file_read_bytes(path);
    if (bytes.size() < 8)
        fail(path, "file is " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
    std::uint64_t header_size = 0;
    std::memcpy(&header_size, bytes.data(), sizeof(header_size));
    if (header_size > bytes.size() - 8) {
        fail(path, "header length " + std::to_string(header_size) + " runs past the end of the " +
                       std::to_string(bytes.size()) + "-byte file");
    }
    const std::string text(reinterpret_cast<const char*>(bytes.data()) + 8, header_size);
    const OrderedJson header = parse_header(path, text);
    if (!header.is_object()) fail(path, "header is not a JSON object");

    const std::uint64_t buffer_size = bytes.size() - 8 - header_size;
    const std::uint8_t* buffer = bytes.data() + 8 + header_size;

    SafetensorsFile file;
    std::vector<Entry> entries;
    for (const auto& [name, value] : header.items()) {
        if (name == metadata_key) {
            if (!value.is_object()) fail(path, "__metadata__ is not an object");
            for (const auto& [key, item] : value.items()) {
                if (!item.is_string()) fail(path, "metadata value for " + quoted(key) + " is not a string");
                file.metadata[key] = item.get<std::string>();
            }
            continue;
        }
        entries.push_back(parse_entry(path, name, value, buffer_size));
    }

    // Stable, so zero-byte tensors sharing an offset keep their header order.
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t covered = 0;
    const Entry* previous = nullptr;
    for (const Entry& entry : entries) {
        if (entry.begin < covered) {
            fail(path,
                 "tensor " + quoted(entry.name) + " overlaps tensor " + quoted(previous->name) + " in the buffer");
        }
        if (entry.begin > covered) {
            fail(path,
                 "gap of " + std::to_string(entry.begin - covered) + " bytes before tensor " + quoted(entry.name));
        }
        covered = entry.end;
        previous = &entry;
    }
    if (covered != buffer_size) {
        fail(path, std::to_string(buffer_size - covered) + " trailing bytes after the last tensor");
    }

    file.tensors.reserve(entries.size());
    for (const Entry& entry : entries) {
        Tensor tensor = Tensor::empty(entry.shape, entry.dtype);
        if (tensor.nbytes() > 0) std::memcpy(tensor.raw_data(), buffer + entry.begin, tensor.nbytes());
        file.tensors.emplace_back(entry.name, std::move(tensor));
    }
    return file;
}

}  // namespace pgolf
