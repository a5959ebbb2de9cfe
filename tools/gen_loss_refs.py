#!/usr/bin/env python3
"""tools/gen_loss_refs.py
Writes tests/ref/loss_reference.safetensors: a PyTorch mirror of the four training losses of
docs/RANKCLIP.md (clip, rankclip, cyclip, siglip) and of the released RankCLIP code's
listMLE, with their values, parts and gradients, which tests/test_losses.cpp compares
train/losses.h against (in F64 and in F32).

Run: /usr/bin/python3 tools/gen_loss_refs.py        (PyTorch 1.13, CPU)

Every input is an F32-representable number (stored as F32), so the C++ test feeds the same
values to its F64 and F32 runs; every reference output is computed in float64 from them.
Features are already L2-normalised (in F32; the losses do not normalise).

File layout (one safetensors file, tools/safetensors_io.py):
  <case>.V, <case>.T               (B, D) F32 image / text features
  <case>.logit_scale               () F32; <case>.logit_bias () F32 for siglip only
  <case>.loss                      () F64 the total
  <case>.part.<name>               () F64 each part of train/losses.h's LossOutput, in its order:
                                      clip: contrastive; rankclip: contrastive, rank_cross, rank_in
                                      (unweighted L_cross / L_in, 0 when switched off);
                                      cyclip: contrastive, cyclip_in, cyclip_cross; siglip: sigmoid
  <case>.grad.V, .grad.T, .grad.logit_scale (, .grad.logit_bias)   F64 d total / d input
  listmle.<case>.scores, .targets  (N, B) F32
  listmle.<case>.order             (N, B) I64 the ranking: order[n, k] = column ranked k-th in
                                      targets' row n after the seeded tie-break shuffle
  listmle.<case>.value             () F64 ListMLE(scores, targets), the mean over rows
  listmle.<case>.grad              (N, B) F64 d value / d scores
  __metadata__["cases"]            JSON list: {"name", "kind", "B", "D", "seed", "rank_weight",
                                      "options": {rank_cross, rank_in, lambda_cross, lambda_in,
                                      position_weighting ("none"|"log"), cyclip_lambda_in,
                                      cyclip_lambda_cross}, "parts": [names]}
  __metadata__["listmle_cases"]    JSON list: {"name", "N", "B", "seed", "position_weighting"}

Randomness (train/losses.h): each ListMLE call draws torch.randperm(B, generator=g) from one
torch.Generator seeded with the case's seed, in the order ListMLE(S, S^T), ListMLE(S^T, S),
ListMLE(A, C), ListMLE(C, A), skipping switched-off terms; rankclip::Generator(seed) draws the
same permutations. Random features are redrawn (from the next feature seed) until no two
distinct values in any ListMLE target row are closer than 2e-5 * s (F32 rounding could swap
them); the tie cases use duplicated signed one-hot rows, whose dot products are exact in any
precision and summation order, so their ties survive F32.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref", "loss_reference.safetensors")
DT = torch.float64
LN_INV_007 = math.log(1 / 0.07)

tensors = {}
cases = []
listmle_cases = []


def f32(t):
    """t rounded to float32 values, held in float64."""
    return t.to(torch.float32).to(DT)


# ---- the losses, as docs/RANKCLIP.md and the released code write them ----

def position_weights(B, weighting):
    if weighting == "none":
        return None
    k = torch.arange(1, B + 1, dtype=DT)
    return 1.0 / torch.log(1.0 + k)  # mu_k = 1 / ln(1 + k)


def ranking(y_true, g):
    """The released code's shuffle + stable descending sort, as column indices of y_true."""
    B = y_true.shape[-1]
    random_indices = torch.randperm(B, generator=g)
    y_true_shuffled = y_true[:, random_indices]
    _, indices = y_true_shuffled.sort(descending=True, dim=-1, stable=True)
    return random_indices[indices]


