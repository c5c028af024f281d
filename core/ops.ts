/**
 * Differentiable operations: each computes its output with the tape's backend and records the
 * matching backward closure (see `autograd.ts`). Shapes follow the backend: activations are 2-D
 * `[tokens, features]`, attention works on batched 3-D `[batch·heads, T, headDim]` tensors.
 *
 * Every function takes the {@linkcode Tape} first, then at most two operands, then an options
 * object. The backend validates shapes and throws a `RangeError` naming them.
 *
 * Over 600 lines: one function per differentiable operation, each a forward call and its backward
 * closure; the attention compositions are the longest.
 *
 * @module
 */

import type { Backend, HeadsDims, MatmulOptions, Tensor } from "./backend.ts";
import { type Tape, Variable } from "./autograd.ts";

/** A constant (a variable that needs no gradient), e.g. a fixed mask or pooling matrix. */
export function constant(value: Tensor, name?: string): Variable {
  return new Variable(value, { requiresGrad: false, name });
}

/**
 * Matrix product `op(a)·op(b)` of 2-D or batched 3-D operands, `op` being an optional transpose.
 *
 * Backward (`C = op(A)·op(B)`, `G = ∂L/∂C`): `∂A = G·op(B)ᵀ` (transposed back when `A` is used
 * transposed) and `∂B = op(A)ᵀ·G` (likewise), each one backend `matmul` with the right flags.
 *
 * @param tape The tape.
 * @param a Left operand `[M,K]` (or `[K,M]` with `transA`; batched `[B,·,·]`).
 * @param b Right operand `[K,N]` (or `[N,K]` with `transB`; batched `[B,·,·]`).
 * @param options `{ transA, transB, triangular }`. A `triangular` hint (see `MatmulOptions`) is
 * passed on to the backward products: with `"lower-out"` the caller also promises that `C`'s
 * gradient is zero above the diagonal (true when its consumer reads only `j ≤ i`, as the causal
 * softmax does).
 * @returns The product `[M,N]` (or `[B,M,N]`).
 * @throws {RangeError} From the backend, if the shapes do not match.
 * @example
 * ```ts
 * import { ReferenceBackend } from "./reference_backend.ts";
 * import { Tape, Variable } from "./autograd.ts";
 * import { matmul } from "./ops.ts";
 * const backend = new ReferenceBackend();
 * const tape = new Tape(backend, { recording: false });
 * const a = new Variable(backend.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]));
 * const c = matmul(tape, a, a, { transB: true }); // a·aᵀ
 * const values = await backend.read(c.value);
 * if (values[1] !== 11) throw new Error("unexpected");
 * ```
 */
export function matmul(
  tape: Tape,
  a: Variable,
  b: Variable,
  options: MatmulOptions = {},
): Variable {
  const be = tape.backend;
  const transA = options.transA ?? false, transB = options.transB ?? false;
  const tri = options.triangular;
  const out = be.matmul(a.value, b.value, { transA, transB, triangular: tri });
  // The hints the backward products inherit (causal attention), by their left factor: with only
  // C's lower triangle read, ∇C is lower triangular (its consumer's gradient is zero above), so
  // ∇op(A) = ∇C·op(B)ᵀ has a lower left factor and, with transB, ∇B = ∇Cᵀ·op(A) an upper one;
  // with op(A) lower triangular, only ∇op(A)'s lower triangle is read and, without transB,
  // ∇B = op(A)ᵀ·∇C has an upper left factor.
  const daHint = tri === "lower-out" ? "lower-a" : tri === "lower-a" ? "lower-out" : undefined;
  const dbHint = (transB ? tri === "lower-out" : tri === "lower-a") ? "upper-a" : undefined;
  return tape.record(out, [a, b], (g) => {
    if (a.requiresGrad) {
      const da = transA
        ? be.matmul(b.value, g, { transA: transB, transB: true })
        : be.matmul(g, b.value, { transB: !transB, triangular: daHint });
      tape.accumulate(a, da);
    }
    if (b.requiresGrad) {
      const db = transB
        ? be.matmul(g, a.value, { transA: true, transB: transA, triangular: dbHint })
        : be.matmul(a.value, g, { transA: !transA, triangular: dbHint });
      tape.accumulate(b, db);
    }
  });
}

