// tools/cmd_bench.cpp
// defines: cmd_bench, the `rankclip bench` subcommand: times N full training steps (forward,
// loss, backward, gradient norm, AdamW, logit_scale clamp; bench/bench_train_step.h) of a model on
// one fixed random batch, after W untimed warm-up steps, and prints one JSON line:
//   {"bench":"train_step","model":"tiny","loss":"clip","batch_size":128,"device":"cpu",
//    "precision":"fp32","threads":2,"warmup":2,"steps":10,"median_ms":...,"min_ms":...,
//    "images_per_s":...,"peak_memory_mb":...,"memory_kind":"rss","last_loss":...}
// images_per_s = batch_size / median step time. Under mpirun (data-parallel, docs/DISTRIBUTED.md)
// --batch-size is per rank, and rank 0 adds world_size, per_rank_images_per_s,
// total_images_per_s (world x batch / the slowest rank's median), comm_ms_per_step (each rank's
// time inside collectives, waiting for the others included), comm_calls_per_step and
// comm_mb_per_step (the bytes of the tensors the collectives held, rank 0). Peak memory: on the CPU the process's peak
// resident set (VmHWM, bench/bench_timing.h peak_rss_mb: everything the process ever held, the
// model, AdamW's moments, the activations and the program itself); on CUDA the device allocator's peak of bytes handed
// out to tensors (cuda/allocator.h; its cache and the CUDA context are not counted). Each step
// ends with the loss read back and the device synchronized, so GPU time is counted.
//
// --compare-torch then runs the PyTorch twin of the same case (tools/bench_models_torch.py
// --kinds train, for a preset model, with the same batch, loss, precision, threads, warm-up and
// step counts, in its own process) and prints its JSON line and one more:
//   {"compare":"train_step","case":"clip_tiny_train_clip","ours_ms":...,"pytorch_ms":...,
//    "ours_over_pytorch_speed":...,"ours_peak_mb":...,"pytorch_peak_mb":...,
//    "ours_over_pytorch_memory":...}
// (speed: PyTorch's median time / ours, > 1 when we are faster; memory: our peak / PyTorch's, < 1
// when we need less). --profile N then runs N more steps under the op profiler (engine/profiler.h)
// and prints where the step's time goes to stderr. Only this option needs Python: $RANKCLIP_PYTHON, else /usr/bin/python3
// (Debian's python3-torch); the script is found beside the binary's directory (build/../tools/)
// or under the current directory. For every case at once see `make bench` (docs/PERFORMANCE.md).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/bench_timing.h"
#include "bench/bench_train_step.h"
#include "dist/comm.h"
#include "engine/backend.h"
#include "engine/json.h"
#include "engine/profiler.h"
#include "engine/strings.h"
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
        "  --device cpu|cuda[:N]  --precision fp32|bf16  --threads T  --seed S (0)\n"
        "  --profile N       then N more steps with every kernel timed alone; prints where the step's time\n"
        "                    goes (kernel, shape, ms and share of the step) to stderr\n"
        "  --compare-torch   then run the PyTorch twin of the same case (preset models; needs python3-torch,\n"
        "                    $RANKCLIP_PYTHON or /usr/bin/python3) and print its line and the ratios\n");
}

static std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// tools/bench_models_torch.py: beside the directory of this binary (build/rankclip), else under
// the current directory; "" when neither exists.
static std::string find_torch_twin() {
    std::vector<std::string> candidates;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        std::string dir(exe, size_t(n));
        dir = dir.substr(0, dir.rfind('/'));
        candidates.push_back(dir + "/../tools/bench_models_torch.py");
    }
    candidates.push_back("tools/bench_models_torch.py");
    for (const std::string& path : candidates)
        if (access(path.c_str(), R_OK) == 0) return path;
    return "";
}

// The shell command that runs the PyTorch twin of our case, checked before our own run.
static std::string torch_twin_command(const std::string& model, const std::string& loss, const std::string& precision,
                                      const Device& device, int64_t batch, int64_t warmup, int64_t steps) {
    const std::vector<std::string> presets = clip_config_names();
    RC_CHECK(std::find(presets.begin(), presets.end(), model) != presets.end(),
             "bench: --compare-torch needs a preset --model (the PyTorch mirror has no config files), got '", model,
             "'");
    const std::string script = find_torch_twin();
    RC_CHECK(!script.empty(), "bench: --compare-torch: tools/bench_models_torch.py not found beside the binary or "
             "under the current directory");
    const char* env_python = std::getenv("RANKCLIP_PYTHON");
    const std::string python = env_python && *env_python ? env_python : "/usr/bin/python3";
    RC_CHECK(access(python.c_str(), X_OK) == 0, "bench: --compare-torch: no ", python, " (set RANKCLIP_PYTHON)");
    return str_cat(shell_quote(python), " ", shell_quote(script), " --kinds train --configs ", model, " --losses ",
                   loss, " --precisions ", precision, " --batch ", batch, " --threads ", get_num_threads(),
                   " --warmup ", warmup, " --steps ", steps, " --device ", device.is_cuda() ? "cuda" : "cpu");
}

