// Safetensors checkpoints: the format Python reads in a few lines (u64 header length, JSON header, raw buffer), so
// every tensor the engine stores can be inspected or compared with PyTorch without a custom loader.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace pgolf {

struct SafetensorsFile {
    std::map<std::string, std::string> metadata;
    std::vector<std::pair<std::string, Tensor>> tensors;  // in buffer order

    // Throws pgolf::Error naming the missing tensor.
    const Tensor& at(const std::string& name) const;
    bool contains(const std::string& name) const;
};

// Writes the tensors in the given order (names must be unique, tensors defined and on the CPU) through an
// AtomicFileWriter, so an interrupted save never leaves a truncated checkpoint behind. Empty metadata is omitted.
void safetensors_write(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Reads and validates the whole file; any malformation is a one-line pgolf::Error naming the file and the problem.
SafetensorsFile safetensors_read(const std::string& path);

// The format's dtype names ("F32", "BF16", …); parse throws pgolf::Error on names the engine has no dtype for.
std::string safetensors_dtype_name(DType dtype);
DType safetensors_dtype_parse(const std::string& name);

}  // namespace pgolf
