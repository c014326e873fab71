// Embedding gather (forward) and scatter-add (backward). The backward groups positions by id so each table row is
// summed by one thread in position order: bitwise the same result whatever the thread count.
#include "core/ops/embedding.h"

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/ops/dispatch.h"

namespace pgolf {

namespace {

// Rows below this many elements in total are copied on one thread; thread start-up would cost more than the copy.
constexpr std::int64_t kParallelElements = 1 << 16;

void check_ids(const Tensor& ids, std::int64_t vocab_size, const char* op) {
    tensor_check_dtype(ids, DType::i64, op, "ids");
    const std::int64_t* values = ids.data<std::int64_t>();
    for (std::int64_t i = 0; i < ids.numel(); ++i) {
        if (values[i] < 0 || values[i] >= vocab_size) {
            throw Error(std::string(op) + ": id " + std::to_string(values[i]) + " at position " + std::to_string(i) +
                        " is outside [0, " + std::to_string(vocab_size) + ")");
        }
    }
}

}  // namespace

Tensor embedding_forward(const Tensor& table, const Tensor& ids) {
    tensor_check_floating(table, "embedding", "table");
    if (table.dim() != 2) {
        throw Error("embedding: table has shape " + shape_string(table.shape()) + ", expected (V, D)");
    }
    const std::int64_t vocab = table.size(0);
    const std::int64_t d = table.size(1);
    check_ids(ids, vocab, "embedding");
    Shape y_shape = ids.shape();
    y_shape.push_back(d);
    Tensor y = Tensor::empty(y_shape, table.dtype());
    const std::int64_t count = ids.numel();
    const std::int64_t* id = ids.data<std::int64_t>();
    const auto row_bytes = static_cast<std::size_t>(d) * dtype_size(table.dtype());
    const auto* source = static_cast<const unsigned char*>(table.raw_data());
    auto* target = static_cast<unsigned char*>(y.raw_data());
    // y: (count, D), row i = table[id[i]]
#pragma omp parallel for schedule(static) if (count * d >= kParallelElements)
    for (std::int64_t i = 0; i < count; ++i) {
        std::memcpy(target + static_cast<std::size_t>(i) * row_bytes,
                    source + static_cast<std::size_t>(id[i]) * row_bytes, row_bytes);
    }
    return y;
}

Tensor embedding_backward(const Tensor& dy, const Tensor& ids, std::int64_t vocab_size) {
    tensor_check_floating(dy, "embedding_backward", "dy");
    if (vocab_size < 0) throw Error("embedding_backward: negative vocab_size " + std::to_string(vocab_size));
    check_ids(ids, vocab_size, "embedding_backward");
    if (dy.dim() != ids.dim() + 1) {
        throw Error("embedding_backward: dy has shape " + shape_string(dy.shape()) + ", expected " +
                    shape_string(ids.shape()) + " + (D,)");
    }
    const std::int64_t d = dy.size(-1);
    Shape dy_shape = ids.shape();
    dy_shape.push_back(d);
    tensor_check_shape(dy, dy_shape, "embedding_backward", "dy");
    const std::int64_t count = ids.numel();
    const std::int64_t* id = ids.data<std::int64_t>();

    // Positions grouped by id (counting sort, stable): positions of id v are order[start[v] .. start[v + 1]).
    std::vector<std::int64_t> start(static_cast<std::size_t>(vocab_size) + 1, 0);
    for (std::int64_t i = 0; i < count; ++i) ++start[static_cast<std::size_t>(id[i]) + 1];
    for (std::int64_t v = 0; v < vocab_size; ++v) start[v + 1] += start[v];
    std::vector<std::int64_t> order(static_cast<std::size_t>(count));
    std::vector<std::int64_t> fill(start.begin(), start.end() - 1);
    for (std::int64_t i = 0; i < count; ++i) order[static_cast<std::size_t>(fill[id[i]]++)] = i;

    Tensor dtable = Tensor::zeros({vocab_size, d}, dy.dtype());
    dispatch_floating(dy.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* g = dy.data<T>();
        T* out = dtable.data<T>();
        // dtable: (V, D); each row touched by one thread only
#pragma omp parallel for schedule(dynamic, 64) if (count * d >= kParallelElements)
        for (std::int64_t v = 0; v < vocab_size; ++v) {
            T* row = out + v * d;
            for (std::int64_t p = start[v]; p < start[v + 1]; ++p) {
                const T* source = g + order[static_cast<std::size_t>(p)] * d;
                for (std::int64_t j = 0; j < d; ++j) row[j] += source[j];
            }
        }
    });
    return dtable;
}

}  // namespace pgolf
