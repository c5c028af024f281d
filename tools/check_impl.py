#!/usr/bin/env python3
"""Checks your own 2:4 functions against twofour's test vectors (`vectors/`), one command.

Point it at a Python module (an importable name or a .py path) and say which of its functions
implements which vector function (`--map prune24=my_prune,mvue24=my_mvue`; a function named like
the vector function is found without a mapping). Every case of `vectors/index.json` whose
function is implemented runs, and each output is compared with its stated tolerance (`exact`, or
`allclose` with the case's atol and rtol); the result is a per-case table, a summary, and exit
code 1 if any output fails (2 if nothing was checked).

Calling convention: the inputs and the params of the case (names as in index.json: `w`, `g`,
`uniforms`, `n`, `m`, `alpha`, `recipe`, ...) are passed as keyword arguments, those the function's
signature accepts (all of them if it takes **kwargs); the function returns the outputs as a tuple
in index.json's order, a dict by output name (outputs it omits are reported as not returned), or a
single array for a single output. Inputs are NumPy arrays, or torch tensors with `--torch`
(on `--device`); torch results are converted back with `.detach().cpu().numpy()`.

Usage:
  python3 tools/check_impl.py --module mypkg.sparse --map prune24=my_prune [--torch --device=cuda]
  python3 tools/check_impl.py --module tools/numpy_impl.py            # the NumPy reference
  python3 tools/check_impl.py --module tools/numpy_impl.py --map prune24=prune24_wrong_ties \
      --only=prune24                                                   # a negative control: fails
NumPy only; torch only with --torch.
"""

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import DTYPES, read_safetensors  # noqa: E402


def load_module(spec):
    if spec.endswith(".py") or os.sep in spec:
        name = os.path.splitext(os.path.basename(spec))[0]
        module_spec = importlib.util.spec_from_file_location(name, spec)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module
    sys.path.insert(0, os.getcwd())
    return importlib.import_module(spec)


def parse_map(items):
    mapping = {}
    for item in items:
        for pair in filter(None, item.split(",")):
            if "=" not in pair:
                raise SystemExit(f"Cannot parse --map {pair!r}: expected FUNCTION=your_function")
            key, value = pair.split("=", 1)
            mapping[key.strip()] = value.strip()
    return mapping


def call(fn, kwargs):
    params = inspect.signature(fn).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return fn(**kwargs)
    names = {p.name for p in params}
    return fn(**{k: v for k, v in kwargs.items() if k in names})


def to_numpy(value):
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def outputs_by_name(result, names):
    if isinstance(result, dict):
        return {k: result[k] for k in names if k in result}
    if isinstance(result, (tuple, list)):
        return dict(zip(names, result))
    return {names[0]: result}


def compare(actual, expected, tolerance):
    """(ok, max |diff|, mismatches, note) of one output under its stated tolerance."""
    actual = to_numpy(actual)
    if actual.size != expected.size:
        return False, float("nan"), expected.size, f"size {actual.size}, expected {expected.size}"
    actual = actual.reshape(expected.shape)
    floats = expected.dtype.kind == "f"
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(a) & np.isfinite(e)
        diff = float(np.abs(a - e)[finite].max()) if finite.any() else 0.0
        if tolerance["kind"] == "exact":
            equal = (a == e) | (floats & np.isnan(a) & np.isnan(e))
        else:
            equal = np.isclose(a, e, atol=tolerance["atol"], rtol=tolerance["rtol"], equal_nan=True)
    mismatches = int((~equal).sum())
    return mismatches == 0, diff, mismatches, ""


def tolerance_text(tolerance):
    if tolerance["kind"] == "exact":
        return "exact"
    return f"atol {tolerance['atol']:g} rtol {tolerance['rtol']:g}"


