// CUDA embedding gather and its deterministic scatter-add gradient (host entry points; kernels in embedding.cu).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace pgolf {

// table: (V, D) f32 or bf16, ids: i64 of any shape -> y: (ids…, D) in table's dtype.
// Ids are not checked here (reading them back would synchronise the device): the caller validates them where they
// are made (token streams, bigram hashes). An id outside [0, V) gives a zero row instead of reading outside the table.
Tensor cuda_embedding_forward(const Tensor& table, const Tensor& ids);
// dy: (ids…, D) f32 or bf16, ids: i64 -> dtable: (vocab_size, D) in f32, the rows of dy added at their ids. Repeated
// ids are summed in position order by one block per id (after a stable radix sort of the ids), so the result is
// bitwise reproducible. Rows of ids outside [0, vocab_size) are dropped.
Tensor cuda_embedding_backward(const Tensor& dy, const Tensor& ids, std::int64_t vocab_size);

}  // namespace pgolf
