/**
 * The CPU backend's heaviest element-wise loops as functions of a row or element range, so the
 * backend can run half of each on a helper thread (`_worker.ts`) over shared memory. Each writes
 * only its own range. Private to `core/cpu/`.
 *
 * @module
 */

import { fastExp } from "./_exp.ts";
import { type AdamWArrays, EXP_PIECE, simdKernels as simdExp } from "./_exp_wasm.ts";
import { geluBackwardRange, geluRange } from "./_gelu.ts";
import { layerNormRows, softmaxBackwardRows } from "./_four_rows.ts";

let rowScratch = new Float32Array(0);

/**
 * Rows `[r0, r1)` of `z[n, c]` (targets `t`): `max`, `Σ exp(z − max)` (float32 exponentials) and
 * the cross-entropy gradient `factor·(exp(z − max)/Σ − onehot(t))` (SPEC §10.6).
 */
export function crossEntropyRows(
  z: Float32Array,
  t: Int32Array,
  grads: Float32Array,
  sums: Float64Array,
  maxes: Float64Array,
  factor: number,
  c: number,
  r0: number,
  r1: number,
): void {
  const w = simdExp();
  if (w) return w.crossEntropyRows(z, t, { grads, sums, maxes }, factor, { c, r0, r1 });
  if (rowScratch.length < c) rowScratch = new Float32Array(c);
  const exps = rowScratch;
  for (let r = r0; r < r1; r++) {
    const o = r * c;
    let max = -Infinity;
    for (let k = 0; k < c; k++) if (z[o + k] > max) max = z[o + k];
    let sum = 0;
    for (let k = 0; k < c; k++) {
      exps[k] = fastExp(z[o + k] - max);
      sum += exps[k]; // the stored value, as the SIMD kernel sums
    }
    const f = factor / sum;
    for (let k = 0; k < c; k++) grads[o + k] = f * exps[k];
    grads[o + t[r]] = factor * (exps[t[r]] / sum - 1);
    sums[r] = sum;
    maxes[r] = max;
  }
}

/** Elements `[i0, i1)` of `a + b` (float32 sums: the float64 sum rounded once, as the reference). */
export function addRange(
  a: Float32Array,
  b: Float32Array,
  out: Float32Array,
  i0: number,
  i1: number,
): void {
  const w = simdExp();
  if (w) return w.add(a, b, out, i0, i1);
  for (let i = i0; i < i1; i++) out[i] = a[i] + b[i];
}

/** The scalars of one AdamW step (`c1`, `c2`: bias corrections; `s`: the gradient's scale). */
export interface AdamWScalars {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  c1: number;
  c2: number;
  frozen: boolean;
  s: number;
}

/**
 * Elements `[i0, i1)` of one AdamW step in place (the reference's arithmetic; two float64 lanes
 * with WebAssembly SIMD, about 1.5× faster).
 */
export function adamwRange(
  pd: Float32Array,
  gd: Float32Array,
  md: Float32Array,
  vd: Float32Array,
  h: AdamWScalars,
  i0: number,
  i1: number,
): void {
  const w = simdExp();
  if (w) return w.adamw({ pd, gd, md, vd }, h, i0, i1);
  const { lr, beta1, beta2, eps, weightDecay, c1, c2, frozen, s } = h;
  for (let i = i0; i < i1; i++) {
    const g = s === 1 ? gd[i] : Math.fround(s * gd[i]);
    md[i] = beta1 * md[i] + (1 - beta1) * g;
    if (!frozen) vd[i] = beta2 * vd[i] + (1 - beta2) * g * g;
    const mHat = md[i] / c1, vHat = vd[i] / c2;
    pd[i] = pd[i] - lr * (mHat / (Math.sqrt(vHat) + eps) + weightDecay * pd[i]);
  }
}

/** One AdamW update's arrays (parameter, gradient, moments) and scalars. */
export interface AdamWTensors extends AdamWArrays {
  h: AdamWScalars;
}

