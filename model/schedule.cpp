// Learning-rate multiplier and Muon momentum warmup, in double with the reference's exact operation order so the
// multiplier matches Python's float arithmetic bit for bit.
#include "model/schedule.h"

#include <algorithm>

#include "core/error.h"

namespace pgolf {

double schedule_lr_mul_iterations(std::int64_t step, std::int64_t iterations, std::int64_t warmdown_iters) {
    if (warmdown_iters <= 0) return 1.0;
    const std::int64_t warmdown_start = std::max<std::int64_t>(iterations - warmdown_iters, 0);
    if (warmdown_start <= step && step < iterations) {
        const double fraction =
            static_cast<double>(iterations - step) / static_cast<double>(std::max<std::int64_t>(warmdown_iters, 1));
        return std::max(fraction, 0.0);
    }
    return 1.0;
}

double schedule_lr_mul_wallclock(std::int64_t step, double elapsed_ms, double max_wallclock_ms,
                                 std::int64_t warmdown_iters) {
    if (warmdown_iters <= 0) return 1.0;
    const double step_ms = elapsed_ms / static_cast<double>(std::max<std::int64_t>(step, 1));
    const double warmdown_ms = static_cast<double>(warmdown_iters) * step_ms;
    const double remaining_ms = std::max(max_wallclock_ms - elapsed_ms, 0.0);
    return remaining_ms <= warmdown_ms ? remaining_ms / std::max(warmdown_ms, 1e-9) : 1.0;
}

double schedule_lr_mul_wallclock_fraction(double elapsed_ms, double max_wallclock_ms, double warmdown_fraction) {
    if (!(warmdown_fraction > 0.0) || !(max_wallclock_ms > 0.0)) return 1.0;
    const double warmdown_ms = warmdown_fraction * max_wallclock_ms;
    const double remaining_ms = std::max(max_wallclock_ms - elapsed_ms, 0.0);
    return remaining_ms <= warmdown_ms ? remaining_ms / std::max(warmdown_ms, 1e-9) : 1.0;
}

double schedule_lr_mul(const LrSchedule& schedule, std::int64_t step, double elapsed_ms) {
    switch (schedule.kind) {
        case WarmdownKind::iterations:
            return schedule_lr_mul_iterations(step, schedule.iterations, schedule.warmdown_iters);
        case WarmdownKind::wallclock:
            return schedule_lr_mul_wallclock(step, elapsed_ms, schedule.max_wallclock_ms, schedule.warmdown_iters);
        case WarmdownKind::wallclock_fraction:
            if (schedule.warmdown_fraction > 0.0 && schedule.max_wallclock_ms > 0.0) {
                return schedule_lr_mul_wallclock_fraction(elapsed_ms, schedule.max_wallclock_ms,
                                                          schedule.warmdown_fraction);
            }
            return schedule_lr_multiplier(step, elapsed_ms, schedule.iterations, schedule.warmdown_iters,
                                          schedule.max_wallclock_ms);
    }
    throw Error("lr schedule: unknown warmdown kind");
}

double schedule_lr_multiplier(std::int64_t step, double elapsed_ms, std::int64_t iterations,
                              std::int64_t warmdown_iters, double max_wallclock_ms) {
    if (max_wallclock_ms <= 0.0) return schedule_lr_mul_iterations(step, iterations, warmdown_iters);
    return schedule_lr_mul_wallclock(step, elapsed_ms, max_wallclock_ms, warmdown_iters);
}

double schedule_muon_momentum(std::int64_t step, double start, double end, std::int64_t warmup_steps) {
    const double fraction =
        warmup_steps > 0 ? std::min(static_cast<double>(step) / static_cast<double>(warmup_steps), 1.0) : 1.0;
    return (1.0 - fraction) * start + fraction * end;
}

}  // namespace pgolf
