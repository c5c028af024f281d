"""Independent NumPy implementations of every function of twofour's test vectors (`vectors/`).

The calling convention of `tools/check_impl.py`: inputs and params by the names of
`vectors/index.json`; outputs as a tuple in the order listed there (or a dict by name). Also holds
deliberately wrong variants for the checker's negative controls (`*_wrong_*`).
"""

import functools

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


def mvue24Probabilities(g):  # noqa: N802
    """Inclusion probabilities p_k = t_k + a_k * sum_{i != k} t_i / rest_i, in float64."""
    a = np.abs(g.reshape(-1, 4).astype(np.float64)) + np.float64(MVUE_EPSILON)
    total = (((a[:, 0] + a[:, 1]) + a[:, 2]) + a[:, 3])[:, None]
    rest = np.stack([sum(a[:, j] for j in range(4) if j != i) for i in range(4)], axis=1)
    p = np.empty_like(a)
    for k in range(4):
        others = [i for i in range(4) if i != k]
        p[:, k] = a[:, k] / total[:, 0] + a[:, k] * sum(a[:, i] / total[:, 0] / rest[:, i] for i in others)
    return p.astype(np.float32).reshape(g.shape)


def compress24(a):
    """Values of the two kept positions (prune24's rule) in ascending order, 4-bit codes packed."""
    groups = a.reshape(-1, 4)
    _, mask = prune_nm(groups, 2, 4)
    kept = np.sort(np.nonzero(mask)[1].reshape(-1, 2), axis=1)
    values = np.take_along_axis(groups, kept, axis=1).reshape(a.shape[0], a.shape[1] // 2)
    codes = (kept[:, 0] | (kept[:, 1] << 2)).astype(np.uint32)
    meta = np.zeros((codes.size + 7) // 8, dtype=np.uint32)
    for g, code in enumerate(codes):
        meta[g // 8] |= np.uint32(code) << np.uint32(4 * (g % 8))
    decompressed = np.zeros_like(groups)
    np.put_along_axis(decompressed, kept, np.take_along_axis(groups, kept, axis=1), axis=1)
    return values.astype(np.float32), meta, decompressed.reshape(a.shape)


@functools.lru_cache(maxsize=1)
def _transposable_words():
    """The 16-bit words of the 4x4 0/1 patterns with two ones per row and column, descending."""
    def ok(w):
        bits = [(w >> (15 - i)) & 1 for i in range(16)]
        rows = all(sum(bits[4 * r : 4 * r + 4]) == 2 for r in range(4))
        return rows and all(sum(bits[c::4]) == 2 for c in range(4))
    return tuple(w for w in range(0xFFFF, -1, -1) if ok(w))


def transposablePatterns():  # noqa: N802
    words = np.array(_transposable_words(), dtype=np.uint32)
    masks = ((words[:, None] >> (15 - np.arange(16))) & 1).astype(np.uint8).reshape(-1, 4, 4)
    return words, masks


def transposableMask24(w):  # noqa: N802
    """Per 4x4 block the pattern with the largest float64 sum of kept |w| (row-major); ties: lowest."""
    _, masks = transposablePatterns()
    rows, cols = w.shape
    blocks = np.abs(w.astype(np.float64)).reshape(rows // 4, 4, cols // 4, 4).transpose(0, 2, 1, 3)
    flat = blocks.reshape(-1, 16)
    sums = np.zeros((flat.shape[0], len(masks)))
    for p, m in enumerate(masks.reshape(-1, 16)):
        s = np.zeros(flat.shape[0])
        for k in np.nonzero(m)[0]:
            s = s + flat[:, k]
        sums[:, p] = s
    best = np.argmax(sums, axis=1)
    mask = masks[best].reshape(rows // 4, cols // 4, 4, 4).transpose(0, 2, 1, 3).reshape(rows, cols)
    pruned = np.where(mask == 1, w, np.float32(0)).astype(np.float32)
    kept = np.abs(pruned.astype(np.float64)).reshape(rows // 4, 4, cols // 4, 4).transpose(0, 2, 1, 3)
    retained = np.zeros(flat.shape[0])
    for k in range(16):
        retained = retained + kept.reshape(-1, 16)[:, k]
    return pruned, mask, best.astype(np.uint8).reshape(rows // 4, cols // 4), retained.reshape(rows // 4, cols // 4)


_M0, _M1, _W0, _W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85


def _philox(c, k):
    """Philox4x32-10 on uint64 arrays holding 32-bit words: c [N, 4], k [N, 2]."""
    c = c.astype(np.uint64)
    k0, k1 = k[:, 0].astype(np.uint64), k[:, 1].astype(np.uint64)
    lo32 = np.uint64(0xFFFFFFFF)
    for r in range(10):
        if r > 0:
            k0, k1 = (k0 + np.uint64(_W0)) & lo32, (k1 + np.uint64(_W1)) & lo32
        p0, p1 = np.uint64(_M0) * c[:, 0], np.uint64(_M1) * c[:, 2]
        c = np.stack([(p1 >> np.uint64(32)) ^ c[:, 1] ^ k0, p1 & lo32,
                      (p0 >> np.uint64(32)) ^ c[:, 3] ^ k1, p0 & lo32], axis=1)
    return c.astype(np.uint32)


def _to_uniform(words):
    return (((words >> np.uint32(9)).astype(np.float64) + 0.5) * 2.0**-23).astype(np.float32)


def philox4x32(counters, keys):
    return _philox(counters, keys)


def uniform4(seed_lo, seed_hi, stream, index):
    zeros = np.zeros_like(index)
    words = _philox(np.stack([index, stream, zeros, zeros], axis=1), np.stack([seed_lo, seed_hi], axis=1))
    return _to_uniform(words), words


def uniforms(seed, stream, count):
    n = np.arange((count + 3) // 4, dtype=np.uint64)
    key = np.array([[seed % 2**32, seed // 2**32]], dtype=np.uint64).repeat(n.size, axis=0)
    counters = np.stack([n, np.full_like(n, stream), n * 0, n * 0], axis=1)
    return _to_uniform(_philox(counters, key)).reshape(-1)[:count]


def _gated(x, dy, act, derivative):
    h = x.shape[1] // 2
    value, gate = x[:, :h].astype(np.float64), x[:, h:].astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        out = value * act(gate)
        dx = np.concatenate([dy * act(gate), dy * value * derivative(gate)], axis=1)
    return out.astype(np.float32), dx.astype(np.float32)


def _gelu_tanh(g):
    return 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g**3)))


def _gelu_tanh_derivative(g):
    t = np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g**3))
    return 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * g * g)


def _sigmoid(g):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-g))


def geglu(x, dy):
    return _gated(x, dy, _gelu_tanh, _gelu_tanh_derivative)


def swiglu(x, dy):
    return _gated(x, dy, lambda g: g * _sigmoid(g), lambda g: _sigmoid(g) * (1 + g * (1 - _sigmoid(g))))


# FP8 (OCP E4M3FN and E5M2): mantissa bits, smallest normal exponent, bias, max, max code, has Inf.
_FP8 = {"e4m3": (3, -6, 7, 448.0, 0x7E, False), "e5m2": (2, -14, 15, 57344.0, 0x7B, True)}


def _encode_fp8(x, fmt):
    m, min_exp, bias, top, top_code, has_inf = _FP8[fmt]
    x = float(x)
    if np.isnan(x):
        return 0x7F
    sign = 0x80 if np.signbit(x) else 0
    a = abs(x)
    if a == np.inf:
        return sign | (0x7C if has_inf else 0x7F)
    if a > top:
        return sign | top_code
    if a == 0:
        return sign
    e = max(np.frexp(a)[1] - 1, min_exp)
    n = round(a / 2.0 ** (e - m))  # Python rounds half to even
    if n == 2 ** (m + 1):
        n, e = 2**m, e + 1
    if n < 2**m:
        return sign | n
    return sign | ((e + bias) << m) | (n - 2**m)


def _decode_fp8(code, fmt):
    m, min_exp, bias, _, _, has_inf = _FP8[fmt]
    code = int(code)
    sign = -1.0 if code & 0x80 else 1.0
    field, mantissa = (code & 0x7F) >> m, code & ((1 << m) - 1)
    if has_inf and field == 31:
        return sign * np.inf if mantissa == 0 else np.nan
    if not has_inf and (code & 0x7F) == 0x7F:
        return np.nan
    if field == 0:
        return sign * mantissa * 2.0 ** (min_exp - m)
    return sign * (2**m + mantissa) * 2.0 ** (field - bias - m)


def decodeFp8(codes, format):  # noqa: N802, A002 (the vectors' parameter name)
    return np.array([_decode_fp8(c, format) for c in codes.reshape(-1)], dtype=np.float32).reshape(codes.shape)


def encodeFp8(x, format):  # noqa: N802, A002
    codes = np.array([_encode_fp8(v, format) for v in x.reshape(-1)], dtype=np.uint8).reshape(x.shape)
    return codes, decodeFp8(codes, format)


def quantizeFp8(x, format):  # noqa: N802, A002
    """Per-tensor amax scaling s = f32(max / amax) (1 for zeros), quantise, dequantise (/ s)."""
    top = _FP8[format][3]
    amax = float(np.abs(x.astype(np.float64)).max()) if x.size else 0.0
    with np.errstate(over="ignore"):
        scale = np.float32(1) if amax == 0 else np.float32(min(np.float32(top / amax), np.finfo(np.float32).max))
    y = (x.astype(np.float64) * np.float64(scale)).astype(np.float32)
    codes, values = encodeFp8(y, format)
    return (values.astype(np.float64) / np.float64(scale)).astype(np.float32), scale, codes


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
