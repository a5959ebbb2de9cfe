// tests/test_train_parity.cpp
// tests: ten training steps against PyTorch — rankclip::train_step (train/train_step.h: features,
// loss, backward, clip_grad_norm, the two-group AdamW, the logit_scale clamp) driven by
// learning_rate_at (train/schedule.h), against the same steps with torch.optim.AdamW on the
// PyTorch mirror, through tests/ref/train_parity_reference.safetensors (tools/gen_train_refs.py
// documents the recipe, the batches and the layout). Tiny model (vocab 1000), batch 16, losses
// clip and rankclip (constant w = 1, tie-break generator seeded as torch's). Checked, per step:
// the learning rate, the loss and its parts, the gradient norm before clipping, and every
// parameter's sum, sum of |x|, L2 norm and max |x|; after the last step, up to 64 stored elements
// of every parameter. The tolerances and their reasons are below. With TRAIN_PARITY_DUMP=<prefix>
// set, the full final weights go to <prefix>.cpp_<run>.safetensors (the generator writes torch's
// with the same variable), for comparing a failure element by element.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/json.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "models/clip.h"
#include "reference_file.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/train_step.h"

using namespace rankclip;
using rankclip::test::load_reference;
using rankclip::test::ReferenceFile;

namespace {

// Tolerances. Both sides compute in fp32 and differ only in summation order (matmul blocking,
// reductions, thread count). Given the same weights, one step's gradients agree to ~5e-6 of each
// tensor's largest (measured by loading torch's weights at each step), and the loss to ~1e-7.
// Run freely for ten steps, the weights drift apart further because AdamW divides by
// sqrt(v_hat) + eps: an element whose gradient is small next to eps (or to its tensor's rounding
// error) turns a rounding difference into an update difference of a sizeable fraction of lr,
// and the model carries it on. The worst such elements are left out by the generator; the rest
// drift by about 1e-4 of the distance U = lr_0 + ... + lr_t that AdamW can move an element by
// step t (a few ulps of a LayerNorm weight near 1; ~3e-7 on a zero-initialised bias).
// Measured over both runs (1 thread; 2 threads alike): loss 1.4e-6, grad norm 6.7e-6, elements
// at most 0.32 of their bound, statistics 0.28 of theirs.
//   loss and its parts            |a - b| <= 1e-5 |b|
//   gradient norm before clipping |a - b| <= 3e-5 |b| (it follows the drifting weights)
//   an element                    |a - b| <= 1e-5 max|x| + 3e-4 U      (max|x| of its parameter)
//   sum, sum |x|, L2 norm         |a - b| <= 1e-5 ref + 3e-4 U sqrt(n) (ref = sum |x| for the sum;
//                                 n elements with independent drifts); max |x| as an element
// For a weight the first term dominates (its values agree to 1e-5 of its largest); for a
// zero-initialised bias, whose value is only its accumulated updates (~U), the second does.
constexpr double kLossTol = 1e-5;
constexpr double kGradNormTol = 3e-5;
constexpr double kValueTol = 1e-5;
constexpr double kUpdateTol = 3e-4;

// tests/ref/train_parity_reference.safetensors (committed; missing, it is a failure naming its
// generator), with the reads this suite makes of it: tensors as vectors, metadata as numbers.
struct Reference {
    const ReferenceFile& file;

