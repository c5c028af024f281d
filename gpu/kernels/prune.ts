/**
 * Hard N:M magnitude pruning on the GPU (SPEC §1.1), bit for bit the same as `pruneNM` of
 * `reference/prune.ts`.
 *
 * One thread per group of `m`; the group is loaded as `vec4`/`vec2` words where `m` allows.
 * Magnitudes are compared as the integers `bits & 0x7fffffff`, which order like `|w|` for every
 * non-NaN float32 (subnormals, `±0` and `±Inf` included) and are immune to a GPU flushing
 * subnormals; kept values are copied as bits. The rank test is unrolled per `(n, m)`: element `i`
 * beats `j` if `|w_i| > |w_j|`, or they are equal and `i > j` (the higher index wins ties), and the
 * `n` elements that beat at least `m − n` others are kept.
 *
 * Device inputs are not checked for NaN (the reference rejects it); a NaN's bits order above
 * `Inf`, so a group with NaN still keeps exactly `n` entries.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, packParams } from "./_params.ts";
import { wgslItemMain } from "./_wgsl.ts";
import { assertBuffer, assertSizes, cachedSpec } from "./_sparse.ts";

/** The largest group size the GPU kernel is generated for (its rank test is unrolled, `m²`). */
export const MAX_GPU_GROUP: number = 16;

/** Options of {@linkcode pruneNMKernel}. */
export interface PruneNMKernelOptions {
  /** Elements kept per group, `1 ≤ n ≤ m`. */
  n: number;
  /** Group size, `1 ≤ m ≤ 16`. */
  m: number;
}

/** Checks `(n, m)` for the GPU kernel. */
export function assertGpuGroup(n: number, m: number, action: string): void {
  if (!Number.isInteger(m) || m < 1 || m > MAX_GPU_GROUP) {
    throw new RangeError(
      `Cannot ${action}: the GPU kernel needs an integer group size m in [1, ${MAX_GPU_GROUP}], got ${m}`,
    );
  }
  if (!Number.isInteger(n) || n < 1 || n > m) {
    throw new RangeError(`Cannot ${action}: n must be an integer in [1, m = ${m}], got ${n}`);
  }
}

/** Vector width used to load a group of `m`: 4, 2 or 1. */
function vectorWidth(m: number): number {
  return m % 4 === 0 ? 4 : m % 2 === 0 ? 2 : 1;
}

/**
 * The N:M pruning kernel specialised on `(n, m)`. Bindings: `w` (read, float32 bits), `pruned`
 * (write), `mask` (write, float32 0/1), then the uniform `{ groups }`. One thread per group,
 * 256 per workgroup, 2-D grid (see `grid` in `./_params.ts`).
 *
 * @param options `{ n, m }` with `1 ≤ n ≤ m ≤ 16`.
 * @returns The kernel, key `prune-n{n}m{m}`.
 * @throws {RangeError} If `n` or `m` is out of range.
 * @example
 * ```ts
 * import { pruneNMKernel } from "./prune.ts";
 * if (pruneNMKernel({ n: 2, m: 4 }).key !== "prune-n2m4") throw new Error("unexpected");
 * ```
 */
