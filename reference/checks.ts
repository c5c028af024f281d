/**
 * Argument checks of the reference functions, shared with their GPU twins (`gpu/kernels.ts`) so
 * both validate identically: same order, same errors, same messages. Imported across folders, so
 * not `_`-private; not part of the package API (`reference/mod.ts` does not export it).
 *
 * @module
 */

import {
  assertFinite,
  assertGroupedCols,
  assertMask,
  assertMatrix,
  assertNoNaN,
  assertSameShape,
  type Matrix,
} from "./matrix.ts";
import type { Compressed24 } from "./compress.ts";
import type { Fp8Format, QuantizeFp8Options } from "./fp8.ts";
import type { PruneNMOptions } from "./prune.ts";
import type { SsteScaleOptions, SsteScaleRecipe } from "./soft_threshold.ts";

/** The six valid compressed 2:4 codes `idx0 | idx1 << 2` with `idx0 < idx1`. */
const VALID_CODES: ReadonlySet<number> = new Set([4, 8, 12, 9, 13, 14]);

/** The name of a value's constructor (or its `typeof`), for messages about a wrong type. */
function typeName(value: unknown): string {
  return (value as object)?.constructor?.name ?? typeof value;
}

/** Throws a `TypeError` unless `options` is an object; `expected` names its fields, `{n, m}`. */
export function assertOptionsObject(options: unknown, expected: string, action: string): void {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`Cannot ${action}: options must be an object ${expected}, got ${options}`);
  }
}

/** The checks of `pruneNM`'s options: an object whose `n`, `m` are integers, `1 ≤ n ≤ m`. */
export function assertPruneNMOptions(options: PruneNMOptions): void {
  assertOptionsObject(options, "{n, m}", "prune to N:M");
  const { n, m } = options as { n: unknown; m: unknown };
  if (typeof n !== "number" || typeof m !== "number") {
    throw new TypeError(
      `Cannot prune to N:M: n and m must be numbers, got n = ${String(n)}, m = ${String(m)}`,
    );
  }
  if (!Number.isInteger(m) || m < 1) {
    throw new RangeError(`Cannot prune to ${n}:${m}: m must be a positive integer, got ${m}`);
  }
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`Cannot prune to ${n}:${m}: n must be a positive integer, got ${n}`);
  }
  if (n > m) {
    throw new RangeError(`Cannot prune to ${n}:${m}: n must not exceed m, got n = ${n}, m = ${m}`);
  }
}

/** The checks of `ssteScale` (options, recipe, then the weight); returns the recipe. */
export function checkSsteScaleArgs(
  w: Matrix,
  options: SsteScaleOptions | undefined,
  action: string,
): SsteScaleRecipe {
  if (options !== undefined) assertOptionsObject(options, "{recipe}", action);
  const recipe = options?.recipe ?? "mse";
  if (recipe !== "mse" && recipe !== "l1" && recipe !== "none") {
    throw new TypeError(
      `Cannot ${action}: unknown recipe ${
        JSON.stringify(recipe) ?? String(recipe)
      } (expected "mse", "l1" or "none")`,
    );
  }
  assertMatrix(w, action);
  assertGroupedCols(w, 4, action);
  assertFinite(w, action, "every weight");
  return recipe;
}

/** The checks of the transposable 2:4 functions: a matrix of 4×4 blocks without NaN. */
export function assertTransposableInput(w: Matrix, action: string): void {
  assertMatrix(w, action);
  if (w.rows % 4 !== 0) {
    throw new RangeError(
      `Cannot ${action}: the number of rows must be a multiple of 4, got ${w.rows}`,
    );
  }
  if (w.cols % 4 !== 0) {
    throw new RangeError(`Cannot ${action}: the row length must be a multiple of 4, got ${w.cols}`);
  }
  assertNoNaN(w, action);
}

/**
 * The checks of `compress24`: a matrix of groups of four without NaN, every group with at most two
 * non-zeros (`-0` counts as zero, `±Inf` as non-zero).
 */
export function assertCompressible24(m: Matrix, action: string): void {
  assertMatrix(m, action);
  assertGroupedCols(m, 4, action);
  assertNoNaN(m, action);
  const groupsPerRow = m.cols / 4;
  for (let g = 0; g < m.data.length / 4; g++) {
    const start = 4 * g;
    let nonZeros = 0;
    for (let i = 0; i < 4; i++) if (m.data[start + i] !== 0) nonZeros++;
    if (nonZeros > 2) {
      const row = Math.floor(g / groupsPerRow), group = g % groupsPerRow;
      throw new RangeError(
        `Cannot ${action}: row ${row}, group ${group} (columns ${4 * group}..${
          4 * group + 3
        }) has ${nonZeros} non-zeros, at most 2 allowed: [${
          Array.from(m.data.subarray(start, start + 4)).join(", ")
        }]`,
      );
    }
  }
}

/**
 * The checks of `decompress24`: `values` a matrix with an even column count and no NaN, `meta` a
 * `Uint32Array` of the right length with valid codes and unused high bits 0.
 *
 * @returns The dense shape.
 */
