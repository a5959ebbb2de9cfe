// tests/test_cuda_determinism.cpp
// Run-to-run determinism of the CUDA backend: a small transformer-shaped forward + backward
// (embedding -> layer_norm -> matmul -> gelu -> attention -> matmul -> cross_entropy) runs
// three times on cuda:0 from the same parameters, and the loss and every parameter gradient must
// be the same bits each time. Float atomics in a backward reduction (embedding's scatter-add
// with repeated ids, layer_norm's dw/db over rows, attention's dK/dV, matmul split-K) would make
// the bits vary between runs; so would reading uninitialised memory. Between runs other tensors
// are kept alive, so the runs get different device addresses from the caching allocator.
// The result is also checked loosely against the CPU, so "deterministic" cannot mean "wrong".
//
// Skips without a GPU (same message as tests/test_cuda_ops.cpp); RANKCLIP_CUDA_TESTS_ON_CPU=1
// runs it with the CPU standing in for the device, as a self-check of the test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "tests/cuda_test_util.h"
#ifdef RANKCLIP_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace rankclip {
namespace {

using test::cpu_stands_in_for_cuda;
using test::no_cuda_reason;

#define SKIP_WITHOUT_CUDA()                                  \
    do {                                                     \
        std::string reason_ = no_cuda_reason();              \
        if (!reason_.empty()) GTEST_SKIP() << reason_;       \
    } while (0)

Device device_under_test() { return cpu_stands_in_for_cuda() ? Device::cpu() : Device::cuda(0); }

// Sizes: few vocabulary ids (V = 64) over B * T = 616 positions, so every embedding row is hit
// many times; 616 layer_norm rows feed dw/db; T = 77 is not a multiple of any tile size.
constexpr int64_t B = 8, T = 77, C = 128, H = 4, D = C / H, V = 64;

struct Params {
    std::vector<std::string> names;
    std::vector<Tensor> values;  // CPU, F32
};

Params make_params() {
    Generator g(2024);
    Params p;
    auto add = [&](const std::string& name, const Tensor& t) {
        p.names.push_back(name);
        p.values.push_back(t);
    };
    add("tok_emb", randn({V, C}, g) * 0.5);
    add("pos_emb", randn({T, C}, g) * 0.1);
    add("ln_w", randn({C}, g) * 0.1 + 1.0);
    add("ln_b", randn({C}, g) * 0.1);
    add("w_fc", randn({C, 3 * C}, g) * (1.0 / std::sqrt(double(C))));
    add("b_fc", randn({3 * C}, g) * 0.1);
    add("w_out", randn({C, V}, g) * (1.0 / std::sqrt(double(C))));
    return p;
}

struct Data {
    Tensor ids, targets;  // CPU, I64
};

Data make_data() {
    Generator g(7);
    Data d;
    d.ids = randint(0, V, {B, T}, g);
    d.targets = randint(0, V, {B * T}, g);
    {
        NoGradGuard no_grad;
        d.targets.narrow(0, 5, 40).fill_(-100.0);  // some ignored positions
    }
    return d;
}

struct Result {
    Tensor loss;
    std::vector<Tensor> grads;  // on the CPU
};

// One forward + backward on `device` with parameters cast to `dtype`.
Result run_once(const Params& p, const Data& data, Device device, DType dtype) {
    std::vector<Tensor> w;
    for (const Tensor& v : p.values) {
        Tensor leaf = v.to(dtype).to(device);
        if (leaf.impl() == v.impl()) leaf = v.detach().clone();
        leaf.set_requires_grad(true);
        w.push_back(leaf);
    }
    Tensor ids = data.ids.to(device), targets = data.targets.to(device);

    Tensor x = embedding(w[0], ids) + w[1];               // (B, T, C)
    Tensor h = layer_norm(x, w[2], w[3]);                 // (B, T, C)
    Tensor qkv = gelu(matmul(h, w[4]) + w[5]);            // (B, T, 3C)
    auto heads = [&](int64_t i) {                         // (B, H, T, D)
        return qkv.narrow(2, i * C, C).reshape({B, T, H, D}).permute({0, 2, 1, 3});
    };
    Tensor a = scaled_dot_product_attention(heads(0), heads(1), heads(2), /*causal=*/true);
    Tensor merged = a.permute({0, 2, 1, 3}).reshape({B * T, C});  // (B*T, C)
    Tensor logits = matmul(merged, w[6]);                          // (B*T, V)
    Tensor loss = cross_entropy(logits, targets);
    loss.backward();

    Result r;
    r.loss = loss.detach().to(Device::cpu());
    for (const Tensor& leaf : w) r.grads.push_back(leaf.grad().defined() ? leaf.grad().to(Device::cpu()) : Tensor());
    return r;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
    Tensor ac = a.contiguous(), bc = b.contiguous();
    size_t n = size_t(ac.numel()) * dtype_size(ac.dtype());
    return n == 0 || std::memcmp(ac.raw_data(), bc.raw_data(), n) == 0;
}

// Largest |a - b| / (max|b| + tiny) over the elements.
double max_rel_diff(const Tensor& a, const Tensor& b) {
    auto av = a.to_vector<double>(), bv = b.to_vector<double>();
    double max_b = 0, max_d = 0;
    for (size_t i = 0; i < av.size(); i++) {
        max_b = std::max(max_b, std::abs(bv[i]));
        max_d = std::max(max_d, std::abs(av[i] - bv[i]));
    }
    return max_d / (max_b + 1e-30);
}

void check_determinism(DType dtype, double cpu_bound) {
    SCOPED_TRACE(dtype_name(dtype));
    const Device dev = device_under_test();
    Params p = make_params();
    Data data = make_data();

    Result first = run_once(p, data, dev, dtype);
    ASSERT_TRUE(std::isfinite(first.loss.item())) << "loss " << first.loss.item();
    for (int run = 2; run <= 3; run++) {
        // Keep a few blocks of assorted sizes alive so this run's tensors land elsewhere.
        std::vector<Tensor> clutter;
        for (int64_t n : {1000, 77 * 128, 12345, 1 << 20}) clutter.push_back(ones({n * run}, DType::F32, dev));
        Result again = run_once(p, data, dev, dtype);
        EXPECT_TRUE(same_bits(again.loss, first.loss))
            << "run " << run << ": loss " << again.loss.item() << " vs " << first.loss.item();
        for (size_t k = 0; k < p.names.size(); k++) {
            ASSERT_TRUE(again.grads[k].defined() && first.grads[k].defined()) << p.names[k] << " has no gradient";
            EXPECT_TRUE(same_bits(again.grads[k], first.grads[k]))
                << "run " << run << ": gradient of " << p.names[k] << " differs in its bits (largest difference "
                << max_rel_diff(again.grads[k], first.grads[k]) << " of its max)";
        }
    }

    // Not just stable but right: close to the CPU in F32/F64 (bf16 on the device vs fp32 CPU).
    DType ref_dtype = dtype == DType::BF16 ? DType::F32 : dtype;
    Params rounded = p;
    for (Tensor& v : rounded.values) v = v.to(dtype).to(ref_dtype);
    Result ref = run_once(rounded, data, Device::cpu(), ref_dtype);
    EXPECT_LE(std::abs(first.loss.item() - ref.loss.item()), cpu_bound * std::abs(ref.loss.item()))
        << "loss " << first.loss.item() << " vs CPU " << ref.loss.item();
    for (size_t k = 0; k < p.names.size(); k++)
        EXPECT_LE(max_rel_diff(first.grads[k], ref.grads[k]), cpu_bound) << "gradient of " << p.names[k] << " vs CPU";
}

TEST(CudaDeterminism, F32PipelineGivesTheSameBitsEveryRun) {
    SKIP_WITHOUT_CUDA();
    check_determinism(DType::F32, 1e-4);
}

TEST(CudaDeterminism, BF16PipelineGivesTheSameBitsEveryRun) {
    SKIP_WITHOUT_CUDA();
    check_determinism(DType::BF16, 5e-2);
}

TEST(CudaDeterminism, F64PipelineGivesTheSameBitsEveryRun) {
    SKIP_WITHOUT_CUDA();
    check_determinism(DType::F64, 1e-10);
}

}  // namespace
}  // namespace rankclip
