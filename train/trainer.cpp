// train/trainer.cpp
// defines: train(), the loop of train/trainer.h, with its run directory, checkpoints, metrics
// log, progress lines and signal handling.
#include "train/trainer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "data/loader.h"
#include "data/open_dataset.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/strings.h"
#include "models/checkpoint.h"
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

// metrics.jsonl, appended one line per record and flushed (a crash loses nothing written).
class MetricsLog {
public:
    // fresh: start empty; otherwise keep the lines of steps <= keep_through (a resume drops what
    // was logged after the checkpoint it continues from).
    MetricsLog(const std::string& path, bool fresh, int64_t keep_through) {
        std::vector<std::string> kept;
        if (!fresh && fs::exists(path)) {
            std::ifstream in(path);
            std::string line;
            while (std::getline(in, line)) {
                if (line.empty()) continue;
                Json j = Json::parse(line);
                if (j.at("step").as_int() <= keep_through) kept.push_back(line);
            }
        }
        out_.open(path, std::ios::trunc);
        RC_CHECK(out_.good(), path, ": cannot open for writing");
        for (const auto& line : kept) out_ << line << '\n';
        out_.flush();
    }
    void write(const char* type, int64_t step, double epoch, const Metrics& values) {
        Json j = Json::object();
        j.set("type", type);
        j.set("step", step);
        j.set("epoch", epoch);
        for (const auto& [k, v] : values) j.set(k, std::isfinite(v) ? Json(v) : Json());
        out_ << j.dump() << '\n';
        out_.flush();
    }

private:
    std::ofstream out_;
};

}  // namespace

std::string latest_checkpoint(const std::string& run_dir) {
    auto files = list_checkpoints(run_dir);
    return files.empty() ? "" : files.back();
}

