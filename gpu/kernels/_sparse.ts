/**
 * Private helpers of the kernel families: the spec cache they all use; for the sparse families
 * (prune, soft threshold, transposable, compress, MVUE, masked decay, flip rate, FP8, gated, sparse
 * matmul) argument checks of the encoders, workgroup reductions and exact float32 literals.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, GRID_BUILTINS, LINEAR_WORKGROUP, packParams, WG_1D } from "./_params.ts";
import { wgslBindings } from "./_wgsl.ts";

const specs = new Map<string, KernelSpec>();

/**
 * The spec for `key`, generating its WGSL with `build` on first use only (dispatching a kernel
 * never regenerates its source).
 */
export function cachedSpec(key: string, build: () => string): KernelSpec {
  let spec = specs.get(key);
  if (!spec) {
    spec = { key, code: build() };
    specs.set(key, spec);
  }
  return spec;
}

/**
 * Checks the operands of a kernel over `size` float32 values read as whole `vec4`s: `size` a `u32`
 * count, then each named buffer at least `16·⌈size / 4⌉` bytes (pooled buffers always are).
 *
 * @returns `⌈size / 4⌉`, the number of `vec4`s.
 * @throws {RangeError} If `size` is invalid or a buffer is too small (naming it).
 * @throws {TypeError} If a buffer is not a `GPUBuffer`.
 */
export function assertVec4Operands(
  size: number,
  buffers: Record<string, GPUBuffer>,
  action: string,
): number {
  assertSizes({ size }, action);
  const quads = Math.ceil(size / 4);
  for (const [name, buffer] of Object.entries(buffers)) {
    assertBuffer(buffer, 16 * quads, name, action);
  }
  return quads;
}

/**
 * Checks that every named value is a non-negative integer that fits a `u32` kernel parameter.
 *
 * @throws {RangeError} Naming the first offending value.
 */
export function assertSizes(values: Record<string, number>, action: string): void {
  for (const [name, v] of Object.entries(values)) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new RangeError(
        `Cannot ${action}: ${name} must be a non-negative integer below 2^32, got ${v}`,
      );
    }
  }
}

/**
 * Checks the sizes of a `[rows, cols]` matrix taken in groups of four along its rows.
 *
 * @returns The number of groups, `rows·cols/4`.
 * @throws {RangeError} If a size is invalid or `cols` is not a multiple of 4.
 */
export function assertGroupsOfFour(rows: number, cols: number, action: string): number {
  assertSizes({ rows, cols }, action);
  if (cols % 4 !== 0) {
    throw new RangeError(`Cannot ${action}: the row length must be a multiple of 4, got ${cols}`);
  }
  return (rows * cols) / 4;
}

/**
 * The entry point of a 2:4 kernel over one dense row-major `[rows, cols]` float32 matrix `w`
 * (compression, soft thresholding, the transposable mask): checks the sizes, records the kernel and
 * returns its new buffers, which the caller frees.
 */
export type Dense24Encoder<R> = (rt: GpuRuntime, w: GPUBuffer, rows: number, cols: number) => R;

/**
 * Checks a dense float32 `[rows, cols]` operand taken in groups of four along its rows: the sizes
 * (see {@linkcode assertGroupsOfFour}), then that `buffer` holds the matrix.
 *
 * @returns The number of groups, `rows·cols/4`.
 * @throws {RangeError} If a size is invalid, `cols` is not a multiple of 4 or `buffer` is too small.
 * @throws {TypeError} If `buffer` is not a `GPUBuffer`.
 */
export function assertDenseGroups(
  buffer: GPUBuffer,
  name: string,
  rows: number,
  cols: number,
  action: string,
): number {
  const groups = assertGroupsOfFour(rows, cols, action);
  assertBuffer(buffer, 4 * rows * cols, name, action);
  return groups;
}

/**
 * Checks that `buffer` holds at least `bytes` bytes.
 *
 * @throws {TypeError} If `buffer` is not a `GPUBuffer`.
 * @throws {RangeError} Naming the buffer, its size and the size needed.
 */
