/**
 * Test support for the fused causal attention kernels (`gpu/kernels/attention_*_test.ts`,
 * `tests/gpu_backend_test.ts`): the shared cases and their seeded inputs, the reference backend's
 * results on them, the per-element error bounds against that float64 oracle computed from the
 * data (derivation: SPEC §10.7), and the comparison that applies them.
 *
 * @module
 */

import { assertClose, seededFloats } from "../reference/testing.ts";
import type { Backend } from "../core/backend.ts";
import { ReferenceBackend } from "../core/reference_backend.ts";
import { DIV, gamma, logError, U } from "./float32_rules.ts";

/** The float32 inputs of one attention call, `[BH, T, hd]` each (`dOut` for the backward). */
export interface AttentionData {
  /** Slices. */
  bh: number;
  /** Sequence length. */
  T: number;
  /** Head dimension. */
  hd: number;
  /** Score factor. */
  scale: number;
  /** Queries. */
  q: Float32Array;
  /** Keys. */
  k: Float32Array;
  /** Values. */
  v: Float32Array;
  /** The output's gradient. */
  dOut: Float32Array;
  /** Key rows per tile of the forward kernel (each tile adds one rescaling). */
  keyTileRows: number;
}

/** Absolute bounds, one per element of each output (`lse` one per row). */
export interface AttentionBounds {
  /** `[BH, T, hd]`. */
  out: Float64Array;
  /** `[BH, T]`. */
  lse: Float64Array;
  /** `[BH, T, hd]`. */
  dq: Float64Array;
  /** `[BH, T, hd]`. */
  dk: Float64Array;
  /** `[BH, T, hd]`. */
  dv: Float64Array;
}

/** Relative part of every attention comparison: the final scaling and the reference's rounding. */
export const ATTENTION_RTOL = 4 * U;

/**
 * The bounds of SPEC §10.7 on `data`: float64 scores, probabilities and `dS` recomputed here, each
 * error term taken from WGSL's rules (`float32_rules.ts`).
 *
 * @param data The inputs.
 * @returns Absolute bounds per element.
 */
