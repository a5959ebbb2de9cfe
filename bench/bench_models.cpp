// bench/bench_models.cpp
// defines: the model benchmark program (`make bench` runs it after bench_engine, then
// tools/bench_models_torch.py, its PyTorch twin on the mirror of the same model, with the same
// cases and method). For each config (default: tiny, small) it times
//   clip_<name>_fwd      forward of both towers, normalised features and logits, no autograd
//                        (inference), as CLIP::forward;
//   clip_<name>_fwd_bwd  forward with autograd, the CLIP loss
//                        (CE(logits, arange) + CE(logits^T, arange)) / 2, backward into every
//                        parameter's gradient (dropped before the next step: zero_grad);
//                        both at batch 64 (tiny) or 32 (small);
//   clip_<name>_train_<loss>[_bf16]  a full training step as the trainer runs it
//                        (train/train_step.h via bench/bench_train_step.h): features (bf16: the
//                        forward under AutocastGuard, fp32 master weights, as --precision bf16
//                        trains), the loss (clip, rankclip with a constant weight w = 1, ...),
//                        backward, global gradient norm, AdamW (the trainer's groups, lr 5e-4) and
//                        the logit_scale clamp, at batch 128 (tiny) or 64 (small); the losses are
//                        --losses (default clip,rankclip), the precisions --precisions (default
//                        fp32,bf16);
// and prints one JSON line per case:
//   {"impl":"rankclip","device":"cpu","case":"clip_tiny_fwd_bwd","shape":"64x3x32x32","batch":64,
//    "threads":2,"runs":...,"median_ms":...,"images_per_s":...}
// The train cases add "loss", "precision", "min_ms", "peak_rss_mb" (the process's peak resident
// set, VmHWM), "base_rss_mb" (resident before the model was built) and, on CUDA, "peak_cuda_mb"
// (the allocator's peak of bytes handed to tensors). Peak memory is per process, so when a run
// has more than one case, each training step runs in a child process of its own (this program
// again, for that case alone); the twin does the same. A batch is B images (B, 3, S, S) and B
// token sequences (B, context_length) of the full vocabulary (bench/bench_train_step.h).
//
// Method (shared with bench_engine.cpp and the twin): one untimed warm-up step, then timed steps
// until at least 10 steps and 0.3 s, or at least 3 steps and 1.5 s; the median is reported.
//
// Usage: bench_models [--threads N] [--quick] [--device cpu|cuda] [--configs tiny,small]
//                     [--batch N] [--losses clip,rankclip|none] [--precisions fp32,bf16]
//                     [--kinds fwd,fwd_bwd,train]
//   --quick  CI smoke: batch 8 and shorter timing.   --batch overrides every case's batch.
//   --kinds  which of the three kinds of case run (default all).
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_timing.h"
#include "bench/bench_train_step.h"
#include "engine/backend.h"
#include "engine/json.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "engine/strings.h"
#include "models/clip.h"
#ifdef RANKCLIP_CUDA
#include "cuda/allocator.h"
#endif

extern char** environ;

using namespace rankclip;
using namespace rankclip::bench;

