// tests/test_cuda_list_mle.cpp
// tests: the fused ListMLE op on the GPU (cuda/list_mle.cu) against the CPU kernel, forward and
// backward, F32 and F64, with and without position weights, for B in {1, 31, 32, 33, 257, 1000}
// (one warp per row, chunks of ceil(B / 32) per lane: the sizes around and across the warp
// width), on scores full of exact ties including a tied row maximum, whose gradient both
// devices give to the first maximal ranked position.
// Without a GPU every test skips (tests/cuda_test_util.h); RANKCLIP_CUDA_TESTS_ON_CPU=1 runs the
// comparisons with the CPU as the device under test, a self-check of this file.
// Tolerances: F64 1e-10 relative plus 1e-12 absolute. F32: the loss 1e-5 relative plus 1e-5
// absolute against the CPU's F32; the gradient against the F64 result of the same (F32-rounded)
// inputs, 1e-5 relative plus B x eps32 x the row's largest gradient — the bound of a float sum of B
// terms: the max position's gradient is minus the sum of the row's others, and the two devices
// add in other orders (seen on an H200: 1.8e-3 at -123 for B = 1000, 1.4e-5 relative).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

using namespace rankclip;
using rankclip::test::expect_close;

namespace {

#define SKIP_WITHOUT_CUDA()                                   \
    do {                                                      \
        std::string reason_ = rankclip::test::no_cuda_reason(); \
        if (!reason_.empty()) GTEST_SKIP() << reason_;        \
    } while (0)

Device device_under_test() { return test::cpu_stands_in_for_cuda() ? Device::cpu() : Device::cuda(0); }

// A copy on `device` sharing nothing with t, so the two sides' leaves are distinct.
Tensor copy_to(const Tensor& t, Device device) {
    Tensor out = t.to(device);
    if (out.impl() == t.impl()) out = t.detach().clone();
    return out;
}

Tensor random_order(int64_t N, int64_t B, Generator& gen) {
    std::vector<int64_t> all(N * B);
    for (int64_t n = 0; n < N; n++) gen.randperm(all.data() + n * B, B);
    return from_vector(all, {N, B}, DType::I64);
}

// Scores on a grid of 1/2 (many exact ties), scaled like s * cosine; each row's maximum repeated.
Tensor tied_scores(int64_t N, int64_t B, Generator& gen) {
    std::vector<double> x(N * B);
    gen.fill_normal(x.data(), N * B, 0.0, 6.0);
    for (double& v : x) v = std::round(v * 2) / 2;
    for (int64_t n = 0; n < N && B >= 2; n++) {
        double* row = x.data() + n * B;
        int64_t at = 0;
        for (int64_t k = 1; k < B; k++)
            if (row[k] > row[at]) at = k;
        int64_t copy = (at + 1 + n) % B;
        if (copy == at) copy = (at + 1) % B;
        row[copy] = row[at];
    }
    return from_vector(x, {N, B}, DType::F64);
}

struct Side {
    Tensor loss, grad;
};

// list_mle on `device`, then backward of sum(loss * g) (g: fixed random weights per row).
Side run_on(Device device, const Tensor& x_cpu, const Tensor& order_cpu, const Tensor& w_cpu, const Tensor& g_cpu) {
    Tensor x = copy_to(x_cpu, device);
    x.set_requires_grad(true);
    Tensor w = w_cpu.defined() ? copy_to(w_cpu, device) : Tensor();
    Tensor loss = list_mle(x, copy_to(order_cpu, device), w);
    sum(loss * copy_to(g_cpu, device)).backward();
    return {loss.to(Device::cpu()), x.grad().to(Device::cpu())};
}

// got (F32, (N, B)) against the F64 result: 1e-5 relative plus B eps32 max|row of want| per row.
void expect_within_summation_bound(const Tensor& got, const Tensor& want, int64_t B) {
    const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
    const int64_t N = int64_t(w.size()) / B;
    double worst = 0;  // of error / bound
    int64_t at = 0;
    for (int64_t n = 0; n < N; n++) {
        double row_max = 0;
        for (int64_t k = 0; k < B; k++) row_max = std::max(row_max, std::abs(w[n * B + k]));
        const double slack = double(B) * 5.96e-8 * row_max + 1e-7;
        for (int64_t k = 0; k < B; k++) {
            const int64_t i = n * B + k;
            const double ratio = std::abs(g[i] - w[i]) / (1e-5 * std::abs(w[i]) + slack);
            if (!(ratio <= worst) && !std::isnan(worst)) worst = ratio, at = i;  // a NaN stays
        }
    }
    EXPECT_LE(worst, 1.0) << "gradient: worst error " << std::abs(g[at] - w[at]) << " at flat index " << at
                          << ": " << g[at] << " vs " << w[at] << " (F64), " << worst << " of its bound";
}

TEST(CudaListMLE, ForwardAndBackwardMatchTheCpu) {
    SKIP_WITHOUT_CUDA();
    Device dev = device_under_test();
    Generator gen(99);
    for (int64_t B : {1, 31, 32, 33, 257, 1000}) {
        int64_t N = B >= 257 ? 9 : 37;  // 37 rows: a last block of four rows only partly filled
        Tensor x64 = tied_scores(N, B, gen);
        Tensor order = random_order(N, B, gen);
        Tensor g64 = randn({N}, gen, DType::F64);
        std::vector<double> mu(B);
        for (int64_t k = 1; k <= B; k++) mu[k - 1] = 1.0 / std::log(1.0 + double(k));
        Tensor log_w = from_vector(mu, {B}, DType::F64);
        Tensor rand_w = rand({B}, gen, DType::F64) * 2.0 + 0.1;
        for (const Tensor& w64 : {Tensor(), log_w, rand_w})
            for (DType dtype : {DType::F64, DType::F32}) {
                SCOPED_TRACE("B=" + std::to_string(B) + (w64.defined() ? " weighted " : " ") + dtype_name(dtype));
                double rtol = dtype == DType::F64 ? 1e-10 : 1e-5, atol = dtype == DType::F64 ? 1e-12 : 1e-5;
                Tensor x = x64.to(dtype), g = g64.to(dtype);
                Tensor w = w64.defined() ? w64.to(dtype) : Tensor();
                Side want = run_on(Device::cpu(), x, order, w, g);
                Side got = run_on(dev, x, order, w, g);
                EXPECT_EQ(got.loss.dtype(), dtype);
                expect_close(got.loss, want.loss, rtol, atol, "loss");
                if (dtype == DType::F64) {
                    expect_close(got.grad, want.grad, rtol, atol, "gradient");
                } else {
                    Side exact = run_on(Device::cpu(), x.to(DType::F64), order, w.defined() ? w.to(DType::F64) : w,
                                        g.to(DType::F64));
                    expect_within_summation_bound(got.grad, exact.grad, B);
                }
            }
    }
}

// The composite (gather / max / cumsum on the device) agrees with the fused kernel there too.
TEST(CudaListMLE, FusedMatchesCompositeOnTheDevice) {
    SKIP_WITHOUT_CUDA();
    Device dev = device_under_test();
    Generator gen(7);
    for (int64_t B : {33, 257}) {
        Tensor x = copy_to(tied_scores(5, B, gen).to(DType::F32), dev);
        Tensor order = copy_to(random_order(5, B, gen), dev);
        expect_close(list_mle(x, order).to(Device::cpu()), list_mle_composite(x, order).to(Device::cpu()), 1e-5,
                     1e-5, "B=" + std::to_string(B));
    }
}

}  // namespace
