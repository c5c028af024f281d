/**
 * Masked decay on the GPU (SPEC §2.2–2.3), the device twin of `maskedDecay` of
 * `reference/masked_decay.ts`: `out = grad + α·(1 − mask) ⊙ w`.
 *
 * One thread per four elements (`vec4`). A kept entry (`mask ≠ 0`) copies the gradient's bits; a
 * pruned one is `grad + α·w` in float32 (`α` rounded to float32; the product and the sum each
 * correctly rounded, or fused into one FMA by the compiler), where the reference rounds the float64
 * result once: the two agree to within about one float32 ULP of the operands.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { packParams } from "./_params.ts";
import { dispatchNew } from "./_dispatch.ts";
import { wgslBindings, wgslItemMain } from "./_wgsl.ts";
import { assertVec4Operands, cachedSpec } from "./_sparse.ts";

/**
 * The masked-decay kernel. Bindings: `grad` (read, float32 bits), `w`, `mask` (float32 0/1),
 * `out`, uniform `{ quads, alpha }` (`quads = ⌈size / 4⌉`). Entries past `size` in the last
 * `vec4` are computed from whatever the buffers hold there and land in the output's padding.
 *
 * @returns The kernel, key `masked-decay`.
 * @example
 * ```ts
 * import { maskedDecayKernel } from "./masked_decay.ts";
 * if (maskedDecayKernel().key !== "masked-decay") throw new Error("unexpected");
 * ```
 */
export function maskedDecayKernel(): KernelSpec {
  return cachedSpec(
    "masked-decay",
    () =>
      `// Masked decay (SPEC 2.2/2.3): out = grad + alpha * (1 - mask) * w, four entries per thread.
${
        wgslBindings("quads: u32, alpha: f32", [
          "read grad: array<vec4<u32>>",
          "read w: array<vec4<f32>>",
          "read mask: array<vec4<f32>>",
          "read_write out: array<vec4<u32>>",
        ])
      }

${wgslItemMain("i", "p.quads")}
  let g = grad[i];
  let decayed = bitcast<vec4<u32>>(bitcast<vec4<f32>>(g) + p.alpha * w[i]);
  out[i] = select(decayed, g, mask[i] != vec4<f32>(0.0));
}
`,
  );
}

/**
 * Records `grad + alpha·(1 − mask) ⊙ w` over `size` float32 entries (the device twin of
 * `maskedDecay`; `mask` is a float32 0/1 buffer). Inputs are not modified.
 *
 * @param rt The runtime.
 * @param grad The gradient, `size` float32 values.
 * @param w The dense weight, `size` values.
 * @param mask The mask, `size` float32 values, `1.0` kept, `0.0` pruned.
 * @param size Number of entries.
 * @param alpha The decay factor, finite and `≥ 0` (used as float32).
 * @returns A new pooled buffer of `size` float32 values.
 * @throws {RangeError} If `size` is invalid, `alpha` is negative or not finite, or a buffer holds
 * fewer than `16·⌈size / 4⌉` bytes (pooled buffers from `rt.alloc` always suffice).
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeMaskedDecay } from "./masked_decay.ts";
 * const rt = await GpuRuntime.create();
 * const up = (v: number[]) => rt.upload(new Float32Array(v));
 * const out = encodeMaskedDecay(rt, up([1, 1, 1, 1]), up([1, 2, 3, 4]), up([1, 0, 1, 0]), 4, 0.03);
 * const v = new Float32Array(await rt.read(out, 16));
 * rt.destroy();
 * if (v[0] !== 1 || Math.abs(v[3] - 1.12) > 1e-6) throw new Error("unexpected"); // SPEC §9
 * ```
 */
export function encodeMaskedDecay(
  rt: GpuRuntime,
  grad: GPUBuffer,
  w: GPUBuffer,
  mask: GPUBuffer,
  size: number,
  alpha: number,
): GPUBuffer {
  const action = "apply masked decay on the GPU";
  const quads = assertVec4Operands(size, { grad, w, mask }, action);
  if (typeof alpha !== "number" || !Number.isFinite(alpha) || alpha < 0) {
    throw new RangeError(`Cannot ${action}: alpha must be a finite number >= 0, got ${alpha}`);
  }
  const params = packParams([quads], [alpha]);
  return dispatchNew(rt, maskedDecayKernel(), [grad, w, mask], [16 * quads], quads, params)[0];
}