export function assertBuffer(
  buffer: GPUBuffer,
  bytes: number,
  name: string,
  action: string,
): void {
  if (buffer === null || typeof buffer !== "object" || typeof buffer.size !== "number") {
    throw new TypeError(`Cannot ${action}: ${name} must be a GPUBuffer, got ${buffer}`);
  }
  if (buffer.size < bytes) {
    throw new RangeError(
      `Cannot ${action}: ${name} holds ${buffer.size} bytes, at least ${bytes} needed`,
    );
  }
}

/**
 * A WGSL expression with exactly the float32 value `Math.fround(v)`: a bit cast of its encoding,
 * so no decimal-to-float conversion of the shader compiler can change it.
 */
export function f32Exact(v: number): string {
  const bits = new Uint32Array(Float32Array.of(v).buffer)[0];
  return `bitcast<f32>(0x${bits.toString(16)}u)`;
}

/** Threads of the single workgroup of a final reduction pass. */
export const FINAL_REDUCE_THREADS: number = 256;

/** Element type and operation of a reduction. */
export interface ReduceKind {
  /** `f32` or `u32` values. */
  type: "f32" | "u32";
  /** `sum` or `max`. */
  op: "sum" | "max";
  /** Values per record (e.g. 2 for a numerator and a denominator). */
  components: number;
}

/**
 * WGSL of a workgroup tree reduction over `var<workgroup> red: array<T, threads·C>` filled by
 * every thread (`lid` = local index): afterwards `red[c]` holds the reduction of component `c`.
 * The pairing order is fixed, so results are reproducible run to run.
 */
export function workgroupReduceWgsl(kind: ReduceKind, threads: number): string {
  const c = kind.components;
  const a = `red[lid * ${c}u + c]`, b = `red[(lid + s) * ${c}u + c]`;
  const combine = kind.op === "sum" ? `${a} + ${b}` : `max(${a}, ${b})`;
  return `  workgroupBarrier();
  for (var s = ${threads / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      for (var c = 0u; c < ${c}u; c++) { ${a} = ${combine}; }
    }
    workgroupBarrier();
  }`;
}

/**
 * WGSL opening the `main` of a one-workgroup kernel of `threads` lanes that folds the `p.count`
 * records of `components` values in `partials` (`partials[i · components + c]`, in `i` order per
 * lane, then the tree of {@linkcode workgroupReduceWgsl}): afterwards `red[c]` holds component
 * `c`'s reduction on every lane, and the caller writes the result and closes `main`. Declares
 * `red`; needs `partials` and `p.count` bound.
 */
export function foldPartialsWgsl(kind: ReduceKind, threads: number): string {
  const { type, op, components: c } = kind;
  const zero = type === "f32" ? "0.0" : "0u";
  const next = `partials[i * ${c}u + c]`;
  return `var<workgroup> red: array<${type}, ${threads * c}>;

@compute @workgroup_size(${threads})
fn main(@builtin(local_invocation_index) lid: u32) {
  for (var c = 0u; c < ${c}u; c++) {
    var acc: ${type} = ${zero};
    for (var i = lid; i < p.count; i += ${threads}u) {
      acc = ${op === "sum" ? `acc + ${next}` : `max(acc, ${next})`};
    }
    red[lid * ${c}u + c] = acc;
  }
${workgroupReduceWgsl(kind, threads)}`;
}

/**
 * The final pass of a two-pass reduction: one workgroup reduces `count` records of `components`
 * values (`partials[i · components + c]`) to one record `out[c]`, converted to `outType` (default
 * the partials' type; a `u32` count as `f32` is exact up to 2^24). Bindings: `partials`, `out`,
 * uniform `{ count }`.
 */
export function finalReduceSpec(
  kind: ReduceKind,
  outType: ReduceKind["type"] = kind.type,
): KernelSpec {
  const { type, op, components: c } = kind;
  const to = outType === type ? "" : `-to-${outType}`;
  return cachedSpec(`final-reduce-${op}-${type}-c${c}${to}`, () =>
    `struct Params { count: u32 }
@group(0) @binding(0) var<storage, read> partials: array<${type}>;
@group(0) @binding(1) var<storage, read_write> out: array<${outType}>;
@group(0) @binding(2) var<uniform> p: Params;
${foldPartialsWgsl(kind, FINAL_REDUCE_THREADS)}
  if (lid == 0u) {
    for (var c = 0u; c < ${c}u; c++) { out[c] = ${outType}(red[c]); }
  }
}
`);
}

