// eval/measures.cpp
// defines: class_embeddings, classification_metrics, zero_shot_classification, retrieval_metrics,
// average_ranks, kendall_tau_b (+ its O(n^2) reference), spearman_rho, ranking_consistency.
// Host code in double: the matrices here are at most a few thousand rows, and exact ties (which
// the tie rule of measures.h decides) must not appear or vanish through float rounding.
#include "eval/measures.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/ops.h"

namespace rankclip {

static const double kNaN = std::numeric_limits<double>::quiet_NaN();

// A host copy in double, row-major.
static std::vector<double> host_doubles(const Tensor& t) { return t.to(Device::cpu()).to_vector<double>(); }

static void check_floating_matrix(const Tensor& t, const char* op, const char* what) {
    RC_CHECK(t.defined(), op, ": ", what, " is undefined");
    RC_CHECK(t.dim() == 2, op, ": ", what, " must be 2-D, got ", t.str());
    RC_CHECK(is_floating(t.dtype()), op, ": ", what, " must be floating point, got ", t.str());
}

// ---- zero-shot classification ----

Tensor class_embeddings(const Tensor& template_features) {
    RC_CHECK(template_features.defined() && template_features.dim() == 3 && is_floating(template_features.dtype()),
             "class_embeddings: template features must be floating (C, K, E), got ",
             template_features.defined() ? template_features.str() : std::string("undefined"));
    const int64_t C = template_features.size(0), K = template_features.size(1), E = template_features.size(2);
    RC_CHECK(C > 0 && K > 0 && E > 0, "class_embeddings: empty template features ", template_features.str());
    std::vector<double> f = host_doubles(template_features);
    std::vector<float> out(static_cast<size_t>(C * E));
    std::vector<double> acc(static_cast<size_t>(E));
    for (int64_t c = 0; c < C; c++) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t k = 0; k < K; k++) {
            const double* row = f.data() + (c * K + k) * E;
            double norm = 0;
            for (int64_t e = 0; e < E; e++) norm += row[e] * row[e];
            norm = std::max(std::sqrt(norm), 1e-12);   // as l2_normalize (torch's F.normalize)
            for (int64_t e = 0; e < E; e++) acc[size_t(e)] += row[e] / norm;
        }
        double norm = 0;
        for (double a : acc) norm += (a / double(K)) * (a / double(K));
        norm = std::max(std::sqrt(norm), 1e-12);
        for (int64_t e = 0; e < E; e++) out[size_t(c * E + e)] = float(acc[size_t(e)] / double(K) / norm);
    }
    return from_vector(out, {C, E});
}

int64_t rank_of(const double* scores, int64_t num_classes, int64_t label) {
    RC_CHECK(label >= 0 && label < num_classes, "rank_of: label ", label, " outside [0, ", num_classes, ")");
    const double s = scores[label];
    int64_t ahead = 0;
    for (int64_t c = 0; c < num_classes; c++) ahead += scores[c] > s || (scores[c] == s && c < label);
    return ahead + 1;
}

double ClassificationResult::top(int64_t k) const {
    for (size_t i = 0; i < ks.size(); i++)
        if (ks[i] == k) return top_k[i];
    throw Error(str_cat("ClassificationResult: top-", k, " was not computed"));
}

ClassificationResult classification_metrics(const Tensor& scores, const std::vector<int64_t>& labels,
                                            const std::vector<int64_t>& ks) {
    check_floating_matrix(scores, "classification_metrics", "scores");
    const int64_t N = scores.size(0), C = scores.size(1);
    RC_CHECK(C > 0, "classification_metrics: no classes in scores ", scores.str());
    RC_CHECK(int64_t(labels.size()) == N, "classification_metrics: ", labels.size(), " labels for scores ",
             scores.str());
    for (int64_t k : ks) RC_CHECK(k >= 1, "classification_metrics: top-k needs k >= 1, got ", k);
    for (size_t i = 0; i < labels.size(); i++)
        RC_CHECK(labels[i] >= -1 && labels[i] < C, "classification_metrics: label ", labels[i], " of sample ", i,
                 " outside [-1, ", C, ")");
    std::vector<double> s = host_doubles(scores);
    ClassificationResult r;
    r.ks = ks;
    r.top_k.assign(ks.size(), 0.0);
    r.per_class_count.assign(size_t(C), 0);
    std::vector<int64_t> per_class_correct(static_cast<size_t>(C), 0), hits(ks.size(), 0);
    r.predictions.resize(size_t(N));
    for (int64_t i = 0; i < N; i++) {
        const double* row = s.data() + i * C;
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++)
            if (row[c] > row[best]) best = c;   // strict: the lowest index wins a tie
        r.predictions[size_t(i)] = best;
        const int64_t label = labels[size_t(i)];
        if (label < 0) continue;
        r.n++;
        r.per_class_count[size_t(label)]++;
        const int64_t rank = rank_of(row, C, label);
        per_class_correct[size_t(label)] += rank == 1;
        for (size_t j = 0; j < ks.size(); j++) hits[j] += rank <= ks[j];
    }
    RC_CHECK(r.n > 0, "classification_metrics: none of the ", N, " samples has a label");
    for (size_t j = 0; j < ks.size(); j++) r.top_k[j] = double(hits[j]) / double(r.n);
    r.per_class_accuracy.assign(size_t(C), kNaN);
    double sum = 0;
    int64_t present = 0;
    for (int64_t c = 0; c < C; c++) {
        if (r.per_class_count[size_t(c)] == 0) continue;
        r.per_class_accuracy[size_t(c)] = double(per_class_correct[size_t(c)]) / double(r.per_class_count[size_t(c)]);
        sum += r.per_class_accuracy[size_t(c)];
        present++;
    }
    r.mean_per_class_accuracy = sum / double(present);
    return r;
}

