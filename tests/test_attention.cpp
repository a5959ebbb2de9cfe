// tests/test_attention.cpp
// tests: the CPU attention kernels (tiled AVX-512 for F32/BF16, scalar for F64) and the fused
// self_attention op:
//   - scaled_dot_product_attention against attention_composite (matmul + softmax) on the CLIP
//     shapes and awkward ones (T = 1, 17, 65, 77, 128; Tq != Tk; causal or not; D = 8, 32, 64;
//     odd B H), forward and gradients, F32 also against the F64 scalar kernel (the old per-row
//     formulation);
//   - long sequences (several query blocks) against the composite;
//   - strided inputs read in place (head-split views of a packed projection, stride-0 keys, a
//     strided last dim) and the output layout (permuted back to (B, T, W) it is a view);
//   - self_attention against self_attention_composite, F64 / F32 / BF16, forward and gradients,
//     and an F64 gradient check;
//   - BF16: the output is the F32 kernel's output on the same (bf16) values rounded once; the
//     gradients within bf16 bounds of the F64 ones;
//   - bit-identical results across runs and across thread counts.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "engine/autocast.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

using namespace rankclip;
using rankclip::test::expect_close;
using rankclip::test::expect_gradients_match;
using rankclip::test::gradcheck;
using rankclip::test::randn64;

