// eval/linear_probe.cpp
// defines: fit_softmax_regression, SoftmaxRegression::scores and linear_probe (declared in
// eval/measures.h): logistic regression on frozen image features, trained with the engine's own
// autograd and fused AdamW, its L2 strength chosen on a validation split of the training data.
// Features are standardised first: CLIP features are unit vectors whose components are ~1/sqrt(E),
// and one learning rate then suits every model width.
#include <algorithm>
#include <cmath>

#include "engine/ops.h"
#include "engine/random.h"
#include "eval/measures.h"

namespace rankclip {

static const double kPi = 3.14159265358979323846;

Tensor SoftmaxRegression::scores(const Tensor& features) const {
    RC_CHECK(features.defined() && features.dim() == 2 && features.size(1) == weight.size(0),
             "SoftmaxRegression::scores: features must be (N, ", weight.size(0), "), got ",
             features.defined() ? features.str() : std::string("undefined"));
    NoGradGuard no_grad;
    Tensor x = (features.to(Device::cpu()).to(DType::F32) - mean) * inv_std;   // (N, E)
    return matmul(x, weight) + bias;                                             // (N, C)
}

static void check_features_labels(const Tensor& features, const std::vector<int64_t>& labels, const char* what) {
    RC_CHECK(features.defined() && features.dim() == 2 && is_floating(features.dtype()), "linear probe: ", what,
             " features must be floating (N, E), got ", features.defined() ? features.str() : std::string("undefined"));
    RC_CHECK(int64_t(labels.size()) == features.size(0), "linear probe: ", labels.size(), " ", what,
             " labels for features ", features.str());
}

SoftmaxRegression fit_softmax_regression(const Tensor& features, const std::vector<int64_t>& labels,
                                         int64_t num_classes, double l2, const LinearProbeOptions& options) {
    check_features_labels(features, labels, "training");
    const int64_t N = features.size(0), E = features.size(1), C = num_classes;
    RC_CHECK(N > 0 && E > 0, "fit_softmax_regression: no samples or no features: ", features.str());
    RC_CHECK(C >= 1, "fit_softmax_regression: num_classes must be >= 1, got ", C);
    RC_CHECK(l2 >= 0 && options.steps >= 1 && options.lr > 0, "fit_softmax_regression: needs l2 >= 0 (got ", l2,
             "), steps >= 1 (got ", options.steps, ") and lr > 0 (got ", options.lr, ")");
    for (size_t i = 0; i < labels.size(); i++)
        RC_CHECK(labels[i] >= 0 && labels[i] < C, "fit_softmax_regression: label ", labels[i], " of sample ", i,
                 " outside [0, ", C, ")");

    // Standardisation statistics in double, column by column.
    const std::vector<double> x = features.to(Device::cpu()).to_vector<double>();
    std::vector<float> mean(static_cast<size_t>(E)), inv_std(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; e++) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < N; i++) m += x[size_t(i * E + e)];
        m /= double(N);
        for (int64_t i = 0; i < N; i++) v += (x[size_t(i * E + e)] - m) * (x[size_t(i * E + e)] - m);
        v /= double(N);
        mean[size_t(e)] = float(m);
        inv_std[size_t(e)] = v > 1e-20 ? float(1.0 / std::sqrt(v)) : 1.0f;   // a constant column stays 0
    }
    SoftmaxRegression model;
    model.mean = from_vector(mean, {E});
    model.inv_std = from_vector(inv_std, {E});
    Tensor inputs;   // (N, E) standardised
    {
        NoGradGuard no_grad;
        inputs = ((features.to(Device::cpu()).to(DType::F32) - model.mean) * model.inv_std).contiguous();
    }
    Tensor target = from_vector(labels, {N}, DType::I64);

    Tensor weight = zeros({E, C}).set_requires_grad();   // (E, C): zero start, the problem is convex
    Tensor bias = zeros({C}).set_requires_grad();        // (C)
    Tensor weight_m = zeros({E, C}), weight_v = zeros({E, C}), bias_m = zeros({C}), bias_v = zeros({C});
    for (int64_t step = 1; step <= options.steps; step++) {
        Tensor logits = matmul(inputs, weight) + bias;                                  // (N, C)
        Tensor loss = cross_entropy(logits, target) + sum(weight * weight) * (0.5 * l2);
        weight.zero_grad();
        bias.zero_grad();
        loss.backward();
        AdamWHyper hyper;
        hyper.lr = options.lr * 0.5 * (1.0 + std::cos(kPi * double(step - 1) / double(options.steps)));
        hyper.weight_decay = 0.0;   // the L2 term in the loss is the regulariser
        NoGradGuard no_grad;
        adamw_step_(weight, weight.grad().contiguous(), weight_m, weight_v, hyper, step);
        adamw_step_(bias, bias.grad().contiguous(), bias_m, bias_v, hyper, step);
    }
    model.weight = weight.detach();
    model.bias = bias.detach();
    return model;
}

