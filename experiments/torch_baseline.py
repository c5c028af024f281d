"""Same-run baselines for twofour's GPU figures, measured with PyTorch on the GPU machine.

Prints the two ceilings every benchmark ratio is taken against (device-to-device copy bandwidth and
an fp32 matmul with TF32 off), plus dense-vs-2:4 semi-structured fp16 matmuls at GPT-2 FFN shapes
(what a sparse tensor core gives through torch). With `--speed`, also the rows of
experiments/speed.ts: the GPT-2 FFN GEMMs in every training layout (NT forward, NN backward-data,
TN backward-weight) in fp32 (TF32 off), TF32 and bf16, and a GPT-2 124M training step (AdamW,
causal flash attention through SDPA) in the same three precisions.
Usage: python3 experiments/torch_baseline.py [--json FILE] [--speed]
"""
import json
import sys

import torch


def bench(fn, warmup=5, reps=20):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    times.sort()
    return times[len(times) // 2]


def ffn_gemms(dev, tokens=8192, widths=(768, 1024, 1280, 1600)):
    """ms of each FFN GEMM (fc and proj, forward / backward-data / backward-weight) per precision."""
    rows = []
    for d in widths:
        h = 4 * d
        for name, d_in, d_out in (("fc", d, h), ("proj", h, d)):
            x = torch.randn(tokens, d_in, device=dev)
            w = torch.randn(d_out, d_in, device=dev)
            gy = torch.randn(tokens, d_out, device=dev)
            for prec in ("fp32", "tf32", "bf16"):
                torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
                cast = (lambda t: t.bfloat16()) if prec == "bf16" else (lambda t: t)
                xx, ww, gg = cast(x), cast(w), cast(gy)
                for op, fn in (("fwd", lambda: xx @ ww.t()), ("bwd_data", lambda: gg @ ww),
                               ("bwd_weight", lambda: gg.t() @ xx)):
                    t = bench(fn)
                    rows.append({"d": d, "gemm": name, "op": op, "precision": prec,
                                 "ms": t * 1e3, "TFLOPs": 2 * tokens * d_in * d_out / t / 1e12})
    torch.backends.cuda.matmul.allow_tf32 = False
    return rows


def gpt2_step(dev, batch=8, seq=1024, layers=12, width=768, heads=12, vocab=50257):
    """ms per GPT-2 training step (forward, backward, clip, AdamW) per precision."""
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
            self.fc, self.fc2 = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
            q, k, v = (z.view(b, t, heads, c // heads).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
            return x + self.fc2(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(vocab, width), nn.Embedding(seq, width)
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.ln = nn.LayerNorm(width)

        def forward(self, idx, targets):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
            for blk in self.blocks:
                x = blk(x)
            logits = self.ln(x) @ self.wte.weight.t()
            return F.cross_entropy(logits.view(-1, vocab), targets.view(-1))

    out = {}
    idx = torch.randint(0, vocab, (batch, seq), device=dev)
    tgt = torch.randint(0, vocab, (batch, seq), device=dev)
    for prec in ("fp32", "tf32", "bf16"):
        torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
        torch.backends.cudnn.allow_tf32 = prec == "tf32"
        model = GPT().to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=prec == "bf16"):
                loss = model(idx, tgt)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        out[prec] = bench(step, warmup=3, reps=10) * 1e3
        del model, opt
        torch.cuda.empty_cache()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return out


def main():
    dev = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    n = 256 * 1024 * 1024  # 1 GiB of f32
    src = torch.randn(n, device=dev)
    dst = torch.empty_like(src)
    t = bench(lambda: dst.copy_(src))
    out["copy_GBps"] = 2 * 4 * n / t / 1e9  # bytes read + written
    del src, dst
    torch.backends.cuda.matmul.allow_tf32 = False
    for size in (1024, 4096):
        a = torch.randn(size, size, device=dev)
        b = torch.randn(size, size, device=dev)
        t = bench(lambda: a @ b)
        out[f"matmul_fp32_{size}_TFLOPs"] = 2 * size**3 / t / 1e12
    # GPT-2 FFN GEMMs, fp16: dense vs 2:4 semi-structured (cuSPARSELt/CUTLASS through torch).
    rows = []
    try:
        from torch.sparse import to_sparse_semi_structured
        for tokens, d_in, d_out in ((8192, 768, 3072), (8192, 3072, 768), (8192, 1024, 4096),
                                    (8192, 4096, 4096)):
            x = torch.randn(tokens, d_in, device=dev, dtype=torch.half)
            w = torch.randn(d_out, d_in, device=dev, dtype=torch.half)
            mask = torch.tensor([0, 0, 1, 1], device=dev, dtype=torch.bool).tile(d_out, d_in // 4)
            w24 = w * mask
            ws = to_sparse_semi_structured(w24)
            td = bench(lambda: torch.nn.functional.linear(x, w24))
            ts = bench(lambda: torch.nn.functional.linear(x, ws))
            rows.append({"tokens": tokens, "in": d_in, "out": d_out, "dense_ms": td * 1e3,
                         "sparse_ms": ts * 1e3, "speedup": td / ts})
    except Exception as e:  # noqa: BLE001 - report, do not hide
        rows.append({"error": repr(e)})
    out["fp16_ffn_dense_vs_24"] = rows
    if "--speed" in sys.argv:
        out["ffn_gemms"] = ffn_gemms(dev)
        out["gpt2_124m_step_ms"] = gpt2_step(dev)
    text = json.dumps(out, indent=1)
    print(text)
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