namespace {

using Inputs = const std::vector<Tensor>&;

std::vector<Tensor> cast_all(const std::vector<Tensor>& in, DType dtype) {
    std::vector<Tensor> out;
    for (const Tensor& t : in) out.push_back(t.to(dtype));
    return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
    Tensor ac = a.contiguous(), bc = b.contiguous();
    size_t n = size_t(ac.numel()) * dtype_size(ac.dtype());
    return n == 0 || std::memcmp(ac.raw_data(), bc.raw_data(), n) == 0;
}

// Output and the gradients of every input for the loss sum(out * w), w fixed.
struct Result {
    Tensor out;
    std::vector<Tensor> grads;
};
Result run_with_grads(const std::function<Tensor(Inputs)>& f, const std::vector<Tensor>& inputs) {
    std::vector<Tensor> leaves;
    for (const Tensor& x : inputs) leaves.push_back(x.detach().set_requires_grad());
    Result r;
    r.out = f(leaves);
    sum(r.out * randn64(r.out.shape(), 4242).to(r.out.dtype())).backward();
    for (const Tensor& l : leaves) r.grads.push_back(l.grad());
    return r;
}

std::string describe(const Shape& q, const Shape& kv, bool causal) {
    return "q " + shape_str(q) + " kv " + shape_str(kv) + (causal ? " causal" : "");
}

// The fused kernel against the composite: F64 (scalar kernel) to 1e-12, F32 (tiled kernel) to
// 1e-5 forward and 1e-4 gradients against the F32 composite, and against the F64 scalar kernel.
void expect_matches_composite(const Shape& q_shape, const Shape& kv_shape, bool causal, uint64_t seed) {
    const std::string what = describe(q_shape, kv_shape, causal);
    SCOPED_TRACE(what);
    auto fused = [causal](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2], causal); };
    auto comp = [causal](Inputs in) { return attention_composite(in[0], in[1], in[2], causal); };
    std::vector<Tensor> in64 = {randn64(q_shape, seed), randn64(kv_shape, seed + 1), randn64(kv_shape, seed + 2)};
    Result f64 = run_with_grads(fused, in64), c64 = run_with_grads(comp, in64);
    expect_close(f64.out, c64.out, 1e-12, 1e-12, what + " F64 forward");
    for (size_t i = 0; i < 3; i++)
        expect_close(f64.grads[i], c64.grads[i], 1e-10, 1e-12, what + " F64 gradient " + std::to_string(i));

    std::vector<Tensor> in32 = cast_all(in64, DType::F32);
    Result f32 = run_with_grads(fused, in32), c32 = run_with_grads(comp, in32);
    EXPECT_EQ(f32.out.dtype(), DType::F32);
    expect_close(f32.out, c32.out, 1e-5, 1e-5, what + " F32 forward vs F32 composite");
    expect_close(f32.out.to(DType::F64), f64.out, 1e-5, 1e-5, what + " F32 forward vs the F64 scalar kernel");
    for (size_t i = 0; i < 3; i++) {
        expect_close(f32.grads[i], c32.grads[i], 1e-4, 1e-5, what + " F32 gradient vs composite " + std::to_string(i));
        expect_close(f32.grads[i].to(DType::F64), f64.grads[i], 1e-4, 1e-5,
                     what + " F32 gradient vs the F64 scalar kernel " + std::to_string(i));
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// the kernels against the composite

TEST(AttentionKernel, ModelShapesMatchComposite) {
    expect_matches_composite({2, 4, 65, 32}, {2, 4, 65, 32}, false, 10);  // vision tower, tiny
    expect_matches_composite({2, 4, 32, 32}, {2, 4, 32, 32}, true, 20);   // text tower, tiny
    expect_matches_composite({1, 4, 65, 64}, {1, 4, 65, 64}, false, 30);  // vision tower, small
    expect_matches_composite({1, 3, 77, 64}, {1, 3, 77, 64}, true, 40);   // text tower, b32
    expect_matches_composite({1, 2, 50, 64}, {1, 2, 50, 64}, false, 50);  // vision tower, b32
}

TEST(AttentionKernel, AwkwardShapesMatchComposite) {
    for (int64_t T : {1, 17, 65, 77, 128})
        for (int64_t D : {8, 32, 64})
            for (bool causal : {false, true}) {
                int64_t B = T % 2 ? 3 : 1, H = T % 2 ? 1 : 3;  // odd B H
                expect_matches_composite({B, H, T, D}, {B, H, T, D}, causal, uint64_t(100 + T * 7 + D + causal));
            }
}

TEST(AttentionKernel, UnequalQueryAndKeyLengths) {
    for (bool causal : {false, true}) {
        expect_matches_composite({2, 1, 17, 24}, {2, 1, 77, 24}, causal, 200);  // Tq < Tk
        expect_matches_composite({1, 3, 77, 24}, {1, 3, 17, 24}, causal, 210);  // Tq > Tk
        expect_matches_composite({1, 1, 5, 3}, {1, 1, 40, 3}, causal, 220);     // D below one vector
        expect_matches_composite({1, 1, 33, 80}, {1, 1, 33, 80}, causal, 230);  // D of five vectors
    }
}

TEST(AttentionKernel, LongSequencesTakeSeveralQueryBlocks) {
    // (queries, keys) score tiles are capped at 128 KiB: 1030 keys give blocks of 31 queries
    for (bool causal : {false, true}) {
        std::vector<Tensor> in = {randn64({1, 1, 1030, 8}, 300).to(DType::F32), randn64({1, 1, 1030, 8}, 301).to(DType::F32),
                                  randn64({1, 1, 1030, 8}, 302).to(DType::F32)};
        auto fused = [causal](Inputs x) { return scaled_dot_product_attention(x[0], x[1], x[2], causal); };
        auto comp = [causal](Inputs x) { return attention_composite(x[0], x[1], x[2], causal); };
        Result f = run_with_grads(fused, in), c = run_with_grads(comp, in);
        std::string what = causal ? "T 1030 causal" : "T 1030";
        expect_close(f.out, c.out, 1e-5, 1e-5, what + " forward");
        for (size_t i = 0; i < 3; i++) expect_close(f.grads[i], c.grads[i], 1e-4, 1e-5, what + " gradient " + std::to_string(i));
    }
}

TEST(AttentionKernel, KnownValues) {
    // one key: every query attends to it fully, the output is v (F32 and BF16: the tiled kernel)
    for (DType dtype : {DType::F32, DType::BF16}) {
        Tensor q = randn64({1, 2, 20, 16}, 90).to(dtype), k = randn64({1, 2, 1, 16}, 91).to(dtype),
               v = randn64({1, 2, 1, 16}, 92).to(dtype);
        EXPECT_TRUE(same_bits(scaled_dot_product_attention(q, k, v).contiguous(), v.expand({1, 2, 20, 16}).contiguous()));
        // causal: the first query sees only the first key
        Tensor kc = randn64({1, 2, 20, 16}, 93).to(dtype), vc = randn64({1, 2, 20, 16}, 94).to(dtype);
        Tensor oc = scaled_dot_product_attention(q, kc, vc, true);
        EXPECT_TRUE(same_bits(oc.narrow(2, 0, 1).contiguous(), vc.narrow(2, 0, 1).contiguous()));
    }
}

// ---------------------------------------------------------------------------------------------
// strided inputs, the output layout

TEST(AttentionKernel, StridedInputsAreReadInPlace) {
    // q, k, v as the model makes them: head-split views of a packed (B, T, 3, H, D) projection
    const int64_t B = 3, T = 65, H = 4, D = 32;
    Tensor packed = randn64({B, T, 3 * H * D}, 400);
    Tensor heads = packed.reshape({B, T, 3, H, D}).permute({2, 0, 3, 1, 4});  // (3, B, H, T, D)
    std::vector<Tensor> views = {heads.select(0, 0), heads.select(0, 1), heads.select(0, 2)};
    EXPECT_FALSE(views[0].is_contiguous());
    for (bool causal : {false, true}) {
        std::vector<Tensor> copies;
        for (const Tensor& t : views) copies.push_back(t.contiguous());
        auto fused = [causal](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2], causal); };
        for (DType dtype : {DType::F64, DType::F32, DType::BF16}) {
            // the same values strided and contiguous: the same bits
            Result a = run_with_grads(fused, cast_all(views, dtype)), b = run_with_grads(fused, cast_all(copies, dtype));
            EXPECT_TRUE(same_bits(a.out, b.out)) << dtype_name(dtype) << (causal ? " causal" : "");
            for (size_t i = 0; i < 3; i++) EXPECT_TRUE(same_bits(a.grads[i], b.grads[i])) << dtype_name(dtype) << " grad " << i;
        }
    }
    // keys repeated (stride 0 along T), a strided last dim (copied first), against the composite
    for (bool causal : {false, true}) {
        std::vector<Tensor> in = {randn64({2, 2, 9, 6}, 410), randn64({2, 2, 1, 6}, 411).expand({2, 2, 9, 6}),
                                  randn64({2, 2, 9, 6, 2}, 412).select(4, 1)};
        EXPECT_EQ(in[1].strides()[2], 0);
        EXPECT_EQ(in[2].strides()[3], 2);
        auto fused = [causal](Inputs x) { return scaled_dot_product_attention(x[0], x[1], x[2], causal); };
        auto comp = [causal](Inputs x) { return attention_composite(x[0], x[1], x[2], causal); };
        for (DType dtype : {DType::F64, DType::F32}) {
            double tol = dtype == DType::F64 ? 1e-12 : 1e-5;
            std::vector<Tensor> x = cast_all(in, dtype);
            Result f = run_with_grads(fused, x), c = run_with_grads(comp, x);
            expect_close(f.out, c.out, tol, tol, std::string("stride-0 keys, strided v, ") + dtype_name(dtype));
            for (size_t i = 0; i < 3; i++)
                expect_close(f.grads[i], c.grads[i], 10 * tol, tol, std::string("gradient ") + std::to_string(i));
        }
    }
}

