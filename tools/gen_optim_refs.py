#!/usr/bin/env python3
"""tools/gen_optim_refs.py — writes tests/ref/optim_reference.safetensors: torch.optim.AdamW
over 5 steps on one parameter (with given gradients), and the global gradient norm of a few
tensors as torch.nn.utils.clip_grad_norm_ computes it. Run with /usr/bin/python3 (torch CPU).

Tensors: adamw.param0 (initial), adamw.grad{k} and adamw.param{k+1} for k = 0..4;
norm.t{i} (inputs) and norm.total (0-d). Metadata "adamw": JSON of the hyper-parameters.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402

HYPER = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1}


def main():
    torch.manual_seed(0)
    out = {}
    param = torch.nn.Parameter(torch.randn(37, 3))
    out["adamw.param0"] = param.detach().clone()
    opt = torch.optim.AdamW([param], lr=HYPER["lr"], betas=(HYPER["beta1"], HYPER["beta2"]), eps=HYPER["eps"],
                            weight_decay=HYPER["weight_decay"])
    for k in range(5):
        grad = torch.randn(37, 3) * (0.1 + k)
        out[f"adamw.grad{k}"] = grad
        param.grad = grad.clone()
        opt.step()
        out[f"adamw.param{k + 1}"] = param.detach().clone()
    tensors = [torch.randn(5000) * 0.01, torch.randn(3, 7), torch.randn(4099)]
    for i, t in enumerate(tensors):
        out[f"norm.t{i}"] = t
    params = [torch.nn.Parameter(torch.zeros_like(t)) for t in tensors]
    for p, t in zip(params, tensors):
        p.grad = t.clone()
    out["norm.total"] = torch.nn.utils.clip_grad_norm_(params, max_norm=1e9).detach().reshape([])
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "ref", "optim_reference.safetensors")
    safetensors_io.save(path, out, {"adamw": json.dumps(HYPER)})
    print(f"{path}: {len(out)} tensors")


if __name__ == "__main__":
    main()
