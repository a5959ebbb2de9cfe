#!/usr/bin/python3
"""tools/bench_models_torch.py: the PyTorch twin of bench/bench_models.cpp.

Times the same cases on the PyTorch mirror of the model (tools/clip_mirror.py, OpenAI CLIP's
layout, same config) with the same batch shapes and method, and prints the same JSON lines with
"impl": "pytorch", for tools/bench_compare.py:
  clip_<name>_fwd      forward under torch.no_grad(): features, normalisation, logits
  clip_<name>_fwd_bwd  forward, CLIP loss (clip_mirror.clip_loss), backward; gradients set to
                       None before each step
  clip_<name>_train_<loss>[_bf16]  a full training step as train/train_step.h runs it: gradients
                       set to None; normalised features of both towers (bf16: under
                       torch.autocast("cpu"/"cuda", bfloat16), then cast to fp32, as ours runs
                       them under AutocastGuard; the weights, the loss and AdamW stay fp32); the
                       loss on (V, T, logit_scale) (clip; rankclip with weight w = 1: the released
                       code's listMLE, cross-modal and in-modal terms, each / 32, / B; cyclip;
                       siglip with logit_bias); loss.item() (the finiteness check); backward; the
                       global gradient L2 norm, read back; torch.optim.AdamW (lr 5e-4, betas
                       (0.9, 0.999), eps 1e-8, weight decay 0.1 except for names containing
                       "bn", "ln", "bias" or "logit_scale", as train/optimizer.h); logit_scale
                       clamped to [0, ln 100]. Batch 128 (tiny) or 64 (small), --losses,
                       --precisions. Their lines add "precision", "min_ms", "peak_rss_mb" (this
                       process's peak resident set, VmHWM) and "base_rss_mb" (resident before the
                       model was built: the interpreter and torch's libraries).
Peak memory is per process, so when this run has more than one case, each training step runs in a
child process of its own (this script again, for that case alone), as bench_models does.
Method: one untimed warm-up step, then timed steps until at least 10 steps and 0.3 s, or at
least 3 steps and 1.5 s; the median is reported. Run it with /usr/bin/python3 (Debian's
python3-torch); tools/torch_env.py sets PyTorch's configuration (BLAS threads and kernels, ATen's
AVX-512 kernels, the OpenMP wait policy, tcmalloc) and every line records it.

Usage: bench_models_torch.py [--threads N] [--quick] [--device cpu|cuda] [--configs tiny,small]
                             [--batch N] [--losses clip,rankclip|none] [--precisions fp32,bf16]
                             [--kinds fwd,fwd_bwd,train] [--warmup N] [--steps N]
  --warmup, --steps: N untimed, then exactly N timed steps instead of the time rule (the way
  `rankclip bench --compare-torch` runs it, matching its own --warmup and --steps)
  --profile N: after a training-step case, N more steps under torch.profiler; its table (operators
  by self device time on CUDA, by self CPU time on the CPU) goes to stderr, beside what
  `rankclip bench --profile` prints for ours
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_env  # noqa: E402

torch = clip_mirror = None  # imported by main(), after torch_env has set the environment

DEFAULT_BATCH = {"tiny": 64, "small": 32, "b32": 32, "b16": 32}
DEFAULT_TRAIN_BATCH = {"tiny": 128, "small": 64, "b32": 64, "b16": 64}
LOSSES = ("clip", "rankclip", "cyclip", "siglip")


def round4(x):
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, 3 - int(math.floor(math.log10(abs(x)))))


def time_median(step, sync, args):
    """(median ms, runs, fastest ms) of `step` by the shared method, or, with --steps N, of exactly
    --warmup untimed and N timed steps (as `rankclip bench` runs, for --compare-torch)."""
    min_s, slow_s = (0.05, 0.2) if args.quick else (0.3, 1.5)
    min_runs = 3 if args.quick else 10
    for _ in range(args.warmup):
        step()
    sync()
    ms, total = [], 0.0
    while (len(ms) < args.steps if args.steps else
           not ((len(ms) >= min_runs and total >= min_s) or (len(ms) >= 3 and total >= slow_s))):
        t0 = time.perf_counter()
        step()
        sync()
        s = time.perf_counter() - t0
        ms.append(s * 1e3)
        total += s
    return statistics.median(ms), len(ms), min(ms)


def random_batch(cfg, B, device):
    """B images (B, 3, S, S) and B token rows (B, L) of ids in [1, V - 1), each ended by the
    end-of-text id V - 1 at a row-dependent position in [L/2, L), zeros after it (as
    bench/bench_train_step.h random_batch; the values differ, the layout is the same)."""
    S, L, V = cfg["image_size"], cfg["context_length"], cfg["vocab_size"]
    images = torch.randn(B, 3, S, S).to(device)
    ids = torch.randint(1, V - 1, (B, L))
    for b in range(B):
        eot = min(L - 1, L // 2 + b % max(L // 2, 1))
        ids[b, eot] = V - 1
        ids[b, eot + 1:] = 0
    return images, ids.to(device)


def sync_of(device):
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def print_case(name, kind, B, S, device, timing, **extra):
    median_ms, runs, _ = timing
    line = {"impl": "pytorch", "version": torch.__version__, "device": str(device), "case": f"clip_{name}_{kind}",
            "shape": f"{B}x3x{S}x{S}", "batch": B}
    line.update(extra)
    line.update({"threads": torch.get_num_threads(), "runs": runs, "median_ms": round4(median_ms),
                 "images_per_s": round4(B / (median_ms * 1e-3))})
    line.update(torch_env.describe(torch))
    print(json.dumps(line), flush=True)


def bench_config(name, kind, args, device):
    cfg = clip_mirror.config(name)
    B = args.batch or (8 if args.quick else DEFAULT_BATCH[name])
    S = cfg["image_size"]
    torch.manual_seed(1234)
    model = clip_mirror.CLIP(cfg).to(device)
    images, ids = random_batch(cfg, B, device)

    def forward():
        with torch.no_grad():
            model(images, ids)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        _, _, logits_per_image, _ = model(images, ids)
        clip_mirror.clip_loss(logits_per_image).backward()

    step = forward if kind == "fwd" else forward_backward
    print_case(name, kind, B, S, device, time_median(step, sync_of(device), args))


# ---- the training step's losses, as train/losses.h (and tools/gen_loss_refs.py, in float64) ----

def clip_loss(V, T, logit_scale):
    return clip_mirror.clip_loss(logit_scale.exp() * V @ T.t())


def list_mle(y_pred, y_true, g):
    """The released RankCLIP listMLE: rows ranked by y_true (ties broken by one random column
    permutation), mean over rows of the Plackett-Luce NLL of y_pred; eps 1e-10 inside the log."""
    B = y_pred.shape[-1]
    perm = torch.randperm(B, generator=g).to(y_pred.device)
    y_pred, y_true = y_pred[:, perm], y_true[:, perm]
    _, order = y_true.sort(descending=True, dim=-1, stable=True)
    ranked = torch.gather(y_pred, 1, order)
    ranked = ranked - ranked.max(dim=1, keepdim=True)[0]
    cumsums = torch.cumsum(ranked.exp().flip(dims=[1]), dim=1).flip(dims=[1])
    return torch.mean(torch.sum(torch.log(cumsums + 1e-10) - ranked, dim=1))


def rankclip_loss(V, T, logit_scale, g, w=1.0):
    s = logit_scale.exp()
    S, A, C = s * V @ T.t(), s * V @ V.t(), s * T @ T.t()
    cross = (list_mle(S, S.t(), g) + list_mle(S.t(), S, g)) / 32
    in_modal = (list_mle(A, C, g) + list_mle(C, A, g)) / 32
    return clip_loss(V, T, logit_scale) + (w * cross + w * in_modal) / V.shape[0]


def cyclip_loss(V, T, logit_scale, lambda_in=0.25, lambda_cross=0.25):
    B = V.shape[0]
    L_I = ((V @ V.t() - T @ T.t()) ** 2).sum() / B
    L_C = ((V @ T.t() - T @ V.t()) ** 2).sum() / B
    return clip_loss(V, T, logit_scale) + lambda_in * L_I + lambda_cross * L_C


def siglip_loss(V, T, logit_scale, logit_bias):
    logits = logit_scale.exp() * V @ T.t() + logit_bias
    z = 2 * torch.eye(V.shape[0], dtype=logits.dtype, device=logits.device) - 1
    return -torch.nn.functional.logsigmoid(z * logits).sum() / V.shape[0]


def decays_weight(name):
    """train/optimizer.h's groups: no weight decay for LayerNorms, biases and the temperature."""
    return not any(part in name for part in ("bn", "ln", "bias", "logit_scale"))