ClassificationResult zero_shot_classification(const Tensor& image_features, const Tensor& class_embeddings,
                                              const std::vector<int64_t>& labels, const std::vector<int64_t>& ks) {
    check_floating_matrix(image_features, "zero_shot_classification", "image features");
    check_floating_matrix(class_embeddings, "zero_shot_classification", "class embeddings");
    RC_CHECK(image_features.size(1) == class_embeddings.size(1), "zero_shot_classification: image features ",
             image_features.str(), " and class embeddings ", class_embeddings.str(), " differ in width");
    Tensor a = image_features.to(Device::cpu()).to(DType::F64), b = class_embeddings.to(Device::cpu()).to(DType::F64);
    NoGradGuard no_grad;
    return classification_metrics(matmul(a, b.t()), labels, ks);   // (N, C)
}

// ---- retrieval ----

double RetrievalDirection::recall_at(int64_t k) const {
    for (size_t i = 0; i < ks.size(); i++)
        if (ks[i] == k) return recall[i];
    throw Error(str_cat("RetrievalDirection: Recall@", k, " was not computed"));
}

static RetrievalDirection summarise_ranks(std::vector<int64_t> ranks, const std::vector<int64_t>& ks) {
    RetrievalDirection d;
    d.ks = ks;
    const double n = double(ranks.size());
    for (int64_t k : ks) {
        int64_t hit = 0;
        for (int64_t r : ranks) hit += r <= k;
        d.recall.push_back(double(hit) / n);
    }
    double sum = 0;
    for (int64_t r : ranks) sum += double(r);
    d.mean_rank = sum / n;
    std::vector<int64_t> sorted = ranks;
    std::sort(sorted.begin(), sorted.end());
    const size_t m = sorted.size();
    d.median_rank = m % 2 ? double(sorted[m / 2]) : 0.5 * double(sorted[m / 2 - 1] + sorted[m / 2]);
    d.ranks = std::move(ranks);
    return d;
}

