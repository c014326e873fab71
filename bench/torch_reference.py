#!/usr/bin/env python3
"""An independent PyTorch implementation of pgolf's baseline and S1 models (SEED-SYSTEMS.md §1, §2) and optimizer.

Two uses: `--mode eval` scores a pgolf checkpoint (final_model.safetensors) on the first tokens of the validation
shards in float32, the quantity pgolf logs as val_loss, so the two implementations can be compared on the same
weights; `--mode bench` times the reference training step (bf16 autocast, optionally torch.compile, Muon + Adam) at a
preset's shapes, the PyTorch side of scripts/bench_gpu.sh. Configs are pgolf presets (keys as the reference's env vars).
"""

from __future__ import annotations  # PEP 604 annotations on Python < 3.10

import argparse
import glob
import json
import math
import os
import struct
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as error:  # a clear line instead of a traceback where torch or numpy is missing
    print(f"torch_reference: error: {error} (needs Python 3 with torch and numpy)", file=sys.stderr)
    sys.exit(1)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARD_MAGIC = 20240520
SHARD_VERSION = 1
SHARD_HEADER_INTS = 256


class UsageError(Exception):
    """Bad input: printed as one line, exit status 1."""


# ----------------------------------------------------------------------------------------------------------------------
# Config: a preset's "config" with a scale's overrides and --set KEY=VALUE, typed as pgolf types them.


def config_apply_override(config: dict, assignment: str) -> None:
    key, equals, text = assignment.partition("=")
    if not equals or not key:
        raise UsageError(f"--set expects KEY=VALUE, got '{assignment}'")
    if key not in config:
        raise UsageError(f"--set: unknown config key {key}")
    current = config[key]
    try:
        if isinstance(current, str):
            config[key] = text
        elif isinstance(current, bool):
            config[key] = int(text) != 0
        elif isinstance(current, int):
            config[key] = int(text)
        else:
            config[key] = float(text)
    except ValueError:
        raise UsageError(f"--set {key}: '{text}' is not a valid {'integer' if isinstance(current, int) else 'number'}")


def config_load_preset(path: str, scale: str, overrides: list[str]) -> dict:
    try:
        with open(path, encoding="utf-8") as file:
            preset = json.load(file)
    except OSError as error:
        raise UsageError(f"{path}: cannot read the preset ({error.strerror})")
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: invalid JSON ({error})")
    if not isinstance(preset, dict) or not isinstance(preset.get("config"), dict):
        raise UsageError(f"{path}: not a pgolf preset (no \"config\" object)")
    config = dict(preset["config"])
    scales = preset.get("scales", {"full": {}})
    if scale != "full":
        if scale not in scales:
            raise UsageError(f"{path}: no scale '{scale}' (scales: {', '.join(sorted(scales))})")
        for key, value in scales[scale].items():
            if key not in config:
                raise UsageError(f"{path}: scale {scale} sets unknown key {key}")
            config[key] = value
    config["PRESET"] = preset.get("name", os.path.splitext(os.path.basename(path))[0])
    config["SCALE"] = scale
    for assignment in overrides:
        config_apply_override(config, assignment)
    return config


def cfg_int(config: dict, key: str, default: int | None = None) -> int:
    if key not in config:
        if default is None:
            raise UsageError(f"config: missing key {key}")
        return default
    value = config[key]
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise UsageError(f"config: {key} must be an integer, got {value!r}")


