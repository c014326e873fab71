// Tensor storage (64-byte aligned, shared by views), dtype conversions and element access.
#include "core/tensor.h"

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#ifdef PGOLF_WITH_CUDA
#include "core/cuda/convert.h"
#include "core/cuda/runtime.h"
#endif

namespace pgolf {

struct Tensor::Storage {
    Storage(std::size_t bytes, Device where) : size(bytes), device(where) {
        if (device == Device::cuda) {
#ifdef PGOLF_WITH_CUDA
            // The caching allocator hands out 256-byte aligned blocks (cudaMalloc's alignment), never null.
            data = cuda_memory_allocate(bytes);
            return;
#else
            throw Error("a cuda tensor needs the CUDA backend: pgolf was built without CUDA");
#endif
        }
        // Aligned for vector loads; at least one byte so empty tensors still have a storage (defined()).
        const std::size_t rounded = ((bytes + 63) / 64) * 64;
        data = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
        if (data == nullptr) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
    }
    ~Storage() {
#ifdef PGOLF_WITH_CUDA
        if (device == Device::cuda) {
            cuda_memory_release(data);
            return;
        }
#endif
        std::free(data);
    }
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
    void* data = nullptr;
    std::size_t size;
    Device device;
};

namespace {

// Copies bytes between tensors' memory on any devices (plain memmove between host tensors).
void tensor_copy_bytes(void* destination, Device destination_device, const void* source, Device source_device,
                       std::size_t bytes) {
    if (bytes == 0) return;
    if (destination_device == Device::cpu && source_device == Device::cpu) {
        std::memmove(destination, source, bytes);
        return;
    }
#ifdef PGOLF_WITH_CUDA
    cuda_memory_copy(destination, source, bytes, destination_device == Device::cpu);
#else
    throw Error("copy involving a cuda tensor: pgolf was built without CUDA");
#endif
}

}  // namespace

std::size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::f64:
        case DType::i64:
            return 8;
        case DType::f32:
        case DType::i32:
            return 4;
        case DType::bf16:
        case DType::f16:
        case DType::u16:
            return 2;
        case DType::i8:
        case DType::u8:
            return 1;
    }
    return 0;
}

std::string dtype_name(DType dtype) {
    switch (dtype) {
        case DType::f32:
            return "f32";
        case DType::f64:
            return "f64";
        case DType::bf16:
            return "bf16";
        case DType::f16:
            return "f16";
        case DType::i64:
            return "i64";
        case DType::i32:
            return "i32";
        case DType::u16:
            return "u16";
        case DType::i8:
            return "i8";
        case DType::u8:
            return "u8";
    }
    return "?";
}

DType dtype_parse(const std::string& name) {
    for (DType dtype :
         {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i64, DType::i32, DType::u16, DType::i8, DType::u8}) {
        if (dtype_name(dtype) == name) return dtype;
    }
    throw Error("unknown dtype '" + name + "' (expected f32, f64, bf16, f16, i64, i32, u16, i8 or u8)");
}

bool dtype_is_floating(DType dtype) {
    return dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16 || dtype == DType::f16;
}

std::uint16_t bf16_from_float(float value) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
    if (std::isnan(value)) return static_cast<std::uint16_t>((bits >> 16) | 0x0040);  // stay NaN, quiet
    // Round to nearest, ties to even: add 0x7FFF plus the lowest kept bit, then truncate.
    const std::uint32_t rounding = 0x7FFF + ((bits >> 16) & 1);
    return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

float float_from_bf16(std::uint16_t bits) { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }

std::uint16_t f16_from_float(float value) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
    const std::uint32_t sign = (bits >> 16) & 0x8000;
    const std::uint32_t magnitude = bits & 0x7FFFFFFF;
    if (magnitude > 0x7F800000) return static_cast<std::uint16_t>(sign | 0x7E00);   // NaN
    if (magnitude >= 0x477FF000) return static_cast<std::uint16_t>(sign | 0x7C00);  // rounds to >= 65520: inf
    if (magnitude < 0x38800000) {
        // Subnormal half (or zero): value = m * 2^-24. Scale the float and round to nearest even integer.
        const float scaled = std::bit_cast<float>(magnitude) * 16777216.0f;  // * 2^24, exact
        const float rounded = std::nearbyint(scaled);                        // default rounding mode: ties to even
        return static_cast<std::uint16_t>(sign | static_cast<std::uint32_t>(rounded));
    }
    // Normal: re-bias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits, ties to even.
    const std::uint32_t rebased = magnitude - (112u << 23);
    const std::uint32_t rounding = 0xFFF + ((rebased >> 13) & 1);
    return static_cast<std::uint16_t>(sign | ((rebased + rounding) >> 13));
}

