/**
 * A `vec4` copy, the ceiling every memory-bound kernel's bandwidth is stated against
 * (`experiments/bench_gpu.ts` prints each element-wise kernel's GB/s as a share of it).
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, packParams } from "./_params.ts";
import { wgslBindings, wgslItemMain } from "./_wgsl.ts";
import { assertBuffer, assertSizes, cachedSpec } from "./_sparse.ts";

/**
 * The copy kernel. Bindings: `src` (read), `dst`, uniform `{ quads }`; one thread per `vec4`.
 *
 * @returns The kernel, key `copy-vec4`.
 */
export function copyVec4Kernel(): KernelSpec {
  return cachedSpec(
    "copy-vec4",
    () =>
      `${
        wgslBindings("quads: u32", [
          "read src: array<vec4<f32>>",
          "read_write dst: array<vec4<f32>>",
        ])
      }
${wgslItemMain("i", "p.quads")}
  dst[i] = src[i];
}
`,
  );
}

/**
 * Records a copy of the first `quads` `vec4` values (16 bytes each) of `src` into `dst`, bit for
 * bit; the rest of `dst` is left as it was.
 *
 * @param rt The runtime.
 * @param src The source, at least `16·quads` bytes.
 * @param dst The destination, at least `16·quads` bytes.
 * @param quads Number of `vec4` values.
 * @throws {RangeError} If `quads` is not an integer in `[0, 2^32)` or a buffer is too small.
 * @throws {TypeError} If a buffer is not a `GPUBuffer`.
 */
export function encodeCopyVec4(
  rt: GpuRuntime,
  src: GPUBuffer,
  dst: GPUBuffer,
  quads: number,
): void {
  const action = "copy vec4 values";
  assertSizes({ quads }, action);
  assertBuffer(src, 16 * quads, "src", action);
  assertBuffer(dst, 16 * quads, "dst", action);
  rt.dispatch(copyVec4Kernel(), [src, dst], grid(quads), packParams([quads]));
}
