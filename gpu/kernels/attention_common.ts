/**
 * What the fused causal attention kernels share (SPEC §8.5): the operand layout (`[BH, T, hd]`
 * slices, rows of `hd` floats held as `⌈hd/4⌉` zero-padded `vec4`s), the tile sizes, the uniform
 * block, the workgroup → (slice, row tile) mapping and the WGSL that reads a row into `vec4`s.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid1d } from "../runtime.ts";
import { packParams } from "./_params.ts";
import { assertSizes, cachedSpec } from "./_sparse.ts";
import { wgslBindings } from "./_wgsl.ts";

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

/** The grid: one workgroup per slice and tile of {@linkcode ATTENTION_ROWS} rows. */
function attentionGrid(dims: AttentionDims): [number, number] {
  return grid1d(dims.bh * Math.ceil(dims.T / ATTENTION_ROWS));
}

/**
 * Records one attention kernel over `dims` (grid: one workgroup per slice and row tile; uniform
 * `{ bh, T, scale }`); nothing for an empty shape.
 */
export function dispatchAttention(
  rt: GpuRuntime,
  spec: KernelSpec,
  buffers: readonly GPUBuffer[],
  dims: AttentionDims,
  scale: number,
): void {
  if (dims.bh * dims.T === 0) return;
  rt.dispatch(spec, buffers, attentionGrid(dims), packParams([dims.bh, dims.T], [scale]));
}

/**
 * WGSL opening a kernel's `main`: the workgroup's slice `b`, row tile `tile`, the slice's first
 * float `base`, this thread's row `row` and whether it exists (`live`). Threads past `T` stay to
 * take part in the barriers.
 */
const ATTENTION_MAIN_WGSL = `@compute @workgroup_size(${ATTENTION_ROWS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let tiles = (p.T + ROWS - 1u) / ROWS;
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= p.bh * tiles) { return; }
  let b = wg / tiles;
  let tile = wg % tiles;
  let base = b * p.T * HD;
  let row = tile * ROWS + lid;
  let live = row < p.T;`;

/** The WGSL parts of an attention kernel that {@linkcode attentionSpec} assembles. */
export interface AttentionKernelParts {
  /** Storage buffers read, in binding order (each also gets a row reader `read_<name>`). */
  reads: readonly string[];
  /** Storage buffers written, bound after the reads. */
  writes: readonly string[];
  /** Workgroup-memory declarations. */
  shared: string;
  /** The body of `main` after its opening (`b`, `tile`, `base`, `row`, `live`), closing brace included. */
  body: string;
}

/**
 * An attention kernel: the bindings (`array<f32>` reads, then writes, then the uniform
 * `{ bh, T, scale }`), a row reader per read buffer, the constants `HD`, `HD4`, `ROWS`, `TILE`, the
 * workgroup memory and `main` (`ROWS` threads, one row each), cached by name, head dimension and
 * tile rows.
 *
 * @param name Cache key prefix, e.g. `"attention-forward"`.
 * @param shape `{ hd, tileRows }`: the head dimension and the rows of the workgroup-memory tiles.
 * @param parts The kernel's own WGSL.
 * @returns The kernel, key `<name>-hd<hd>-tile<tileRows>`.
 */
export function attentionSpec(
  name: string,
  shape: { hd: number; tileRows: number },
  parts: AttentionKernelParts,
): KernelSpec {
  const { hd, tileRows } = shape;
  return cachedSpec(`${name}-hd${hd}-tile${tileRows}`, () => {
    const bindings = wgslBindings("bh: u32, T: u32, scale: f32", [
      ...parts.reads.map((b) => `read ${b}: array<f32>`),
      ...parts.writes.map((b) => `read_write ${b}: array<f32>`),
    ]);
    return `${bindings}
${attentionRowsWgsl(hd, parts.reads)}
const ROWS: u32 = ${ATTENTION_ROWS}u;
const TILE: u32 = ${tileRows}u;
${parts.shared}

${ATTENTION_MAIN_WGSL}
${parts.body}`;
  });
}

/** WGSL: the key and value tiles (`TILE` rows) of the kernels that walk keys per query row. */
export function keyValueTilesWgsl(hd: number, tileRows: number): string {
  const entries = tileRows * Math.ceil(hd / 4);
  return `var<workgroup> kTile: array<vec4<f32>, ${entries}>;
var<workgroup> vTile: array<vec4<f32>, ${entries}>;`;
}

/**
 * WGSL opening the loop over the key tiles `kt` up to the workgroup's last query row (uniform
 * across the workgroup): stages the tile's keys and values in `kTile`, `vTile` between barriers.
 * The caller's WGSL closes the loop.
 */
export const KEY_TILE_LOOP_WGSL = `  let keyTiles = (min(p.T, (tile + 1u) * ROWS) - 1u) / TILE + 1u;
  for (var kt = 0u; kt < keyTiles; kt++) {
    workgroupBarrier();
    for (var e = lid; e < TILE * HD4; e += ROWS) {
      let j = min(kt * TILE + e / HD4, p.T - 1u); // rows past T are never visible
      kTile[e] = read_k(base + j * HD, e % HD4);
      vTile[e] = read_v(base + j * HD, e % HD4);
    }
    workgroupBarrier();`;

/**
 * WGSL constants `HD`, `HD4` and, per buffer, a function `read_<name>(offset, c4)` returning
 * floats `4·c4 … 4·c4 + 3` of the row at `offset` as a `vec4`, zero past `hd`.
 *
 * @param hd The head dimension.
 * @param buffers The storage buffers read by rows.
 * @returns The WGSL.
 */
function attentionRowsWgsl(hd: number, buffers: readonly string[]): string {
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
