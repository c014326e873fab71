#!/usr/bin/env python3
# Independent float64 PyTorch oracle for the challenge's baseline GPT, written from the spec (not from train_gpt.py):
# it writes the safetensors fixtures the C++ engine's golden tests compare loss and every gradient against.
"""Regenerate with:  /usr/bin/python3 tests/oracle/baseline_oracle.py   (from the repository root)

Writes into tests/oracle/fixtures/:
  baseline_tiny.safetensors      float64 params, grads, ids and loss for the tiny config
  baseline_tiny_f32.safetensors  the same weights cast to float32, float32 grads and loss_f32
  python_written.safetensors     a small file of every dtype, for the C++ reader's cross-language test
The output is deterministic for a given torch version (weights come from a seeded torch.Generator on the CPU).
"""

import json
import math
import os
import struct
import sys

import torch

# float32 machine epsilon, used even in float64: the C++ engine's RMSNorm uses this constant at every precision.
RMS_EPS = 1.1920928955078125e-07
SEED = 20240520
COMMAND = "/usr/bin/python3 tests/oracle/baseline_oracle.py"

TINY = dict(VOCAB_SIZE=32, NUM_LAYERS=3, MODEL_DIM=16, NUM_HEADS=4, NUM_KV_HEADS=2, MLP_MULT=2,
            ROPE_BASE=10000.0, LOGIT_SOFTCAP=30.0)
DEFAULTS = dict(VOCAB_SIZE=1024, NUM_LAYERS=9, MODEL_DIM=512, NUM_HEADS=8, NUM_KV_HEADS=4, MLP_MULT=2,
                ROPE_BASE=10000.0, LOGIT_SOFTCAP=30.0)
BATCH, SEQ = 2, 8


# ---------------------------------------------------------------------------------------------------------------
# safetensors, written by hand (no safetensors package) so the C++ reader is checked against a second implementation

ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
             torch.uint8: "U8", torch.int8: "I8"}


def tensor_entry(t):
    """(dtype name, shape, little-endian bytes) for a CPU tensor."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return "BF16", list(t.shape), t.view(torch.int16).numpy().tobytes()
    if t.dtype == torch.float16:
        return "F16", list(t.shape), t.view(torch.int16).numpy().tobytes()
    return ST_DTYPES[t.dtype], list(t.shape), t.numpy().tobytes()


def write_safetensors(path, entries, metadata):
    """entries: list of (name, (dtype, shape, bytes)); data is laid out in list order, header keys sorted."""
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for name, (dtype, shape, data) in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path + ".tmp", "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
    os.replace(path + ".tmp", path)


# ---------------------------------------------------------------------------------------------------------------
# the model

def param_shapes(cfg):
    """Parameter names and shapes in the C++ engine's order."""
    V, L, D = cfg["VOCAB_SIZE"], cfg["NUM_LAYERS"], cfg["MODEL_DIM"]
    H, Hkv, M = cfg["NUM_HEADS"], cfg["NUM_KV_HEADS"], cfg["MLP_MULT"]
    Dh = D // H
    enc = L // 2
    shapes = [("tok_emb.weight", (V, D)), ("skip_weights", (min(enc, L - enc), D))]
    for i in range(L):
        p = f"blocks.{i}."
        shapes += [(p + "attn.c_q.weight", (D, D)), (p + "attn.c_k.weight", (Hkv * Dh, D)),
                   (p + "attn.c_v.weight", (Hkv * Dh, D)), (p + "attn.proj.weight", (D, D)),
                   (p + "attn.q_gain", (H,)), (p + "mlp.fc.weight", (M * D, D)),
                   (p + "mlp.proj.weight", (D, M * D)), (p + "attn_scale", (D,)), (p + "mlp_scale", (D,)),
                   (p + "resid_mix", (2, D))]
    return shapes


def random_params(cfg, gen):
    """Every weight random (not the zero inits) so that every gradient is non-trivial."""
    def normal(shape, std):
        return torch.randn(shape, generator=gen, dtype=torch.float64) * std

    def around(shape, centre):
        return centre + (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * 0.2

    params = {}
    for name, shape in param_shapes(cfg):
        if name == "tok_emb.weight":
            # N(0, 1) would give logits of std ~sqrt(D) = 4 and a loss near 9; 0.3 keeps the loss near ln(V) while
            # the embedding still dominates the residual stream (RMSNorm makes its scale irrelevant there).
            params[name] = normal(shape, 0.3)
        elif name.endswith(".weight"):
            params[name] = normal(shape, 0.3)
        elif name.endswith("resid_mix"):
            params[name] = torch.stack([around(shape[1:], 1.0), around(shape[1:], 0.0)])
        elif name.endswith("q_gain"):
            params[name] = around(shape, 1.5)
        else:  # attn_scale, mlp_scale, skip_weights
            params[name] = around(shape, 1.0)
    return params


def rms_norm(x):
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + RMS_EPS)


