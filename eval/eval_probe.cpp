// eval/eval_probe.cpp
// defines: the linear probe of the Evaluator: plan_probe (a spec -> training and test splits)
// and run_probe (frozen image features of both -> linear_probe, eval/linear_probe.cpp).
// Splits: synthetic trains on its train split and tests on val; Fashion-MNIST train -> test;
// a class-folder DIR uses DIR/train and DIR/test when both exist, and otherwise (like any other
// labelled source) holds out every 5th sample (index % 5 == 4), which keeps every class of a
// class-sorted folder in both splits.
#include <filesystem>

#include "eval/eval_impl.h"

namespace rankclip {

void Evaluator::Impl::plan_probe(const std::string& spec) {
    Job job{Job::Probe, "", {}, {}};
    std::string name;
    if (spec.rfind("synthetic", 0) == 0) {
        Source* train = open_source(spec, Role::ProbeTrain);
        RC_CHECK(train->synthetic && train->synthetic->split() == SyntheticSplit::Train, "--probe ", spec,
                 ": the synthetic probe trains on the train split and tests on val: give synthetic[:train][:N]");
        Source* test = open_source("synthetic", Role::ProbeTest);
        job.data = images_of(train, spread_indices(int64_t(train->data->size()), 0));
        job.test = images_of(test, spread_indices(int64_t(test->data->size()), 0));
        name = "synthetic";
    } else if (spec.rfind("fashion-mnist", 0) == 0) {
        RC_CHECK(spec == "fashion-mnist", "--probe ", spec,
                 ": the Fashion-MNIST probe is 'fashion-mnist' (train -> test)");
        Source* train = open_source("fashion-mnist:train", Role::ProbeTrain);
        Source* test = open_source("fashion-mnist:test", Role::ProbeTest);
        job.data = images_of(train, spread_indices(int64_t(train->data->size()), 0));
        job.test = images_of(test, spread_indices(int64_t(test->data->size()), 0));
        name = "fashion-mnist";
    } else {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (fs::is_directory(fs::path(spec) / "train", ec) && fs::is_directory(fs::path(spec) / "test", ec)) {
            Source* train = open_path((fs::path(spec) / "train").string());
            Source* test = open_path((fs::path(spec) / "test").string());
            job.data = images_of(train, spread_indices(int64_t(train->data->size()), 0));
            job.test = images_of(test, spread_indices(int64_t(test->data->size()), 0));
        } else {
            Source* source = open_path(spec);
            std::vector<int64_t> train_rows, test_rows;
            for (int64_t i = 0; i < int64_t(source->data->size()); i++)
                (i % 5 == 4 ? test_rows : train_rows).push_back(i);
            RC_CHECK(!test_rows.empty(), "--probe ", spec, ": too few samples to hold out a test split (",
                     source->data->describe(), ")");
            job.data = images_of(source, train_rows);
            job.test = images_of(source, test_rows);
        }
        name = path_display_name(spec);
    }
    RC_CHECK(!job.data.source->data->class_names().empty(), "--probe ", spec,
             ": the linear probe needs labelled data with class names (", job.data.source->data->describe(), ")");
    job.name = unique_name(job.kind, name);
    jobs.push_back(std::move(job));
}

void Evaluator::Impl::run_probe(const Job& job, EvalMetrics& out) {
    const EmbeddedImages& train = images(job.data);
    const EmbeddedImages& test = images(job.test);
    const int64_t classes = int64_t(job.data.source->data->class_names().size());
    const LinearProbeResult r =
        linear_probe(train.features, train.labels, test.features, test.labels, classes, cfg.probe_options);
    const std::string prefix = "probe/" + job.name;
    add_metric(out, prefix, "top1", r.test_top1);
    add_metric(out, prefix, "train_top1", r.train_top1);
    add_metric(out, prefix, "val_top1", r.val_top1);
    add_metric(out, prefix, "l2", r.l2);
    add_metric(out, prefix, "train_n", double(r.train_n));
    add_metric(out, prefix, "test_n", double(r.test_n));
}

}  // namespace rankclip
