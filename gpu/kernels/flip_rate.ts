/**
 * The mask flip count on the GPU (SPEC §2.4), the device twin of `flipCount` of
 * `reference/flip_rate.ts`: how many entries differ between two float32 0/1 masks. The flip rate
 * is that count over the mask size.
 *
 * Two passes: each workgroup counts 256 threads × 4 `vec4` (4096 entries) with a fixed tree and
 * writes a `u32` partial; one workgroup sums the partials. Integer arithmetic throughout, so the
 * count is exact (up to 2^32 − 1 entries).
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, packParams, WG_1D } from "./_params.ts";
import { wgslBindings } from "./_wgsl.ts";
import { assertVec4Operands, cachedSpec, finalReduceSpec, quadPartialsWgsl } from "./_sparse.ts";

/** `vec4` quads each thread of the first pass counts. */
const QUADS_PER_THREAD = 4;
/** Mask entries one workgroup of the first pass counts. */
const ENTRIES_PER_WORKGROUP = 4 * QUADS_PER_THREAD * WG_1D;

/**
 * The first pass: per-workgroup counts of differing entries. Bindings: `prev`, `next` (float32
 * masks, an entry counts as set when it is not 0), `partials` (`u32` per workgroup), uniform
 * `{ size }`.
 *
 * @returns The kernel, key `flip-count`.
 * @example
 * ```ts
 * import { flipCountKernel } from "./flip_rate.ts";
 * if (flipCountKernel().key !== "flip-count") throw new Error("unexpected");
 * ```
 */
export function flipCountKernel(): KernelSpec {
  return cachedSpec(
    "flip-count",
    () =>
      `// Flip count (SPEC 2.4), first pass: one u32 partial per workgroup.
${
        wgslBindings("size: u32", [
          "read prev: array<vec4<f32>>",
          "read next: array<vec4<f32>>",
          "read_write partials: array<u32>",
        ])
      }
${
        quadPartialsWgsl({
          quadsPerThread: QUADS_PER_THREAD,
          acc: "count",
          op: "sum",
          fold:
            `      let differs = (prev[quad] != vec4<f32>(0.0)) != (next[quad] != vec4<f32>(0.0));
      let inside = vec4<u32>(4u * quad) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.size);
      count += dot(select(vec4<u32>(0u), vec4<u32>(1u), differs & inside), vec4<u32>(1u));`,
        })
      }`,
  );
}

/** The two masks of {@linkcode encodeFlipCount}: float32 0/1 values, `size` entries each. */
export interface FlipCountMasks {
  /** The earlier mask. */
  prev: GPUBuffer;
  /** The later mask. */
  next: GPUBuffer;
  /** Entries of each mask. */
  size: number;
}

/** Options of {@linkcode encodeFlipCount}. */
export interface FlipCountOptions {
  /**
   * Element type of the one-value result: `"u32"` (default, exact) or `"f32"` (exact up to 2^24
   * flips, the backend's `[1]` tensor convention).
   */
  output?: "u32" | "f32";
}

/**
 * Records the count of entries that differ between two float32 0/1 masks of `size` entries (the
 * device twin of `flipCount`). Inputs are not modified.
 *
 * @param rt The runtime.
 * @param masks `prev` and `next`, `size` entries each.
 * @param options `output`: `"u32"` (default) or `"f32"`.
 * @returns A new pooled buffer holding the count as one `u32` (or float32) value.
 * @throws {RangeError} If `size` is invalid or a mask buffer holds fewer than `16·⌈size / 4⌉`
 * bytes (pooled buffers always suffice).
 * @throws {TypeError} If `options.output` is unknown.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeFlipCount } from "./flip_rate.ts";
 * const rt = await GpuRuntime.create();
 * const up = (v: number[]) => rt.upload(new Float32Array(v));
 * const count = encodeFlipCount(rt, { prev: up([1, 1, 0, 0]), next: up([1, 0, 1, 0]), size: 4 });
 * const n = new Uint32Array(await rt.read(count, 4));
 * rt.destroy();
 * if (n[0] !== 2) throw new Error("unexpected");
 * ```
 */
export function encodeFlipCount(
  rt: GpuRuntime,
  masks: FlipCountMasks,
  options: FlipCountOptions = {},
): GPUBuffer {
  const action = "count mask flips on the GPU";
  const { prev, next, size } = masks;
  const output = options.output ?? "u32";
  if (output !== "u32" && output !== "f32") {
    throw new TypeError(`Cannot ${action}: output must be "u32" or "f32", got ${output}`);
  }
  assertVec4Operands(size, { prev, next }, action);
  const workgroups = Math.max(1, Math.ceil(size / ENTRIES_PER_WORKGROUP));
  const partials = rt.alloc(4 * workgroups);
  const count = rt.alloc(4);
  if (size > 0) {
    rt.dispatch(flipCountKernel(), [prev, next, partials], grid(workgroups, 1), packParams([size]));
  } else {
    rt.write(partials, new Uint32Array(1));
  }
  rt.dispatch(
    finalReduceSpec({ type: "u32", op: "sum", components: 1 }, output),
    [partials, count],
    [1],
    packParams([workgroups]),
  );
  rt.free(partials);
  return count;
}