/**
 * A linear map without bias, `Z = X·Wᵀ` with `W[out, in]` (SPEC §0).
 *
 * @param tape The tape.
 * @param x Input `[T, in]`.
 * @param w Weight `[out, in]`.
 * @returns `Z[T, out]`.
 * @throws {RangeError} From the backend, if the shapes do not match.
 */
export function linear(tape: Tape, x: Variable, w: Variable): Variable {
  return matmul(tape, x, w, { transB: true });
}

/**
 * Element-wise sum `a + b` (same shape).
 *
 * @param tape The tape.
 * @param a First operand.
 * @param b Second operand.
 * @returns `a + b`.
 * @throws {RangeError} From the backend, if the shapes differ.
 */
export function add(tape: Tape, a: Variable, b: Variable): Variable {
  const out = tape.backend.add(a.value, b.value);
  return tape.record(out, [a, b], (g) => {
    tape.accumulate(a, g);
    tape.accumulate(b, g);
  });
}

/**
 * Element-wise product `a ⊙ b` (same shape).
 *
 * @param tape The tape.
 * @param a First operand.
 * @param b Second operand.
 * @returns `a ⊙ b`.
 * @throws {RangeError} From the backend, if the shapes differ.
 */
export function mul(tape: Tape, a: Variable, b: Variable): Variable {
  const be = tape.backend;
  const out = be.mul(a.value, b.value);
  return tape.record(out, [a, b], (g) => {
    if (a.requiresGrad) tape.accumulate(a, be.mul(g, b.value));
    if (b.requiresGrad) tape.accumulate(b, be.mul(g, a.value));
  });
}

/**
 * Multiplication by a constant, `s·a`.
 *
 * @param tape The tape.
 * @param a The operand.
 * @param s The factor.
 * @returns `s·a`.
 */
export function scale(tape: Tape, a: Variable, s: number): Variable {
  const be = tape.backend;
  return tape.record(be.scale(a.value, s), [a], (g) => tape.accumulate(a, be.scale(g, s)));
}

/**
 * The same values with a new shape of the same size.
 *
 * @param tape The tape.
 * @param a The operand.
 * @param shape The new shape.
 * @returns `a` reshaped.
 * @throws {RangeError} From the backend, if the sizes differ.
 */
export function reshape(tape: Tape, a: Variable, shape: readonly number[]): Variable {
  const be = tape.backend;
  const original = a.value.shape;
  return tape.record(be.reshape(a.value, shape), [a], (g) => {
    tape.accumulate(a, be.reshape(g, original));
  });
}

/**
 * Columns `[start, start + width)` of a 2-D tensor; the backward pass pads the gradient back with
 * zeros.
 *
 * @param tape The tape.
 * @param x A 2-D operand `[N, cols]`.
 * @param start First column.
 * @param width Number of columns.
 * @returns `[N, width]`.
 * @throws {RangeError} From the backend, if the range is outside the columns.
 */
export function sliceCols(tape: Tape, x: Variable, start: number, width: number): Variable {
  const be = tape.backend;
  const cols = x.value.shape[1];
  return tape.record(be.sliceCols(x.value, start, width), [x], (g) => {
    tape.accumulate(x, be.padCols(g, start, cols));
  });
}

/**
 * Views `x` as `[A, B, C, D]` and swaps the middle axes → `[A, C, B, D]`; its own inverse with
 * `[A, C, B, D]`, which is the backward pass.
 *
 * @param tape The tape.
 * @param x The operand (any shape of size `A·B·C·D`).
 * @param dims `[A, B, C, D]`.
 * @returns The permuted tensor, shape `[A, C, B, D]`.
 * @throws {RangeError} From the backend, if the size does not match `dims`.
 */
