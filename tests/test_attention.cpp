// tests/test_attention.cpp
// tests: the CPU attention kernels (tiled AVX-512 for F32/BF16, scalar for F64) and the fused
// self_attention op:
//   - scaled_dot_product_attention against attention_composite (matmul + softmax) on the CLIP
//     shapes and awkward ones (T = 1, 17, 65, 77, 128; Tq != Tk; causal or not; D = 8, 32, 64;
//     odd B H), forward and gradients, F32 also against the F64 scalar kernel and against the old
//     per-row float kernel (kept here as old_scalar_attention);
//   - long sequences (several query blocks) against the composite;
//   - strided inputs read in place (head-split views of a packed projection, stride-0 keys, a
//     strided last dim) and the output layout (permuted back to (B, T, W) it is a view);
//   - self_attention against self_attention_composite, F64 / F32 / BF16, forward and gradients,
//     and an F64 gradient check;
//   - BF16: on AVX512-BF16 CPUs (D even, even strides) the products run on bf16 pairs: output and
//     gradients within bf16 bounds of the F64 ones and of the widened kernel (the F32 kernel on
//     the same values, which runs for odd D or odd strides and whose output is the F32 output
//     rounded once);
//   - bit-identical results across runs and across thread counts.
#include <gtest/gtest.h>

#include <cmath>
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
    sum(r.out * randn64(r.out.shape(), 4242).to(r.out.dtype()).to(r.out.device())).backward();
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

namespace {

// The engine's previous CPU kernel, kept here as a reference: per (batch, head), per query row,
// scalar float dot products, contiguous (BH, T, D) values. Forward: out, lse; backward: the
// gradients for dO.
struct ScalarAttention {
    std::vector<float> out, lse, gq, gk, gv;
};
ScalarAttention old_scalar_attention(const std::vector<float>& q, const std::vector<float>& k,
                                     const std::vector<float>& v, const std::vector<float>& go, int64_t BH,
                                     int64_t Tq, int64_t Tk, int64_t D, bool causal) {
    const float scale = float(1.0 / std::sqrt(double(D)));
    ScalarAttention r;
    r.out.assign(size_t(BH * Tq * D), 0.0f);
    r.lse.assign(size_t(BH * Tq), 0.0f);
    r.gq.assign(size_t(BH * Tq * D), 0.0f);
    r.gk.assign(size_t(BH * Tk * D), 0.0f);
    r.gv.assign(size_t(BH * Tk * D), 0.0f);
    std::vector<float> p(static_cast<size_t>(Tk));
    for (int64_t bh = 0; bh < BH; bh++)
        for (int64_t i = 0; i < Tq; i++) {
            const float* qi = &q[size_t((bh * Tq + i) * D)];
            int64_t keys = causal ? std::min(Tk, i + 1) : Tk;
            float m = -INFINITY, sum = 0;
            for (int64_t j = 0; j < keys; j++) {
                float s = 0;
                for (int64_t d = 0; d < D; d++) s += qi[d] * k[size_t((bh * Tk + j) * D + d)];
                p[j] = s * scale;
                m = std::max(m, p[j]);
            }
            for (int64_t j = 0; j < keys; j++) sum += (p[j] = std::exp(p[j] - m));
            for (int64_t d = 0; d < D; d++) {
                float acc = 0;
                for (int64_t j = 0; j < keys; j++) acc += p[j] * v[size_t((bh * Tk + j) * D + d)];
                r.out[size_t((bh * Tq + i) * D + d)] = acc / sum;
            }
            r.lse[size_t(bh * Tq + i)] = m + std::log(sum);
        }
    for (int64_t bh = 0; bh < BH; bh++)
        for (int64_t i = 0; i < Tq; i++) {
            const float* qi = &q[size_t((bh * Tq + i) * D)];
            const float* goi = &go[size_t((bh * Tq + i) * D)];
            const float* oi = &r.out[size_t((bh * Tq + i) * D)];
            int64_t keys = causal ? std::min(Tk, i + 1) : Tk;
            float delta = 0;
            for (int64_t d = 0; d < D; d++) delta += goi[d] * oi[d];
            for (int64_t j = 0; j < keys; j++) {
                const float* kj = &k[size_t((bh * Tk + j) * D)];
                const float* vj = &v[size_t((bh * Tk + j) * D)];
                float s = 0, dp = 0;
                for (int64_t d = 0; d < D; d++) s += qi[d] * kj[d], dp += goi[d] * vj[d];
                float pj = std::exp(s * scale - r.lse[size_t(bh * Tq + i)]);
                float ds = pj * (dp - delta) * scale;
                for (int64_t d = 0; d < D; d++) {
                    r.gv[size_t((bh * Tk + j) * D + d)] += pj * goi[d];
                    r.gk[size_t((bh * Tk + j) * D + d)] += ds * qi[d];
                    r.gq[size_t((bh * Tq + i) * D + d)] += ds * kj[d];
                }
            }
        }
    return r;
}

Tensor f32_tensor(const std::vector<float>& values, const Shape& shape) {
    return from_vector(values, shape, DType::F32);
}

}  // namespace

