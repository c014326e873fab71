#!/usr/bin/python3
# Independent PyTorch reference for the C++ quantizer tests (tests/model/quantize_test.cpp, tests/model/gptq_test.cpp):
# every post-training quantizer of the seed systems, written here from SEED-SYSTEMS.md §1.4–§5.4, run on seeded inputs.
"""Write tests/oracle/fixtures/quant_oracle.json.

Usage:
  /usr/bin/python3 tests/oracle/quant_oracle.py [--out tests/oracle/fixtures/quant_oracle.json]

Needs torch (Debian's python3-torch 1.13 is enough; CPU only; a few seconds). The fixture is committed, so the C++
tests never need PyTorch; rerun this script only when the cases change.

Rules, as implemented here (all arithmetic in torch float32 unless said otherwise; torch.round is half-to-even):
  quantile     torch.quantile(x, q), default linear interpolation.
  baseline     per row: c = quantile(|w_r|, 99.99984/100); f32 s = max(c/127, 1/127) divides clamp(w, -c, c);
               q = clamp(round(.), -127, 127); the stored scale is fp16(s). Per tensor: c from the flattened |w|,
               s = float32(c/127 in double) (1 when c = 0), stored f32.
  S1 search    per row, for p in (0.9999, 0.99995, 0.99999, 0.999995, 0.999999): f32 s = max(quantile(|w_r|, p)/D, 1/D),
               q = clamp(round(w/s), qmin, qmax), error = sum over the row of (w - q*s)^2; the row keeps the first p
               whose error is strictly below all earlier ones; fp16(s) stored. Grids [-32, 31]/31 and [-128, 127]/127.
  S2/S4 search for p in (0.999, 0.9995, 0.9999, 0.99999, 1.0): s = fp16(max(quantile(|w_r|, p)/31, 1/31)) (1.0 = row
               max), q = clamp(round(w/s), -31, 31); the tensor keeps the first p with strictly the lowest mean error.
  SDClip       s = fp16(max(max(k*std_r, 1e-8)/31, 1/31)), unbiased std; q = clamp(round(w/s), -31, 31).
  Hessian      H = sum over batches of X^T X / batches + damp*max(mean(diag), 1e-6)*I, in float64.
  GPTQ         dead columns (H_jj = 0) get H_jj = 1 and a zero weight column; H += damp*mean(diag)*I; act-order by
               descending diag(H) (stable sort, so ties keep column order); U = upper Cholesky factor of H^-1
               (cholesky, cholesky_inverse, cholesky upper), retried once with +0.1*mean(diag) if allowed; scales from
               the original W; per block, per column: q = clamp(round(w/s)), e = (w - q*s)/U_ii,
               W[:, i:end] -= e U[i, i:end]; then W[:, end:] -= E U[block, end:]; search keeps the first p with
               strictly the lowest mean((W - Q*s)^2) (W with dead columns zeroed). Run twice: in float64 (the C++
               engine's precision) and in float32 (the references' precision).
  pruning      candidates: |q| = 1 in per-row int6 tensors (qmax 31), listed by tensor then flat index, stably sorted
               by float32 s^2.

Some inputs are searched for (from the same seeded generator) so that a plausible near-miss gives a different answer
and the C++ test can tell: quantile vectors where an unfused lerp or a rank computed in double lands on another float,
S1 rows whose stored result changes if the error is scored with the fp16 scale, an all-floor matrix where every search
quantile ties (the first must win), and a GPTQ case whose Hessian is indefinite until the retry damping.
"""

import argparse
import json
import os

import torch

SEED = 20240613
INT8_CLIP_Q = 99.99984 / 100.0
ROW_SEARCH_QUANTILES = [0.9999, 0.99995, 0.99999, 0.999995, 0.999999]
TENSOR_SEARCH_QUANTILES = [0.999, 0.9995, 0.9999, 0.99999, 1.0]
SDCLIP_K = 12.85


def floats(tensor):
    # 9 significant digits identify an fp32 value exactly.
    return [float(f"{v:.9g}") for v in tensor.detach().float().reshape(-1).tolist()]


def ints(tensor):
    return [int(v) for v in tensor.detach().reshape(-1).tolist()]


def f16_bits(tensor):
    return [int(v) & 0xFFFF for v in tensor.detach().half().view(torch.int16).reshape(-1).tolist()]