namespace {

struct Options {
    int threads = 0;  // 0: all cores (or RANKCLIP_THREADS)
    bool quick = false;
    Device device = Device::cpu();
    std::vector<std::string> configs = {"tiny", "small"};
    int64_t batch = 0;  // 0: the case's default
    std::vector<std::string> losses = {"clip", "rankclip"};  // training-step cases
    std::vector<std::string> precisions = {"fp32", "bf16"};  // training-step cases
    std::vector<std::string> kinds = {"fwd", "fwd_bwd", "train"};
    bool runs(const std::string& kind) const { return std::find(kinds.begin(), kinds.end(), kind) != kinds.end(); }
};


int64_t default_batch(const std::string& config) { return config == "tiny" ? 64 : 32; }
// The training step runs at the batch the issue measures: tiny 128, small (and larger) 64.
int64_t default_train_batch(const std::string& config) { return config == "tiny" ? 128 : 64; }

// The symmetric CLIP loss over a (B, B) logits matrix whose diagonal holds the matching pairs.
Tensor clip_loss(const Tensor& logits_per_image) {
    int64_t B = logits_per_image.size(0);
    Tensor labels = arange(0, double(B), 1, DType::I64, logits_per_image.device());
    return (cross_entropy(logits_per_image, labels) + cross_entropy(logits_per_image.t(), labels)) * 0.5;
}

void bench_config(const Options& opt, const std::string& name) {
    const CLIPConfig config = clip_config(name);
    const int64_t B = opt.batch > 0 ? opt.batch : opt.quick ? 8 : default_batch(name);
    const int64_t S = config.image_size;
    Generator gen(1234);
    CLIP model(config, gen);
    model.to(opt.device);

    RandomBatch batch = random_batch(config, B, gen, opt.device);
    const Tensor& images = batch.images;  // (B, 3, S, S)
    const Tensor& text = batch.text;      // (B, L)

    auto report = [&](const std::string& kind, const Timing& t) {
        Json line = Json::object();
        line.set("impl", "rankclip");
        line.set("device", opt.device.str());
        line.set("case", "clip_" + name + "_" + kind);
        line.set("shape", str_cat(B, "x3x", S, "x", S));
        line.set("batch", B);
        line.set("threads", get_num_threads());
        line.set("runs", t.runs);
        line.set("median_ms", round4(t.median_ms));
        line.set("images_per_s", round4(B / (t.median_ms * 1e-3)));
        print_line(line);
    };

    if (opt.runs("fwd")) {
        report("fwd", time_median(opt.device, opt.quick, [&] {
                   NoGradGuard no_grad;
                   model.forward(images, text);
               }));
    }
    if (opt.runs("fwd_bwd")) {
        report("fwd_bwd", time_median(opt.device, opt.quick, [&] {
                   model.zero_grad();
                   CLIPOutput out = model.forward(images, text);
                   clip_loss(out.logits_per_image).backward();
               }));
    }
}

void bench_train_step(const Options& opt, const std::string& name, const std::string& loss,
                      const std::string& precision) {
    const CLIPConfig config = clip_config(name);
    const int64_t B = opt.batch > 0 ? opt.batch : opt.quick ? 8 : default_train_batch(name);
    const int64_t S = config.image_size;
    const double base_mb = proc_status_mb("VmRSS");
    TrainStepBenchOptions options;
    options.loss = parse_loss_kind(loss);
    options.batch = B;
    options.device = opt.device;
    options.bf16 = precision == "bf16";
    options.seed = 1234;
    TrainStepBench bench(config, options);
    Timing t = time_median(opt.device, opt.quick, [&] { bench.step(); });
    Json line = Json::object();
    line.set("impl", "rankclip");
    line.set("device", opt.device.str());
    line.set("case", "clip_" + name + "_train_" + loss + (options.bf16 ? "_bf16" : ""));
    line.set("shape", str_cat(B, "x3x", S, "x", S));
    line.set("batch", B);
    line.set("loss", loss);
    line.set("precision", precision);
    line.set("threads", get_num_threads());
    line.set("runs", t.runs);
    line.set("median_ms", round4(t.median_ms));
    line.set("min_ms", round4(t.min_ms));
    line.set("images_per_s", round4(B / (t.median_ms * 1e-3)));
    line.set("peak_rss_mb", round4(peak_rss_mb()));
    line.set("base_rss_mb", round4(base_mb));
#ifdef RANKCLIP_CUDA
    if (opt.device.is_cuda())
        line.set("peak_cuda_mb", round4(double(cuda_allocator(opt.device.index).stats().peak_bytes) / (1 << 20)));
#endif
    print_line(line);
}

// Runs this program again (/proc/self/exe) with our arguments and then `extra` (the later flags
// override the earlier ones), its output going to our stdout, so that one case's peak resident
// set is its own. True if it exited with status 0.
bool run_self(int argc, char** argv, const std::vector<std::string>& extra) {
    std::vector<std::string> args(argv, argv + argc);
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> cargs;
    for (std::string& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    std::fflush(stdout);
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, cargs.data(), environ) != 0) return false;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

Options parse_args(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            RC_CHECK(i + 1 < argc, "bench_models: ", arg, " needs a value");
            return argv[++i];
        };
        if (arg == "--threads") {
            opt.threads = std::atoi(value().c_str());
            RC_CHECK(opt.threads > 0, "bench_models: --threads needs a positive count");
        } else if (arg == "--quick") {
            opt.quick = true;
        } else if (arg == "--device") {
            std::string d = value();
            RC_CHECK(d == "cpu" || d == "cuda", "bench_models: --device is cpu or cuda, got '", d, "'");
            opt.device = d == "cpu" ? Device::cpu() : Device::cuda(0);
        } else if (arg == "--configs") {
            opt.configs = split_commas(value());
            for (const std::string& c : opt.configs) clip_config(c);  // an unknown name fails here
        } else if (arg == "--batch") {
            opt.batch = std::atoll(value().c_str());
            RC_CHECK(opt.batch > 0, "bench_models: --batch needs a positive count");
        } else if (arg == "--losses") {
            std::string v = value();
            opt.losses = v == "none" ? std::vector<std::string>{} : split_commas(v);
            for (const std::string& l : opt.losses) parse_loss_kind(l);  // an unknown name fails here
        } else if (arg == "--precisions") {
            opt.precisions = split_commas(value());
            for (const std::string& p : opt.precisions)
                RC_CHECK(p == "fp32" || p == "bf16", "--precisions takes fp32, bf16; got '", p, "'");
        } else if (arg == "--kinds") {
            opt.kinds = split_commas(value());
            for (const std::string& k : opt.kinds)
                RC_CHECK(k == "fwd" || k == "fwd_bwd" || k == "train", "--kinds takes fwd, fwd_bwd, train; got '",
                         k, "'");
        } else if (arg == "--help" || arg == "-h") {
            std::printf("usage: bench_models [--threads N] [--quick] [--device cpu|cuda] [--configs tiny,small] "
                        "[--batch N] [--losses clip,rankclip|none] [--precisions fp32,bf16] [--kinds fwd,fwd_bwd,train]\n");
            std::exit(0);
        } else {
            throw Error(str_cat("bench_models: unknown argument '", arg, "' (see --help)"));
        }
    }
    return opt;
}

}  // namespace