def check_files(folder, index):
    """Loads every family's file and checks it against index.json; returns (tensors, problems)."""
    tensors, problems = {}, []
    for family in index["families"]:
        loaded, metadata, dtypes = read_safetensors(os.path.join(folder, family["file"]))
        tensors[family["name"]] = loaded
        if json.loads(metadata.get("cases", "null")) != family["cases"]:
            problems.append(f"{family['file']}: __metadata__ cases differ from index.json")
        for case in family["cases"]:
            for entry in list(case["inputs"].values()) + list(case["outputs"].values()):
                t = loaded.get(entry["tensor"])
                if t is None or list(t.shape) != entry["shape"] or dtypes[entry["tensor"]] != entry["dtype"]:
                    problems.append(f"{family['file']}: {entry['tensor']} missing or mis-described")
    return tensors, problems


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--module", required=True, help="importable module name or path to a .py")
    parser.add_argument("--map", action="append", default=[], help="FUNCTION=your_function,...")
    parser.add_argument("--only", default="", help="comma-separated vector functions to check")
    parser.add_argument("--vectors", default=os.path.join(here, "..", "vectors"))
    parser.add_argument("--torch", action="store_true", help="pass torch tensors")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    args = parser.parse_args(argv)
    module = load_module(args.module)
    mapping = parse_map(args.map)
    only = set(filter(None, args.only.split(",")))
    for key, attr in mapping.items():
        if not hasattr(module, attr):
            raise SystemExit(f"Cannot map {key}: {args.module} has no function {attr!r}")
    if args.torch:
        import torch

    with open(os.path.join(args.vectors, "index.json")) as f:
        index = json.load(f)
    tensors, problems = check_files(args.vectors, index)

    rows, unimplemented = [], {}
    for family in index["families"]:
        for case in family["cases"]:
            function = case["function"]
            if only and function not in only:
                continue
            fn = getattr(module, mapping.get(function, function), None)
            if fn is None or not callable(fn):
                unimplemented[function] = unimplemented.get(function, 0) + 1
                continue
            data = tensors[family["name"]]
            kwargs = dict(case["params"])
            for name, entry in case["inputs"].items():
                array = np.array(data[entry["tensor"]])  # a writable copy
                kwargs[name] = torch.from_numpy(array).to(args.device) if args.torch else array
            names = list(case["outputs"])
            label = f"{family['name']}/{case['name']}"
            try:
                got = outputs_by_name(call(fn, kwargs), names)
                error = None
            except Exception as e:  # noqa: BLE001 (a crash is a failed case, reported)
                got, error = {}, f"raised {type(e).__name__}: {e}"
            for name, entry in case["outputs"].items():
                tol = case["outputs"][name]["tolerance"]
                if error is not None:
                    rows.append((label, function, name, tolerance_text(tol), "-", "-", "FAIL", error))
                elif name not in got:
                    rows.append((label, function, name, tolerance_text(tol), "-", "-", "n/a", "not returned"))
                else:
                    ok, diff, bad, note = compare(got[name], data[entry["tensor"]], tol)
                    rows.append((label, function, name, tolerance_text(tol), f"{diff:.3g}",
                                 f"{bad}/{data[entry['tensor']].size}", "PASS" if ok else "FAIL", note))

    header = ("case", "function", "output", "tolerance", "max|diff|", "mismatch", "result", "")
    shown = [r for r in rows if not args.quiet or r[6] == "FAIL"]
    widths = [max(len(str(r[i])) for r in [header] + shown) for i in range(len(header))]
    for r in ([header] + shown) if shown else []:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    for p in problems:
        print(f"FAIL vectors: {p}")
    passed = sum(r[6] == "PASS" for r in rows)
    failed = sum(r[6] == "FAIL" for r in rows)
    missing = sum(r[6] == "n/a" for r in rows)
    cases = len({r[0] for r in rows})
    print(f"\ncheck_impl: {args.module}: {cases} cases, {len(rows)} outputs: {passed} passed, "
          f"{failed} failed, {missing} not returned; vector files: {len(problems)} problems")
    if unimplemented:
        print("not implemented (skipped): " + ", ".join(f"{k} ({v} cases)" for k, v in unimplemented.items()))
    if failed or problems:
        return 1
    return 2 if passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
