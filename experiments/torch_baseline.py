"""Same-run baselines for twofour's GPU figures, measured with PyTorch on the GPU machine.

Prints the two ceilings every benchmark ratio is taken against (device-to-device copy bandwidth and
an fp32 matmul with TF32 off), plus dense-vs-2:4 semi-structured fp16 matmuls at GPT-2 FFN shapes
(what a sparse tensor core gives through torch). Usage: python3 experiments/torch_baseline.py [--json FILE]
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
    text = json.dumps(out, indent=1)
    print(text)
    if len(sys.argv) > 2 and sys.argv[1] == "--json":
        with open(sys.argv[2], "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
