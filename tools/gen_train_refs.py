#!/usr/bin/env python3
"""tools/gen_train_refs.py
Writes tests/ref/train_parity_reference.safetensors: ten training steps of the tiny CLIP mirror
(tools/clip_mirror.py) with torch.optim.AdamW, which tests/test_train_parity.cpp repeats with
train/train_step.h (rankclip::train_step) and compares, for the clip and the rankclip losses.

Run: /usr/bin/python3 tools/gen_train_refs.py        (PyTorch 1.13, CPU, x86-64 with AVX2: the
C++ Generator reproduces torch's normal kernel and randperm, see engine/random.h). About a minute.
With TRAIN_PARITY_DUMP=/some/prefix set, it also writes each run's full final weights to
<prefix>.torch_<run>.safetensors; the C++ test, run with the same variable, writes
<prefix>.cpp_<run>.safetensors, for comparing a failure element by element.

Recipe (each run starts over from the same model):
  model       clip_mirror.CLIP(config "tiny" with vocab_size = 1000) after torch.manual_seed(0),
              equal bit for bit to rankclip::CLIP(config, Generator(0)) (tests/test_clip_parity.cpp)
  each step   zero_grad; V, T = encode_image / encode_text, each divided by its L2 norm; loss
              (clip: symmetric InfoNCE; rankclip: gen_loss_refs.rankclip_loss, the released
              listMLE, both terms on, constant w = 1, ties broken by torch.randperm on one
              torch.Generator().manual_seed(1234) kept across the steps); backward;
              clip_grad_norm_(max_norm = 1); lr = OpenCLIP's cosine schedule (base 5e-4, warm-up 3,
              10 steps); torch.optim.AdamW(betas (0.9, 0.999), eps 1e-8) with two groups: names
              containing "bn", "ln", "bias" or "logit_scale" get weight_decay 0, the others 0.1;
              then logit_scale.clamp_(0, ln 100).

Batches. A pool of POOL candidate batches, B = 16: images noise + offset, noise =
torch.randn((POOL, B, 3, 32, 32), generator=torch.Generator().manual_seed(1)) in one draw (the C++
test redraws it with randn(shape, Generator(1)) and checks the stored checksum: the images
themselves would be megabytes), offset (POOL, B, 3, 1, 1) randn, a colour shift per image: pure
noise images give nearly identical features at init (image-image cosines 0.98-0.99), which packs
the in-modal ListMLE targets too closely (below). Text (POOL, B, 32) ids from
[1, vocab_size - 1), an end-of-text id vocab_size - 1 at a random position >= 2 and zeros after.
Step t uses the first unused pool batch whose ListMLE targets (the rows of S, S^T, A, C from the
current torch model) have no two values closer than MIN_TARGET_GAP * s: rankclip's ranking must
not depend on float rounding, and the two implementations' targets differ by up to ~6e-7 s after
ten steps (measured). The rankclip run picks the batches; the clip run uses the same ones.

Ill-conditioned elements. AdamW divides by sqrt(v_hat) + eps, so an element whose gradients are
all tiny (next to eps = 1e-8, or to the rounding error of its tensor's gradient, ~1e-6 of the
tensor's largest) gets updates of up to lr driven by rounding noise, which no two
implementations share. The main case is the key slice [W, 2W) of every attention in_proj_bias:
its exact gradient is zero (a key bias shifts each query's scores by a constant, which the
softmax cancels), both sides compute ~1e-9 of noise. The condition of an element is the minimum
over the steps (of both runs) at which its v_hat > 0 of (sqrt(v_hat) + eps) / max |g| of its
tensor (g after clipping); elements never touched (token-embedding rows not yet seen: g and v
exactly 0) are not penalised. Statistics leave out elements of condition < EXCLUDE_COND (their
indices are stored); sampled elements are drawn from those of condition >= SAMPLE_COND.

File layout (<run> is "clip" or "rankclip"; STEPS = 10):
  images.noise_checksum F64 (4): sum, sum of squares, first, last of the noise pool, float64,
                        sequential in row-major order (np.cumsum), so C++ gets the same doubles
  images.checksum       F64 (4): the same over the STEPS images used, stacked in step order
  batch_index           I64 (STEPS) which pool batch's noise each step uses
  images.offsets        F32 (STEPS, B, 3, 1, 1) the offsets of the batches used
  text                  I64 (STEPS, B, 32) the text of the batches used
  lr                    F64 (STEPS) the learning rate of each step
  excluded.<param>      I32 (n) flat indices of the parameter's ill-conditioned elements (only
                        for parameters that have some)
  sample.<param>        I32 (k) flat indices of the compared elements, k = min(64, available),
                        sorted, from torch.Generator().manual_seed(7) randperm, state_dict order
  <run>.loss            F64 (STEPS) the loss of each step (computed in F32)
  <run>.grad_norm       F64 (STEPS) the global gradient norm before clipping
  <run>.part.<name>     F64 (STEPS) each part of the loss (train/losses.h's order)
  <run>.stats.<param>   F64 (STEPS, 4) after each step, over the elements not excluded: sum,
                        sum of |x|, L2 norm, max |x|
  <run>.final.<param>   F32 (k) the parameter's elements at sample.<param> after the last step
  rankclip.target_gap   F64 (STEPS) the smallest gap / s in the ListMLE targets of each step
  metadata              "config" (CLIPConfig JSON), "seed", "data_seed", "loss_seed", "steps",
                        "batch", "pool", "base_lr", "warmup", "weight_decay", "grad_clip",
                        "rank_weight", "min_target_gap", "exclude_cond", "sample_cond",
                        "param_order" (JSON list), "runs" (JSON list)
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_mirror  # noqa: E402
import gen_loss_refs  # noqa: E402  (the loss mirror: clip_loss, rankclip_loss, the released listMLE)
import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref",
                   "train_parity_reference.safetensors")
SEED = 0          # model init
DATA_SEED = 1     # images and text
LOSS_SEED = 1234  # rankclip's tie-break permutations
SAMPLE_SEED = 7   # which parameter elements are stored
VOCAB = 1000
STEPS = 10
BATCH = 16
POOL = 40
BASE_LR = 5e-4
WARMUP = 3
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
RANK_WEIGHT = 1.0
SAMPLES = 64
MIN_TARGET_GAP = 5e-6  # in units of s, ~8x the measured difference between the two sides' targets
EXCLUDE_COND = 1e-4
SAMPLE_COND = 1e-2
CFG = clip_mirror.config("tiny", vocab_size=VOCAB)
RANK_OPTS = dict(gen_loss_refs.DEFAULT_OPTS)
PARTS = {"clip": ["contrastive"], "rankclip": ["contrastive", "rank_cross", "rank_in"]}


def checksum(t):
    x = t.detach().reshape(-1).double().numpy()
    return torch.tensor([np.cumsum(x)[-1], np.cumsum(x * x)[-1], x[0], x[-1]], dtype=torch.float64)


def make_pool():
    """noise (POOL, B, 3, S, S), offsets (POOL, B, 3, 1, 1), text (POOL, B, L)."""
    g = torch.Generator().manual_seed(DATA_SEED)
    S, L, V = CFG["image_size"], CFG["context_length"], CFG["vocab_size"]
    noise = torch.randn((POOL, BATCH, 3, S, S), generator=g)
    offsets = torch.randn((POOL, BATCH, 3, 1, 1), generator=g)
    text = torch.randint(1, V - 1, (POOL, BATCH, L), generator=g)
    eot = torch.randint(2, L, (POOL, BATCH), generator=g)
    for k in range(POOL):
        for b in range(BATCH):
            p = int(eot[k, b])
            text[k, b, p] = V - 1
            text[k, b, p + 1:] = 0
    return noise, offsets, text


def learning_rate(step):
    """OpenCLIP's cosine_lr for a step counted from 0."""
    if step < WARMUP:
        return BASE_LR * (step + 1) / WARMUP
    e, es = step - WARMUP, STEPS - WARMUP
    return 0.5 * (1 + math.cos(math.pi * e / es)) * BASE_LR


