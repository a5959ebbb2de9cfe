// tools/cmd_train.cpp
// defines: cmd_train, the `rankclip train` subcommand: flags -> TrainConfig -> train()
// (train/trainer.h). Exit status 0 when the run finished or stopped at --stop-at, 130 after
// Ctrl-C (a checkpoint was saved), 1 on an error.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tools/cli_args.h"
#include "eval/eval.h"
#include "train/trainer.h"

using namespace rankclip;

static void train_usage(std::FILE* out) {
    std::fprintf(out,
        "usage: rankclip train [options]\n"
        "  --model tiny|small|b32|b16|CONFIG.json   model (default tiny)\n"
        "  --loss clip|rankclip|cyclip|siglip       loss (default clip)\n"
        "  --data SPEC       synthetic[:train][:N] | fashion-mnist[:train]:captions | CSV | SHARDS | packed file\n"
        "                    | image folder (default synthetic)\n"
        "  --vocab FILE      BPE merges (default $RANKCLIP_VOCAB, else the synthetic vocabulary)\n"
        "  --batch-size N    (default 128)        --epochs N | --steps N   run length\n"
        "  --lr X (5e-4)  --wd X (0.1)  --beta1 X (0.9)  --beta2 X (0.999)  --eps X (1e-8)\n"
        "  --warmup N (0)    linear warm-up steps;  --schedule cosine|constant (cosine)\n"
        "  --grad-clip X     global gradient-norm clipping (default off)\n"
        "  --accum K         split each batch into K micro-batches, GradCache-style (exact gradients)\n"
        "  --seed S (0)  --threads T  --device cpu|cuda[:N]  --precision fp32|bf16  --workers N (2)\n"
        "  --no-augment      center crop instead of random resized crop (scale 0.9-1.0)\n"
        "  --out DIR         run directory (default runs/train): metrics.jsonl, checkpoints/, config.json\n"
        "  --resume DIR|CKPT continue a run exactly where its checkpoint left it. With it, --steps N or\n"
        "                    --epochs N extend the run (the schedule spans the new total); flags that set\n"
        "                    the run's numbers (--loss, --batch-size, --lr, --seed, ...) must equal the\n"
        "                    checkpoint's; --device moves the run; --out, --threads, --workers, --*-every,\n"
        "                    --keep-last, --stop-at apply\n"
        "  --log-every N (10)  --save-every N (0: at the end)  --keep-last K (3)  --stop-at STEP\n"
        "  --eval-every N    evaluate every N steps and at the end (default with --eval-every and no\n"
        "                    --eval-* dataset: every evaluation on the synthetic data), into metrics.jsonl\n"
        "  --eval-OPTION V   an option of rankclip eval, e.g. --eval-zeroshot synthetic,fashion-mnist\n"
        "                    --eval-retrieval synthetic --eval-limit 500 (see rankclip eval --help)\n"
        " RankCLIP (see docs/RANKCLIP.md):\n"
        "  --no-rank-cross | --no-rank-in     drop a consistency term (RankCLIP^I / RankCLIP^C)\n"
        "  --rank-schedule epoch-ramp|step-ramp|constant   weight w (default epoch-ramp:\n"
        "                    clamp(3 (e-1)/(E-1), 0, 2); runs shorter than 2 epochs use step-ramp)\n"
        "  --rank-weight W   w of the constant schedule (1)\n"
        "  --lambda-cross X | --lambda-in X   separate constant weights per term\n"
        "  --position-weights none|log        ListMLE position weights (paper v1: 1/ln(1+k))\n"
        " CyCLIP:  --cyclip-lambda-in X (0.25)  --cyclip-lambda-cross X (0.25)\n");
}

// The TrainConfig field (a key path of TrainConfig::to_json) each flag sets, for --resume
// (train/trainer.h: --steps/--epochs extend the run, --device moves it, the others must equal the
// checkpoint's).
// Flags not listed set output or execution settings, which a resumed run takes as given.
static const std::map<std::string, std::string>& run_number_flags() {
    static const std::map<std::string, std::string> fields{
        {"--model", "model"}, {"--loss", "loss.kind"}, {"--data", "data"}, {"--vocab", "vocab"},
        {"--batch-size", "batch_size"}, {"--epochs", "epochs"}, {"--steps", "steps"}, {"--lr", "lr"},
        {"--wd", "weight_decay"}, {"--beta1", "beta1"}, {"--beta2", "beta2"}, {"--eps", "eps"},
        {"--warmup", "warmup"}, {"--schedule", "schedule"}, {"--grad-clip", "grad_clip"}, {"--accum", "accum"},
        {"--seed", "seed"}, {"--device", "device"}, {"--precision", "precision"}, {"--no-augment", "augment"},
        {"--no-rank-cross", "loss.rank_cross"}, {"--no-rank-in", "loss.rank_in"},
        {"--rank-schedule", "loss.rank_schedule"}, {"--rank-weight", "loss.rank_weight"},
        {"--lambda-cross", "loss.lambda_cross"}, {"--lambda-in", "loss.lambda_in"},
        {"--position-weights", "loss.position_weighting"}, {"--cyclip-lambda-in", "loss.cyclip_lambda_in"},
        {"--cyclip-lambda-cross", "loss.cyclip_lambda_cross"}};
    return fields;
}