def list_mle(y_pred, y_true, g, weighting="none", eps=1e-10):
    """The released RankCLIP listMLE (mean over rows of the Plackett-Luce NLL)."""
    B = y_pred.shape[-1]
    random_indices = torch.randperm(B, generator=g)
    y_pred_shuffled = y_pred[:, random_indices]
    y_true_shuffled = y_true[:, random_indices]
    _, indices = y_true_shuffled.sort(descending=True, dim=-1, stable=True)
    preds_sorted_by_true = torch.gather(y_pred_shuffled, dim=1, index=indices)
    max_pred_values, _ = preds_sorted_by_true.max(dim=1, keepdim=True)
    preds_sorted_by_true_minus_max = preds_sorted_by_true - max_pred_values
    cumsums = torch.cumsum(preds_sorted_by_true_minus_max.exp().flip(dims=[1]), dim=1).flip(dims=[1])
    observation_loss = torch.log(cumsums + eps) - preds_sorted_by_true_minus_max
    w = position_weights(B, weighting)
    if w is not None:
        observation_loss = observation_loss * w
    return torch.mean(torch.sum(observation_loss, dim=1))


def clip_loss(V, T, logit_scale):
    S = logit_scale.exp() * V @ T.t()
    labels = torch.arange(V.shape[0])
    return (F.cross_entropy(S, labels) + F.cross_entropy(S.t(), labels)) / 2


def rankclip_loss(V, T, logit_scale, opts, w, g):
    B = V.shape[0]
    s = logit_scale.exp()
    contrastive = clip_loss(V, T, logit_scale)
    weighting = opts["position_weighting"]
    zero = torch.zeros((), dtype=DT)
    L_cross, L_in = zero, zero
    if opts["rank_cross"]:
        S = s * V @ T.t()
        L_cross = (list_mle(S, S.t(), g, weighting) + list_mle(S.t(), S, g, weighting)) / 32
    if opts["rank_in"]:
        A = s * V @ V.t()
        C = s * T @ T.t()
        L_in = (list_mle(A, C, g, weighting) + list_mle(C, A, g, weighting)) / 32
    w_cross = opts["lambda_cross"] if opts["lambda_cross"] is not None else w
    w_in = opts["lambda_in"] if opts["lambda_in"] is not None else w
    total = contrastive + (w_cross * L_cross + w_in * L_in) / B
    return total, {"contrastive": contrastive, "rank_cross": L_cross, "rank_in": L_in}


def cyclip_loss(V, T, logit_scale, opts):
    B = V.shape[0]
    contrastive = clip_loss(V, T, logit_scale)
    L_I = ((V @ V.t() - T @ T.t()) ** 2).sum() / B
    L_C = ((V @ T.t() - T @ V.t()) ** 2).sum() / B
    total = contrastive + opts["cyclip_lambda_in"] * L_I + opts["cyclip_lambda_cross"] * L_C
    return total, {"contrastive": contrastive, "cyclip_in": L_I, "cyclip_cross": L_C}


def siglip_loss(V, T, logit_scale, logit_bias):
    B = V.shape[0]
    logits = logit_scale.exp() * V @ T.t() + logit_bias
    z = 2 * torch.eye(B, dtype=DT) - 1
    total = -F.logsigmoid(z * logits).sum() / B
    return total, {"sigmoid": total}


# ---- inputs ----

def random_features(B, D, seed):
    g = torch.Generator().manual_seed(seed)
    V = F.normalize(torch.randn(B, D, generator=g, dtype=DT), dim=-1)
    T = F.normalize(torch.randn(B, D, generator=g, dtype=DT), dim=-1)
    return f32(V), f32(T)


def tied_features():
    """B = 8, D = 16: duplicated rows of signed one-hot vectors, so S, A, C hold only -s, 0 and s:
    exact ties everywhere (tied row maxima included), in any precision and summation order (each
    dot product has at most one non-zero term)."""
    def e(i, sign=1.0):
        v = torch.zeros(16, dtype=DT)
        v[i] = sign
        return v

    V = torch.stack([e(0), e(1), e(0), e(2, -1), e(2), e(3), e(1), e(0, -1)])
    T = torch.stack([e(0), e(0), e(1), e(2), e(2, -1), e(3), e(4), e(1)])
    return V, T


def min_gap_ok(y, tol):
    """Every pair of values in each row of y is equal or at least tol apart."""
    ys, _ = y.sort(dim=-1)
    d = ys[:, 1:] - ys[:, :-1]
    return bool(((d == 0) | (d > tol)).all())


