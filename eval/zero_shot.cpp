// eval/zero_shot.cpp
// defines: Evaluator::Impl::run_zero_shot, zero-shot classification of one dataset: class
// embeddings from prompt templates (the mean of the normalised prompt features, renormalised),
// scores = image features . class embeddings, then top-1/3/5 and per-class accuracy
// (eval/measures.h, ties to the lowest class index). The synthetic data is four tasks over the
// same images (shape, colour, count, relation; relation only scores two-object images); other
// datasets are one task over their class names.
#include "data/fashion_mnist.h"
#include "engine/ops.h"
#include "eval/eval_impl.h"

namespace rankclip {

// The metrics of one task under `prefix` ("zeroshot/<dataset>[-<task>]").
static void report(EvalMetrics& out, const std::string& prefix, const ClassificationResult& r,
                   const std::vector<std::string>& class_names) {
    add_metric(out, prefix, "top1", r.top(1));
    add_metric(out, prefix, "top3", r.top(3));
    add_metric(out, prefix, "top5", r.top(5));
    add_metric(out, prefix, "mean_per_class", r.mean_per_class_accuracy);
    add_metric(out, prefix, "n", double(r.n));
    for (size_t c = 0; c < class_names.size(); c++)   // classes without samples have no accuracy
        if (r.per_class_count[c] > 0)
            add_metric(out, prefix + "/class", metric_name_part(class_names[c]), r.per_class_accuracy[c]);
}

// (C, E) class embeddings from the prompts of each class (C lists of K prompts).
static Tensor classifier(Evaluator::Impl& impl, const std::vector<std::vector<std::string>>& prompts) {
    std::vector<std::string> flat;
    for (const auto& p : prompts) flat.insert(flat.end(), p.begin(), p.end());
    const Tensor features = impl.texts(flat);   // (C * K, E)
    const int64_t C = int64_t(prompts.size()), K = int64_t(prompts[0].size());
    return class_embeddings(features.reshape({C, K, features.size(1)}));
}

void Evaluator::Impl::run_zero_shot(const Job& job, EvalMetrics& out) {
    const EmbeddedImages& embedded = images(job.data);
    const Source& source = *job.data.source;
    const std::string prefix = "zeroshot/" + job.name;

    if (source.synthetic) {
        std::vector<SyntheticSampleInfo> infos;
        for (int64_t i : job.data.images) infos.push_back(source.synthetic->info(size_t(i)));
        for (ZeroShotTask task : synthetic_zero_shot_tasks()) {
            if (!templates.empty()) task.templates = templates;
            std::vector<int64_t> labels;
            bool any = false;
            for (const SyntheticSampleInfo& info : infos) {
                labels.push_back(task_label(task, info));
                any = any || labels.back() >= 0;
            }
            if (!any) continue;   // e.g. relation when every image has one object
            std::vector<std::vector<std::string>> prompts;
            for (size_t c = 0; c < task.class_names.size(); c++) prompts.push_back(task.prompts(c));
            const Tensor classes = classifier(*this, prompts);   // (C, E)
            const ClassificationResult r = zero_shot_classification(embedded.features, classes, labels);
            report(out, prefix + "-" + task.name, r, task.class_names);
        }
        return;
    }

    const std::vector<std::string> class_names = source.data->class_names();
    const std::vector<std::string>& set = !templates.empty() ? templates
                                          : source.key.rfind("fashion-mnist", 0) == 0 ? fashion_mnist_templates()
                                                                                      : generic_templates();
    std::vector<std::vector<std::string>> prompts;
    for (const std::string& name : class_names) {
        std::string readable = name;   // folder names often use '_' for spaces ("ankle_boot")
        for (char& ch : readable)
            if (ch == '_') ch = ' ';
        prompts.push_back(class_prompts(readable, set));
    }
    for (size_t i = 0; i < embedded.labels.size(); i++)
        RC_CHECK(embedded.labels[i] >= -1 && embedded.labels[i] < int64_t(class_names.size()), "zero-shot ", job.name,
                 ": sample ", job.data.images[i], " has label ", embedded.labels[i], " but the dataset has ",
                 class_names.size(), " classes");
    const Tensor classes = classifier(*this, prompts);   // (C, E)
    const ClassificationResult r = zero_shot_classification(embedded.features, classes, embedded.labels);
    report(out, prefix, r, class_names);
}

}  // namespace rankclip
