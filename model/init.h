// Weight initialisations the seeds use beyond torch's Linear default: orthogonal matrices (torch.nn.init.orthogonal_
// semantics, from pgolf's own random stream) and normal draws.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "model/random.h"

namespace pgolf {

// Fills w (rows, cols) with a (semi-)orthogonal matrix times gain: QR of a standard-normal matrix (transposed when
// rows < cols) with R's diagonal signs folded into Q, as torch.nn.init.orthogonal_ does. Rows are orthonormal when
// rows ≤ cols, columns otherwise.
void init_orthogonal(Tensor& w, RandomStream& random, double gain = 1.0);
void init_normal(Tensor& w, RandomStream& random, double std);
// torch.nn.Linear's default: U(−1/√fan_in, 1/√fan_in), fan_in = cols.
void init_uniform_fan_in(Tensor& w, RandomStream& random);

}  // namespace pgolf
