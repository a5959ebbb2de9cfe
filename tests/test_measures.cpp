// tests/test_measures.cpp
// tests: the evaluation metrics of eval/measures.h on small hand-made embeddings whose answers
// are worked out by hand in the comments: prompt ensembling, zero-shot top-k and per-class
// accuracy (ties: the lowest class index wins), retrieval with several captions per image
// (ties: the lower index ranks first), rank correlations with ties (against scipy's values and
// the O(n^2) definition), ranking consistency, and the linear probe.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/ops.h"
#include "engine/random.h"
#include "test_util.h"
#include "eval/measures.h"

using namespace rankclip;
using rankclip::test::error_of;

namespace {

Tensor matrix(const std::vector<double>& values, int64_t rows, int64_t cols) {
    return from_vector(values, {rows, cols}, DType::F64);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(Metrics, ClassEmbeddingsAreRenormalisedMeansOfNormalisedTemplates) {
    // Class 0: templates (3, 4) and (0, 2) -> (0.6, 0.8) and (0, 1) -> mean (0.3, 0.9) -> /sqrt(0.9).
    // Class 1: (-5, 0) twice -> (-1, 0). The templates' lengths must not matter.
    Tensor f = from_vector(std::vector<double>{3, 4, 0, 2, -5, 0, -0.5, 0}, {2, 2, 2}, DType::F64);
    Tensor c = class_embeddings(f);
    ASSERT_EQ(c.shape(), (Shape{2, 2}));
    EXPECT_EQ(c.dtype(), DType::F32);
    auto v = c.to_vector<double>();
    const double s = std::sqrt(0.9);
    EXPECT_NEAR(v[0], 0.3 / s, 1e-6);
    EXPECT_NEAR(v[1], 0.9 / s, 1e-6);
    EXPECT_NEAR(v[2], -1.0, 1e-6);
    EXPECT_NEAR(v[3], 0.0, 1e-6);
    EXPECT_TRUE(contains(error_of([] { class_embeddings(zeros({2, 3})); }), "(C, K, E)"));
}

TEST(Metrics, ClassificationTopKAndPerClass) {
    // 4 samples, 3 classes.
    //   sample 0: label 0, scores (0.9, 0.1, 0.0) -> rank 1
    //   sample 1: label 1, scores (0.5, 0.2, 0.3) -> rank 3
    //   sample 2: label 2, scores (0.1, 0.3, 0.2) -> rank 2
    //   sample 3: label 2, scores (0.0, 0.1, 0.7) -> rank 1
    Tensor scores = matrix({0.9, 0.1, 0.0, 0.5, 0.2, 0.3, 0.1, 0.3, 0.2, 0.0, 0.1, 0.7}, 4, 3);
    ClassificationResult r = classification_metrics(scores, {0, 1, 2, 2}, {1, 2, 3, 5});
    EXPECT_EQ(r.n, 4);
    EXPECT_DOUBLE_EQ(r.top(1), 0.5);
    EXPECT_DOUBLE_EQ(r.top(2), 0.75);
    EXPECT_DOUBLE_EQ(r.top(3), 1.0);
    EXPECT_DOUBLE_EQ(r.top(5), 1.0);   // k >= C: always right
    EXPECT_EQ(r.predictions, (std::vector<int64_t>{0, 0, 1, 2}));
    EXPECT_EQ(r.per_class_count, (std::vector<int64_t>{1, 1, 2}));
    EXPECT_DOUBLE_EQ(r.per_class_accuracy[0], 1.0);
    EXPECT_DOUBLE_EQ(r.per_class_accuracy[1], 0.0);
    EXPECT_DOUBLE_EQ(r.per_class_accuracy[2], 0.5);
    EXPECT_DOUBLE_EQ(r.mean_per_class_accuracy, 0.5);
    EXPECT_TRUE(contains(error_of([&] { r.top(4); }), "top-4"));
}

TEST(Metrics, ClassificationTiesGoToTheLowestClassIndex) {
    // Row (1, 1, 0): class 0 wins the tie, so label 0 ranks 1 and label 1 ranks 2.
    // Row (2, 2, 2): every class tied; label 2 ranks 3, label 0 ranks 1.
    Tensor scores = matrix({1, 1, 0, 1, 1, 0, 2, 2, 2, 2, 2, 2}, 4, 3);
    const double row0[3] = {1, 1, 0};
    EXPECT_EQ(rank_of(row0, 3, 0), 1);
    EXPECT_EQ(rank_of(row0, 3, 1), 2);
    EXPECT_EQ(rank_of(row0, 3, 2), 3);
    ClassificationResult r = classification_metrics(scores, {0, 1, 2, 0}, {1, 2});
    EXPECT_EQ(r.predictions, (std::vector<int64_t>{0, 0, 0, 0}));
    EXPECT_DOUBLE_EQ(r.top(1), 0.5);    // samples 0 and 3
    EXPECT_DOUBLE_EQ(r.top(2), 0.75);   // and sample 1 (rank 2); sample 2 ranks 3
}

TEST(Metrics, ClassificationSkipsUnlabelledSamples) {
    // Sample 1 has no label (-1) and class 1 no sample: its accuracy is NaN and it is left out of
    // the mean over classes.
    Tensor scores = matrix({0.9, 0.1, 0.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.4}, 3, 3);
    ClassificationResult r = classification_metrics(scores, {0, -1, 2}, {1});
    EXPECT_EQ(r.n, 2);
    EXPECT_DOUBLE_EQ(r.top(1), 0.5);
    EXPECT_TRUE(std::isnan(r.per_class_accuracy[1]));
    EXPECT_DOUBLE_EQ(r.mean_per_class_accuracy, 0.5);
    EXPECT_TRUE(contains(error_of([&] { classification_metrics(scores, {-1, -1, -1}); }), "none of the 3"));
    EXPECT_TRUE(contains(error_of([&] { classification_metrics(scores, {0, 3, 1}); }), "label 3"));
    EXPECT_TRUE(contains(error_of([&] { classification_metrics(scores, {0, 1}); }), "2 labels"));
}

TEST(Metrics, ZeroShotFromFeatures) {
    // Classes along the axes; images at angles: the nearest axis is the prediction. Image 2 is at
    // 45 degrees between classes 0 and 1 (an exact tie: class 0 wins) and labelled 1.
    Tensor classes = matrix({1, 0, 0, 1, -1, 0}, 3, 2);
    Tensor images = matrix({2, 0.5, -0.1, 3, 1, 1, -4, -1}, 4, 2);
    ClassificationResult r = zero_shot_classification(images, classes, {0, 1, 1, 2}, {1, 2});
    EXPECT_EQ(r.predictions, (std::vector<int64_t>{0, 1, 0, 2}));
    EXPECT_DOUBLE_EQ(r.top(1), 0.75);
    EXPECT_DOUBLE_EQ(r.top(2), 1.0);
    EXPECT_TRUE(contains(error_of([&] { zero_shot_classification(images, zeros({3, 5}), {0, 1, 1, 2}); }),
                         "differ in width"));
}

TEST(Metrics, RetrievalWithSeveralCaptionsPerImage) {
    // 3 images, 5 captions: captions 0, 1 describe image 0; caption 2 image 1; captions 3, 4 image 2.
    //              cap0  cap1  cap2  cap3  cap4
    // image 0:     0.2   0.9   0.9   0.1   0.0   best own caption: cap1 (0.9), tied with cap2;
    //                                            cap1 has the lower index -> rank 1
    // image 1:     0.8   0.1   0.5   0.7   0.3   cap2 (0.5) behind cap0, cap3 -> rank 3
    // image 2:     0.6   0.6   0.6   0.4   0.6   best own: cap4 (0.6), tied with cap0..cap2 -> rank 4
    Tensor sim = matrix({0.2, 0.9, 0.9, 0.1, 0.0, 0.8, 0.1, 0.5, 0.7, 0.3, 0.6, 0.6, 0.6, 0.4, 0.6}, 3, 5);
    RetrievalResult r = retrieval_metrics(sim, {0, 0, 1, 2, 2}, {1, 2, 3});
    EXPECT_EQ(r.images, 3);
    EXPECT_EQ(r.captions, 5);
    EXPECT_EQ(r.image_to_text.ranks, (std::vector<int64_t>{1, 3, 4}));
    EXPECT_DOUBLE_EQ(r.image_to_text.recall_at(1), 1.0 / 3);
    EXPECT_DOUBLE_EQ(r.image_to_text.recall_at(3), 2.0 / 3);
    EXPECT_DOUBLE_EQ(r.image_to_text.mean_rank, 8.0 / 3);
    EXPECT_DOUBLE_EQ(r.image_to_text.median_rank, 3.0);
    // Text -> image, by columns:
    //   cap0 (image 0): column (0.2, 0.8, 0.6) -> rank 3
    //   cap1 (image 0): (0.9, 0.1, 0.6) -> rank 1
    //   cap2 (image 1): (0.9, 0.5, 0.6) -> rank 3
    //   cap3 (image 2): (0.1, 0.7, 0.4) -> rank 2
    //   cap4 (image 2): (0.0, 0.3, 0.6) -> rank 1
    EXPECT_EQ(r.text_to_image.ranks, (std::vector<int64_t>{3, 1, 3, 2, 1}));
    EXPECT_DOUBLE_EQ(r.text_to_image.recall_at(1), 0.4);
    EXPECT_DOUBLE_EQ(r.text_to_image.recall_at(2), 0.6);
    EXPECT_DOUBLE_EQ(r.text_to_image.mean_rank, 2.0);
    EXPECT_DOUBLE_EQ(r.text_to_image.median_rank, 2.0);
}

TEST(Metrics, RetrievalTiesAndEvenMedian) {
    // Every score equal: the lower index ranks first. 2 images with one caption each:
    // image 0 -> cap0 rank 1; image 1 -> cap1 rank 2 (cap0 ahead). Same by columns.
    Tensor sim = matrix({1, 1, 1, 1}, 2, 2);
    RetrievalResult r = retrieval_metrics(sim, {0, 1}, {1, 5});
    EXPECT_EQ(r.image_to_text.ranks, (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(r.text_to_image.ranks, (std::vector<int64_t>{1, 2}));
    EXPECT_DOUBLE_EQ(r.image_to_text.median_rank, 1.5);   // even count: mean of the middle two
    EXPECT_DOUBLE_EQ(r.image_to_text.recall_at(1), 0.5);
    EXPECT_DOUBLE_EQ(r.image_to_text.recall_at(5), 1.0);
}

TEST(Metrics, RetrievalErrors) {
    Tensor sim = matrix({1, 2, 3, 4, 5, 6}, 2, 3);
    EXPECT_TRUE(contains(error_of([&] { retrieval_metrics(sim, {0, 0, 0}); }), "image 1 has no caption"));
    EXPECT_TRUE(contains(error_of([&] { retrieval_metrics(sim, {0, 1, 2}); }), "caption 2 belongs to image 2"));
    EXPECT_TRUE(contains(error_of([&] { retrieval_metrics(sim, {0, 1}); }), "one per caption"));
}

TEST(Metrics, AverageRanks) {
    EXPECT_EQ(average_ranks({10, 20, 20, 5}), (std::vector<double>{2, 3.5, 3.5, 1}));
    EXPECT_EQ(average_ranks({7, 7, 7}), (std::vector<double>{2, 2, 2}));
    EXPECT_EQ(average_ranks({}), (std::vector<double>{}));
}

TEST(Metrics, KendallAndSpearmanKnownValues) {
    EXPECT_DOUBLE_EQ(kendall_tau_b({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
    EXPECT_DOUBLE_EQ(kendall_tau_b({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
    EXPECT_DOUBLE_EQ(spearman_rho({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
    // scipy.stats.kendalltau's documented example (tau-b with ties in both lists).
    EXPECT_NEAR(kendall_tau_b({12, 2, 1, 12, 2}, {1, 4, 7, 1, 0}), -0.47140452079103173, 1e-12);
    // scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) (a tie in y).
    EXPECT_NEAR(spearman_rho({1, 2, 3, 4, 5}, {5, 6, 7, 8, 7}), 0.82078268166812329, 1e-12);
    // By hand: x = (1, 2, 3), y = (1, 1, 2): pairs (0,1) tied in y, (0,2) and (1,2) concordant:
    // tau-b = 2 / sqrt(3 * 2).
    EXPECT_NEAR(kendall_tau_b({1, 2, 3}, {1, 1, 2}), 2.0 / std::sqrt(6.0), 1e-12);
    // Undefined: a constant list or fewer than two items.
    EXPECT_TRUE(std::isnan(kendall_tau_b({1, 2, 3}, {5, 5, 5})));
    EXPECT_TRUE(std::isnan(spearman_rho({5, 5, 5}, {1, 2, 3})));
    EXPECT_TRUE(std::isnan(kendall_tau_b({1}, {1})));
    EXPECT_TRUE(contains(error_of([] { kendall_tau_b({1, 2}, {1}); }), "different lengths"));
}

TEST(Metrics, KendallMatchesTheQuadraticDefinitionWithManyTies) {
    Generator gen(7);
    for (int trial = 0; trial < 200; trial++) {
        const int64_t n = 2 + trial % 37;
        const int64_t levels = 1 + trial % 6;   // few distinct values: many ties, sometimes constant
        std::vector<int64_t> a(static_cast<size_t>(2 * n));
        gen.fill_randint(a.data(), 2 * n, 0, levels + 1);
        std::vector<double> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
        for (int64_t k = 0; k < n; k++) x[size_t(k)] = double(a[size_t(k)]), y[size_t(k)] = double(a[size_t(n + k)]);
        const double fast = kendall_tau_b(x, y), slow = kendall_tau_b_reference(x, y);
        if (std::isnan(slow)) {
            EXPECT_TRUE(std::isnan(fast)) << "trial " << trial;
        } else {
            EXPECT_NEAR(fast, slow, 1e-12) << "trial " << trial << " n " << n;
        }
    }
}

TEST(Metrics, RankingConsistencyHandMade) {
    // Unit vectors at angles: images v0 = 0, v1 = 30, v2 = 90 degrees; texts t0 = 0, t1 = 90,
    // t2 = 30 degrees. In-modal, every anchor's order of the other two flips (e.g. anchor 0:
    // images rank v1 (cos 30) before v2 (0); texts rank t2 (cos 30) before t1 (0)): all -1.
    // Cross-modal, anchor 0: image 0 scores texts 1, 2 as (0, .87); text 0 scores images 1, 2
    // as (.87, 0): -1. Anchor 1: (<v1,t0>, <v1,t2>) = (.87, 1) vs (<v0,t1>, <v2,t1>) = (0, 1): +1.
    // Anchor 2: (<v2,t0>, <v2,t1>) = (0, 1) vs (<v0,t2>, <v1,t2>) = (.87, 1): +1. Mean 1/3.
    const double c = std::cos(M_PI / 6), s = 0.5;
    Tensor images = matrix({1, 0, c, s, 0, 1}, 3, 2);
    Tensor texts = matrix({1, 0, 0, 1, c, s}, 3, 2);
    for (double scale : {1.0, 3.0}) {   // cosine similarities: the features' lengths do not matter
        ConsistencyResult r = ranking_consistency(images * scale, texts);
        EXPECT_EQ(r.anchors, 3);
        EXPECT_EQ(r.undefined, 0);
        EXPECT_NEAR(r.kendall_in, -1.0, 1e-12);
        EXPECT_NEAR(r.spearman_in, -1.0, 1e-12);
        EXPECT_NEAR(r.kendall_cross, 1.0 / 3, 1e-12);
        EXPECT_NEAR(r.spearman_cross, 1.0 / 3, 1e-12);
    }
    // Texts equal to the images: perfectly consistent.
    ConsistencyResult same = ranking_consistency(images, images.to(DType::F32));
    EXPECT_NEAR(same.kendall_in, 1.0, 1e-12);
    EXPECT_NEAR(same.kendall_cross, 1.0, 1e-12);
    EXPECT_NEAR(same.spearman_cross, 1.0, 1e-12);
}

TEST(Metrics, RankingConsistencyWithTiesAndUndefinedAnchors) {
    // All texts equal: every text-text list is constant, so in-modal is undefined at every anchor
    // (NaN, counted), while cross-modal: image i's scores of the texts are all <v_i, t> (constant
    // too) -> undefined as well.
    Tensor images = matrix({1, 0, 0, 1, 1, 1, -1, 2}, 4, 2);
    Tensor texts = matrix({1, 1, 1, 1, 1, 1, 1, 1}, 4, 2);
    ConsistencyResult r = ranking_consistency(images, texts);
    EXPECT_TRUE(std::isnan(r.kendall_in));
    EXPECT_TRUE(std::isnan(r.spearman_in));
    EXPECT_TRUE(std::isnan(r.kendall_cross));
    EXPECT_EQ(r.undefined, 16);
    EXPECT_TRUE(contains(error_of([&] { ranking_consistency(images, matrix({1, 0, 0, 1}, 2, 2)); }),
                         "same (n, E) pairs"));
}

// Three well-separated Gaussian blobs in 6-D (unit noise around 4 e_c), labelled by blob.
static void blobs(int64_t n, uint64_t seed, Tensor& x, std::vector<int64_t>& y) {
    Generator gen(seed);
    Tensor noise = randn({n, 6}, gen);
    std::vector<float> v = noise.to_vector<float>();
    y.resize(size_t(n));
    for (int64_t i = 0; i < n; i++) {
        y[size_t(i)] = i % 3;
        v[size_t(i * 6 + y[size_t(i)])] += 4.0f;   // blob c sits at 4 e_c
    }
    x = from_vector(v, {n, 6});
}

TEST(Metrics, LinearProbeSeparatesBlobs) {
    Tensor train_x, test_x;
    std::vector<int64_t> train_y, test_y;
    blobs(150, 1, train_x, train_y);
    blobs(60, 2, test_x, test_y);
    LinearProbeOptions opt;
    LinearProbeResult r = linear_probe(train_x, train_y, test_x, test_y, 0, opt);
    EXPECT_EQ(r.num_classes, 3);
    EXPECT_EQ(r.train_n, 150);
    EXPECT_EQ(r.val_n, 30);   // 20% of each class of 50
    EXPECT_EQ(r.test_n, 60);
    EXPECT_EQ(r.val_top1_by_l2.size(), opt.l2_grid.size());
    EXPECT_GE(r.test_top1, 0.95);
    EXPECT_GE(r.train_top1, 0.95);
    // Deterministic: the same result, bit for bit.
    LinearProbeResult again = linear_probe(train_x, train_y, test_x, test_y, 0, opt);
    EXPECT_EQ(again.test_top1, r.test_top1);
    EXPECT_EQ(again.l2, r.l2);
    EXPECT_EQ(again.val_top1_by_l2, r.val_top1_by_l2);
}

TEST(Metrics, LinearProbeChoosesTheLargerL2OnEqualValidation) {
    // Perfectly separable: every candidate reaches validation top-1 = 1, so the largest wins.
    Tensor train_x, test_x;
    std::vector<int64_t> train_y, test_y;
    blobs(90, 3, train_x, train_y);
    blobs(30, 4, test_x, test_y);
    LinearProbeOptions opt;
    opt.l2_grid = {1e-4, 1e-3};
    LinearProbeResult r = linear_probe(train_x, train_y, test_x, test_y, 0, opt);
    ASSERT_EQ(r.val_top1_by_l2, (std::vector<double>{1.0, 1.0}));
    EXPECT_EQ(r.l2, 1e-3);
}

TEST(Metrics, SoftmaxRegressionL2ShrinksTheWeights) {
    Tensor x;
    std::vector<int64_t> y;
    blobs(60, 5, x, y);
    auto norm = [](const SoftmaxRegression& m) { return std::sqrt(sum(m.weight * m.weight).item()); };
    SoftmaxRegression weak = fit_softmax_regression(x, y, 3, 1e-4), strong = fit_softmax_regression(x, y, 3, 1.0);
    EXPECT_LT(norm(strong), 0.5 * norm(weak));
    ClassificationResult fit = classification_metrics(weak.scores(x), y, {1});
    EXPECT_DOUBLE_EQ(fit.top(1), 1.0);
}

TEST(Metrics, LinearProbeDropsUnlabelledAndChecksInputs) {
    Tensor x;
    std::vector<int64_t> y;
    blobs(60, 6, x, y);
    std::vector<int64_t> some = y;
    for (size_t i = 0; i < some.size(); i += 4) some[i] = -1;
    LinearProbeResult r = linear_probe(x, some, x, y);
    EXPECT_EQ(r.train_n, 45);
    EXPECT_EQ(r.test_n, 60);
    EXPECT_TRUE(contains(error_of([&] { linear_probe(x, std::vector<int64_t>(3, 0), x, y); }), "3 training labels"));
    EXPECT_TRUE(contains(error_of([&] { linear_probe(x, y, zeros({60, 2}), y); }), "differ in width"));
    EXPECT_TRUE(contains(error_of([&] { linear_probe(x, y, x, y, 2); }), "outside [0, 2)"));
}