export function permute0213(
  tape: Tape,
  x: Variable,
  dims: readonly [number, number, number, number],
): Variable {
  const be = tape.backend;
  const [a, b, c, d] = dims;
  const original = x.value.shape;
  return tape.record(be.permute0213(x.value, dims), [x], (g) => {
    tape.accumulate(x, be.reshape(be.permute0213(g, [a, c, b, d]), original));
  });
}

/**
 * Rows of an embedding table picked by token indices.
 *
 * @param tape The tape.
 * @param table The table `[V, d]`.
 * @param indices An `i32` tensor `[N]` of row indices.
 * @returns `[N, d]`.
 * @throws {RangeError} From the backend, on a bad dtype, shape or out-of-range index.
 */
export function embedding(tape: Tape, table: Variable, indices: Tensor): Variable {
  const be = tape.backend;
  const vocab = table.value.shape[0];
  return tape.record(be.embedding(table.value, indices), [table], (g) => {
    tape.accumulate(table, be.embeddingBackward(indices, g, vocab));
  });
}

/**
 * LayerNorm over the last axis with a scale and a shift.
 *
 * @param tape The tape.
 * @param x Input `[N, d]`.
 * @param weight Scale `[d]`.
 * @param bias Shift `[d]`.
 * @param options `{ eps }` (default `1e-5`, as PyTorch/nanoGPT).
 * @returns `[N, d]`.
 * @throws {RangeError} From the backend, if the shapes do not match.
 */
export function layerNorm(
  tape: Tape,
  x: Variable,
  weight: Variable,
  bias: Variable,
  options: { eps?: number } = {},
): Variable {
  const be = tape.backend;
  const { y, mean, rstd } = be.layerNorm(x.value, weight.value, bias.value, options.eps ?? 1e-5);
  return tape.record(y, [x, weight, bias], (g) => {
    // A gradient x has already (a residual stream's) is summed by the backward pass itself.
    const prior = x.requiresGrad ? x.grad : undefined;
    const args = [x.value, weight.value, mean, rstd, g] as const;
    const { dx, dw, db } = prior === undefined
      ? be.layerNormBackward(...args)
      : be.layerNormBackwardAdd(...args, prior);
    if (prior === undefined) tape.accumulate(x, dx);
    else x.grad = dx;
    tape.accumulate(weight, dw);
    tape.accumulate(bias, db);
  });
}

/**
 * A residual add and the LayerNorm of its result (the backend's `addLayerNorm`, one pass):
 * `sum = x + r`, `y = layerNorm(sum)`. The backward pass sums `sum`'s own gradient into the
 * LayerNorm's input gradient (`layerNormBackwardAdd`) and hands the total to `x` and `r`.
 *
 * @param tape The tape.
 * @param operands `[x, r]`: the residual stream `[N, d]` and the branch added to it (same shape).
 * @param weight The scale `[d]`.
 * @param bias The shift `[d]`.
 * @param options `{ eps }` (default `1e-5`).
 * @returns `[sum, y]`.
 * @throws {RangeError} From the backend, on shapes that do not match.
 */
export function addLayerNorm(
  tape: Tape,
  [x, r]: readonly [Variable, Variable],
  weight: Variable,
  bias: Variable,
  options: { eps?: number } = {},
): [Variable, Variable] {
  const be = tape.backend;
  const eps = options.eps ?? 1e-5;
  const { sum, y, mean, rstd } = be.addLayerNorm(x.value, r.value, weight.value, bias.value, eps);
  const [s, out] = tape.recordMany([sum, y], [x, r, weight, bias], ([gSum, gY]) => {
    let dSum = gSum;
    if (gY !== undefined) {
      const args = [sum, weight.value, mean, rstd, gY] as const;
      const grads = gSum === undefined
        ? be.layerNormBackward(...args)
        : be.layerNormBackwardAdd(...args, gSum);
      dSum = grads.dx;
      tape.accumulate(weight, grads.dw);
      tape.accumulate(bias, grads.db);
    }
    tape.accumulate(x, dSum!);
    tape.accumulate(r, dSum!);
  });
  return [s, out];
}

