// tools/cmd_experiment.cpp
// defines: cmd_experiment, `rankclip experiment`: the comparison behind any claim about RankCLIP.
// Trains each arm (clip, cyclip, rankclip as released, the paper's variant, and the cross-only /
// in-only ablations) for the same steps from each of several seeds on one dataset, evaluates
// every run the same way (zero-shot, retrieval, linear probe, ranking consistency), and writes
// OUT/results.md (mean ± sample std over seeds per arm; rows and cells from
// report/report_table.h, shared with `rankclip demo`; then every arm paired by seed against the
// first: differences, 95% intervals, paired t and sign tests) and OUT/results.json (every run's
// metrics). With --eval-every, also OUT/curves.svg: the evaluations over training, mean and band
// over seeds per arm. Runs that finished are reused when the command is
// repeated with the same OUT (their last evaluation is read back from metrics.jsonl by
// train/metrics_log.h), so a long experiment can be stopped and continued; a run folder whose
// config.json differs from the run asked for is an error, never mixed into the table.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/atomic_file.h"
#include "engine/ops.h"
#include "engine/strings.h"
#include "tools/cli_args.h"
#include "eval/eval.h"
#include "report/plot.h"
#include "report/report_table.h"
#include "train/metrics_log.h"
#include "train/trainer.h"

using namespace rankclip;
namespace fs = std::filesystem;

static void experiment_usage(std::FILE* out) {
    std::fprintf(out,
        "usage: rankclip experiment --data synthetic|fashion-mnist [--arms A,B,...] [--seeds N]\n"
        "                           [--steps N] [--batch-size B] [--model M] [--lr X] [--eval-n N]\n"
        "                           [--eval-every N] [--cyclip-scale X] [--threads T]\n"
        "                           [--precision fp32|bf16] [--out DIR]\n"
        "  arms: clip, cyclip, rankclip (as released: both terms, /32 and /B, epoch ramp),\n"
        "  rankclip-paper (position weights 1/ln(1+k), constant weight 1), rankclip-cross\n"
        "  (RankCLIP^C), rankclip-in (RankCLIP^I) (default: clip, cyclip, rankclip, rankclip-cross,\n"
        "  rankclip-in); the first arm is the baseline of the paired comparisons. Seeds 0..N-1\n"
        "  (default 3), 300 steps of batch 64 of `tiny` each. --eval-every N: evaluate every N steps\n"
        "  too and chart the curves (OUT/curves.svg). --cyclip-scale X multiplies CyCLIP's two\n"
        "  weights (0.25 each); the arm is then named cyclip-xX.\n"
        "  Writes DIR/results.md (mean ± std over seeds) and DIR/results.json; DIR/<arm>-s<seed>\n"
        "  are the runs (a finished run is reused when the command is repeated with the same\n"
        "  settings; one trained with other settings is an error). --precision bf16:\n"
        "  bf16 autocast with fp32 master weights; DIR defaults to runs/experiment-DATA[-bf16].\n");
}

