/**
 * Data-movement kernels: 2-D transpose (through 16×16 workgroup tiles, so both the reads and the
 * writes of a workgroup touch contiguous rows), the permutation `[A, B, C, D] → [A, C, B, D]` (the
 * one-part head split of `heads.ts`), column slices, column padding, and a plain 32-bit copy (used for
 * in-place assignment without leaving the shared compute pass). Values are moved bit for bit.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, packParams } from "./_params.ts";
import { dispatchNew } from "./_dispatch.ts";
import { wgslBindings, wgslItemEntry, wgslItemMain } from "./_wgsl.ts";
import { cachedSpec } from "./_sparse.ts";
import { encodeSplitHeads } from "./heads.ts";

const TILE = 16;

/**
 * The transpose kernel: grid `[⌈cols/16⌉, ⌈rows/16⌉]`, one 16×16 tile per workgroup (padded to
 * 17 columns in workgroup memory). Bindings: `x`, `out`, uniform `{ rows, cols }`.
 *
 * @returns The kernel, key `layout-transpose`.
 */
export function transposeSpec(): KernelSpec {
  return cachedSpec(
    "layout-transpose",
    () =>
      `${
        wgslBindings("rows: u32, cols: u32", [
          "read x: array<u32>",
          "read_write out: array<u32>",
        ])
      }
var<workgroup> tile: array<u32, ${TILE * (TILE + 1)}>;

@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let r = wid.y * ${TILE}u + l.y;
  let c = wid.x * ${TILE}u + l.x;
  if (r < p.rows && c < p.cols) { tile[l.y * ${TILE + 1}u + l.x] = x[r * p.cols + c]; }
  workgroupBarrier();
  // Output row = input column: thread (l.x, l.y) writes out[c', r'] with r' along x.
  let oc = wid.y * ${TILE}u + l.x;
  let orow = wid.x * ${TILE}u + l.y;
  if (orow < p.cols && oc < p.rows) { out[orow * p.rows + oc] = tile[l.x * ${TILE + 1}u + l.y]; }
}
`,
  );
}

/**
 * Records the transpose of a `[rows, cols]` matrix of 32-bit values.
 *
 * @param rt The runtime.
 * @param x The matrix.
 * @param rows Rows of `x`.
 * @param cols Columns of `x`.
 * @returns A new pooled buffer holding the `[cols, rows]` transpose.
 */
export function encodeTranspose(
  rt: GpuRuntime,
  x: GPUBuffer,
  rows: number,
  cols: number,
): GPUBuffer {
  const count = rows * cols, params = packParams([rows, cols]);
  const tiles = [Math.ceil(cols / TILE), Math.ceil(rows / TILE)];
  return dispatchNew(rt, transposeSpec(), [x], [4 * count], count, params, tiles)[0];
}

/**
 * Records `[A, B, C, D] → [A, C, B, D]` on float32 values.
 *
 * @param rt The runtime.
 * @param x The tensor.
 * @param dims `[A, B, C, D]`.
 * @returns A new pooled buffer with the permuted tensor.
 */
export function encodePermute0213(
  rt: GpuRuntime,
  x: GPUBuffer,
  dims: readonly [number, number, number, number],
): GPUBuffer {
  // The head split with one part is this permutation: [batch, T, heads, hd] → [batch, heads, T, hd].
  const [A, B, C, D] = dims;
  return encodeSplitHeads(rt, x, { batch: A, T: B, heads: C, hd: D, parts: 1 })[0];
}

/**
 * Column window copy: `out[r, j] = x[r, j + srcStart]` for the `width` columns of `out`, or, in
 * `pad` mode, `out[r, j] = x[r, j − start]` inside `[start, start + width)` and 0 elsewhere.
 * Bindings: `x`, `out`, uniform `{ count, outCols, inCols, start, width }`.
 *
 * @param mode `"slice"` or `"pad"`.
 * @returns The kernel, key `layout-{mode}-cols`.
 */
export function columnsSpec(mode: "slice" | "pad"): KernelSpec {
  const body = mode === "slice" ? "out[o] = x[r * p.inCols + p.start + j];" : `var v = 0u;
  if (j >= p.start && j < p.start + p.width) { v = x[r * p.inCols + j - p.start]; }
  out[o] = v;`;
  return cachedSpec(
    `layout-${mode}-cols`,
    () =>
      `${
        wgslBindings("count: u32, outCols: u32, inCols: u32, start: u32, width: u32", [
          "read x: array<u32>",
          "read_write out: array<u32>",
        ])
      }

${wgslItemMain("o", "p.count")}
  let r = o / p.outCols;
  let j = o % p.outCols;
  ${body}
}
`,
  );
}

/**
 * Records columns `[start, start + width)` of a `[rows, cols]` matrix (the caller checks the range).
 *
 * @param rt The runtime.
 * @param x The matrix.
 * @param rows Rows of `x`.
 * @param cols Columns of `x`.
 * @param start First column taken.
 * @param width Number of columns taken.
 * @returns A new pooled buffer holding `[rows, width]`.
 */
export function encodeSliceCols(
  rt: GpuRuntime,
  x: GPUBuffer,
  rows: number,
  cols: number,
  start: number,
  width: number,
): GPUBuffer {
  return encodeColumns(rt, "slice", x, rows, width, cols, start, width);
}

/**
 * Records placing a `[rows, width]` matrix at column `start` of a zero `[rows, cols]` matrix (the
 * caller checks `start + width ≤ cols`).
 *
 * @param rt The runtime.
 * @param x The `[rows, width]` matrix.
 * @param rows Rows of `x`.
 * @param width Columns of `x`.
 * @param start Column of the result where `x` begins.
 * @param cols Columns of the result.
 * @returns A new pooled buffer holding `[rows, cols]`.
 */
export function encodePadCols(
  rt: GpuRuntime,
  x: GPUBuffer,
  rows: number,
  width: number,
  start: number,
  cols: number,
): GPUBuffer {
  return encodeColumns(rt, "pad", x, rows, cols, width, start, width);
}

/** Records {@linkcode columnsSpec}: a `[rows, outCols]` result from a `[rows, inCols]` matrix. */
function encodeColumns(
  rt: GpuRuntime,
  mode: "slice" | "pad",
  x: GPUBuffer,
  rows: number,
  outCols: number,
  inCols: number,
  start: number,
  width: number,
): GPUBuffer {
  const count = rows * outCols;
  const params = packParams([count, outCols, inCols, start, width]);
  return dispatchNew(rt, columnsSpec(mode), [x], [4 * count], count, params)[0];
}

/**
 * The copy kernel `dst[i] = src[i]` on 32-bit words. Bindings: `src`, `dst`, uniform `{ count }`.
 *
 * @returns The kernel, key `layout-copy`.
 */
export function copySpec(): KernelSpec {
  return cachedSpec(
    "layout-copy",
    () =>
      `${wgslBindings("count: u32", ["read src: array<u32>", "read_write dst: array<u32>"])}

${wgslItemEntry("i")}
  if (i < p.count) { dst[i] = src[i]; }
}
`,
  );
}

/**
 * Records copying `count` 32-bit words from `src` into the existing buffer `dst` (in the shared
 * compute pass, ordered after every dispatch recorded before it).
 *
 * @param rt The runtime.
 * @param src The source.
 * @param dst The destination (a different buffer).
 * @param count Number of 32-bit words.
 */
export function encodeCopy(rt: GpuRuntime, src: GPUBuffer, dst: GPUBuffer, count: number): void {
  if (count > 0) rt.dispatch(copySpec(), [src, dst], grid(count), packParams([count]));
}