TEST(AttentionKernel, OutputIsLaidOutTokenMajor) {
    // (B, H, T, D) with the strides of a contiguous (B, T, H, D): merging the heads is a view
    const int64_t B = 2, H = 3, T = 5, D = 4;
    for (DType dtype : {DType::F64, DType::F32, DType::BF16}) {
        Tensor q = randn64({B, H, T, D}, 500).to(dtype);
        Tensor y = scaled_dot_product_attention(q, q, q);
        EXPECT_EQ(y.shape(), (Shape{B, H, T, D}));
        EXPECT_EQ(y.strides(), (Shape{T * H * D, D, H * D, 1}));
        EXPECT_TRUE(y.permute({0, 2, 1, 3}).is_contiguous());
    }
}

// ---------------------------------------------------------------------------------------------
// self_attention over a packed projection

namespace {

void expect_self_attention_matches(int64_t B, int64_t T, int64_t H, int64_t D, bool causal, uint64_t seed) {
    const std::string what = "self_attention B " + std::to_string(B) + " T " + std::to_string(T) + " H " +
                             std::to_string(H) + " D " + std::to_string(D) + (causal ? " causal" : "");
    SCOPED_TRACE(what);
    auto fused = [H, causal](Inputs in) { return self_attention(in[0], H, causal); };
    auto comp = [H, causal](Inputs in) { return self_attention_composite(in[0], H, causal); };
    std::vector<Tensor> in64 = {randn64({B, T, 3 * H * D}, seed)};
    Result f64 = run_with_grads(fused, in64), c64 = run_with_grads(comp, in64);
    EXPECT_EQ(f64.out.shape(), (Shape{B, T, H * D}));
    EXPECT_TRUE(f64.out.is_contiguous());
    expect_close(f64.out, c64.out, 1e-12, 1e-12, what + " F64 forward");
    expect_close(f64.grads[0], c64.grads[0], 1e-10, 1e-12, what + " F64 gradient");
    // F32 and BF16: the same kernels on the same values in both, so the same bits
    for (DType dtype : {DType::F32, DType::BF16}) {
        std::vector<Tensor> in = cast_all(in64, dtype);
        Result f = run_with_grads(fused, in), c = run_with_grads(comp, in);
        EXPECT_EQ(f.out.dtype(), dtype);
        EXPECT_TRUE(same_bits(f.out, c.out)) << what << " " << dtype_name(dtype) << " forward";
        EXPECT_TRUE(same_bits(f.grads[0], c.grads[0])) << what << " " << dtype_name(dtype) << " gradient";
    }
}

}  // namespace

