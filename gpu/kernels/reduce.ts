/**
 * Deterministic reductions: `Σ x²` and `Σ a⊙b` to one value, and column sums of a `[rows, cols]`
 * matrix (for `meanRows` and the LayerNorm parameter gradients).
 *
 * Every reduction runs in two passes with a fixed partition of the input and a fixed pairing
 * order (no float atomics), so a result depends only on the input and its shape, never on
 * scheduling:
 * - whole-tensor sums: pass 1 gives each workgroup a contiguous block of {@linkcode BLOCK}
 *   elements, each thread a strided share summed in index order, then a tree over the 256
 *   threads; pass 2 (one workgroup) sums the block partials the same way, then scales.
 * - column sums: pass 1 gives each thread one column and one chunk of {@linkcode CHUNK_ROWS}
 *   consecutive rows, summed in row order; pass 2 sums the chunk partials of each column in
 *   chunk order, then scales.
 *
 * All sums accumulate in float32; the reference accumulates in float64, so results agree to
 * about `log2(n)·2^-24` relative for sums of like-signed terms.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid1d } from "../runtime.ts";
import {
  GRID_BUILTINS,
  LINEAR_WORKGROUP,
  MAX_SLOTS,
  packParams,
  slotOfWorkgroupWgsl,
} from "./_params.ts";
import { wgslBindings, wgslItemMain } from "./_wgsl.ts";
import { cachedSpec, foldPartialsWgsl, workgroupReduceWgsl } from "./_sparse.ts";
import { dispatchNew } from "./_dispatch.ts";

/** Threads per workgroup of the whole-tensor reductions. */
export const REDUCE_THREADS = 256;
/** Elements per workgroup in the first pass of a whole-tensor reduction. */
export const BLOCK = REDUCE_THREADS * 16;
/** Rows per chunk in the first pass of a column sum. */
export const CHUNK_ROWS = 64;
/** Threads (columns) per workgroup of the column sums. */
export const COLUMN_THREADS = 64;

/**
 * The opening of a column-chunk kernel (grid `[⌈cols/COLUMN_THREADS⌉, chunks]`): column `j`, the
 * early return past `cols`, and the chunk's rows `[r0, r1)` of `p.rows`. The caller closes the brace.
 *
 * @param cols The WGSL expression of the column count, e.g. `"p.cols"`.
 * @returns The WGSL lines, without a final newline.
 */
export function columnChunkMainWgsl(cols: string): string {
  return `@compute @workgroup_size(${COLUMN_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = wid.x * ${COLUMN_THREADS}u + lid;
  if (j >= ${cols}) { return; }
  let r0 = wid.y * ${CHUNK_ROWS}u;
  let r1 = min(r0 + ${CHUNK_ROWS}u, p.rows);`;
}

/** What a whole-tensor reduction sums: `x²` of one input, or `a·b` of two. */
export type SumKind = "squares" | "dot";

/**
 * Pass 1 of a whole-tensor sum: block `k`'s partial sum goes to `partials[offset + k]`. Bindings:
 * `a` (and `b` for `dot`), `partials`, uniform `{ count, offset }`.
 *
 * @param kind `"squares"` or `"dot"`.
 * @returns The kernel, key `reduce-{kind}-partial`.
 */
export function sumPartialSpec(kind: SumKind): KernelSpec {
  const term = kind === "squares" ? "a[i] * a[i]" : "a[i] * b[i]";
  return cachedSpec(`reduce-${kind}-partial`, () =>
    `struct Params { count: u32, offset: u32 }
@group(0) @binding(0) var<storage, read> a: array<f32>;
${
      kind === "dot"
        ? `@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;`
        : `@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;`
    }
var<workgroup> red: array<f32, ${REDUCE_THREADS}>;

@compute @workgroup_size(${REDUCE_THREADS})
fn main(${GRID_BUILTINS}) {
  let block = ${LINEAR_WORKGROUP};
  let start = block * ${BLOCK}u;
  let end = min(start + ${BLOCK}u, p.count);
  var acc = 0.0;
  for (var i = start + lid; i < end; i += ${REDUCE_THREADS}u) { acc += ${term}; }
  red[lid] = acc;
${workgroupReduceWgsl({ type: "f32", op: "sum", components: 1 }, REDUCE_THREADS)}
  if (lid == 0u) { partials[p.offset + block] = red[0]; }
}
`);
}

