// tests/test_autocast.cpp
// Tests bf16 autocast on the CPU: matmul/attention run in bf16, layer_norm/softmax/cross_entropy
// in fp32, gradients reach fp32 master weights as fp32, and the loss stays close to the fp32
// loss. (The CUDA equivalents are in tests/test_cuda_ops.cpp.)
#include "engine/autocast.h"
#include "tests/test_util.h"

using namespace rankclip;
using namespace rankclip::test;

TEST(Autocast, OpsRunInTheirPrecision) {
    Generator gen(0);
    Tensor x = randn({4, 8}, gen), w = randn({8, 8}, gen);
    AutocastGuard autocast(Device::cpu());
    EXPECT_TRUE(autocast_enabled());
    Tensor h = matmul(x, w);
    EXPECT_EQ(h.dtype(), DType::BF16);
    EXPECT_EQ(layer_norm(h, ones({8}), zeros({8})).dtype(), DType::F32);
    EXPECT_EQ(softmax(h, -1).dtype(), DType::F32);
    Tensor q = randn({1, 2, 3, 4}, gen);
    EXPECT_EQ(scaled_dot_product_attention(q, q, q).dtype(), DType::BF16);
}

TEST(Autocast, GuardRestoresThePreviousMode) {
    {
        AutocastGuard on(Device::cpu());
        {
            AutocastGuard off(Device::cpu(), false);
            EXPECT_FALSE(autocast_enabled());
        }
        EXPECT_TRUE(autocast_enabled());
    }
    EXPECT_FALSE(autocast_enabled());
}

TEST(Autocast, Fp32MasterWeightsGetFp32GradientsCloseToFp32Training) {
    Generator gen(1);
    Tensor x = randn({16, 32}, gen), w1 = randn({32, 32}, gen) * 0.2, w2 = randn({32, 10}, gen) * 0.2;
    Tensor target = randint(0, 10, {16}, gen);
    auto run = [&](bool autocast_on, Tensor& g1, Tensor& g2) {
        Tensor a = w1.detach().set_requires_grad(), b = w2.detach().set_requires_grad();
        double loss;
        {
            AutocastGuard autocast(Device::cpu(), autocast_on);
            Tensor h = gelu(layer_norm(matmul(x, a), Tensor(), Tensor()));
            Tensor l = cross_entropy(matmul(h, b), target);
            EXPECT_EQ(l.dtype(), DType::F32);
            l.backward();
            loss = l.item();
        }
        g1 = a.grad();
        g2 = b.grad();
        return loss;
    };
    Tensor g1, g2, r1, r2;
    double low = run(true, g1, g2), full = run(false, r1, r2);
    EXPECT_EQ(g1.dtype(), DType::F32);
    EXPECT_EQ(g2.dtype(), DType::F32);
    EXPECT_NEAR(low, full, 2e-2 * std::abs(full));
    // bf16 keeps ~3 significant digits: gradients agree to a few percent of their scale
    double scale = amax(abs(r2)).item();
    expect_close(g2, r2, 0.0, 3e-2 * scale, "w2 gradient");
}
