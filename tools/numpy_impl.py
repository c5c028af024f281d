"""Independent NumPy implementations of twofour's 2:4 functions (SPEC §1.1, §1.2, §2.2, §2.4, §2.7).

The calling convention of `tools/check_impl.py`: inputs and params by the names of
`vectors/index.json`; outputs as a tuple in the order listed there (or a dict by name). Also holds
deliberately wrong variants for the checker's negative controls (`*_wrong_*`).
"""

import numpy as np

MVUE_EPSILON = np.float32(1.19209e-7)


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


# ---- the checker's calling convention ----------------------------------------------------------


def prune24(w):
    return prune_nm(w, 2, 4)


def pruneNM(w, n, m):  # noqa: N802 (the name of the vectors' function)
    return prune_nm(w, n, m)


def softThreshold24(w):  # noqa: N802
    return soft_threshold24(w)


def ssteScale(w, recipe):  # noqa: N802
    """S-STE's beta in float64: mse <W,S>/<S,S>, l1 ||W||_1/||S||_1, none 1; 1 when S = 0."""
    s = soft_threshold24(w)[0].astype(np.float64)
    x = w.astype(np.float64)
    if recipe == "none":
        return np.float64(1)
    num, den = (np.sum(x * s), np.sum(s * s)) if recipe == "mse" else (np.abs(x).sum(), np.abs(s).sum())
    return np.float64(1) if den == 0 else np.float64(num / den)


def mvue24WithUniforms(g, uniforms):  # noqa: N802
    return mvue24_with_uniforms(g, uniforms)


def mvue24(g, uniforms):
    """The seeded cases store their uniforms: group q uses uniforms[2q], uniforms[2q + 1]."""
    return mvue24_with_uniforms(g, uniforms)


def maskedDecay(grad, w, mask, alpha):  # noqa: N802
    """grad + alpha * (1 - mask) * w, in float32."""
    keep = mask.astype(np.float32)
    return (grad + np.float32(alpha) * ((np.float32(1) - keep) * w)).astype(np.float32)


def flipRate(prev_mask, next_mask):  # noqa: N802
    flips = int(np.count_nonzero(prev_mask != next_mask))
    return np.uint32(flips), np.float64(flips / prev_mask.size)


# ---- deliberately wrong variants (negative controls) -------------------------------------------


def prune24_wrong_ties(w):
    """Hard 2:4 with ties going to the lower index (argsort of -|w|, like the authors' PyTorch)."""
    groups = w.reshape(-1, 4)
    keep = np.argsort(-np.abs(groups), axis=1, kind="stable")[:, :2]
    mask = np.zeros(groups.shape, dtype=np.uint8)
    np.put_along_axis(mask, keep, 1, axis=1)
    pruned = np.where(mask == 1, groups, np.float32(0)).astype(np.float32)
    return pruned.reshape(w.shape), mask.reshape(w.shape)


def mvue24_wrong_float64(g, uniforms):
    """MVUE computed in float64: picks other positions where a uniform sits on a boundary."""
    return mvue24_with_uniforms(g, uniforms, dtype=np.float64)
