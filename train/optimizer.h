// train/optimizer.h
// defines: AdamW over a model's named parameters with two parameter groups (decayed / not),
// global-norm gradient clipping and the logit_scale clamp — the optimizer side of a training step.
//
// Groups follow the RankCLIP/CyCLIP training code: a parameter whose name contains "bn", "ln",
// "bias" or "logit_scale" gets no weight decay (LayerNorm weights ln_*, every bias, the
// temperature, SigLIP's logit_bias); everything else decays. Each update is
// torch.optim.AdamW's, element for element (engine/ops.h adamw_step_), so a run matches PyTorch
// with the same groups; the state (m, v, step) is saved and restored for exact resume.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace rankclip {

struct AdamWOptions {
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    double weight_decay = 0.1;  // for the decayed group; the other group gets 0
};

// True when `name` belongs to the decayed group (see the top of this file).
bool decays_weight(const std::string& parameter_name);

class AdamW {
public:
    // The tensors are the model's parameters (handles; the updates are in place).
    AdamW(std::vector<std::pair<std::string, Tensor>> named_parameters, AdamWOptions options);

    // One update of every parameter from its .grad() at learning rate lr. A parameter without a
    // gradient is an Error naming it (every CLIP parameter gets one each step).
    void step(double lr);
    int64_t steps_taken() const { return step_; }
    const AdamWOptions& options() const { return options_; }

    // The moments as named tensors ("adamw.m.<param>", "adamw.v.<param>") for a checkpoint,
    // and their restoration (every name must be there with the parameter's shape).
    std::vector<std::pair<std::string, Tensor>> state_tensors() const;
    void load_state(const std::map<std::string, Tensor>& tensors, int64_t steps_taken);

    // Names of the parameters in each group, for the run log.
    std::vector<std::string> decayed_names() const;
    std::vector<std::string> undecayed_names() const;

private:
    struct Slot {
        std::string name;
        Tensor param, m, v;
        bool decay;
    };
    std::vector<Slot> slots_;
    AdamWOptions options_;
    int64_t step_ = 0;
};

// The global L2 norm of the parameters' gradients (0-d F32, deterministic); when max_norm > 0 and
// the norm exceeds it, every gradient is scaled by max_norm / (norm + 1e-6), as
// torch.nn.utils.clip_grad_norm_. Returns the norm before clipping, as a double.
double clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm);

// logit_scale <- clamp(logit_scale, 0, ln 100), in place, after each optimizer step.
void clamp_logit_scale(Tensor& logit_scale, double max_value);

}  // namespace rankclip