def cfg_float(config: dict, key: str, default: float | None = None) -> float:
    if key not in config:
        if default is None:
            raise UsageError(f"config: missing key {key}")
        return default
    value = config[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise UsageError(f"config: {key} must be a number, got {value!r}")


def cfg_str(config: dict, key: str, default: str = "") -> str:
    value = config.get(key, default)
    if not isinstance(value, str):
        raise UsageError(f"config: {key} must be a string, got {value!r}")
    return value


def cfg_list(config: dict, key: str) -> list[int]:
    text = cfg_str(config, key, "")
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise UsageError(f"config: {key} must be a comma-separated list of integers, got '{text}'")


def config_reject_unsupported(config: dict) -> None:
    """Features of the other seeds that this implementation does not have: refuse rather than silently differ."""
    checks = [
        ("RECURRENT_CORE", lambda: cfg_str(config, "RECURRENT_CORE") != "", "S2's recurrent core"),
        ("PASSES_SCHEDULE", lambda: cfg_str(config, "PASSES_SCHEDULE") != "", "progressive recurrent passes"),
        ("EVAL_PASSES", lambda: cfg_int(config, "EVAL_PASSES", 1) != 1, "recurrent passes"),
        ("PARAMETER_BANKS", lambda: cfg_int(config, "PARAMETER_BANKS", 0) != 0, "parameter banks (S2/S4)"),
        ("SKIP_MODE", lambda: cfg_str(config, "SKIP_MODE", "unet") != "unet", "skip modes other than unet"),
        ("LN_SCALE", lambda: cfg_int(config, "LN_SCALE", 0) != 0, "the 1/sqrt(layer+1) norm scale"),
        ("MLP_ACTIVATION", lambda: cfg_str(config, "MLP_ACTIVATION", "relu2") != "relu2", "LeakyReLU(0.5)^2"),
        ("ROPE_NTK_TRAIN_SEQ_LEN", lambda: cfg_int(config, "ROPE_NTK_TRAIN_SEQ_LEN", 0) != 0, "NTK RoPE scaling"),
        ("BIGRAM_HASH", lambda: cfg_str(config, "BIGRAM_HASH", "multiply_add") != "multiply_add", "the xor_mod hash"),
        ("BIGRAM_SCALE_INIT", lambda: cfg_float(config, "BIGRAM_SCALE_INIT", 0.0) > 0, "a learned bigram scale"),
        ("VE_BLOCKS", lambda: cfg_str(config, "VE_BLOCKS") != "", "per-block value embeddings (S2/S4)"),
        ("VE_SHARED_SCALE_INIT", lambda: cfg_float(config, "VE_SHARED_SCALE_INIT", 0.0) > 0, "a shared VE scale"),
        ("RESIDUAL_ALPHA_SIZE", lambda: cfg_int(config, "RESIDUAL_ALPHA_SIZE", 0) != 0, "alpha-scaled residuals"),
        ("ALPHA_LAYERS", lambda: cfg_str(config, "ALPHA_LAYERS") != "", "alpha-scaled crawler layers (S3)"),
        ("FEEDBACK_RANK", lambda: cfg_int(config, "FEEDBACK_RANK", 0) != 0, "error feedback (S2)"),
        ("JACOBIAN_LAMBDA", lambda: cfg_float(config, "JACOBIAN_LAMBDA", 0.0) != 0, "the Jacobian proxy loss (S2)"),
        ("QAT_MODE", lambda: cfg_str(config, "QAT_MODE", "off") not in ("off", "from_start"), "late QAT"),
        ("WORLD_SIZE", lambda: cfg_int(config, "WORLD_SIZE", 1) != 1, "more than one process"),
    ]
    for key, unsupported, what in checks:
        if unsupported():
            raise UsageError(
                f"config: {key}={config[key]!r} needs {what}, which torch_reference.py does not implement "
                "(it covers the baseline and S1)"
            )


# ----------------------------------------------------------------------------------------------------------------------
# Numerics shared by the model: RMSNorm, attention, RoPE, XSA, QAT.


RMS_NORM_AVAILABLE = hasattr(F, "rms_norm")  # decided once, outside anything torch.compile traces


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    # eps=None is the dtype's machine epsilon in F.rms_norm; the formula keeps torch < 2.4 working.
    if RMS_NORM_AVAILABLE:
        return F.rms_norm(x, (x.size(-1),))
    eps = torch.finfo(x.dtype).eps
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)


def _sdpa_has_gqa() -> bool:
    if not hasattr(F, "scaled_dot_product_attention"):
        return False
    try:
        probe = torch.zeros(1, 2, 1, 2)
        F.scaled_dot_product_attention(probe, probe[:, :1], probe[:, :1], is_causal=True, enable_gqa=True)
        return True
    except (TypeError, RuntimeError):
        return False


SDPA_AVAILABLE = hasattr(F, "scaled_dot_product_attention")
SDPA_GQA = _sdpa_has_gqa()


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q: (B, H, T, Dh); k, v: (B, Hkv, T, Dh); query head h reads KV head h // (H / Hkv). Scale 1/sqrt(Dh)."""
    group = q.size(1) // k.size(1)
    if SDPA_AVAILABLE and (group == 1 or SDPA_GQA):
        if group == 1:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    if group > 1:
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
    if SDPA_AVAILABLE:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    seq = q.size(2)
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * (1.0 / math.sqrt(q.size(-1)))
    future = torch.ones(seq, seq, dtype=torch.bool, device=q.device).triu(1)
    scores = scores.masked_fill(future, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1).to(v.dtype), v)


