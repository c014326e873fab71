// Build facts compiled in through definitions from CMake.
#include "core/build_info.h"

#include <fstream>
#include <thread>

#include "core/cuda/attention_cudnn.h"
#include "core/cuda/device_info.h"

namespace pgolf {

std::string build_info_version() { return PGOLF_VERSION_STRING; }

bool build_info_has_cuda() {
#ifdef PGOLF_WITH_CUDA
    return true;
#else
    return false;
#endif
}

std::vector<CudaDeviceInfo> build_info_cuda_devices(std::string& reason) {
#ifdef PGOLF_WITH_CUDA
    return cuda_list_devices(reason);
#else
    reason = "this build has no CUDA backend (configured with PGOLF_CUDA=OFF or without nvcc)";
    return {};
#endif
}

std::string build_info_cudnn() {
#ifdef PGOLF_WITH_CUDA
    return cuda_cudnn_version_text();
#else
    return "this build has no CUDA backend";
#endif
}

std::string build_info_cpu_description() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line, model = "unknown model";
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
            model = line.substr(line.find(':') + 1);
            model.erase(0, model.find_first_not_of(' '));
            break;
        }
    }
    return "CPU: " + model + ", " + std::to_string(std::thread::hardware_concurrency()) + " hardware threads";
}

}  // namespace pgolf