TEST(AttentionKernel, MatchesTheOldScalarKernel) {
    for (int64_t T : {1, 17, 65, 77, 128})
        for (int64_t D : {8, 32, 64})
            for (bool causal : {false, true}) {
                const std::string what =
                    "T " + std::to_string(T) + " D " + std::to_string(D) + (causal ? " causal" : "");
                const int64_t B = 3, H = 1;  // odd B H
                const Shape shape{B, H, T, D};
                uint64_t seed = uint64_t(1000 + 3 * T + D);
                Tensor q = randn64(shape, seed).to(DType::F32), k = randn64(shape, seed + 1).to(DType::F32),
                       v = randn64(shape, seed + 2).to(DType::F32), go = randn64(shape, seed + 3).to(DType::F32);
                ScalarAttention ref = old_scalar_attention(q.to_vector<float>(), k.to_vector<float>(),
                                                           v.to_vector<float>(), go.to_vector<float>(), B * H, T, T, D,
                                                           causal);
                Tensor ql = q.detach().set_requires_grad(), kl = k.detach().set_requires_grad(),
                       vl = v.detach().set_requires_grad();
                Tensor out = scaled_dot_product_attention(ql, kl, vl, causal);
                out.backward(go);
                expect_close(out, f32_tensor(ref.out, shape), 1e-5, 1e-5, what + " forward");
                expect_close(ql.grad(), f32_tensor(ref.gq, shape), 1e-4, 1e-5, what + " dq");
                expect_close(kl.grad(), f32_tensor(ref.gk, shape), 1e-4, 1e-5, what + " dk");
                expect_close(vl.grad(), f32_tensor(ref.gv, shape), 1e-4, 1e-5, what + " dv");
            }
}

TEST(AttentionKernel, LongSequencesTakeSeveralQueryBlocks) {
    // (queries, keys) score tiles are capped at 128 KiB: 1030 keys give blocks of 31 queries
    for (bool causal : {false, true}) {
        std::vector<Tensor> in = {randn64({1, 1, 1030, 8}, 300).to(DType::F32),
                                  randn64({1, 1, 1030, 8}, 301).to(DType::F32),
                                  randn64({1, 1, 1030, 8}, 302).to(DType::F32)};
        auto fused = [causal](Inputs x) { return scaled_dot_product_attention(x[0], x[1], x[2], causal); };
        auto comp = [causal](Inputs x) { return attention_composite(x[0], x[1], x[2], causal); };
        Result f = run_with_grads(fused, in), c = run_with_grads(comp, in);
        std::string what = causal ? "T 1030 causal" : "T 1030";
        expect_close(f.out, c.out, 1e-5, 1e-5, what + " forward");
        for (size_t i = 0; i < 3; i++)
            expect_close(f.grads[i], c.grads[i], 1e-4, 1e-5, what + " gradient " + std::to_string(i));
    }
}