def rope_tables(seq: int, rotary_dims: int, frequency_dims: int, base: float, device) -> tuple:
    """cos, sin: (T, rotary_dims/2) in float32: f_j = base^(-2j/frequency_dims) for j < rotary_dims/2."""
    half = rotary_dims // 2
    exponents = torch.arange(0, frequency_dims, 2, dtype=torch.float32, device=device)[:half] / frequency_dims
    inverse_frequency = 1.0 / (base**exponents)
    angles = torch.outer(torch.arange(seq, dtype=torch.float32, device=device), inverse_frequency)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, H, T, Dh); rotates dims [0, r) as pairs (i, i + r/2), r = 2·cos.size(-1); the rest pass through."""
    half = cos.size(-1)
    cos = cos.to(x.dtype)
    sin = sin.to(x.dtype)
    first, second, rest = x[..., :half], x[..., half : 2 * half], x[..., 2 * half :]
    rotated = (first * cos + second * sin, second * cos - first * sin)
    if rest.size(-1) == 0:
        return torch.cat(rotated, dim=-1)
    return torch.cat((*rotated, rest), dim=-1)


def exclusive_self_attention(y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """XSA: y ← y − (y·v̂)v̂ with v̂ the unit value of the same position in the head's KV group.
    y: (B, H, T, Dh), v: (B, Hkv, T, Dh)."""
    batch, heads, seq, head_dim = y.shape
    kv_heads = v.size(1)
    grouped = y.reshape(batch, kv_heads, heads // kv_heads, seq, head_dim)
    unit = F.normalize(v, dim=-1).unsqueeze(2)
    along = (grouped * unit).sum(dim=-1, keepdim=True)
    return (grouped - along * unit).reshape(batch, heads, seq, head_dim)


def fake_quantize_int6(w: torch.Tensor) -> torch.Tensor:
    """Per-row absmax int6 grid [−32, 31], scale floored at 1e-8, with a straight-through gradient (S1's QAT)."""
    scale = (w.detach().abs().amax(dim=-1, keepdim=True) / 31.0).clamp_min(1e-8)
    quantized = (w.detach() / scale).round().clamp(-32, 31) * scale
    return w + (quantized - w).detach()


# ----------------------------------------------------------------------------------------------------------------------
# The model. Parameter names are pgolf's checkpoint names, so a pgolf checkpoint loads by name.


class Linear(nn.Module):
    """A bias-free weight (out, in) used in the activations' dtype, fake-quantized when QAT covers it."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.fake_quant = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype)
        if self.fake_quant:
            w = fake_quantize_int6(w)
        return F.linear(x, w)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, kv_heads: int, qk_gain: float):
        super().__init__()
        head_dim = dim // heads
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.c_q = Linear(dim, dim)
        self.c_k = Linear(dim, kv_heads * head_dim)
        self.c_v = Linear(dim, kv_heads * head_dim)
        self.proj = Linear(dim, dim)
        self.q_gain = nn.Parameter(torch.full((heads,), qk_gain))

    def forward(self, n: torch.Tensor, rope: tuple, xsa: bool, value_embedding: torch.Tensor | None) -> torch.Tensor:
        batch, seq, dim = n.shape
        q = self.c_q(n)
        k = self.c_k(n)
        v = self.c_v(n)
        if value_embedding is not None:
            v = v + value_embedding  # before the head split: XSA sees the augmented v
        q = q.reshape(batch, seq, self.heads, self.head_dim).transpose(1, 2)
        k = k.reshape(batch, seq, self.kv_heads, self.head_dim).transpose(1, 2)
        v = v.reshape(batch, seq, self.kv_heads, self.head_dim).transpose(1, 2)
        q = apply_rope(rms_norm(q), *rope)
        k = apply_rope(rms_norm(k), *rope)
        q = q * self.q_gain.to(q.dtype)[None, :, None, None]
        y = causal_attention(q, k, v)
        if xsa:
            y = exclusive_self_attention(y, v)
        return self.proj(y.transpose(1, 2).reshape(batch, seq, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, mult: int):
        super().__init__()
        self.fc = Linear(dim, mult * dim)
        self.proj = Linear(mult * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.relu(self.fc(x)).square())


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, kv_heads: int, mult: int, qk_gain: float, own_scales: bool):
        super().__init__()
        self.attn = Attention(dim, heads, kv_heads, qk_gain)
        self.mlp = Mlp(dim, mult)
        if own_scales:  # the baseline's per-block vectors; S1 keeps them per virtual layer on the model
            self.attn_scale = nn.Parameter(torch.ones(dim))
            self.mlp_scale = nn.Parameter(torch.ones(dim))
            self.resid_mix = nn.Parameter(torch.stack((torch.ones(dim), torch.zeros(dim))))

    def forward(self, x, x0, attn_scale, mlp_scale, mix, rope, xsa, value_embedding):
        mix = mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0
        x = x + attn_scale.to(x.dtype) * self.attn(rms_norm(x), rope, xsa, value_embedding)
        return x + mlp_scale.to(x.dtype) * self.mlp(rms_norm(x))


class BigramHash(nn.Module):
    def __init__(self, buckets: int, width: int, dim: int):
        super().__init__()
        self.buckets = buckets
        self.table = nn.Embedding(buckets, width)
        self.proj = Linear(width, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        previous = torch.cat((torch.zeros_like(ids[:, :1]), ids[:, :-1]), dim=1)  # position 0 pairs with token 0
        return self.proj(self.table(torch.remainder(previous * 92821 + ids, self.buckets)))


class SmearGate(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.gate).to(h.dtype)
        previous = torch.cat((torch.zeros_like(h[:, :1]), h[:, :-1]), dim=1)
        return (1 - g) * h + g * previous


class ValueEmbedding(nn.Module):
    def __init__(self, vocab: int, width: int, kv_dim: int, layers: int):
        super().__init__()
        self.table = nn.Embedding(vocab, width)
        self.proj = Linear(width, kv_dim)
        self.layer_scales = nn.ParameterList([nn.Parameter(torch.ones(1)) for _ in range(layers)])


class Gpt(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        config_reject_unsupported(config)
        self.vocab = cfg_int(config, "VOCAB_SIZE")
        physical = cfg_int(config, "NUM_LAYERS")
        dim = cfg_int(config, "MODEL_DIM")
        heads = cfg_int(config, "NUM_HEADS")
        kv_heads = cfg_int(config, "NUM_KV_HEADS")
        mult = cfg_int(config, "MLP_MULT")
        if min(self.vocab, physical, dim, heads, kv_heads, mult) <= 0:
            raise UsageError("model: VOCAB_SIZE, NUM_LAYERS, MODEL_DIM, NUM_HEADS, NUM_KV_HEADS, MLP_MULT must be > 0")
        if dim % heads or heads % kv_heads or (dim // heads) % 2:
            raise UsageError(
                "model: MODEL_DIM/NUM_HEADS must be an even integer and NUM_HEADS a multiple of NUM_KV_HEADS"
            )
        head_dim = dim // heads
        self.dim = dim
        self.softcap = cfg_float(config, "LOGIT_SOFTCAP")
        if self.softcap <= 0:
            raise UsageError("model: LOGIT_SOFTCAP must be positive")
        self.tied = cfg_int(config, "TIE_EMBEDDINGS") != 0
        self.rope_base = cfg_float(config, "ROPE_BASE")
        self.rotary_dims = cfg_int(config, "ROPE_DIMS", 0) or head_dim
        self.frequency_dims = cfg_int(config, "ROPE_FREQ_DIMS", 0) or self.rotary_dims
        if self.rotary_dims % 2 or self.rotary_dims > head_dim or self.frequency_dims % 2:
            raise UsageError("model: ROPE_DIMS must be even and at most the head dim; ROPE_FREQ_DIMS even")
        if self.frequency_dims < self.rotary_dims:
            raise UsageError("model: ROPE_FREQ_DIMS must be at least ROPE_DIMS")

        # The virtual layers: physical block per layer, its scale row, XSA and value-embedding slot.
        self.schedule = cfg_list(config, "LAYER_SCHEDULE") or list(range(physical))
        if any(b < 0 or b >= physical for b in self.schedule):
            raise UsageError("config: LAYER_SCHEDULE names a block past NUM_LAYERS")
        virtual = len(self.schedule)
        xsa_virtual = cfg_list(config, "XSA_VIRTUAL")
        xsa_blocks = cfg_list(config, "XSA_BLOCKS")
        self.xsa = [(v in xsa_virtual) if xsa_virtual else (b in xsa_blocks) for v, b in enumerate(self.schedule)]
        ve_dim = cfg_int(config, "VE_DIM", 0)
        ve_virtual = cfg_list(config, "VE_VIRTUAL")
        if ve_virtual and ve_dim <= 0:
            raise UsageError("config: VE_VIRTUAL needs VE_DIM > 0")
        self.ve_slot = [ve_virtual.index(v) if v in ve_virtual else -1 for v in range(virtual)]
        self.per_virtual = cfg_int(config, "SCALES_PER_VIRTUAL_LAYER", 0) != 0
        self.encoders = virtual // 2  # U-Net: the first half pushes, the second pops (LIFO) while skips remain

        self.tok_emb = nn.Embedding(self.vocab, dim)
        self.skip_weights = nn.Parameter(torch.ones(min(self.encoders, virtual - self.encoders), dim))
        self.smear = SmearGate(dim) if cfg_int(config, "SMEAR_GATE", 0) else None
        buckets = cfg_int(config, "BIGRAM_BUCKETS", 0)
        self.bigram = BigramHash(buckets, cfg_int(config, "BIGRAM_DIM", 128), dim) if buckets > 0 else None
        self.ve = ValueEmbedding(self.vocab, ve_dim, kv_heads * head_dim, len(ve_virtual)) if ve_dim > 0 else None
        if self.per_virtual:
            self.attn_scales = nn.Parameter(torch.ones(virtual, dim))
            self.mlp_scales = nn.Parameter(torch.ones(virtual, dim))
            self.resid_mixes = nn.Parameter(torch.stack([torch.ones(dim), torch.zeros(dim)] * virtual))  # (2V, d)
        qk_gain = cfg_float(config, "QK_GAIN_INIT")
        self.blocks = nn.ModuleList(
            [Block(dim, heads, kv_heads, mult, qk_gain, not self.per_virtual) for _ in range(physical)]
        )
        self.lm_head = None if self.tied else Linear(dim, self.vocab)
        self.initialize(config)

    @torch.no_grad()
    def initialize(self, config: dict) -> None:
        """The seeds' initialisation (pgolf's RNG differs, so only the distributions match)."""
        nn.init.normal_(self.tok_emb.weight, std=cfg_float(config, "TIED_EMBED_INIT_STD"))
        orthogonal = cfg_str(config, "MATRIX_INIT", "uniform") == "orthogonal"

        def matrix(w: torch.Tensor, gain: float = 1.0) -> None:
            if orthogonal:
                nn.init.orthogonal_(w, gain=gain)
            else:
                bound = 1.0 / math.sqrt(w.size(1))
                nn.init.uniform_(w, -bound, bound)

        for block in self.blocks:
            for w in (block.attn.c_q.weight, block.attn.c_k.weight, block.attn.c_v.weight, block.mlp.fc.weight):
                matrix(w)
            block.attn.proj.weight.zero_()
            block.mlp.proj.weight.zero_()
        if self.bigram is not None:
            std = cfg_float(config, "BIGRAM_TABLE_STD", 0.01)
            if std > 0:
                nn.init.normal_(self.bigram.table.weight, std=std)
            else:
                self.bigram.table.weight.zero_()
            if cfg_str(config, "BIGRAM_PROJ_INIT", "zero") == "orthogonal":
                nn.init.orthogonal_(self.bigram.proj.weight)
            else:
                self.bigram.proj.weight.zero_()
        if self.ve is not None:
            nn.init.normal_(self.ve.table.weight, std=0.01)
            nn.init.orthogonal_(self.ve.proj.weight, gain=cfg_float(config, "VE_PROJ_GAIN", 1.0))
        if self.lm_head is not None:
            self.lm_head.weight.zero_()

    def linears(self) -> list[tuple[str, Linear]]:
        return [(name, module) for name, module in self.named_modules() if isinstance(module, Linear)]

    def set_fake_quant(self, min_numel: int | None) -> int:
        """QAT on every weight matrix with more than min_numel elements (None: off); returns how many."""
        count = 0
        for _, module in self.linears():
            module.fake_quant = min_numel is not None and module.weight.numel() > min_numel
            count += module.fake_quant
        return count

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok_emb(ids)
        if self.bigram is not None:
            x = x + self.bigram(ids).to(x.dtype)
        x = rms_norm(x)
        if self.smear is not None:
            x = self.smear(x)
        x0 = x
        value = self.ve.proj(self.ve.table(ids)) if self.ve is not None else None
        rope = rope_tables(ids.size(1), self.rotary_dims, self.frequency_dims, self.rope_base, ids.device)
        skips = []
        for v, b in enumerate(self.schedule):
            block = self.blocks[b]
            if v >= self.encoders and skips:
                x = x + self.skip_weights[v - self.encoders].to(x.dtype) * skips.pop()
            if self.per_virtual:
                scales = (self.attn_scales[v], self.mlp_scales[v], self.resid_mixes[2 * v : 2 * v + 2])
            else:
                scales = (block.attn_scale, block.mlp_scale, block.resid_mix)
            ve = None
            if self.ve_slot[v] >= 0:
                ve = self.ve.layer_scales[self.ve_slot[v]].to(value.dtype) * value
            x = block(x, x0, *scales, rope, self.xsa[v], ve)
            if v < self.encoders:
                skips.append(x)
        return rms_norm(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raw = F.linear(x, self.tok_emb.weight.to(x.dtype)) if self.lm_head is None else self.lm_head(x)
        return self.softcap * torch.tanh(raw.float() / self.softcap)

    def forward(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss: mean next-token cross-entropy in float32."""
        logits = self.logits(self.hidden(ids))
        return F.cross_entropy(logits.reshape(-1, self.vocab), targets.reshape(-1))

    def token_nll(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = self.logits(self.hidden(ids))
        return F.cross_entropy(logits.reshape(-1, self.vocab), targets.reshape(-1), reduction="none")

    def parameter_group(self, name: str) -> str:
        """pgolf's optimizer split: embedding tables on Adam, matrices (blocks, bigram/VE projections) on Muon,
        the untied head on its own Adam, every vector and control tensor on the scalar Adam."""
        if name in ("tok_emb.weight", "bigram.table.weight", "ve.table.weight"):
            return "embedding"
        if name == "lm_head.weight":
            return "head"
        if name.startswith("blocks.") and name.endswith(".weight") or name in ("bigram.proj.weight", "ve.proj.weight"):
            return "matrix"
        return "scalar"


# ----------------------------------------------------------------------------------------------------------------------
# Files: safetensors checkpoints and token shards, parsed here (no safetensors package needed).

SAFETENSORS_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # widened to float32 below
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
}


