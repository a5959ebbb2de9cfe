// bench/bench_train_step.h
// defines: TrainStepBench, one full training step (forward, loss, backward, gradient norm, AdamW,
// logit_scale clamp: train/train_step.h's train_step, as the trainer runs it) on a fixed random
// batch, and the pieces it is made of (the model config for a loss, the random batch). Shared by
// `rankclip bench` (tools/cmd_bench.cpp) and the training-step cases of bench/bench_models.cpp,
// so both time the same work; tools/bench_models_torch.py builds the same batch for PyTorch.
//
// Header-only: the benchmark programs are linked from one object file each (the Makefile), and
// the tool from tools/*.cpp, so a shared .cpp would have nowhere to go.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "models/clip.h"
#include "train/losses.h"
#include "train/optimizer.h"
#include "train/train_step.h"

namespace rankclip::bench {

// The config the trainer would build for this loss (train/trainer.cpp run_model_config): SigLIP
// needs the learned logit_bias and starts at OpenCLIP's SigLIP temperature (ln 10, bias -10).
inline CLIPConfig config_for_loss(CLIPConfig config, LossKind loss) {
    if (loss == LossKind::SigLIP && !config.logit_bias) {
        config.init_logit_scale = std::log(10.0);
        config.logit_bias = true;
        config.init_logit_bias = -10.0;
    }
    return config;
}

struct RandomBatch {
    Tensor images;  // (B, 3, S, S) F32, N(0, 1)
    Tensor text;    // (B, L) I64
};

// B random images and B random token rows: ids in [1, V - 1), each row ended by the end-of-text
// id V - 1 (the largest id, where the text tower pools) at a row-dependent position in
// [L/2, L), zeros (padding) after it. tools/bench_models_torch.py builds the same layout.
inline RandomBatch random_batch(const CLIPConfig& config, int64_t B, Generator& gen, Device device) {
    const int64_t S = config.image_size, L = config.context_length, V = config.vocab_size;
    RandomBatch batch;
    batch.images = randn({B, 3, S, S}, gen).to(device);
    std::vector<int64_t> ids = randint(1, V - 1, {B, L}, gen).to_vector<int64_t>();
    const int64_t half = L / 2 > 0 ? L / 2 : 1;
    for (int64_t b = 0; b < B; b++) {
        int64_t eot = std::min(L - 1, L / 2 + b % half);
        ids[size_t(b * L + eot)] = V - 1;
        for (int64_t t = eot + 1; t < L; t++) ids[size_t(b * L + t)] = 0;
    }
    batch.text = from_vector(ids, {B, L}, DType::I64, device);
    return batch;
}

struct TrainStepBenchOptions {
    LossKind loss = LossKind::Clip;
    int64_t batch = 128;
    Device device = Device::cpu();
    bool bf16 = false;
    uint64_t seed = 0;
    double lr = 5e-4;           // the trainer's default; constant (no schedule in a benchmark)
    double rank_weight = 1.0;   // RankCLIP's w, constant: both ListMLE terms count every step
};

// A model (config_for_loss of `config`), its AdamW (the trainer's groups and defaults) and one
// random batch; step() runs one training step on that batch.
class TrainStepBench {
public:
    TrainStepBench(const CLIPConfig& config, const TrainStepBenchOptions& options)
        : options_(options), loss_gen_(options.seed + 1) {
        Generator init_gen(options.seed);
        model_ = std::make_shared<CLIP>(config_for_loss(config, options.loss), init_gen);
        model_->to(options.device);
        model_->train();
        optimizer_ = std::make_unique<AdamW>(model_->named_parameters(), AdamWOptions{});
        Generator data_gen(options.seed + 2);
        batch_ = random_batch(model_->config(), options.batch, data_gen, options.device);
        step_options_.loss.kind = options.loss;
        step_options_.loss.rank_schedule = RankWeightSchedule::Constant;
        step_options_.loss.rank_weight = options.rank_weight;
        step_options_.bf16 = options.bf16;
    }

    // One training step; returns its loss (train_step reads it back, so the device is idle after).
    double step() {
        StepStats s = train_step(*model_, *optimizer_, batch_.images, batch_.text, step_options_, options_.lr,
                                 options_.rank_weight, loss_gen_, steps_++);
        return s.loss;
    }

    const CLIP& model() const { return *model_; }
    int64_t batch_size() const { return options_.batch; }

private:
    TrainStepBenchOptions options_;
    Generator loss_gen_;
    std::shared_ptr<CLIP> model_;
    std::unique_ptr<AdamW> optimizer_;
    RandomBatch batch_;
    StepOptions step_options_;
    int64_t steps_ = 0;
};

}  // namespace rankclip::bench
