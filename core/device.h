// Where tensors live and ops run: the `--device cpu|cuda` choice, and whether this build and this machine can honour
// it. Always built, so a CPU-only binary answers "built without CUDA" instead of failing obscurely.
#pragma once

#include <string>

#include "core/tensor.h"

namespace pgolf {

Device device_parse(const std::string& name);  // "cpu" or "cuda"; anything else throws pgolf::Error
std::string device_name(Device device);        // "cpu", "cuda"
// Empty when the device can be used; otherwise one line saying why not ("pgolf was built without CUDA …",
// "no CUDA device: …"). The CPU is always usable.
std::string device_unavailable_reason(Device device);
// Throws pgolf::Error with device_unavailable_reason() unless the device can be used.
void device_require(Device device);
// Waits until the device has finished the work queued so far (nothing to wait for on the CPU): clocks that time GPU
// work read after it (the training budget's, step times).
void device_synchronize(Device device);

}  // namespace pgolf