TrainResult train(const TrainConfig& given, const std::string& resume, const TrainHooks& hooks) {
    // ---- the run's config: fresh, or the checkpoint's numbers with the given output settings ----
    TrainConfig c = given;
    std::string resume_file;
    ClipCheckpoint resumed;
    if (!resume.empty()) {
        RC_CHECK(fs::exists(resume), "--resume ", resume, ": no such run directory or checkpoint file");
        resume_file = fs::is_directory(resume) ? latest_checkpoint(resume) : resume;
        RC_CHECK(!resume_file.empty(), "--resume ", resume, ": no checkpoints in ", resume, "/checkpoints");
        ClipCheckpointInfo info = read_clip_checkpoint_info(resume_file);
        RC_CHECK(info.metadata.count("run_format") && info.metadata.at("run_format") == kRunFormat, "--resume ",
                 resume_file, ": not a training checkpoint (no run state; it holds weights only)");
        c = TrainConfig::from_json(Json::parse(info.metadata.at("train_config")));
        c.out = given.out == TrainConfig().out ? fs::path(resume_file).parent_path().parent_path().string() : given.out;
        c.threads = given.threads;
        c.log_every = given.log_every;
        c.save_every = given.save_every;
        c.eval_every = given.eval_every;
        c.keep_last = given.keep_last;
        c.stop_at = given.stop_at;
        c.workers = given.workers;
    }
    c.validate();
    if (c.threads > 0) set_num_threads(c.threads);
    Device device = parse_device(c.device);
    RC_CHECK(!device.is_cuda() || has_backend(DeviceType::CUDA), "--device ", device.str(),
             ": no CUDA device is available to this build");
    if (resume.empty())
        RC_CHECK(latest_checkpoint(c.out).empty(), "--out ", c.out,
                 " already holds checkpoints: continue it with --resume ", c.out, ", or choose another --out");
    fs::create_directories(fs::path(c.out) / "checkpoints");

    // ---- data ----
    std::string vocab_described;
    std::shared_ptr<const Tokenizer> tok = run_tokenizer(c, vocab_described);
    OpenOptions open_options;
    open_options.seed = c.seed;
    std::unique_ptr<Dataset> data = open_dataset(c.data, open_options);
    CLIPConfig mc = run_model_config(c, *tok);

    LoaderOptions lo;
    lo.batch_size = c.batch_size;
    lo.shuffle = true;
    lo.drop_last = true;
    lo.seed = c.seed;
    lo.num_workers = c.workers;
    lo.augment = c.augment;
    lo.augment_options = c.augment_options;
    lo.image_size = int(mc.image_size);
    lo.tokenizer = tok.get();
    lo.context_length = int(mc.context_length);
    lo.pin_memory = device.is_cuda();
    DataLoader loader(*data, lo);
    int64_t per_epoch = loader.batches_per_epoch();
    RC_CHECK(per_epoch > 0, c.data, ": ", data->size(), " samples, fewer than one batch of ", c.batch_size);
    int64_t total = c.steps > 0 ? c.steps : c.epochs * per_epoch;
    int64_t epochs = (total + per_epoch - 1) / per_epoch;

    // ---- model, optimizer, generators ----
    std::shared_ptr<CLIP> model;
    int64_t start = 0;
    Generator loss_gen(mix_seed(c.seed, 0x72616e6b));  // the ListMLE tie-breaks
    if (resume_file.empty()) {
        Generator init_gen(c.seed);
        model = std::make_shared<CLIP>(mc, init_gen);
        model->to(device);
    } else {
        resumed = load_clip(resume_file, device);
        model = resumed.model;
        start = std::stoll(resumed.metadata.at("step"));
        loss_gen.set_state(hex_decode(resumed.metadata.at("loss_rng"), resume_file));
    }
    model->train();
    AdamW optimizer(model->named_parameters(), {c.beta1, c.beta2, c.eps, c.weight_decay});
    if (!resume_file.empty()) optimizer.load_state(resumed.extra_tensors, start);
    resumed = ClipCheckpoint();  // drop the file's tensors

    StepOptions so;
    so.loss = c.loss;
    if (c.loss.kind == LossKind::RankCLIP && c.loss.rank_schedule == RankWeightSchedule::EpochRamp && epochs < 2) {
        // the epoch ramp is 0 for the whole first epoch: a run shorter than two ramps over steps
        so.loss.rank_schedule = RankWeightSchedule::StepRamp;
        std::printf("train: the run is shorter than 2 epochs: the RankCLIP weight ramps over steps "
                    "(--rank-schedule step-ramp)\n");
    }
    so.accum = c.accum;
    so.bf16 = c.precision == "bf16";
    so.grad_clip = c.grad_clip;
    LrScheduleOptions lr_options{c.schedule, c.lr, c.warmup, total};

    {
        std::ofstream cfg(c.out + "/config.json");
        cfg << c.to_json().dump(2) << '\n';
    }
    MetricsLog metrics(c.out + "/metrics.jsonl", resume_file.empty(), start);
    std::printf("train: %s (%.2fM parameters) on %s, loss %s, batch %lld (accum %d), %lld steps = %lld epochs "
                "of %lld batches, lr %g (%s, warmup %lld), wd %g, seed %llu, device %s %s, vocabulary: %s\n",
                c.model.c_str(), double(model->num_parameters()) / 1e6, data->describe().c_str(),
                loss_kind_name(c.loss.kind), (long long)c.batch_size, c.accum,
                (long long)total, (long long)epochs, (long long)per_epoch, c.lr, lr_schedule_name(c.schedule),
                (long long)c.warmup, c.weight_decay, (unsigned long long)c.seed, device.str().c_str(),
                c.precision.c_str(), vocab_described.c_str());
    if (start > 0) std::printf("train: resumed from %s at step %lld\n", resume_file.c_str(), (long long)start);
    std::fflush(stdout);

    TrainResult result;
    result.total_steps = total;
    auto save = [&](int64_t step) {
        std::map<std::string, std::string> meta{{"run_format", kRunFormat},
                                                {"train_config", c.to_json().dump()},
                                                {"step", std::to_string(step)},
                                                {"loss_rng", hex_encode(loss_gen.get_state())}};
        std::string path = checkpoint_path(c.out, step);
        save_clip(path, *model, DType::F32, meta, optimizer.state_tensors());
        auto files = list_checkpoints(c.out);
        for (size_t i = 0; i + size_t(c.keep_last) < files.size(); i++) fs::remove(files[i]);
        result.checkpoint = path;
    };
    auto evaluate = [&](int64_t step) {
        model->eval();
        Metrics m = hooks.evaluate(*model, *tok, step);  // gradients are the hook's business (a probe trains)
        model->train();
        metrics.write("eval", step, double(step) / double(per_epoch), m);
        std::printf("eval @ step %lld:", (long long)step);
        for (const auto& [k, v] : m) std::printf(" %s %.4f", k.c_str(), v);
        std::printf("\n");
        std::fflush(stdout);
        result.last_eval = m;
    };

    // ---- the loop ----
    StopSignalScope signals;
    int64_t step = start, last_saved = start, last_eval = -1;
    int64_t stop = c.stop_at > 0 ? std::min(c.stop_at, total) : total;
    auto t0 = std::chrono::steady_clock::now(), t_log = t0;
    int64_t steps_since_log = 0;
    loader.start_epoch(step / per_epoch, step % per_epoch);
    while (step < stop && g_stop_signal == 0) {
        Batch batch;
        if (!loader.next(batch)) {  // the epoch ran out: the next one begins at this step
            loader.start_epoch(step / per_epoch, 0);
            RC_CHECK(loader.next(batch), "the loader gave no batch at step ", step);
        }
        int64_t epoch = step / per_epoch + 1;  // counted from 1, as the RankCLIP ramp
        double lr = learning_rate_at(lr_options, step);
        double w = rank_weight_at(so.loss, epoch, epochs, step, total);
        StepStats s = train_step(*model, optimizer, batch.images.to(device), batch.text.to(device), so, lr, w,
                                 loss_gen, step + 1);
        step++;
        steps_since_log++;
        result.last_loss = s.loss;

        if (step % c.log_every == 0 || step == stop) {
            auto now = std::chrono::steady_clock::now();
            double dt = std::chrono::duration<double>(now - t_log).count();
            double elapsed = std::chrono::duration<double>(now - t0).count();
            double ips = dt > 0 ? double(steps_since_log * c.batch_size) / dt : 0.0;
            double eta = elapsed / double(step - start) * double(stop - step);
            double scale = std::exp(model->logit_scale.item());
            Metrics m{{"loss", s.loss}};
            for (const auto& part : s.parts) m.push_back(part);
            m.insert(m.end(), {{"lr", lr}, {"logit_scale", scale}, {"grad_norm", s.grad_norm}, {"images_per_s", ips},
                               {"time_s", elapsed}});
            if (c.loss.kind == LossKind::RankCLIP) m.push_back({"rank_weight", w});
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
            if (c.loss.kind == LossKind::RankCLIP) std::printf(" | w %.2f", w);
            std::printf(" | %.1f img/s | ETA %s\n", ips, format_duration(eta).c_str());
            std::fflush(stdout);
            t_log = now;
            steps_since_log = 0;
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

    result.interrupted = g_stop_signal != 0;
    if (step == total && hooks.evaluate && last_eval != step) evaluate(step);
    if (step != last_saved || result.checkpoint.empty()) save(step);
    result.steps_done = step;
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
