// tools/cmd_bench.cpp
// defines: cmd_bench, the `rankclip bench` subcommand: times N full training steps (forward,
// loss, backward, gradient norm, AdamW, logit_scale clamp; bench/bench_train_step.h) of a model on
// one fixed random batch, after W untimed warm-up steps, and prints one JSON line:
//   {"bench":"train_step","model":"tiny","loss":"clip","batch_size":128,"device":"cpu",
//    "precision":"fp32","threads":2,"warmup":2,"steps":10,"median_ms":...,"min_ms":...,
//    "images_per_s":...,"peak_memory_mb":...,"memory_kind":"rss","last_loss":...}
// images_per_s = batch_size / median step time. Peak memory: on the CPU the process's peak
// resident set (getrusage ru_maxrss: everything the process ever held, the model, AdamW's moments,
// the activations and the program itself); on CUDA the device allocator's peak of bytes handed
// out to tensors (cuda/allocator.h; its cache and the CUDA context are not counted). Each step
// ends with the loss read back and the device synchronized, so GPU time is counted.
// For the comparison with PyTorch see `make bench` (bench/bench_models.cpp, docs/PERFORMANCE.md).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_timing.h"
#include "bench/bench_train_step.h"
#include "engine/backend.h"
#include "engine/json.h"
#include "tools/cli_args.h"
#ifdef RANKCLIP_CUDA
#include "cuda/allocator.h"
#endif

using namespace rankclip;

static void bench_usage(std::FILE* out) {
    std::fprintf(out,
        "usage: rankclip bench [options]\n"
        "  time full training steps (forward + loss + backward + AdamW) on random data; prints one JSON line\n"
        "  --model tiny|small|b32|b16|CONFIG.json   model (default tiny)\n"
        "  --loss clip|rankclip|cyclip|siglip       loss (default clip; rankclip with weight w = 1)\n"
        "  --batch-size N    (default 128)   --steps N  timed steps (default 10)\n"
        "  --warmup N        untimed steps first (default 2)\n"
        "  --device cpu|cuda[:N]  --precision fp32|bf16  --threads T  --seed S (0)\n");
}

// The process's peak resident set in MiB (Linux reports ru_maxrss in KiB).
static double peak_rss_mb() {
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    return double(usage.ru_maxrss) / 1024.0;
}

int cmd_bench(int argc, char** argv) {
    std::string model = "tiny", loss = "clip", device_name = "cpu", precision = "fp32";
    int64_t batch = 128, steps = 10, warmup = 2;
    int threads = 0;
    uint64_t seed = 0;
    ArgReader args("bench", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            bench_usage(stdout);
            return 0;
        }
        else if (a == "--model") model = args.value();
        else if (a == "--loss") loss = args.value();
        else if (a == "--batch-size") batch = args.integer(1);
        else if (a == "--steps") steps = args.integer(1);
        else if (a == "--warmup") warmup = args.integer(0);
        else if (a == "--device") device_name = args.value();
        else if (a == "--precision") precision = args.value();
        else if (a == "--threads") threads = int(args.integer(1));
        else if (a == "--seed") seed = uint64_t(args.integer(0));
        else args.unknown();
    }
    RC_CHECK(precision == "fp32" || precision == "bf16", "bench: --precision must be fp32 or bf16, got '", precision,
             "'");
    const LossKind kind = parse_loss_kind(loss);
    const bool file = model.size() > 5 && model.compare(model.size() - 5, 5, ".json") == 0;
    const CLIPConfig config = file ? CLIPConfig::from_json_file(model) : clip_config(model);
    const Device device = parse_device(device_name);
    RC_CHECK(!device.is_cuda() || has_backend(DeviceType::CUDA), "bench: --device ", device.str(),
             ": no CUDA device is available to this build");
    if (threads > 0) set_num_threads(threads);

    bench::TrainStepBenchOptions options;
    options.loss = kind;
    options.batch = batch;
    options.device = device;
    options.bf16 = precision == "bf16";
    options.seed = seed;
    bench::TrainStepBench bench(config, options);
    Backend& backend = backend_for(device);

    double last_loss = 0;
    for (int64_t i = 0; i < warmup; i++) last_loss = bench.step();
    backend.synchronize();
    std::vector<double> ms;
    for (int64_t i = 0; i < steps; i++) {
        auto t0 = bench::Clock::now();
        last_loss = bench.step();
        backend.synchronize();
        ms.push_back(bench::seconds_since(t0) * 1e3);
    }
    std::sort(ms.begin(), ms.end());
    const size_t n = ms.size();
    const double median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);

    double peak_mb = 0;
    std::string memory_kind = "rss";
#ifdef RANKCLIP_CUDA
    if (device.is_cuda()) {
        peak_mb = double(cuda_allocator(device.index).stats().peak_bytes) / (1024.0 * 1024.0);
        memory_kind = "cuda_allocator";
    }
#endif
    if (memory_kind == "rss") peak_mb = peak_rss_mb();

    Json line = Json::object();
    line.set("bench", "train_step");
    line.set("model", model);
    line.set("loss", loss_kind_name(kind));
    line.set("batch_size", batch);
    line.set("device", device.str());
    line.set("precision", precision);
    line.set("threads", get_num_threads());
    line.set("warmup", warmup);
    line.set("steps", steps);
    line.set("median_ms", bench::round4(median));
    line.set("min_ms", bench::round4(ms.front()));
    line.set("images_per_s", bench::round4(double(batch) / (median * 1e-3)));
    line.set("peak_memory_mb", bench::round4(peak_mb));
    line.set("memory_kind", memory_kind);
    line.set("last_loss", last_loss);
    bench::print_line(line);
    return 0;
}