RetrievalResult retrieval_metrics(const Tensor& similarity, const std::vector<int64_t>& caption_image,
                                  const std::vector<int64_t>& ks) {
    check_floating_matrix(similarity, "retrieval_metrics", "similarity");
    const int64_t I = similarity.size(0), T = similarity.size(1);
    RC_CHECK(I > 0 && T > 0, "retrieval_metrics: empty similarity ", similarity.str());
    RC_CHECK(int64_t(caption_image.size()) == T, "retrieval_metrics: ", caption_image.size(),
             " caption->image entries for similarity ", similarity.str(), " (one per caption, i.e. column)");
    for (int64_t k : ks) RC_CHECK(k >= 1, "retrieval_metrics: Recall@K needs K >= 1, got ", k);
    std::vector<int64_t> captions_of(static_cast<size_t>(I), 0);
    for (int64_t c = 0; c < T; c++) {
        const int64_t g = caption_image[size_t(c)];
        RC_CHECK(g >= 0 && g < I, "retrieval_metrics: caption ", c, " belongs to image ", g, ", outside [0, ", I, ")");
        captions_of[size_t(g)]++;
    }
    for (int64_t i = 0; i < I; i++)
        RC_CHECK(captions_of[size_t(i)] > 0, "retrieval_metrics: image ", i, " has no caption");
    const std::vector<double> s = host_doubles(similarity);   // (I, T)

    // Image -> text: the best-ranked caption of image i is the first of its captions in the
    // order (score desc, index asc); its rank is 1 + the captions ahead of it in that order.
    std::vector<int64_t> i2t(static_cast<size_t>(I));
#pragma omp parallel for schedule(static) if (I * T > 65536)
    for (int64_t i = 0; i < I; i++) {
        const double* row = s.data() + i * T;
        int64_t best = -1;
        for (int64_t c = 0; c < T; c++)
            if (caption_image[size_t(c)] == i && (best < 0 || row[c] > row[best])) best = c;
        int64_t ahead = 0;
        for (int64_t c = 0; c < T; c++) ahead += row[c] > row[best] || (row[c] == row[best] && c < best);
        i2t[size_t(i)] = ahead + 1;
    }
    // Text -> image: caption c's image among all images, by column c.
    std::vector<int64_t> t2i(static_cast<size_t>(T));
#pragma omp parallel for schedule(static) if (I * T > 65536)
    for (int64_t c = 0; c < T; c++) {
        const int64_t g = caption_image[size_t(c)];
        const double target = s[size_t(g * T + c)];
        int64_t ahead = 0;
        for (int64_t k = 0; k < I; k++) {
            const double v = s[size_t(k * T + c)];
            ahead += v > target || (v == target && k < g);
        }
        t2i[size_t(c)] = ahead + 1;
    }
    RetrievalResult r;
    r.images = I;
    r.captions = T;
    r.image_to_text = summarise_ranks(std::move(i2t), ks);
    r.text_to_image = summarise_ranks(std::move(t2i), ks);
    return r;
}

// ---- rank correlation ----

std::vector<double> average_ranks(const std::vector<double>& x) {
    const size_t n = x.size();
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
    std::vector<double> ranks(n);
    for (size_t start = 0; start < n;) {
        size_t end = start + 1;
        while (end < n && x[order[end]] == x[order[start]]) end++;
        const double rank = 0.5 * double(start + 1 + end);   // mean of the 1-based ranks start+1 .. end
        for (size_t k = start; k < end; k++) ranks[order[k]] = rank;
        start = end;
    }
    return ranks;
}

// Pairs tied within runs of equal values of a sorted sequence: sum of t (t - 1) / 2.
template <typename Equal>
static int64_t tied_pairs(size_t n, Equal equal) {
    int64_t pairs = 0, run = 1;
    for (size_t k = 1; k <= n; k++) {
        if (k < n && equal(k - 1, k)) {
            run++;
        } else {
            pairs += run * (run - 1) / 2;
            run = 1;
        }
    }
    return pairs;
}

double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y) {
    RC_CHECK(x.size() == y.size(), "kendall_tau_b: lists of different lengths ", x.size(), " and ", y.size());
    const size_t n = x.size();
    if (n < 2) return kNaN;
    // Knight (1966), as scipy: sort by (x, y); count ties in x and joint ties; then merge-sort by
    // y counting the exchanges (the discordant pairs); count ties in y.
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t(0));
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return x[a] < x[b] || (x[a] == x[b] && (y[a] < y[b] || (y[a] == y[b] && a < b)));
    });
    const int64_t x_ties = tied_pairs(n, [&](size_t a, size_t b) { return x[order[a]] == x[order[b]]; });
    const int64_t joint_ties = tied_pairs(
        n, [&](size_t a, size_t b) { return x[order[a]] == x[order[b]] && y[order[a]] == y[order[b]]; });
    std::vector<double> ys(n), buffer(n);
    for (size_t k = 0; k < n; k++) ys[k] = y[order[k]];
    int64_t exchanges = 0;
    for (size_t width = 1; width < n; width *= 2) {   // bottom-up merge sort, stable
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = std::min(lo + width, n), hi = std::min(lo + 2 * width, n);
            size_t a = lo, b = mid, out = lo;
            while (a < mid && b < hi) {
                if (ys[b] < ys[a]) {
                    exchanges += int64_t(mid - a);   // ys[b] jumps every element still left in [a, mid)
                    buffer[out++] = ys[b++];
                } else {
                    buffer[out++] = ys[a++];
                }
            }
            while (a < mid) buffer[out++] = ys[a++];
            while (b < hi) buffer[out++] = ys[b++];
        }
        ys.swap(buffer);
    }
    const int64_t y_ties = tied_pairs(n, [&](size_t a, size_t b) { return ys[a] == ys[b]; });
    const int64_t n0 = int64_t(n) * int64_t(n - 1) / 2;
    const double denominator = std::sqrt(double(n0 - x_ties)) * std::sqrt(double(n0 - y_ties));
    if (denominator == 0) return kNaN;
    // concordant - discordant = n0 - x_ties - y_ties + joint_ties - 2 * exchanges
    return double(n0 - x_ties - y_ties + joint_ties - 2 * exchanges) / denominator;
}