float float_from_f16(std::uint16_t half) {
    const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000) << 16;
    const std::uint32_t exponent = (half >> 10) & 0x1F;
    const std::uint32_t mantissa = half & 0x3FF;
    if (exponent == 0) {
        const float value = static_cast<float>(mantissa) * 5.9604644775390625e-08f;  // m * 2^-24
        return sign ? -value : value;
    }
    if (exponent == 31) return std::bit_cast<float>(sign | 0x7F800000 | (mantissa << 13));
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

std::string shape_string(const Shape& shape) {
    std::string text = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i > 0) text += ", ";
        text += std::to_string(shape[i]);
    }
    return text + ")";
}

std::int64_t shape_numel(const Shape& shape) {
    std::int64_t count = 1;
    for (const std::int64_t extent : shape) {
        if (extent < 0) throw Error("negative extent in shape " + shape_string(shape));
        count *= extent;
    }
    return count;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
    Tensor tensor;
    tensor.shape_ = shape;
    tensor.numel_ = shape_numel(shape);
    tensor.dtype_ = dtype;
    tensor.device_ = device;
    tensor.storage_ = std::make_shared<Storage>(tensor.nbytes(), device);
    return tensor;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
    Tensor tensor = empty(shape, dtype, device);
    tensor.zero();
    return tensor;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
    Tensor tensor = empty(shape, dtype);
    tensor.fill(value);
    return tensor;
}

Tensor Tensor::from_values(std::span<const double> values, const Shape& shape, DType dtype) {
    Tensor tensor = empty(shape, dtype);
    if (static_cast<std::int64_t>(values.size()) != tensor.numel()) {
        throw Error("from_values: " + std::to_string(values.size()) + " values for shape " + shape_string(shape));
    }
    for (std::size_t i = 0; i < values.size(); ++i) tensor.set_item(static_cast<std::int64_t>(i), values[i]);
    return tensor;
}

Tensor Tensor::from_floats(std::span<const float> values, const Shape& shape) {
    Tensor tensor = empty(shape, DType::f32);
    if (static_cast<std::int64_t>(values.size()) != tensor.numel()) {
        throw Error("from_floats: " + std::to_string(values.size()) + " values for shape " + shape_string(shape));
    }
    std::memcpy(tensor.raw_data(), values.data(), values.size_bytes());
    return tensor;
}

Tensor Tensor::from_ids(std::span<const std::int64_t> values, const Shape& shape) {
    Tensor tensor = empty(shape, DType::i64);
    if (static_cast<std::int64_t>(values.size()) != tensor.numel()) {
        throw Error("from_ids: " + std::to_string(values.size()) + " values for shape " + shape_string(shape));
    }
    std::memcpy(tensor.raw_data(), values.data(), values.size_bytes());
    return tensor;
}

Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

std::int64_t Tensor::size(std::int64_t axis) const {
    const std::int64_t rank = dim();
    const std::int64_t resolved = axis < 0 ? axis + rank : axis;
    if (resolved < 0 || resolved >= rank) {
        throw Error("axis " + std::to_string(axis) + " out of range for shape " + shape_string(shape_));
    }
    return shape_[static_cast<std::size_t>(resolved)];
}

void Tensor::check_host(const char* operation) const {
    if (device_ != Device::cpu) {
        throw Error(std::string(operation) + ": the tensor is on cuda; copy it to the cpu first (to_device)");
    }
}

void Tensor::check_type(DType expected) const {
    if (!defined()) throw Error("access to an undefined tensor");
    const bool ok = dtype_ == expected || (expected == DType::u16 && (dtype_ == DType::bf16 || dtype_ == DType::f16));
    if (!ok) throw Error("tensor of dtype " + dtype_name(dtype_) + " accessed as " + dtype_name(expected));
}

namespace {
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
    return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
    return DType::f64;
}
template <>
constexpr DType dtype_of<std::int64_t>() {
    return DType::i64;
}
template <>
constexpr DType dtype_of<std::int32_t>() {
    return DType::i32;
}
template <>
constexpr DType dtype_of<std::uint16_t>() {
    return DType::u16;
}
template <>
constexpr DType dtype_of<std::int8_t>() {
    return DType::i8;
}
template <>
constexpr DType dtype_of<std::uint8_t>() {
    return DType::u8;
}
}  // namespace

template <typename T>
T* Tensor::data() {
    check_type(dtype_of<T>());
    return reinterpret_cast<T*>(static_cast<unsigned char*>(storage_->data) + offset_bytes_);
}

template <typename T>
const T* Tensor::data() const {
    check_type(dtype_of<T>());
    return reinterpret_cast<const T*>(static_cast<const unsigned char*>(storage_->data) + offset_bytes_);
}

