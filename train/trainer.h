// train/trainer.h
// defines: train(), the training loop behind `rankclip train`: model, data, loss, AdamW and the
// schedule from a TrainConfig; a progress line every log_every steps; metrics.jsonl; atomic
// checkpoints (the last keep_last kept); exact resume; a stop with a clear message on a
// non-finite loss or gradient; Ctrl-C saves a checkpoint and returns.
//
// Run directory (config.out):
//   metrics.jsonl                 one JSON object per log step ("type": "train") and per
//                                 evaluation ("type": "eval"), each with "step" and "epoch"
//                                 (written and read by train/metrics_log.h)
//   checkpoints/step_XXXXXXXX.safetensors   CLIP weights (OpenAI names) + AdamW moments +
//                                 metadata: the TrainConfig, steps done, the loss generator's
//                                 state. Written atomically (engine/atomic_file.h).
//   config.json                   the TrainConfig of the run, for people (written atomically;
//                                 a resume that extends the run records the new length)
//
// Exact resume: the data order and augmentation of step t depend only on (seed, t) (the loader's
// epoch order and per-sample seeds), the learning rate and RankCLIP weight only on t, and the
// rest of the state (weights, moments, step count, tie-break generator) is in the checkpoint;
// so N steps straight and k steps + resume + N - k steps give the same bits on the CPU with the
// same thread count.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "models/clip.h"
#include "train/metrics_log.h"   // Metrics
#include "train/train_config.h"

namespace rankclip {

class Tokenizer;

struct TrainHooks {
    // Evaluations every config.eval_every steps and at the end (unset: none). The model is in
    // eval mode and on the training device; `tok` is the run's tokenizer. The hook must not
    // change the model (an Evaluator encodes under NoGradGuard; its probe trains its own weights).
    std::function<Metrics(const CLIP& model, const Tokenizer& tok, int64_t step)> evaluate;
    // Called on every rank after each optimizer step with the model and the steps done (unset:
    // nothing); e.g. the tests compare the ranks' parameters.
    std::function<void(const CLIP& model, int64_t step)> after_step;
};

struct TrainResult {
    int64_t steps_done = 0;        // optimizer steps completed in total (including before a resume)
    int64_t total_steps = 0;       // the run's length
    double last_loss = 0.0;        // loss of the last step
    std::string checkpoint;        // the last checkpoint written
    bool interrupted = false;      // stopped by Ctrl-C (SIGINT) or SIGTERM, after saving
    Metrics last_eval;             // the last evaluation's results (empty if none ran)
};

// A setting given anew with --resume: its command-line flag (for messages) and the key path of
// TrainConfig::to_json() it sets ("batch_size", "loss.kind"), or "" for an output or execution
// setting (out, threads, workers, log/save/eval_every, keep_last, stop_at, evaluations).
struct GivenSetting {
    std::string flag;
    std::string field;
};

// `resume`: "" for a fresh run; a run directory (its latest checkpoint) or a checkpoint file.
// On resume the run's numbers come from the checkpoint's TrainConfig; from `config` the output
// and execution settings are taken (out, threads, log/save/eval_every, keep_last, stop_at,
// workers; config.out defaults to the checkpoint's run directory), and of the `settings` given:
// - "steps" / "epochs" extend (or shorten, not below the steps done) the run: the schedule's
//   total changes from the checkpoint's step on, said on stderr and recorded in config.json and
//   the next checkpoints;
// - "device" moves the run to another device (said on stderr when it differs);
// - any other field must equal the checkpoint's: otherwise an Error naming the flag and both
//   values (the steps so far were trained with the checkpoint's).
// Every metadata field the resume reads (run_format, train_config, step, loss_rng) is checked:
// an Error names the checkpoint, the field and what was expected; a step beyond the run's total
// is one. A torn last line of metrics.jsonl is dropped and said on stderr. At start-up the
// temporary files a killed run left (engine/atomic_file.h's names) are removed, and counted on
// stderr.
TrainResult train(const TrainConfig& config, const std::string& resume = "", const TrainHooks& hooks = {},
                  const std::vector<GivenSetting>& settings = {});

// The latest checkpoint (highest step) in `run_dir`/checkpoints, or "" when there is none.
std::string latest_checkpoint(const std::string& run_dir);

}  // namespace rankclip