def bench_train_step(name, loss, precision, args, device):
    cfg = clip_mirror.config(name)
    B = args.batch or (8 if args.quick else DEFAULT_TRAIN_BATCH[name])
    S = cfg["image_size"]
    sync = sync_of(device)
    base_kb = torch_env.vm_kb("VmRSS")
    torch.manual_seed(1234)
    model = clip_mirror.CLIP(cfg)
    if loss == "siglip":  # OpenCLIP's SigLIP init, as train/trainer.cpp run_model_config
        model.logit_scale = torch.nn.Parameter(torch.tensor(math.log(10.0)))
        model.logit_bias = torch.nn.Parameter(torch.tensor(-10.0))
    model = model.to(device).train()
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if decays_weight(n)], "weight_decay": 0.1},
              {"params": [p for n, p in named if not decays_weight(n)], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=5e-4, betas=(0.9, 0.999), eps=1e-8)
    params = [p for _, p in named]
    images, ids = random_batch(cfg, B, device)
    g = torch.Generator().manual_seed(1235)
    max_logit_scale = math.log(100.0)
    case = f"clip_{name}_train_{loss}" + ("_bf16" if precision == "bf16" else "")

    def features():
        # bf16: the towers and the normalisation under autocast, as train_step.cpp encode() runs
        # them under AutocastGuard; the features then go to fp32 for the loss
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            V = model.encode_image(images)
            T = model.encode_text(ids)
            V = V / V.norm(dim=-1, keepdim=True)
            T = T / T.norm(dim=-1, keepdim=True)
        return V.float(), T.float()

    def step():
        optimizer.zero_grad(set_to_none=True)
        V, T = features()
        if loss == "clip":
            total = clip_loss(V, T, model.logit_scale)
        elif loss == "rankclip":
            total = rankclip_loss(V, T, model.logit_scale, g)
        elif loss == "cyclip":
            total = cyclip_loss(V, T, model.logit_scale)
        else:
            total = siglip_loss(V, T, model.logit_scale, model.logit_bias)
        if not math.isfinite(total.item()):
            raise RuntimeError(f"{case}: the loss is not finite")
        total.backward()
        grad_norm = torch.norm(torch.stack([torch.norm(p.grad.detach(), 2) for p in params]), 2)
        if not math.isfinite(grad_norm.item()):
            raise RuntimeError(f"{case}: the gradient norm is not finite")
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, max_logit_scale)

    timing = time_median(step, sync, args)
    extra = {"loss": loss, "precision": precision, "min_ms": round4(timing[2]),
             "peak_rss_mb": round4(torch_env.vm_kb("VmHWM") / 1024), "base_rss_mb": round4(base_kb / 1024)}
    if device.type == "cuda":
        extra["peak_cuda_mb"] = round4(torch.cuda.max_memory_allocated(device) / 2 ** 20)
    print_case(name, case[len(f"clip_{name}_"):], B, S, device, timing, **extra)
    if args.profile:
        profile_steps(step, sync, args.profile, device)


