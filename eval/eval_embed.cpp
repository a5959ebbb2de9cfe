// eval/eval_embed.cpp
// defines: the embedding helpers of eval/eval.h — embed_images (a dataset's images through
// CLIP's evaluation preprocessing and the image tower), embed_texts, class_prompts,
// zero_shot_classifier — and the prompt templates (file, generic set) and spread_indices.
#include <algorithm>
#include <exception>
#include <fstream>

#include "data/image.h"
#include "data/synthetic.h"
#include "engine/ops.h"
#include "eval/eval.h"

namespace rankclip {

namespace {

// Puts the model in eval mode for the scope and restores its mode after. CLIP has no dropout
// today, so this changes nothing yet; it keeps evaluation correct if a layer ever depends on it.
// The model is taken const (evaluation reads it) and the flag is the one thing touched.
class EvalModeGuard {
public:
    explicit EvalModeGuard(const CLIP& model) : model_(const_cast<CLIP&>(model)), was_training_(model.is_training()) {
        model_.eval();
    }
    ~EvalModeGuard() { model_.train(was_training_); }
    EvalModeGuard(const EvalModeGuard&) = delete;
    EvalModeGuard& operator=(const EvalModeGuard&) = delete;

private:
    CLIP& model_;
    bool was_training_;
};

}  // namespace

EmbeddedImages embed_images(const CLIP& model, const Dataset& data, const std::vector<int64_t>& indices,
                            int64_t batch_size) {
    RC_CHECK(batch_size >= 1, "embed_images: batch size must be >= 1, got ", batch_size);
    RC_CHECK(!indices.empty(), "embed_images: no images to embed (", data.describe(), ")");
    for (int64_t i : indices)
        RC_CHECK(i >= 0 && size_t(i) < data.size(), "embed_images: index ", i, " outside the dataset (",
                 data.describe(), ")");
    const int64_t S = model.config().image_size, N = int64_t(indices.size());
    const Device device = model.device();
    EvalModeGuard eval_mode(model);
    NoGradGuard no_grad;
    EmbeddedImages out;
    out.labels.resize(size_t(N));
    out.captions.resize(size_t(N));
    std::vector<Tensor> parts;
    for (int64_t start = 0; start < N; start += batch_size) {
        const int64_t n = std::min(batch_size, N - start);
        Tensor batch = empty({n, 3, S, S});   // (n, 3, S, S)
        float* pixels = batch.data<float>();
        std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic)
        for (int64_t k = 0; k < n; k++) {
            try {
                Sample sample = data.get(size_t(indices[size_t(start + k)]));
                preprocess_clip(sample.image, int(S), pixels + k * 3 * S * S);
                out.labels[size_t(start + k)] = sample.label;
                out.captions[size_t(start + k)] = std::move(sample.caption);
            } catch (...) {
                errors[size_t(k)] = std::current_exception();
            }
        }
        for (const auto& e : errors)
            if (e) std::rethrow_exception(e);
        parts.push_back(l2_normalize(model.encode_image(batch.to(device)), -1).to(Device::cpu()).to(DType::F32));
    }
    out.features = parts.size() == 1 ? parts[0] : cat(parts, 0);   // (N, E)
    return out;
}