/** `vec4` quads each thread of {@linkcode absMaxPartialsSpec} reads. */
const ABS_MAX_QUADS_PER_THREAD = 4;
/** Entries one workgroup of {@linkcode absMaxPartialsSpec} reduces. */
export const ABS_MAX_ENTRIES_PER_WORKGROUP: number = 4 * ABS_MAX_QUADS_PER_THREAD * WG_1D;

/**
 * First pass of `max |x|`: per-workgroup maxima of `bits & 0x7fffffff` (as `u32`, whose order is
 * the magnitude order for non-NaN float32, so the maximum is exact). Bindings: `x` (`vec4`
 * quads), `partials`, uniform `{ size }`.
 */
export function absMaxPartialsSpec(): KernelSpec {
  const q = ABS_MAX_QUADS_PER_THREAD;
  return cachedSpec(
    "abs-max-partials",
    () =>
      `// max |x| as float32 bits, first pass: one u32 per workgroup of ${4 * q * WG_1D} entries.
${
        wgslBindings("size: u32", [
          "read x: array<vec4<u32>>",
          "read_write partials: array<u32>",
        ])
      }
${
        quadPartialsWgsl({
          quadsPerThread: q,
          acc: "m",
          op: "max",
          fold:
            `      let inside = vec4<u32>(4u * quad) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.size);
      let a = select(vec4<u32>(0u), x[quad] & vec4<u32>(0x7fffffffu), inside);
      m = max(m, max(max(a.x, a.y), max(a.z, a.w)));`,
        })
      }`,
  );
}

/**
 * Records the first `max |x|` pass over `size` entries of `x` (which must cover
 * `16·⌈size / 4⌉` bytes). Returns the partials buffer (the caller frees it) and how many partials
 * it holds — at least one, a single 0 when `size` is 0.
 */
export function encodeAbsMaxPartials(
  rt: GpuRuntime,
  x: GPUBuffer,
  size: number,
): { partials: GPUBuffer; count: number } {
  const count = Math.max(1, Math.ceil(size / ABS_MAX_ENTRIES_PER_WORKGROUP));
  const partials = rt.alloc(4 * count);
  if (size > 0) {
    rt.dispatch(absMaxPartialsSpec(), [x, partials], grid(count, 1), packParams([size]));
  } else {
    rt.write(partials, new Uint32Array(1));
  }
  return { partials, count };
}

/** Options of {@linkcode quadPartialsWgsl}. */
export interface QuadPartialsOptions {
  /** `vec4` quads each thread folds. */
  quadsPerThread: number;
  /** The WGSL name of the thread's `u32` accumulator. */
  acc: string;
  /** How the workgroup combines the accumulators. */
  op: "max" | "sum";
  /** WGSL folding quad `quad` (in range of `p.size` entries) into `acc`. */
  fold: string;
}

/**
 * The entry point of a first-pass `u32` reduction over `vec4` quads of `p.size` entries (abs-max,
 * flip count): each thread folds `quadsPerThread` quads into its accumulator, the workgroup
 * combines them and thread 0 writes `partials[wg]`.
 *
 * @param options The per-kernel parts.
 * @returns The WGSL, from the workgroup array to the closing brace.
 */
export function quadPartialsWgsl(options: QuadPartialsOptions): string {
  const { quadsPerThread: q, acc, op, fold } = options;
  return `var<workgroup> red: array<u32, ${WG_1D}>;

@compute @workgroup_size(${WG_1D})
fn main(${GRID_BUILTINS}) {
  let wg = ${LINEAR_WORKGROUP};
  var ${acc} = 0u;
  for (var k = 0u; k < ${q}u; k++) {
    let quad = (wg * ${q}u + k) * ${WG_1D}u + lid;
    if (4u * quad < p.size) {
${fold}
    }
  }
  red[lid] = ${acc};
${workgroupReduceWgsl({ type: "u32", op, components: 1 }, WG_1D)}
  if (lid == 0u) { partials[wg] = red[0]; }
}
`;
}
