// eval/measures.h
// defines: the evaluation measures as pure functions of feature and similarity matrices (no
// model, no data files), so each can be checked on small hand-made embeddings. (eval/eval.h runs
// them on a model; their values are what metrics.jsonl logs.)
//   class_embeddings            prompt-template features -> one embedding per class
//   classification_metrics      top-k and per-class accuracy from a score matrix
//   zero_shot_classification    the same from image features and class embeddings
//   retrieval_metrics           image->text and text->image Recall@K, mean and median rank, with
//                               several captions per image (COCO-style)
//   kendall_tau_b, spearman_rho rank correlations that handle ties
//   ranking_consistency         the property RankCLIP trains for, averaged over anchors
//   linear_probe                softmax regression on frozen features (eval/linear_probe.cpp)
//
// Ties, everywhere a ranking is made: candidates are ordered by score, descending, and equal
// scores by index, ascending (what a stable sort gives). So the lowest class index wins a tied
// zero-shot prediction, and a tied caption or image is ranked ahead when its index is lower.
// Ranks are 1-based (the best candidate has rank 1).
//
// Inputs are tensors of any floating dtype on any device; they are copied to host doubles and
// every measure is computed in double, deterministically (per-anchor work runs on the engine's
// threads but each anchor writes its own slot and the mean is summed in anchor order).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace rankclip {

// ---- zero-shot classification ----

// template_features: (C, K, E), the text features of K prompt templates for each of C classes
// (normalised or not). Returns (C, E) F32: the mean of the L2-normalised template features of
// each class, L2-normalised again (CLIP's prompt ensembling).
Tensor class_embeddings(const Tensor& template_features);

// Scores of N samples over C classes, ranked with the tie rule above.
struct ClassificationResult {
    int64_t n = 0;                               // samples scored (label >= 0); others are skipped
    std::vector<int64_t> ks;                     // the k of each top-k accuracy
    std::vector<double> top_k;                   // fraction of samples whose label ranks <= k
    std::vector<int64_t> per_class_count;        // (C) scored samples of each class
    std::vector<double> per_class_accuracy;      // (C) top-1 accuracy per class; NaN without samples
    double mean_per_class_accuracy = 0;          // mean over the classes that have samples
    std::vector<int64_t> predictions;            // (N) top-1 class of every sample (also unscored ones)

    double top(int64_t k) const;                 // top_k at k; an Error if k was not asked for
};

// The 1-based rank of class `label` in one row of scores under the tie rule.
int64_t rank_of(const double* scores, int64_t num_classes, int64_t label);

// scores: (N, C); labels: N values in [-1, C), -1 = no label (skipped, e.g. the relation task on
// an image without exactly two objects). An Error if no sample has a label. k >= C counts every
// sample as correct.
ClassificationResult classification_metrics(const Tensor& scores, const std::vector<int64_t>& labels,
                                            const std::vector<int64_t>& ks = {1, 3, 5});

// image_features: (N, E), class_embeddings: (C, E); scores = image_features @ class_embeddings^T.
// (Scaling an image's features does not change its ranking, so they need not be normalised.)
ClassificationResult zero_shot_classification(const Tensor& image_features, const Tensor& class_embeddings,
                                              const std::vector<int64_t>& labels,
                                              const std::vector<int64_t>& ks = {1, 3, 5});

// ---- retrieval ----

struct RetrievalDirection {
    std::vector<int64_t> ks;          // the K of each Recall@K
    std::vector<double> recall;       // fraction of queries whose rank <= K
    double mean_rank = 0, median_rank = 0;   // of the 1-based ranks; the median of an even count
                                             // is the mean of the two middle ranks (numpy's)
    std::vector<int64_t> ranks;       // per query, 1-based

    double recall_at(int64_t k) const;   // an Error if k was not asked for
};

struct RetrievalResult {
    int64_t images = 0, captions = 0;
    RetrievalDirection image_to_text;   // one query per image: the rank of its best-ranked caption
    RetrievalDirection text_to_image;   // one query per caption: the rank of its image
};

// similarity: (N_img, N_txt); caption_image: N_txt values, the image each caption describes.
// Every image must have at least one caption. Image->text: image i counts as retrieved at K when
// any of its captions ranks <= K among all N_txt captions.
RetrievalResult retrieval_metrics(const Tensor& similarity, const std::vector<int64_t>& caption_image,
                                  const std::vector<int64_t>& ks = {1, 5, 10});

// ---- rank correlation ----

