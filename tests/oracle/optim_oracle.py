#!/usr/bin/python3
# Independent PyTorch reference for the C++ optimizer tests (tests/model/optim_test.cpp): torch.optim.Adam/AdamW/SGD,
# clip_grad_norm_ and a Muon written here from the reference semantics, run on fixed seeded inputs, saved as JSON.
"""Write tests/oracle/fixtures/optim_oracle.json.

Usage:
  /usr/bin/python3 tests/oracle/optim_oracle.py [--out tests/oracle/fixtures/optim_oracle.json]

Needs torch (Debian's python3-torch 1.13 is enough; CPU only). The fixture is committed, so the C++ tests never need
PyTorch; rerun this script only when the cases change.

Muon here follows the reference train_gpt.py semantics in torch ops:
  buf <- mu*buf + g (zero-initialised); u = g + mu*buf (Nesterov) or buf;
  X = u in bf16; X <- X/(||X||_F + 1e-7); transposed when rows > cols;
  repeat: A = X X^T; B = b*A + (c*A) A; X <- a*X + B X; transpose back;
  update = X * sqrt(max(1, rows/cols)), held in bf16; W <- W - lr*update; decoupled weight decay before or after.
Every bf16 tensor op rounds its result to bf16, with the semantics of CUDA, where the reference runs: matmuls
accumulate in fp32 (cuBLAS compute type 32F) and round once; Python scalars multiply in fp32 (opmath) and round once.
torch 1.13 on CPU does neither: it rounds the scalar to bf16 first (3.4445 -> 3.4375), and for small shapes its native
bf16 GEMM accumulates into the bf16 output. So the oracle states those two ops explicitly (fp32 op, then .bfloat16()).
The literal reference code run with plain torch CPU bf16 ops is also recorded ("newton_schulz_torch_cpu"), only to
measure how far that CPU-specific arithmetic lands from the CUDA semantics.
"""

import argparse
import json
import math
import os

import torch

SEED = 20240521
NS_COEFFS = (3.4445, -4.7750, 2.0315)
NS_EPS = 1e-7
STEPS = 4
PARAM_SHAPES = [("w_tall", (6, 4)), ("w_wide", (4, 6)), ("w_square", (8, 8)), ("v_bias", (5,))]
MATRIX_NAMES = ["w_tall", "w_wide", "w_square"]
ALL_NAMES = [name for name, _ in PARAM_SHAPES]


def floats(tensor):
    # 9 significant digits identify an fp32 value exactly.
    return [float(f"{v:.9g}") for v in tensor.detach().float().reshape(-1).tolist()]


def bf16_scalar_mul(scalar, tensor):
    # fp32 opmath, one rounding to bf16 (CUDA's behaviour; see the module docstring).
    return (tensor.float() * scalar).bfloat16()


def bf16_matmul(x, y):
    # fp32 accumulation of bf16 inputs, one rounding (cuBLAS with compute type 32F).
    return (x.float() @ y.float()).bfloat16()


def newton_schulz(g, steps, precision):
    a, b, c = NS_COEFFS
    if precision == "bf16":
        x = g.bfloat16()
        norm = x.norm()  # bf16 result, accumulated in fp32
        denom = (norm.float() + NS_EPS).bfloat16()
        x = (x.float() / denom.float()).bfloat16()
        smul, mm = bf16_scalar_mul, bf16_matmul
    else:
        x = g.float().clone()
        x = x / (x.norm() + NS_EPS)
        smul, mm = (lambda s, t: s * t), (lambda p, q: p @ q)  # noqa: E731
    transposed = g.size(0) > g.size(1)
    if transposed:
        x = x.T.contiguous()
    for _ in range(steps):
        gram = mm(x, x.T)
        poly = smul(b, gram) + mm(smul(c, gram), gram)
        x = smul(a, x) + mm(poly, x)
    return x.T.contiguous() if transposed else x


def newton_schulz_torch_cpu(g, steps):
    # The reference's arithmetic written with plain bf16 torch ops, as it behaves on torch's CPU kernels (diagnostic).
    a, b, c = NS_COEFFS
    x = g.bfloat16()
    x /= x.norm() + NS_EPS
    transposed = g.size(0) > g.size(1)
    if transposed:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        poly = b * gram + c * gram @ gram
        x = a * x + poly @ x
    return x.T if transposed else x


class OracleMuon:
    def __init__(self, params, lr, momentum, nesterov, weight_decay, decay_order, precision, backend_steps=5):
        self.params = params
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.decay_order = decay_order
        self.precision = precision
        self.backend_steps = backend_steps
        self.buffers = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self):
        for p, buf in zip(self.params, self.buffers):
            g = p.grad
            buf.mul_(self.momentum).add_(g)
            u = g.add(buf, alpha=self.momentum) if self.nesterov else buf
            x = newton_schulz(u, self.backend_steps, self.precision)
            scale = max(1, p.size(0) / p.size(1)) ** 0.5
            if self.precision == "bf16":
                update = bf16_scalar_mul(scale, x).float()
            else:
                update = x * scale
            decay = 1 - self.lr * self.weight_decay
            if self.decay_order == "before_update" and self.weight_decay != 0:
                p.mul_(decay)
            p.add_(update, alpha=-self.lr)
            if self.decay_order == "after_update" and self.weight_decay != 0:
                p.mul_(decay)


