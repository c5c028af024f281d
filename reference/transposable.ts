/**
 * Transposable 2:4 masks (SPEC §1.4), from Hu et al., "Accelerating Transformer Pre-Training with
 * 2:4 Sparsity" (ICML 2024): one mask that is 2:4 along the rows of `W` and along the rows of
 * `Wᵀ`, chosen per aligned 4×4 block as the exact optimum over the 90 admissible patterns.
 *
 * @module
 */

import type { Matrix } from "./matrix.ts";
import { assertTransposableInput } from "./checks.ts";
import type { PruneResult } from "./prune.ts";

/** The six ways to choose two of four columns, as 4-bit row words (column 0 = bit 3). */
const TWO_OF_FOUR = [0b1100, 0b1010, 0b1001, 0b0110, 0b0101, 0b0011] as const;

/**
 * Builds the pattern table: every choice of one two-of-four row word per row, kept when each
 * column also holds exactly two ones, sorted descending.
 */
function buildPatterns(): Uint16Array {
  const words: number[] = [];
  for (const r0 of TWO_OF_FOUR) {
    for (const r1 of TWO_OF_FOUR) {
      for (const r2 of TWO_OF_FOUR) {
        for (const r3 of TWO_OF_FOUR) {
          let columnsOk = true;
          for (let c = 0; c < 4; c++) {
            const bit = 3 - c;
            const count = ((r0 >> bit) & 1) + ((r1 >> bit) & 1) + ((r2 >> bit) & 1) +
              ((r3 >> bit) & 1);
            if (count !== 2) columnsOk = false;
          }
          if (columnsOk) words.push((r0 << 12) | (r1 << 8) | (r2 << 4) | r3);
        }
      }
    }
  }
  words.sort((a, b) => b - a);
  return Uint16Array.from(words);
}

const PATTERNS: Uint16Array = buildPatterns();

/**
 * For each pattern, the 8 block positions `4r + c` it keeps, in ascending (row-major) order; the
 * retained-magnitude sums run in this order.
 */
const KEPT_POSITIONS: Uint8Array[] = Array.from(PATTERNS, (word) => {
  const kept: number[] = [];
  for (let k = 0; k < 16; k++) if ((word >> (15 - k)) & 1) kept.push(k);
  return Uint8Array.from(kept);
});

/**
 * The 90 4×4 0/1 patterns with exactly two ones in every row and every column (SPEC §1.4).
 *
 * Each is a 16-bit row-major word with row 0 in the high bits: bit `15 − (4r + c)` is entry
 * `(r, c)`. They are in **descending** numeric order, which defines the pattern numbers used for
 * ties: pattern #0 is `1100/1100/0011/0011` = `0xCC33`, the last (#89) is `0011/0011/1100/1100`.
 *
 * @returns A fresh `Uint16Array` of 90 words.
 * @example
 * ```ts
 * import { transposablePatterns } from "./transposable.ts";
 * const patterns = transposablePatterns();
 * if (patterns.length !== 90 || patterns[0] !== 0xcc33) throw new Error("unexpected");
 * ```
 */
export function transposablePatterns(): Uint16Array {
  return PATTERNS.slice();
}

/**
 * For every aligned 4×4 block of `|W|`, the number of the pattern of
 * {@linkcode transposablePatterns} that maximises the retained magnitude `Σ P ⊙ |B|`.
 *
 * Each pattern's sum adds its 8 kept magnitudes in f64 in row-major order of the block; the
 * maximum is searched from pattern #0 upwards and only a strictly larger sum replaces the current
 * best, so ties go to the lowest pattern number (an all-zero block gives #0, as does
 * `arange(1..16)`, where all 90 sums are 68).
 *
 * `±Inf` is a magnitude: every pattern that keeps an infinite entry has sum `Inf`, all those sums
 * tie, and the lowest-numbered of them wins (finite entries do not break that tie). NaN is
 * rejected.
 *
 * @param w The matrix; `w.rows` and `w.cols` must be multiples of 4.
 * @returns One pattern number (0..89) per block, block-row-major: block `(i, j)` (rows
 * `4i..4i+3`, columns `4j..4j+3`) is at index `i * (cols / 4) + j`.
 * @throws {TypeError} If `w` is not a matrix.
 * @throws {RangeError} If `w.rows % 4 !== 0`, `w.cols % 4 !== 0`, or `w` contains NaN.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { transposablePatternIndices } from "./transposable.ts";
 * const w = matrix(4, 4, [0.1, -3, 2, 0.5, 4, 0.2, -0.3, 1, 0.5, 1, -2, 3, -1, 2, 0.1, 0.2]);
 * if (transposablePatternIndices(w)[0] !== 54) throw new Error("unexpected");
 * ```
 */
