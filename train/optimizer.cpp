// train/optimizer.cpp
// defines: AdamW with the no-decay group, clip_grad_norm, clamp_logit_scale.
#include "train/optimizer.h"

#include <cmath>

#include "engine/error.h"
#include "engine/ops.h"

namespace rankclip {

bool decays_weight(const std::string& name) {
    for (const char* key : {"bn", "ln", "bias", "logit_scale"})
        if (name.find(key) != std::string::npos) return false;
    return true;
}

AdamW::AdamW(std::vector<std::pair<std::string, Tensor>> named_parameters, AdamWOptions options)
    : options_(options) {
    for (auto& [name, p] : named_parameters) {
        RC_CHECK(p.dtype() == DType::F32 && p.is_contiguous(), "AdamW: parameter ", name,
                 " must be contiguous F32 (fp32 master weights), got ", p.str());
        slots_.push_back({name, p, zeros(p.shape(), DType::F32, p.device()), zeros(p.shape(), DType::F32, p.device()),
                          decays_weight(name)});
    }
}

void AdamW::step(double lr) {
    step_++;
    for (Slot& s : slots_) {
        Tensor g = s.param.grad();
        RC_CHECK(g.defined(), "AdamW: parameter ", s.name, " has no gradient at step ", step_);
        AdamWHyper h{lr, options_.beta1, options_.beta2, options_.eps, s.decay ? options_.weight_decay : 0.0};
        adamw_step_(s.param, g.contiguous(), s.m, s.v, h, step_);
    }
}

std::vector<std::pair<std::string, Tensor>> AdamW::state_tensors() const {
    std::vector<std::pair<std::string, Tensor>> out;
    for (const Slot& s : slots_) out.emplace_back("adamw.m." + s.name, s.m);
    for (const Slot& s : slots_) out.emplace_back("adamw.v." + s.name, s.v);
    return out;
}

void AdamW::load_state(const std::map<std::string, Tensor>& tensors, int64_t steps_taken) {
    RC_CHECK(steps_taken >= 0, "AdamW: negative step count ", steps_taken);
    for (Slot& s : slots_)
        for (auto [prefix, dst] : {std::pair<const char*, Tensor*>{"adamw.m.", &s.m}, {"adamw.v.", &s.v}}) {
            auto it = tensors.find(prefix + s.name);
            RC_CHECK(it != tensors.end(), "AdamW: the optimizer state has no ", prefix, s.name);
            RC_CHECK(it->second.shape() == s.param.shape() && it->second.dtype() == DType::F32, "AdamW: ", prefix,
                     s.name, " is ", it->second.str(), ", the parameter is ", s.param.str());
            *dst = it->second.to(s.param.device()).contiguous().clone();
        }
    step_ = steps_taken;
}

std::vector<std::string> AdamW::decayed_names() const {
    std::vector<std::string> out;
    for (const Slot& s : slots_)
        if (s.decay) out.push_back(s.name);
    return out;
}

std::vector<std::string> AdamW::undecayed_names() const {
    std::vector<std::string> out;
    for (const Slot& s : slots_)
        if (!s.decay) out.push_back(s.name);
    return out;
}

double clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm) {
    std::vector<Tensor> grads;
    for (const Tensor& p : parameters)
        if (p.grad().defined()) grads.push_back(p.grad());
    if (grads.empty()) return 0.0;
    double norm = global_norm(grads).item();
    if (max_norm > 0 && std::isfinite(norm)) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            NoGradGuard no_grad;
            for (Tensor& g : grads) g.mul_(coef);
        }
    }
    return norm;
}

void clamp_logit_scale(Tensor& logit_scale, double max_value) {
    NoGradGuard no_grad;
    logit_scale.copy_(clamp(logit_scale.detach(), 0.0, max_value));
}

}  // namespace rankclip
