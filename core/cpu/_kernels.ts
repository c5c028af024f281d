/**
 * The CPU backend's heaviest element-wise loops as functions of a row or element range, so the
 * backend can run half of each on a helper thread (`_worker.ts`) over shared memory. Each writes
 * only its own range. Private to `core/cpu/`.
 *
 * @module
 */

import { erfc } from "../erfc.ts";
import { fastExp } from "./_exp.ts";

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Rows `[r0, r1)` of `z[n, c]`: `max`, `exps = exp(z − max)` and their sum per row. */
export function rowExps(
  z: Float32Array,
  exps: Float64Array,
  sums: Float64Array,
  maxes: Float64Array,
  c: number,
  r0: number,
  r1: number,
): void {
  for (let r = r0; r < r1; r++) {
    const o = r * c;
    let max = -Infinity;
    for (let k = 0; k < c; k++) if (z[o + k] > max) max = z[o + k];
    let sum = 0;
    for (let k = 0; k < c; k++) {
      const e = fastExp(z[o + k] - max);
      exps[o + k] = e;
      sum += e;
    }
    sums[r] = sum;
    maxes[r] = max;
  }
}

/** Elements `[i0, i1)`: GELU `0.5·x·erfc(−x/√2)` into `out`, the erfc values into `erfcs`. */
export function geluRange(
  x: Float32Array,
  out: Float32Array,
  erfcs: Float64Array,
  i0: number,
  i1: number,
): void {
  for (let i = i0; i < i1; i++) {
    const v = x[i], e = erfc(-v * SQRT1_2, fastExp);
    erfcs[i] = e;
    out[i] = v === -Infinity ? 0 : 0.5 * v * e;
  }
}

/**
 * Elements `[i0, i1)`: `dy ⊙ GELU'(x)`, `GELU'(x) = Φ(x) + x·φ(x)`, with the forward's erfc values
 * when given (an empty array: computed here).
 */
export function geluBackwardRange(
  x: Float32Array,
  dy: Float32Array,
  out: Float32Array,
  erfcs: Float64Array,
  i0: number,
  i1: number,
): void {
  const cached = erfcs.length === x.length;
  for (let i = i0; i < i1; i++) {
    const v = x[i];
    const deriv = Number.isFinite(v)
      ? 0.5 * (cached ? erfcs[i] : erfc(-v * SQRT1_2, fastExp)) +
        v * INV_SQRT_2PI * fastExp(-0.5 * v * v)
      : v > 0
      ? 1
      : 0;
    out[i] = dy[i] * deriv;
  }
}

/** Control words shared with the helper: the last finished call's number (negative: it failed), and the helper's state. */
export const SEQ = 0, STATE = 1;
/** Helper states: waiting for work, gone, claimed by the caller (a call is on its way). */
export const IDLE = 1, CLOSED = 2, CLAIMED = 3;

/** The kernels a helper thread runs, by name. */
export const KERNELS = { rowExps, geluRange, geluBackwardRange } as const;

/** A kernel's name. */
export type KernelName = keyof typeof KERNELS;