def profile_steps(step, sync, n, device):
    """n steps under torch.profiler; the operator table, per step, to stderr."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sync()
    t0 = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(n):
            step()
        sync()
    wall_ms = (time.perf_counter() - t0) * 1e3 / n
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    sys.stdout.flush()
    print(f"pytorch profile: {n} step(s), {wall_ms:.3f} ms per step under the profiler; totals below are "
          f"for all {n} steps", file=sys.stderr)
    print(prof.key_averages().table(sort_by=sort, row_limit=30), file=sys.stderr, flush=True)


def run_in_child(name, loss, precision):
    """This script again for one training step (the later flags override the earlier ones), so the
    case's peak resident set is its own. Its lines go straight to our stdout. True if it succeeded."""
    sys.stdout.flush()
    command = [sys.executable, os.path.abspath(__file__)] + sys.argv[1:] + [
        "--configs", name, "--losses", loss, "--precisions", precision, "--kinds", "train"]
    return subprocess.run(command).returncode == 0


def main():
    global torch, clip_mirror
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (default: all cores)")
    parser.add_argument("--quick", action="store_true", help="batch 8, shorter timing (CI smoke)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--configs", default="tiny,small", help="comma-separated preset names")
    parser.add_argument("--batch", type=int, default=0, help="batch size for every config")
    parser.add_argument("--losses", default="clip,rankclip",
                        help="training-step cases: comma-separated losses (clip, rankclip, cyclip, siglip) or none")
    parser.add_argument("--precisions", default="fp32,bf16", help="training-step cases: fp32, bf16 or both")
    parser.add_argument("--kinds", default="fwd,fwd_bwd,train", help="which kinds of case run (default all)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--steps", type=int, default=0, help="exactly N timed steps (default: the time rule)")
    parser.add_argument("--profile", type=int, default=0,
                        help="after each training-step case, N steps under torch.profiler (table to stderr)")
    args = parser.parse_args()
    split = lambda text: [x for x in text.split(",") if x and x != "none"]  # noqa: E731
    kinds, names, losses, precisions = split(args.kinds), split(args.configs), split(args.losses), split(args.precisions)
    for k in kinds:
        if k not in ("fwd", "fwd_bwd", "train"):
            parser.error(f"--kinds: unknown kind '{k}' (fwd, fwd_bwd, train)")
    for loss in losses:
        if loss not in LOSSES:
            parser.error(f"--losses: unknown loss '{loss}' (known: {', '.join(LOSSES)})")
    for p in precisions:
        if p not in ("fp32", "bf16"):
            parser.error(f"--precisions: unknown precision '{p}' (fp32, bf16)")

    torch = torch_env.load_torch(args.threads)  # may re-run this script with PyTorch's environment set
    if torch is None:
        print(json.dumps({"impl": "pytorch", "skip": "torch is not installed"}))
        return
    import clip_mirror as mirror
    clip_mirror = mirror
    if args.device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"impl": "pytorch", "skip": "no CUDA device"}))
        return
    device = torch.device("cuda:0" if args.device == "cuda" else "cpu")
    for name in names:
        if name not in clip_mirror.PRESETS:
            parser.error(f"--configs: unknown config '{name}' (known: {', '.join(clip_mirror.PRESETS)})")

    for name in names:
        for kind in ("fwd", "fwd_bwd"):
            if kind in kinds:
                bench_config(name, kind, args, device)
    train = [(n, l, p) for n in names for l in losses for p in precisions] if "train" in kinds else []
    alone = len(train) == 1 and kinds == ["train"]
    failed = False
    for case in train:
        if alone:
            bench_train_step(*case, args, device)
        else:
            failed |= not run_in_child(*case)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
