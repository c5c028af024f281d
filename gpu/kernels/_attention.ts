/**
 * What the fused causal attention kernels share (SPEC §8.5): the operand layout (`[BH, T, hd]`
 * slices, rows of `hd` floats held as `⌈hd/4⌉` zero-padded `vec4`s), the tile sizes, the uniform
 * block, the workgroup → (slice, row tile) mapping and the WGSL that reads a row into `vec4`s.
 *
 * @module
 */

import type { GpuRuntime } from "../runtime.ts";
import { grid1d } from "../runtime.ts";
import { packParams } from "./_params.ts";
import { assertSizes } from "./_sparse.ts";

/** Threads per workgroup of every attention kernel: one query (or key) row each. */
export const ATTENTION_ROWS = 64;

/** Most rows of a workgroup-memory tile (bounds the private score array of the forward kernel). */
const MAX_TILE_ROWS = 32;

/** Workgroup memory an attention kernel may use (bytes): the adapter's limit, at most 32 KiB. */
function workgroupBudget(rt: GpuRuntime): number {
  return Math.min(rt.limits.maxComputeWorkgroupStorageSize, 32768);
}

/**
 * Rows of the tiles a kernel stages in workgroup memory: the largest power of two up to 32 such
 * that `matrices` tiles of `rows × ⌈hd/4⌉` `vec4`s and `scalars` per-row floats fit the budget.
 *
 * @param rt The runtime (its workgroup-memory limit).
 * @param hd The head dimension.
 * @param matrices Tiles of `rows × hd` staged.
 * @param scalars Per-row floats staged besides.
 * @returns The tile rows (at least 1).
 */
export function attentionTileRows(
  rt: GpuRuntime,
  hd: number,
  matrices: number,
  scalars = 0,
): number {
  const bytesPerRow = matrices * 16 * Math.ceil(hd / 4) + 4 * scalars;
  let rows = MAX_TILE_ROWS;
  while (rows > 1 && rows * bytesPerRow > workgroupBudget(rt)) rows /= 2;
  return rows;
}

/** The shape of one fused attention call: `bh` slices of `[T, hd]`. */
export interface AttentionDims {
  /** Slices (batch × heads). */
  bh: number;
  /** Sequence length. */
  T: number;
  /** Head dimension. */
  hd: number;
}

/**
 * Checks the shape and scale of an attention encoder's call.
 *
 * @throws {RangeError} On a size that is not a `u32`, `hd = 0`, or a non-finite scale.
 */
export function assertAttentionDims(dims: AttentionDims, scale: number, action: string): void {
  assertSizes({ bh: dims.bh, T: dims.T, hd: dims.hd }, action);
  if (dims.hd === 0 || !Number.isFinite(scale)) {
    throw new RangeError(
      `Cannot ${action}: hd must be positive and scale finite, got hd ${dims.hd}, scale ${scale}`,
    );
  }
}

/** WGSL `struct Params` fields of every attention kernel (see {@linkcode attentionParams}). */
export const ATTENTION_PARAMS = "bh: u32, T: u32, scale: f32";

/** The uniform block `{ bh, T, scale }`. */
export function attentionParams(dims: AttentionDims, scale: number): Uint32Array {
  return packParams([dims.bh, dims.T], [scale]);
}

/** The grid: one workgroup per slice and tile of {@linkcode ATTENTION_ROWS} rows. */
export function attentionGrid(dims: AttentionDims): [number, number] {
  return grid1d(dims.bh * Math.ceil(dims.T / ATTENTION_ROWS));
}

/**
 * WGSL opening a kernel's `main` after its declarations: the workgroup's slice `b`, row tile
 * `tile`, the slice's first float `base`, this thread's row `row` and whether it exists (`live`).
 * Threads past `T` stay to take part in the barriers.
 */
export const ATTENTION_MAIN_WGSL = `@compute @workgroup_size(${ATTENTION_ROWS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let tiles = (p.T + ${ATTENTION_ROWS}u - 1u) / ${ATTENTION_ROWS}u;
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= p.bh * tiles) { return; }
  let b = wg / tiles;
  let tile = wg % tiles;
  let base = b * p.T * HD;
  let row = tile * ${ATTENTION_ROWS}u + lid;
  let live = row < p.T;`;

/**
 * WGSL constants `HD`, `HD4` and, per buffer, a function `read_<name>(offset, c4)` returning
 * floats `4·c4 … 4·c4 + 3` of the row at `offset` as a `vec4`, zero past `hd`.
 *
 * @param hd The head dimension.
 * @param buffers The storage buffers read by rows.
 * @returns The WGSL.
 */
export function attentionRowsWgsl(hd: number, buffers: readonly string[]): string {
  const hd4 = Math.ceil(hd / 4);
  const lane = (name: string, l: number) =>
    hd % 4 === 0 || l === 0
      ? `${name}[at + ${l}u]`
      : `select(0.0, ${name}[at + ${l}u], 4u * c4 + ${l}u < HD)`;
  const readers = buffers.map((name) =>
    `fn read_${name}(offset: u32, c4: u32) -> vec4<f32> {
  let at = offset + 4u * c4;
  return vec4<f32>(${[0, 1, 2, 3].map((l) => lane(name, l)).join(", ")});
}`
  );
  return [`const HD: u32 = ${hd}u;`, `const HD4: u32 = ${hd4}u;`, ...readers].join("\n");
}

/** WGSL writing `value` (a `vec4` of row floats `4·c4…`) at `offset`, skipping lanes past `hd`. */
export function attentionWriteWgsl(buffer: string, offset: string, value: string): string {
  return `for (var l = 0u; l < 4u; l++) {
      if (4u * c4 + l < HD) { ${buffer}[${offset} + 4u * c4 + l] = ${value}[l]; }
    }`;
}