export function attentionBounds(data: AttentionData): AttentionBounds {
  const { bh, T, hd, scale, q, k, v, dOut, keyTileRows } = data;
  const n3 = bh * T * hd;
  const b: AttentionBounds = {
    out: new Float64Array(n3),
    lse: new Float64Array(bh * T),
    dq: new Float64Array(n3),
    dk: new Float64Array(n3),
    dv: new Float64Array(n3),
  };
  const dot = (x: Float32Array, y: Float32Array, i: number, j: number, abs: boolean) => {
    let sum = 0;
    for (let c = 0; c < hd; c++) {
      const t = x[i * hd + c] * y[j * hd + c];
      sum += abs ? Math.abs(t) : t;
    }
    return sum;
  };
  const gDot = gamma(hd + 2);
  for (let s = 0; s < bh; s++) {
    const o = s * T;
    for (let i = 0; i < T; i++) {
      const n = i + 1, row = o + i;
      // Scores, their float32 error δs, and the spread A of the exponent's arguments.
      const sc = new Float64Array(n);
      let max = -Infinity, min = Infinity, deltaS = 0;
      for (let j = 0; j < n; j++) {
        sc[j] = scale * dot(q, k, row, o + j, false);
        deltaS = Math.max(
          deltaS,
          Math.abs(scale) * gDot * dot(q, k, row, o + j, true) + 2 * U * Math.abs(sc[j]),
        );
        max = Math.max(max, sc[j]);
        min = Math.min(min, sc[j]);
      }
      let sum = 0;
      for (let j = 0; j < n; j++) sum += Math.exp(sc[j] - max);
      const lse = max + Math.log(sum), spread = max - min;
      // Each weight: its exp and one per later tile's rescaling, (7 + 5A)u each, and δs.
      const epsW = Math.ceil(n / keyTileRows) * (7 + 5 * spread) * U + deltaS;
      const epsOut = 2 * epsW + gamma(n + 2) + DIV + 2 * U;
      const p = sc.map((x) => Math.exp(x - lse));
      b.lse[row] = deltaS + epsW + gamma(n) + logError(n) + 2 * U * Math.abs(lse);
      for (let c = 0; c < hd; c++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += p[j] * Math.abs(v[(o + j) * hd + c]);
        b.out[row * hd + c] = epsOut * acc;
      }
      // Backward: p from the GPU's lse, dp = dO·v, D = dO·O with the GPU's O, dS = p(dp − D).
      const epsP = deltaS + b.lse[row] + (7 + 5 * (spread + Math.log(n))) * U;
      let rowD = 0, errD = 0;
      for (let c = 0; c < hd; c++) {
        let out = 0;
        for (let j = 0; j < n; j++) out += p[j] * v[(o + j) * hd + c];
        rowD += dOut[row * hd + c] * out;
        errD += Math.abs(dOut[row * hd + c]) * (gDot * Math.abs(out) + b.out[row * hd + c]);
      }
      const dp = new Float64Array(n), ds = new Float64Array(n);
      let spreadDp = 0, errDp = 0;
      for (let j = 0; j < n; j++) {
        dp[j] = dot(dOut, v, row, o + j, false);
        ds[j] = p[j] * (dp[j] - rowD);
        spreadDp = Math.max(spreadDp, Math.abs(dp[j] - rowD));
        errDp = Math.max(errDp, gDot * dot(dOut, v, row, o + j, true));
      }
      const errS = (epsP + 2 * U) * spreadDp + errDp + errD; // |ΔdS_ij| ≤ p_ij·errS
      const gT = gamma(T + 2);
      for (let j = 0; j < n; j++) {
        const key = o + j, eDs = p[j] * errS + gT * Math.abs(ds[j]);
        for (let c = 0; c < hd; c++) {
          b.dv[key * hd + c] += p[j] * (epsP + gT) * Math.abs(dOut[row * hd + c]);
          b.dk[key * hd + c] += Math.abs(scale) * eDs * Math.abs(q[row * hd + c]);
          b.dq[row * hd + c] += Math.abs(scale) * eDs * Math.abs(k[key * hd + c]);
        }
      }
    }
  }
  return b;
}

/**
 * Asserts `|actual − expected| ≤ atol_r + ATTENTION_RTOL·|expected|` row by row, `atol_r` the
 * largest bound of the row.
 *
 * @param actual The GPU's values.
 * @param expected The reference's values.
 * @param bounds Per-element absolute bounds.
 * @param width Elements per row.
 * @param label Names the comparison.
 * @throws {Error} On a mismatch (the message of `assertClose`).
 */
export function assertWithinBounds(
  actual: Float32Array,
  expected: Float32Array,
  bounds: Float64Array,
  width: number,
  label: string,
): void {
  for (let r = 0; r * width < expected.length; r++) {
    const at = (x: ArrayLike<number> & { subarray(a: number, b: number): ArrayLike<number> }) =>
      x.subarray(r * width, (r + 1) * width);
    const atol = Math.max(0, ...Array.from(at(bounds)));
    assertClose(at(actual), at(expected), { atol, rtol: ATTENTION_RTOL }, `${label} row ${r}`);
  }
}

/** The reference backend's results on one case (float32, as the GPU's are read). */
export interface AttentionReference {
  /** `[BH, T, hd]`. */
  out: Float32Array;
  /** `[BH, T]`. */
  lse: Float32Array;
  /** `[BH, T, hd]`. */
  dq: Float32Array;
  /** `[BH, T, hd]`. */
  dk: Float32Array;
  /** `[BH, T, hd]`. */
  dv: Float32Array;
}

/**
 * Seeded inputs in `(-1, 1)` (queries times `qScale`, which sharpens the softmax) with the
 * scale `1/√hd`.
 *
 * @param dims `{ bh, T, hd }`.
 * @param seed The seed.
 * @param qScale Factor on the queries (default 1).
 * @param keyTileRows The forward kernel's key tile rows (`attentionTileRows(rt, hd, 2)`).
 * @returns The inputs.
 */
