// nn/init.h
// defines: the parameter initialisers of torch.nn.init that CLIP uses, drawing from a Generator
// so that, from the same seed and in the same order, they give PyTorch's values bit for bit.
// Bounds and standard deviations are computed in double with the same expressions, in the same
// order, as torch/nn/init.py (1.13), so that even their last bit agrees.
//
// Each fills a floating tensor in place (F32 or F64 are drawn as torch draws them; BF16 is drawn
// as F32 and rounded). A tensor that requires grad may be filled: the fill is not recorded.
// The draw happens on the CPU and is copied to the tensor's device.
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/random.h"
#include "engine/tensor.h"

namespace rankclip::init {

// torch.nn.init._calculate_fan_in_and_fan_out: fan_in = size(1) * receptive field (the product
// of dims 2..), fan_out = size(0) * receptive field. Needs at least 2 dims.
struct Fans {
    int64_t in = 0, out = 0;
};
Fans fan_in_and_fan_out(const Tensor& t);

// t.uniform_(from, to)
void uniform_(Tensor& t, Generator& gen, double from, double to);
// t.normal_(mean, std)
void normal_(Tensor& t, Generator& gen, double mean, double std);
// t.fill_(value)
void constant_(Tensor& t, double value);
// torch.nn.init.kaiming_uniform_(t, a, mode='fan_in', nonlinearity='leaky_relu'):
// U(-bound, bound), bound = sqrt(3) * sqrt(2 / (1 + a^2)) / sqrt(fan_in). With a = sqrt(5) (what
// nn.Linear and nn.Conv2d use) the bound is about 1/sqrt(fan_in).
void kaiming_uniform_(Tensor& t, Generator& gen, double a = std::sqrt(5.0));
// torch.nn.init.xavier_uniform_(t, gain): U(-a, a), a = sqrt(3) * gain * sqrt(2 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& t, Generator& gen, double gain = 1.0);
// `scale * torch.randn(t.shape)` as OpenAI's VisionTransformer writes it: a standard normal
// draw, then a product with the scale rounded to the tensor's dtype (torch's rule for a Python
// scalar), which can differ in the last bit from normal_(0, scale).
void scaled_randn_(Tensor& t, Generator& gen, double scale);

}  // namespace rankclip::init
