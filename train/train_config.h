// train/train_config.h
// defines: TrainConfig, everything a training run depends on (what `rankclip train` takes), and
// its JSON form, stored in every checkpoint so `--resume` continues the same run.
//
// Fields that change the numbers (model, data, loss, optimizer, schedule, batch, seed, ...) are
// fixed at the start of a run; on resume they come from the checkpoint (given again, they must be
// equal). The run's length (steps / epochs) may be extended on resume, and fields that do not
// change the numbers (out, threads, log/save/eval frequency, stop_at) may be given anew
// (train/trainer.h).
#pragma once
#include <cstdint>
#include <string>

#include "data/image.h"
#include "engine/json.h"
#include "train/losses.h"
#include "train/schedule.h"

namespace rankclip {

struct TrainConfig {
    // what is trained, on what
    std::string model = "tiny";        // preset name or a CLIPConfig JSON file
    std::string data = "synthetic";    // open_dataset spec (data/open_dataset.h)
    std::string vocab;                 // merges file; "" = the synthetic vocabulary for synthetic data
    LossOptions loss;

    // how long
    int64_t batch_size = 128;
    int64_t epochs = 0;                // one of epochs / steps; steps wins when both are set
    int64_t steps = 0;

    // optimizer and schedule (RankCLIP/CyCLIP code defaults)
    double lr = 5e-4;
    double weight_decay = 0.1;
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    int64_t warmup = 0;                // linear warm-up steps
    LrSchedule schedule = LrSchedule::Cosine;
    double grad_clip = 0.0;            // 0 = off
    int accum = 1;                     // GradCache micro-batches per batch

    // data pipeline
    bool augment = true;               // random resized crop (scale 0.9-1.0) for training
    AugmentOptions augment_options;
    int workers = 2;

    // execution (not part of the numbers on the CPU for a fixed thread count)
    uint64_t seed = 0;
    std::string device = "cpu";
    std::string precision = "fp32";    // fp32 | bf16
    int threads = 0;                   // 0 = RANKCLIP_THREADS or all cores

    // output
    std::string out = "runs/train";
    int64_t log_every = 10;
    int64_t eval_every = 0;            // 0 = only at the end when evaluations are configured
    int64_t save_every = 0;            // 0 = only at the end (and on Ctrl-C)
    int keep_last = 3;                 // checkpoints kept in out/checkpoints
    int64_t stop_at = 0;               // stop (saving) after this many steps, 0 = run to the end

    // Throws an Error naming the first invalid field.
    void validate() const;
    // The fields that define the run's numbers (everything above "output"), as JSON.
    Json to_json() const;
    // Reads what to_json writes; every key must be known.
    static TrainConfig from_json(const Json& json);
};

}  // namespace rankclip