def decays(name):
    return not any(k in name for k in ("bn", "ln", "bias", "logit_scale"))


def features(model, images, text):
    V = model.encode_image(images)
    T = model.encode_text(text)
    return V / V.norm(dim=-1, keepdim=True), T / T.norm(dim=-1, keepdim=True)


def min_target_gap(V, T, logit_scale):
    """Smallest gap (ties count as 0) between two values in a row of S, S^T, A, C, over s."""
    with torch.no_grad():
        s = logit_scale.exp()
        worst = math.inf
        for m in (V @ T.t(), T @ V.t(), V @ V.t(), T @ T.t()):
            ms, _ = (s * m).sort(dim=-1)
            worst = min(worst, float((ms[:, 1:] - ms[:, :-1]).min() / s))
        return worst


def run(kind, pool, schedule, cond):
    """Ten steps. schedule: pool indices of the batches (filled in here when empty). Updates cond
    (element conditions, see the docstring) and returns the per-step results and snapshots."""
    noise, offsets, text = pool
    torch.manual_seed(SEED)
    model = clip_mirror.CLIP(CFG)
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if decays(n)], "weight_decay": WEIGHT_DECAY},
              {"params": [p for n, p in named if not decays(n)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=BASE_LR, betas=(0.9, 0.999), eps=1e-8)
    loss_gen = torch.Generator().manual_seed(LOSS_SEED)
    out = {"loss": [], "grad_norm": [], "parts": {p: [] for p in PARTS[kind]}, "gap": [],
           "snapshots": []}
    choose = not schedule
    for step in range(STEPS):
        if choose:
            for k in range(POOL):
                if k in schedule:
                    continue
                with torch.no_grad():
                    gap = min_target_gap(*features(model, noise[k] + offsets[k], text[k]), model.logit_scale)
                if gap >= MIN_TARGET_GAP:
                    schedule.append(k)
                    break
            assert len(schedule) == step + 1, f"no pool batch with well-separated targets at step {step}"
        k = schedule[step]
        lr = learning_rate(step)
        opt.zero_grad()
        V, T = features(model, noise[k] + offsets[k], text[k])
        out["gap"].append(min_target_gap(V, T, model.logit_scale))
        if kind == "clip":
            loss = gen_loss_refs.clip_loss(V, T, model.logit_scale)
            parts = {"contrastive": loss}
        else:
            loss, parts = gen_loss_refs.rankclip_loss(V, T, model.logit_scale, RANK_OPTS, RANK_WEIGHT, loss_gen)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=GRAD_CLIP)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        for n, p in named:
            st = opt.state[p]
            v_hat = st["exp_avg_sq"] / (1 - 0.999 ** float(st["step"]))
            c = (v_hat.sqrt() + 1e-8) / p.grad.abs().max().clamp_min(1e-30)
            c = torch.where(v_hat == 0, torch.full_like(c, math.inf), c)
            cond[n] = torch.minimum(cond[n], c.reshape(-1))
        out["loss"].append(loss.item())
        out["grad_norm"].append(norm.item())
        for p in PARTS[kind]:
            out["parts"][p].append(float(parts[p]))
        out["snapshots"].append({n: p.detach().reshape(-1).clone() for n, p in named})
        print(f"{kind} step {step}: batch {k}, lr {lr:.3e}, loss {out['loss'][-1]:.6f}, "
              f"grad norm {out['grad_norm'][-1]:.6f}, target gap {out['gap'][-1]:.1e}")
    if os.environ.get("TRAIN_PARITY_DUMP"):  # full final weights, for diagnosing a failure
        safetensors_io.save(os.environ["TRAIN_PARITY_DUMP"] + f".torch_{kind}.safetensors",
                            {n: p.detach() for n, p in named})
    return out


