"""PyTorch CPU GEMMs for experiments/cpu_zoo.ts: the ceiling a user gets from `pip install torch`.

Not a project dependency: run with the Python of a throw-away virtual environment. Reads one JSON
request per line on stdin and answers one JSON line each:
  {"op": "load", "id", "a", "b", "batch", "m", "n", "k", "transA", "transB"} (a, b: float32 files
      holding the operands as the zoo stores them) -> {"ok": true}
  {"op": "time", "id", "calls"} -> {"ms": milliseconds per call of `calls` back-to-back products}
  {"op": "result", "id", "path"} -> writes the last product to `path` as float32 -> {"ok": true}
The first line printed is {"torch": version, "threads": n}. Products: torch.matmul on transposed
views (strides, no copies), into a preallocated output.
"""
import json
import sys
import time

import torch


def main():
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
    torch.set_num_threads(threads)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    products = {}
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "load":
            b, m, n, k = req["batch"], req["m"], req["n"], req["k"]
            a_shape = (k, m) if req["transA"] else (m, k)
            b_shape = (n, k) if req["transB"] else (k, n)
            x = torch.from_file(req["a"], size=b * m * k, dtype=torch.float32).view(b, *a_shape)
            y = torch.from_file(req["b"], size=b * k * n, dtype=torch.float32).view(b, *b_shape)
            x = x.transpose(1, 2) if req["transA"] else x
            y = y.transpose(1, 2) if req["transB"] else y
            if b == 1:
                x, y = x[0], y[0]
            out = torch.empty((b, m, n) if b > 1 else (m, n), dtype=torch.float32)
            products[req["id"]] = (x, y, out)
            reply = {"ok": True}
        elif req["op"] == "time":
            x, y, out = products[req["id"]]
            t0 = time.perf_counter()
            for _ in range(req["calls"]):
                torch.matmul(x, y, out=out)
            reply = {"ms": (time.perf_counter() - t0) * 1000 / req["calls"]}
        elif req["op"] == "result":
            out = products[req["id"]][2]
            with open(req["path"], "wb") as f:
                f.truncate(4 * out.numel())
            # A shared file mapping: the copy lands in the file (no NumPy in the venv).
            torch.from_file(req["path"], shared=True, size=out.numel(), dtype=torch.float32).copy_(out.flatten())
            reply = {"ok": True}
        else:
            reply = {"error": f"unknown op {req['op']}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
