// train/trainer.cpp
// defines: train(), the loop of train/trainer.h, and its helpers: the checkpoint's run state
// (read_resume_point), the run's config on resume (plan_run, check_resume_length), the sweep of
// stale temporary files, the loader, the progress lines (log_progress), evaluate_and_log,
// save_checkpoint, signal handling. metrics.jsonl is written by train/metrics_log.h.
#include "train/trainer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "data/loader.h"
#include "dist/comm.h"
#include "data/open_dataset.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "engine/atomic_file.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/strings.h"
#include "models/checkpoint.h"
#include "train/metrics_log.h"
#include "train/optimizer.h"
#include "train/train_step.h"

namespace fs = std::filesystem;

namespace rankclip {

namespace {

constexpr const char* kRunFormat = "rankclip-train-v1";

// ---- Ctrl-C / SIGTERM: the handler only records the signal; the loop saves and returns ----
std::atomic<int> g_stop_signal{0};
extern "C" void record_stop_signal(int sig) { g_stop_signal = sig; }

struct StopSignalScope {
    void (*old_int)(int), (*old_term)(int);
    StopSignalScope() {
        g_stop_signal = 0;
        old_int = std::signal(SIGINT, record_stop_signal);
        old_term = std::signal(SIGTERM, record_stop_signal);
    }
    ~StopSignalScope() {
        std::signal(SIGINT, old_int);
        std::signal(SIGTERM, old_term);
    }
};

std::string hex_encode(const std::vector<uint8_t>& bytes) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (uint8_t b : bytes) s += digits[b >> 4], s += digits[b & 15];
    return s;
}

std::vector<uint8_t> hex_decode(const std::string& s, const std::string& what) {
    RC_CHECK(s.size() % 2 == 0, what, ": odd-length hex string");
    auto nibble = [&](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        throw Error(str_cat(what, ": bad hex digit '", c, "'"));
    };
    std::vector<uint8_t> out(s.size() / 2);
    for (size_t i = 0; i < out.size(); i++) out[i] = uint8_t(nibble(s[2 * i]) * 16 + nibble(s[2 * i + 1]));
    return out;
}

// The tokenizer of a run: the named merges file, else $RANKCLIP_VOCAB, else the synthetic data's
// small default vocabulary (byte-level BPE, so any text tokenizes).
std::shared_ptr<const Tokenizer> run_tokenizer(const TrainConfig& c, std::string& described) {
    std::string path = c.vocab;
    if (path.empty() || path == "synthetic") {
        const char* env = std::getenv("RANKCLIP_VOCAB");
        if (path.empty() && env && *env) path = env;
    }
    if (path.empty() || path == "synthetic") {
        described = "synthetic default vocabulary";
        return std::shared_ptr<const Tokenizer>(&synthetic_default_tokenizer(), [](const Tokenizer*) {});
    }
    described = path;
    return std::make_shared<Tokenizer>(Tokenizer::from_file(path));
}

// The model's shapes: a preset or a JSON file, with the vocabulary of the run's tokenizer and,
// for SigLIP, OpenCLIP's SigLIP temperature and bias.
CLIPConfig run_model_config(const TrainConfig& c, const Tokenizer& tok) {
    bool file = ends_with(c.model, ".json");
    CLIPConfig m = file ? CLIPConfig::from_json_file(c.model) : clip_config(c.model);
    if (!file) m.vocab_size = tok.vocab_size();
    RC_CHECK(m.vocab_size >= tok.vocab_size(), c.model, ": vocab_size ", m.vocab_size, " is smaller than the tokenizer's ",
             tok.vocab_size());
    if (c.loss.kind == LossKind::SigLIP && !m.logit_bias) {
        m.init_logit_scale = std::log(10.0);
        m.logit_bias = true;
        m.init_logit_bias = -10.0;
    }
    return m;
}

std::string checkpoint_path(const std::string& out, int64_t step) {
    char name[64];
    std::snprintf(name, sizeof name, "step_%08lld.safetensors", (long long)step);
    return out + "/checkpoints/" + name;
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
    std::vector<std::string> files;
    fs::path dir = fs::path(run_dir) / "checkpoints";
    if (!fs::is_directory(dir)) return files;
    for (const auto& e : fs::directory_iterator(dir)) {
        std::string name = e.path().filename().string();
        if (name.rfind("step_", 0) == 0 && ends_with(name, ".safetensors")) files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());  // zero-padded step numbers sort by step
    return files;
}

std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    long long s = (long long)(seconds + 0.5);
    char buf[32];
    if (s >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s / 60) % 60);
    else if (s >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
    else std::snprintf(buf, sizeof buf, "%llds", s);
    return buf;
}

