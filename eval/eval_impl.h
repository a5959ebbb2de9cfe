// eval/eval_impl.h
// defines: Evaluator::Impl, the evaluation plan shared by eval/eval.cpp (planning, running,
// output), eval/zero_shot.cpp, eval/retrieval_eval.cpp (retrieval and ranking consistency)
// and eval/eval_probe.cpp (linear probe). Internal to eval/; users include eval/eval.h.
//
// At construction every spec is resolved to opened datasets and the exact images (and, for
// paired data, captions) each evaluation will use, so a bad spec fails before any model work
// and a trainer pays for opening datasets once. A run then encodes through two per-run caches:
// image features by (dataset, indices) and text features by string, so the synthetic val split
// that zero-shot, retrieval, consistency and the probe's test all use is encoded once, and the
// many repeated captions and prompts of a grammar are encoded once each.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/synthetic.h"
#include "eval/eval.h"

namespace rankclip {

struct Evaluator::Impl {
    // An opened dataset, shared by every evaluation that names it.
    struct Source {
        std::string key;                               // canonical spec, e.g. "synthetic:val:1000"
        std::string name;                              // for metric names, e.g. "synthetic-heldout"
        std::shared_ptr<Dataset> data;
        const SyntheticDataset* synthetic = nullptr;   // when it is the synthetic set
    };
    // Images of one source, and for paired data their captions (caption_image[c] = the position,
    // in `images`, of caption c's image). captions_from_samples: the captions are the samples'
    // own, known only once the images are decoded (one per image).
    struct Selection {
        Source* source = nullptr;
        std::vector<int64_t> images;                   // dataset indices
        std::vector<std::string> captions;
        std::vector<int64_t> caption_image;
        bool captions_from_samples = false;
    };
    struct Job {
        enum Kind { ZeroShot, Retrieval, Consistency, Probe } kind;
        std::string name;                              // the dataset's name in the metric names
        Selection data;                                // probe: the training split
        Selection test;                                // probe: the test split
    };

    Impl(const EvalConfig& cfg, const Tokenizer& tok);

    // ---- planning (eval/eval.cpp) ----
    enum class Role { Eval, ProbeTrain, ProbeTest };
    Source* open_source(const std::string& spec, Role role);
    Source* open_path(const std::string& path);   // a non-synthetic, non-Fashion-MNIST spec as is
    std::string unique_name(Job::Kind kind, const std::string& base);
    Selection images_of(Source* source, std::vector<int64_t> candidates) const;   // + limit
    Selection paired_selection(Source* source, int captions_per_image) const;     // retrieval_eval.cpp
    void plan_probe(const std::string& spec);                                      // eval_probe.cpp

    // ---- running ----
    const EmbeddedImages& images(const Selection& s);                  // cached per run
    Tensor texts(const std::vector<std::string>& texts);                // cached per run
    void run_zero_shot(const Job& job, EvalMetrics& out);               // zero_shot.cpp
    void run_retrieval(const Job& job, EvalMetrics& out);               // retrieval_eval.cpp
    void run_consistency(const Job& job, EvalMetrics& out);             // retrieval_eval.cpp
    void run_probe(const Job& job, EvalMetrics& out);                   // eval_probe.cpp
    // The captions of a paired selection (its own, or the decoded samples').
    std::vector<std::string> captions_of(const Selection& s);

    EvalConfig cfg;
    const Tokenizer& tok;
    std::vector<std::string> templates;   // from cfg.templates_file; empty: built-in sets
    std::map<std::string, std::unique_ptr<Source>> sources;
    std::vector<Job> jobs;
    std::map<int, std::vector<std::string>> used_names;

    // Per run.
    const CLIP* model = nullptr;
    struct CachedImages {
        Source* source;
        std::vector<int64_t> indices;
        EmbeddedImages embedded;
    };
    std::vector<std::unique_ptr<CachedImages>> image_cache;   // stable addresses
    std::unordered_map<std::string, int64_t> text_row;   // text -> row of text_features
    std::vector<float> text_features;                    // (rows, E)
    int64_t embed_dim = 0;
};

// "name value" pairs into a metric list, names prefixed.
void add_metric(EvalMetrics& out, const std::string& prefix, const std::string& name, double value);
// A metric name part without spaces ("ankle boot" -> "ankle_boot").
std::string metric_name_part(const std::string& s);
// A path's name in metric names: its base name without extension, odd characters as '_'.
std::string path_display_name(const std::string& path);

}  // namespace rankclip