namespace {

struct Arm {
    std::string name;
    LossOptions loss;
};

// CyCLIP with its weights scaled is its own arm, "cyclip-x<scale>", so that runs at different
// scales sit side by side in one OUT.
Arm make_arm(const std::string& name, double cyclip_scale) {
    Arm a{name, {}};
    if (name == "clip") a.loss.kind = LossKind::Clip;
    else if (name == "cyclip") {
        if (cyclip_scale != 1.0) {
            char scale[32];
            std::snprintf(scale, sizeof scale, "%g", cyclip_scale);
            a.name = str_cat("cyclip-x", scale);
        }
        a.loss.kind = LossKind::CyCLIP;
        a.loss.cyclip_lambda_in *= cyclip_scale;
        a.loss.cyclip_lambda_cross *= cyclip_scale;
    } else if (name == "rankclip") a.loss.kind = LossKind::RankCLIP;
    else if (name == "rankclip-paper") {   // the paper's v1: log position weights, constant weight
        a.loss.kind = LossKind::RankCLIP;
        a.loss.position_weighting = PositionWeighting::Log;
        a.loss.rank_schedule = RankWeightSchedule::Constant;
        a.loss.rank_weight = 1.0;
    } else if (name == "rankclip-cross") a.loss.kind = LossKind::RankCLIP, a.loss.rank_in = false;
    else if (name == "rankclip-in") a.loss.kind = LossKind::RankCLIP, a.loss.rank_cross = false;
    else
        throw Error("experiment: unknown arm '" + name +
                    "' (clip, cyclip, rankclip, rankclip-paper, rankclip-cross, rankclip-in)");
    return a;
}

// The metrics charted over training: zero-shot, retrieval and consistency rows of the report
// (the probe trains a classifier at every evaluation and is left to the final table).
std::vector<std::pair<std::string, std::string>> curve_keys(const std::vector<ReportRow>& rows) {
    std::vector<std::pair<std::string, std::string>> keys;
    for (const ReportRow& row : rows)
        if (row.key.rfind("probe/", 0) != 0 && row.key.find("median_rank") == std::string::npos)
            keys.push_back({row.key, row.label});
    return keys;
}

// The first field where two configurations differ: its dotted path and both values (the path is
// empty when they are equal).
struct ConfigDifference {
    std::string path, wanted, stored;
};

ConfigDifference first_difference(const Json& wanted, const Json& stored, const std::string& path) {
    if (wanted.is_object() && stored.is_object()) {
        for (const auto& [key, value] : wanted.as_object()) {
            const std::string here = path.empty() ? key : path + "." + key;
            const Json* other = stored.find(key);
            if (!other) return {here, value.dump(), "missing"};
            ConfigDifference d = first_difference(value, *other, here);
            if (!d.path.empty()) return d;
        }
        for (const auto& [key, value] : stored.as_object())
            if (!wanted.contains(key)) return {path.empty() ? key : path + "." + key, "missing", value.dump()};
        return {};
    }
    if (wanted == stored) return {};
    return {path.empty() ? "the whole file" : path, wanted.dump(), stored.dump()};
}

// A run folder left by an earlier experiment is reused only if it was trained with the same
// configuration: another --cyclip-scale, --lr or --precision in the same OUT is an error, not a
// silent mix of two experiments in one table.
void check_same_config(const std::string& dir, const TrainConfig& c) {
    const std::string path = dir + "/config.json";
    if (!fs::exists(path)) return;
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    Json stored;
    try {
        stored = Json::parse(text.str());
    } catch (const Error& e) {
        throw Error(str_cat("experiment: ", path, ": ", e.what(), "; remove ", dir, " to train it again"));
    }
    const ConfigDifference d = first_difference(c.to_json(), stored, "");
    RC_CHECK(d.path.empty(), "experiment: ", dir, " was trained with another configuration (", d.path, ": ",
             d.stored, " there, ", d.wanted, " now); use another --out, or remove the folder to train it again");
}

}  // namespace

