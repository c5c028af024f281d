/**
 * Soft-threshold 2:4 pruning and its per-tensor scale β (SPEC §1.2–1.3), from Hu, Zhu and Chen,
 * "S-STE: Continuous Pruning Function for Efficient 2:4 Sparse Pre-training" (NeurIPS 2024).
 *
 * @module
 */

import { assertGroupedCols, assertMatrix, assertNoNaN, type Matrix } from "./matrix.ts";
import { checkSsteScaleArgs } from "./checks.ts";
import { prune24, type PruneResult } from "./prune.ts";

/**
 * Soft-threshold 2:4 pruning `S_soft` (SPEC §1.2): per group of four consecutive elements of a
 * row, `τ` = the second-smallest magnitude (= the largest pruned magnitude); the kept set is the
 * hard top-2 set of {@linkcode prune24} (ties: the higher index wins); a kept `w_i` becomes
 * `sign(w_i) · (|w_i| − τ)`, a pruned one becomes 0.
 *
 * Unlike hard pruning the output is continuous in `w`: when the 2nd and 3rd magnitudes swap, the
 * entry entering or leaving the kept set is at `|w| = τ`, i.e. outputs 0. An all-equal group gives
 * all zeros. The returned mask is the hard top-2 mask (it still has exactly two ones per group,
 * even where a kept output is 0).
 *
 * Each output is `|w_i| − τ` in f64, rounded once to f32 (the same value an f32 subtraction
 * gives). Zeros are returned as `+0`. `±Inf` is a magnitude: a kept `±Inf` with a finite `τ` gives
 * `±Inf`; a kept entry whose magnitude equals `τ` gives 0, which includes `τ = Inf` (three or more
 * infinite entries in the group), so `Inf − Inf` never produces NaN. NaN is rejected.
 *
 * @param w The matrix; `w.cols` must be a multiple of 4.
 * @returns `pruned` = `S_soft(w)` (a fresh matrix) and `mask` = the hard 2:4 mask.
 * @throws {TypeError} If `w` is not a matrix.
 * @throws {RangeError} If `w.cols % 4 !== 0` or `w` contains NaN.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { softThreshold24 } from "./soft_threshold.ts";
 * // τ = 0.5 (the second-smallest magnitude); kept -3 and 2 shrink by τ.
 * const { pruned, mask } = softThreshold24(matrix(1, 4, [0.1, -3, 2, 0.5]));
 * if (pruned.data.join() !== "0,-2.5,1.5,0") throw new Error("unexpected values");
 * if (mask.join() !== "0,1,1,0") throw new Error("unexpected mask");
 * ```
 */
export function softThreshold24(w: Matrix): PruneResult {
  const action = "soft-threshold to 2:4";
  assertMatrix(w, action);
  assertGroupedCols(w, 4, action);
  assertNoNaN(w, action);
  const { mask } = prune24(w);
  const src = w.data;
  const out = new Float32Array(src.length);
  for (let start = 0; start < src.length; start += 4) {
    const tau = secondSmallestMagnitude(src, start);
    for (let i = start; i < start + 4; i++) {
      if (mask[i] === 0) continue;
      const a = Math.abs(src[i]);
      if (a === tau) continue; // stays +0; also keeps Inf − Inf from giving NaN
      out[i] = src[i] < 0 ? -(a - tau) : a - tau;
    }
  }
  return { pruned: { rows: w.rows, cols: w.cols, data: out }, mask };
}

function secondSmallestMagnitude(src: Float32Array, start: number): number {
  const a = [
    Math.abs(src[start]),
    Math.abs(src[start + 1]),
    Math.abs(src[start + 2]),
    Math.abs(src[start + 3]),
  ];
  a.sort((x, y) => x - y);
  return a[1];
}

/** The recipes {@linkcode ssteScale} accepts (SPEC §1.3). */
export type SsteScaleRecipe = "mse" | "l1" | "none";

/** Options of {@linkcode ssteScale}. */
export interface SsteScaleOptions {
  /**
   * How β is chosen: `"mse"` (default) minimises `‖W − β·S_soft(W)‖²`; `"l1"` matches the L1
   * norms; `"none"` is β = 1.
   */
  recipe?: SsteScaleRecipe;
}

/**
 * The S-STE per-tensor scale β (SPEC §1.3), computed once from the initial weights and then
 * frozen. With `S = S_soft(W)` ({@linkcode softThreshold24}'s f32 output):
 *
 * - `"mse"` (default): `β = ⟨W, S⟩ / ⟨S, S⟩`, the closed-form minimiser of `‖W − β·S‖²`;
 * - `"l1"`: `β = ‖W‖₁ / ‖S‖₁`, so that `‖β·S‖₁ = ‖W‖₁`;
 * - `"none"`: `β = 1`.
 *
 * Sums are accumulated in f64 in row-major order. If `S` is all zero (including an empty
 * matrix), β = 1. For i.i.d. Gaussian weights the `"mse"` β is about 1.48.
 *
 * Every value of `W` must be finite: an infinite weight makes both sums infinite and β undefined,
 * so it is rejected for every recipe (as is NaN).
 *
 * @param w The weight matrix; `w.cols` must be a multiple of 4.
 * @param options `{ recipe }`, default `"mse"`.
 * @returns β, a positive number (1 for `"none"` or an all-zero `S`).
 * @throws {TypeError} If `w` is not a matrix, or the recipe is not one of `"mse"`, `"l1"`,
 * `"none"`.
 * @throws {RangeError} If `w.cols % 4 !== 0`, or `w` contains NaN or ±Inf.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { ssteScale } from "./soft_threshold.ts";
 * // S = [0, -2.5, 1.5, 0]: ⟨W,S⟩ = 10.5, ⟨S,S⟩ = 8.5.
 * const beta = ssteScale(matrix(1, 4, [0.1, -3, 2, 0.5]));
 * if (beta !== 21 / 17) throw new Error(`unexpected β ${beta}`);
 * ```
 */
export function ssteScale(w: Matrix, options?: SsteScaleOptions): number {
  const action = "compute the S-STE scale";
  const recipe = checkSsteScaleArgs(w, options, action);
  if (recipe === "none") return 1;
  const s = softThreshold24(w).pruned.data;
  const x = w.data;
  let numerator = 0;
  let denominator = 0;
  for (let i = 0; i < x.length; i++) {
    if (recipe === "mse") {
      numerator += x[i] * s[i];
      denominator += s[i] * s[i];
    } else {
      numerator += Math.abs(x[i]);
      denominator += Math.abs(s[i]);
    }
  }
  return denominator === 0 ? 1 : numerator / denominator;
}
