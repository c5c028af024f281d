#!/usr/bin/env python3
"""Loads twofour exports with transformers' GPT2LMHeadModel.from_pretrained and compares logits.

For each export directory (written by `deno task export_hf`): loads it with
`GPT2LMHeadModel.from_pretrained(dir, output_loading_info=True)` (no missing, unexpected or
mismatched keys allowed; `lm_head` must be tied to `wte`), runs the fixed batch of
`twofour_reference.safetensors` in float32 on the CPU and on CUDA (TF32 off), with the eager and
the default attention implementation, and compares with twofour's logits:
|hf - twofour| <= 1e-5 + 1e-5 * |twofour| (float32; the orders of summation differ).

Expected result: every row passes, max |diff| around 1e-7 (results/interop/hf_check.md).

Usage: python3 experiments/hf_check.py DIR [DIR ...] [--out=FILE.json]. Exits 1 on any failure.
"""

import argparse
import json
import platform
import sys

import numpy as np
import torch
import transformers
from safetensors.numpy import load_file
from transformers import GPT2LMHeadModel

ATOL = RTOL = 1e-5


def load(directory, attn):
    kwargs = {"output_loading_info": True, "torch_dtype": torch.float32}
    if attn is not None:
        kwargs["attn_implementation"] = attn
    return GPT2LMHeadModel.from_pretrained(directory, **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    env = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    print(json.dumps(env))
    rows, failures = [], 0
    for directory in args.dirs:
        ref = load_file(f"{directory}/twofour_reference.safetensors")
        expected = ref["logits"].astype(np.float64)
        for attn in ("eager", None):
            try:
                model, info = load(directory, attn)
            except (TypeError, ValueError, ImportError) as e:  # e.g. no such attention backend
                print(f"SKIP {directory} attn={attn}: {type(e).__name__}: {e}")
                continue
            problems = {k: v for k, v in info.items() if v and k != "error_msgs"}
            problems.update({"error_msgs": info.get("error_msgs")} if info.get("error_msgs") else {})
            tied = model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
            for device in devices:
                m = model.to(device).eval()
                with torch.no_grad():
                    ids = torch.from_numpy(ref["input_ids"].astype(np.int64)).to(device)
                    got = m(ids).logits.double().cpu().numpy()
                diff = np.abs(got - expected)
                outside = int((diff > ATOL + RTOL * np.abs(expected)).sum())
                ok = outside == 0 and not problems and tied
                failures += not ok
                row = {
                    "export": directory,
                    "attention": attn or getattr(model.config, "_attn_implementation", "default"),
                    "device": device,
                    "shape": list(expected.shape),
                    "max_abs_diff": float(diff.max()),
                    "outside_tolerance": outside,
                    "tied_head": tied,
                    "loading_problems": problems,
                    "pass": ok,
                }
                rows.append(row)
                print(
                    f"{'PASS' if ok else 'FAIL'} {directory} attn={row['attention']} {device}: "
                    f"logits {row['shape']} max |diff| {row['max_abs_diff']:.3e} "
                    f"(tolerance {ATOL:g} + {RTOL:g}*|ref|, {outside} outside), tied={tied}, "
                    f"loading problems: {problems or 'none'}"
                )
    print(f"hf_check: {len(rows) - failures}/{len(rows)} passed")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"env": env, "tolerance": {"atol": ATOL, "rtol": RTOL}, "rows": rows}, f, indent=2)
    return 1 if failures or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