def main():
    torch.set_num_threads(1)
    pool = make_pool()
    noise, offsets, text = pool
    torch.manual_seed(SEED)
    shapes = [(n, p.numel()) for n, p in clip_mirror.CLIP(CFG).named_parameters()]
    cond = {n: torch.full((numel,), math.inf) for n, numel in shapes}

    schedule = []
    results = {"rankclip": run("rankclip", pool, schedule, cond)}  # picks the batches
    results["clip"] = run("clip", pool, schedule, cond)

    index = torch.tensor(schedule, dtype=torch.int64)
    tensors = {"images.noise_checksum": checksum(noise), "images.checksum": checksum(noise[index] + offsets[index]),
               "batch_index": index, "images.offsets": offsets[index].clone(), "text": text[index].clone(),
               "lr": torch.tensor([learning_rate(s) for s in range(STEPS)], dtype=torch.float64)}
    g = torch.Generator().manual_seed(SAMPLE_SEED)
    keep, samples = {}, {}
    for n, numel in shapes:
        keep[n] = cond[n] >= EXCLUDE_COND
        if not keep[n].all():
            tensors[f"excluded.{n}"] = (~keep[n]).nonzero().reshape(-1).to(torch.int32)
        allowed = (cond[n] >= SAMPLE_COND).nonzero().reshape(-1)
        assert allowed.numel() > 0, f"{n}: no well-conditioned element to sample"
        idx, _ = allowed[torch.randperm(allowed.numel(), generator=g)[:min(SAMPLES, allowed.numel())]].sort()
        samples[n] = idx
        tensors[f"sample.{n}"] = idx.to(torch.int32)
    excluded = {n: int((~k).sum()) for n, k in keep.items() if not k.all()}
    print(f"excluded (condition < {EXCLUDE_COND:g}): {sum(excluded.values())} of "
          f"{sum(n for _, n in shapes)} elements in {len(excluded)} parameters; largest: "
          + ", ".join(f"{n} {c}" for n, c in sorted(excluded.items(), key=lambda x: -x[1])[:4]))

    for kind in ("clip", "rankclip"):
        r = results[kind]
        tensors[f"{kind}.loss"] = torch.tensor(r["loss"], dtype=torch.float64)
        tensors[f"{kind}.grad_norm"] = torch.tensor(r["grad_norm"], dtype=torch.float64)
        for p in PARTS[kind]:
            tensors[f"{kind}.part.{p}"] = torch.tensor(r["parts"][p], dtype=torch.float64)
        for n, _ in shapes:
            rows = []
            for snap in r["snapshots"]:
                x = snap[n][keep[n]].double()
                rows.append([float(x.sum()), float(x.abs().sum()), float(x.norm()), float(x.abs().max())])
            tensors[f"{kind}.stats.{n}"] = torch.tensor(rows, dtype=torch.float64)
            tensors[f"{kind}.final.{n}"] = r["snapshots"][-1][n][samples[n]].clone()
    tensors["rankclip.target_gap"] = torch.tensor(results["rankclip"]["gap"], dtype=torch.float64)
    print("smallest target gap / s: rankclip run " + " ".join(f"{x:.1e}" for x in results["rankclip"]["gap"]))

    metadata = {
        "config": json.dumps({k: CFG[k] for k in clip_mirror.CONFIG_FIELDS + ["quick_gelu"]}),
        "seed": str(SEED), "data_seed": str(DATA_SEED), "loss_seed": str(LOSS_SEED), "steps": str(STEPS),
        "batch": str(BATCH), "pool": str(POOL), "base_lr": repr(BASE_LR), "warmup": str(WARMUP),
        "weight_decay": repr(WEIGHT_DECAY), "grad_clip": repr(GRAD_CLIP), "rank_weight": repr(RANK_WEIGHT),
        "min_target_gap": repr(MIN_TARGET_GAP), "exclude_cond": repr(EXCLUDE_COND),
        "sample_cond": repr(SAMPLE_COND), "param_order": json.dumps([n for n, _ in shapes]),
        "runs": json.dumps(list(PARTS)),
    }
    safetensors_io.save(OUT, tensors, metadata)
    print(f"{os.path.normpath(OUT)}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