def make_inputs():
    gen = torch.Generator().manual_seed(SEED)
    inits = {name: torch.randn(shape, generator=gen) * 0.5 for name, shape in PARAM_SHAPES}
    grads = []
    for step in range(STEPS):
        scale = 1.0 / (1 + step)  # shrinking gradients make the steps differ in size
        grads.append({name: torch.randn(shape, generator=gen) * scale for name, shape in PARAM_SHAPES})
    return inits, grads


def run_case(case, inits, grads):
    names = case["params"]
    params = [inits[name].clone().requires_grad_(True) for name in names]
    options = case["options"]
    kind = case["optimizer"]
    if kind == "adam":
        opt = torch.optim.Adam(params, lr=case["lrs"][0], betas=(options["beta1"], options["beta2"]),
                               eps=options["eps"], weight_decay=options["weight_decay"])
    elif kind == "adamw":
        opt = torch.optim.AdamW(params, lr=case["lrs"][0], betas=(options["beta1"], options["beta2"]),
                                eps=options["eps"], weight_decay=options["weight_decay"])
    elif kind == "sgd":
        opt = torch.optim.SGD(params, lr=case["lrs"][0], momentum=options["momentum"],
                              weight_decay=options["weight_decay"], nesterov=options["nesterov"])
    elif kind == "muon":
        opt = OracleMuon(params, case["lrs"][0], case["momenta"][0], options["nesterov"], options["weight_decay"],
                         options["decay_order"], options["precision"])
    else:
        raise ValueError(kind)
    expected = []
    for step in range(STEPS):
        for p, name in zip(params, names):
            p.grad = grads[step][name].clone()
        if kind == "muon":
            opt.lr = case["lrs"][step]
            opt.momentum = case["momenta"][step]
        else:
            for group in opt.param_groups:
                group["lr"] = case["lrs"][step]
                if kind == "sgd":
                    group["momentum"] = case["momenta"][step]
        opt.step()
        expected.append([floats(p) for p in params])
    return expected


def momentum_warmup(step, start, end, warmup_steps):
    frac = min(step / warmup_steps, 1.0) if warmup_steps > 0 else 1.0
    return (1 - frac) * start + frac * end


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "fixtures", "optim_oracle.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    inits, grads = make_inputs()
    lrs = [0.04, 0.04, 0.03, 0.01]
    muon_momenta = [momentum_warmup(s, 0.85, 0.95, 3) for s in range(STEPS)]
    adam = {"beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.0}
    cases = [
        {"name": "adam", "optimizer": "adam", "options": adam, "params": ALL_NAMES, "lrs": lrs},
        {"name": "adam_l2", "optimizer": "adam", "options": dict(adam, weight_decay=0.1, beta2=0.999),
         "params": ALL_NAMES, "lrs": lrs},
        {"name": "adamw", "optimizer": "adamw", "options": dict(adam, weight_decay=0.04), "params": ALL_NAMES,
         "lrs": [0.02, 0.02, 0.015, 0.005]},
        {"name": "sgd", "optimizer": "sgd", "options": {"momentum": 0.9, "weight_decay": 0.0, "nesterov": False},
         "params": ALL_NAMES, "lrs": [0.05, 0.05, 0.04, 0.02], "momenta": [0.9] * STEPS},
        {"name": "sgd_nesterov_wd", "optimizer": "sgd",
         "options": {"momentum": 0.9, "weight_decay": 0.01, "nesterov": True},
         "params": ALL_NAMES, "lrs": [0.05, 0.05, 0.04, 0.02], "momenta": [0.9] * STEPS},
    ]
    for precision in ("f32", "bf16"):
        for name, nesterov, wd, order in (("", True, 0.0, "before_update"),
                                          ("_wd_before", True, 0.04, "before_update"),
                                          ("_wd_after_plain", False, 0.04, "after_update")):
            cases.append({"name": f"muon_{precision}{name}", "optimizer": "muon",
                          "options": {"nesterov": nesterov, "weight_decay": wd, "decay_order": order,
                                      "precision": precision},
                          "params": MATRIX_NAMES, "lrs": lrs, "momenta": muon_momenta})
    for case in cases:
        case["expected"] = run_case(case, inits, grads)

    clip = []
    for max_norm in (1.0, 100.0):
        clipped = [grads[0][name].clone().requires_grad_(False) for name in ALL_NAMES]
        holders = [torch.zeros_like(g, requires_grad=True) for g in clipped]
        for holder, g in zip(holders, clipped):
            holder.grad = g
        norm = torch.nn.utils.clip_grad_norm_(holders, max_norm)
        clip.append({"max_norm": max_norm, "norm": float(norm), "grads": [floats(h.grad) for h in holders]})

    newton_schulz_cases = []
    for precision in ("f32", "bf16"):
        outputs = [floats(newton_schulz(grads[0][name], 5, precision)) for name in MATRIX_NAMES]
        newton_schulz_cases.append({"precision": precision, "steps": 5, "inputs": MATRIX_NAMES, "outputs": outputs})
    torch_cpu_outputs = [floats(newton_schulz_torch_cpu(grads[0][name], 5)) for name in MATRIX_NAMES]

    fixture = {
        "about": "optim_oracle.py: torch " + torch.__version__ + ", seed " + str(SEED),
        "steps": STEPS,
        "params": [{"name": name, "shape": list(shape), "init": floats(inits[name])} for name, shape in PARAM_SHAPES],
        "grads": [[floats(grads[s][name]) for name in ALL_NAMES] for s in range(STEPS)],
        "cases": cases,
        "clip": clip,
        "newton_schulz": newton_schulz_cases,
        "newton_schulz_torch_cpu": {"steps": 5, "inputs": MATRIX_NAMES, "outputs": torch_cpu_outputs},
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