int main(int argc, char** argv) {
    use_short_openmp_spin(argv);  // our programs' OpenMP wait policy (engine/parallel.cpp)
    try {
        Options opt = parse_args(argc, argv);
        if (opt.threads > 0) set_num_threads(opt.threads);
        if (opt.device.is_cuda() && !has_backend(DeviceType::CUDA)) {
            print_line(Json::object({{"impl", "rankclip"}, {"skip", "no CUDA device"}}));
            return 0;
        }
        if (opt.runs("fwd") || opt.runs("fwd_bwd"))
            for (const std::string& name : opt.configs) bench_config(opt, name);
        if (!opt.runs("train")) return 0;
        struct Case {
            std::string name, loss, precision;
        };
        std::vector<Case> cases;
        for (const std::string& name : opt.configs)
            for (const std::string& loss : opt.losses)
                for (const std::string& precision : opt.precisions) cases.push_back({name, loss, precision});
        if (cases.size() == 1 && opt.kinds.size() == 1) {  // alone in this process: run it here
            bench_train_step(opt, cases[0].name, cases[0].loss, cases[0].precision);
            return 0;
        }
        bool failed = false;
        for (const Case& c : cases)
            failed |= !run_self(argc, argv, {"--configs", c.name, "--losses", c.loss, "--precisions", c.precision,
                                             "--kinds", "train"});
        return failed ? 1 : 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_models: %s\n", e.what());
        return 1;
    }
    return 0;
}
