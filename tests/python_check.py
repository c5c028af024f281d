#!/usr/bin/env python3
"""Checks twofour's committed test vectors from Python with NumPy only (no torch, no safetensors).

Runs `tools/check_impl.py` against the independent NumPy implementations in `tools/numpy_impl.py`
(every function of vectors/, every case within its stated tolerance), then two negative controls that must fail: a lower-index
tie rule for hard 2:4 pruning and a float64 MVUE.

Usage: python3 tests/python_check.py [path/to/vectors]    (default: the repository's vectors/)
Exits 1 on any mismatch or on a negative control that passes.
"""

import contextlib
import io
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import check_impl  # noqa: E402

IMPL = os.path.join(HERE, "..", "tools", "numpy_impl.py")
NEGATIVE_CONTROLS = {
    "lower-index ties": ["--map", "prune24=prune24_wrong_ties", "--only", "prune24"],
    "float64 MVUE": ["--map", "mvue24WithUniforms=mvue24_wrong_float64", "--only",
                     "mvue24WithUniforms"],
}


def main():
    vectors = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "vectors")
    code = check_impl.main(["--module", IMPL, "--vectors", vectors, "--quiet"])
    failures = int(code != 0)
    for name, extra in NEGATIVE_CONTROLS.items():
        with contextlib.redirect_stdout(io.StringIO()):
            caught = check_impl.main(["--module", IMPL, "--vectors", vectors, *extra]) == 1
        print(f"negative control ({name}): {'caught' if caught else 'NOT CAUGHT'}")
        failures += not caught
    print(f"python_check: {'ok' if not failures else f'{failures} failures'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
