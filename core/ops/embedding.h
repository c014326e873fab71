// Embedding lookup (gather) and its gradient (scatter-add of rows).
#pragma once

#include "core/tensor.h"

namespace pgolf {

// y: (ids..., D) = table: (V, D)[ids], ids: i64 of any shape. An id outside [0, V) throws naming it.
Tensor embedding_forward(const Tensor& table, const Tensor& ids);
// dtable: (V, D) with dy: (ids..., D) rows added at their ids (repeated ids accumulate).
Tensor embedding_backward(const Tensor& dy, const Tensor& ids, std::int64_t vocab_size);

}  // namespace pgolf