// ---- resume: the checkpoint's run state, every field checked ----

// What a checkpoint says about the run it continues.
struct ResumePoint {
    std::string file;        // the checkpoint; "" for a fresh run
    TrainConfig config;      // its TrainConfig
    int64_t step = 0;        // steps done
    Generator loss_gen;      // the ListMLE tie-break generator's state
    int world_size = 1;      // the processes that trained it (data-parallel)
};

[[noreturn]] void bad_metadata(const std::string& file, const char* field, const std::string& problem,
                               const char* expected) {
    throw Error(str_cat("--resume: checkpoint ", file, ": metadata \"", field, "\" ", problem, "; expected ", expected));
}

const std::string& metadata_field(const std::map<std::string, std::string>& meta, const std::string& file,
                                  const char* field, const char* expected) {
    auto it = meta.find(field);
    if (it == meta.end()) bad_metadata(file, field, "is missing", expected);
    return it->second;
}

// A non-empty string of at most max_digits decimal digits (no sign, no spaces).
bool is_decimal(const std::string& s, size_t max_digits) {
    return !s.empty() && s.size() <= max_digits && s.find_first_not_of("0123456789") == std::string::npos;
}

// Reads and checks the run state of checkpoint `file`: its format, TrainConfig, step and loss
// generator. Errors name the file, the field and what was expected.
ResumePoint read_resume_point(const std::string& file) {
    ClipCheckpointInfo info = read_clip_checkpoint_info(file);
    const auto& meta = info.metadata;
    RC_CHECK(meta.count("run_format") && meta.at("run_format") == kRunFormat, "--resume ", file,
             ": not a training checkpoint (no run state; it holds weights only)");
    ResumePoint p;
    p.file = file;

    const char* config_expected = "the run's TrainConfig as JSON, as rankclip train writes it";
    const std::string& config_text = metadata_field(meta, file, "train_config", config_expected);
    try {
        p.config = TrainConfig::from_json(Json::parse(config_text));
    } catch (const Error& e) {
        bad_metadata(file, "train_config", str_cat("is not valid (", e.what(), ")"), config_expected);
    }

    const char* step_expected = "the number of steps done, a decimal integer";
    const std::string& step = metadata_field(meta, file, "step", step_expected);
    if (!is_decimal(step, 18)) bad_metadata(file, "step", str_cat("is \"", step.substr(0, 40), "\""), step_expected);
    p.step = std::stoll(step);

    const char* rng_expected = "the loss generator's state in hex, as rankclip train writes it";
    const std::string& rng = metadata_field(meta, file, "loss_rng", rng_expected);
    try {
        p.loss_gen.set_state(hex_decode(rng, "hex"));
    } catch (const Error& e) {
        bad_metadata(file, "loss_rng", str_cat("is not valid (", e.what(), ")"), rng_expected);
    }

    // absent in checkpoints written before data-parallel training: one process
    if (meta.count("world_size")) {
        const std::string& world = meta.at("world_size");
        if (!is_decimal(world, 6) || std::stoi(world) < 1) bad_metadata(file, "world_size", str_cat("is \"", world.substr(0, 40), "\""), "a positive integer");
        p.world_size = std::stoi(world);
    }
    return p;
}

