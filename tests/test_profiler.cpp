// tests/test_profiler.cpp
// tests: the op profiler (engine/profiler.h). Under it the ops compute the same bits as without;
// each kernel call lands in its row once, keyed by kernel, dtype and (for matmul) shape; nothing
// is recorded once it stops; start() clears the table; the report names the rows, the families
// and the kernels' total; a kernel that calls another through the profiler is billed its own time
// only; the GEMMs and attention carry their floating-point work, counted once when nested.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/profiler.h"
#include "engine/random.h"

using namespace rankclip;

namespace {

const profiler::Entry* find(const std::vector<profiler::Entry>& rows, const std::string& op) {
    for (const profiler::Entry& e : rows)
        if (e.op == op) return &e;
    return nullptr;
}

// (3, 4) @ (4, 5), then x + 1, then exp: three kernels (matmul, unary affine, unary exp)
Tensor compute(const Tensor& a, const Tensor& b) { return exp(affine(matmul(a, b), 1.0, 1.0)); }

TEST(Profiler, TimesEachKernelOnceAndChangesNoResult) {
    Generator gen(3);
    Tensor a = randn({3, 4}, gen), b = randn({4, 5}, gen);
    const std::vector<float> plain = compute(a, b).to_vector<float>();

    profiler::start();
    EXPECT_TRUE(profiler::active());
    const std::vector<float> profiled = compute(a, b).to_vector<float>();
    profiler::stop();
    EXPECT_FALSE(profiler::active());
    EXPECT_EQ(plain, profiled);  // bit for bit

    const std::vector<profiler::Entry> rows = profiler::entries();
    const profiler::Entry* mm = find(rows, "matmul F32 (1,3,5,4)");
    ASSERT_NE(mm, nullptr) << "no matmul row among " << rows.size();
    EXPECT_EQ(mm->calls, 1);
    EXPECT_GT(mm->seconds, 0.0);
    const profiler::Entry* ex = find(rows, "unary exp F32");
    ASSERT_NE(ex, nullptr);
    EXPECT_EQ(ex->calls, 1);
    for (size_t i = 1; i < rows.size(); i++) EXPECT_GE(rows[i - 1].seconds, rows[i].seconds);  // most time first

    // stopped: nothing more is recorded
    compute(a, b);
    EXPECT_EQ(find(profiler::entries(), "matmul F32 (1,3,5,4)")->calls, 1);

    const std::string text = profiler::report(1, 1.0);
    EXPECT_NE(text.find("matmul F32 (1,3,5,4)"), std::string::npos) << text;
    EXPECT_NE(text.find("by family:"), std::string::npos) << text;
    EXPECT_NE(text.find("kernels in all"), std::string::npos) << text;

    profiler::start();  // a new table
    EXPECT_EQ(find(profiler::entries(), "matmul F32 (1,3,5,4)"), nullptr);
    profiler::stop();
}

// Two stand-in backends: Slow's fill sleeps 20 ms; Caller's unary sleeps 5 ms, then fills through
// the profiler's wrapper of Slow, as a kernel that copies or allocates through backend_for does.
struct SlowBackend : Backend {
    const char* name() const override { return "slow"; }
    void* allocate(size_t) override { return nullptr; }
    void deallocate(void*, size_t) override {}
    void fill(Tensor&, double) override { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }
};
struct CallerBackend : SlowBackend {
    SlowBackend* slow = nullptr;
    void unary(UnaryOp, const Tensor&, Tensor& out, double, double) override {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        profiler::wrap(*slow).fill(out, 0.0);
    }
};

TEST(Profiler, BillsANestedCallToItsOwnRowOnly) {
    SlowBackend slow;
    CallerBackend caller;
    caller.slow = &slow;
    Tensor t = zeros({2});
    profiler::start();
    const auto t0 = std::chrono::steady_clock::now();
    profiler::wrap(caller).unary(UnaryOp::Exp, t, t, 0, 0);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    profiler::stop();
    const std::vector<profiler::Entry> rows = profiler::entries();
    const profiler::Entry* outer = find(rows, "unary exp F32");
    const profiler::Entry* inner = find(rows, "fill F32");
    ASSERT_NE(outer, nullptr);
    ASSERT_NE(inner, nullptr);
    EXPECT_GE(inner->seconds, 0.020);
    EXPECT_GE(outer->seconds, 0.005);
    EXPECT_LT(outer->seconds, 0.020) << "the nested 20 ms fill was billed to the caller too";
    EXPECT_LE(outer->seconds + inner->seconds, wall + 1e-6);
}

// The floating-point work billed to each row: 2 M N K for the GEMMs, 4 B H Tq Tk D for the
// attention forward and 8 for its backward (causal or not: the nominal products).
TEST(Profiler, CountsTheFloatingPointWorkOfGemmsAndAttention) {
    Generator gen(5);
    Tensor a = randn({3, 4}, gen), b = randn({4, 5}, gen), w = randn({5, 4}, gen), bias = randn({5}, gen);
    Tensor q = randn({2, 3, 5, 8}, gen).set_requires_grad(), k = randn({2, 3, 7, 8}, gen).set_requires_grad(),
           v = randn({2, 3, 7, 8}, gen).set_requires_grad();
    Tensor x = randn({6, 4}, gen).set_requires_grad(), wl = randn({5, 4}, gen).set_requires_grad(),
           bl = randn({5}, gen).set_requires_grad();
    profiler::start();
    matmul(a, b);
    sum(scaled_dot_product_attention(q, k, v)).backward();
    sum(linear(x, wl, bl)).backward();
    profiler::stop();
    const std::vector<profiler::Entry> rows = profiler::entries();
    auto flops_of = [&](const std::string& op) {
        const profiler::Entry* e = find(rows, op);
        EXPECT_NE(e, nullptr) << op;
        return e ? e->flops : -1.0;
    };
    EXPECT_EQ(flops_of("matmul F32 (1,3,5,4)"), 2.0 * 3 * 5 * 4);
    EXPECT_EQ(flops_of("attention F32 (2,3,5,7,8)"), 4.0 * 2 * 3 * 5 * 7 * 8);
    EXPECT_EQ(flops_of("attention_backward F32 (2,3,5,7,8)"), 8.0 * 2 * 3 * 5 * 7 * 8);
    EXPECT_EQ(flops_of("linear F32 (6,5,4)"), 2.0 * 6 * 5 * 4);
    EXPECT_EQ(flops_of("linear_weight_grad F32 (6,5,4) bias"), 2.0 * 6 * 5 * 4);
    EXPECT_EQ(flops_of("matmul F32 (1,6,4,5)"), 2.0 * 6 * 4 * 5);  // the input gradient
    for (const profiler::Entry& e : rows) {
        if (e.op.rfind("unary", 0) == 0 || e.op.rfind("fill", 0) == 0 || e.op.rfind("reduce", 0) == 0) {
            EXPECT_EQ(e.flops, 0.0) << e.op;
        }
    }
    const std::string text = profiler::report(1, 1.0);
    EXPECT_NE(text.find("GFLOP/s]"), std::string::npos) << text;
    EXPECT_NE(text.find("GEMMs and attention: "), std::string::npos) << text;
}

// An attention made of two GEMM calls through the profiler (as a GPU backend's GEMM path runs
// it): the GEMMs' rows hold the work, the attention row none of it, and the total counts it once.
struct GemmAttentionBackend : SlowBackend {
    Backend* gemms = nullptr;
    void attention(const Tensor& q, const Tensor& k, const Tensor&, Tensor&, Tensor&, bool, double) override {
        Tensor s = empty({1, q.size(2), k.size(2)}), o = empty({1, q.size(2), q.size(3)});
        Tensor q3 = q.reshape({1, q.size(2), q.size(3)}), k3 = k.reshape({1, k.size(2), k.size(3)});
        profiler::wrap(*gemms).matmul(q3, k3, s, false, true);  // S = Q K^T
        profiler::wrap(*gemms).matmul(s, k3, o, false, false);  // O = S V (V = K here)
    }
};

TEST(Profiler, BillsTheWorkOfANestedGemmToItsOwnRowOnly) {
    GemmAttentionBackend outer;
    outer.gemms = &backend_for(Device::cpu());
    Generator gen(6);
    Tensor q = randn({1, 1, 5, 8}, gen), k = randn({1, 1, 7, 8}, gen), out = empty({1, 1, 5, 8}), lse = empty({1, 1, 5});
    profiler::start();
    profiler::wrap(outer).attention(q, k, k, out, lse, false, 1.0);
    profiler::stop();
    const std::vector<profiler::Entry> rows = profiler::entries();
    const profiler::Entry* att = find(rows, "attention F32 (1,1,5,7,8)");
    ASSERT_NE(att, nullptr);
    EXPECT_EQ(att->flops, 0.0) << "the GEMMs' work was billed to the attention too";
    double total = 0;
    for (const profiler::Entry& e : rows) total += e.flops;
    EXPECT_EQ(total, 4.0 * 5 * 7 * 8);
}

}  // namespace