double kendall_tau_b_reference(const std::vector<double>& x, const std::vector<double>& y) {
    RC_CHECK(x.size() == y.size(), "kendall_tau_b_reference: lists of different lengths ", x.size(), " and ",
             y.size());
    const size_t n = x.size();
    int64_t concordant = 0, discordant = 0, only_x_tied = 0, only_y_tied = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            const double dx = x[i] - x[j], dy = y[i] - y[j];
            if (dx == 0 && dy == 0) continue;
            if (dx == 0) only_x_tied++;
            else if (dy == 0) only_y_tied++;
            else if ((dx > 0) == (dy > 0)) concordant++;
            else discordant++;
        }
    const double denominator = std::sqrt(double(concordant + discordant + only_y_tied)) *
                               std::sqrt(double(concordant + discordant + only_x_tied));
    return denominator == 0 ? kNaN : double(concordant - discordant) / denominator;
}

double spearman_rho(const std::vector<double>& x, const std::vector<double>& y) {
    RC_CHECK(x.size() == y.size(), "spearman_rho: lists of different lengths ", x.size(), " and ", y.size());
    const size_t n = x.size();
    if (n < 2) return kNaN;
    const std::vector<double> rx = average_ranks(x), ry = average_ranks(y);
    const double mean = 0.5 * double(n + 1);   // the mean of average ranks is always (n + 1) / 2
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t k = 0; k < n; k++) {
        const double a = rx[k] - mean, b = ry[k] - mean;
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    if (sxx == 0 || syy == 0) return kNaN;
    return sxy / std::sqrt(sxx * syy);
}

// ---- ranking consistency ----

ConsistencyResult ranking_consistency(const Tensor& image_features, const Tensor& text_features) {
    check_floating_matrix(image_features, "ranking_consistency", "image features");
    check_floating_matrix(text_features, "ranking_consistency", "text features");
    RC_CHECK(image_features.shape() == text_features.shape(), "ranking_consistency: image features ",
             image_features.str(), " and text features ", text_features.str(), " must be the same (n, E) pairs");
    const int64_t n = image_features.size(0);
    RC_CHECK(n >= 3, "ranking_consistency: needs at least 3 pairs, got ", n);
    std::vector<double> image_image, text_text, image_text;   // (n, n) each
    {
        NoGradGuard no_grad;
        Tensor v = l2_normalize(image_features.to(Device::cpu()).to(DType::F64), -1);
        Tensor t = l2_normalize(text_features.to(Device::cpu()).to(DType::F64), -1);
        image_image = matmul(v, v.t()).to_vector<double>();
        text_text = matmul(t, t.t()).to_vector<double>();
        image_text = matmul(v, t.t()).to_vector<double>();   // [i, j] = <v_i, t_j>
    }
    // Per anchor: kendall_in, spearman_in, kendall_cross, spearman_cross.
    std::vector<double> values(static_cast<size_t>(n * 4));
#pragma omp parallel for schedule(static) if (n > 32)
    for (int64_t i = 0; i < n; i++) {
        std::vector<double> a, b, c, d;
        a.reserve(size_t(n - 1)), b.reserve(size_t(n - 1)), c.reserve(size_t(n - 1)), d.reserve(size_t(n - 1));
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            a.push_back(image_image[size_t(i * n + j)]);
            b.push_back(text_text[size_t(i * n + j)]);
            c.push_back(image_text[size_t(i * n + j)]);   // image i ranks text j
            d.push_back(image_text[size_t(j * n + i)]);   // text i ranks image j
        }
        values[size_t(i * 4 + 0)] = kendall_tau_b(a, b);
        values[size_t(i * 4 + 1)] = spearman_rho(a, b);
        values[size_t(i * 4 + 2)] = kendall_tau_b(c, d);
        values[size_t(i * 4 + 3)] = spearman_rho(c, d);
    }
    ConsistencyResult r;
    r.anchors = n;
    double* outputs[4] = {&r.kendall_in, &r.spearman_in, &r.kendall_cross, &r.spearman_cross};
    for (int m = 0; m < 4; m++) {
        double sum = 0;
        int64_t defined = 0;
        for (int64_t i = 0; i < n; i++) {   // in anchor order: the same sum for any thread count
            const double v = values[size_t(i * 4 + m)];
            if (std::isnan(v)) {
                r.undefined++;
                continue;
            }
            sum += v;
            defined++;
        }
        *outputs[m] = defined ? sum / double(defined) : kNaN;
    }
    return r;
}

}  // namespace rankclip