/**
 * GELU with the exact erf, `0.5·x·(1 + erf(x/√2))`.
 *
 * @param tape The tape.
 * @param x The operand.
 * @returns `GELU(x)`.
 */
export function gelu(tape: Tape, x: Variable): Variable {
  const be = tape.backend;
  return tape.record(be.gelu(x.value), [x], (g) => tape.accumulate(x, be.geluBackward(x.value, g)));
}

/**
 * GEGLU (SPEC §3) on rows `[x | gate]`: `x ⊙ GELU_tanh(gate)`.
 *
 * @param tape The tape.
 * @param x Input `[N, 2h]`.
 * @returns `[N, h]`.
 * @throws {RangeError} From the backend, if the row length is odd.
 */
export function geglu(tape: Tape, x: Variable): Variable {
  const be = tape.backend;
  return tape.record(be.geglu(x.value), [x], (g) => {
    tape.accumulate(x, be.gegluBackward(x.value, g));
  });
}

/**
 * SwiGLU (SPEC §3) on rows `[x | gate]`: `x ⊙ SiLU(gate)`.
 *
 * @param tape The tape.
 * @param x Input `[N, 2h]`.
 * @returns `[N, h]`.
 * @throws {RangeError} From the backend, if the row length is odd.
 */
export function swiglu(tape: Tape, x: Variable): Variable {
  const be = tape.backend;
  return tape.record(be.swiglu(x.value), [x], (g) => {
    tape.accumulate(x, be.swigluBackward(x.value, g));
  });
}

/** Seed and stream of a dropout mask ({@linkcode dropout}). */
export interface DropoutOptions {
  /** Probability of zeroing an element, in `[0, 1)`. */
  p: number;
  /** Run seed. */
  seed: number;
  /** Counter-based RNG stream of this dropout site and step (`streams.ts`). */
  stream: number;
}

/**
 * Inverted dropout with a counter-based mask (the backend's `dropout`); `p = 0` returns `x` itself.
 * The backward pass applies the same mask to the gradient.
 *
 * @param tape The tape.
 * @param x The operand.
 * @param options `{ p, seed, stream }`.
 * @returns `x` with dropped elements zeroed and the rest scaled by `1/(1−p)`.
 * @throws {RangeError} If `p` is not in `[0, 1)`.
 */
export function dropout(tape: Tape, x: Variable, options: DropoutOptions): Variable {
  const { p, seed, stream } = options;
  if (!(p >= 0 && p < 1)) {
    throw new RangeError(`Cannot apply dropout: p must be in [0, 1), got ${p}`);
  }
  if (p === 0) return x;
  const be = tape.backend;
  return tape.record(be.dropout(x.value, p, seed, stream), [x], (g) => {
    tape.accumulate(x, be.dropout(g, p, seed, stream));
  });
}

/**
 * Causal softmax of attention scores, `softmax(scale·s)` per row with columns after the row masked.
 *
 * @param tape The tape.
 * @param scores `[B, T, T]`.
 * @param scaleFactor The factor applied before the softmax (`1/√headDim`).
 * @returns Probabilities `[B, T, T]`.
 * @throws {RangeError} From the backend, if the scores are not `[B, T, T]`.
 */
export function causalSoftmax(tape: Tape, scores: Variable, scaleFactor: number): Variable {
  const be = tape.backend;
  const p = be.causalSoftmax(scores.value, scaleFactor);
  return tape.record(p, [scores], (g) => {
    tape.accumulate(scores, be.softmaxBackward(p, g, { scale: scaleFactor, causal: true }));
  });
}

/** Shape and dropout of {@linkcode causalSelfAttention}. */
export interface AttentionOptions {
  /** Number of sequences `B`. */
  batchSize: number;
  /** Sequence length `T`. */
  seqLen: number;
  /** Number of heads (`d % nHead == 0`). */
  nHead: number;
  /** Dropout on the attention probabilities (omit or `p = 0` for none). */
  dropout?: DropoutOptions;
}

