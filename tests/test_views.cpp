// tests/test_views.cpp
// Tests that views share storage (writes through a view are seen by the base), their shapes and
// strides, contiguous(), reshape's copy-when-needed, and broadcasting rules (exhaustively over
// small shapes, against a direct element-by-element computation).
#include "tests/test_util.h"

using namespace rankclip;
using namespace rankclip::test;

static Tensor iota(const Shape& shape) {
    return arange(0, double(numel(shape)), 1, DType::F32).reshape(shape);
}

TEST(Views, WritesThroughAViewAreVisibleInTheBase) {
    Tensor base = zeros({3, 4});
    base.narrow(1, 1, 2).fill_(7.0);
    base.select(0, 2).fill_(1.0);
    base.t().narrow(0, 3, 1).copy_(full({1, 3}, 5.0));  // column 3 via a transposed view
    std::vector<float> expected = {0, 7, 7, 5, 0, 7, 7, 5, 1, 1, 1, 5};
    EXPECT_EQ(base.to_vector<float>(), expected);
}

TEST(Views, ShareStorageAndChangeOnlyLayout) {
    Tensor x = iota({2, 3, 4});
    for (Tensor v : {x.transpose(0, 2), x.permute({1, 2, 0}), x.narrow(2, 1, 2), x.unsqueeze(1), x.reshape({6, 4}),
                     x.select(1, 2), x.expand({5, 2, 3, 4}), x.flatten(1)})
        EXPECT_EQ(v.impl()->storage, x.impl()->storage);
    Tensor t = x.transpose(0, 2);
    EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
    EXPECT_EQ(t.strides(), (Shape{1, 4, 12}));
    EXPECT_FALSE(t.is_contiguous());
    Tensor c = t.contiguous();
    EXPECT_TRUE(c.is_contiguous());
    EXPECT_NE(c.impl()->storage, x.impl()->storage);
    // element (i, j, k) of the transpose is element (k, j, i) of x
    auto cv = c.to_vector<float>();
    EXPECT_EQ(cv[1 * 6 + 2 * 2 + 1], float(1 * 12 + 2 * 4 + 1));
}

TEST(Views, ReshapeCopiesOnlyWhenItMust) {
    Tensor x = iota({4, 6});
    EXPECT_EQ(x.reshape({2, 12}).impl()->storage, x.impl()->storage);
    Tensor t = x.t();
    EXPECT_THROW(t.view({24}), Error);
    Tensor r = t.reshape({24});
    EXPECT_NE(r.impl()->storage, x.impl()->storage);
    EXPECT_EQ(r.to_vector<float>()[1], 6.0f);
    EXPECT_EQ(x.reshape({-1, 3}).shape(), (Shape{8, 3}));
    EXPECT_THROW(x.reshape({5, -1}), Error);
}

TEST(Views, SqueezeUnsqueezeFlatten) {
    Tensor x = iota({2, 1, 3});
    EXPECT_EQ(x.squeeze(1).shape(), (Shape{2, 3}));
    EXPECT_EQ(x.squeeze(0).shape(), (Shape{2, 1, 3}));  // not size 1: unchanged
    EXPECT_EQ(x.unsqueeze(-1).shape(), (Shape{2, 1, 3, 1}));
    EXPECT_EQ(x.flatten().shape(), (Shape{6}));
    EXPECT_EQ(x.flatten(1, 2).shape(), (Shape{2, 3}));
    EXPECT_THROW(x.permute({0, 0, 1}), Error);
    EXPECT_THROW(x.narrow(2, 2, 2), Error);
    EXPECT_THROW(x.expand({2, 4, 4}), Error);
}

// Every pair of shapes over dims {1, 2, 3} up to rank 3, against an index-by-index computation.
TEST(Broadcasting, ExhaustiveSmallShapes) {
    std::vector<Shape> shapes = {{}};
    for (int64_t rank = 1; rank <= 3; rank++) {
        std::vector<Shape> next;
        for (const Shape& s : shapes)
            if (int64_t(s.size()) == rank - 1)
                for (int64_t d : {1, 2, 3}) {
                    Shape t = s;
                    t.push_back(d);
                    next.push_back(t);
                }
        shapes.insert(shapes.end(), next.begin(), next.end());
    }
    int checked = 0, refused = 0;
    for (const Shape& sa : shapes)
        for (const Shape& sb : shapes) {
            size_t n = std::max(sa.size(), sb.size());
            bool compatible = true;
            Shape out(n);
            for (size_t i = 0; i < n; i++) {
                int64_t da = i + sa.size() < n ? 1 : sa[i + sa.size() - n];
                int64_t db = i + sb.size() < n ? 1 : sb[i + sb.size() - n];
                if (da != db && da != 1 && db != 1) compatible = false;
                out[i] = std::max(da, db);
            }
            Tensor a = iota(sa), b = iota(sb) * 10.0;
            if (!compatible) {
                EXPECT_THROW(a + b, Error) << shape_str(sa) << " + " << shape_str(sb);
                refused++;
                continue;
            }
            Tensor c = a + b;
            ASSERT_EQ(c.shape(), out);
            auto av = a.to_vector<float>(), bv = b.to_vector<float>(), cv = c.to_vector<float>();
            for (int64_t i = 0; i < numel(out); i++) {
                int64_t ia = 0, ib = 0, rem = i, sa_stride = 1, sb_stride = 1;
                for (int64_t d = int64_t(n) - 1; d >= 0; d--) {
                    int64_t idx = rem % out[d];
                    rem /= out[d];
                    int64_t ka = d - int64_t(n - sa.size()), kb = d - int64_t(n - sb.size());
                    if (ka >= 0) { ia += (sa[ka] == 1 ? 0 : idx) * sa_stride; sa_stride *= sa[ka]; }
                    if (kb >= 0) { ib += (sb[kb] == 1 ? 0 : idx) * sb_stride; sb_stride *= sb[kb]; }
                }
                ASSERT_EQ(cv[i], av[ia] + bv[ib]) << shape_str(sa) << " + " << shape_str(sb) << " at " << i;
            }
            // the backward sums the gradient back to each input's shape
            Tensor x = iota(sa).set_requires_grad(), y = iota(sb).set_requires_grad();
            sum(x * 0.0 + y).backward();
            auto gy = y.grad().to_vector<float>();
            for (float v : gy) ASSERT_EQ(v, float(numel(out) / std::max<int64_t>(numel(sb), 1)));
            checked++;
        }
    EXPECT_GT(checked, 400);
    EXPECT_GT(refused, 100);
}

TEST(Broadcasting, ErrorNamesTheOpAndShapes) {
    try {
        iota({2, 3}) * iota({4});
        FAIL();
    } catch (const Error& e) {
        std::string m = e.what();
        EXPECT_NE(m.find("mul"), std::string::npos) << m;
        EXPECT_NE(m.find("(2, 3)"), std::string::npos) << m;
    }
}