def safetensors_read(path: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise UsageError(f"{path}: cannot read ({error.strerror})")
    if len(data) < 8:
        raise UsageError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    (header_length,) = struct.unpack("<Q", data[:8])
    if 8 + header_length > len(data):
        raise UsageError(f"{path}: header length {header_length} runs past the end of the file")
    try:
        header = json.loads(data[8 : 8 + header_length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{path}: invalid JSON header ({error})")
    if not isinstance(header, dict):
        raise UsageError(f"{path}: the header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    buffer = memoryview(data)[8 + header_length :]
    tensors = {}
    for name, entry in header.items():
        try:
            dtype_name, shape, (begin, end) = entry["dtype"], [int(s) for s in entry["shape"]], entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"{path}: tensor {name} has a malformed header entry")
        if dtype_name not in SAFETENSORS_DTYPES:
            raise UsageError(f"{path}: tensor {name} has dtype {dtype_name}, which this reader does not handle")
        dtype = SAFETENSORS_DTYPES[dtype_name]
        count = math.prod(shape)
        if not (0 <= begin <= end <= len(buffer)) or end - begin != count * dtype.itemsize:
            raise UsageError(f"{path}: tensor {name} has data offsets [{begin}, {end}) that do not fit its shape")
        array = np.frombuffer(buffer[begin:end], dtype=dtype).reshape(shape)
        if dtype_name == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))
    return tensors, metadata


def load_weights(model: Gpt, tensors: dict[str, torch.Tensor], path: str) -> None:
    expected = model.state_dict()
    missing = [name for name in expected if name not in tensors]
    extra = [name for name in tensors if name not in expected]
    if missing:
        raise UsageError(f"{path}: missing tensor {missing[0]} ({len(missing)} missing)")
    if extra:
        raise UsageError(f"{path}: unexpected tensor {extra[0]} ({len(extra)} the model does not have)")
    for name, target in expected.items():
        if tuple(tensors[name].shape) != tuple(target.shape):
            raise UsageError(
                f"{path}: {name} has shape {list(tensors[name].shape)}, the model needs {list(target.shape)}"
            )
    with torch.no_grad():
        for name, target in expected.items():
            target.copy_(tensors[name].to(target.dtype))


def shard_read(path: str) -> np.ndarray:
    """A token shard: 256 little-endian int32 (magic, version, count, …), then count little-endian uint16 ids."""
    header = np.fromfile(path, dtype="<i4", count=SHARD_HEADER_INTS)
    if header.size != SHARD_HEADER_INTS or header[0] != SHARD_MAGIC or header[1] != SHARD_VERSION:
        raise UsageError(f"{path}: not a token shard (bad header: magic or version)")
    count = int(header[2])
    expected = SHARD_HEADER_INTS * 4 + 2 * count
    if os.path.getsize(path) != expected:
        raise UsageError(f"{path}: {os.path.getsize(path)} bytes, the header announces {expected}")
    return np.fromfile(path, dtype="<u2", count=count, offset=SHARD_HEADER_INTS * 4)


def shards(data_dir: str, split: str) -> list[str]:
    paths = sorted(glob.glob(os.path.join(data_dir, f"fineweb_{split}_*.bin")))
    if not paths:
        raise UsageError(f"no fineweb_{split}_*.bin shards in {data_dir}")
    return paths


def resolve_data_dir(argument: str | None, config: dict) -> str:
    if argument:
        return argument
    path = cfg_str(config, "DATA_PATH", "")
    if not path:
        raise UsageError("no --data given and the config has no DATA_PATH")
    # DATA_PATH is relative to the repository root in the presets.
    return path if os.path.isabs(path) or os.path.isdir(path) else os.path.join(REPO_ROOT, path)


# ----------------------------------------------------------------------------------------------------------------------
# --mode eval


def run_eval(args, config: dict, tensors: dict[str, torch.Tensor]) -> dict:
    torch.manual_seed(0)
    model = Gpt(config)
    load_weights(model, tensors, args.weights)
    device = torch.device(args.device)
    model = model.to(device=device, dtype=torch.float32)
    data_dir = resolve_data_dir(args.data, config)
    if args.train_steps > 0:
        # pgolf's run from these weights: the train stream from token 0, float32, QAT while training only.
        if cfg_int(config, "SWA_EVERY", 0) > 0 or cfg_float(config, "EMA_DECAY", 0.0) > 0:
            raise UsageError(
                "--train-steps does not average weights: set SWA_EVERY=0 and EMA_DECAY=0 (here and in pgolf)"
            )
        model.set_fake_quant(qat_min_numel(config))
        trainer = Trainer(model, config, device, TokenStream(shards(data_dir, "train")), False, False, schedule=True)
        for step in range(args.train_steps):
            trainer.step(step)
        model.set_fake_quant(None)
    model.eval()

    seq = cfg_int(config, "TRAIN_SEQ_LEN")
    stream = np.concatenate([shard_read(p) for p in shards(data_dir, "val")])
    if args.max_tokens > 0:
        stream = stream[: args.max_tokens + 1]
    sequences = (len(stream) - 1) // seq
    if sequences < 1:
        raise UsageError(f"fewer validation tokens ({len(stream) - 1}) than one sequence of {seq}")
    tokens = torch.from_numpy(stream[: sequences * seq + 1].astype(np.int64))
    total = 0.0  # float64, as the reference accumulates
    with torch.no_grad():
        for first in range(0, sequences, args.batch_sequences):
            count = min(args.batch_sequences, sequences - first)
            span = tokens[first * seq : (first + count) * seq + 1].to(device)
            nll = model.token_nll(span[:-1].reshape(count, seq), span[1:].reshape(count, seq))
            total += nll.double().sum().item()
    targets = sequences * seq
    return {
        "val_loss": total / targets,
        "tokens": targets,
        "sequences": sequences,
        "trained_steps": args.train_steps,
        "model": config.get("PRESET", ""),
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": args.device,
        "torch": torch.__version__,
    }


# ----------------------------------------------------------------------------------------------------------------------
# --mode bench: the reference training step.


def newton_schulz(g: torch.Tensor, steps: int, bf16: bool) -> torch.Tensor:
    """The quintic Newton–Schulz orthogonalisation Muon applies to each update (SEED-SYSTEMS.md §1.3)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.bfloat16() if bf16 else g.float()
    x = x / (x.norm() + 1e-7)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Nesterov momentum, orthogonalised update scaled by sqrt(max(1, rows/cols)), decoupled decay before or after."""

    def __init__(self, params, lr, momentum, steps, bf16, weight_decay, decay_after, orthogonalise):
        super().__init__(params, dict(lr=lr, momentum=momentum))
        self.steps, self.bf16, self.weight_decay, self.decay_after = steps, bf16, weight_decay, decay_after
        self.orthogonalise = orthogonalise

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            decay = 1.0 - lr * self.weight_decay
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad)
                buffer = state["momentum_buffer"]
                buffer.mul_(momentum).add_(p.grad)
                update = self.orthogonalise(p.grad.add(buffer, alpha=momentum), self.steps, self.bf16)
                update = update * max(1.0, p.size(0) / p.size(1)) ** 0.5
                if self.weight_decay > 0 and not self.decay_after:
                    p.mul_(decay)
                p.add_(update.to(p.dtype), alpha=-lr)
                if self.weight_decay > 0 and self.decay_after:
                    p.mul_(decay)