/** `d` of packed projections `qkv[B·T, 3d]` with `d` a multiple of `h`; else a RangeError. */
function packedWidth(qkv: Variable, B: number, T: number, h: number, what: string): number {
  const [rows, cols] = qkv.value.shape;
  if (qkv.value.shape.length !== 2 || rows !== B * T || cols % 3 !== 0 || (cols / 3) % h !== 0) {
    throw new RangeError(
      `Cannot compute ${what}: qkv must be [B·T, 3d] = [${B}·${T}, 3d] with d a ` +
        `multiple of nHead ${h}, got [${qkv.value.shape}]`,
    );
  }
  return cols / 3;
}

/**
 * Multi-head causal self-attention on packed projections: `qkv[B·T, 3d]` holds `[q | k | v]`;
 * each is split into heads (`[B, T, h, hd]` → `[B·h, T, hd]`, one {@linkcode splitHeads}), then
 * `softmax_causal(q·kᵀ/√hd)·v` (the backend's fused `causalAttention` where it offers one and no
 * dropout is asked for, SPEC §8.5), and the heads are merged back to `[B·T, d]`.
 *
 * @param tape The tape.
 * @param qkv Packed projections `[B·T, 3d]`.
 * @param options `{ batchSize, seqLen, nHead, dropout }`.
 * @returns The attention output `[B·T, d]` (before the output projection).
 * @throws {RangeError} If `qkv` is not `[B·T, 3d]` or `d` is not a multiple of `nHead`.
 */
export function causalSelfAttention(
  tape: Tape,
  qkv: Variable,
  options: AttentionOptions,
): Variable {
  const { batchSize: B, seqLen: T, nHead: h } = options;
  const d = packedWidth(qkv, B, T, h, "causal self-attention"), hd = d / h;
  const [q, k, v] = splitHeads(tape, qkv, { batch: B, heads: h, parts: 3 });
  const scale = 1 / Math.sqrt(hd);
  // The backend's fused kernel where it offers one for this shape (no dropout on probabilities
  // it never stores); otherwise the composed products, whose triangular hints let a backend skip
  // the work above the diagonal that the causal softmax never reads.
  const noDropout = options.dropout === undefined || options.dropout.p === 0;
  const y = (noDropout ? fusedCausalAttention(tape, q, k, v, scale) : undefined) ?? (() => {
    const scores = matmul(tape, q, k, { transB: true, triangular: "lower-out" });
    let att = causalSoftmax(tape, scores, scale);
    if (options.dropout !== undefined) att = dropout(tape, att, options.dropout);
    return matmul(tape, att, v, { triangular: "lower-a" }); // [B·h, T, hd]
  })();
  return mergeHeads(tape, [y], B); // [B·T, d]
}

/**
 * Attention heads of packed rows (the backend's {@linkcode Backend.splitHeads}): `x [B·T, P·d]`
 * → `P` variables `[B·heads, T, d/heads]`; the backward pass merges their gradients in one
 * operation.
 *
 * @param tape The tape.
 * @param x Packed rows `[B·T, P·d]`.
 * @param dims `{ batch, heads, parts }`.
 * @returns The `P` parts.
 * @throws {RangeError} From the backend, if `dims` do not divide `x`'s shape.
 */
export function splitHeads(tape: Tape, x: Variable, dims: HeadsDims): Variable[] {
  const be = tape.backend;
  const values = be.splitHeads(x.value, dims);
  return tape.recordMany(values, [x], (grads) => {
    const full = grads.map((g, i) => g ?? be.full(values[i].shape, 0));
    tape.accumulate(x, be.mergeHeads(full, dims.batch));
  });
}

/**
 * The inverse of {@linkcode splitHeads}: `P` variables `[B·h, T, hd]` → `[B·T, P·h·hd]`.
 *
 * @param tape The tape.
 * @param parts The parts, one shape.
 * @param batch `B`.
 * @returns The packed rows.
 * @throws {RangeError} From the backend, on parts of different shapes or not `[B·h, T, hd]`.
 */
