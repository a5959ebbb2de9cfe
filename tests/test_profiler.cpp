// tests/test_profiler.cpp
// tests: the op profiler (engine/profiler.h). Under it the ops compute the same bits as without;
// each kernel call lands in its row once, keyed by kernel, dtype and (for matmul) shape; nothing
// is recorded once it stops; start() clears the table; the report names the rows, the families
// and the kernels' total; a kernel that calls another through the profiler is billed its own time
// only.
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

}  // namespace