/**
 * Pass 2 of a whole-tensor sum: one workgroup sums `count` partials and writes
 * `scale · Σ` to `out[0]`. Bindings: `partials`, `out`, uniform `{ count, scale }`.
 *
 * @returns The kernel, key `reduce-final-scaled`.
 */
export function sumFinalSpec(): KernelSpec {
  return cachedSpec(
    "reduce-final-scaled",
    () =>
      `${
        wgslBindings("count: u32, scale: f32", [
          "read partials: array<f32>",
          "read_write out: array<f32>",
        ])
      }
${foldPartialsWgsl({ type: "f32", op: "sum", components: 1 }, REDUCE_THREADS)}
  if (lid == 0u) { out[0] = red[0] * p.scale; }
}
`,
  );
}

/**
 * Records the second pass of a sum over `count` partials.
 *
 * @param rt The runtime.
 * @param partials The partial sums.
 * @param count Number of partials.
 * @param scale Factor applied to the sum (as float32; default 1).
 * @returns A new pooled one-value buffer holding `scale · Σ partials`.
 */
export function encodeSumFinal(
  rt: GpuRuntime,
  partials: GPUBuffer,
  count: number,
  scale = 1,
): GPUBuffer {
  const out = rt.alloc(4);
  rt.dispatch(sumFinalSpec(), [partials, out], [1], packParams([count], [scale]));
  return out;
}

/**
 * Records `Σ a²` (`b` omitted) or `Σ a⊙b` over `count` float32 values.
 *
 * @param rt The runtime.
 * @param a The first input.
 * @param b The second input of a dot product, or `null` for a sum of squares.
 * @param count Number of elements.
 * @returns A new pooled buffer holding the one float32 result.
 */
export function encodeSum(
  rt: GpuRuntime,
  a: GPUBuffer,
  b: GPUBuffer | null,
  count: number,
): GPUBuffer {
  const blocks = Math.ceil(count / BLOCK);
  const partials = rt.alloc(4 * Math.max(1, blocks));
  if (blocks > 0) {
    const kind: SumKind = b ? "dot" : "squares";
    rt.dispatch(
      sumPartialSpec(kind),
      b ? [a, b, partials] : [a, partials],
      grid1d(blocks),
      packParams([count, 0]),
    );
  }
  const out = encodeSumFinal(rt, partials, blocks);
  rt.free(partials);
  return out;
}

/**
 * Pass 2 of several whole-tensor sums at once: workgroup `t` sums the partials
 * `[ranges[2t], ranges[2t] + ranges[2t+1])` exactly as {@linkcode sumFinalSpec} does (scale 1) into
 * `sums[t]`. Bindings: `partials`, `ranges`, `sums`, uniform `{ tensors }`; grid `[tensors]`.
 *
 * @returns The kernel, key `reduce-final-many`.
 */
export function sumFinalManySpec(): KernelSpec {
  return cachedSpec(
    "reduce-final-many",
    () =>
      `${
        wgslBindings("tensors: u32", [
          "read partials: array<f32>",
          "read ranges: array<u32>",
          "read_write sums: array<f32>",
        ])
      }
var<workgroup> red: array<f32, ${REDUCE_THREADS}>;

@compute @workgroup_size(${REDUCE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.x;
  let start = ranges[2u * t];
  let count = ranges[2u * t + 1u];
  var acc = 0.0;
  for (var i = lid; i < count; i += ${REDUCE_THREADS}u) { acc += partials[start + i]; }
  red[lid] = acc;
${workgroupReduceWgsl({ type: "f32", op: "sum", components: 1 }, REDUCE_THREADS)}
  if (lid == 0u && t < p.tensors) { sums[t] = red[0]; }
}
`,
  );
}

