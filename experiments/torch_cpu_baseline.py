"""PyTorch CPU eager baseline for twofour's CPU training step (the `cpu` preset of experiments/gpt2.ts).

The same model and step as twofour's dense GPT-2 on that preset: 2 blocks x width 128, 4 heads,
context 64, vocabulary 4,096, bias-free linear layers, LayerNorm (eps 1e-5) with scale and shift,
exact-erf GELU, causal attention, learned positions, final LayerNorm, tied head, no dropout;
batch 16 x 64 = 1,024 tokens; mean cross-entropy; global-norm clipping at 1.0; AdamW (betas 0.9,
0.95, eps 1e-8, weight decay 0.1 on the linear weights only); float32; eager mode.

Not a project dependency: install torch into a throw-away virtual environment for the benchmark.
Usage:
  python3 torch_cpu_baseline.py [--threads 2] [--steps 10]     # prints {"ms": [...]} per step
  python3 torch_cpu_baseline.py --serve                        # for experiments/bench_cpu.ts:
      reads a step count per line on stdin, runs that many timed steps, prints one JSON line
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

VOCAB, CTX, LAYERS, HEADS, WIDTH, BATCH = 4096, 64, 2, 4, 128, 16


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(WIDTH, eps=1e-5)
        self.c_attn = torch.nn.Linear(WIDTH, 3 * WIDTH, bias=False)
        self.attn_proj = torch.nn.Linear(WIDTH, WIDTH, bias=False)
        self.ln2 = torch.nn.LayerNorm(WIDTH, eps=1e-5)
        self.c_fc = torch.nn.Linear(WIDTH, 4 * WIDTH, bias=False)
        self.mlp_proj = torch.nn.Linear(4 * WIDTH, WIDTH, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln1(x)).split(d, dim=2)
        heads = lambda z: z.view(b, t, HEADS, d // HEADS).transpose(1, 2)  # noqa: E731
        q, k, v = heads(q), heads(k), heads(v)
        # Explicit causal attention (the twofour model's operations: scores, softmax, weighted sum).
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // HEADS))
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        att = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.attn_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln2(x))))


class GPT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = torch.nn.Embedding(VOCAB, WIDTH)
        self.wpe = torch.nn.Embedding(CTX, WIDTH)
        self.blocks = torch.nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln_f = torch.nn.LayerNorm(WIDTH, eps=1e-5)

    def forward(self, tokens):
        x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T  # tied head


def make_step():
    torch.manual_seed(1)
    model = GPT()
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "wte" not in n and "wpe" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "wte" not in n and "wpe" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.95), eps=1e-8,
    )
    g = torch.Generator().manual_seed(2)

    def step():
        tokens = torch.randint(0, VOCAB, (BATCH, CTX), generator=g)
        targets = torch.randint(0, VOCAB, (BATCH, CTX), generator=g)
        logits = model(tokens)
        loss = F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    return step


def timed(step, n):
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--serve", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    step = make_step()
    timed(step, 3)  # warm-up: allocator, kernels
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "capability": torch.backends.cpu.get_cpu_capability()}
    if not args.serve:
        print(json.dumps({**info, "ms": timed(step, args.steps)}))
        return
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        n = int(line.strip() or 0)
        if n <= 0:
            break
        print(json.dumps({"ms": timed(step, n)}), flush=True)


if __name__ == "__main__":
    main()
