/**
 * Hard N:M magnitude pruning (SPEC §1.1), the plain-loop oracle every backend is checked against.
 *
 * @module
 */

import { assertGroupedCols, assertMatrix, assertNoNaN, type Matrix } from "./matrix.ts";
import { assertPruneNMOptions } from "./checks.ts";

/** The output of a pruning function: the pruned matrix and its 0/1 mask (SPEC §0). */
export interface PruneResult {
  /** The pruned matrix, same shape as the input; dropped entries are `0`. */
  pruned: Matrix;
  /** `rows * cols` entries, `1` where the input entry was kept, `0` where it was dropped. */
  mask: Uint8Array;
}

/** Options of {@linkcode pruneNM}. */
export interface PruneNMOptions {
  /** How many elements of each group to keep (a positive integer, at most `m`). */
  n: number;
  /** The group size: `m` consecutive elements along a row (a positive integer). */
  m: number;
}

/**
 * Hard N:M magnitude pruning `S_h` (SPEC §1.1): in every group of `m` consecutive elements of a
 * row, keep the `n` entries of largest `|w|` and zero the rest; kept entries keep their value and
 * sign.
 *
 * Tie rule, "the higher index wins": element `i` of a group beats element `j` if
 * `|w_i| > |w_j|`, or `|w_i| = |w_j|` and `i > j`. That is a strict total order, so ranks are
 * unique and the `n` elements that beat the most others are kept: exactly `n` ones per group,
 * always (`[1, 1, 1, 1]` and `[0, 0, 0, 0]` both keep positions 2 and 3 under 2:4). This follows
 * the GPU kernel of Hu et al., "Accelerating Transformer Pre-Training with 2:4 Sparsity" (ICML
 * 2024), not their torch fallback, whose unstable sort disagrees on ties.
 *
 * `±Inf` is a magnitude (it beats every finite value; `Inf` and `-Inf` tie, so the higher index
 * wins); `-0` and `0` tie. NaN is rejected. A dropped entry becomes `+0` (never `w · 0`, so a
 * dropped `±Inf` gives `0`, not NaN). Cost: `m²` comparisons per group.
 *
 * @param w The matrix to prune; `w.cols` must be a multiple of `options.m`.
 * @param options `{ n, m }`: keep `n` of every `m`.
 * @returns The pruned matrix (a fresh copy) and the mask.
 * @throws {TypeError} If `w` is not a matrix, or `options`, `n` or `m` is not given as a number.
 * @throws {RangeError} If `n` or `m` is not a positive integer, `n > m`, `w.cols % m !== 0`, or
 * `w` contains NaN.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { pruneNM } from "./prune.ts";
 * const { pruned, mask } = pruneNM(matrix(1, 4, [5, -1, 1, 0]), { n: 1, m: 2 });
 * // Group [5, -1] keeps 5; group [1, 0] keeps 1.
 * if (mask.join() !== "1,0,1,0" || pruned.data.join() !== "5,0,1,0") throw new Error("unexpected");
 * ```
 */
export function pruneNM(w: Matrix, options: PruneNMOptions): PruneResult {
  assertPruneNMOptions(options);
  const { n, m } = options;
  return pruneGroups(w, n, m, `prune to ${n}:${m}`);
}

/**
 * Hard 2:4 magnitude pruning `S_h` (SPEC §1.1): keep the two largest `|w|` of every group of four
 * consecutive elements of a row; ties go to the higher index. Same as
 * `pruneNM(w, { n: 2, m: 4 })`; see {@linkcode pruneNM} for the tie rule and the handling of
 * `±Inf` and NaN.
 *
 * @param w The matrix to prune; `w.cols` must be a multiple of 4.
 * @returns The pruned matrix (a fresh copy) and the mask, exactly two ones per group.
 * @throws {TypeError} If `w` is not a matrix.
 * @throws {RangeError} If `w.cols % 4 !== 0` or `w` contains NaN.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { prune24 } from "./prune.ts";
 * const { pruned, mask } = prune24(matrix(1, 8, [0.1, -3, 2, 0.5, 1, 1, 1, 1]));
 * if (mask.join() !== "0,1,1,0,0,0,1,1") throw new Error("unexpected mask");
 * if (pruned.data.join() !== "0,-3,2,0,0,0,1,1") throw new Error("unexpected values");
 * ```
 */
export function prune24(w: Matrix): PruneResult {
  return pruneGroups(w, 2, 4, "prune to 2:4");
}

function pruneGroups(w: Matrix, n: number, m: number, action: string): PruneResult {
  assertMatrix(w, action);
  assertGroupedCols(w, m, action);
  assertNoNaN(w, action);
  const src = w.data;
  const out = new Float32Array(src.length);
  const mask = new Uint8Array(src.length);
  for (let start = 0; start < src.length; start += m) {
    for (let i = 0; i < m; i++) {
      const ai = Math.abs(src[start + i]);
      // Count how many elements of the group element i beats (higher index wins ties).
      let beaten = 0;
      for (let j = 0; j < m; j++) {
        const aj = Math.abs(src[start + j]);
        if (ai > aj || (ai === aj && i > j)) beaten++;
      }
      // Ranks are 0..m-1, each once; the n highest ranks are kept.
      if (beaten >= m - n) {
        mask[start + i] = 1;
        out[start + i] = src[start + i];
      }
    }
  }
  return { pruned: { rows: w.rows, cols: w.cols, data: out }, mask };
}
