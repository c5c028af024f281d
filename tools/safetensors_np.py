"""A minimal safetensors reader with NumPy only (no torch, no safetensors package).

Used by the vector checker (`check_impl.py`) and the Hugging Face layout check
(`hf_layout_check.py`); checks that the tensors tile the data section exactly.
"""

import json
import struct

import numpy as np

DTYPES = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U8": "u1", "U32": "<u4"}


def read_safetensors(path):
    """Returns ({name: ndarray}, metadata, {name: dtype string})."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    start = 8 + header_len
    tensors, dtypes, spans = {}, {}, []
    for name, info in header.items():
        begin, end = info["data_offsets"]
        if info["dtype"] not in DTYPES:
            raise ValueError(f"{path}: {name} has unsupported dtype {info['dtype']}")
        dtype = np.dtype(DTYPES[info["dtype"]])
        count = int(np.prod(info["shape"], dtype=np.int64))
        if end - begin != count * dtype.itemsize:
            raise ValueError(f"{path}: {name} spans {end - begin} bytes, needs {count * dtype.itemsize}")
        tensors[name] = np.frombuffer(data, dtype=dtype, count=count, offset=start + begin).reshape(
            info["shape"]
        )
        dtypes[name] = info["dtype"]
        spans.append((begin, end))
    spans.sort()
    expected = 0
    for begin, end in spans:
        if begin != expected:
            raise ValueError(f"{path}: gap or overlap at data byte {begin}")
        expected = end
    if start + expected != len(data):
        raise ValueError(f"{path}: {len(data) - start - expected} trailing bytes")
    return tensors, metadata, dtypes