// 1-based ranks with ties given the average of the ranks they span ({10, 20, 20} -> {1, 2.5, 2.5}).
std::vector<double> average_ranks(const std::vector<double>& x);

// Kendall's tau-b (scipy.stats.kendalltau's default): (concordant - discordant) /
// sqrt((n0 - ties_x) (n0 - ties_y)), n0 = n(n-1)/2; O(n log n) (Knight's merge-sort count).
// NaN when n < 2 or either side is constant (the ratio is undefined).
double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y);
// The O(n^2) definition, for tests.
double kendall_tau_b_reference(const std::vector<double>& x, const std::vector<double>& y);
// Spearman's rho: Pearson's correlation of the average ranks. NaN when undefined (as above).
double spearman_rho(const std::vector<double>& x, const std::vector<double>& y);

// ---- ranking consistency (RankCLIP, docs/RANKCLIP.md) ----

// For n held-out pairs (v_i, t_i), features L2-normalised here (cosine similarities). For each
// anchor i, over the other n - 1 items j != i (the anchor itself is left out: it is first in
// every in-modal list and the same value in both cross-modal lists, so it only inflates the
// agreement):
//   in-modal:    <v_i, v_j> (how image i ranks the images)  vs  <t_i, t_j> (how text i ranks the texts)
//   cross-modal: <v_i, t_j> (how image i ranks the texts)   vs  <v_j, t_i> (how text i ranks the images)
// and the Kendall tau-b and Spearman rho of each pair of lists. The result is the mean over the
// anchors where the correlation is defined; `undefined` counts the ones left out (a constant list).
struct ConsistencyResult {
    int64_t anchors = 0;
    double kendall_in = 0, spearman_in = 0, kendall_cross = 0, spearman_cross = 0;   // NaN if no anchor
    int64_t undefined = 0;   // (anchor, measure) pairs left out
};
// image_features, text_features: (n, E), n >= 3.
ConsistencyResult ranking_consistency(const Tensor& image_features, const Tensor& text_features);

// ---- linear probe (eval/linear_probe.cpp) ----

// Softmax (multinomial logistic) regression on frozen features: features standardised with the
// training split's mean and standard deviation, then logits = x W + b, loss = mean cross-entropy
// + l2 / 2 * ||W||^2 (the bias is not penalised), trained full-batch with the engine's autograd
// and its fused AdamW (adamw_step_, no decoupled weight decay: the L2 term is the regulariser)
// and a cosine learning-rate decay. Everything is F32 on the CPU; deterministic for a thread count.
struct LinearProbeOptions {
    std::vector<double> l2_grid = {1e-5, 1e-4, 1e-3, 1e-2, 1e-1};   // candidates, tried in order
    int64_t steps = 300;          // full-batch AdamW steps per fit
    double lr = 0.02;             // peak learning rate (cosine decay to 0 over `steps`)
    double val_fraction = 0.2;    // of each class of the training split, held out to choose l2
    uint64_t seed = 0;            // the validation carve
};

struct SoftmaxRegression {
    Tensor mean, inv_std;   // (E) standardisation from the data it was fitted on
    Tensor weight;          // (E, C)
    Tensor bias;            // (C)
    Tensor scores(const Tensor& features) const;   // (N, E) -> (N, C) logits
};

// labels in [0, num_classes); features (N, E).
SoftmaxRegression fit_softmax_regression(const Tensor& features, const std::vector<int64_t>& labels,
                                         int64_t num_classes, double l2, const LinearProbeOptions& options = {});

struct LinearProbeResult {
    double test_top1 = 0;                 // of the model refitted on the whole training split
    double train_top1 = 0;                // of that model on the training split
    double l2 = 0;                        // the chosen regularisation strength
    double val_top1 = 0;                  // validation top-1 of the chosen l2
    std::vector<double> val_top1_by_l2;   // one per l2_grid entry
    int64_t num_classes = 0, train_n = 0, val_n = 0, test_n = 0;
};

// Chooses l2 on a validation split carved from the training split (per class, a seeded shuffle,
// val_fraction of each class with at least one sample left for fitting; equal validation
// accuracies go to the larger l2, the simpler model), then refits on the whole training split and
// scores the test split. Samples with a label < 0 are dropped. num_classes <= 0: 1 + the largest
// label seen. With fewer than 2 samples in every class the grid's middle value is used unvalidated.
LinearProbeResult linear_probe(const Tensor& train_features, const std::vector<int64_t>& train_labels,
                               const Tensor& test_features, const std::vector<int64_t>& test_labels,
                               int64_t num_classes = 0, const LinearProbeOptions& options = {});

}  // namespace rankclip
