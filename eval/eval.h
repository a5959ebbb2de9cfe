// eval/eval.h
// defines: model-level evaluation — what `rankclip eval` prints and what `rankclip train
// --eval-every` logs to metrics.jsonl: EvalConfig (which datasets, for which evaluation),
// evaluate / Evaluator (run them all, returning flat metric names), the embedding helpers
// (a dataset's images, a list of texts, prompt-ensembled class embeddings), templates, and the
// table / JSON formatting. The measures themselves are pure functions in eval/measures.h.
//
// Datasets are named by spec strings (data/open_dataset.h's, plus evaluation defaults):
//   synthetic[:train|val|heldout][:N]   the built-in set, seed 0; the val split and N = 1000 by
//                                       default (the probe: train split, N = 5000, tested on val)
//   fashion-mnist[:train|test]          Debian's dataset-fashion-mnist; test split by default
//                                       (the probe: train, tested on test)
//   DIR                                 class folders; the probe uses DIR/train + DIR/test when
//                                       both exist, else every 5th image (index % 5 == 4) as test
//   FILE.csv / .tsv, shards (.tar, .rcpack)   captioned pairs (retrieval, consistency)
// --limit caps every dataset at that many images, spread evenly over it (image folders are
// sorted by class, so a prefix would hold only the first classes).
//
// Metric names ("<kind>/<dataset>[-<task>]/<metric>"; the dataset's name is "synthetic",
// "synthetic-heldout", "synthetic-train", "fashion-mnist", or a path's base name):
//   zeroshot/synthetic-shape/top1  top3  top5  mean_per_class  n  class/<class name>
//     (synthetic: one block per task: shape, colour, count, relation)
//   retrieval/synthetic/i2t/R@1  R@5  R@10  mean_rank  median_rank   (and t2i/...)
//   retrieval/synthetic/images  captions
//   probe/synthetic/top1  train_top1  val_top1  l2  train_n  test_n
//   consistency/synthetic/kendall_in  spearman_in  kendall_cross  spearman_cross  pairs
// Accuracies and recalls are fractions in [0, 1]; ranks are 1-based; spaces in class names
// become '_'.
//
// Images get CLIP's evaluation preprocessing (data/image.h) at the model's size; features are
// L2-normalised; everything runs under NoGradGuard on the model's device, in eval mode (restored
// afterwards), and is deterministic for a thread count.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "data/open_dataset.h"
#include "data/tokenizer.h"
#include "engine/json.h"
#include "engine/tensor.h"
#include "models/clip.h"
#include "eval/measures.h"

namespace rankclip {

struct EvalConfig {
    std::vector<std::string> zero_shot;     // dataset specs, one evaluation each
    std::vector<std::string> retrieval;
    std::vector<std::string> probe;
    std::vector<std::string> consistency;
    std::string templates_file;             // one template per line with "{}"; "": the built-in sets
    int64_t batch_size = 64;                // images / texts per forward pass
    int64_t limit = 0;                      // at most this many images of each dataset; 0: no cap
    int64_t synthetic_n = 1000;             // synthetic evaluation splits without ":N"
    int64_t synthetic_probe_train_n = 5000; // the synthetic probe's training split without ":N"
    int captions_per_image = 5;             // synthetic retrieval (COCO has five)
    uint64_t synthetic_seed = 0;
    OpenOptions open_options;               // CSV columns and separator, bad-sample policy
    LinearProbeOptions probe_options;
    bool verbose = false;                   // one progress line per evaluation on stderr

    bool empty() const { return zero_shot.empty() && retrieval.empty() && probe.empty() && consistency.empty(); }
};

// Every evaluation on the synthetic data: zero-shot on its val and heldout splits, retrieval,
// linear probe and ranking consistency on val.
EvalConfig default_eval_config();

// Applies one option (the name without "--", as `rankclip eval` takes it) to cfg; false when the
// name is not an evaluation option. Lists ("zeroshot", "retrieval", "probe", "consistency") take
// comma-separated specs and append; "none" clears the list. Others: "templates", "batch-size",
// "limit", "captions-per-image", "synthetic-n", "probe-train-n", "probe-steps", "probe-lr", "seed"
// (of the probe's validation carve), "image-column", "caption-column", "separator". Bad values
// are Errors naming the option. Shared with `rankclip train`'s --eval-* flags.
bool set_eval_option(EvalConfig& cfg, const std::string& name, const std::string& value);
// The help text for those options (for usage messages).
const char* eval_options_help();

using EvalMetrics = std::vector<std::pair<std::string, double>>;

// Runs every evaluation of cfg. Datasets are opened (and checked) at construction and kept, so a
// trainer builds one Evaluator and calls run() every --eval-every steps; features are recomputed
// on each run (the model has changed), and within a run each image and text is encoded once.
class Evaluator {
public:
    Evaluator(const EvalConfig& cfg, const Tokenizer& tok);
    ~Evaluator();
    Evaluator(const Evaluator&) = delete;
    Evaluator& operator=(const Evaluator&) = delete;

    EvalMetrics run(const CLIP& model);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// Evaluator(cfg, tok).run(model).
EvalMetrics evaluate(const CLIP& model, const EvalConfig& cfg, const Tokenizer& tok);

// ---- building blocks ----

// The images of data[indices]: features (N, E) F32 on the CPU, L2-normalised, in index order;
// also each sample's label and caption. Decoding runs on the engine's threads; errors name the
// dataset's file (its bad-sample policy applies).
struct EmbeddedImages {
    Tensor features;                    // (N, E)
    std::vector<int64_t> labels;        // (N), -1 where the dataset has none
    std::vector<std::string> captions;  // (N)
};
EmbeddedImages embed_images(const CLIP& model, const Dataset& data, const std::vector<int64_t>& indices,
                            int64_t batch_size = 64);

// texts tokenized with tok at the model's context length -> (N, E) F32 on the CPU, normalised.
Tensor embed_texts(const CLIP& model, const Tokenizer& tok, const std::vector<std::string>& texts,
                   int64_t batch_size = 64);

// The prompts of class c: each template with "{}" replaced by the class name (and "a {}" turned
// into "an {}" before a vowel, as the synthetic tasks do).
std::vector<std::string> class_prompts(const std::string& class_name, const std::vector<std::string>& templates);

// (C, E) prompt-ensembled class embeddings: class_embeddings (measures.h) of the prompts' features.
Tensor zero_shot_classifier(const CLIP& model, const Tokenizer& tok, const std::vector<std::string>& class_names,
                            const std::vector<std::string>& templates, int64_t batch_size = 64);

// Templates: a file with one per non-empty line, each containing "{}" ('#' starts a comment
// line); the generic set for image folders (OpenAI-style "a photo of a {}."); Fashion-MNIST's
// are fashion_mnist_templates() (data/fashion_mnist.h), the synthetic tasks carry their own.
std::vector<std::string> read_templates_file(const std::string& path);
const std::vector<std::string>& generic_templates();

// An evenly spread subset: min(limit, n) indices floor(k * n / m), k < m (all of them for limit 0).
std::vector<int64_t> spread_indices(int64_t n, int64_t limit);

// ---- output ----

// A table: one row per group of metrics sharing a name up to the last '/', "name value" pairs
// after it (integers without decimals, others with 4), long rows wrapped.
std::string format_eval_table(const EvalMetrics& metrics);
// {"name": value, ...} in order.
Json eval_metrics_json(const EvalMetrics& metrics);

}  // namespace rankclip