#define PGOLF_TENSOR_DATA(T)       \
    template T* Tensor::data<T>(); \
    template const T* Tensor::data<T>() const;
PGOLF_TENSOR_DATA(float)
PGOLF_TENSOR_DATA(double)
PGOLF_TENSOR_DATA(std::int64_t)
PGOLF_TENSOR_DATA(std::int32_t)
PGOLF_TENSOR_DATA(std::uint16_t)
PGOLF_TENSOR_DATA(std::int8_t)
PGOLF_TENSOR_DATA(std::uint8_t)
#undef PGOLF_TENSOR_DATA

void* Tensor::raw_data() {
    if (!defined()) throw Error("access to an undefined tensor");
    return static_cast<unsigned char*>(storage_->data) + offset_bytes_;
}

const void* Tensor::raw_data() const {
    if (!defined()) throw Error("access to an undefined tensor");
    return static_cast<const unsigned char*>(storage_->data) + offset_bytes_;
}

double Tensor::item(std::int64_t i) const {
    check_host("item");
    if (i < 0 || i >= numel_) throw Error("item index " + std::to_string(i) + " out of range " + shape_string(shape_));
    const void* base = raw_data();
    switch (dtype_) {
        case DType::f32:
            return static_cast<const float*>(base)[i];
        case DType::f64:
            return static_cast<const double*>(base)[i];
        case DType::bf16:
            return float_from_bf16(static_cast<const std::uint16_t*>(base)[i]);
        case DType::f16:
            return float_from_f16(static_cast<const std::uint16_t*>(base)[i]);
        case DType::i64:
            return static_cast<double>(static_cast<const std::int64_t*>(base)[i]);
        case DType::i32:
            return static_cast<const std::int32_t*>(base)[i];
        case DType::u16:
            return static_cast<const std::uint16_t*>(base)[i];
        case DType::i8:
            return static_cast<const std::int8_t*>(base)[i];
        case DType::u8:
            return static_cast<const std::uint8_t*>(base)[i];
    }
    return 0.0;
}

void Tensor::set_item(std::int64_t i, double value) {
    check_host("set_item");
    if (i < 0 || i >= numel_) throw Error("item index " + std::to_string(i) + " out of range " + shape_string(shape_));
    void* base = raw_data();
    switch (dtype_) {
        case DType::f32:
            static_cast<float*>(base)[i] = static_cast<float>(value);
            break;
        case DType::f64:
            static_cast<double*>(base)[i] = value;
            break;
        case DType::bf16:
            static_cast<std::uint16_t*>(base)[i] = bf16_from_float(static_cast<float>(value));
            break;
        case DType::f16:
            static_cast<std::uint16_t*>(base)[i] = f16_from_float(static_cast<float>(value));
            break;
        case DType::i64:
            static_cast<std::int64_t*>(base)[i] = static_cast<std::int64_t>(value);
            break;
        case DType::i32:
            static_cast<std::int32_t*>(base)[i] = static_cast<std::int32_t>(value);
            break;
        case DType::u16:
            static_cast<std::uint16_t*>(base)[i] = static_cast<std::uint16_t>(value);
            break;
        case DType::i8:
            static_cast<std::int8_t*>(base)[i] = static_cast<std::int8_t>(value);
            break;
        case DType::u8:
            static_cast<std::uint8_t*>(base)[i] = static_cast<std::uint8_t>(value);
            break;
    }
}

std::vector<double> Tensor::to_doubles() const {
    std::vector<double> values(static_cast<std::size_t>(numel_));
    for (std::int64_t i = 0; i < numel_; ++i) values[static_cast<std::size_t>(i)] = item(i);
    return values;
}

Tensor Tensor::clone() const { return to_device(device_); }

Tensor Tensor::to_device(Device device) const {
    if (!defined()) throw Error("to_device: undefined tensor");
    Tensor copy = empty(shape_, dtype_, device);
    tensor_copy_bytes(copy.raw_data(), device, raw_data(), device_, nbytes());
    return copy;
}

Tensor Tensor::reshape(const Shape& shape) const {
    Shape resolved = shape;
    std::int64_t known = 1;
    int inferred = -1;
    for (std::size_t i = 0; i < resolved.size(); ++i) {
        if (resolved[i] == -1) {
            if (inferred >= 0) throw Error("reshape: more than one -1 in " + shape_string(shape));
            inferred = static_cast<int>(i);
        } else {
            known *= resolved[i];
        }
    }
    if (inferred >= 0) {
        if (known == 0 || numel_ % known != 0) {
            throw Error("reshape: cannot view " + shape_string(shape_) + " as " + shape_string(shape));
        }
        resolved[static_cast<std::size_t>(inferred)] = numel_ / known;
    }
    if (shape_numel(resolved) != numel_) {
        throw Error("reshape: cannot view " + shape_string(shape_) + " as " + shape_string(shape));
    }
    Tensor view = *this;
    view.shape_ = resolved;
    return view;
}