def make_adam(params, lr, config, device):
    betas = (cfg_float(config, "BETA1"), cfg_float(config, "BETA2"))
    eps = cfg_float(config, "ADAM_EPS")
    weight_decay = cfg_float(config, "ADAM_WD", 0.0)
    kind = torch.optim.AdamW if weight_decay > 0 else torch.optim.Adam
    options = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if device.type == "cuda":
        try:
            return kind(params, fused=True, **options)
        except (TypeError, RuntimeError):
            pass
    return kind(params, **options)


class TokenStream:
    """The training shards read in order and wrapped around, as the reference's loader reads them."""

    def __init__(self, paths: list[str]):
        self.tokens = np.concatenate([shard_read(p) for p in paths])
        if len(self.tokens) == 0:
            raise UsageError(f"the training shards ({paths[0]}, …) hold no tokens")
        self.position = 0

    def take(self, count: int) -> np.ndarray:
        pieces = []
        while count > 0:
            piece = self.tokens[self.position : self.position + count]
            pieces.append(piece)
            count -= len(piece)
            self.position = (self.position + len(piece)) % len(self.tokens)
        return np.concatenate(pieces)


class RandomStream:
    def __init__(self, vocab: int, seed: int):
        self.vocab = vocab
        self.generator = np.random.default_rng(seed)

    def take(self, count: int) -> np.ndarray:
        return self.generator.integers(0, self.vocab, size=count, dtype=np.int64)


