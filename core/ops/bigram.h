// BigramHash bucket ids (S1–S4): each position's (previous, current) token pair hashed into a bucket whose learned
// vector is added to the token embedding. Two hash families, exactly as the seeds computed them.
#pragma once

#include "core/tensor.h"

namespace pgolf {

enum class BigramHashKind {
    multiply_add,  // S1/S3: (prev · 92821 + cur) mod buckets; prev of position 0 is 0
    xor_mod,  // S2/S4: ((36313 · cur) XOR (27191 · prev)) mod (buckets − 1) in int32; position 0 → buckets − 1
};

// ids: (B, T) i64 token ids -> (B, T) i64 bucket ids in [0, buckets). Each row is a sequence: position 0 has no
// predecessor.
Tensor bigram_hash_ids(const Tensor& ids, std::int64_t buckets, BigramHashKind kind);

}  // namespace pgolf