def matrix_with_outliers(gen, row_scales, cols):
    rows = len(row_scales)
    w = torch.randn(rows, cols, generator=gen) * torch.tensor(row_scales, dtype=torch.float32)[:, None]
    spots = torch.randint(0, cols, (rows, 2), generator=gen)
    for r in range(rows):
        w[r, spots[r]] *= 6.0
    return w.float().contiguous()


# ---- Quantile -------------------------------------------------------------------------------------------------------

def quantile_cases(gen):
    cases = []
    fixed = [
        ([3.0, 1.0, 2.0], [0.0, 0.5, 1.0, 0.25]),
        ([4.0, 1.0, 3.0, 2.0], [0.5, 0.0, 1.0, 0.1, 0.9]),
        ([7.5], [0.0, 0.3, 1.0]),
        ([2.0, 2.0, 2.0, 5.0], [0.5, 0.75, 0.9]),
    ]
    for values, qs in fixed:
        x = torch.tensor(values, dtype=torch.float32)
        cases.append({"values": floats(x), "q": qs, "expected": floats(torch.stack([torch.quantile(x, q) for q in qs]))})
    # Vectors where torch's fused lerp (one rounding) and an unfused a + w*(b - a) (two roundings) disagree, so the
    # test can tell them apart.
    found = 0
    while found < 6:
        n = int(torch.randint(5, 200, (1,), generator=gen))
        x = torch.randn(n, generator=gen).abs().float()
        q = [INT8_CLIP_Q, 0.999, 0.9995, 0.3, 0.77][found % 5]
        ordered = torch.sort(x).values
        rank = torch.tensor(q, dtype=torch.float32) * (n - 1)
        below = int(rank.floor().item())
        weight = rank - below
        a, b = ordered[below], ordered[min(below + 1, n - 1)]
        unfused = a + weight * (b - a) if weight.item() < 0.5 else b - (b - a) * (1 - weight)
        expected = torch.quantile(x, q)
        if expected.item() != unfused.item():
            cases.append({"values": floats(x), "q": [q], "expected": floats(expected.reshape(1)),
                          "unfused": floats(unfused.reshape(1))})
            found += 1
    # Vectors where a rank computed in double (q*(n-1) without first rounding q to float32) lands elsewhere.
    found = 0
    while found < 3:
        n = int(torch.randint(100, 600, (1,), generator=gen))
        x = torch.randn(n, generator=gen).abs().float()
        q = [INT8_CLIP_Q, 0.99999, 0.999995][found % 3]
        ordered = torch.sort(x).values.double()
        rank = q * (n - 1)
        below = int(rank // 1)
        weight = rank - below
        a, b = ordered[below], ordered[min(below + 1, n - 1)]
        in_double = torch.tensor((a + weight * (b - a)).item(), dtype=torch.float32)
        expected = torch.quantile(x, q)
        if expected.item() != in_double.item():
            cases.append({"values": floats(x), "q": [q], "expected": floats(expected.reshape(1)),
                          "double_rank": floats(in_double.reshape(1))})
            found += 1
    for n in (17, 64, 200):
        x = torch.randn(n, generator=gen).abs().float()
        qs = [INT8_CLIP_Q] + ROW_SEARCH_QUANTILES + TENSOR_SEARCH_QUANTILES + [0.3, 0.77]
        cases.append({"values": floats(x), "q": qs, "expected": floats(torch.stack([torch.quantile(x, q) for q in qs]))})
    return cases


# ---- Baseline int8 ----------------------------------------------------------------------------------------------------

def baseline_per_row(w, clip_q=INT8_CLIP_Q, qmin=-127, qmax=127, divisor=127.0):
    clip = torch.quantile(w.abs(), clip_q, dim=1)
    lower = -clip[:, None]
    clipped = torch.maximum(torch.minimum(w, clip[:, None]), lower)
    scale = (clip / divisor).clamp_min(1.0 / divisor)  # f32; this is the divisor, fp16 only for storage
    q = torch.clamp(torch.round(clipped / scale[:, None]), qmin, qmax).to(torch.int64)
    return {"clip": floats(clip), "scale_f32": floats(scale), "scale_bits": f16_bits(scale), "q": ints(q)}


def baseline_per_tensor(w, clip_q=INT8_CLIP_Q, qmin=-127, qmax=127, divisor=127.0):
    clip = float(torch.quantile(w.abs().reshape(-1), clip_q).item())
    scale = torch.tensor(clip / divisor if clip > 0 else 1.0, dtype=torch.float32)
    q = torch.clamp(torch.round(torch.clamp(w, -clip, clip) / scale), qmin, qmax).to(torch.int64)
    return {"clip": float(f"{clip:.9g}"), "scale": floats(scale)[0], "q": ints(q)}


# ---- S1 per-row search ------------------------------------------------------------------------------------------------

def row_search(w, qmin, qmax, divisor, quantiles=ROW_SEARCH_QUANTILES):
    rows = w.shape[0]
    chosen, scales, qs = [], [], []
    for r in range(rows):
        row = w[r]
        best = None
        for index, p in enumerate(quantiles):
            clip = torch.quantile(row.abs(), p)
            scale = torch.clamp(clip / divisor, min=1.0 / divisor)
            q = torch.clamp(torch.round(row / scale), qmin, qmax)
            error = ((row - q * scale) ** 2).sum().item()
            if best is None or error < best[0]:
                best = (error, index, scale, q)
        chosen.append(best[1])
        scales.append(best[2])
        qs.append(best[3])
    scale = torch.stack(scales)
    return {"chosen_index": chosen, "scale_bits": f16_bits(scale), "q": ints(torch.stack(qs).to(torch.int64))}


def row_search_discriminating(gen, rows, cols, qmin, qmax, divisor):
    # Rows whose choice depends on scoring with the f32 scale (what S1 does) rather than its fp16 copy.
    found = []
    while len(found) < rows:
        row = matrix_with_outliers(gen, [1.0 + 2.0 * torch.rand(1, generator=gen).item()], cols)
        stored = {}
        for scale_kind in ("f32", "f16"):
            best = None
            for p in ROW_SEARCH_QUANTILES:
                scale = torch.clamp(torch.quantile(row[0].abs(), p) / divisor, min=1.0 / divisor)
                q = torch.clamp(torch.round(row[0] / scale), qmin, qmax)
                used = scale if scale_kind == "f32" else scale.half().float()
                error = ((row[0] - q * used) ** 2).sum().item()
                if best is None or error < best[0]:
                    best = (error, f16_bits(scale.reshape(1)) + ints(q))
            stored[scale_kind] = best[1]
        if stored["f32"] != stored["f16"]:
            found.append(row)
    return torch.cat(found).contiguous()


# ---- S2/S4 per-tensor search and S3 SDClip ----------------------------------------------------------------------------

def quantile_row_scales(w, p, divisor=31.0):
    clip = torch.quantile(w.abs(), p, dim=1) if p < 1.0 else w.abs().amax(dim=1)
    return (clip / divisor).clamp_min(1.0 / divisor).half()


def sdclip_row_scales(w, k, divisor=31.0):
    clip = (k * w.std(dim=1)).clamp_min(1e-8)
    return (clip / divisor).clamp_min(1.0 / divisor).half()


def round_to_grid(w, s16, qmin=-31, qmax=31):
    return torch.clamp(torch.round(w / s16.float()[:, None]), qmin, qmax)


def tensor_search(w, quantiles=TENSOR_SEARCH_QUANTILES):
    best = None
    errors = []
    for p in quantiles:
        s16 = quantile_row_scales(w, p)
        q = round_to_grid(w, s16)
        error = ((w - q * s16.float()[:, None]) ** 2).mean().item()
        errors.append(error)
        if best is None or error < best[0]:
            best = (error, p, s16, q)
    return {"chosen_quantile": best[1], "errors": errors, "scale_bits": f16_bits(best[2]),
            "q": ints(best[3].to(torch.int64))}


def sdclip(w, k):
    s16 = sdclip_row_scales(w, k)
    return {"std": floats(w.std(dim=1)), "scale_bits": f16_bits(s16), "q": ints(round_to_grid(w, s16).to(torch.int64))}


# ---- Hessian and GPTQ --------------------------------------------------------------------------------------------------

def hessian_of(batches, damp_fraction):
    cols = batches[0].shape[1]
    h = torch.zeros(cols, cols, dtype=torch.float64)
    for x in batches:
        xd = x.double()
        h += xd.T @ xd
    h /= len(batches)
    damp = damp_fraction * max(h.diagonal().mean().item(), 1e-6)
    h += damp * torch.eye(cols, dtype=torch.float64)
    return h


def upper_factor_of_inverse(h):
    lower = torch.linalg.cholesky(h)
    inverse = torch.cholesky_inverse(lower)
    return torch.linalg.cholesky(inverse, upper=True)


def gptq_columns(w, u, s, block, qmin=-31, qmax=31):
    w = w.clone()
    rows, cols = w.shape
    q_all = torch.zeros(rows, cols, dtype=torch.int64)
    for b0 in range(0, cols, block):
        b1 = min(b0 + block, cols)
        errors = torch.zeros(rows, b1 - b0, dtype=w.dtype)
        for i in range(b0, b1):
            column = w[:, i].clone()
            q = torch.clamp(torch.round(column / s), qmin, qmax)
            q_all[:, i] = q.to(torch.int64)
            e = (column - q * s) / u[i, i]
            w[:, i:b1] -= e[:, None] * u[i, i:b1][None, :]
            errors[:, i - b0] = e
        if b1 < cols:
            w[:, b1:] -= errors @ u[b0:b1, b1:]
    return q_all


def gptq(w32, hessian, rule, block, act_order, damp, retry, dtype, k=SDCLIP_K, quantiles=TENSOR_SEARCH_QUANTILES):
    rows, cols = w32.shape
    h = hessian.to(dtype).clone()
    dead = h.diagonal() == 0
    dead_index = dead.nonzero(as_tuple=True)[0]
    h[dead_index, dead_index] = 1.0
    h.diagonal().add_(damp * h.diagonal().mean())
    if act_order:
        perm = torch.sort(h.diagonal(), descending=True, stable=True).indices
    else:
        perm = torch.arange(cols)
    hp = h[perm][:, perm].clone()
    w = w32.to(dtype)[:, perm].clone()
    w[:, dead[perm]] = 0
    retried = False
    try:
        u = upper_factor_of_inverse(hp)
    except RuntimeError:
        if not retry:
            raise
        retried = True
        hp.diagonal().add_(0.1 * hp.diagonal().mean())
        u = upper_factor_of_inverse(hp)
    if rule == "sdclip":
        candidates = [(0.0, sdclip_row_scales(w32, k))]
    else:
        candidates = [(p, quantile_row_scales(w32, p)) for p in quantiles]
    best = None
    errors = []
    for p, s16 in candidates:
        s = s16.float().to(dtype)
        q = gptq_columns(w, u, s, block)
        error = ((w - q.to(dtype) * s[:, None]) ** 2).mean().item()
        errors.append(error)
        if best is None or error < best[0]:
            best = (error, p, s16, q)
    q = torch.empty_like(best[3])
    q[:, perm] = best[3]
    return {"q": ints(q), "scale_bits": f16_bits(best[2]), "chosen_quantile": best[1], "errors": errors,
            "retried": retried, "perm": ints(perm)}


def correlated_inputs(gen, n, cols, dead_column=None):
    z = torch.randn(n, cols, generator=gen)
    mixing = 0.4 * torch.eye(cols) + torch.randn(cols, cols, generator=gen) / cols ** 0.5
    x = (z @ mixing).float()
    if dead_column is not None:
        x[:, dead_column] = 0.0
    return x


def gptq_case(name, w, hessian, rule, block, act_order, damp, retry, inputs=None, collect_damp=None,
              store_hessian=True):
    # The Hessian is rounded to float32 once, and both runs and the C++ test start from that same matrix. A case with
    # inputs may leave it out: the test rebuilds it from the inputs (the accumulator, then the same f32 rounding).
    hessian = hessian.float().double()
    case = {
        "name": name, "rows": w.shape[0], "cols": w.shape[1], "w": floats(w),
        "rule": rule, "block": block, "act_order": act_order, "damp": damp, "retry": retry,
        "f64": gptq(w, hessian, rule, block, act_order, damp, retry, torch.float64),
        "f32": gptq(w, hessian, rule, block, act_order, damp, retry, torch.float32),
    }
    if store_hessian:
        case["hessian"] = floats(hessian)
    if inputs is not None:
        case["inputs"] = inputs  # the name of an entry of "hessian_inputs"
        case["collect_damp"] = collect_damp
    case["f32_f64_differences"] = sum(int(a != b) for a, b in zip(case["f64"]["q"], case["f32"]["q"]))
    return case


def gptq_cases(gen):
    cases = []
    inputs = {}
    # 16x64, blocks of 16: correlated inputs in 3 batches; S3 (SDClip, damp 0.01) and S4 (search, damp 0.005).
    w = matrix_with_outliers(gen, [0.5, 1.0, 0.3, 2.0, 0.8, 0.01, 0.6, 1.5, 0.4, 0.9, 1.2, 0.7, 0.2, 3.0, 0.5, 1.1], 64)
    batches = [correlated_inputs(gen, 32, 64) for _ in range(3)]
    inputs["x64"] = {"cols": 64, "batches": [floats(x) for x in batches]}
    cases.append(gptq_case("s3_16x64", w, hessian_of(batches, 0.01), "sdclip", 16, True, 0.01, True, "x64", 0.01))
    cases.append(gptq_case("s4_16x64", w, hessian_of(batches, 0.005), "search", 16, True, 0.005, False, "x64",
                           0.005, store_hessian=False))
    # 8x40 (40 is not a multiple of the block), input column 7 never active, no collection damping: a dead column.
    w = matrix_with_outliers(gen, [0.6, 1.0, 0.2, 2.5, 0.9, 0.4, 1.3, 0.05], 40)
    batches = [correlated_inputs(gen, 32, 40, dead_column=7) for _ in range(2)]
    inputs["x40_dead7"] = {"cols": 40, "batches": [floats(x) for x in batches]}
    cases.append(gptq_case("s3_8x40_dead", w, hessian_of(batches, 0.0), "sdclip", 16, True, 0.01, True, "x40_dead7",
                           0.0, store_hessian=False))
    cases.append(gptq_case("s4_8x40_no_act_order", w, hessian_of(batches, 0.005), "search", 16, False, 0.005, False,
                           "x40_dead7", 0.005, store_hessian=False))
    # 8x24, blocks of 8: an indefinite H (the smallest eigenvalue pushed below zero by 3% of mean(diag)), which the
    # first damping does not fix and S3's extra 0.1*mean(diag) does.
    w = matrix_with_outliers(gen, [0.7, 1.1, 0.3, 1.9, 0.8, 0.5, 1.4, 0.9], 24)
    x = correlated_inputs(gen, 96, 24)
    g = (x.double().T @ x.double()) / 96
    shift = torch.linalg.eigvalsh(g)[0].item() + 0.03 * g.diagonal().mean().item()
    h = g - shift * torch.eye(24, dtype=torch.float64)
    cases.append(gptq_case("s3_8x24_retry", w, h, "sdclip", 8, True, 0.01, True))
    # 4x16 with tiny weights: every quantile gives the 1/31 floor, the errors tie and the first quantile is kept.
    w = matrix_with_outliers(gen, [0.001, 0.002, 0.0005, 0.001], 16)
    x = correlated_inputs(gen, 64, 16)
    cases.append(gptq_case("s4_4x16_tie", w, hessian_of([x], 0.005), "search", 8, True, 0.005, False))
    return cases, inputs


# ---- Pruning order -------------------------------------------------------------------------------------------------------

def prune_order_case():
    tensors = [
        {"qmax": 31, "rows": 3, "cols": 5, "q": [1, 0, -1, 2, 1, -1, -1, 3, 0, 1, 1, 0, 0, -1, 5],
         "scale": [0.0625, 0.03125, 0.0625]},
        {"qmax": 127, "rows": 2, "cols": 3, "q": [1, -1, 1, 1, 1, -1], "scale": [0.001, 0.002]},
        {"qmax": 31, "rows": 2, "cols": 4, "q": [-1, 1, 0, 1, 2, -1, 1, 0], "scale": [0.03125, 0.0078125]},
    ]
    listed = []
    for t_index, t in enumerate(tensors):
        if t["qmax"] != 31:
            continue
        q = torch.tensor(t["q"]).reshape(t["rows"], t["cols"])
        s = torch.tensor(t["scale"], dtype=torch.float16)
        for flat in range(q.numel()):
            if abs(int(q.reshape(-1)[flat])) == 1:
                key = (s.float()[flat // t["cols"]] ** 2).item()
                listed.append((t_index, flat, key))
    listed.sort(key=lambda entry: entry[2])
    for t in tensors:
        t["scale_bits"] = f16_bits(torch.tensor(t["scale"], dtype=torch.float32))
        del t["scale"]
    return {"tensors": tensors, "order": [[t, flat] for t, flat, _ in listed]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "fixtures", "quant_oracle.json"))
    args = parser.parse_args()
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)

    baseline_w = matrix_with_outliers(gen, [2.0, 0.5, 0.02, 1.3, 5.0, 0.1, 3.0], 50)
    baseline_w[5] = 0.0  # an all-zero row: clip 0, the scale floor binds
    vector = (torch.randn(300, generator=gen) * 2.0).float()
    cube = (torch.randn(3, 4, 25, generator=gen) * 0.05).float()
    s1_int6 = matrix_with_outliers(gen, [0.8, 1.5, 0.02, 2.2, 0.6, 4.0], 64)
    s1_int8 = matrix_with_outliers(gen, [1.0, 3.0, 0.005, 0.7], 100)
    search_a = matrix_with_outliers(gen, [0.8, 1.5, 0.02, 2.2, 0.6, 4.0, 1.0, 0.3], 64)
    search_b = matrix_with_outliers(gen, [2.0, 0.01, 1.2, 0.9, 3.5], 33)
    sd_w = matrix_with_outliers(gen, [0.8, 1.5, 0.02, 2.2, 0.6, 4.0], 64)
    s1_discriminating = row_search_discriminating(gen, 3, 40, -32, 31, 31.0)
    search_floor = matrix_with_outliers(gen, [0.001, 0.002, 0.0005], 20)  # every scale is the 1/31 floor: a tie
    gptq_list, hessian_inputs = gptq_cases(gen)

    fixture = {
        "generator": "tests/oracle/quant_oracle.py",
        "seed": SEED,
        "torch_version": torch.__version__,
        "int8_clip_q": INT8_CLIP_Q,
        "quantile": quantile_cases(gen),
        "baseline_per_row": {"shape": list(baseline_w.shape), "w": floats(baseline_w), **baseline_per_row(baseline_w)},
        "baseline_per_tensor": [
            {"shape": list(vector.shape), "w": floats(vector), "qmin": -127, "qmax": 127,
             **baseline_per_tensor(vector)},
            {"shape": list(cube.shape), "w": floats(cube), "qmin": -127, "qmax": 127, **baseline_per_tensor(cube)},
            {"shape": list(vector.shape), "w": floats(vector), "qmin": -128, "qmax": 127,
             **baseline_per_tensor(vector, qmin=-128)},
        ],
        "row_search": [
            {"shape": list(s1_int6.shape), "w": floats(s1_int6), "qmin": -32, "qmax": 31, "divisor": 31.0,
             **row_search(s1_int6, -32, 31, 31.0)},
            {"shape": list(s1_int8.shape), "w": floats(s1_int8), "qmin": -128, "qmax": 127, "divisor": 127.0,
             **row_search(s1_int8, -128, 127, 127.0)},
            {"shape": list(s1_discriminating.shape), "w": floats(s1_discriminating), "qmin": -32, "qmax": 31,
             "divisor": 31.0, **row_search(s1_discriminating, -32, 31, 31.0)},
        ],
        "tensor_search": [
            {"shape": list(search_a.shape), "w": floats(search_a), **tensor_search(search_a)},
            {"shape": list(search_b.shape), "w": floats(search_b), **tensor_search(search_b)},
            {"shape": list(search_floor.shape), "w": floats(search_floor), **tensor_search(search_floor)},
        ],
        "sdclip": [
            {"shape": list(sd_w.shape), "w": floats(sd_w), "k": SDCLIP_K, **sdclip(sd_w, SDCLIP_K)},
            {"shape": list(sd_w.shape), "w": floats(sd_w), "k": 2.5, **sdclip(sd_w, 2.5)},
        ],
        "gptq": gptq_list,
        "hessian_inputs": hessian_inputs,
        "prune_order": prune_order_case(),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    for case in fixture["gptq"]:
        print(f"{case['name']}: f32 vs f64 integer differences {case['f32_f64_differences']} of {case['rows'] * case['cols']}, chosen f64 {case['f64']['chosen_quantile']} f32 "
              f"{case['f32']['chosen_quantile']}, retried {case['f64']['retried']}")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