def rope_tables(seq, head_dim, base, dtype):
    # Computed in float32 whatever the model dtype, as the C++ engine does, then cast.
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(seq, dtype=torch.float32), inv_freq)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos + x2 * sin, -x1 * sin + x2 * cos], dim=-1)


def attention(n, p, prefix, cfg, cos, sin):
    B, T, D = n.shape
    H, Hkv = cfg["NUM_HEADS"], cfg["NUM_KV_HEADS"]
    Dh = D // H
    q = (n @ p[prefix + "c_q.weight"].T).reshape(B, T, H, Dh).transpose(1, 2)
    k = (n @ p[prefix + "c_k.weight"].T).reshape(B, T, Hkv, Dh).transpose(1, 2)
    v = (n @ p[prefix + "c_v.weight"].T).reshape(B, T, Hkv, Dh).transpose(1, 2)
    q, k = rope(rms_norm(q), cos, sin), rope(rms_norm(k), cos, sin)
    q = q * p[prefix + "q_gain"].reshape(1, H, 1, 1)
    group = H // Hkv
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # head h reads KV head h // group
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(Dh)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    scores = scores.masked_fill(future, float("-inf"))
    y = torch.softmax(scores, dim=-1) @ v
    y = y.transpose(1, 2).reshape(B, T, D)
    return y @ p[prefix + "proj.weight"].T


def block(x, x0, p, i, cfg, cos, sin):
    b = f"blocks.{i}."
    mix = p[b + "resid_mix"]
    x = mix[0] * x + mix[1] * x0
    x = x + p[b + "attn_scale"] * attention(rms_norm(x), p, b + "attn.", cfg, cos, sin)
    h = torch.relu(rms_norm(x) @ p[b + "mlp.fc.weight"].T).square()
    return x + p[b + "mlp_scale"] * (h @ p[b + "mlp.proj.weight"].T)


def forward_loss(p, ids, targets, cfg):
    dtype = p["tok_emb.weight"].dtype
    B, T = ids.shape
    L, D, H = cfg["NUM_LAYERS"], cfg["MODEL_DIM"], cfg["NUM_HEADS"]
    cos, sin = rope_tables(T, D // H, cfg["ROPE_BASE"], dtype)
    x = rms_norm(p["tok_emb.weight"][ids])
    x0 = x
    enc = L // 2
    stack = []
    for i in range(enc):
        x = block(x, x0, p, i, cfg, cos, sin)
        stack.append(x)
    for j, i in enumerate(range(enc, L)):
        if stack:
            x = x + p["skip_weights"][j] * stack.pop()
        x = block(x, x0, p, i, cfg, cos, sin)
    logits = rms_norm(x) @ p["tok_emb.weight"].T
    cap = cfg["LOGIT_SOFTCAP"]
    logits = cap * torch.tanh(logits / cap)
    return torch.nn.functional.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T), reduction="mean")


def loss_and_grads(params, ids, targets, cfg, dtype):
    leaves = {name: t.detach().to(dtype).requires_grad_(True) for name, t in params.items()}
    loss = forward_loss(leaves, ids, targets, cfg)
    loss.backward()
    return loss.detach(), {name: t.grad.detach() for name, t in leaves.items()}, leaves


# ---------------------------------------------------------------------------------------------------------------

def directional_check(params, grads, ids, targets, cfg, gen, h=1e-5):
    """Autograd against a central difference along one random direction through every parameter at once."""
    direction = {n: torch.randn(t.shape, generator=gen, dtype=torch.float64) for n, t in params.items()}
    with torch.no_grad():
        plus = forward_loss({n: t + h * direction[n] for n, t in params.items()}, ids, targets, cfg)
        minus = forward_loss({n: t - h * direction[n] for n, t in params.items()}, ids, targets, cfg)
    numeric = ((plus - minus) / (2 * h)).item()
    analytic = sum((grads[n] * direction[n]).sum() for n in params).item()
    error = abs(numeric - analytic) / max(abs(analytic), 1e-12)
    assert error < 1e-6, (numeric, analytic)
    return error