TEST(SelfAttention, MatchesComposite) {
    expect_self_attention_matches(3, 65, 4, 32, false, 600);  // tiny vision tower
    expect_self_attention_matches(2, 32, 4, 32, true, 610);   // tiny text tower
    expect_self_attention_matches(1, 65, 4, 64, false, 620);  // small vision tower
    expect_self_attention_matches(1, 77, 2, 64, true, 630);   // b32 text tower
    expect_self_attention_matches(1, 1, 1, 8, true, 640);     // one token
    expect_self_attention_matches(2, 17, 3, 8, false, 650);   // odd heads, D below one vector
    expect_self_attention_matches(1, 17, 1, 5, true, 660);
}

TEST(SelfAttention, StridedProjection) {
    // qkv with rows of a wider buffer (e.g. a slice of a larger projection): read in place
    Tensor wide = randn64({2, 9, 3 * 2 * 4 + 5}, 700);
    Tensor qkv = wide.narrow(2, 3, 3 * 2 * 4);
    EXPECT_FALSE(qkv.is_contiguous());
    for (bool causal : {false, true}) {
        auto fused = [causal](Inputs in) { return self_attention(in[0], 2, causal); };
        auto comp = [causal](Inputs in) { return self_attention_composite(in[0], 2, causal); };
        Result f = run_with_grads(fused, {qkv}), c = run_with_grads(comp, {qkv.contiguous()});
        expect_close(f.out, c.out, 1e-12, 1e-12, "strided qkv forward");
        expect_close(f.grads[0], c.grads[0], 1e-10, 1e-12, "strided qkv gradient");
    }
}

TEST(SelfAttention, GradCheck) {
    gradcheck([](Inputs in) { return self_attention(in[0], 2); }, {randn64({2, 4, 3 * 2 * 3}, 710)});
    gradcheck([](Inputs in) { return self_attention(in[0], 3, true); }, {randn64({1, 5, 3 * 3 * 2}, 711)});
    gradcheck([](Inputs in) { return self_attention(in[0], 1, false, 0.7); }, {randn64({1, 3, 3 * 1 * 4}, 712)});
    // a strided qkv: the transpose of a (B, 3W, T) tensor has a strided last dim
    gradcheck([](Inputs in) { return self_attention(in[0], 2, true); },
              {randn64({1, 3 * 2 * 2, 4}, 713).transpose(1, 2)});
}

TEST(SelfAttention, Errors) {
    EXPECT_THROW(self_attention(zeros({2, 3, 12}), 5), Error);     // 12 is not 3 x 5 x D
    EXPECT_THROW(self_attention(zeros({2, 12}), 2), Error);        // not (B, T, 3W)
    EXPECT_THROW(self_attention(zeros({2, 3, 12}), 0), Error);     // no heads
    EXPECT_THROW(self_attention(zeros({2, 3, 12}, DType::I64), 2), Error);
}

TEST(SelfAttention, AutocastRunsInBf16) {
    Tensor qkv = randn64({2, 5, 3 * 8}, 720).to(DType::F32).set_requires_grad();
    Tensor y;
    {
        AutocastGuard guard(Device::cpu());
        y = self_attention(qkv, 2, true);
    }
    EXPECT_EQ(y.dtype(), DType::BF16);
    sum(y.to(DType::F32)).backward();
    ASSERT_TRUE(qkv.grad().defined());
    EXPECT_EQ(qkv.grad().dtype(), DType::F32);
}

// ---------------------------------------------------------------------------------------------
// BF16 bounds