/**
 * `out[0] = (…((sums[0] + sums[1]) + sums[2]) … + sums[n−1])` in float32, in order, by one thread:
 * the value a chain of `add`s of the `[1]` sums gives. Bindings: `sums`, `out`, uniform `{ n }`.
 *
 * @returns The kernel, key `reduce-sum-in-order`.
 */
export function sumInOrderSpec(): KernelSpec {
  return cachedSpec(
    "reduce-sum-in-order",
    () =>
      `${wgslBindings("n: u32", ["read sums: array<f32>", "read_write out: array<f32>"])}

@compute @workgroup_size(1)
fn main() {
  var acc = sums[0];
  for (var i = 1u; i < p.n; i++) { acc = acc + sums[i]; }
  out[0] = acc;
}
`,
  );
}

/** Most tensors of one {@linkcode sumSquaresMultiSpec} dispatch with `maxStorageBuffers` bindings. */
export function sumSquaresSlotsFor(maxStorageBuffers: number): number {
  return Math.max(1, Math.min(MAX_SLOTS, maxStorageBuffers - 1));
}

/**
 * Pass 1 of {@linkcode sumPartialSpec}`("squares")` for `slots` tensors in one dispatch: tensor
 * `s` owns the workgroups from `u[s].x`, sums block `k` of its `u[s].y` elements exactly as the
 * one-tensor kernel does and writes it to `partials[u[s].z + k]`. Bindings: `a0 … a{slots−1}`,
 * `partials`, uniform `{ u: array<vec4<u32>, slots> }`.
 *
 * @param slots Tensors per dispatch (1 to {@linkcode MAX_SLOTS}).
 * @returns The kernel, key `reduce-squares-multi-{slots}`.
 */
export function sumSquaresMultiSpec(slots: number): KernelSpec {
  const inputs = Array.from({ length: slots }, (_, t) => `read a${t}: array<f32>`);
  const cases = Array.from({ length: slots }, (_, t) =>
    `    case ${t}u: {
      for (var i = start + lid; i < end; i += ${REDUCE_THREADS}u) { acc += a${t}[i] * a${t}[i]; }
    }`).join("\n");
  return cachedSpec(
    `reduce-squares-multi-${slots}`,
    () =>
      `${
        wgslBindings("u: array<vec4<u32>, " + slots + ">", [
          ...inputs,
          "read_write partials: array<f32>",
        ])
      }
var<workgroup> red: array<f32, ${REDUCE_THREADS}>;

@compute @workgroup_size(${REDUCE_THREADS})
fn main(${GRID_BUILTINS}) {
  let wg = ${LINEAR_WORKGROUP};
${slotOfWorkgroupWgsl(slots, (t) => `p.u[${t}].x`)}
  let block = wg - p.u[s].x;
  let start = block * ${BLOCK}u;
  let end = min(start + ${BLOCK}u, p.u[s].y);
  var acc = 0.0;
  switch s {
${cases}
    default: {}
  }
  red[lid] = acc;
${workgroupReduceWgsl({ type: "f32", op: "sum", components: 1 }, REDUCE_THREADS)}
  // Workgroups past the last block (a 2-D grid's padding) write nothing.
  if (lid == 0u && start < end) { partials[p.u[s].z + block] = red[0]; }
}
`,
  );
}

/**
 * Records `Σ_t Σ x_t²` over several tensors in `⌈n/slots⌉ + 2` dispatches (first passes of
 * `slots` tensors each into a shared partials buffer, one second pass for all, one ordered sum)
 * instead of `3n − 1`: the same float32 value as each tensor's {@linkcode encodeSum} added in order
 * by `add`.
 *
 * @param rt The runtime.
 * @param tensors The inputs and their element counts (at least one).
 * @param slots Tensors per first-pass dispatch ({@linkcode sumSquaresSlotsFor}).
 * @returns A new pooled buffer holding the one float32 result.
 */