def metadata(cfg, dtype_name):
    meta = {k: (str(int(v)) if float(v).is_integer() else str(v)) for k, v in cfg.items()}
    meta.update(TIE_EMBEDDINGS="1", QK_GAIN_INIT="1.5", BATCH_SIZE=str(BATCH), SEQ_LEN=str(SEQ),
                RMS_NORM_EPS=repr(RMS_EPS), SEED=str(SEED), DTYPE=dtype_name,
                TORCH_VERSION=torch.__version__, GENERATOR_COMMAND=COMMAND,
                ORACLE="independent PyTorch implementation of the baseline GPT from the spec (tests/oracle/README.md)")
    return meta


def python_written_entries():
    """Known values of every dtype, with bit patterns the C++ test checks exactly."""
    # The last f64 is a quiet NaN with payload 0x123, packed as bits so Python never touches it as a float.
    f64 = struct.pack("<4d", 1.5, -0.0, float("inf"), 0.0) + struct.pack("<Q", 0x7FF8000000000123)
    return [
        ("f32", ("F32", [2, 3], struct.pack("<6f", 0.0, -0.0, 1.0, -2.5, float("inf"), 3.0e-39))),
        ("f64", ("F64", [5], f64)),
        ("bf16", ("BF16", [3], struct.pack("<3H", 0x3F80, 0xC000, 0x7FC0))),  # 1, -2, NaN
        ("f16", ("F16", [2], struct.pack("<2H", 0x3C00, 0xBC00))),           # 1, -1
        ("i64", ("I64", [2, 2], struct.pack("<4q", -1, 2**40, 0, -(2**63)))),
        ("i32", ("I32", [3], struct.pack("<3i", -7, 0, 2**31 - 1))),
        ("u16", ("U16", [2], struct.pack("<2H", 0, 65535))),
        ("i8", ("I8", [2], struct.pack("<2b", -128, 127))),
        ("u8", ("U8", [3], bytes([0, 1, 255]))),
        ("scalar", ("F64", [], struct.pack("<d", math.pi))),
        ("empty", ("F32", [0, 3], b"")),
    ]


def main():
    assert sys.byteorder == "little"
    total = sum(math.prod(shape) for _, shape in param_shapes(DEFAULTS))
    assert total == 17_059_912, total

    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = os.path.join(here, "fixtures")
    os.makedirs(out_dir, exist_ok=True)

    cfg = TINY
    gen = torch.Generator().manual_seed(SEED)
    params = random_params(cfg, gen)
    ids = torch.randint(0, cfg["VOCAB_SIZE"], (BATCH, SEQ), generator=gen, dtype=torch.int64)
    targets = torch.randint(0, cfg["VOCAB_SIZE"], (BATCH, SEQ), generator=gen, dtype=torch.int64)
    names = [name for name, _ in param_shapes(cfg)]

    loss64, grads64, _ = loss_and_grads(params, ids, targets, cfg, torch.float64)
    loss32, grads32, _ = loss_and_grads(params, ids, targets, cfg, torch.float32)
    for name in names:
        assert grads64[name].abs().max() > 0, f"zero gradient for {name}"
    fd_error = directional_check(params, grads64, ids, targets, cfg, gen)

    entries = [("param/" + n, tensor_entry(params[n])) for n in names]
    entries += [("grad/" + n, tensor_entry(grads64[n])) for n in names]
    entries += [("input_ids", tensor_entry(ids)), ("target_ids", tensor_entry(targets)),
                ("loss", tensor_entry(loss64))]
    write_safetensors(os.path.join(out_dir, "baseline_tiny.safetensors"), entries, metadata(cfg, "F64"))

    entries = [("param/" + n, tensor_entry(params[n].to(torch.float32))) for n in names]
    entries += [("grad/" + n, tensor_entry(grads32[n])) for n in names]
    entries += [("input_ids", tensor_entry(ids)), ("target_ids", tensor_entry(targets)),
                ("loss_f32", tensor_entry(loss32))]
    write_safetensors(os.path.join(out_dir, "baseline_tiny_f32.safetensors"), entries, metadata(cfg, "F32"))

    write_safetensors(os.path.join(out_dir, "python_written.safetensors"), python_written_entries(),
                      {"writer": "tests/oracle/baseline_oracle.py", "note": "π ≠ 3"})

    print(f"parameters at defaults: {total}")
    print(f"tiny: {len(names)} parameters, {sum(params[n].numel() for n in names)} values")
    print(f"loss f64 = {loss64.item()!r}  (ln V = {math.log(cfg['VOCAB_SIZE'])!r})")
    print(f"loss f32 = {loss32.item()!r}")
    worst = max(((grads32[n].double() - grads64[n]).abs().max() / grads64[n].abs().max()).item() for n in names)
    print(f"directional finite-difference check: relative error {fd_error:.3e}")
    print(f"max relative f32-vs-f64 gradient difference: {worst:.3e}")


if __name__ == "__main__":
    main()