export function assertCompressed24(
  c: Compressed24,
  action: string,
): { rows: number; cols: number } {
  if (c === null || typeof c !== "object") {
    throw new TypeError(`Cannot ${action}: expected a Compressed24 {values, meta}, got ${c}`);
  }
  const { values, meta } = c;
  assertMatrix(values, action);
  if (values.cols % 2 !== 0) {
    throw new RangeError(
      `Cannot ${action}: values must hold two entries per group, so values.cols must be even, got ${values.cols}`,
    );
  }
  assertNoNaN(values, action);
  if (!(meta instanceof Uint32Array)) {
    throw new TypeError(`Cannot ${action}: meta must be a Uint32Array, got ${typeName(meta)}`);
  }
  const rows = values.rows, cols = 2 * values.cols;
  const groupsPerRow = cols / 4;
  const groupCount = rows * groupsPerRow;
  const words = Math.ceil(groupCount / 8);
  if (meta.length !== words) {
    throw new RangeError(
      `Cannot ${action}: meta must have ceil(${groupCount} groups / 8) = ${words} words for a [${rows}, ${cols}] matrix, got ${meta.length}`,
    );
  }
  if (groupCount % 8 !== 0) {
    const unused = meta[words - 1] >>> (4 * (groupCount % 8));
    if (unused !== 0) {
      throw new RangeError(
        `Cannot ${action}: the unused high bits of the last meta word must be 0, got 0x${
          meta[words - 1].toString(16)
        } (after ${groupCount % 8} codes)`,
      );
    }
  }
  for (let g = 0; g < groupCount; g++) {
    const code = (meta[Math.floor(g / 8)] >>> (4 * (g % 8))) & 0xf;
    if (!VALID_CODES.has(code)) {
      const row = Math.floor(g / groupsPerRow), group = g % groupsPerRow;
      throw new RangeError(
        `Cannot ${action}: invalid metadata code ${code} for row ${row}, group ${group} (flat group ${g}); valid codes are 4, 8, 9, 12, 13, 14`,
      );
    }
  }
  return { rows, cols };
}

/** The checks of `flipCount`/`flipRate`: two 0/1 `Uint8Array`s of the same length. */
export function assertMaskPair(prevMask: Uint8Array, nextMask: Uint8Array, action: string): void {
  if (!(prevMask instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot ${action}: the previous mask must be a Uint8Array of 0/1, got ${typeName(prevMask)}`,
    );
  }
  assertMask(prevMask, prevMask.length, action);
  assertMask(nextMask, prevMask.length, action);
}

/** The checks of `maskedDecay`: same-shape finite matrices, a 0/1 mask, `alpha` finite `≥ 0`. */
export function assertMaskedDecayArgs(
  grad: Matrix,
  w: Matrix,
  mask: Uint8Array,
  alpha: number,
  action: string,
): void {
  assertMatrix(grad, action);
  assertMatrix(w, action);
  assertSameShape(grad, w, action);
  assertMask(mask, grad.data.length, action);
  if (typeof alpha !== "number" || !Number.isFinite(alpha) || alpha < 0) {
    throw new RangeError(`Cannot ${action}: alpha must be a finite number >= 0, got ${alpha}`);
  }
  assertFinite(grad, action, "the gradient");
  assertFinite(w, action, "the weight");
}

/**
 * The checks of `mvue24WithUniforms`' uniforms: a `Float32Array` of two per group, each strictly
 * inside `(0, 1)`.
 */
export function assertMvueUniforms(uniforms: Float32Array, groups: number, action: string): void {
  if (!(uniforms instanceof Float32Array)) {
    throw new TypeError(
      `Cannot ${action}: uniforms must be a Float32Array, got ${typeName(uniforms)}`,
    );
  }
  if (uniforms.length !== 2 * groups) {
    throw new RangeError(
      `Cannot ${action}: uniforms must hold 2 per group = ${2 * groups}, got ${uniforms.length}`,
    );
  }
  for (let i = 0; i < uniforms.length; i++) {
    const u = uniforms[i];
    if (!(u > 0 && u < 1)) {
      throw new RangeError(
        `Cannot ${action}: uniforms must lie strictly inside (0, 1), got ${u} at index ${i}`,
      );
    }
  }
}

/** Throws a `TypeError` unless `format` names an FP8 format. */
export function assertFp8Format(format: unknown, action: string): asserts format is Fp8Format {
  if (format !== "e4m3" && format !== "e5m2") {
    throw new TypeError(
      `Cannot ${action}: unknown FP8 format "${format}", expected "e4m3" or "e5m2"`,
    );
  }
}

/** The checks of `quantizeFp8`: options `{format}` naming an FP8 format, a finite matrix. */
export function assertQuantizeFp8Args(
  x: Matrix,
  options: QuantizeFp8Options,
  action: string,
): void {
  assertOptionsObject(options, "{format}", action);
  assertFp8Format(options.format, action);
  assertMatrix(x, action);
  assertFinite(x, action);
}
