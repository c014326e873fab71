// Placeholder: filled in by the CUDA backend work on this family.
#include "core/cuda/device_math.cuh"