// The JSON value at a key path ("loss.kind") of a TrainConfig's JSON, or nullptr.
const Json* config_field(const Json& config, const std::string& path) {
    const Json* v = &config;
    for (size_t start = 0; v && v->is_object();) {
        const size_t dot = path.find('.', start);
        v = v->find(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (dot == std::string::npos) return v;
        start = dot + 1;
    }
    return nullptr;
}

std::string shown(const Json& v) { return v.is_string() ? v.as_string() : v.dump(); }

// ---- the run's config ----

// The config a run trains with, and what it continues from.
struct RunPlan {
    TrainConfig config;
    ResumePoint resume;           // resume.file is "" for a fresh run
    std::string length_flags;     // on resume, "--steps N" / "--epochs N" when given: the run's new length
};

// `given` for a fresh run. On resume the checkpoint's numbers with the given output and execution
// settings (trainer.h); a given run length replaces the checkpoint's, and every other given
// setting must equal the checkpoint's (an Error naming the flag and both values).
RunPlan plan_run(const TrainConfig& given, const std::string& resume, const std::vector<GivenSetting>& settings) {
    RunPlan plan;
    if (resume.empty()) {
        plan.config = given;
        return plan;
    }
    RC_CHECK(fs::exists(resume), "--resume ", resume, ": no such run directory or checkpoint file");
    const std::string file = fs::is_directory(resume) ? latest_checkpoint(resume) : resume;
    RC_CHECK(!file.empty(), "--resume ", resume, ": no checkpoints in ", resume, "/checkpoints");
    plan.resume = read_resume_point(file);
    TrainConfig& c = plan.config;
    c = plan.resume.config;

    const Json given_json = given.to_json(), stored_json = c.to_json();
    bool steps_given = false, epochs_given = false;
    for (const GivenSetting& s : settings) {
        if (s.field.empty()) continue;  // output and execution settings: taken below
        if (s.field == "device") {  // where the steps run, not what they compute: a run may move
            if (given.device != c.device)
                std::fprintf(stderr, "resume: continuing on %s (the run so far: %s)\n", given.device.c_str(),
                             c.device.c_str());
            c.device = given.device;
            continue;
        }
        if (s.field == "steps" || s.field == "epochs") {
            (s.field == "steps" ? steps_given : epochs_given) = true;
            plan.length_flags += str_cat(plan.length_flags.empty() ? "" : " ", s.flag, " ",
                                         s.field == "steps" ? given.steps : given.epochs);
            continue;
        }
        const Json* want = config_field(given_json, s.field);
        const Json* have = config_field(stored_json, s.field);
        RC_CHECK(want && have, "--resume: ", s.flag, " sets \"", s.field, "\", which is not a TrainConfig field");
        RC_CHECK(want->dump() == have->dump(), "--resume: ", s.flag, " ", shown(*want), " differs from the run's ",
                 shown(*have), " (checkpoint ", file, "): a resumed run keeps the settings its steps so far were "
                 "trained with; leave ", s.flag, " out, or start a new run with another --out");
    }
    if (steps_given) c.steps = given.steps;
    if (epochs_given) {
        c.epochs = given.epochs;
        if (!steps_given) c.steps = 0;  // steps wins over epochs: --epochs alone sets the length
    }

    c.out = given.out == TrainConfig().out ? fs::path(file).parent_path().parent_path().string() : given.out;
    c.threads = given.threads;
    c.log_every = given.log_every;
    c.save_every = given.save_every;
    c.eval_every = given.eval_every;
    c.keep_last = given.keep_last;
    c.stop_at = given.stop_at;
    c.workers = given.workers;
    return plan;
}

// A run's length in steps for `per_epoch` batches per epoch.
int64_t total_steps_of(const TrainConfig& c, int64_t per_epoch) { return c.steps > 0 ? c.steps : c.epochs * per_epoch; }

// On resume: the checkpoint's step is within the run (its new length when given); a new length is
// said on stderr.
void check_resume_length(const RunPlan& plan, int64_t total, int64_t per_epoch) {
    const ResumePoint& r = plan.resume;
    if (r.file.empty()) return;
    const int64_t before = total_steps_of(r.config, per_epoch);
    if (!plan.length_flags.empty()) {
        RC_CHECK(r.step <= total, "--resume: ", plan.length_flags, " gives a run of ", total, " steps, fewer than the ",
                 r.step, " steps checkpoint ", r.file, " has done");
        if (total != before)
            std::fprintf(stderr,
                         "resume: the run now has %lld steps instead of %lld (%s): the learning-rate schedule and "
                         "the RankCLIP weight's ramp span the new total from step %lld on; recorded in %s/config.json\n",
                         (long long)total, (long long)before, plan.length_flags.c_str(), (long long)r.step,
                         plan.config.out.c_str());
        return;
    }
    if (r.step > total)
        bad_metadata(r.file, "step", str_cat("is ", r.step, ", beyond the run's ", total, " steps"),
                     "at most the run's total (give --steps N to extend the run)");
}

// Removes the temporary files a killed writer of this run left behind (engine/atomic_file.h's
// names): metrics.jsonl.tmp.PID, config.json.tmp.PID, checkpoints/step_*.safetensors.tmp.PID.
// Returns how many.
int remove_stale_temp_files(const std::string& out) {
    int removed = 0;
    auto sweep = [&](const fs::path& dir, auto is_ours) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) return;
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
            const std::string target = atomic_temp_target(entry.path().filename().string());
            if (!target.empty() && is_ours(target) && fs::remove(entry.path(), ec)) removed++;
        }
    };
    sweep(out, [](const std::string& t) { return t == "metrics.jsonl" || t == "config.json"; });
    sweep(fs::path(out) / "checkpoints",
          [](const std::string& t) { return t.rfind("step_", 0) == 0 && ends_with(t, ".safetensors"); });
    return removed;
}

