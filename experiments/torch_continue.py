#!/usr/bin/env python3
"""Continues training a twofour export in PyTorch for a few steps, keeping its 2:4 masks.

The bridge from a twofour run to multi-GPU PyTorch (README "Scale-out"): loads the export with
`GPT2LMHeadModel.from_pretrained`, reads the 2:4 masks from the safetensors metadata
(`twofour.masks`, `[in, out]` bits), and trains with AdamW where the masked weights' gradients are
zeroed (a fixed-mask sparse continuation, not S-STE's dynamic soft threshold: that needs the user's
own kernels, checked with tools/check_impl.py). Linear biases stay frozen at zero so the result can
be imported back into twofour (`loadHfGpt2`). Runs single-process, or under
`torchrun --nproc_per_node=N` as DistributedDataParallel (NCCL on GPUs, gloo on CPU), each rank
taking its own slice of the batch.

Data: the fixed batch of `twofour_reference.safetensors` (a demonstration of the mechanics; real
training reads the user's token stream with a DistributedSampler). Expected: the loss falls step by step, every masked weight
stays exactly zero, and step 0's logits equal twofour's within 1e-5 (results/interop/).

Usage:
  python3 experiments/torch_continue.py DIR [--steps=20] [--lr=1e-3] [--save=OUT_DIR]
  torchrun --nproc_per_node=2 experiments/torch_continue.py DIR
"""

import argparse
import base64
import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.numpy import load_file
from transformers import GPT2LMHeadModel


def read_masks(directory):
    """{parameter name: bool tensor [in, out]} from the export's metadata."""
    with safe_open(f"{directory}/model.safetensors", framework="pt") as f:
        metadata = f.metadata() or {}
        shapes = {name: f.get_slice(name).get_shape() for name in f.keys()}
    masks = {}
    for name, packed in json.loads(metadata.get("twofour.masks", "{}")).items():
        rows, cols = shapes[name]
        bits = np.unpackbits(np.frombuffer(base64.b64decode(packed), dtype=np.uint8))
        masks[name] = torch.from_numpy(bits[: rows * cols].reshape(rows, cols).astype(bool))
    return masks, json.loads(metadata.get("twofour.sparse", "{}")).get("method")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--save", default="")
    args = parser.parse_args()
    distributed = "WORLD_SIZE" in os.environ
    cuda = torch.cuda.is_available()
    if distributed:
        dist.init_process_group("nccl" if cuda else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", 0))
    else:
        rank, world, local = 0, 1, 0
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)

    model = GPT2LMHeadModel.from_pretrained(args.dir, torch_dtype=torch.float32).to(device)
    masks, method = read_masks(args.dir)
    params = dict(model.named_parameters())
    masks = {name: m.to(device) for name, m in masks.items()}
    for name, p in params.items():
        if name.endswith(".bias") and (".attn." in name or ".mlp." in name):
            p.requires_grad_(False)  # twofour's linears have no bias
    for name, m in masks.items():
        assert torch.all(params[name][~m] == 0), f"{name}: weights outside the exported mask"
        params[name].register_hook(lambda g, m=m: g * m)  # the masked weights never move

    ref = load_file(f"{args.dir}/twofour_reference.safetensors")
    ids = torch.from_numpy(ref["input_ids"].astype(np.int64)).to(device)
    with torch.no_grad():
        first = model.eval()(ids).logits.double().cpu().numpy()
    start_diff = float(np.abs(first - ref["logits"]).max())
    start_close = bool(np.allclose(first, ref["logits"], atol=1e-5, rtol=1e-5))
    shard = ids[rank::world]  # each rank its own sequences
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local] if cuda else None) \
        if distributed else model
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.1)
    losses = []
    net.train()
    for step in range(args.steps):
        loss = net(shard, labels=shard).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.detach()
        if distributed:
            dist.all_reduce(value)
            value /= world
        losses.append(float(value))
        if rank == 0 and (step < 3 or step == args.steps - 1):
            print(f"step {step}: loss {losses[-1]:.4f}")
    ok = True
    kept = {name: bool(torch.all(params[name][~m] == 0)) for name, m in masks.items()}
    if rank == 0:
        summary = {
            "export": args.dir,
            "method": method,
            "world_size": world,
            "device": str(device),
            "steps": args.steps,
            "loss_first": losses[0],
            "loss_last": losses[-1],
            "step0_logits_max_abs_diff_vs_twofour": start_diff,
            "step0_logits_within_1e-5": start_close,
            "masked_weights": len(masks),
            "masks_kept": all(kept.values()),
        }
        print(json.dumps(summary))
        if args.save:
            model.save_pretrained(args.save, safe_serialization=True)
        ok = summary["masks_kept"] and losses[-1] < losses[0] and start_close
        print(f"torch_continue: {'ok' if ok else 'FAILED'}")
    if distributed:
        dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
