// Tensors: contiguous, row-major, explicit dtype and device. The CPU fp32 path is the engine's specification; f64
// exists so gradient checks can run in double. Storage is shared between a tensor and its views (reshape, rows).
// A cuda tensor's storage is device memory from the CUDA caching allocator: its data pointers are device pointers,
// element access from the host (item, set_item) is refused, fill and to(dtype) run on the device for f32 and bf16,
// and to_device() copies between the two.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace pgolf {

enum class DType : std::uint8_t { f32, f64, bf16, f16, i64, i32, u16, i8, u8 };
enum class Device : std::uint8_t { cpu, cuda };

std::size_t dtype_size(DType dtype);
std::string dtype_name(DType dtype);         // "f32", "bf16", …
DType dtype_parse(const std::string& name);  // throws pgolf::Error on an unknown name
bool dtype_is_floating(DType dtype);

// bf16 and f16 conversions with round-to-nearest-even, NaN kept NaN (quiet), overflow to infinity.
std::uint16_t bf16_from_float(float value);
float float_from_bf16(std::uint16_t bits);
std::uint16_t f16_from_float(float value);
float float_from_f16(std::uint16_t bits);
// Rounds through bf16 and back: the value a bf16 tensor would hold.
inline float bf16_round(float value) { return float_from_bf16(bf16_from_float(value)); }

using Shape = std::vector<std::int64_t>;
std::string shape_string(const Shape& shape);  // "(2, 3, 4)"
std::int64_t shape_numel(const Shape& shape);

class Tensor {
public:
    Tensor() = default;  // undefined: defined() is false

    // Uninitialised contents. Device::cuda needs the CUDA backend and a GPU (otherwise pgolf::Error saying which).
    static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
    static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
    static Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
    // Copies values (converted to dtype) into a new tensor; values.size() must equal the shape's element count.
    static Tensor from_values(std::span<const double> values, const Shape& shape, DType dtype = DType::f32);
    static Tensor from_floats(std::span<const float> values, const Shape& shape);
    static Tensor from_ids(std::span<const std::int64_t> values, const Shape& shape);  // i64
    static Tensor scalar(double value, DType dtype = DType::f32);                      // shape ()

    bool defined() const { return storage_ != nullptr; }
    const Shape& shape() const { return shape_; }
    std::int64_t dim() const { return static_cast<std::int64_t>(shape_.size()); }
    std::int64_t size(std::int64_t axis) const;  // negative axes count from the end
    std::int64_t numel() const { return numel_; }
    DType dtype() const { return dtype_; }
    Device device() const { return device_; }
    std::size_t nbytes() const { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }

    // Typed access; throws pgolf::Error when T does not match the dtype (bf16/f16 are std::uint16_t). On a cuda tensor
    // these are device pointers, for kernels and copies only.
    template <typename T>
    T* data();
    template <typename T>
    const T* data() const;
    void* raw_data();
    const void* raw_data() const;

    // Element i (flat index) read as double / written from double, whatever the dtype. For tests and small work.
    double item(std::int64_t flat_index = 0) const;
    void set_item(std::int64_t flat_index, double value);
    std::vector<double> to_doubles() const;

    Tensor clone() const;                                     // deep copy, on the same device
    Tensor to_device(Device device) const;                    // copy on device (same device: clone)
    // For reading results on the host: this tensor itself when it is on the cpu (a handle, no copy), else a host copy.
    Tensor host() const { return device_ == Device::cpu ? *this : to_device(Device::cpu); }
    Tensor reshape(const Shape& shape) const;                 // view; one dimension may be -1
    Tensor rows(std::int64_t begin, std::int64_t end) const;  // view of [begin, end) along axis 0
    Tensor to(DType dtype) const;         // converted copy (same dtype: clone); on cuda f32 <-> bf16 only
    void fill(double value);              // on cuda: f32 and bf16 only
    void zero();                          // either device
    void copy_from(const Tensor& other);  // same shape and dtype, either devices
    bool same_storage(const Tensor& other) const { return storage_ == other.storage_; }
    // Whether another tensor (a view, a copy of the handle) holds this tensor's storage too.
    bool storage_shared() const { return storage_.use_count() > 1; }

private:
    struct Storage;
    std::shared_ptr<Storage> storage_;
    std::size_t offset_bytes_ = 0;
    Shape shape_;
    std::int64_t numel_ = 0;
    DType dtype_ = DType::f32;
    Device device_ = Device::cpu;

    void check_type(DType expected) const;
    void check_host(const char* operation) const;  // throws unless the tensor is on the cpu
};

// Throws pgolf::Error naming the op when a tensor's shape or dtype is not what the op needs.
void tensor_check_shape(const Tensor& tensor, const Shape& expected, const char* op, const char* name);
void tensor_check_dtype(const Tensor& tensor, DType expected, const char* op, const char* name);
// f32 or f64 on the cpu: the CPU reference ops call it on their inputs, so a cuda tensor is refused with its name.
void tensor_check_floating(const Tensor& tensor, const char* op, const char* name);
// Throws pgolf::Error naming the op and argument unless the tensor is defined and on device.
void tensor_check_device(const Tensor& tensor, Device device, const char* op, const char* name);

}  // namespace pgolf
