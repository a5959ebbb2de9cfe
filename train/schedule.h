// train/schedule.h
// defines: the learning-rate schedules, as OpenCLIP's scheduler.py computes them for a step
// counted from 0: linear warm-up lr * (step + 1) / warmup, then cosine
// 0.5 (1 + cos(pi (step - warmup) / (steps - warmup))) lr, or constant after the warm-up.
#pragma once
#include <cstdint>
#include <string>

namespace rankclip {

enum class LrSchedule { Cosine, Constant };
LrSchedule parse_lr_schedule(const std::string& name);  // "cosine", "constant"
const char* lr_schedule_name(LrSchedule schedule);

struct LrScheduleOptions {
    LrSchedule kind = LrSchedule::Cosine;
    double base_lr = 5e-4;
    int64_t warmup_steps = 0;
    int64_t total_steps = 1;
};

double learning_rate_at(const LrScheduleOptions& options, int64_t step);

}  // namespace rankclip