export function pruneNMKernel(options: PruneNMKernelOptions): KernelSpec {
  const { n, m } = options;
  assertGpuGroup(n, m, `build the ${n}:${m} pruning kernel`);
  return cachedSpec(`prune-n${n}m${m}`, () => {
    const v = vectorWidth(m);
    const q = m / v;
    const ut = v === 1 ? "u32" : `vec${v}<u32>`;
    const ft = v === 1 ? "f32" : `vec${v}<f32>`;
    const comp = ["x", "y", "z", "w"];
    const body: string[] = [];
    for (let k = 0; k < q; k++) body.push(`  let v${k} = w[g * ${q}u + ${k}u];`);
    for (let i = 0; i < m; i++) {
      const src = v === 1 ? `v${i}` : `v${Math.floor(i / v)}.${comp[i % v]}`;
      body.push(`  let b${i} = ${src};`);
      body.push(`  let a${i} = b${i} & 0x7fffffffu;`);
    }
    for (let i = 0; i < m; i++) {
      const terms: string[] = [];
      for (let j = 0; j < m; j++) {
        if (j === i) continue;
        terms.push(`u32(a${i} ${j < i ? ">=" : ">"} a${j})`);
      }
      body.push(`  let keep${i} = ${terms.length ? terms.join(" + ") : "0u"} >= ${m - n}u;`);
    }
    for (let k = 0; k < q; k++) {
      const idx = Array.from({ length: v }, (_, c) => k * v + c);
      const bitsOut = idx.map((i) => `select(0u, b${i}, keep${i})`).join(", ");
      const maskOut = idx.map((i) => `select(0.0, 1.0, keep${i})`).join(", ");
      body.push(`  pruned[g * ${q}u + ${k}u] = ${v === 1 ? bitsOut : `${ut}(${bitsOut})`};`);
      body.push(`  mask[g * ${q}u + ${k}u] = ${v === 1 ? maskOut : `${ft}(${maskOut})`};`);
    }
    return `// Hard ${n}:${m} magnitude pruning (SPEC 1.1), one thread per group.
struct Params { groups: u32 }
@group(0) @binding(0) var<storage, read> w: array<${ut}>;
@group(0) @binding(1) var<storage, read_write> pruned: array<${ut}>;
@group(0) @binding(2) var<storage, read_write> mask: array<${ft}>;
@group(0) @binding(3) var<uniform> p: Params;

${wgslItemMain("g", "p.groups")}
${body.join("\n")}
}
`;
  });
}

/** Output buffers of {@linkcode encodePruneNM}. */
export interface PruneBuffers {
  /** The pruned matrix, `rows · cols` float32 values; dropped entries are `+0`. */
  pruned: GPUBuffer;
  /** The mask, `rows · cols` float32 values, `1.0` kept, `0.0` dropped. */
  mask: GPUBuffer;
}

/**
 * Records hard N:M pruning of a row-major float32 matrix (SPEC §1.1; the device twin of
 * `pruneNM`). `w` is not modified.
 *
 * @param rt The runtime.
 * @param w The matrix, `rows · cols` float32 values.
 * @param rows Number of rows.
 * @param cols Row length, a multiple of `m`.
 * @param n Elements kept per group.
 * @param m Group size, at most 16.
 * @returns New pooled buffers (the caller frees them): the pruned matrix and the float32 mask.
 * @throws {RangeError} If a size is invalid, `cols % m !== 0`, `(n, m)` is out of range or `w` is
 * too small.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodePruneNM } from "./prune.ts";
 * const rt = await GpuRuntime.create();
 * const w = rt.upload(new Float32Array([0.1, -3, 2, 0.5]));
 * const { pruned, mask } = encodePruneNM(rt, w, 1, 4, 2, 4);
 * const [p, k] = (await rt.readMany([{ buffer: pruned, bytes: 16 }, { buffer: mask, bytes: 16 }]))
 *   .map((b) => new Float32Array(b));
 * rt.destroy();
 * if (p.join() !== "0,-3,2,0" || k.join() !== "0,1,1,0") throw new Error("unexpected");
 * ```
 */
export function encodePruneNM(
  rt: GpuRuntime,
  w: GPUBuffer,
  rows: number,
  cols: number,
  n: number,
  m: number,
): PruneBuffers {
  const action = `prune to ${n}:${m} on the GPU`;
  assertSizes({ rows, cols }, action);
  assertGpuGroup(n, m, action);
  if (cols % m !== 0) {
    throw new RangeError(
      `Cannot ${action}: the row length must be a multiple of ${m}, got ${cols}`,
    );
  }
  const size = rows * cols;
  assertBuffer(w, 4 * size, "w", action);
  const pruned = rt.alloc(4 * size);
  const mask = rt.alloc(4 * size);
  const groups = size / m;
  if (groups > 0) {
    rt.dispatch(pruneNMKernel({ n, m }), [w, pruned, mask], grid(groups), packParams([groups]));
  }
  return { pruned, mask };
}