// What a run trains and carries from checkpoint to checkpoint, besides the config.
struct TrainState {
    std::shared_ptr<CLIP> model;
    std::unique_ptr<AdamW> optimizer;
    Generator loss_gen;   // the ListMLE tie-breaks
    int64_t start = 0;    // steps done before this call
};

// A fresh model (initialised from the seed) and optimizer, or those of the checkpoint `r` with its
// step and loss generator; the model on `device`, in train mode.
TrainState init_or_resume(const TrainConfig& c, const CLIPConfig& mc, Device device, const ResumePoint& r) {
    TrainState st;
    st.loss_gen = Generator(mix_seed(c.seed, 0x72616e6b));
    ClipCheckpoint resumed;
    if (r.file.empty()) {
        Generator init_gen(c.seed);
        st.model = std::make_shared<CLIP>(mc, init_gen);
        st.model->to(device);
    } else {
        resumed = load_clip(r.file, device);
        st.model = resumed.model;
        st.start = r.step;
        st.loss_gen = r.loss_gen;
    }
    st.model->train();
    st.optimizer = std::make_unique<AdamW>(st.model->named_parameters(),
                                           AdamWOptions{c.beta1, c.beta2, c.eps, c.weight_decay});
    if (!r.file.empty()) {
        try {
            st.optimizer->load_state(resumed.extra_tensors, st.start);
        } catch (const Error& e) {
            throw Error(str_cat("--resume: checkpoint ", r.file, ": ", e.what()));
        }
    }
    return st;  // the checkpoint's file tensors are dropped here
}

// The loader of a run: shuffled, whole batches only, the run's augmentation, tokenized to the
// model's context length; epoch order and augmentation depend only on (seed, step).
LoaderOptions run_loader_options(const TrainConfig& c, const CLIPConfig& mc, const Tokenizer& tok, Device device) {
    LoaderOptions lo;
    lo.batch_size = c.batch_size * dist::world_size();  // the global batch; this rank builds its part
    lo.shard = dist::rank();
    lo.shards = dist::world_size();
    lo.shuffle = true;
    lo.drop_last = true;
    lo.seed = c.seed;
    lo.num_workers = c.workers;
    lo.augment = c.augment;
    lo.augment_options = c.augment_options;
    lo.image_size = int(mc.image_size);
    lo.tokenizer = &tok;
    lo.context_length = int(mc.context_length);
    lo.pin_memory = device.is_cuda();
    return lo;
}

// What train_step does each step: the loss, accumulation, bf16 autocast, clipping.
StepOptions run_step_options(const TrainConfig& c, int64_t epochs) {
    StepOptions so;
    so.loss = c.loss;
    if (c.loss.kind == LossKind::RankCLIP && c.loss.rank_schedule == RankWeightSchedule::EpochRamp && epochs < 2) {
        // the epoch ramp is 0 for the whole first epoch: a run shorter than two ramps over steps
        so.loss.rank_schedule = RankWeightSchedule::StepRamp;
        if (dist::is_main())
            std::printf("train: the run is shorter than 2 epochs: the RankCLIP weight ramps over steps "
                    "(--rank-schedule step-ramp)\n");
    }
    so.accum = c.accum;
    so.bf16 = c.precision == "bf16";
    so.grad_clip = c.grad_clip;
    return so;
}

// The batch of `step`: the loader's next, or the first of the next epoch when this one ran out.
Batch next_batch(DataLoader& loader, int64_t step, int64_t per_epoch) {
    Batch batch;
    if (!loader.next(batch)) {  // the epoch ran out: the next one begins at this step
        loader.start_epoch(step / per_epoch, 0);
        RC_CHECK(loader.next(batch), "the loader gave no batch at step ", step);
    }
    return batch;
}