def targets_well_separated(V, T, logit_scale):
    s = math.exp(logit_scale)
    tol = 2e-5 * s
    S, A, C = s * V @ T.t(), s * V @ V.t(), s * T @ T.t()
    return all(min_gap_ok(m, tol) for m in (S, S.t(), A, C))


def pick_features(B, D, feature_seed, logit_scale):
    for attempt in range(100):
        V, T = random_features(B, D, feature_seed + 1000 * attempt)
        if targets_well_separated(V, T, logit_scale):
            return V, T
    raise RuntimeError(f"no well-separated features for B={B} seed {feature_seed}")


DEFAULT_OPTS = {"rank_cross": True, "rank_in": True, "lambda_cross": None, "lambda_in": None,
                "position_weighting": "none", "cyclip_lambda_in": 0.25, "cyclip_lambda_cross": 0.25}
PARTS = {"clip": ["contrastive"], "rankclip": ["contrastive", "rank_cross", "rank_in"],
         "cyclip": ["contrastive", "cyclip_in", "cyclip_cross"], "siglip": ["sigmoid"]}


def add_case(name, kind, B=8, D=16, seed=0, feature_seed=None, logit_scale=LN_INV_007, logit_bias=None,
             rank_weight=1.0, ties=False, **opts):
    o = dict(DEFAULT_OPTS)
    o.update(opts)
    ls32 = float(torch.tensor(logit_scale, dtype=torch.float32))
    if ties:
        V, T = tied_features()
        B, D = V.shape
        assert targets_well_separated(V, T, ls32)
    else:
        V, T = pick_features(B, D, seed + 7919 if feature_seed is None else feature_seed, ls32)
    V = V.clone().requires_grad_(True)
    T = T.clone().requires_grad_(True)
    ls = torch.tensor(ls32, dtype=DT, requires_grad=True)
    leaves = {"V": V, "T": T, "logit_scale": ls}
    if kind == "clip":
        total = clip_loss(V, T, ls)
        parts = {"contrastive": total}
    elif kind == "rankclip":
        g = torch.Generator().manual_seed(seed)
        total, parts = rankclip_loss(V, T, ls, o, rank_weight, g)
    elif kind == "cyclip":
        total, parts = cyclip_loss(V, T, ls, o)
    elif kind == "siglip":
        lb = torch.tensor(float(torch.tensor(logit_bias, dtype=torch.float32)), dtype=DT, requires_grad=True)
        leaves["logit_bias"] = lb
        total, parts = siglip_loss(V, T, ls, lb)
    else:
        raise ValueError(kind)
    assert list(parts) == PARTS[kind]
    total.backward()
    for k, t in leaves.items():
        tensors[f"{name}.{k}"] = t.detach().to(torch.float32)
    tensors[f"{name}.loss"] = total.detach()
    for p in PARTS[kind]:
        tensors[f"{name}.part.{p}"] = parts[p].detach().reshape([])
    for k, t in leaves.items():
        assert t.grad is not None, f"{name}: no gradient for {k}"
        tensors[f"{name}.grad.{k}"] = t.grad.detach()
    cases.append({"name": name, "kind": kind, "B": B, "D": D, "seed": seed, "rank_weight": rank_weight,
                  "options": o, "parts": PARTS[kind]})


def add_listmle_case(name, scores, targets, seed, weighting="none"):
    N, B = scores.shape
    scores = f32(scores).clone().requires_grad_(True)
    targets = f32(targets)
    assert min_gap_ok(targets, 1e-4)
    order = ranking(targets, torch.Generator().manual_seed(seed))
    value = list_mle(scores, targets, torch.Generator().manual_seed(seed), weighting)
    value.backward()
    p = f"listmle.{name}"
    tensors[p + ".scores"] = scores.detach().to(torch.float32)
    tensors[p + ".targets"] = targets.to(torch.float32)
    tensors[p + ".order"] = order
    tensors[p + ".value"] = value.detach()
    tensors[p + ".grad"] = scores.grad.detach()
    listmle_cases.append({"name": name, "N": N, "B": B, "seed": seed, "position_weighting": weighting})


