// train/schedule.cpp
// defines: learning_rate_at and the schedule names.
#include "train/schedule.h"

#include <cmath>

#include "engine/error.h"

namespace rankclip {

LrSchedule parse_lr_schedule(const std::string& name) {
    if (name == "cosine") return LrSchedule::Cosine;
    if (name == "constant") return LrSchedule::Constant;
    throw Error(str_cat("unknown learning-rate schedule '", name, "' (known: cosine, constant)"));
}

const char* lr_schedule_name(LrSchedule schedule) {
    return schedule == LrSchedule::Cosine ? "cosine" : "constant";
}

double learning_rate_at(const LrScheduleOptions& o, int64_t step) {
    if (step < o.warmup_steps) return o.base_lr * double(step + 1) / double(o.warmup_steps);
    if (o.kind == LrSchedule::Constant) return o.base_lr;
    double e = double(step - o.warmup_steps), es = double(o.total_steps - o.warmup_steps);
    if (es <= 0) return o.base_lr;  // every step is warm-up: the cosine never starts
    return 0.5 * (1.0 + std::cos(M_PI * e / es)) * o.base_lr;
}

}  // namespace rankclip