export function encodeSumSquaresMany(
  rt: GpuRuntime,
  tensors: readonly { buffer: GPUBuffer; count: number }[],
  slots: number,
): GPUBuffer {
  const ranges = new Uint32Array(2 * tensors.length);
  let total = 0;
  tensors.forEach(({ count }, t) => {
    const blocks = Math.ceil(count / BLOCK);
    ranges[2 * t] = total;
    ranges[2 * t + 1] = blocks;
    total += blocks;
  });
  const partials = rt.alloc(4 * Math.max(1, total));
  const live = tensors.map((t, i) => ({ ...t, i })).filter((t) => t.count > 0);
  for (let at = 0; at < live.length; at += slots) {
    const group = live.slice(at, at + slots), u = new Uint32Array(4 * group.length);
    let workgroups = 0;
    group.forEach(({ count, i }, s) => {
      u.set([workgroups, count, ranges[2 * i]], 4 * s);
      workgroups += ranges[2 * i + 1];
    });
    const inputs = [...group.map((t) => t.buffer), partials];
    rt.dispatch(sumSquaresMultiSpec(group.length), inputs, grid1d(workgroups), u);
  }
  const table = rt.upload(ranges), sums = rt.alloc(4 * tensors.length), out = rt.alloc(4);
  rt.dispatch(
    sumFinalManySpec(),
    [partials, table, sums],
    [tensors.length],
    packParams([tensors.length]),
  );
  rt.dispatch(sumInOrderSpec(), [sums, out], [1], packParams([tensors.length]));
  for (const b of [partials, table, sums]) rt.free(b);
  return out;
}

/**
 * Pass 1 of a column sum: `partials[chunk, j] = Σ_{rows r of chunk} x[r, j]`. Grid
 * `[⌈cols/64⌉, chunks]`. Bindings: `x`, `partials`, uniform `{ rows, cols }`.
 *
 * @returns The kernel, key `reduce-colsum-partial`.
 */
export function columnPartialSpec(): KernelSpec {
  return cachedSpec(
    "reduce-colsum-partial",
    () =>
      `${
        wgslBindings("rows: u32, cols: u32", [
          "read x: array<f32>",
          "read_write partials: array<f32>",
        ])
      }

${columnChunkMainWgsl("p.cols")}
  var acc = 0.0;
  for (var r = r0; r < r1; r++) { acc += x[r * p.cols + j]; }
  partials[wid.y * p.cols + j] = acc;
}
`,
  );
}

/**
 * Pass 2 of a column sum: `out[j] = scale · Σ_chunk partials[chunk, j]` in chunk order. Bindings:
 * `partials`, `out`, uniform `{ chunks, cols, scale }`; with `halves`, two column sums side by side
 * (`[chunks, 2·half]` partials) into two outputs: `partials`, `out`, `out2`, uniform
 * `{ chunks, cols, half, scale }`, columns `≥ half` going to `out2`.
 *
 * @param halves Whether the partials hold two sums to write to two buffers.
 * @returns The kernel, key `reduce-colsum-final` (`-halves`).
 */
export function columnFinalSpec(halves = false): KernelSpec {
  const store = halves
    ? "if (j < p.half) { out[j] = v; } else { out2[j - p.half] = v; }"
    : "out[j] = v;";
  return cachedSpec(
    `reduce-colsum-final${halves ? "-halves" : ""}`,
    () =>
      `${
        wgslBindings(`chunks: u32, cols: u32, ${halves ? "half: u32, " : ""}scale: f32`, [
          "read partials: array<f32>",
          "read_write out: array<f32>",
          ...(halves ? ["read_write out2: array<f32>"] : []),
        ])
      }

${wgslItemMain("j", "p.cols", COLUMN_THREADS)}
  var acc = 0.0;
  for (var c = 0u; c < p.chunks; c++) { acc += partials[c * p.cols + j]; }
  let v = acc * p.scale;
  ${store}
}
`,
  );
}

