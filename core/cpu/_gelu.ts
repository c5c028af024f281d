/**
 * The CPU backend's exact GELU `x·Φ(x)` and its derivative `Φ(x) + x·φ(x)` from Taylor polynomials
 * of degree 5 tabulated every 1/64 on [−16, 9] (beyond, `Φ` is 0 or 1 to far below the bounds):
 * Horner in `δ = x − x_j` (exact) around the nearest grid point, float64. The coefficients come
 * from Cody's `erfc` (as the reference's GELU) and Hermite polynomials. Error bound: SPEC §10.6.
 * Kernels of element ranges for `_kernels.ts`. Private to `core/cpu/`.
 *
 * @module
 */

import { erfc } from "../erfc.ts";

/** Grid: points per unit, first and last point; polynomial degree. */
const PER_UNIT = 64, LO = -16, HI = 9, DEGREE = 5, STEP = 1 / PER_UNIT;
/** Coefficients per grid point, padded to 8 (one 64-byte cache line per point). */
const WIDTH = 8, POINTS = (HI - LO) * PER_UNIT + 1;

/**
 * Per grid point `x_j`, `Φ^(n)(x_j)/n!` and `D^(n)(x_j)/n!` (`D = Φ + x·φ`) for `n = 0..DEGREE`:
 * `Φ^(n) = φ^(n−1) = (−1)^(n−1)·He_(n−1)·φ` and `D^(n) = (n + 1)·φ^(n−1) + x·φ^(n)` (n ≥ 1).
 */
function tables(): { phi: Float64Array; deriv: Float64Array } {
  const phi = new Float64Array(POINTS * WIDTH), deriv = new Float64Array(POINTS * WIDTH);
  const dPhi = new Float64Array(DEGREE + 1); // φ^(k)(x_j), k = 0..DEGREE
  for (let j = 0; j < POINTS; j++) {
    const x = LO + j * STEP, density = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    // He_0 = 1, He_1 = x, He_(k+1) = x·He_k − k·He_(k−1).
    let he0 = 1, he1 = x;
    dPhi[0] = density;
    for (let k = 1; k <= DEGREE; k++) {
      dPhi[k] = (k % 2 === 0 ? 1 : -1) * he1 * density;
      [he0, he1] = [he1, x * he1 - k * he0];
    }
    const o = j * WIDTH, cdf = 0.5 * erfc(-x * Math.SQRT1_2);
    phi[o] = cdf;
    deriv[o] = cdf + x * density;
    let factorial = 1;
    for (let n = 1; n <= DEGREE; n++) {
      factorial *= n;
      phi[o + n] = dPhi[n - 1] / factorial;
      deriv[o + n] = ((n + 1) * dPhi[n - 1] + x * dPhi[n]) / factorial;
    }
  }
  return { phi, deriv };
}

const { phi: PHI, deriv: DERIV } = tables();
/** The tables of `Φ` and of `GELU' = Φ + x·φ`, for {@linkcode tabulated}. */
export const GELU_TABLES = { phi: PHI, deriv: DERIV } as const;

/** The polynomial at offset `o` of `table` at `δ = d`. */
function horner(table: Float64Array, o: number, d: number): number {
  return table[o] + d * (table[o + 1] + d * (table[o + 2] + d * (table[o + 3] +
                d * (table[o + 4] + d * table[o + 5]))));
}

/** The grid point nearest `v` (`LO ≤ v ≤ HI`; `Math.round` is far slower here). */
const pointOf = (v: number) => ((v - LO) * PER_UNIT + 0.5) | 0;

/** The tabulated polynomial of `table` at `v` (`LO ≤ v ≤ HI`). */
export function tabulated(table: Float64Array, v: number): number {
  const j = pointOf(v);
  return horner(table, j * WIDTH, v - (LO + j * STEP));
}

/** `GELU'` beyond the grid: 1 above, 0 below (`|Φ + x·φ| < 1e-55`), at −Infinity and for NaN. */
const derivBeyond = (v: number) => (v > HI ? 1 : 0);

/**
 * Elements `[i0, i1)`: GELU `x·Φ(x)` (0 at −Infinity, NaN for NaN), and `GELU'(x)` into `derivs`
 * for the backward pass unless it is empty (the same index and `δ`: cheaper than a second sweep).
 */
export function geluRange(
  x: Float32Array,
  out: Float32Array,
  derivs: Float64Array,
  i0: number,
  i1: number,
): void {
  const keep = derivs.length > 0;
  for (let i = i0; i < i1; i++) {
    const v = x[i];
    if (v >= LO && v <= HI) {
      const j = pointOf(v), o = j * WIDTH, d = v - (LO + j * STEP);
      out[i] = v * horner(PHI, o, d);
      if (keep) derivs[i] = horner(DERIV, o, d);
    } else {
      out[i] = v > HI ? v : v === -Infinity ? 0 : v * 0; // Φ = 1; Φ < 7e-58 (−0); NaN
      if (keep) derivs[i] = derivBeyond(v);
    }
  }
}

/**
 * Elements `[i0, i1)`: `dy ⊙ GELU'(x)`, from the forward's `derivs` when given (an empty array:
 * tabulated here).
 */
export function geluBackwardRange(
  x: Float32Array,
  dy: Float32Array,
  out: Float32Array,
  derivs: Float64Array,
  i0: number,
  i1: number,
): void {
  if (derivs.length > 0) {
    for (let i = i0; i < i1; i++) out[i] = dy[i] * derivs[i];
    return;
  }
  for (let i = i0; i < i1; i++) {
    const v = x[i];
    out[i] = dy[i] * (v >= LO && v <= HI ? tabulated(DERIV, v) : derivBeyond(v));
  }
}