    bool has(const std::string& name) const { return file.has(name); }
    const Tensor& get(const std::string& name) const { return file.get(name); }
    std::vector<double> values(const std::string& name) const { return get(name).to_vector<double>(); }
    std::vector<int64_t> indices(const std::string& name) const { return get(name).to_vector<int64_t>(); }
    int64_t integer(const std::string& key) const { return file.meta(key).as_int(); }
    double number(const std::string& key) const { return file.meta(key).as_double(); }
};

Reference reference() {
    return Reference{load_reference("tests/ref/train_parity_reference.safetensors", "tools/gen_train_refs.py")};
}

// Sequential float64 [sum, sum of squares, first, last] over the tensors in order, as np.cumsum.
std::vector<double> checksum(const std::vector<Tensor>& ts) {
    double s = 0, s2 = 0;
    std::vector<float> first = ts.front().to_vector<float>(), last = ts.back().to_vector<float>();
    for (const Tensor& t : ts)
        for (float x : t.to_vector<float>()) {
            s += double(x);
            s2 += double(x) * double(x);
        }
    return {s, s2, double(first.front()), double(last.back())};
}

void expect_same_checksum(const std::vector<double>& have, const std::vector<double>& want, const char* what) {
    EXPECT_EQ(std::memcmp(have.data(), want.data(), 4 * sizeof(double)), 0)
        << what << " differ from torch's: sum " << have[0] << " vs " << want[0] << ", sum of squares " << have[1]
        << " vs " << want[1];
}

// The batch of each step: images = the chosen pool batch's noise + its offsets, text as stored.
struct Batches {
    std::vector<Tensor> images;  // STEPS x (B, 3, S, S)
    std::vector<Tensor> text;    // STEPS x (B, L) I64
};

Batches load_batches(const Reference& ref, const CLIPConfig& config, int64_t steps) {
    const Tensor& offsets = ref.get("images.offsets");  // (STEPS, B, 3, 1, 1)
    Generator gen(uint64_t(ref.integer("data_seed")));
    int64_t S = config.image_size;
    Tensor noise = randn({ref.integer("pool"), offsets.size(1), 3, S, S}, gen);  // (POOL, B, 3, S, S)
    expect_same_checksum(checksum({noise}), ref.values("images.noise_checksum"),
                         "the noise images drawn from Generator(data_seed)");
    Batches b;
    std::vector<int64_t> index = ref.indices("batch_index");
    for (int64_t s = 0; s < steps; s++) {
        b.images.push_back((noise.select(0, index[s]) + offsets.select(0, s)).contiguous());
        b.text.push_back(ref.get("text").select(0, s).contiguous());
    }
    expect_same_checksum(checksum(b.images), ref.values("images.checksum"), "the images (noise + offsets)");
    return b;
}

// [sum, sum |x|, L2 norm, max |x|] in float64 over the elements not in `excluded` (sorted).
std::vector<double> stats(const std::vector<float>& v, const std::vector<int64_t>& excluded) {
    double s = 0, a = 0, s2 = 0, m = 0;
    size_t e = 0;
    for (size_t i = 0; i < v.size(); i++) {
        if (e < excluded.size() && excluded[e] == int64_t(i)) {
            e++;
            continue;
        }
        double x = v[i];
        s += x, a += std::abs(x), s2 += x * x, m = std::max(m, std::abs(x));
    }
    return {s, a, std::sqrt(s2), m};
}

double rel(double a, double b) { return std::abs(a - b) / std::abs(b); }

// One kernel thread while a run lasts, restored after. The kernels split work by thread count, so
// this makes the run's rounding, and so the measured margins, the same on every machine; and a
// one-threaded run takes ~3 s where two threads on a busy 2-core box spin for a minute.
// (With two threads the runs also pass: worst 0.32 of a bound.)
struct OneThread {
    int before = get_num_threads();
    OneThread() { set_num_threads(1); }
    ~OneThread() { set_num_threads(before); }
};

void check_run(const std::string& run, LossKind kind, const std::vector<std::string>& part_names) {
    OneThread one_thread;
    const Reference ref = reference();
    CLIPConfig config = CLIPConfig::from_json(ref.file.meta("config"));
    const int64_t steps = ref.integer("steps");
    Batches batches = load_batches(ref, config, steps);

    Generator gen(uint64_t(ref.integer("seed")));
    CLIP model(config, gen);
    AdamWOptions adam;
    adam.weight_decay = ref.number("weight_decay");
    AdamW optimizer(model.named_parameters(), adam);
    StepOptions options;
    options.grad_clip = ref.number("grad_clip");
    options.loss.kind = kind;
    options.loss.rank_schedule = RankWeightSchedule::Constant;
    options.loss.rank_weight = ref.number("rank_weight");
    LrScheduleOptions schedule{LrSchedule::Cosine, ref.number("base_lr"), ref.integer("warmup"), steps};
    Generator loss_gen(uint64_t(ref.integer("loss_seed")));

    // names: exactly the mirror's
    Json order = ref.file.meta("param_order");
    std::set<std::string> torch_names, our_names;
    for (size_t i = 0; i < order.size(); i++) torch_names.insert(order.at(i).as_string());
    for (auto& [name, p] : model.named_parameters()) our_names.insert(name);
    ASSERT_EQ(our_names, torch_names);
    std::map<std::string, std::vector<int64_t>> excluded;
    for (const std::string& name : our_names)
        if (ref.has("excluded." + name)) excluded[name] = ref.indices("excluded." + name);

    std::vector<double> want_lr = ref.values("lr"), want_loss = ref.values(run + ".loss");
    double U = 0;  // the sum of the learning rates so far
    std::vector<double> want_norm = ref.values(run + ".grad_norm");
    double worst_loss = 0, worst_norm = 0, worst_stat = 0;
    std::string worst_stat_what;
    auto start = std::chrono::steady_clock::now();
    for (int64_t step = 0; step < steps; step++) {
        double lr = learning_rate_at(schedule, step);
        U += lr;
        EXPECT_LE(rel(lr, want_lr[step]), 1e-14) << "step " << step << ": lr " << lr << " vs " << want_lr[step];
        StepStats s = train_step(model, optimizer, batches.images[step], batches.text[step], options, lr,
                                 options.loss.rank_weight, loss_gen, step);

        double e = rel(s.loss, want_loss[step]);
        worst_loss = std::max(worst_loss, e);
        EXPECT_LE(e, kLossTol) << run << " step " << step << ": loss " << s.loss << " vs torch " << want_loss[step];
        ASSERT_EQ(s.parts.size(), part_names.size()) << run;
        for (size_t k = 0; k < part_names.size(); k++) {
            EXPECT_EQ(s.parts[k].first, part_names[k]);
            double want = ref.values(run + ".part." + part_names[k])[step];
            e = rel(s.parts[k].second, want);
            worst_loss = std::max(worst_loss, e);
            EXPECT_LE(e, kLossTol) << run << " step " << step << ": loss part " << part_names[k] << " "
                                   << s.parts[k].second << " vs torch " << want;
        }
        e = rel(s.grad_norm, want_norm[step]);
        worst_norm = std::max(worst_norm, e);
        EXPECT_LE(e, kGradNormTol) << run << " step " << step << ": gradient norm " << s.grad_norm << " vs torch "
                                   << want_norm[step];

        // every parameter's statistics after this step, as a fraction of the tolerance; the worst is reported
        double step_worst = 0;
        std::string step_what;
        for (auto& [name, p] : model.named_parameters()) {
            const std::vector<int64_t>& skip = excluded[name];
            std::vector<double> have = stats(p.to_vector<float>(), skip);
            std::vector<double> want = ref.values(run + ".stats." + name);
            const double* w = want.data() + 4 * step;
            double n = double(p.numel() - int64_t(skip.size()));
            double bound[4] = {kValueTol * w[1] + kUpdateTol * U * std::sqrt(n),
                               kValueTol * w[1] + kUpdateTol * U * std::sqrt(n),
                               kValueTol * w[2] + kUpdateTol * U * std::sqrt(n), kValueTol * w[3] + kUpdateTol * U};
            const char* what[4] = {"sum", "sum |x|", "norm", "max |x|"};
            for (int k = 0; k < 4; k++) {
                double r = std::abs(have[k] - w[k]) / bound[k];
                if (r > step_worst) {
                    step_worst = r;
                    char buf[256];
                    std::snprintf(buf, sizeof buf, "%s %s %.9g vs torch %.9g", name.c_str(), what[k], have[k], w[k]);
                    step_what = buf;
                }
            }
        }
        EXPECT_LE(step_worst, 1.0) << run << " step " << step << ": parameter statistics differ, worst: " << step_what
                                   << " (" << step_worst << " x the tolerance)";
        if (step_worst > worst_stat) worst_stat = step_worst, worst_stat_what = step_what;
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    if (const char* dump = std::getenv("TRAIN_PARITY_DUMP"))  // full final weights, for diagnosing a failure
        save_safetensors(std::string(dump) + ".cpp_" + run + ".safetensors", model.named_parameters());

    // the sampled elements after the last step, as a fraction of the tolerance
    double worst_sample = 0;
    std::string worst_sample_name;
    for (auto& [name, p] : model.named_parameters()) {
        std::vector<float> have = p.to_vector<float>();
        std::vector<int64_t> index = ref.indices("sample." + name);
        std::vector<double> want = ref.values(run + ".final." + name);
        ASSERT_EQ(index.size(), want.size()) << name;
        double max_abs = ref.values(run + ".stats." + name)[4 * (steps - 1) + 3];
        double bound = kValueTol * max_abs + kUpdateTol * U;
        for (size_t i = 0; i < index.size(); i++) {
            ASSERT_TRUE(index[i] >= 0 && index[i] < int64_t(have.size())) << name << ": bad index " << index[i];
            float h = have[size_t(index[i])];
            double r = std::abs(double(h) - want[i]) / bound;
            EXPECT_LE(r, 1.0) << run << ": final " << name << "[" << index[i] << "] = " << h << " vs torch " << want[i]
                              << " (max |x| " << max_abs << ", tolerance " << bound << ")";
            if (r > worst_sample) worst_sample = r, worst_sample_name = name;
        }
    }
    std::printf("[ train parity %s ] %lld steps in %.1f s; max relative error: loss %.2e, grad norm %.2e; "
                "worst fraction of the tolerance: parameter stats %.2f (%s), final samples %.2f (%s)\n",
                run.c_str(), (long long)steps, seconds, worst_loss, worst_norm, worst_stat, worst_stat_what.c_str(),
                worst_sample, worst_sample_name.c_str());
}

TEST(TrainParity, ClipTenStepsMatchTorchAdamW) { check_run("clip", LossKind::Clip, {"contrastive"}); }

TEST(TrainParity, RankCLIPTenStepsMatchTorchAdamW) {
    check_run("rankclip", LossKind::RankCLIP, {"contrastive", "rank_cross", "rank_in"});
}

}  // namespace