def main():
    # clip
    add_case("clip_b8", "clip", seed=1)
    add_case("clip_b8_s100", "clip", seed=2, logit_scale=math.log(100))
    add_case("clip_b33", "clip", B=33, seed=3)
    add_case("clip_ties", "clip", ties=True)
    # rankclip
    add_case("rankclip_b8", "rankclip", seed=10)
    add_case("rankclip_b33", "rankclip", B=33, seed=11)
    add_case("rankclip_b8_s100", "rankclip", seed=12, logit_scale=math.log(100))
    add_case("rankclip_cross_only", "rankclip", seed=13, rank_in=False)
    add_case("rankclip_in_only", "rankclip", seed=14, rank_cross=False)
    add_case("rankclip_lambdas", "rankclip", seed=15, rank_weight=0.7, lambda_cross=1.5, lambda_in=2.5)
    add_case("rankclip_lambda_cross_only_set", "rankclip", seed=16, rank_weight=0.5, lambda_cross=3.0)
    add_case("rankclip_logw", "rankclip", seed=17, position_weighting="log")
    add_case("rankclip_b33_logw", "rankclip", B=33, seed=18, position_weighting="log", rank_weight=2.0)
    add_case("rankclip_w05", "rankclip", seed=19, rank_weight=0.5)
    add_case("rankclip_w2", "rankclip", seed=20, rank_weight=2.0)
    add_case("rankclip_ties", "rankclip", seed=21, ties=True, rank_weight=2.0)
    add_case("rankclip_ties_seed2", "rankclip", seed=22, ties=True, rank_weight=2.0)
    add_case("rankclip_ties_logw", "rankclip", seed=23, ties=True, position_weighting="log")
    add_case("rankclip_ties_s100_cross", "rankclip", seed=24, ties=True, logit_scale=math.log(100), rank_in=False)
    # cyclip
    add_case("cyclip_b8", "cyclip", seed=30)
    add_case("cyclip_b33", "cyclip", B=33, seed=31, logit_scale=math.log(100))
    add_case("cyclip_lambdas", "cyclip", seed=32, cyclip_lambda_in=0.5, cyclip_lambda_cross=0.1)
    add_case("cyclip_ties", "cyclip", ties=True)
    # siglip
    add_case("siglip_b8", "siglip", seed=40, logit_scale=math.log(10), logit_bias=-10.0)
    add_case("siglip_b33", "siglip", B=33, seed=41, logit_scale=math.log(10), logit_bias=-10.0)
    add_case("siglip_s100_b0", "siglip", seed=42, logit_scale=math.log(100), logit_bias=0.0)
    add_case("siglip_clipscale", "siglip", seed=43, logit_scale=LN_INV_007, logit_bias=-5.0)
    add_case("siglip_ties", "siglip", ties=True, logit_scale=math.log(10), logit_bias=-10.0)

    # plain ListMLE: targets with ties (small integers), scores with a tied maximum
    g = torch.Generator().manual_seed(50)
    scores = torch.randn(5, 7, generator=g, dtype=DT) * 3
    targets = torch.randint(0, 3, (5, 7), generator=g).to(DT)
    scores[1, 2] = scores[1, 5] = scores[1].max() + 1  # a tied maximum in row 1
    scores[3] = 0.25                                     # a row of equal scores
    add_listmle_case("ties_n5_b7", scores, targets, seed=51)
    add_listmle_case("ties_n5_b7_logw", scores, targets, seed=52, weighting="log")
    scores = torch.randn(6, 33, generator=g, dtype=DT) * 10
    targets = torch.randint(0, 5, (6, 33), generator=g).to(DT)
    add_listmle_case("ties_n6_b33", scores, targets, seed=53)
    add_listmle_case("ties_n6_b33_logw", scores, targets, seed=54, weighting="log")
    scores = torch.randn(4, 9, generator=g, dtype=DT)
    targets = torch.randn(4, 9, generator=g, dtype=DT)
    add_listmle_case("distinct_n4_b9", scores, targets, seed=55)
    add_listmle_case("single_column", torch.tensor([[1.5], [-2.0]], dtype=DT), torch.tensor([[0.0], [1.0]], dtype=DT),
                     seed=56)

    meta = {"cases": json.dumps(cases), "listmle_cases": json.dumps(listmle_cases)}
    safetensors_io.save(OUT, tensors, meta)
    print(f"{os.path.normpath(OUT)}: {len(cases)} loss cases, {len(listmle_cases)} ListMLE cases, "
          f"{len(tensors)} tensors, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