/**
 * Elements `[i0, i1)` of the concatenation of several AdamW updates (update `k` holds elements
 * `[starts[k], starts[k + 1])`), each by {@linkcode adamwRange}.
 */
export function adamwSteps(
  steps: readonly AdamWTensors[],
  starts: readonly number[],
  i0: number,
  i1: number,
): void {
  for (let k = 0; k < steps.length; k++) {
    const lo = Math.max(i0, starts[k]), hi = Math.min(i1, starts[k + 1]);
    const { pd, gd, md, vd, h } = steps[k];
    if (lo < hi) adamwRange(pd, gd, md, vd, h, lo - starts[k], hi - starts[k]);
  }
}

/** The reference's error for row `q` (row `q mod T` of batch `⌊q/T⌋`) with a non-finite maximum. */
function nonFiniteRow(action: string, q: number, T: number, max: number): RangeError {
  const where = `row ${q % T} of batch ${Math.floor(q / T)}`;
  return new RangeError(`Cannot ${action}: ${where} has largest scaled score ${max}`);
}

/** Where each pending row of `causalSoftmaxRows` starts in the scratch. */
const rowStarts = new Int32Array(EXP_PIECE + 1);
let scalarScratch: Float64Array | undefined;

/**
 * Rows `[q0, q1)` (row `q` is row `q mod T` of batch `⌊q/T⌋`) of the causal softmax of
 * `scale·d[B, T, T]`, as the reference's loop (`reference_nn.ts`) with the SIMD `exp` over many
 * rows at once (the scalar `fastExp` without it). `T` at most 4,096.
 */
export function causalSoftmaxRows(
  d: Float32Array,
  out: Float32Array,
  T: number,
  scale: number,
  action: string,
  q0: number,
  q1: number,
): void {
  const w = simdExp();
  if (w) {
    const bad = w.causalSoftmax(d, out, T, scale, q0, q1);
    if (bad < 0) return;
    let max = -Infinity; // the reference's loop, for its message
    for (let c = 0; c <= bad % T; c++) {
      if (scale * d[bad * T + c] > max) max = scale * d[bad * T + c];
    }
    throw nonFiniteRow(action, bad, T, max);
  }
  const z = scalarScratch ??= new Float64Array(EXP_PIECE + 4);
  let first = q0, used = 0, rows = 0;
  const flush = (end: number) => {
    for (let i = 0; i < used; i++) z[i] = fastExp(z[i]);
    for (let q = first, j = 0; q < end; q++, j++) {
      const r = q % T, o = q * T, start = rowStarts[j];
      let sum = 0;
      for (let c = 0; c <= r; c++) sum += z[start + c];
      for (let c = 0; c <= r; c++) out[o + c] = z[start + c] / sum;
      for (let c = r + 1; c < T; c++) out[o + c] = 0; // a pooled buffer is not zeroed
    }
    first = end;
    used = rows = 0;
  };
  for (let q = q0; q < q1; q++) {
    const r = q % T, o = q * T;
    if (used + r + 1 > EXP_PIECE) flush(q);
    let max = -Infinity;
    for (let c = 0; c <= r; c++) {
      const v = scale * d[o + c];
      z[used + c] = v;
      if (v > max) max = v;
    }
    if (!Number.isFinite(max)) throw nonFiniteRow(action, q, T, max);
    for (let c = 0; c <= r; c++) z[used + c] -= max;
    rowStarts[rows++] = used;
    used += r + 1;
  }
  flush(q1);
}

/** Control words shared with the helper: the last finished call's number (negative: it failed), and the helper's state. */
export const SEQ = 0, STATE = 1;
/** Helper states: waiting for work, gone, claimed by the caller (a call is on its way). */
export const IDLE = 1, CLOSED = 2, CLAIMED = 3;

/** The kernels a helper thread runs, by name. */
export const KERNELS = {
  crossEntropyRows,
  geluRange,
  geluBackwardRange,
  adamwSteps,
  causalSoftmaxRows,
  layerNormRows,
  softmaxBackwardRows,
} as const;

/** A kernel's name. */
export type KernelName = keyof typeof KERNELS;