Tensor Tensor::rows(std::int64_t begin, std::int64_t end) const {
    if (dim() == 0 || begin < 0 || end < begin || end > shape_[0]) {
        throw Error("rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") out of range for " +
                    shape_string(shape_));
    }
    Tensor view = *this;
    const std::int64_t row_elements = shape_[0] == 0 ? 0 : numel_ / shape_[0];
    view.shape_[0] = end - begin;
    view.numel_ = row_elements * (end - begin);
    view.offset_bytes_ = offset_bytes_ + static_cast<std::size_t>(begin * row_elements) * dtype_size(dtype_);
    return view;
}

Tensor Tensor::to(DType dtype) const {
    if (dtype == dtype_) return clone();
#ifdef PGOLF_WITH_CUDA
    if (device_ == Device::cuda) return cuda_convert(*this, dtype);  // f32 <-> bf16 on the device
#endif
    check_host("to");
    Tensor converted = empty(shape_, dtype);
    if (dtype_ == DType::f32 && dtype == DType::bf16) {
        const float* source = data<float>();
        std::uint16_t* target = converted.data<std::uint16_t>();
        for (std::int64_t i = 0; i < numel_; ++i) target[i] = bf16_from_float(source[i]);
        return converted;
    }
    for (std::int64_t i = 0; i < numel_; ++i) converted.set_item(i, item(i));
    return converted;
}

void Tensor::fill(double value) {
#ifdef PGOLF_WITH_CUDA
    if (device_ == Device::cuda) {
        cuda_fill(*this, value);  // f32 or bf16
        return;
    }
#endif
    check_host("fill");
    if (dtype_ == DType::f32) {
        float* values = data<float>();
        for (std::int64_t i = 0; i < numel_; ++i) values[i] = static_cast<float>(value);
        return;
    }
    for (std::int64_t i = 0; i < numel_; ++i) set_item(i, value);
}

void Tensor::zero() {
    if (nbytes() == 0) return;
    if (device_ == Device::cpu) {
        std::memset(raw_data(), 0, nbytes());
        return;
    }
#ifdef PGOLF_WITH_CUDA
    cuda_memory_zero(raw_data(), nbytes());
#endif
}

void Tensor::copy_from(const Tensor& other) {
    if (other.shape_ != shape_ || other.dtype_ != dtype_) {
        throw Error("copy_from: " + dtype_name(other.dtype_) + shape_string(other.shape_) + " into " +
                    dtype_name(dtype_) + shape_string(shape_));
    }
    tensor_copy_bytes(raw_data(), device_, other.raw_data(), other.device_, nbytes());
}

void tensor_check_shape(const Tensor& tensor, const Shape& expected, const char* op, const char* name) {
    if (!tensor.defined() || tensor.shape() != expected) {
        throw Error(std::string(op) + ": " + name + " has shape " +
                    (tensor.defined() ? shape_string(tensor.shape()) : std::string("(undefined)")) + ", expected " +
                    shape_string(expected));
    }
}

void tensor_check_dtype(const Tensor& tensor, DType expected, const char* op, const char* name) {
    if (!tensor.defined() || tensor.dtype() != expected) {
        throw Error(std::string(op) + ": " + name + " has dtype " +
                    (tensor.defined() ? dtype_name(tensor.dtype()) : std::string("(undefined)")) + ", expected " +
                    dtype_name(expected));
    }
}

void tensor_check_floating(const Tensor& tensor, const char* op, const char* name) {
    if (!tensor.defined() || (tensor.dtype() != DType::f32 && tensor.dtype() != DType::f64)) {
        throw Error(std::string(op) + ": " + name + " must be f32 or f64" +
                    (tensor.defined() ? ", not " + dtype_name(tensor.dtype()) : std::string(" (undefined)")));
    }
    tensor_check_device(tensor, Device::cpu, op, name);
}

void tensor_check_device(const Tensor& tensor, Device device, const char* op, const char* name) {
    if (!tensor.defined()) throw Error(std::string(op) + ": " + name + " is undefined");
    if (tensor.device() != device) {
        throw Error(std::string(op) + ": " + name + " is on " + (tensor.device() == Device::cuda ? "cuda" : "cpu") +
                    ", expected " + (device == Device::cuda ? "cuda" : "cpu"));
    }
}

}  // namespace pgolf
