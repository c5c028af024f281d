#!/usr/bin/env python3
"""Checks a twofour export in the Hugging Face GPT-2 layout with NumPy only (no torch).

Reads `config.json` and `model.safetensors` of DIR and checks: the exact set of tensor names
`transformers`' GPT2LMHeadModel expects (with the `transformer.` prefix, no `lm_head`: it is tied),
their shapes (Conv1D weights `[in, out]`) and dtype F32, the metadata (`format` = `pt`, the twofour
keys), every recorded 2:4 mask (2 of each 4 consecutive inputs kept, weights zero outside it); then
runs GPT2LMHeadModel's forward in float64 NumPy (Conv1D `x @ W + b`, exact-erf GELU, LayerNorm with
the config's epsilon, causal softmax scaled by 1/sqrt(head_dim), tied head) on the batch of
`twofour_reference.safetensors` and compares with twofour's logits:
|numpy - twofour| <= ATOL + RTOL * |twofour| (defaults 1e-5, 1e-5: twofour computes in float32, which differs from float64 by ~1e-7 here).

Usage: python3 tools/hf_layout_check.py DIR [--atol=1e-5] [--rtol=1e-5]. Exits 1 on any failure.
"""

import argparse
import base64
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import read_safetensors  # noqa: E402

TWOFOUR_KEYS = ("twofour.format", "twofour.version", "twofour.sparse", "twofour.sparse_sites",
                "twofour.weights", "twofour.beta", "twofour.masks")


def expected_shapes(cfg):
    d, v, p = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    inner = cfg.get("n_inner") or 4 * d
    shapes = {"transformer.wte.weight": [v, d], "transformer.wpe.weight": [p, d],
              "transformer.ln_f.weight": [d], "transformer.ln_f.bias": [d]}
    for layer in range(cfg["n_layer"]):
        h = f"transformer.h.{layer}"
        shapes.update({
            f"{h}.ln_1.weight": [d], f"{h}.ln_1.bias": [d],
            f"{h}.attn.c_attn.weight": [d, 3 * d], f"{h}.attn.c_attn.bias": [3 * d],
            f"{h}.attn.c_proj.weight": [d, d], f"{h}.attn.c_proj.bias": [d],
            f"{h}.ln_2.weight": [d], f"{h}.ln_2.bias": [d],
            f"{h}.mlp.c_fc.weight": [d, inner], f"{h}.mlp.c_fc.bias": [inner],
            f"{h}.mlp.c_proj.weight": [inner, d], f"{h}.mlp.c_proj.bias": [d],
        })
    return shapes


def unpack_mask(packed, shape):
    bits = np.unpackbits(np.frombuffer(base64.b64decode(packed), dtype=np.uint8))
    return bits[: shape[0] * shape[1]].reshape(shape)


