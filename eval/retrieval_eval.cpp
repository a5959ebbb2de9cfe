// eval/retrieval_eval.cpp
// defines: the paired-data evaluations of the Evaluator: paired_selection (which images and
// captions a dataset contributes), run_retrieval (image<->text Recall@1/5/10, mean and median
// rank, several captions per image) and run_consistency (Kendall tau-b / Spearman agreement of
// the in-modal and cross-modal rankings, one caption per image).
//
// What counts as one image: the synthetic set's index (its captions(i, K) are K paraphrases of
// image i); a CSV's image path (COCO-style files repeat the path once per caption); a packed
// shard's pixels (packing such a CSV repeats identical pixels); for other sources (tar shards,
// image folders) every sample is its own image with its own caption.
#include <cstring>
#include <functional>
#include <unordered_map>

#include "data/csv_dataset.h"
#include "data/packed.h"
#include "engine/ops.h"
#include "eval/eval_impl.h"

namespace rankclip {

namespace {

// FNV-1a over bytes: a fingerprint to group identical images quickly (equality is then checked).
uint64_t fingerprint(const uint8_t* p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t k = 0; k < n; k++) h = (h ^ p[k]) * 1099511628211ull;
    return h;
}

// Rows grouped by a key, groups in order of first appearance.
template <typename SameImage>
std::vector<std::vector<int64_t>> group_rows(size_t n, SameImage&& same) {
    std::vector<std::vector<int64_t>> groups;
    for (size_t i = 0; i < n; i++) {
        int64_t g = same(int64_t(i), groups);
        if (g < 0) groups.push_back({int64_t(i)});
        else groups[size_t(g)].push_back(int64_t(i));
    }
    return groups;
}

}  // namespace

Evaluator::Impl::Selection Evaluator::Impl::paired_selection(Source* source, int captions_per_image) const {
    Selection s;
    s.source = source;
    const Dataset& data = *source->data;
    const bool all_captions = captions_per_image > 1;

    if (source->synthetic) {
        s.images = spread_indices(int64_t(data.size()), cfg.limit);
        for (size_t k = 0; k < s.images.size(); k++)
            for (std::string& c : source->synthetic->captions(size_t(s.images[k]), captions_per_image)) {
                s.captions.push_back(std::move(c));
                s.caption_image.push_back(int64_t(k));
            }
        return s;
    }

    std::vector<std::vector<int64_t>> groups;   // rows of each distinct image
    std::function<std::string(int64_t)> caption;
    if (const auto* csv = dynamic_cast<const CsvDataset*>(&data)) {
        std::unordered_map<std::string, int64_t> group_of;
        groups = group_rows(data.size(), [&](int64_t i, const auto& gs) {
            auto [it, fresh] = group_of.emplace(csv->image_path(size_t(i)), int64_t(gs.size()));
            return fresh ? int64_t(-1) : it->second;
        });
        caption = [csv](int64_t i) { return csv->caption(size_t(i)); };
    } else if (const auto* packed = dynamic_cast<const PackedDataset*>(&data)) {
        const size_t bytes = size_t(packed->image_size()) * size_t(packed->image_size()) * 3;
        std::unordered_multimap<uint64_t, int64_t> group_of;   // fingerprint -> group
        groups = group_rows(data.size(), [&](int64_t i, const auto& gs) {
            const uint8_t* pixels = packed->pixels(size_t(i));
            const uint64_t h = fingerprint(pixels, bytes);
            auto range = group_of.equal_range(h);
            for (auto it = range.first; it != range.second; ++it) {
                const uint8_t* first = packed->pixels(size_t(gs[size_t(it->second)][0]));
                if (std::memcmp(first, pixels, bytes) == 0) return it->second;
            }
            group_of.emplace(h, int64_t(gs.size()));
            return int64_t(-1);
        });
        caption = [packed](int64_t i) { return packed->caption(size_t(i)); };
    } else {
        // Every sample is an image with its own caption, read when the images are decoded.
        s.images = spread_indices(int64_t(data.size()), cfg.limit);
        s.captions_from_samples = true;
        for (size_t k = 0; k < s.images.size(); k++) s.caption_image.push_back(int64_t(k));
        return s;
    }

    for (int64_t g : spread_indices(int64_t(groups.size()), cfg.limit)) {
        const std::vector<int64_t>& rows = groups[size_t(g)];
        const int64_t position = int64_t(s.images.size());
        s.images.push_back(rows[0]);
        for (size_t r = 0; r < (all_captions ? rows.size() : 1); r++) {
            std::string c = caption(rows[r]);
            RC_CHECK(!c.empty(), "eval: row ", rows[r], " of ", data.describe(), " has an empty caption");
            s.captions.push_back(std::move(c));
            s.caption_image.push_back(position);
        }
    }
    return s;
}

void Evaluator::Impl::run_retrieval(const Job& job, EvalMetrics& out) {
    const EmbeddedImages& embedded = images(job.data);
    const Tensor text = texts(captions_of(job.data));   // (N_txt, E)
    Tensor similarity;
    {
        NoGradGuard no_grad;
        similarity = matmul(embedded.features.to(DType::F64), text.to(DType::F64).t());   // (N_img, N_txt)
    }
    const RetrievalResult r = retrieval_metrics(similarity, job.data.caption_image, {1, 5, 10});
    const std::string prefix = "retrieval/" + job.name;
    add_metric(out, prefix, "images", double(r.images));
    add_metric(out, prefix, "captions", double(r.captions));
    for (const auto& [direction, d] : {std::pair<const char*, const RetrievalDirection*>{"i2t", &r.image_to_text},
                                       std::pair<const char*, const RetrievalDirection*>{"t2i", &r.text_to_image}}) {
        const std::string p = prefix + "/" + direction;
        for (size_t k = 0; k < d->ks.size(); k++) add_metric(out, p, str_cat("R@", d->ks[k]), d->recall[k]);
        add_metric(out, p, "mean_rank", d->mean_rank);
        add_metric(out, p, "median_rank", d->median_rank);
    }
}

void Evaluator::Impl::run_consistency(const Job& job, EvalMetrics& out) {
    const EmbeddedImages& embedded = images(job.data);
    const Tensor text = texts(captions_of(job.data));   // (n, E), caption k describes image k
    const ConsistencyResult r = ranking_consistency(embedded.features, text);
    const std::string prefix = "consistency/" + job.name;
    add_metric(out, prefix, "kendall_in", r.kendall_in);
    add_metric(out, prefix, "spearman_in", r.spearman_in);
    add_metric(out, prefix, "kendall_cross", r.kendall_cross);
    add_metric(out, prefix, "spearman_cross", r.spearman_cross);
    add_metric(out, prefix, "pairs", double(r.anchors));
}

}  // namespace rankclip
