// Weight averaging of the seed trainers. SWA (S1, S3): the uniform mean of snapshots taken every `every` steps once
// the lr multiplier falls below a threshold. EMA (S2, S4): ema ← d·ema + (1 − d)·w after every optimizer step, with
// d = 0.997. Both hold handles to the live f32 weights (shared storage, as OptimParam::value) and write their result
// back into them on request. The weights may all be cpu or all be cuda tensors; on cuda the sums, the average and the
// results stay on the device, with the same arithmetic (core/cuda/averaging_math.h), so both give the same bits.
//
// How the reference trainers use them (train_gpt.py of PRs #927, #1579, #1406):
//  - SWA: after the optimizer step of 0-based step s (the index before it is incremented), with scale = lr_mul(s, ·)
//    the multiplier that step used, a snapshot is taken when s % 50 == 0 and scale < 0.2 (strict). After training,
//    if at least one snapshot exists, their mean replaces the weights; with none the weights stay as trained.
//    (S4's SWA, computed but never used, differs: it tests the incremented step and sums in the parameter dtype.)
//  - EMA: a copy of the weights taken after warmup-then-restore, updated after every optimizer step from step 0 on;
//    after training it replaces the weights (in S1/S3, where EMA is off by default, it would override SWA).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "model/optim.h"

namespace pgolf {

// S1/S3's snapshot rule for the step just taken: every > 0, threshold > 0 (≤ 0 disables SWA, as SWA_START_FRAC = 0
// does), step % every == 0 and lr_mul < threshold. Throws pgolf::Error when every ≤ 0.
bool averaging_swa_should_snapshot(std::int64_t step, double lr_mul, std::int64_t every, double threshold);

// SWA: the uniform mean of the snapshots. Snapshots are summed in double as they are taken (one f64 accumulator per
// weight instead of the reference's list of copies) and the mean is sum/count rounded once to f32.
class WeightAverage {
public:
    // params: handles to the live f32 weights, unique non-empty names, all on one device. Throws pgolf::Error when
    // the list is empty, a tensor is undefined or not f32, a name repeats, or the devices differ.
    explicit WeightAverage(NamedTensors params);

    void snapshot();  // adds the live weights' current values
    std::int64_t count() const { return count_; }

    // The mean of the snapshots as new f32 tensors on the weights' device, in parameter order. Throws pgolf::Error
    // with no snapshot.
    NamedTensors mean() const;
    // Writes the mean into the live weights. Throws pgolf::Error with no snapshot (the reference then keeps the
    // trained weights: check count() first).
    void apply_mean();

private:
    NamedTensors params_;
    std::vector<Tensor> sums_;  // f64, on the weights' device; allocated by the first snapshot
    std::int64_t count_ = 0;
};

// EMA in f32: after each update, ema = fl(fl(d·ema) + fl((1 − d)·w)) with d and 1 − d rounded to f32 (1 − d taken in
// double first, as Python computes the alpha).
class ExponentialAverage {
public:
    // Copies the live weights' current values as the initial average. Same parameter checks as WeightAverage; decay
    // must lie in [0, 1].
    ExponentialAverage(NamedTensors params, double decay);

    void update();  // one step of the recursion from the live weights
    // The average, on the weights' device.
    const NamedTensors& average() const { return average_; }
    double decay() const { return decay_; }
    void apply();  // writes the average into the live weights

    // Deep copies of the average (on its device), named as the parameters; load_state() takes such a list (any order,
    // either device) and throws pgolf::Error naming the entry when a name is unknown or missing, or a shape or dtype
    // differs.
    NamedTensors state() const;
    void load_state(const NamedTensors& state);

private:
    NamedTensors params_;
    NamedTensors average_;
    double decay_;
};

}  // namespace pgolf
