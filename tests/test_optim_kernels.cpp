// tests/test_optim_kernels.cpp
// Tests the optimizer kernels: adamw_step_ against torch.optim.AdamW over 5 steps, and
// global_norm against torch.nn.utils.clip_grad_norm_ and against its composite sqrt(sum(x*x)),
// on the CPU, and CPU against CUDA when a GPU is present (reference: tools/gen_optim_refs.py).
#include "engine/json.h"
#include "engine/safetensors.h"
#include "tests/test_util.h"
#ifdef RANKCLIP_CUDA
#include "cuda/cuda_backend.h"
#endif

using namespace rankclip;
using namespace rankclip::test;

static std::map<std::string, Tensor> optim_reference(AdamWHyper& hyper) {
    std::map<std::string, std::string> metadata;
    auto refs = load_safetensors(repo_root() + "/tests/ref/optim_reference.safetensors", &metadata);
    Json h = Json::parse(metadata.at("adamw"));
    hyper.lr = h["lr"].as_double();
    hyper.beta1 = h["beta1"].as_double();
    hyper.beta2 = h["beta2"].as_double();
    hyper.eps = h["eps"].as_double();
    hyper.weight_decay = h["weight_decay"].as_double();
    return refs;
}

static void run_adamw_against_torch(Device device) {
    AdamWHyper hyper;
    auto refs = optim_reference(hyper);
    Tensor param = refs.at("adamw.param0").to(device).clone();
    Tensor m = zeros_like(param), v = zeros_like(param);
    for (int k = 0; k < 5; k++) {
        Tensor grad = refs.at("adamw.grad" + std::to_string(k)).to(device);
        adamw_step_(param, grad, m, v, hyper, k + 1);
        expect_close(param, refs.at("adamw.param" + std::to_string(k + 1)), 1e-6, 1e-7,
                     device.str() + " adamw step " + std::to_string(k + 1));
    }
}

TEST(OptimKernels, AdamWMatchesTorchOverFiveSteps) { run_adamw_against_torch(Device::cpu()); }

TEST(OptimKernels, AdamWRefusesMismatchedTensors) {
    Tensor p = zeros({4}), g = zeros({5}), m = zeros({4}), v = zeros({4});
    EXPECT_THROW(adamw_step_(p, g, m, v, AdamWHyper{}, 1), Error);
    Tensor g64 = zeros({4}, DType::F64);
    EXPECT_THROW(adamw_step_(p, g64, m, v, AdamWHyper{}, 1), Error);
    Tensor g4 = zeros({4});
    EXPECT_THROW(adamw_step_(p, g4, m, v, AdamWHyper{}, 0), Error);
}

TEST(OptimKernels, GlobalNormMatchesTorchAndComposite) {
    AdamWHyper unused;
    auto refs = optim_reference(unused);
    std::vector<Tensor> ts = {refs.at("norm.t0"), refs.at("norm.t1"), refs.at("norm.t2")};
    Tensor norm = global_norm(ts);
    EXPECT_EQ(norm.dim(), 0);
    expect_close(norm, refs.at("norm.total"), 1e-6, 0.0, "global_norm vs torch");
    Tensor composite = sqrt(sum(ts[0] * ts[0]) + sum(ts[1] * ts[1]) + sum(ts[2] * ts[2]));
    expect_close(norm, composite, 1e-6, 0.0, "global_norm vs composite");
    // sizes around the 4096-element row split, in F64 against a direct sum
    for (int64_t n : {1, 4095, 4096, 4097, 3 * 4096 + 5}) {
        Tensor x = randn64({n}, uint64_t(n));
        double direct = 0;
        for (double e : x.to_vector<double>()) direct += e * e;
        EXPECT_NEAR(global_norm({x}).item(), std::sqrt(direct), 1e-12 * std::sqrt(direct)) << n;
    }
    EXPECT_THROW(global_norm({}), Error);
    // F32, F64 and BF16 tensors together (each dtype's partial sums apart, BF16 widened to F32),
    // an undefined and an empty one among them
    Tensor a = randn64({4097}, 7), b = randn64({33}, 8), c = randn64({5000}, 9);
    Tensor c16 = c.to(DType::BF16);
    double direct = 0;
    for (const Tensor& t : {a, b, c16.to(DType::F64)})
        for (double e : t.to_vector<double>()) direct += e * e;
    Tensor mixed = global_norm({a.to(DType::F32), Tensor(), b, zeros({0}), c16});
    EXPECT_EQ(mixed.dtype(), DType::F64);
    EXPECT_NEAR(mixed.item(), std::sqrt(direct), 1e-6 * std::sqrt(direct));
}

TEST(OptimKernelsCuda, AdamWAndGlobalNormMatchTheCpu) {
#ifdef RANKCLIP_CUDA
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device: the CUDA runtime sees no GPU on this machine";
    run_adamw_against_torch(Device::cuda(0));
    Generator gen(3);
    Tensor x = randn({3 * 4096 + 17}, gen), y = randn({5, 7}, gen);
    expect_close(global_norm({x.to(Device::cuda(0)), y.to(Device::cuda(0))}), global_norm({x, y}), 1e-6, 0.0,
                 "cuda global_norm");
    // The CUDA update gives the CPU's bits: on slabs aligned for its vector loads (offset 0) and
    // on slabs one element off (offset 1, the one-by-one loop), a tail of 3 included (4099).
    for (int64_t offset : {0, 1}) {
        const int64_t n = 4099;
        Generator g(11 + uint64_t(offset));
        Tensor p = randn({offset + n}, g), m = randn({offset + n}, g), v = randn({offset + n}, g);
        v = v * v;
        Tensor pc = p.to(Device::cuda(0)), mc = m.to(Device::cuda(0)), vc = v.to(Device::cuda(0));
        Tensor p1 = p.narrow(0, offset, n), m1 = m.narrow(0, offset, n), v1 = v.narrow(0, offset, n);
        Tensor p2 = pc.narrow(0, offset, n), m2 = mc.narrow(0, offset, n), v2 = vc.narrow(0, offset, n);
        for (int step = 1; step <= 2; step++) {
            Tensor grad = randn({n}, g);
            adamw_step_(p1, grad, m1, v1, AdamWHyper{}, step);
            adamw_step_(p2, grad.to(Device::cuda(0)), m2, v2, AdamWHyper{}, step);
        }
        for (auto [cpu, cuda] : {std::pair{p1, p2}, std::pair{m1, m2}, std::pair{v1, v2}})
            EXPECT_EQ(cuda.to(Device::cpu()).to_vector<float>(), cpu.to_vector<float>()) << "offset " << offset;
    }
#else
    GTEST_SKIP() << "no CUDA device: built without CUDA";
#endif
}