class Trainer:
    """The reference training step: GRAD_ACCUM_STEPS micro-batches of contiguous stream tokens, the Muon momentum
    warmup, the global grad-norm clip, then Adam (embeddings, head, vectors) and Muon (matrices), as pgolf's trainer.
    With schedule=True the learning rates follow pgolf's iteration warmdown (MAX_WALLCLOCK_SECONDS=0 only)."""

    def __init__(self, model: Gpt, config: dict, device, stream, bf16: bool, compile_model: bool, schedule: bool):
        self.model, self.device, self.stream, self.bf16 = model, device, stream, bf16
        self.seq = cfg_int(config, "TRAIN_SEQ_LEN")
        self.batch_tokens = cfg_int(config, "TRAIN_BATCH_TOKENS")
        self.accumulation = cfg_int(config, "GRAD_ACCUM_STEPS")
        if self.accumulation <= 0 or self.batch_tokens % self.accumulation:
            raise UsageError("config: TRAIN_BATCH_TOKENS must split into GRAD_ACCUM_STEPS micro-batches")
        self.micro_tokens = self.batch_tokens // self.accumulation
        if self.micro_tokens % self.seq:
            raise UsageError("config: a micro-batch (TRAIN_BATCH_TOKENS/GRAD_ACCUM_STEPS) must be whole sequences")
        self.iterations = cfg_int(config, "ITERATIONS")
        self.warmdown = cfg_int(config, "WARMDOWN_ITERS")
        if schedule and cfg_float(config, "MAX_WALLCLOCK_SECONDS") > 0:
            raise UsageError("training before eval needs MAX_WALLCLOCK_SECONDS=0 (the iteration warmdown)")
        self.schedule = schedule

        groups = {"embedding": [], "head": [], "matrix": [], "scalar": []}
        for name, p in model.named_parameters():
            groups[model.parameter_group(name)].append(p)
        tied = cfg_int(config, "TIE_EMBEDDINGS") != 0
        muon_precision = cfg_str(config, "MUON_PRECISION", "bf16")
        if muon_precision not in ("bf16", "f32"):
            raise UsageError("config: MUON_PRECISION must be bf16 or f32")
        decay_order = cfg_str(config, "MUON_WD_ORDER", "before")
        if decay_order not in ("before", "after"):
            raise UsageError("config: MUON_WD_ORDER must be before or after")
        self.forward = model
        orthogonalise = newton_schulz
        if compile_model:
            if not hasattr(torch, "compile"):
                raise UsageError(f"--compile needs torch >= 2.0 (this is torch {torch.__version__})")
            self.forward = torch.compile(model, dynamic=False, fullgraph=True)
            orthogonalise = torch.compile(newton_schulz)
        self.muon = Muon(
            groups["matrix"],
            lr=cfg_float(config, "MATRIX_LR"),
            momentum=cfg_float(config, "MUON_MOMENTUM"),
            steps=cfg_int(config, "MUON_BACKEND_STEPS"),
            bf16=muon_precision == "bf16",
            weight_decay=cfg_float(config, "MUON_WD", 0.0),
            decay_after=decay_order == "after",
            orthogonalise=orthogonalise,
        )
        embedding_lr = cfg_float(config, "TIED_EMBED_LR" if tied else "EMBED_LR")
        scalar_lr = cfg_float(config, "SCALAR_LR")
        self.optimizers = [
            (make_adam(groups["embedding"], embedding_lr, config, device), embedding_lr),
            (self.muon, cfg_float(config, "MATRIX_LR")),
            (make_adam(groups["scalar"], scalar_lr, config, device), scalar_lr),
        ]
        if groups["head"]:
            head_lr = cfg_float(config, "HEAD_LR")
            self.optimizers.append((make_adam(groups["head"], head_lr, config, device), head_lr))
        self.clip = cfg_float(config, "GRAD_CLIP_NORM", 0.0)
        self.momentum_start = cfg_float(config, "MUON_MOMENTUM_WARMUP_START")
        self.momentum_end = cfg_float(config, "MUON_MOMENTUM")
        self.momentum_steps = cfg_int(config, "MUON_MOMENTUM_WARMUP_STEPS")
        self.parameters = list(model.parameters())

    def lr_multiplier(self, step: int) -> float:
        if not self.schedule or self.warmdown <= 0:
            return 1.0
        if max(self.iterations - self.warmdown, 0) <= step < self.iterations:
            return max((self.iterations - step) / max(self.warmdown, 1), 0.0)
        return 1.0

    def step(self, step: int) -> torch.Tensor:
        for p in self.parameters:
            p.grad = None
        total = torch.zeros((), device=self.device)
        for _ in range(self.accumulation):
            span = torch.from_numpy(self.stream.take(self.micro_tokens + 1).astype(np.int64))
            span = span.to(self.device, non_blocking=True)
            inputs = span[:-1].reshape(-1, self.seq)
            targets = span[1:].reshape(-1, self.seq)
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                loss = self.forward(inputs, targets)
            (loss / self.accumulation).backward()
            total += loss.detach()
        fraction = min(step / self.momentum_steps, 1.0) if self.momentum_steps > 0 else 1.0
        multiplier = self.lr_multiplier(step)
        for optimizer, base_lr in self.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = base_lr * multiplier
        for group in self.muon.param_groups:
            group["momentum"] = (1 - fraction) * self.momentum_start + fraction * self.momentum_end
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.clip)
        for optimizer, _ in self.optimizers:
            optimizer.step()
        return total / self.accumulation