export function attentionData(
  dims: { bh: number; T: number; hd: number },
  seed: number,
  qScale: number,
  keyTileRows: number,
): AttentionData {
  const n = dims.bh * dims.T * dims.hd;
  const uniform = (s: number, f = 1) => seededFloats(n, seed * 8 + s, (u) => (u * 2 - 1) * f);
  return {
    ...dims,
    scale: 1 / Math.sqrt(dims.hd),
    q: uniform(0, qScale),
    k: uniform(1),
    v: uniform(2),
    dOut: uniform(3),
    keyTileRows,
  };
}

/**
 * Runs the fused operation forward and backward on `be` (the reference backend, the oracle, by
 * default) and reads every output.
 *
 * @param data The inputs.
 * @param be A backend offering `causalAttention` for the shape.
 * @returns Its outputs and gradients.
 * @throws {TypeError} If the backend declines the fused operation.
 */
export async function attentionOnBackend(
  data: AttentionData,
  be: Backend = new ReferenceBackend(),
): Promise<AttentionReference> {
  const shape = [data.bh, data.T, data.hd];
  const [q, k, v, dOut] = [data.q, data.k, data.v, data.dOut].map((x) => be.tensor(x, shape));
  const fwd = be.causalAttention?.(q, k, v, data.scale);
  if (fwd === undefined || be.causalAttentionBackward === undefined) {
    throw new TypeError(`Cannot run fused attention: the ${be.name} backend declines it`);
  }
  const grads = be.causalAttentionBackward({ q, k, v, scale: data.scale, ...fwd }, dOut);
  const [out, lse, dq, dk, dv] = await be.readMany([
    fwd.out,
    fwd.lse,
    grads.dq,
    grads.dk,
    grads.dv,
  ]);
  be.release();
  return { out, lse, dq, dk, dv };
}

/**
 * Compares every output `actual` holds with the oracle's on `data` within {@linkcode attentionBounds}.
 *
 * @param actual Some or all of the outputs.
 * @param data The inputs they came from.
 * @param label Names the case.
 * @throws {Error} On a value outside its bound.
 */
export async function assertAttentionParity(
  actual: Partial<AttentionReference>,
  data: AttentionData,
  label: string,
): Promise<void> {
  const ref = await attentionOnBackend(data), bounds = attentionBounds(data);
  for (const name of ["out", "lse", "dq", "dk", "dv"] as const) {
    const values = actual[name];
    if (values === undefined) continue;
    const width = name === "lse" ? 1 : data.hd;
    assertWithinBounds(values, ref[name], bounds[name], width, `${label} ${name}`);
  }
}

/** One parity case: the shape, the inputs' seed and the queries' factor. */
export interface AttentionCase {
  /** Slices. */
  bh: number;
  /** Sequence length. */
  T: number;
  /** Head dimension. */
  hd: number;
  /** Seed of the inputs. */
  seed: number;
  /** Factor on the queries. */
  qScale: number;
}

/**
 * The shapes every fused-attention parity test runs: one row, odd head widths, `T` not a multiple
 * of any tile, several slices and row tiles, the presets' head widths (tiny 8, mini 32, GPT-2 64),
 * and a sharp softmax (queries ×16, scores up to ±16) that rescales across key tiles.
 */
// Tuples [bh, T, hd, qScale]; seeds 1, 2, … in order.
export const ATTENTION_CASES: readonly AttentionCase[] = (
  [[1, 1, 4, 1], [3, 5, 5, 1], [2, 37, 7, 1], [4, 70, 8, 1], [2, 33, 16, 1], [3, 129, 32, 1]]
    .concat([[2, 100, 64, 1], [2, 90, 16, 16]])
).map(([bh, T, hd, qScale], i) => ({ bh, T, hd, qScale, seed: i + 1 }));