export function mergeHeads(tape: Tape, parts: readonly Variable[], batch: number): Variable {
  const be = tape.backend;
  const out = be.mergeHeads(parts.map((p) => p.value), batch); // validates the parts
  const dims = { batch, heads: parts[0].value.shape[0] / batch, parts: parts.length };
  return tape.record(out, parts, (g) => {
    be.splitHeads(g, dims).forEach((gi, i) => tape.accumulate(parts[i], gi));
  });
}

/**
 * `softmax_causal(scale·q·kᵀ)·v` through the backend's fused operation (SPEC §8.5), or `undefined`
 * where the backend has none or prefers the composed operations for this shape.
 */
function fusedCausalAttention(
  tape: Tape,
  q: Variable,
  k: Variable,
  v: Variable,
  scale: number,
): Variable | undefined {
  const be = tape.backend;
  const fused = be.causalAttention?.(q.value, k.value, v.value, scale);
  if (fused === undefined) return undefined;
  if (be.causalAttentionBackward === undefined) {
    throw new TypeError(
      `Cannot differentiate fused causal attention: the ${be.name} backend offers causalAttention without causalAttentionBackward`,
    );
  }
  const saved = { q: q.value, k: k.value, v: v.value, scale, ...fused };
  return tape.record(fused.out, [q, k, v], (g) => {
    const grads = be.causalAttentionBackward!(saved, g);
    tape.accumulate(q, grads.dq);
    tape.accumulate(k, grads.dk);
    tape.accumulate(v, grads.dv);
  });
}

/**
 * Mean cross-entropy of logits against integer targets.
 *
 * @param tape The tape.
 * @param logits `[N, C]`.
 * @param targets An `i32` tensor `[N]` of classes in `[0, C)`.
 * @returns The mean loss, `[1]`.
 * @throws {RangeError} From the backend, on a bad dtype, shape or out-of-range target.
 */
export function crossEntropy(tape: Tape, logits: Variable, targets: Tensor): Variable {
  const be = tape.backend;
  return tape.record(be.crossEntropy(logits.value, targets), [logits], (g) => {
    tape.accumulate(logits, be.crossEntropyBackward(logits.value, targets, g));
  });
}

/**
 * Mean over the tokens of each sequence: `[B·T, d]` → `[B, d]`, computed as the batched product of
 * a constant `[B, 1, T]` tensor of `1/T` with the hidden states viewed as `[B, T, d]`.
 *
 * @param tape The tape.
 * @param x Hidden states `[B·T, d]`, sequence-major.
 * @param batchSize `B` (must divide the row count).
 * @returns `[B, d]`.
 * @throws {RangeError} If `x` is not 2-D or `B` does not divide its row count.
 */
export function meanPool(tape: Tape, x: Variable, batchSize: number): Variable {
  const [rows, d] = x.value.shape;
  if (
    x.value.shape.length !== 2 || !Number.isInteger(batchSize) || batchSize <= 0 ||
    rows % batchSize !== 0
  ) {
    throw new RangeError(
      `Cannot mean-pool: expected [B·T, d] with B = ${batchSize} dividing the rows, got [${x.value.shape}]`,
    );
  }
  const T = rows / batchSize;
  const weights = constant(tape.backend.full([batchSize, 1, T], 1 / T));
  const pooled = matmul(tape, weights, reshape(tape, x, [batchSize, T, d]));
  return reshape(tape, pooled, [batchSize, d]);
}

/**
 * Zero-pads the columns of a 2-D tensor: `x[N, width]` goes to columns `[start, start + width)` of
 * an `[N, cols]` result; the backward pass slices the gradient back. The inverse of
 * {@linkcode sliceCols}.
 *
 * @param tape The tape.
 * @param x A 2-D operand `[N, width]`.
 * @param start First column of `x` in the result.
 * @param cols Width of the result.
 * @returns `[N, cols]`.
 * @throws {RangeError} From the backend, if `[start, start + width)` is outside `[0, cols)`.
 */
