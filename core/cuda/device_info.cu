// Lists CUDA devices through the runtime API; a machine without a driver or GPU reports why instead of failing.
#include <cuda_runtime.h>

#include "core/cuda/device_info.h"

namespace pgolf {

std::vector<CudaDeviceInfo> cuda_list_devices(std::string& reason) {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        reason = std::string("CUDA runtime: ") + cudaGetErrorString(status);
        return {};
    }
    std::vector<CudaDeviceInfo> devices;
    for (int index = 0; index < count; ++index) {
        cudaDeviceProp properties{};
        if (cudaGetDeviceProperties(&properties, index) != cudaSuccess) continue;
        devices.push_back(
            CudaDeviceInfo{index, properties.name, properties.major, properties.minor, properties.totalGlobalMem});
    }
    if (devices.empty()) reason = "CUDA runtime: no devices";
    return devices;
}

}  // namespace pgolf
