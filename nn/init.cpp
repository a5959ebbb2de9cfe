// nn/init.cpp
// defines: the torch.nn.init equivalents of nn/init.h. Every fill draws into a contiguous CPU
// buffer of the tensor's floating type (as torch fills a contiguous tensor) and copies it in.
#include "nn/init.h"

#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace rankclip::init {

// Draws t.numel() values with `draw(float*/double*, n)` into a CPU tensor and copies them into t.
template <typename Draw>
static void fill_with(Tensor& t, const char* op, Draw draw) {
    RC_CHECK(t.defined() && is_floating(t.dtype()), "init::", op, ": needs a floating tensor, got ",
             t.defined() ? t.str() : std::string("an undefined tensor"));
    NoGradGuard no_grad;
    int64_t n = t.numel();
    Tensor host;
    if (t.dtype() == DType::F64) {
        host = empty(t.shape(), DType::F64);
        draw(host.data<double>(), n);
    } else {
        host = empty(t.shape(), DType::F32);
        draw(host.data<float>(), n);
    }
    t.detach().copy_(host);  // casts to BF16 when needed; moves to t's device
}

Fans fan_in_and_fan_out(const Tensor& t) {
    RC_CHECK(t.dim() >= 2, "init: fan in and fan out need a tensor of at least 2 dims, got ", t.str());
    int64_t receptive = 1;
    for (int64_t d = 2; d < t.dim(); d++) receptive *= t.size(d);
    return {t.size(1) * receptive, t.size(0) * receptive};
}

void uniform_(Tensor& t, Generator& gen, double from, double to) {
    fill_with(t, "uniform_", [&](auto* out, int64_t n) { gen.fill_uniform(out, n, from, to); });
}

void normal_(Tensor& t, Generator& gen, double mean, double std) {
    fill_with(t, "normal_", [&](auto* out, int64_t n) { gen.fill_normal(out, n, mean, std); });
}

void constant_(Tensor& t, double value) {
    NoGradGuard no_grad;
    t.detach().fill_(value);
}

void kaiming_uniform_(Tensor& t, Generator& gen, double a) {
    if (t.numel() == 0) return;  // torch warns and does nothing (no draw)
    // torch: gain = calculate_gain('leaky_relu', a); std = gain / sqrt(fan); bound = sqrt(3) * std
    double fan = double(fan_in_and_fan_out(t).in);
    double gain = std::sqrt(2.0 / (1 + std::pow(a, 2.0)));
    double std = gain / std::sqrt(fan);
    double bound = std::sqrt(3.0) * std;
    uniform_(t, gen, -bound, bound);
}

void xavier_uniform_(Tensor& t, Generator& gen, double gain) {
    // torch: std = gain * sqrt(2 / (fan_in + fan_out)); a = sqrt(3) * std
    Fans fans = fan_in_and_fan_out(t);
    double std = gain * std::sqrt(2.0 / double(fans.in + fans.out));
    double a = std::sqrt(3.0) * std;
    uniform_(t, gen, -a, a);
}

void scaled_randn_(Tensor& t, Generator& gen, double scale) {
    fill_with(t, "scaled_randn_", [&](auto* out, int64_t n) {
        using T = std::remove_pointer_t<decltype(out)>;
        gen.fill_normal(out, n, 0.0, 1.0);
        const T s = static_cast<T>(scale);
        for (int64_t i = 0; i < n; i++) out[i] = s * out[i];
    });
}

}  // namespace rankclip::init