export function padCols(tape: Tape, x: Variable, start: number, cols: number): Variable {
  const be = tape.backend;
  const width = x.value.shape[1];
  return tape.record(be.padCols(x.value, start, cols), [x], (g) => {
    tape.accumulate(x, be.sliceCols(g, start, width));
  });
}

/** Shape of {@linkcode attention} and its key-padding bias ({@linkcode attentionBias}). */
export interface FullAttentionOptions {
  /** Number of sequences `B`. */
  batchSize: number;
  /** Query positions per sequence `Tq`. */
  queryLen: number;
  /** Key positions per sequence `Tk`. */
  keyLen: number;
  /** Number of heads (`d % nHead == 0`). */
  nHead: number;
}

/** Added to masked scores before the softmax: small enough to vanish after `exp`, finite in f32. */
const MASKED_SCORE = -1e4;

/**
 * The additive score bias of {@linkcode attention} for sequences whose keys at positions
 * `≥ keyLengths[b]` are padding: a constant `[B·h, N, N]` tensor with `N = Tk + Tq` (see
 * {@linkcode attention} for the layout), `−1e4` (before the `1/√hd` scale) at every masked entry of a query row
 * and 0 elsewhere. Build it once per forward pass and pass it to every layer of the same shape.
 *
 * @param backend The backend.
 * @param options `{ batchSize, queryLen, keyLen, nHead }`.
 * @param keyLengths Valid keys of each sequence, each in `[1, Tk]` (`B` entries).
 * @returns The bias (a backend temporary).
 * @throws {RangeError} If `keyLengths` has the wrong length or an entry outside `[1, Tk]`.
 */
export function attentionBias(
  backend: Backend,
  options: FullAttentionOptions,
  keyLengths: ArrayLike<number>,
): Tensor {
  const { batchSize: B, queryLen: Tq, keyLen: Tk, nHead: h } = options;
  if (keyLengths.length !== B) {
    throw new RangeError(
      `Cannot build an attention bias: expected ${B} key lengths, got ${keyLengths.length}`,
    );
  }
  const N = Tk + Tq;
  const bias = new Float32Array(B * h * N * N);
  for (let b = 0; b < B; b++) {
    const valid = keyLengths[b];
    if (!Number.isInteger(valid) || valid < 1 || valid > Tk) {
      throw new RangeError(
        `Cannot build an attention bias: key length ${b} must be an integer in [1, ${Tk}], got ${valid}`,
      );
    }
    for (let head = 0; head < h; head++) {
      const base = (b * h + head) * N * N;
      for (let r = Tk; r < N; r++) {
        // Query row r sees columns 0…r under the causal softmax: padded keys and the query slots.
        for (let c = valid; c <= r; c++) bias[base + r * N + c] = MASKED_SCORE;
      }
    }
  }
  return backend.tensor(bias, [B * h, N, N]);
}

/**
 * Multi-head attention without a causal mask (an encoder's self-attention, a decoder's
 * cross-attention): `softmax(q·kᵀ/√hd + mask)·v` per head, keys beyond each sequence's length
 * masked. `q[B·Tq, d]` holds the queries, `kv[B·Tk, 2d]` packs `[k | v]`.
 *
 * The backend's only softmax is causal, so each head's scores are laid out in an `N×N` square,
 * `N = Tk + Tq`: keys (and values) in rows `0…Tk−1` of `k'`, `v'`, queries in rows `Tk…N−1` of
 * `q'`, zeros elsewhere. Query row `Tk + i` then sees every key column under the causal mask;
 * {@linkcode attentionBias} masks the padded keys and the query slots `Tk…Tk+i`, and the rows of
 * the product with `v'` from `Tk` on are the attention output. Costs `(N/Tq)·(N/Tk)` times the
 * rectangular scores; exact otherwise (masked probabilities are `exp(−1e4)`-small, i.e. 0 in f32).
 *
 * @param tape The tape.
 * @param q Queries `[B·Tq, d]`.
 * @param kv Keys and values `[B·Tk, 2d]`.
 * @param bias The key mask from {@linkcode attentionBias} for the same options.
 * @param options `{ batchSize, queryLen, keyLen, nHead }`.
 * @returns The attention output `[B·Tq, d]` (before the output projection).
 * @throws {RangeError} If the shapes do not match the options.
 */