/**
 * Number of row chunks of a column sum.
 *
 * @param rows Number of rows.
 * @returns `⌈rows / CHUNK_ROWS⌉`.
 */
export function columnChunks(rows: number): number {
  return Math.ceil(rows / CHUNK_ROWS);
}

/**
 * Checks that a column sum's grid fits the per-dimension workgroup limit.
 *
 * @param rows Number of rows.
 * @param cols Number of columns.
 * @param action What the caller was doing, for the message.
 * @throws {RangeError} Naming the shape.
 */
export function assertColumnGrid(rows: number, cols: number, action: string): void {
  if (columnChunks(rows) > 65535 || Math.ceil(cols / COLUMN_THREADS) > 65535) {
    throw new RangeError(
      `Cannot ${action}: [${rows}, ${cols}] exceeds the column-sum grid (at most ${
        65535 * CHUNK_ROWS
      } rows and ${65535 * COLUMN_THREADS} columns)`,
    );
  }
}

/**
 * Records the second pass of a column sum over `chunks` partial rows.
 *
 * @param rt The runtime.
 * @param partials The `[chunks, cols]` partial sums.
 * @param chunks Number of partial rows.
 * @param cols Number of columns.
 * @param scale Factor applied to the sums (as float32; default 1).
 * @returns A new pooled buffer of `cols` float32 values.
 */
export function encodeColumnFinal(
  rt: GpuRuntime,
  partials: GPUBuffer,
  chunks: number,
  cols: number,
  scale = 1,
): GPUBuffer {
  const params = packParams([chunks, cols], [scale]);
  const workgroups = grid1d(Math.ceil(cols / COLUMN_THREADS));
  return dispatchNew(rt, columnFinalSpec(), [partials], [4 * cols], cols, params, workgroups)[0];
}

/**
 * Records the second pass of two column sums side by side in one dispatch (unscaled): the
 * `[chunks, 2·half]` partials give the sums of columns `[0, half)` and `[half, 2·half)`.
 *
 * @param rt The runtime.
 * @param partials The `[chunks, 2·half]` partial sums.
 * @param chunks Number of partial rows.
 * @param half Columns of each sum.
 * @returns Two new pooled buffers of `half` float32 values each.
 */
export function encodeColumnFinalHalves(
  rt: GpuRuntime,
  partials: GPUBuffer,
  chunks: number,
  half: number,
): [GPUBuffer, GPUBuffer] {
  const cols = 2 * half, params = packParams([chunks, cols, half], [1]);
  const workgroups = grid1d(Math.ceil(cols / COLUMN_THREADS));
  const spec = columnFinalSpec(true);
  const [a, b] = dispatchNew(rt, spec, [partials], [4 * half, 4 * half], cols, params, workgroups);
  return [a, b];
}

/**
 * Records `scale · Σ_rows x[r, :]` of a `[rows, cols]` matrix (`scale = 1/rows` gives the mean).
 *
 * @param rt The runtime.
 * @param x The matrix.
 * @param rows Number of rows.
 * @param cols Number of columns.
 * @param scale Factor applied to the sums (as float32).
 * @returns A new pooled buffer of `cols` float32 values.
 * @throws {RangeError} If the shape exceeds the grid.
 */
export function encodeColumnSum(
  rt: GpuRuntime,
  x: GPUBuffer,
  rows: number,
  cols: number,
  scale = 1,
): GPUBuffer {
  assertColumnGrid(rows, cols, "sum columns");
  const chunks = columnChunks(rows);
  const partials = rt.alloc(4 * Math.max(1, chunks * cols));
  if (chunks * cols > 0) {
    rt.dispatch(columnPartialSpec(), [x, partials], [
      Math.ceil(cols / COLUMN_THREADS),
      chunks,
    ], packParams([rows, cols]));
  }
  const out = encodeColumnFinal(rt, partials, chunks, cols, scale);
  rt.free(partials);
  return out;
}