int cmd_train(int argc, char** argv) {
    TrainConfig c;
    std::string resume;
    std::vector<GivenSetting> given;   // the run's numbers given as flags, for --resume
    EvalConfig eval;
    bool evaluations_named = false;
    ArgReader args("train", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (auto field = run_number_flags().find(a); field != run_number_flags().end())
            given.push_back({a, field->second});
        if (a == "--help" || a == "-h") {
            train_usage(stdout);
            return 0;
        }
        else if (a == "--model") c.model = args.value();
        else if (a == "--loss") c.loss.kind = parse_loss_kind(args.value());
        else if (a == "--data") c.data = args.value();
        else if (a == "--vocab") c.vocab = args.value();
        else if (a == "--batch-size") c.batch_size = args.integer(1);
        else if (a == "--epochs") c.epochs = args.integer(1);
        else if (a == "--steps") c.steps = args.integer(1);
        else if (a == "--lr") c.lr = args.number();
        else if (a == "--wd") c.weight_decay = args.number();
        else if (a == "--beta1") c.beta1 = args.number();
        else if (a == "--beta2") c.beta2 = args.number();
        else if (a == "--eps") c.eps = args.number();
        else if (a == "--warmup") c.warmup = args.integer(0);
        else if (a == "--schedule") c.schedule = parse_lr_schedule(args.value());
        else if (a == "--grad-clip") c.grad_clip = args.number();
        else if (a == "--accum") c.accum = args.int_value(1);
        else if (a == "--seed") c.seed = uint64_t(args.integer(0));
        else if (a == "--threads") c.threads = args.int_value(1);
        else if (a == "--device") c.device = args.value();
        else if (a == "--precision") c.precision = args.value();
        else if (a == "--workers") c.workers = args.int_value(0);
        else if (a == "--no-augment") c.augment = false;
        else if (a == "--out") c.out = args.value();
        else if (a == "--resume") resume = args.value();
        else if (a == "--log-every") c.log_every = args.integer(1);
        else if (a == "--save-every") c.save_every = args.integer(0);
        else if (a == "--keep-last") c.keep_last = args.int_value(1);
        else if (a == "--stop-at") c.stop_at = args.integer(1);
        else if (a == "--eval-every") c.eval_every = args.integer(0);
        else if (a == "--no-rank-cross") c.loss.rank_cross = false;
        else if (a == "--no-rank-in") c.loss.rank_in = false;
        else if (a == "--rank-schedule") c.loss.rank_schedule = parse_rank_weight_schedule(args.value());
        else if (a == "--rank-weight") c.loss.rank_weight = args.number();
        else if (a == "--lambda-cross") c.loss.lambda_cross = args.number();
        else if (a == "--lambda-in") c.loss.lambda_in = args.number();
        else if (a == "--position-weights") {
            std::string v = args.value();
            RC_CHECK(v == "none" || v == "log", "train: --position-weights must be none or log, got '", v, "'");
            c.loss.position_weighting = v == "log" ? PositionWeighting::Log : PositionWeighting::None;
        }
        else if (a == "--cyclip-lambda-in") c.loss.cyclip_lambda_in = args.number();
        else if (a == "--cyclip-lambda-cross") c.loss.cyclip_lambda_cross = args.number();
        else if (a.rfind("--eval-", 0) == 0) {
            RC_CHECK(set_eval_option(eval, a.substr(7), args.value()), "train: unknown option '", a,
                     "' (see rankclip eval --help for the evaluation options)");
            evaluations_named = true;
        }
        else args.unknown();
    }
    TrainHooks hooks;
    if (evaluations_named || c.eval_every > 0) {
        if (eval.empty()) {  // --eval-every alone: the synthetic evaluations
            EvalConfig defaults = default_eval_config();
            eval.zero_shot = defaults.zero_shot, eval.retrieval = defaults.retrieval;
            eval.probe = defaults.probe, eval.consistency = defaults.consistency;
        }
        // built on first use, with the run's tokenizer (on resume: the checkpoint's)
        auto evaluator = std::make_shared<std::unique_ptr<Evaluator>>();
        hooks.evaluate = [eval, evaluator](const CLIP& model, const Tokenizer& tok, int64_t) {
            if (!*evaluator) *evaluator = std::make_unique<Evaluator>(eval, tok);
            return (*evaluator)->run(model);
        };
    }
    TrainResult r = train(c, resume, hooks, given);
    return r.interrupted ? 130 : 0;
}