TEST(AttentionKernel, Bf16IsTheF32KernelRoundedOnce) {
    // bf16 inputs are widened exactly and the math is the F32 kernel's: the forward output equals
    // the F32 kernel's output on the same values, rounded to bf16 once
    for (bool causal : {false, true})
        for (int64_t T : {17, 65}) {
            std::vector<Tensor> b16 = cast_all({randn64({2, 3, T, 32}, 800 + T), randn64({2, 3, T, 32}, 801 + T),
                                                randn64({2, 3, T, 32}, 802 + T)},
                                               DType::BF16);
            std::vector<Tensor> f32 = cast_all(b16, DType::F32);
            Tensor y16 = scaled_dot_product_attention(b16[0], b16[1], b16[2], causal);
            Tensor y32 = scaled_dot_product_attention(f32[0], f32[1], f32[2], causal);
            EXPECT_TRUE(same_bits(y16.contiguous(), y32.to(DType::BF16).contiguous())) << "T " << T;
        }
}

TEST(AttentionKernel, Bf16GradientsWithinBounds) {
    // Against the F64 kernel on the same bf16 values: the forward is off by the output's own
    // rounding (half a bf16 ulp, 2^-9 relative); the gradients by the rounding of dO, of the
    // saved O inside rowsum(dO * O), and their own: bounded by 2^-6 of the largest gradient.
    for (bool causal : {false, true}) {
        std::vector<Tensor> b16 = cast_all({randn64({2, 2, 65, 32}, 810), randn64({2, 2, 65, 32}, 811),
                                            randn64({2, 2, 65, 32}, 812)},
                                           DType::BF16);
        auto fused = [causal](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2], causal); };
        Result r16 = run_with_grads(fused, b16), r64 = run_with_grads(fused, cast_all(b16, DType::F64));
        expect_close(r16.out.to(DType::F64), r64.out, std::ldexp(1.0, -8), 1e-6, "bf16 forward");
        for (size_t i = 0; i < 3; i++) {
            double scale = amax(abs(r64.grads[i])).item();
            expect_close(r16.grads[i].to(DType::F64), r64.grads[i], std::ldexp(1.0, -7), std::ldexp(scale, -6),
                         "bf16 gradient " + std::to_string(i));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// determinism

TEST(AttentionKernel, BitIdenticalAcrossRunsAndThreadCounts) {
    const int threads = get_num_threads();
    for (DType dtype : {DType::F32, DType::BF16})
        for (bool causal : {false, true}) {
            Tensor qkv = randn64({8, 65, 3 * 128}, 901).to(dtype);
            auto f = [causal](Inputs x) { return self_attention(x[0], 4, causal); };
            Result first = run_with_grads(f, {qkv});
            Result again = run_with_grads(f, {qkv});
            set_num_threads(1);
            Result one = run_with_grads(f, {qkv});
            set_num_threads(threads);
            for (const Result* r : {&again, &one}) {
                EXPECT_TRUE(same_bits(first.out, r->out)) << dtype_name(dtype) << (causal ? " causal" : "");
                EXPECT_TRUE(same_bits(first.grads[0], r->grads[0])) << dtype_name(dtype) << (causal ? " causal" : "");
            }
        }
}

// ---------------------------------------------------------------------------------------------
// the CUDA backend under the strided contract (skipped without a GPU)

TEST(AttentionCuda, StridedViewsMatchTheCpu) {
    std::string reason = rankclip::test::no_cuda_reason();
    if (!reason.empty()) GTEST_SKIP() << reason;
    Device dev = rankclip::test::cpu_stands_in_for_cuda() ? Device::cpu() : Device::cuda(0);
    for (bool causal : {false, true}) {
        Tensor qkv = randn64({2, 33, 3 * 4 * 32}, 950).to(DType::F32);
        auto f = [causal](Inputs x) { return self_attention(x[0], 4, causal); };
        auto g = [causal](Inputs x) { return self_attention_composite(x[0], 4, causal); };
        Result cpu = run_with_grads(f, {qkv});
        Result dev_f = run_with_grads(f, {qkv.to(dev)});
        Result dev_g = run_with_grads(g, {qkv.to(dev)});
        for (const Result* r : {&dev_f, &dev_g}) {
            expect_close(r->out.to(Device::cpu()), cpu.out, 1e-4, 1e-5, "self_attention on the device, forward");
            expect_close(r->grads[0].to(Device::cpu()), cpu.grads[0], 1e-4, 1e-5, "self_attention on the device, gradient");
        }
    }
}