Tensor embed_texts(const CLIP& model, const Tokenizer& tok, const std::vector<std::string>& texts, int64_t batch_size) {
    RC_CHECK(batch_size >= 1, "embed_texts: batch size must be >= 1, got ", batch_size);
    RC_CHECK(!texts.empty(), "embed_texts: no texts to embed");
    const CLIPConfig& c = model.config();
    RC_CHECK(tok.vocab_size() > 0, "embed_texts: the tokenizer is empty (no vocabulary loaded)");
    RC_CHECK(tok.vocab_size() <= c.vocab_size, "embed_texts: the tokenizer has ", tok.vocab_size(),
             " tokens, more than the model's vocab_size ", c.vocab_size, " (a different vocabulary than the model's?)");
    const int64_t N = int64_t(texts.size()), T = c.context_length;
    const Device device = model.device();
    EvalModeGuard eval_mode(model);
    NoGradGuard no_grad;
    std::vector<Tensor> parts;
    for (int64_t start = 0; start < N; start += batch_size) {
        const int64_t n = std::min(batch_size, N - start);
        std::vector<int64_t> ids;
        ids.reserve(size_t(n * T));
        for (int64_t k = 0; k < n; k++) {
            std::vector<int64_t> t = tok.tokenize(texts[size_t(start + k)], int(T));
            ids.insert(ids.end(), t.begin(), t.end());
        }
        Tensor batch = from_vector(ids, {n, T}, DType::I64, device);   // (n, T)
        parts.push_back(l2_normalize(model.encode_text(batch), -1).to(Device::cpu()).to(DType::F32));
    }
    return parts.size() == 1 ? parts[0] : cat(parts, 0);   // (N, E)
}

std::vector<std::string> class_prompts(const std::string& class_name, const std::vector<std::string>& templates) {
    ZeroShotTask task;   // its prompts() fills "{}" and fixes "a" before a vowel
    task.name = "prompts";
    task.class_names = {class_name};
    task.templates = templates;
    return task.prompts(0);
}

Tensor zero_shot_classifier(const CLIP& model, const Tokenizer& tok, const std::vector<std::string>& class_names,
                            const std::vector<std::string>& templates, int64_t batch_size) {
    RC_CHECK(!class_names.empty() && !templates.empty(), "zero_shot_classifier: needs classes and templates (got ",
             class_names.size(), " and ", templates.size(), ")");
    std::vector<std::string> prompts;
    for (const std::string& name : class_names)
        for (std::string& p : class_prompts(name, templates)) prompts.push_back(std::move(p));
    Tensor features = embed_texts(model, tok, prompts, batch_size);   // (C * K, E)
    const int64_t C = int64_t(class_names.size()), K = int64_t(templates.size());
    return class_embeddings(features.reshape({C, K, features.size(1)}));
}

std::vector<std::string> read_templates_file(const std::string& path) {
    std::ifstream in(path);
    RC_CHECK(in.good(), "--templates ", path, ": cannot open the file");
    std::vector<std::string> templates;
    std::string line;
    for (int64_t lineno = 1; std::getline(in, line); lineno++) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const size_t first = line.find_first_not_of(" \t");
        if (first == std::string::npos || line[first] == '#') continue;
        RC_CHECK(line.find("{}") != std::string::npos, path, " line ", lineno, ": template '", line,
                 "' has no {} for the class name");
        templates.push_back(line);
    }
    RC_CHECK(!templates.empty(), path, ": no templates (one per line, each with {} for the class name)");
    return templates;
}

const std::vector<std::string>& generic_templates() {
    // A handful of OpenAI's ImageNet prompt templates (CLIP's notebooks/Prompt_Engineering).
    static const std::vector<std::string> t = {
        "a photo of a {}.",          "a blurry photo of a {}.",       "a photo of the {}.",
        "a close-up photo of a {}.", "a bright photo of a {}.",       "a cropped photo of the {}.",
        "a good photo of the {}.",   "a low resolution photo of a {}.", "a photo of a small {}.",
        "a photo of a large {}.",
    };
    return t;
}

std::vector<int64_t> spread_indices(int64_t n, int64_t limit) {
    RC_CHECK(n >= 0 && limit >= 0, "spread_indices: needs n >= 0 and limit >= 0, got ", n, " and ", limit);
    const int64_t m = limit > 0 ? std::min(limit, n) : n;
    std::vector<int64_t> out(static_cast<size_t>(m));
    for (int64_t k = 0; k < m; k++) out[size_t(k)] = k * n / m;
    return out;
}

}  // namespace rankclip
