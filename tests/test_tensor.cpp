// tests/test_tensor.cpp
// Tests tensor creation, dtype casts (bf16 round-to-nearest-even), item/to_vector, and that
// kernels give bit-identical results for a given thread count.
#include "tests/test_util.h"

using namespace rankclip;
using namespace rankclip::test;

TEST(Tensor, Creation) {
    EXPECT_EQ(zeros({2, 3}).to_vector<float>(), std::vector<float>(6, 0.0f));
    EXPECT_EQ(ones({2}, DType::F64).to_vector<double>(), std::vector<double>(2, 1.0));
    EXPECT_EQ(full({3}, 2.5).to_vector<float>(), std::vector<float>(3, 2.5f));
    EXPECT_EQ(arange(0, 5).to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4}));
    EXPECT_EQ(arange(5, 0, -2, DType::I64).to_vector<int64_t>(), (std::vector<int64_t>{5, 3, 1}));
    EXPECT_EQ(scalar_tensor(3).dim(), 0);
    EXPECT_EQ(scalar_tensor(3).item(), 3.0);
    Tensor v = from_vector(std::vector<int32_t>{1, 2, 3, 4}, {2, 2}, DType::I32);
    EXPECT_EQ(v.dtype(), DType::I32);
    EXPECT_EQ(v.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3, 4}));
    EXPECT_THROW(from_vector(std::vector<float>{1, 2, 3}, {2, 2}), Error);
    EXPECT_THROW(empty({2, -1}), Error);
}

TEST(Tensor, ShapesThatOverflowAreErrors) {
    EXPECT_EQ(numel({2, 3, 4}), 24);
    EXPECT_EQ(numel({0, 5}), 0);
    EXPECT_EQ(numel({}), 1);
    for (const Shape& bad : {Shape{int64_t(1) << 32, int64_t(1) << 32}, Shape{0, int64_t(1) << 40, int64_t(1) << 40},
                             Shape{3, -1}}) {
        try {
            numel(bad);
            ADD_FAILURE() << "numel" << shape_str(bad) << " did not throw";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(shape_str(bad)), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(zeros({int64_t(1) << 62, 4}), Error);
}

TEST(Tensor, Bf16RoundsToNearestEven) {
    // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to the even one (1)
    EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)), 1.0f);
    EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
    Tensor x = from_vector(std::vector<float>{1.0f, 3.14159f, -2.5f}, {3});
    Tensor back = x.to(DType::BF16).to(DType::F32);
    auto v = back.to_vector<float>();
    EXPECT_EQ(v[0], 1.0f);
    EXPECT_EQ(v[2], -2.5f);
    EXPECT_NEAR(v[1], 3.14159f, 0.01f);
    // arithmetic on bf16 tensors computes in f32 and rounds back
    Tensor y = x.to(DType::BF16) * 2.0;
    EXPECT_EQ(y.dtype(), DType::BF16);
    EXPECT_EQ(y.to_vector<float>()[2], -5.0f);
}

TEST(Tensor, ItemNeedsOneElement) {
    EXPECT_THROW(zeros({2}).item(), Error);
    EXPECT_EQ(full({1, 1}, 4.0).item(), 4.0);
}

TEST(Tensor, ResultsAreBitIdenticalForAThreadCount) {
    Generator gen(5);
    Tensor a = randn({300, 257}, gen), b = randn({257, 129}, gen), w = randn({257}, gen);
    auto run = [&] {
        Tensor h = layer_norm(a, w, Tensor()) + sum(a, {0}, true);
        return sum(softmax(matmul(h, b), -1) * 3.0, {1}).to_vector<float>();
    };
    int before = get_num_threads();
    for (int threads : {1, 2}) {
        set_num_threads(threads);
        auto first = run(), second = run();
        EXPECT_EQ(first, second) << threads << " threads";
    }
    set_num_threads(before);
}
