// Device names and availability (see device.h).
#include "core/device.h"

#include "core/build_info.h"
#include "core/error.h"

#ifdef PGOLF_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace pgolf {

Device device_parse(const std::string& name) {
    if (name == "cpu") return Device::cpu;
    if (name == "cuda") return Device::cuda;
    throw Error("unknown device '" + name + "' (expected cpu or cuda)");
}

std::string device_name(Device device) { return device == Device::cuda ? "cuda" : "cpu"; }

std::string device_unavailable_reason(Device device) {
    if (device == Device::cpu) return {};
    if (!build_info_has_cuda()) {
        return "pgolf was built without CUDA (PGOLF_CUDA=OFF, or no nvcc when it was configured)";
    }
    std::string reason;
    if (build_info_cuda_devices(reason).empty()) return "no CUDA device: " + reason;
    return {};
}

void device_require(Device device) {
    const std::string reason = device_unavailable_reason(device);
    if (!reason.empty()) throw Error(reason);
}

void device_synchronize(Device device) {
#ifdef PGOLF_WITH_CUDA
    if (device == Device::cuda) cuda_synchronize();
#else
    (void)device;
#endif
}

}  // namespace pgolf
