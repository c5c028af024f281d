/**
 * Compressed 2:4 storage (SPEC §1.5): the two kept values of every group plus a 4-bit position
 * code per group. This is the project's own layout, chosen for WGSL; NVIDIA's hardware metadata
 * order is a different permutation.
 *
 * @module
 */

import type { Matrix } from "./matrix.ts";
import { assertCompressed24, assertCompressible24 } from "./checks.ts";

/** A 2:4 matrix in compressed form (SPEC §1.5). */
export interface Compressed24 {
  /**
   * `[rows, cols / 2]`: the two kept elements of each group of four, in ascending column order.
   */
  values: Matrix;
  /**
   * One 4-bit code `idx0 | idx1 << 2` (`idx0 < idx1`, the kept positions within the group) per
   * group, eight per word. Groups are numbered flat over the whole matrix,
   * `g = row * (cols / 4) + col / 4`; code `g` sits in bits `4 * (g % 8) .. 4 * (g % 8) + 3` of
   * word `floor(g / 8)`. `ceil(rows * cols / 32)` words; unused high bits are 0.
   */
  meta: Uint32Array;
}

/**
 * Compresses a 2:4 matrix (SPEC §1.5).
 *
 * The kept positions of a group are its top two by the hard-pruning rule of `prune24` (larger
 * `|w|` first, ties to the higher index), so `compress24(prune24(w).pruned)` stores exactly what
 * `prune24` kept. A group with fewer than two non-zeros still gets two positions, the ones
 * `prune24` would keep: `[0, 0, 0, 5]` keeps positions 2 and 3, `[0, 0, 0, 0]` keeps 2 and 3. A
 * group with more than two non-zeros (`-0` counts as zero, `±Inf` as non-zero) is not 2:4 and is
 * rejected. Values are copied bit for bit, so `decompress24(compress24(a))` equals `a` (up to the
 * sign of zeros in dropped positions, which come back as `+0`).
 *
 * @param m A 2:4 matrix; `m.cols` must be a multiple of 4.
 * @returns The values `[rows, cols / 2]` and the packed metadata.
 * @throws {TypeError} If `m` is not a matrix.
 * @throws {RangeError} If `m.cols % 4 !== 0`, `m` contains NaN, or a group has more than two
 * non-zeros (the message names its row and group).
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { compress24 } from "./compress.ts";
 * const { values, meta } = compress24(matrix(1, 8, [0, -3, 2, 0, 4, 0, 0, 1]));
 * if (values.data.join() !== "-3,2,4,1") throw new Error("unexpected values");
 * // Codes 1 | 2 << 2 = 9 (group 0) and 0 | 3 << 2 = 12 (group 1, bits 4..7).
 * if (meta[0] !== (9 | (12 << 4))) throw new Error("unexpected meta");
 * ```
 */
export function compress24(m: Matrix): Compressed24 {
  const action = "compress to 2:4";
  assertCompressible24(m, action);
  const groupCount = m.data.length / 4;
  const values = new Float32Array(m.rows * (m.cols / 2));
  const meta = new Uint32Array(Math.ceil(groupCount / 8));
  for (let g = 0; g < groupCount; g++) {
    const start = 4 * g;
    // Top two by the prune24 rule: element i beats j if |m_i| > |m_j|, or equal and i > j.
    const kept: number[] = [];
    for (let i = 0; i < 4; i++) {
      const ai = Math.abs(m.data[start + i]);
      let beaten = 0;
      for (let j = 0; j < 4; j++) {
        const aj = Math.abs(m.data[start + j]);
        if (ai > aj || (ai === aj && i > j)) beaten++;
      }
      if (beaten >= 2) kept.push(i); // ascending i, so kept[0] < kept[1]
    }
    const [idx0, idx1] = kept;
    values[2 * g] = m.data[start + idx0];
    values[2 * g + 1] = m.data[start + idx1];
    meta[Math.floor(g / 8)] |= (idx0 | (idx1 << 2)) << (4 * (g % 8));
  }
  return { values: { rows: m.rows, cols: m.cols / 2, data: values }, meta };
}

/**
 * Expands a {@linkcode Compressed24} back to a dense `[rows, 2 * values.cols]` matrix (SPEC §1.5):
 * each group's two values go to the positions its code names; the other two entries are 0.
 *
 * The metadata is validated: it must be a `Uint32Array` of exactly `ceil(rows * cols / 32)`
 * words, every code must be one of the six valid ones (`4, 8, 12, 9, 13, 14`), and the bits after
 * the last code must be 0. NaN values are rejected (`compress24` never produces them).
 *
 * @param c The compressed matrix; `c.values.cols` must be even.
 * @returns A fresh dense matrix with `rows = c.values.rows`, `cols = 2 * c.values.cols`.
 * @throws {TypeError} If `c` is not an object, `c.values` is not a matrix or `c.meta` is not a
 * `Uint32Array`.
 * @throws {RangeError} If `c.values.cols` is odd, the metadata length is wrong, a code is invalid
 * (the message names the code, its row and group), an unused bit is set, or a value is NaN.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { decompress24 } from "./compress.ts";
 * const dense = decompress24({ values: matrix(1, 2, [-3, 2]), meta: Uint32Array.of(9) });
 * if (dense.data.join() !== "0,-3,2,0") throw new Error("unexpected");
 * ```
 */
export function decompress24(c: Compressed24): Matrix {
  const action = "decompress from 2:4";
  const { rows, cols } = assertCompressed24(c, action);
  const groupCount = (rows * cols) / 4;
  const out = new Float32Array(rows * cols);
  for (let g = 0; g < groupCount; g++) {
    const code = (c.meta[Math.floor(g / 8)] >>> (4 * (g % 8))) & 0xf;
    out[4 * g + (code & 3)] = c.values.data[2 * g];
    out[4 * g + (code >> 2)] = c.values.data[2 * g + 1];
  }
  return { rows, cols, data: out };
}
