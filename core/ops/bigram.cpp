// BigramHash bucket ids with the seeds' integer semantics: S1/S3 hash in int64, S2/S4 in int32 with two's-complement
// wrap-around, both reduced with Python's `%` (torch.remainder: the result takes the sign of the positive modulus).
#include "core/ops/bigram.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "core/error.h"

namespace pgolf {

namespace {

constexpr std::int64_t kParallelElements = 1 << 15;

// torch's integer `%`: the C remainder moved into [0, modulus) for a positive modulus.
template <typename I>
I python_mod(I value, I modulus) {
    const I remainder = static_cast<I>(value % modulus);
    return remainder < 0 ? static_cast<I>(remainder + modulus) : remainder;
}

// (prev · 92821 + cur) in int64; unsigned arithmetic gives torch's wrap-around without signed-overflow UB.
std::int64_t multiply_add_bucket(std::int64_t prev, std::int64_t cur, std::int64_t buckets) {
    const std::uint64_t mixed = static_cast<std::uint64_t>(prev) * 92821u + static_cast<std::uint64_t>(cur);
    return python_mod(static_cast<std::int64_t>(mixed), buckets);
}

// ((36313 · cur) XOR (27191 · prev)) mod (buckets − 1), every step on int32 tensors as the seeds' `t.to(torch.int32)`:
// ids are truncated to 32 bits, the products wrap, and the XOR of two wrapped products may be negative.
std::int64_t xor_mod_bucket(std::int64_t prev, std::int64_t cur, std::int32_t modulus) {
    const std::uint32_t cur_product = 36313u * static_cast<std::uint32_t>(cur);
    const std::uint32_t prev_product = 27191u * static_cast<std::uint32_t>(prev);
    const auto mixed = static_cast<std::int32_t>(cur_product ^ prev_product);
    return python_mod(mixed, modulus);
}

}  // namespace

Tensor bigram_hash_ids(const Tensor& ids, std::int64_t buckets, BigramHashKind kind) {
    tensor_check_dtype(ids, DType::i64, "bigram_hash_ids", "ids");
    if (ids.dim() != 2) {
        throw Error("bigram_hash_ids: ids must be 2-D (B, T), got shape " + shape_string(ids.shape()));
    }
    const bool xor_mod = kind == BigramHashKind::xor_mod;
    // The XOR hash keeps bucket buckets − 1 as the sentinel, so it needs a second bucket and an int32 modulus.
    const std::int64_t min_buckets = xor_mod ? 2 : 1;
    const std::int64_t max_buckets =
        xor_mod ? std::int64_t{std::numeric_limits<std::int32_t>::max()} + 1 : std::numeric_limits<std::int64_t>::max();
    if (buckets < min_buckets || buckets > max_buckets) {
        throw Error("bigram_hash_ids: buckets " + std::to_string(buckets) + " is out of range [" +
                    std::to_string(min_buckets) + ", " + std::to_string(max_buckets) + "] for the " +
                    (xor_mod ? "xor_mod" : "multiply_add") + " hash");
    }
    const std::int64_t batch = ids.size(0);
    const std::int64_t time = ids.size(1);
    const std::int64_t* in = ids.data<std::int64_t>();
    for (std::int64_t i = 0; i < ids.numel(); ++i) {
        if (in[i] < 0) {
            throw Error("bigram_hash_ids: ids[" + std::to_string(i / std::max<std::int64_t>(time, 1)) + ", " +
                        std::to_string(i % std::max<std::int64_t>(time, 1)) + "] = " + std::to_string(in[i]) +
                        " is negative");
        }
    }
    Tensor out = Tensor::empty(ids.shape(), DType::i64);
    std::int64_t* result = out.data<std::int64_t>();
    const auto modulus = static_cast<std::int32_t>(xor_mod ? buckets - 1 : 1);
    // ids, out: (B, T); position 0 of each row has no predecessor.
#pragma omp parallel for schedule(static) if (ids.numel() >= kParallelElements)
    for (std::int64_t b = 0; b < batch; ++b) {
        const std::int64_t* row = in + b * time;
        std::int64_t* out_row = result + b * time;
        for (std::int64_t t = 0; t < time; ++t) {
            if (xor_mod) {
                out_row[t] = t == 0 ? buckets - 1 : xor_mod_bucket(row[t - 1], row[t], modulus);
            } else {
                out_row[t] = multiply_add_bucket(t == 0 ? 0 : row[t - 1], row[t], buckets);
            }
        }
    }
    return out;
}

}  // namespace pgolf