_erf = np.vectorize(math.erf)


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def gpt2_forward(t, cfg, input_ids):
    """GPT2LMHeadModel's evaluation forward in float64: [B, T] ids -> [B, T, V] logits."""
    if cfg.get("activation_function") != "gelu":
        raise ValueError(f"this check implements exact GELU only, got {cfg.get('activation_function')}")
    g = {k: v.astype(np.float64) for k, v in t.items()}
    eps, nh = cfg["layer_norm_epsilon"], cfg["n_head"]
    B, T = input_ids.shape
    d = cfg["n_embd"]
    hd = d // nh
    x = g["transformer.wte.weight"][input_ids] + g["transformer.wpe.weight"][np.arange(T)][None]
    causal = np.tril(np.ones((T, T), dtype=bool))
    for layer in range(cfg["n_layer"]):
        h = f"transformer.h.{layer}"
        a = layer_norm(x, g[f"{h}.ln_1.weight"], g[f"{h}.ln_1.bias"], eps)
        qkv = a @ g[f"{h}.attn.c_attn.weight"] + g[f"{h}.attn.c_attn.bias"]
        q, k, v = (qkv[..., i * d : (i + 1) * d].reshape(B, T, nh, hd).transpose(0, 2, 1, 3)
                   for i in range(3))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
        s = np.where(causal, s, -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        y = (s / s.sum(-1, keepdims=True)) @ v
        y = y.transpose(0, 2, 1, 3).reshape(B, T, d)
        x = x + y @ g[f"{h}.attn.c_proj.weight"] + g[f"{h}.attn.c_proj.bias"]
        m = layer_norm(x, g[f"{h}.ln_2.weight"], g[f"{h}.ln_2.bias"], eps)
        m = m @ g[f"{h}.mlp.c_fc.weight"] + g[f"{h}.mlp.c_fc.bias"]
        m = 0.5 * m * (1 + _erf(m / math.sqrt(2)))
        x = x + m @ g[f"{h}.mlp.c_proj.weight"] + g[f"{h}.mlp.c_proj.bias"]
    x = layer_norm(x, g["transformer.ln_f.weight"], g["transformer.ln_f.bias"], eps)
    return x @ g["transformer.wte.weight"].T


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--atol", type=float, default=1e-5)
    parser.add_argument("--rtol", type=float, default=1e-5)
    args = parser.parse_args()
    failures = []
    with open(os.path.join(args.dir, "config.json")) as f:
        cfg = json.load(f)
    tensors, metadata, dtypes = read_safetensors(os.path.join(args.dir, "model.safetensors"))
    want = expected_shapes(cfg)
    for name in sorted(set(want) - set(tensors)):
        failures.append(f"missing tensor {name}")
    for name in sorted(set(tensors) - set(want)):
        failures.append(f"unexpected tensor {name}")
    for name in sorted(set(want) & set(tensors)):
        if list(tensors[name].shape) != want[name] or dtypes[name] != "F32":
            failures.append(f"{name}: {dtypes[name]} {list(tensors[name].shape)}, expected F32 {want[name]}")
    if metadata.get("format") != "pt":
        failures.append(f"metadata format must be 'pt' (transformers refuses others), got {metadata.get('format')!r}")
    for key in TWOFOUR_KEYS:
        if key not in metadata:
            failures.append(f"metadata lacks {key}")
    masks = json.loads(metadata.get("twofour.masks", "{}"))
    for name, packed in masks.items():
        w = tensors[name]
        mask = unpack_mask(packed, w.shape)
        kept = mask.reshape(w.shape[0] // 4, 4, w.shape[1]).sum(axis=1)
        if not np.all(kept == 2):
            failures.append(f"{name}: the mask does not keep 2 of every 4 inputs")
        if np.any(w[mask == 0] != 0):
            failures.append(f"{name}: non-zero weights outside the 2:4 mask")
    print(f"layout: {len(tensors)} tensors, {len(masks)} 2:4 masks "
          f"(weights: {metadata.get('twofour.weights')}, "
          f"method: {json.loads(metadata.get('twofour.sparse', '{}')).get('method')})")
    if not failures:
        ref, _, _ = read_safetensors(os.path.join(args.dir, "twofour_reference.safetensors"))
        ours = gpt2_forward(tensors, cfg, ref["input_ids"].astype(np.int64))
        theirs = ref["logits"].astype(np.float64)
        diff = np.abs(ours - theirs)
        bad = diff > args.atol + args.rtol * np.abs(theirs)
        print(f"forward: NumPy float64 vs twofour logits {list(theirs.shape)}: max |diff| = "
              f"{diff.max():.3e}, tolerance {args.atol:g} + {args.rtol:g}·|ref|, {int(bad.sum())} outside")
        if bad.any():
            failures.append(f"{int(bad.sum())} logits outside the tolerance")
    for f in failures:
        print(f"FAIL {f}")
    print("hf_layout_check: " + ("ok" if not failures else f"{len(failures)} failures"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
