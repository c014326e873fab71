// What this binary is: version, build type, and which backends were compiled in (for --version and run ledgers).
#pragma once

#include <string>
#include <vector>

namespace pgolf {

struct CudaDeviceInfo {
    int index = 0;
    std::string name;
    int major = 0;
    int minor = 0;
    std::size_t memory_bytes = 0;
};

std::string build_info_version();
bool build_info_has_cuda();
// Devices visible to the CUDA runtime. Without the CUDA backend, or without a usable driver, it returns none and
// sets reason to why (so a CPU machine says so plainly instead of failing).
std::vector<CudaDeviceInfo> build_info_cuda_devices(std::string& reason);
// The cuDNN fused attention runs with: "9.19.0 (built against 9.19.0)", or why there is none.
std::string build_info_cudnn();
// The machine the CPU engine runs on, for records: "CPU: <model name>, N hardware threads" (from /proc/cpuinfo).
std::string build_info_cpu_description();

}  // namespace pgolf
