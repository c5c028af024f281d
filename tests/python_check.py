#!/usr/bin/env python3
"""Checks twofour's committed test vectors from Python with NumPy only (no torch, no safetensors).

Loads every file of `vectors/` with a minimal hand-written safetensors reader, then re-checks
prune24, pruneNM, softThreshold24 and mvue24WithUniforms (also the seeded mvue24 cases, through
the uniforms they store) with independent NumPy implementations of SPEC §1.1, §1.2 and §2.7,
comparing with each output's stated tolerance from `index.json`. Also runs two negative controls
(a lower-index tie rule and a float64 MVUE must be caught), so a vacuous check cannot pass.

Usage: python3 tests/python_check.py [path/to/vectors]    (default: the repository's vectors/)
Not part of the Deno test task; exits 1 on any mismatch.
"""

import json
import os
import struct
import sys

import numpy as np

DTYPES = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "U8": "u1", "U32": "<u4"}
MVUE_EPSILON = np.float32(1.19209e-7)


def read_safetensors(path):
    """Returns ({name: ndarray}, metadata); checks that the tensors tile the data section."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    start = 8 + header_len
    tensors, spans = {}, []
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = np.dtype(DTYPES[info["dtype"]])
        count = int(np.prod(info["shape"], dtype=np.int64))
        if end - begin != count * dtype.itemsize:
            raise ValueError(f"{path}: {name} spans {end - begin} bytes, needs {count * dtype.itemsize}")
        tensors[name] = np.frombuffer(data, dtype=dtype, count=count, offset=start + begin).reshape(
            info["shape"]
        )
        spans.append((begin, end))
    spans.sort()
    expected = 0
    for begin, end in spans:
        if begin != expected:
            raise ValueError(f"{path}: gap or overlap at data byte {begin}")
        expected = end
    if start + expected != len(data):
        raise ValueError(f"{path}: {len(data) - start - expected} trailing bytes")
    return tensors, metadata


# ---- independent NumPy implementations -------------------------------------------------------


def prune_nm(w, n, m):
    """Keep the n largest |w| of each group of m; ties: the higher index wins (stable sort)."""
    groups = w.reshape(-1, m)
    order = np.argsort(np.abs(groups), axis=1, kind="stable")
    mask = np.zeros(groups.shape, dtype=np.uint8)
    np.put_along_axis(mask, order[:, m - n :], 1, axis=1)
    pruned = np.where(mask == 1, groups, np.float32(0)).astype(np.float32)
    return pruned.reshape(w.shape), mask.reshape(w.shape)


def soft_threshold24(w):
    groups = w.reshape(-1, 4)
    a = np.abs(groups)
    order = np.argsort(a, axis=1, kind="stable")
    tau = np.take_along_axis(a, order[:, 1:2], axis=1)  # the second-smallest magnitude
    mask = np.zeros(groups.shape, dtype=np.uint8)
    np.put_along_axis(mask, order[:, 2:], 1, axis=1)
    with np.errstate(invalid="ignore"):  # inf - inf where |w| = tau = inf; masked out below
        shrunk = np.where(groups < 0, -(a - tau), a - tau)
    out = np.where((mask == 1) & (a != tau), shrunk, np.float32(0)).astype(np.float32)
    return out.reshape(w.shape), mask.reshape(w.shape)


def mvue24_with_uniforms(g, uniforms, dtype=np.float32):
    """MVUE 2:4 in the float32 operation order documented on mvue24 (every op rounded)."""
    x = g.reshape(-1, 4).astype(dtype)
    u0 = uniforms[0::2].astype(dtype)
    u1 = uniforms[1::2].astype(dtype)
    a = np.abs(x) + dtype(MVUE_EPSILON)
    total = ((a[:, 0] + a[:, 1]) + a[:, 2]) + a[:, 3]
    t = a / total[:, None]
    others = [[j for j in range(4) if j != i] for i in range(4)]
    rest = np.stack([(a[:, o[0]] + a[:, o[1]]) + a[:, o[2]] for o in others], axis=1)
    rows = np.arange(x.shape[0])

    first = np.full(x.shape[0], 3)
    picked = np.zeros(x.shape[0], dtype=bool)
    c = np.zeros(x.shape[0], dtype=dtype)
    for i in range(4):
        c = c + t[:, i]
        hit = ~picked & (u0 <= c)
        first[hit] = i
        picked |= hit

    second = np.where(first == 3, 2, 3)
    picked = np.zeros(x.shape[0], dtype=bool)
    c = np.zeros(x.shape[0], dtype=dtype)
    rest_first = rest[rows, first]
    for j in range(4):
        candidate = first != j
        step = np.where(candidate, a[:, j] / rest_first, dtype(0))
        c = c + step
        hit = candidate & ~picked & (u1 <= c)
        second[hit] = j
        picked |= hit

    out = np.zeros(x.shape, dtype=dtype)
    ratio = t / rest
    for k in (first, second):
        s = np.zeros(x.shape[0], dtype=dtype)
        for m in range(4):
            s = s + np.where(k != m, ratio[:, m], dtype(0))
        p = t[rows, k] + a[rows, k] * s
        out[rows, k] = x[rows, k] / p
    return out.astype(np.float32).reshape(g.shape)


# ---- comparison -------------------------------------------------------------------------------


def matches(actual, expected, tolerance):
    actual = np.asarray(actual).reshape(expected.shape)
    if tolerance["kind"] == "exact":
        return np.array_equal(actual, expected, equal_nan=expected.dtype.kind == "f")
    return np.allclose(
        actual, expected, atol=tolerance["atol"], rtol=tolerance["rtol"], equal_nan=True
    )


def bit_identical(actual, expected):
    actual = np.ascontiguousarray(np.asarray(actual).reshape(expected.shape), dtype=expected.dtype)
    return actual.tobytes() == np.ascontiguousarray(expected).tobytes()


def recompute(case, tensors):
    inputs = {name: tensors[entry["tensor"]] for name, entry in case["inputs"].items()}
    function, params = case["function"], case["params"]
    if function == "prune24":
        pruned, mask = prune_nm(inputs["w"], 2, 4)
        return {"pruned": pruned, "mask": mask}
    if function == "pruneNM":
        pruned, mask = prune_nm(inputs["w"], params["n"], params["m"])
        return {"pruned": pruned, "mask": mask}
    if function == "softThreshold24":
        pruned, mask = soft_threshold24(inputs["w"])
        return {"pruned": pruned, "mask": mask}
    if function in ("mvue24WithUniforms", "mvue24"):
        return {"out": mvue24_with_uniforms(inputs["g"], inputs["uniforms"])}
    return None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "vectors")
    with open(os.path.join(folder, "index.json")) as f:
        index = json.load(f)
    checked = bit_exact = failures = 0
    loaded = {}
    for family in index["families"]:
        tensors, metadata = read_safetensors(os.path.join(folder, family["file"]))
        loaded[family["name"]] = tensors
        if json.loads(metadata["cases"]) != family["cases"]:
            print(f"FAIL {family['file']}: __metadata__ cases differ from index.json")
            failures += 1
        for case in family["cases"]:
            for entry in list(case["inputs"].values()) + list(case["outputs"].values()):
                t = tensors.get(entry["tensor"])
                if t is None or list(t.shape) != entry["shape"] or t.dtype != np.dtype(
                    DTYPES[entry["dtype"]]
                ):
                    print(f"FAIL {family['file']}: {entry['tensor']} missing or mis-described")
                    failures += 1
            fresh = recompute(case, tensors)
            if fresh is None:
                continue
            for name, entry in case["outputs"].items():
                expected = tensors[entry["tensor"]]
                checked += 1
                if not matches(fresh[name], expected, entry["tolerance"]):
                    print(f"FAIL {family['name']}/{entry['tensor']} ({entry['tolerance']})")
                    failures += 1
                elif bit_identical(fresh[name], expected):
                    bit_exact += 1

    # Negative controls: a wrong tie rule and a float64 MVUE must both be caught.
    prune = loaded["prune24"]
    w = prune["spec9/input/w"]
    flipped = w[:, ::-1]  # reversing the group reverses which index wins a tie
    _, lower_index_mask = prune_nm(flipped, 2, 4)
    if np.array_equal(lower_index_mask[:, ::-1], prune["spec9/output/mask"]):
        print("FAIL negative control: a lower-index tie rule was not caught")
        failures += 1
    mvue = loaded["mvue24"]
    g, u = mvue["uniform_boundaries/input/g"], mvue["uniform_boundaries/input/uniforms"]
    wide = mvue24_with_uniforms(g, u, dtype=np.float64)
    if bit_identical(wide, mvue["uniform_boundaries/output/out"]):
        print("FAIL negative control: a float64 MVUE matched the float32 one bit for bit")
        failures += 1

    print(
        f"python_check: {checked} outputs checked against their stated tolerance "
        f"({bit_exact} bit for bit), {failures} failures"
    )
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