def qat_min_numel(config: dict) -> int | None:
    return cfg_int(config, "QAT_MIN_NUMEL", 65536) if cfg_str(config, "QAT_MODE", "off") == "from_start" else None


def run_bench(args, config: dict) -> dict:
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("torch_reference: no CUDA device", file=sys.stderr)
        sys.exit(2)
    device = torch.device(args.device)
    precision = args.precision or ("bf16" if device.type == "cuda" else "f32")
    bf16 = precision == "bf16"
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    torch.manual_seed(cfg_int(config, "SEED", 1337))
    model = Gpt(config).to(device)
    if bf16:
        # As the reference runs: embedding tables are bf16 parameters, weight matrices and vectors stay fp32.
        for module in (model.tok_emb, model.bigram, model.ve):
            table = module if isinstance(module, nn.Embedding) else getattr(module, "table", None)
            if table is not None:
                table.weight.data = table.weight.data.bfloat16()
    qat_count = model.set_fake_quant(qat_min_numel(config))
    if args.data_source == "shards":
        stream = TokenStream(shards(resolve_data_dir(args.data, config), "train"))
    else:
        stream = RandomStream(model.vocab, cfg_int(config, "SEED", 1337))
    trainer = Trainer(model, config, device, stream, bf16, args.compile, schedule=False)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    loss = None
    for step in range(args.warmup):
        loss = trainer.step(step)
    synchronize()
    start = time.perf_counter()
    for step in range(args.warmup, args.warmup + args.steps):
        loss = trainer.step(step)
    synchronize()
    elapsed = time.perf_counter() - start
    return {
        "model": config.get("PRESET", ""),
        "tokens_per_second": args.steps * trainer.batch_tokens / elapsed,
        "step_ms": 1000.0 * elapsed / args.steps,
        "torch": torch.__version__,
        "compiled": bool(args.compile),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": precision,
        "steps": args.steps,
        "warmup": args.warmup,
        "train_batch_tokens": trainer.batch_tokens,
        "train_seq_len": trainer.seq,
        "grad_accum_steps": trainer.accumulation,
        "parameters": sum(p.numel() for p in trainer.parameters),
        "qat_matrices": qat_count,
        "data": args.data_source,
        "final_train_loss": float(loss.item()) if loss is not None else None,
    }