int cmd_experiment(int argc, char** argv) {
    std::string data = "synthetic", model = "tiny", precision = "fp32", out;
    std::vector<std::string> arm_names = {"clip", "cyclip", "rankclip", "rankclip-cross", "rankclip-in"};
    int64_t seeds = 3, steps = 300, batch = 64, eval_n = 500, eval_every = 0;
    double lr = 5e-4, cyclip_scale = 1.0;
    int threads = 0;
    std::string command = "rankclip experiment";
    for (int i = 0; i < argc; i++) command += std::string(" ") + argv[i];
    ArgReader args("experiment", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            experiment_usage(stdout);
            return 0;
        }
        else if (a == "--data") data = args.value();
        else if (a == "--arms") arm_names = split_commas(args.value());
        else if (a == "--seeds") seeds = args.integer(1);
        else if (a == "--steps") steps = args.integer(1);
        else if (a == "--batch-size") batch = args.integer(2);
        else if (a == "--model") model = args.value();
        else if (a == "--lr") lr = args.number();
        else if (a == "--eval-n") eval_n = args.integer(10);
        else if (a == "--eval-every") eval_every = args.integer(1);
        else if (a == "--cyclip-scale") cyclip_scale = args.number();
        else if (a == "--threads") threads = args.int_value(1);
        else if (a == "--precision") precision = args.value();
        else if (a == "--out") out = args.value();
        else args.unknown();
    }
    RC_CHECK(data == "synthetic" || data == "fashion-mnist", "experiment: --data must be synthetic or fashion-mnist, got '",
             data, "'");
    RC_CHECK(precision == "fp32" || precision == "bf16", "experiment: --precision must be fp32 or bf16, got '",
             precision, "'");
    // a bf16 experiment keeps its runs apart: finished runs in the folder are reused
    if (out.empty()) out = "runs/experiment-" + data + (precision == "bf16" ? "-bf16" : "");
    if (threads > 0) set_num_threads(threads);
    std::vector<Arm> arms;
    for (const auto& n : arm_names) arms.push_back(make_arm(n, cyclip_scale));

    // the same evaluations for every run
    EvalConfig eval;
    std::string n = std::to_string(eval_n);
    if (data == "synthetic") {
        eval.zero_shot = {"synthetic:val:" + n, "synthetic:heldout:" + n};
        eval.retrieval = {"synthetic:val:" + n};
        eval.probe = {"synthetic:train:2000"};
        eval.consistency = {"synthetic:val:" + n};
    } else {
        eval.zero_shot = {"fashion-mnist:test"};
        eval.retrieval = {"fashion-mnist:test:captions"};
        eval.probe = {"fashion-mnist"};
        eval.consistency = {"fashion-mnist:test:captions"};
        eval.limit = eval_n;
    }

    std::printf("experiment: %s on %s, arms %zu x seeds %lld, %lld steps of batch %lld, %s -> %s\n", model.c_str(),
                data.c_str(), arms.size(), (long long)seeds, (long long)steps, (long long)batch, precision.c_str(),
                out.c_str());
    auto t_all = std::chrono::steady_clock::now();
    std::vector<std::vector<Metrics>> results(arms.size());
    std::vector<ArmRuns> run_dirs(arms.size());
    for (size_t ai = 0; ai < arms.size(); ai++)
        for (int64_t seed = 0; seed < seeds; seed++) {
            std::string dir = out + "/" + arms[ai].name + "-s" + std::to_string(seed);
            run_dirs[ai].label = arms[ai].name;
            run_dirs[ai].run_dirs.push_back(dir);
            TrainConfig c;
            c.model = model;
            c.data = data == "synthetic" ? "synthetic:train" : "fashion-mnist:train:captions";
            c.loss = arms[ai].loss;
            c.batch_size = batch;
            c.steps = steps;
            c.lr = lr;
            c.warmup = steps / 10;
            c.seed = uint64_t(seed);
            c.threads = threads;
            c.precision = precision;
            c.log_every = std::max<int64_t>(1, steps / 5);
            c.out = dir;
            c.keep_last = 1;
            c.eval_every = eval_every;
            check_same_config(dir, c);
            Metrics m = eval_at_step(dir, steps);  // a finished run's last evaluation
            if (m.empty()) {
                fs::remove_all(dir);  // an unfinished run starts over (its evaluation is what counts)
                TrainHooks hooks;
                hooks.evaluate = [&eval](const CLIP& model, const Tokenizer& tok, int64_t) {
                    return evaluate(model, eval, tok);
                };
                std::printf("\n== %s, seed %lld ==\n", arms[ai].name.c_str(), (long long)seed);
                std::fflush(stdout);
                TrainResult r = train(c, "", hooks);
                if (r.interrupted) return 130;
                m = r.last_eval;
            } else {
                std::printf("%s: finished, reusing its evaluation\n", dir.c_str());
            }
            results[ai].push_back(m);
        }
    double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count() / 60;

    std::vector<ReportColumn> columns;
    for (size_t ai = 0; ai < arms.size(); ai++) columns.push_back({arms[ai].name, results[ai]});
    const std::string table = report_table("metric (mean ± std over " + std::to_string(seeds) + " seeds)",
                                           report_rows(data), columns);
    fs::create_directories(out);
    std::ostringstream md;
    md << "# " << command << "\n\n"
       << "Model `" << model << "`, " << steps << " steps of batch " << batch << ", lr " << lr
       << " (warm-up " << steps / 10 << ", cosine), weight decay 0.1; " << precision
       << (precision == "bf16" ? " (autocast, fp32 master weights)" : "") << "; data " << data << "; seeds 0.." << seeds - 1
       << "; " << get_num_threads() << " CPU threads; " << int(minutes + 0.5) << " min for the runs done now.\n\n"
       << table;
    // every arm against the first, paired by seed
    for (size_t ai = 1; ai < arms.size() && seeds > 1; ai++)
        md << "\n## " << arms[ai].name << " against " << arms[0].name << ", paired by seed\n\n"
           << paired_table(report_rows(data), columns[0], columns[ai]);
    if (eval_every > 0) {
        plot_seed_bands(run_dirs, curve_keys(report_rows(data)), out + "/curves.svg",
                        "evaluations over training: mean and ± std over " + std::to_string(seeds) + " seeds");
        md << "\n## Learning curves\n\n![evaluations over training](curves.svg)\n";
    }
    write_file_atomic(out + "/results.md", md.str());
    Json all = Json::object();
    for (size_t ai = 0; ai < arms.size(); ai++) {
        Json runs = Json::array();
        for (const Metrics& m : results[ai]) runs.push_back(eval_metrics_json(m));
        all.set(arms[ai].name, runs);
    }
    write_file_atomic(out + "/results.json", all.dump(1) + "\n");
    std::printf("\n%s\nresults: %s/results.md, %s/results.json\n", table.c_str(), out.c_str(), out.c_str());
    return 0;
}
