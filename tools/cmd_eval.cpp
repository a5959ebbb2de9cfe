// tools/cmd_eval.cpp
// defines: cmd_eval, the `rankclip eval` subcommand: loads a checkpoint, runs the evaluation
// suite of eval/eval.h (zero-shot classification, retrieval, linear probe, ranking consistency;
// with no task flags, all of them on the synthetic data), prints a table and optionally writes
// the metrics as JSON. Datasets are opened and checked before the model loads, so a typo in a
// path fails at once.
#include <cstdio>
#include <string>

#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "engine/atomic_file.h"
#include "engine/backend.h"
#include "engine/json.h"
#include "engine/ops.h"
#include "models/checkpoint.h"
#include "eval/eval.h"
#include "tools/cli_args.h"

using namespace rankclip;

static void eval_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: rankclip eval --checkpoint C [evaluations] [--vocab MERGES.txt.gz|synthetic]\n"
                 "                     [--device cpu|cuda[:N]] [--config NAME|FILE.json] [--out RESULTS.json]\n"
                 "                     [--threads T] [--quiet]\n"
                 "  evaluate a CLIP checkpoint; prints a table (accuracies and recalls as fractions, ranks\n"
                 "  1-based) and writes {\"checkpoint\", \"metrics\": {name: value}} to --out. With no\n"
                 "  evaluation flags: zero-shot on synthetic val and heldout, retrieval, linear probe and\n"
                 "  ranking consistency on synthetic val.\n"
                 "evaluations:\n%s"
                 "other options:\n"
                 "  --vocab FILE|synthetic     the tokenizer (default: the vocabulary the checkpoint was trained\n"
                 "                             with, else $RANKCLIP_VOCAB, else the synthetic data's)\n"
                 "  --config NAME|FILE.json    the model config, for checkpoints without one (PyTorch state dicts)\n"
                 "  --quiet                    no progress lines on stderr\n",
                 eval_options_help());
}

// The vocabulary a checkpoint was trained with: the "vocab" of its "train_config" metadata
// (written by `rankclip train`), or "" when it does not say.
static std::string checkpoint_vocab(const std::string& checkpoint) {
    const ClipCheckpointInfo info = read_clip_checkpoint_info(checkpoint);
    auto it = info.metadata.find("train_config");
    if (it == info.metadata.end()) return "";
    try {
        const Json config = Json::parse(it->second);
        const Json* vocab = config.find("vocab");
        return vocab && vocab->is_string() ? vocab->as_string() : "";
    } catch (const Error&) {
        return "";
    }
}

int cmd_eval(int argc, char** argv) {
    EvalConfig cfg;
    cfg.verbose = true;
    std::string checkpoint, vocab, out_path, config_arg;
    Device device = Device::cpu();
    ArgReader args("eval", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            eval_usage(stdout);
            return 0;
        } else if (a == "--checkpoint") checkpoint = args.value();
        else if (a == "--vocab") vocab = args.value();
        else if (a == "--device") device = parse_device(args.value());
        else if (a == "--config") config_arg = args.value();
        else if (a == "--out") out_path = args.value();
        else if (a == "--quiet") cfg.verbose = false;
        else if (a == "--threads") set_num_threads(args.int_value(1));
        else if (a.rfind("--", 0) == 0 && set_eval_option(cfg, a.substr(2), args.value())) {
        } else {
            args.unknown();
        }
    }
    RC_CHECK(!checkpoint.empty(), "eval: --checkpoint is required (see rankclip eval --help)");
    RC_CHECK(!device.is_cuda() || has_backend(DeviceType::CUDA), "eval: --device ", device.str(),
             ": no CUDA device is available to this build");
    if (cfg.empty()) {
        const EvalConfig defaults = default_eval_config();
        cfg.zero_shot = defaults.zero_shot;
        cfg.retrieval = defaults.retrieval;
        cfg.probe = defaults.probe;
        cfg.consistency = defaults.consistency;
    }

    // The tokenizer: --vocab, else the checkpoint's training vocabulary, else $RANKCLIP_VOCAB,
    // else the synthetic data's default.
    std::string vocab_from = "--vocab";
    if (vocab.empty()) vocab = checkpoint_vocab(checkpoint), vocab_from = "the checkpoint's training config";
    if (vocab.empty()) vocab = vocab_path_from_env(), vocab_from = "RANKCLIP_VOCAB";
    if (vocab.empty()) vocab = "synthetic", vocab_from = "default";
    Tokenizer file_tokenizer;
    const Tokenizer* tok = &synthetic_default_tokenizer();
    if (vocab != "synthetic") {
        file_tokenizer = Tokenizer::from_file(vocab);
        tok = &file_tokenizer;
    }

    Evaluator evaluator(cfg, *tok);   // opens and checks every dataset before the model loads

    ClipCheckpoint ck = load_clip(checkpoint, device, clip_config_option(config_arg));
    RC_CHECK(tok->vocab_size() <= ck.config.vocab_size, "eval: the vocabulary (", vocab, ", from ", vocab_from,
             ") has ", tok->vocab_size(), " tokens, more than the model's vocab_size ", ck.config.vocab_size,
             ": give the vocabulary the model was trained with (--vocab)");
    if (cfg.verbose)
        std::fprintf(stderr, "eval: %s on %s, vocabulary %s (%lld tokens)\n", checkpoint.c_str(), device.str().c_str(),
                     vocab.c_str(), (long long)tok->vocab_size());

    const EvalMetrics metrics = evaluator.run(*ck.model);
    std::fputs(format_eval_table(metrics).c_str(), stdout);
    if (!out_path.empty()) {
        Json result = Json::object();
        result.set("checkpoint", checkpoint);
        auto step = ck.metadata.find("step");
        if (step != ck.metadata.end()) {   // a number when it is one (rankclip train writes digits)
            const std::string& s = step->second;
            const bool digits = !s.empty() && s.size() < 19 && s.find_first_not_of("0123456789") == std::string::npos;
            result.set("step", digits ? Json(std::stoll(s)) : Json(s));
        }
        result.set("metrics", eval_metrics_json(metrics));
        write_file_atomic(out_path, result.dump(2) + "\n");
        if (cfg.verbose) std::fprintf(stderr, "eval: wrote %s\n", out_path.c_str());
    }
    return 0;
}