export function attention(
  tape: Tape,
  q: Variable,
  kv: Variable,
  bias: Tensor,
  options: FullAttentionOptions,
): Variable {
  const { batchSize: B, queryLen: Tq, keyLen: Tk, nHead: h } = options;
  const d = q.value.shape[1];
  const N = Tk + Tq;
  const ok = q.value.shape.length === 2 && q.value.shape[0] === B * Tq && d % h === 0 &&
    kv.value.shape.length === 2 && kv.value.shape[0] === B * Tk && kv.value.shape[1] === 2 * d &&
    bias.shape.length === 3 && bias.shape[0] === B * h && bias.shape[1] === N &&
    bias.shape[2] === N;
  if (!ok) {
    throw new RangeError(
      `Cannot compute attention: expected q [${B}·${Tq}, d], kv [${B}·${Tk}, 2d] with d a multiple ` +
        `of nHead ${h} and bias [${B * h}, ${N}, ${N}], got q [${q.value.shape}], kv ` +
        `[${kv.value.shape}], bias [${bias.shape}]`,
    );
  }
  const hd = d / h;
  const heads = (x: Variable, T: number) =>
    reshape(tape, permute0213(tape, x, [B, T, h, hd]), [B * h, T * hd]);
  const square = (x: Variable, start: number) =>
    reshape(tape, padCols(tape, x, start * hd, N * hd), [B * h, N, hd]);
  const qSquare = square(heads(q, Tq), Tk);
  const kSquare = square(heads(sliceCols(tape, kv, 0, d), Tk), 0);
  const vSquare = square(heads(sliceCols(tape, kv, d, d), Tk), 0);
  const scores = add(tape, matmul(tape, qSquare, kSquare, { transB: true }), constant(bias));
  const probabilities = causalSoftmax(tape, scores, 1 / Math.sqrt(hd));
  const ySquare = reshape(tape, matmul(tape, probabilities, vSquare), [B * h, N * hd]);
  const y = reshape(tape, sliceCols(tape, ySquare, Tk * hd, Tq * hd), [B, h, Tq, hd]);
  return reshape(tape, permute0213(tape, y, [B, h, Tq, hd]), [B * Tq, d]);
}

/**
 * Multi-head self-attention without a causal mask on packed projections `qkv[B·T, 3d]`
 * (`[q | k | v]`, as {@linkcode causalSelfAttention}): {@linkcode attention} of `q` on `[k | v]`,
 * keys beyond each sequence's length masked by `bias`.
 *
 * @param tape The tape.
 * @param qkv Packed projections `[B·T, 3d]`.
 * @param bias The key mask from {@linkcode attentionBias} for `options`.
 * @param options `{ batchSize, queryLen, keyLen, nHead }` with `queryLen = keyLen = T`.
 * @returns The attention output `[B·T, d]` (before the output projection).
 * @throws {RangeError} If `queryLen != keyLen` or `qkv` is not `[B·T, 3d]` with `d` a multiple of
 * `nHead`, or from {@linkcode attention}.
 */
export function selfAttention(
  tape: Tape,
  qkv: Variable,
  bias: Tensor,
  options: FullAttentionOptions,
): Variable {
  const { batchSize: B, queryLen: T, keyLen, nHead } = options;
  if (keyLen !== T) {
    throw new RangeError(
      `Cannot compute self-attention: queryLen and keyLen must be equal, got ${T} and ${keyLen}`,
    );
  }
  const d = packedWidth(qkv, B, T, nHead, "self-attention");
  return attention(tape, sliceCols(tape, qkv, 0, d), sliceCols(tape, qkv, d, 2 * d), bias, options);
}
