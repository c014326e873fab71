// CUDA device discovery, compiled only when the CUDA backend is built (PGOLF_WITH_CUDA).
#pragma once

#include <string>
#include <vector>

#include "core/build_info.h"

namespace pgolf {

#ifdef PGOLF_WITH_CUDA
std::vector<CudaDeviceInfo> cuda_list_devices(std::string& reason);
#endif

}  // namespace pgolf