// ---- progress ----

// The clock of the progress lines: images per second since the last line, time since the start,
// and the time left at that pace.
struct ProgressClock {
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now(), t_last = t0;
    int64_t steps_since_last = 0;
    double images_per_s = 0, elapsed_s = 0, eta_s = 0;

    // Called at a progress line after `step`: the run started at `start` and stops at `stop`.
    void lap(int64_t step, int64_t start, int64_t stop, int64_t batch_size) {
        auto now = std::chrono::steady_clock::now();
        double dt = std::chrono::duration<double>(now - t_last).count();
        elapsed_s = std::chrono::duration<double>(now - t0).count();
        images_per_s = dt > 0 ? double(steps_since_last * batch_size) / dt : 0.0;
        eta_s = elapsed_s / double(step - start) * double(stop - step);
        t_last = now;
        steps_since_last = 0;
    }
};

// One progress line, and the same values as a "train" line of metrics.jsonl:
//   step  12/300 | epoch 0.50 | loss 4.1234 (contrastive 4.0000, ...) | lr 1.000e-04 | scale 14.29
//   | w 0.00 | 812.3 img/s | ETA 3m20s
void log_progress(MetricsLog& metrics, const TrainConfig& c, int64_t step, int64_t total, int64_t per_epoch,
                  const StepStats& s, double lr, double w, double scale, const ProgressClock& clock) {
    const bool rankclip = c.loss.kind == LossKind::RankCLIP;
    Metrics m{{"loss", s.loss}};
    for (const auto& part : s.parts) m.push_back(part);
    m.insert(m.end(), {{"lr", lr}, {"logit_scale", scale}, {"grad_norm", s.grad_norm},
                       {"images_per_s", clock.images_per_s}, {"time_s", clock.elapsed_s}});
    if (rankclip) m.push_back({"rank_weight", w});
    metrics.write("train", step, double(step) / double(per_epoch), m);

    std::printf("step %*lld/%lld | epoch %.2f | loss %.4f", int(std::to_string(total).size()), (long long)step,
                (long long)total, double(step) / double(per_epoch), s.loss);
    if (s.parts.size() > 1) {
        std::printf(" (");
        for (size_t i = 0; i < s.parts.size(); i++)
            std::printf("%s%s %.4f", i ? ", " : "", s.parts[i].first.c_str(), s.parts[i].second);
        std::printf(")");
    }
    std::printf(" | lr %.3e | scale %.2f", lr, scale);
    if (rankclip) std::printf(" | w %.2f", w);
    std::printf(" | %.1f img/s | ETA %s\n", clock.images_per_s, format_duration(clock.eta_s).c_str());
    std::fflush(stdout);
}

// ---- evaluation and checkpoints ----

// Runs the evaluation hook on `model` (in eval mode, then back to train mode), logs it to
// metrics.jsonl and prints "eval @ step N: name value ...".
Metrics evaluate_and_log(const TrainHooks& hooks, CLIP& model, const Tokenizer& tok, MetricsLog& metrics,
                         int64_t step, int64_t per_epoch) {
    model.eval();
    Metrics m = hooks.evaluate(model, tok, step);  // gradients are the hook's business (a probe trains)
    model.train();
    metrics.write("eval", step, double(step) / double(per_epoch), m);
    std::printf("eval @ step %lld:", (long long)step);
    for (const auto& [k, v] : m) std::printf(" %s %.4f", k.c_str(), v);
    std::printf("\n");
    std::fflush(stdout);
    return m;
}

// Writes the checkpoint of `step` (weights, AdamW moments, the config, the step, the loss
// generator's state) and deletes all but the newest keep_last. Returns its path.
// Data-parallel: only rank 0 writes (every rank holds the same weights and state); the others
// return the path it writes.
std::string save_checkpoint(const TrainConfig& c, int64_t step, const CLIP& model, const AdamW& optimizer,
                            const Generator& loss_gen) {
    std::map<std::string, std::string> meta{{"run_format", kRunFormat},
                                            {"train_config", c.to_json().dump()},
                                            {"step", std::to_string(step)},
                                            {"loss_rng", hex_encode(loss_gen.get_state())},
                                            {"world_size", std::to_string(dist::world_size())}};
    std::string path = checkpoint_path(c.out, step);
    if (!dist::is_main()) return path;
    save_clip(path, model, DType::F32, meta, optimizer.state_tensors());
    auto files = list_checkpoints(c.out);
    for (size_t i = 0; i + size_t(c.keep_last) < files.size(); i++) fs::remove(files[i]);
    return path;
}

}  // namespace