export function transposablePatternIndices(w: Matrix): Uint8Array {
  const action = "find a transposable 2:4 mask";
  assertTransposableInput(w, action);
  const blockCols = w.cols / 4;
  const indices = new Uint8Array((w.rows / 4) * blockCols);
  if (indices.length === 0) return indices; // no loop over (up to 2^29) empty block rows
  const magnitudes = new Float64Array(16);
  for (let bi = 0; bi < w.rows / 4; bi++) {
    for (let bj = 0; bj < blockCols; bj++) {
      for (let r = 0; r < 4; r++) {
        for (let c = 0; c < 4; c++) {
          magnitudes[4 * r + c] = Math.abs(w.data[(4 * bi + r) * w.cols + 4 * bj + c]);
        }
      }
      let best = 0;
      let bestSum = -1;
      for (let p = 0; p < KEPT_POSITIONS.length; p++) {
        const kept = KEPT_POSITIONS[p];
        let sum = 0;
        for (let k = 0; k < kept.length; k++) sum += magnitudes[kept[k]];
        if (sum > bestSum) {
          bestSum = sum;
          best = p;
        }
      }
      indices[bi * blockCols + bj] = best;
    }
  }
  return indices;
}

/**
 * Transposable 2:4 pruning (SPEC §1.4): the mask `M` is built block by block from the optimal
 * pattern of {@linkcode transposablePatternIndices}, so every aligned 4×4 block has exactly two
 * ones in every row and every column (`M` is 2:4 along rows and `Mᵀ` is 2:4 along rows), and
 * `pruned = W ⊙ M`.
 *
 * This is the exact per-block optimum of the retained magnitude `Σ M ⊙ |W|` (P1 computes it as a
 * stride-4 convolution with the 90 patterns plus an argmax); ties go to the lowest pattern number.
 * Dropped entries are `+0` (never `w · 0`, so a dropped `±Inf` gives 0, not NaN); `±Inf` is a
 * magnitude, see {@linkcode transposablePatternIndices}.
 *
 * @param w The matrix; `w.rows` and `w.cols` must be multiples of 4.
 * @returns The pruned matrix (a fresh copy) and the transposable mask.
 * @throws {TypeError} If `w` is not a matrix.
 * @throws {RangeError} If `w.rows % 4 !== 0`, `w.cols % 4 !== 0`, or `w` contains NaN.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { transposableMask24 } from "./transposable.ts";
 * const w = matrix(4, 4, [0.1, -3, 2, 0.5, 4, 0.2, -0.3, 1, 0.5, 1, -2, 3, -1, 2, 0.1, 0.2]);
 * const { mask } = transposableMask24(w);
 * // Pattern #54, 0110/1001/0011/1100, retains 3+2 + 4+1 + 2+3 + 1+2 = 18.
 * if (mask.join("") !== "0110100100111100") throw new Error("unexpected");
 * ```
 */
export function transposableMask24(w: Matrix): PruneResult {
  const indices = transposablePatternIndices(w);
  const blockCols = w.cols / 4;
  const mask = new Uint8Array(w.data.length);
  const out = new Float32Array(w.data.length);
  const pruned = { rows: w.rows, cols: w.cols, data: out };
  if (indices.length === 0) return { pruned, mask };
  for (let bi = 0; bi < w.rows / 4; bi++) {
    for (let bj = 0; bj < blockCols; bj++) {
      const word = PATTERNS[indices[bi * blockCols + bj]];
      for (let r = 0; r < 4; r++) {
        for (let c = 0; c < 4; c++) {
          if (((word >> (15 - (4 * r + c))) & 1) === 0) continue;
          const at = (4 * bi + r) * w.cols + 4 * bj + c;
          mask[at] = 1;
          out[at] = w.data[at];
        }
      }
    }
  }
  return { pruned, mask };
}