// Runs the PyTorch twin (`command`) and prints its line and the comparison line (above).
static int compare_with_torch(const std::string& command, const Device& device, const Json& ours) {
    std::fflush(stdout);
    std::FILE* pipe = popen(command.c_str(), "r");
    RC_CHECK(pipe, "bench: --compare-torch: cannot run ", command);
    std::string output;
    char buffer[4096];
    while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
    const int status = pclose(pipe);
    Json twin;
    for (size_t start = 0; start < output.size();) {  // the twin's last JSON line
        size_t end = output.find('\n', start);
        if (end == std::string::npos) end = output.size();
        if (output[start] == '{') twin = Json::parse(output.substr(start, end - start));
        start = end + 1;
    }
    RC_CHECK(twin.is_object() && status == 0, "bench: --compare-torch: ", command, " failed (status ", status, ")",
             output.empty() ? "" : ": ", output);
    bench::print_line(twin);
    if (twin.contains("skip")) return 0;  // no torch there: ours alone
    const bool cuda = device.is_cuda() && twin.contains("peak_cuda_mb");
    const double ours_ms = ours.at("median_ms").as_double(), torch_ms = twin.at("median_ms").as_double();
    const double ours_mb = ours.at("peak_memory_mb").as_double();
    const double torch_mb = twin.at(cuda ? "peak_cuda_mb" : "peak_rss_mb").as_double();
    Json line = Json::object();
    line.set("compare", "train_step");
    line.set("case", twin.at("case").as_string());
    line.set("ours_ms", ours_ms);
    line.set("pytorch_ms", torch_ms);
    line.set("ours_over_pytorch_speed", bench::round4(torch_ms / ours_ms));
    line.set("ours_peak_mb", ours_mb);
    line.set("pytorch_peak_mb", torch_mb);
    line.set("ours_over_pytorch_memory", bench::round4(ours_mb / torch_mb));
    bench::print_line(line);
    return 0;
}

int cmd_bench(int argc, char** argv) {
    std::string model = "tiny", loss = "clip", device_name = "cpu", precision = "fp32";
    int64_t batch = 128, steps = 10, warmup = 2, profile_steps = 0;
    int threads = 0;
    uint64_t seed = 0;
    bool compare_torch = false;
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
        else if (a == "--threads") threads = args.int_value(1);
        else if (a == "--seed") seed = uint64_t(args.integer(0));
        else if (a == "--profile") profile_steps = args.integer(1);
        else if (a == "--compare-torch") compare_torch = true;
        else args.unknown();
    }
    RC_CHECK(precision == "fp32" || precision == "bf16", "bench: --precision must be fp32 or bf16, got '", precision,
             "'");
    const LossKind kind = parse_loss_kind(loss);
    const bool file = ends_with(model, ".json");
    const CLIPConfig config = file ? CLIPConfig::from_json_file(model) : clip_config(model);
    const Device device = parse_device(device_name);
    RC_CHECK(!device.is_cuda() || has_backend(DeviceType::CUDA), "bench: --device ", device.str(),
             ": no CUDA device is available to this build");
    if (threads > 0) set_num_threads(threads);
    const int world = dist::world_size();
    RC_CHECK(world == 1 || !compare_torch, "bench: --compare-torch runs one process; run it without mpirun");
    const std::string twin_command =
        compare_torch ? torch_twin_command(model, loss_kind_name(kind), precision, device, batch, warmup, steps) : "";

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
    dist::reset_comm_stats();
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
    if (memory_kind == "rss") peak_mb = bench::peak_rss_mb();

    // Under mpirun: every rank's median and time in collectives, reported by rank 0.
    const dist::CommStats comm = dist::comm_stats();
    std::vector<double> rank_median{median}, rank_comm_ms{comm.seconds * 1e3 / double(steps)};
    if (world > 1) {
        Tensor mine = from_vector(std::vector<double>{median, rank_comm_ms[0]}, {1, 2}, DType::F64);
        const std::vector<double> all = dist::all_gather(mine).to_vector<double>();
        rank_median.clear(), rank_comm_ms.clear();
        for (int r = 0; r < world; r++) rank_median.push_back(all[2 * r]), rank_comm_ms.push_back(all[2 * r + 1]);
        if (!dist::is_main()) return 0;
    }

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
    if (world > 1) {
        // the step is synchronous: the slowest rank sets the pace of all
        const double slowest = *std::max_element(rank_median.begin(), rank_median.end());
        Json per_rank = Json::array(), comm_ms = Json::array();
        for (int r = 0; r < world; r++) {
            per_rank.push_back(bench::round4(double(batch) / (rank_median[r] * 1e-3)));
            comm_ms.push_back(bench::round4(rank_comm_ms[r]));
        }
        line.set("world_size", world);
        line.set("per_rank_images_per_s", per_rank);
        line.set("total_images_per_s", bench::round4(double(batch) * world / (slowest * 1e-3)));
        line.set("comm_ms_per_step", comm_ms);
        line.set("comm_calls_per_step", bench::round4(double(comm.calls) / double(steps)));
        line.set("comm_mb_per_step", bench::round4(double(comm.bytes) / double(steps) / (1024.0 * 1024.0)));
    }
    bench::print_line(line);
    if (profile_steps > 0) {
        // after the timed steps, so the JSON line's times are the unprofiled step's
        profiler::start();
        const auto t0 = bench::Clock::now();
        for (int64_t i = 0; i < profile_steps; i++) bench.step();
        backend_for(device).synchronize();
        const double wall = bench::seconds_since(t0);
        profiler::stop();
        std::fflush(stdout);
        std::fprintf(stderr, "%s", profiler::report(profile_steps, wall).c_str());
    }
    if (compare_torch) return compare_with_torch(twin_command, device, line);
    return 0;
}
