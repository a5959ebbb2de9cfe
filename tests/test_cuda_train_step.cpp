// tests/test_cuda_train_step.cpp
// tests: whole training steps on the GPU against the same steps on the CPU — the tiny CLIP
// model, batch 16, losses clip and rankclip (both ListMLE terms, constant w = 1), fp32 and bf16
// autocast, three steps of train/train_step.h's train_step (forward, loss, backward, gradient
// norm, AdamW, logit_scale clamp) from the same initial weights on the same batch, as
// `rankclip bench` and the trainer run them (bench/bench_train_step.h builds both sides).
// Each op has its own CPU-vs-CUDA test (tests/test_cuda_ops.cpp); this one checks that they
// compose: the models' own op sequence, the autocast casts, the fused kernels and the CUDA AdamW.
// Tolerances:
//   fp32  loss per step 1e-5 relative (one step's gradients agree to ~1e-5 of their largest, as
//         between us and PyTorch: tests/test_train_parity.cpp); after three steps every
//         parameter within 1e-5 of its largest |x| plus 3e-4 of the distance U = 3 lr that AdamW
//         can move an element in three steps (that file's bound and its reasons)
//   bf16  loss per step 1e-2 relative: both sides round the same operands to bf16 and
//         accumulate in fp32, but in other orders, and a rounding flip of a bf16 activation is
//         1/256 of it
// Without a GPU every test skips (tests/cuda_test_util.h); RANKCLIP_CUDA_TESTS_ON_CPU=1 runs
// them with the CPU as the device under test, a self-check of this file.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench/bench_train_step.h"
#include "engine/ops.h"
#include "models/clip.h"
#include "tests/cuda_test_util.h"

using namespace rankclip;

namespace {

Device device_under_test() { return test::cpu_stands_in_for_cuda() ? Device::cpu() : Device::cuda(0); }

double max_abs_of(const Tensor& t) { return amax(abs(t.detach())).item(); }

void expect_steps_match(LossKind loss, bool bf16) {
    std::string reason = test::no_cuda_reason();
    if (!reason.empty()) GTEST_SKIP() << reason;
    const std::string what = std::string(loss == LossKind::Clip ? "clip" : "rankclip") + (bf16 ? " bf16" : " fp32");
    bench::TrainStepBenchOptions options;
    options.loss = loss;
    options.batch = 16;
    options.bf16 = bf16;
    options.seed = 7;
    bench::TrainStepBench cpu(clip_config("tiny"), options);
    options.device = device_under_test();
    bench::TrainStepBench gpu(clip_config("tiny"), options);

    const int steps = 3;
    const double loss_tol = bf16 ? 1e-2 : 1e-5;
    for (int s = 0; s < steps; s++) {
        const double want = cpu.step(), got = gpu.step();
        ASSERT_TRUE(std::isfinite(got)) << what << ", step " << s;
        EXPECT_NEAR(got, want, loss_tol * std::abs(want)) << what << ", step " << s;
    }
    if (bf16) return;  // the weights: see the top of this file
    const double U = steps * options.lr;
    auto pc = cpu.model().named_parameters(), pg = gpu.model().named_parameters();
    ASSERT_EQ(pc.size(), pg.size());
    for (size_t i = 0; i < pc.size(); i++) {
        const Tensor& want = pc[i].second;
        Tensor got = pg[i].second.to(Device::cpu());
        EXPECT_LE(max_abs_of(got - want), 1e-5 * max_abs_of(want) + 3e-4 * U) << what << ": " << pc[i].first;
    }
}

TEST(CudaTrainStep, ClipFp32MatchesTheCpu) { expect_steps_match(LossKind::Clip, false); }
TEST(CudaTrainStep, RankClipFp32MatchesTheCpu) { expect_steps_match(LossKind::RankCLIP, false); }
TEST(CudaTrainStep, ClipBf16MatchesTheCpu) { expect_steps_match(LossKind::Clip, true); }
TEST(CudaTrainStep, RankClipBf16MatchesTheCpu) { expect_steps_match(LossKind::RankCLIP, true); }

}  // namespace