TEST(AttentionKernel, KnownValues) {
    // one key: every query attends to it fully, the output is v (F32 and BF16: the tiled kernel)
    for (DType dtype : {DType::F32, DType::BF16}) {
        Tensor q = randn64({1, 2, 20, 16}, 90).to(dtype), k = randn64({1, 2, 1, 16}, 91).to(dtype),
               v = randn64({1, 2, 1, 16}, 92).to(dtype);
        EXPECT_TRUE(
            same_bits(scaled_dot_product_attention(q, k, v).contiguous(), v.expand({1, 2, 20, 16}).contiguous()));
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
            Result a = run_with_grads(fused, cast_all(views, dtype)),
                   b = run_with_grads(fused, cast_all(copies, dtype));
            EXPECT_TRUE(same_bits(a.out, b.out)) << dtype_name(dtype) << (causal ? " causal" : "");
            for (size_t i = 0; i < 3; i++)
                EXPECT_TRUE(same_bits(a.grads[i], b.grads[i])) << dtype_name(dtype) << " grad " << i;
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

TEST(AttentionKernel, Bf16WidenedKernelIsTheF32KernelRoundedOnce) {
    // where the pair kernel does not apply (odd D), bf16 inputs are widened exactly and the math
    // is the F32 kernel's: the forward output equals the F32 kernel's output on the same values,
    // rounded to bf16 once (bit for bit)
    for (int64_t T : {1, 17, 65, 77})
        for (int64_t D : {7, 33})
            for (bool causal : {false, true}) {
                uint64_t seed = uint64_t(800 + 3 * T + D);
                std::vector<Tensor> b16 = cast_all(
                    {randn64({1, 3, T, D}, seed), randn64({1, 3, T, D}, seed + 1), randn64({1, 3, T, D}, seed + 2)},
                    DType::BF16);
                std::vector<Tensor> f32 = cast_all(b16, DType::F32);
                Tensor y16 = scaled_dot_product_attention(b16[0], b16[1], b16[2], causal);
                Tensor y32 = scaled_dot_product_attention(f32[0], f32[1], f32[2], causal);
                EXPECT_TRUE(same_bits(y16.contiguous(), y32.to(DType::BF16).contiguous()))
                    << "T " << T << " D " << D << (causal ? " causal" : "");
            }
}

namespace {

// The bf16 bounds against a reference on the same bf16 values (the F64 kernel, or the widened
// F32 kernel). Forward: P is rounded to bf16 before P V (2^-9 relative per weight: at most 2^-9
// of the largest |v|) and the output once (2^-9 relative): checked to 2^-8 relative plus 2^-8 of
// the largest |v|. Gradients: P and dS are rounded for their products, dO and the saved O are
// bf16 (rowsum(dO * O) subtracts nearly equal numbers), and each gradient is rounded once:
// checked to 2^-7 relative plus 2^-6 of the largest gradient of that input (the entries that are
// differences of near-equal terms) plus 1e-5 (T = 1: dq and dk are exactly 0, left with rounding
// residue).
void expect_within_bf16_bounds(const Result& r16, const Result& ref, const Tensor& v, const std::string& what) {
    EXPECT_EQ(r16.out.dtype(), DType::BF16);
    double largest_v = amax(abs(v.to(DType::F64))).item();
    expect_close(r16.out.to(DType::F64), ref.out.to(DType::F64), std::ldexp(1.0, -8), std::ldexp(largest_v, -8),
                 what + " bf16 forward");
    for (size_t i = 0; i < 3; i++) {
        EXPECT_EQ(r16.grads[i].dtype(), DType::BF16);
        Tensor g = ref.grads[i].to(DType::F64);
        double largest = amax(abs(g)).item();
        expect_close(r16.grads[i].to(DType::F64), g, std::ldexp(1.0, -7), std::ldexp(largest, -6) + 1e-5,
                     what + " bf16 gradient " + std::to_string(i));
    }
}

}  // namespace

TEST(AttentionKernel, Bf16GradientsWithinBounds) {
    // against the F64 kernel on the same bf16 values
    for (int64_t T : {1, 17, 65, 77, 128})
        for (int64_t D : {8, 32, 64})
            for (bool causal : {false, true}) {
                const std::string what =
                    "T " + std::to_string(T) + " D " + std::to_string(D) + (causal ? " causal" : "");
                uint64_t seed = uint64_t(900 + 3 * T + D);
                std::vector<Tensor> b16 = cast_all(
                    {randn64({1, 3, T, D}, seed), randn64({1, 3, T, D}, seed + 1), randn64({1, 3, T, D}, seed + 2)},
                    DType::BF16);
                auto fused = [causal](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2], causal); };
                Result r16 = run_with_grads(fused, b16), r64 = run_with_grads(fused, cast_all(b16, DType::F64));
                expect_within_bf16_bounds(r16, r64, b16[2], what);
            }
}

TEST(AttentionKernel, Bf16PairKernelMatchesTheWidenedKernel) {
    // The same bf16 values twice: in (B, H, T, D) tensors with D even (the pair kernel), and as
    // views of buffers one element wider, whose odd row strides send them to the widened F32
    // kernel; the bounds against the F64 kernel hold between them.
    for (int64_t T : {1, 17, 65, 77, 300})
        for (bool causal : {false, true}) {
            const int64_t D = 64;
            const std::string what = "T " + std::to_string(T) + (causal ? " causal" : "");
            uint64_t seed = uint64_t(950 + T);
            std::vector<Tensor> pairs, widened;
            for (uint64_t i = 0; i < 3; i++) {
                Tensor wide = randn64({2, 2, T, D + 1}, seed + i).to(DType::BF16);
                widened.push_back(wide.narrow(3, 0, D));
                pairs.push_back(widened.back().contiguous());
            }
            ASSERT_EQ(widened[0].strides()[2] % 2, 1);
            auto fused = [causal](Inputs in) { return scaled_dot_product_attention(in[0], in[1], in[2], causal); };
            Result a = run_with_grads(fused, pairs), b = run_with_grads(fused, widened);
            expect_within_bf16_bounds(a, b, pairs[2], what);
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
            expect_close(r->grads[0].to(Device::cpu()), cpu.grads[0], 1e-4, 1e-5,
                         "self_attention on the device, gradient");
        }
    }
}
