// nn/mlp.cpp
// defines: MLP's construction and forward.
#include "nn/mlp.h"

#include "engine/ops.h"

namespace rankclip {

const char* activation_name(Activation a) { return a == Activation::GELU ? "gelu" : "quick_gelu"; }

MLP::MLP(int64_t width, int64_t hidden, Activation activation, Generator& gen) : activation_(activation) {
    c_fc = register_module("c_fc", std::make_shared<Linear>(width, hidden, gen));
    c_proj = register_module("c_proj", std::make_shared<Linear>(hidden, width, gen));
}

Tensor MLP::forward(const Tensor& x) const {
    Tensor h = c_fc->forward(x);  // (..., hidden)
    h = activation_ == Activation::GELU ? gelu(h) : quick_gelu(h);
    return c_proj->forward(h);    // (..., W)
}

}  // namespace rankclip