std::string latest_checkpoint(const std::string& run_dir) {
    auto files = list_checkpoints(run_dir);
    return files.empty() ? "" : files.back();
}

TrainResult train(const TrainConfig& given, const std::string& resume, const TrainHooks& hooks,
                  const std::vector<GivenSetting>& settings) {
    // ---- the run's config and directory ----
    const RunPlan plan = plan_run(given, resume, settings);
    const TrainConfig& c = plan.config;
    const std::string& resume_file = plan.resume.file;
    c.validate();
    if (c.threads > 0) set_num_threads(c.threads);
    // Data-parallel when launched as several processes (mpirun, srun): --batch-size is per rank;
    // rank 0 alone prints and writes the run's files (docs/DISTRIBUTED.md).
    const int world = dist::world_size();
    const bool main = dist::is_main();
    Device device = parse_device(c.device);
    if (device.is_cuda() && world > 1) device = Device::cuda(dist::local_rank());  // one GPU per local rank
    RC_CHECK(!device.is_cuda() || has_backend(DeviceType::CUDA), "--device ", device.str(),
             ": no CUDA device is available to this build");
    if (resume.empty())
        RC_CHECK(latest_checkpoint(c.out).empty(), "--out ", c.out,
                 " already holds checkpoints: continue it with --resume ", c.out, ", or choose another --out");
    RC_CHECK(resume_file.empty() || plan.resume.world_size == world, "--resume ", resume_file, ": the run was trained on ",
             plan.resume.world_size, " process", plan.resume.world_size == 1 ? "" : "es", " and this is ", world,
             ": resume it on the same number (mpirun -np ", plan.resume.world_size,
             "); --batch-size is per process, so another number would change the global batch");
    if (main) fs::create_directories(fs::path(c.out) / "checkpoints");
    if (int removed = main ? remove_stale_temp_files(c.out) : 0)
        std::fprintf(stderr, "train: removed %d stale temporary file%s left in %s by a killed run\n", removed,
                     removed == 1 ? "" : "s", c.out.c_str());

    // ---- data ----
    std::string vocab_described;
    std::shared_ptr<const Tokenizer> tok = run_tokenizer(c, vocab_described);
    OpenOptions open_options;
    open_options.seed = c.seed;
    std::unique_ptr<Dataset> data = open_dataset(c.data, open_options);
    CLIPConfig mc = run_model_config(c, *tok);
    DataLoader loader(*data, run_loader_options(c, mc, *tok, device));
    int64_t per_epoch = loader.batches_per_epoch();
    RC_CHECK(per_epoch > 0, c.data, ": ", data->size(), " samples, fewer than one batch of ", c.batch_size);
    int64_t total = total_steps_of(c, per_epoch);
    int64_t epochs = (total + per_epoch - 1) / per_epoch;
    check_resume_length(plan, total, per_epoch);

    // ---- model, optimizer, generators: fresh, or the checkpoint's ----
    TrainState state = init_or_resume(c, mc, device, plan.resume);
    CLIP& model = *state.model;
    AdamW& optimizer = *state.optimizer;
    Generator& loss_gen = state.loss_gen;
    const int64_t start = state.start;

    StepOptions so = run_step_options(c, epochs);
    LrScheduleOptions lr_options{c.schedule, c.lr, c.warmup, total};

    // ---- outputs (rank 0): config.json, metrics.jsonl (cut back to the checkpoint's step on resume) ----
    std::optional<MetricsLog> metrics;
    if (main) {
        write_file_atomic(c.out + "/config.json", c.to_json().dump(2) + "\n");
        metrics.emplace(c.out + "/metrics.jsonl", resume_file.empty(), start);
        if (metrics->dropped_torn_line())
            std::fprintf(stderr, "resume: dropped a half-written last line of %s/metrics.jsonl\n", c.out.c_str());
    }
    const std::string batch_described =
        world == 1 ? std::to_string(c.batch_size)
                   : str_cat(c.batch_size, " per process x ", world, " processes = ", c.batch_size * world, " global");
    if (main)
        std::printf("train: %s (%.2fM parameters) on %s, loss %s, batch %s (accum %d), %lld steps = %lld epochs "
                "of %lld batches, lr %g (%s, warmup %lld), wd %g, seed %llu, device %s %s, vocabulary: %s\n",
                c.model.c_str(), double(model.num_parameters()) / 1e6, data->describe().c_str(),
                loss_kind_name(c.loss.kind), batch_described.c_str(), c.accum,
                (long long)total, (long long)epochs, (long long)per_epoch, c.lr, lr_schedule_name(c.schedule),
                (long long)c.warmup, c.weight_decay, (unsigned long long)c.seed, device.str().c_str(),
                c.precision.c_str(), vocab_described.c_str());
    if (start > 0 && main) std::printf("train: resumed from %s at step %lld\n", resume_file.c_str(), (long long)start);
    std::fflush(stdout);

    // ---- the loop: batch -> lr and weight -> train_step -> log / evaluate / save ----
    TrainResult result;
    result.total_steps = total;
    auto evaluate = [&](int64_t step) {  // rank 0 alone; the others wait at the next step's collectives
        if (main) result.last_eval = evaluate_and_log(hooks, model, *tok, *metrics, step, per_epoch);
    };
    auto save = [&](int64_t step) { result.checkpoint = save_checkpoint(c, step, model, optimizer, loss_gen); };

    StopSignalScope signals;
    // A signal may reach the ranks at different steps: they stop together when any rank has one.
    auto stop_requested = [&] {
        if (world == 1) return g_stop_signal != 0;
        Tensor flag = full({1}, g_stop_signal != 0 ? 1.0 : 0.0, DType::F64);
        dist::all_reduce_(flag, dist::Reduce::Sum);
        return flag.item() > 0;
    };
    int64_t step = start, last_saved = start, last_eval = -1;
    int64_t stop = c.stop_at > 0 ? std::min(c.stop_at, total) : total;
    ProgressClock clock;
    loader.start_epoch(step / per_epoch, step % per_epoch);
    bool interrupted = false;
    while (step < stop && !(interrupted = stop_requested())) {
        Batch batch = next_batch(loader, step, per_epoch);
        int64_t epoch = step / per_epoch + 1;  // counted from 1, as the RankCLIP ramp
        double lr = learning_rate_at(lr_options, step);
        double w = rank_weight_at(so.loss, epoch, epochs, step, total);
        StepStats s = train_step(model, optimizer, batch.images.to(device), batch.text.to(device), so, lr, w,
                                 loss_gen, step + 1);
        step++;
        if (hooks.after_step) hooks.after_step(model, step);
        clock.steps_since_last++;
        result.last_loss = s.loss;

        if (step % c.log_every == 0 || step == stop) {
            clock.lap(step, start, stop, c.batch_size * world);
            double scale = std::exp(model.logit_scale.item());
            if (main) log_progress(*metrics, c, step, total, per_epoch, s, lr, w, scale, clock);
        }
        if (hooks.evaluate && c.eval_every > 0 && step % c.eval_every == 0) {
            evaluate(step);
            last_eval = step;
        }
        if (c.save_every > 0 && step % c.save_every == 0 && step < stop) {
            save(step);
            last_saved = step;
        }
    }

    // ---- the end: a last evaluation and checkpoint, and how to continue ----
    result.interrupted = interrupted;
    if (step == total && hooks.evaluate && last_eval != step) evaluate(step);
    if (step != last_saved || result.checkpoint.empty()) save(step);
    result.steps_done = step;
    if (!main) return result;
    if (result.interrupted)
        std::printf("train: interrupted at step %lld; saved %s — continue with: rankclip train --resume %s\n",
                    (long long)step, result.checkpoint.c_str(), c.out.c_str());
    else if (step < total)
        std::printf("train: stopped at step %lld of %lld (--stop-at); saved %s — continue with: rankclip train "
                    "--resume %s\n",
                    (long long)step, (long long)total, result.checkpoint.c_str(), c.out.c_str());
    else
        std::printf("train: done, %lld steps; saved %s\n", (long long)step, result.checkpoint.c_str());
    std::fflush(stdout);
    return result;
}

}  // namespace rankclip
