// Per-step schedules of the reference trainers: the learning-rate multiplier (linear warmdown to 0, measured in
// iterations, in average step times before the wallclock cap, or as a fraction of the cap) and Muon's linear momentum
// warmup. The trainer applies them; optimizers only store.
#pragma once

#include <cstdint>

namespace pgolf {

enum class WarmdownKind : std::uint8_t {
    iterations,          // warmdown over the last warmdown_iters of a fixed iteration count (no wallclock cap)
    wallclock,           // baseline: warmdown over the last warmdown_iters average step times before the cap
    wallclock_fraction,  // S3: warmdown over the last warmdown_fraction of the wallclock cap
};

struct LrSchedule {
    WarmdownKind kind = WarmdownKind::wallclock;
    std::int64_t iterations = 20000;
    std::int64_t warmdown_iters = 1200;  // ≤ 0 disables the warmdown (multiplier 1 throughout)
    double max_wallclock_ms = 600000.0;  // wallclock kinds only
    double warmdown_fraction = 0.6;      // wallclock_fraction only (S3's WARMDOWN_FRAC)
};

// Iteration form: 1 before max(N − W, 0), then (N − step)/max(W, 1) down to 0 at step N; 1 again from N on (the
// reference never reaches it). W ≤ 0 → 1.
double schedule_lr_mul_iterations(std::int64_t step, std::int64_t iterations, std::int64_t warmdown_iters);

// Wallclock form: with the running average step time s̄ = elapsed_ms/max(step, 1), the warmdown spans the last W·s̄
// before the cap: remaining/(W·s̄) once remaining = max(cap − elapsed, 0) ≤ W·s̄, else 1. W ≤ 0 → 1.
double schedule_lr_mul_wallclock(std::int64_t step, double elapsed_ms, double max_wallclock_ms,
                                 std::int64_t warmdown_iters);

// Fraction-of-wallclock form (S3): the warmdown spans the last f·T of the cap T: remaining/(f·T) once
// remaining = max(T − elapsed, 0) ≤ f·T, else 1. Linear from 1 at elapsed (1 − f)·T to 0 at the cap.
// f ≤ 0 or T ≤ 0 → 1 (schedule_lr_mul then falls back to the other forms, as S3 does).
double schedule_lr_mul_wallclock_fraction(double elapsed_ms, double max_wallclock_ms, double warmdown_fraction);

// Dispatches on schedule.kind. wallclock_fraction is S3's lr_mul as a whole: the fraction form when
// warmdown_fraction > 0 and a cap is set, otherwise schedule_lr_multiplier() (the baseline forms, warmdown_iters).
double schedule_lr_mul(const LrSchedule& schedule, std::int64_t step, double elapsed_ms);

// The reference's lr_mul(step, elapsed_ms) as one call: a cap ≤ 0 (no wallclock limit) selects the iteration form,
// any other cap the wallclock form.
double schedule_lr_multiplier(std::int64_t step, double elapsed_ms, std::int64_t iterations,
                              std::int64_t warmdown_iters, double max_wallclock_ms);

// Muon momentum at a step: (1 − f)·start + f·end with f = min(step/warmup_steps, 1); f = 1 when warmup_steps ≤ 0.
// Baseline: 0.85 → 0.95 over 500 steps.
double schedule_muon_momentum(std::int64_t step, double start, double end, std::int64_t warmup_steps);

}  // namespace pgolf