# ----------------------------------------------------------------------------------------------------------------------


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description=(
            "Independent PyTorch implementation of pgolf's baseline and S1 models. --mode eval scores a pgolf "
            "checkpoint on the first validation tokens (float32, prints {\"val_loss\", \"tokens\", ...}); --mode bench "
            "times the reference training step at a preset's shapes (prints {\"tokens_per_second\", \"step_ms\", ...})."
        ),
        epilog=(
            "examples: torch_reference.py --mode eval --weights RUN/final_model.safetensors --max-tokens 16384; "
            "torch_reference.py --mode bench --preset-file model/presets/baseline.json --device cuda --compile"
        ),
    )
    parser.add_argument("--mode", choices=("eval", "bench"), required=True, help="eval a checkpoint or bench training")
    parser.add_argument(
        "--preset-file",
        help="pgolf preset JSON (model/presets/NAME.json); eval defaults to the config stored in the checkpoint",
    )
    parser.add_argument("--scale", default="full", help="preset scale: full (default) or smoke")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument(
        "--data", help="dataset folder with fineweb_{train,val}_*.bin (default: the config's DATA_PATH)"
    )
    group = parser.add_argument_group("eval")
    group.add_argument("--weights", help="pgolf checkpoint (safetensors) to score")
    group.add_argument("--max-tokens", type=int, default=0, help="score the first N targets (N+1 tokens; 0: all)")
    group.add_argument("--batch-sequences", type=int, default=8, help="sequences per forward pass (default 8)")
    group.add_argument(
        "--train-steps",
        type=int,
        default=0,
        help="first train the weights this many steps as pgolf would (float32, train shards from token 0, the "
        "config's ITERATIONS/WARMDOWN_ITERS warmdown), then score them",
    )
    group = parser.add_argument_group("bench")
    group.add_argument("--steps", type=int, default=10, help="timed training steps (default 10)")
    group.add_argument("--warmup", type=int, default=3, help="untimed steps first, compilation included (default 3)")
    group.add_argument("--compile", action="store_true", help="torch.compile the model and Newton-Schulz")
    group.add_argument(
        "--precision", choices=("bf16", "f32"), help="bf16 autocast (default on cuda) or f32 (default on cpu)"
    )
    group.add_argument(
        "--data-source", choices=("shards", "random"), default="shards", help="training tokens (default: shards)"
    )
    args = parser.parse_args(argv)
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        parser.error(f"--device must be cpu or cuda, got '{args.device}'")
    if args.mode == "eval" and not args.weights:
        parser.error("--mode eval needs --weights FILE.safetensors")
    if args.mode == "bench" and not args.preset_file:
        parser.error("--mode bench needs --preset-file")
    if min(args.max_tokens, args.warmup, args.train_steps) < 0 or min(args.batch_sequences, args.steps) <= 0:
        parser.error("--max-tokens, --warmup and --train-steps must be >= 0, --batch-sequences and --steps > 0")
    return args


def main(argv=None) -> int:
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        tensors, metadata = safetensors_read(args.weights) if args.mode == "eval" else ({}, {})
        if args.preset_file:
            config = config_load_preset(args.preset_file, args.scale, args.overrides)
        else:
            if "config" not in metadata:
                raise UsageError(f"{args.weights}: no config in its metadata; pass --preset-file")
            try:
                config = json.loads(metadata["config"])
            except json.JSONDecodeError as error:
                raise UsageError(f"{args.weights}: the config in its metadata is not JSON ({error})")
            for assignment in args.overrides:
                config_apply_override(config, assignment)
        result = run_eval(args, config, tensors) if args.mode == "eval" else run_bench(args, config)
    except UsageError as error:
        print(f"torch_reference: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