// Top-1 accuracy of `model` on (features, labels).
static double top1(const SoftmaxRegression& model, const Tensor& features, const std::vector<int64_t>& labels) {
    return classification_metrics(model.scores(features), labels, {1}).top_k[0];
}

// The rows of `features` listed in `rows`.
static Tensor take_rows(const Tensor& features, const std::vector<int64_t>& rows) {
    NoGradGuard no_grad;
    return index_select(features, 0, from_vector(rows, {int64_t(rows.size())}, DType::I64));
}

LinearProbeResult linear_probe(const Tensor& train_features, const std::vector<int64_t>& train_labels,
                               const Tensor& test_features, const std::vector<int64_t>& test_labels,
                               int64_t num_classes, const LinearProbeOptions& options) {
    check_features_labels(train_features, train_labels, "training");
    check_features_labels(test_features, test_labels, "test");
    RC_CHECK(train_features.size(1) == test_features.size(1), "linear probe: training features ",
             train_features.str(), " and test features ", test_features.str(), " differ in width");
    RC_CHECK(!options.l2_grid.empty(), "linear probe: the l2 grid is empty");
    RC_CHECK(options.val_fraction >= 0 && options.val_fraction < 1,
             "linear probe: val_fraction must be in [0, 1), got ", options.val_fraction);
    const Tensor train_all = train_features.to(Device::cpu()).to(DType::F32);
    const Tensor test_all = test_features.to(Device::cpu()).to(DType::F32);

    // Drop unlabelled samples.
    std::vector<int64_t> train_rows, test_rows, train_y, test_y;
    int64_t largest = -1;
    for (size_t i = 0; i < train_labels.size(); i++)
        if (train_labels[i] >= 0) train_rows.push_back(int64_t(i)), train_y.push_back(train_labels[i]);
    for (size_t i = 0; i < test_labels.size(); i++)
        if (test_labels[i] >= 0) test_rows.push_back(int64_t(i)), test_y.push_back(test_labels[i]);
    RC_CHECK(!train_rows.empty() && !test_rows.empty(), "linear probe: needs labelled training and test samples (got ",
             train_rows.size(), " and ", test_rows.size(), ")");
    for (int64_t y : train_y) largest = std::max(largest, y);
    for (int64_t y : test_y) largest = std::max(largest, y);
    const int64_t C = num_classes > 0 ? num_classes : largest + 1;
    RC_CHECK(largest < C, "linear probe: label ", largest, " outside [0, ", C, ")");
    const Tensor train_x = take_rows(train_all, train_rows), test_x = take_rows(test_all, test_rows);
    const int64_t N = int64_t(train_rows.size());

    // The validation carve: one seeded permutation, then per class (in that order) the first
    // round(val_fraction * count) samples, leaving at least one to fit on.
    Generator gen(options.seed);
    const std::vector<int64_t> perm = randperm(N, gen).to_vector<int64_t>();
    std::vector<int64_t> count(static_cast<size_t>(C), 0), taken(static_cast<size_t>(C), 0);
    for (int64_t y : train_y) count[size_t(y)]++;
    std::vector<int64_t> fit_rows, val_rows, fit_y, val_y;
    for (int64_t p : perm) {
        const int64_t y = train_y[size_t(p)];
        const int64_t want = std::min(count[size_t(y)] - 1,
                                      int64_t(std::llround(options.val_fraction * double(count[size_t(y)]))));
        if (taken[size_t(y)] < want) {
            taken[size_t(y)]++;
            val_rows.push_back(p), val_y.push_back(y);
        } else {
            fit_rows.push_back(p), fit_y.push_back(y);
        }
    }

    LinearProbeResult r;
    r.num_classes = C;
    r.train_n = N;
    r.test_n = int64_t(test_rows.size());
    r.val_n = int64_t(val_rows.size());
    if (val_rows.empty()) {
        r.l2 = options.l2_grid[options.l2_grid.size() / 2];
        r.val_top1 = std::nan("");
        r.val_top1_by_l2.assign(options.l2_grid.size(), std::nan(""));
    } else {
        const Tensor fit_x = take_rows(train_x, fit_rows), val_x = take_rows(train_x, val_rows);
        double best = -1;
        for (double l2 : options.l2_grid) {
            const double acc = top1(fit_softmax_regression(fit_x, fit_y, C, l2, options), val_x, val_y);
            r.val_top1_by_l2.push_back(acc);
            if (acc > best || (acc == best && l2 > r.l2)) best = acc, r.l2 = l2;
        }
        r.val_top1 = best;
    }
    const SoftmaxRegression model = fit_softmax_regression(train_x, train_y, C, r.l2, options);
    r.train_top1 = top1(model, train_x, train_y);
    r.test_top1 = top1(model, test_x, test_y);
    return r;
}

}  // namespace rankclip
