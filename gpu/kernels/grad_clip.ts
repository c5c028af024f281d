/**
 * Global-norm gradient clipping on the device (SPEC §4, "gradient clipping, as computed"): the factor
 * `maxNorm / (√Σ‖g‖² + 1e-6)` when below 1, else 1, computed in float32 by every invocation from
 * the `[1]` squared norm, so the host never reads the norm before the update. The WGSL helpers are
 * shared with the AdamW kernel (`adamw.ts`), which applies the factor as it reads a gradient.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, packParams } from "./_params.ts";
import { wgslItemMain } from "./_wgsl.ts";
import { cachedSpec } from "./_sparse.ts";

/**
 * WGSL: `clipFactor(normSquared, maxNorm)` and `finiteF32(x)`. Finiteness is tested on the bits,
 * since WGSL lets a compiler assume arithmetic never meets NaN or ±Inf.
 */
export const CLIP_FACTOR_WGSL = `
fn finiteF32(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }
fn clipFactor(normSquared: f32, maxNorm: f32) -> f32 {
  let f = maxNorm / (sqrt(normSquared) + 1e-6);
  return select(1.0, f, f < 1.0);
}
`;

/**
 * `out = f·g` with `f` the clipping factor (NaN everywhere when the norm is not finite). Bindings:
 * `g`, `normSquared` (`[1]`), `out`, uniform `{ count, maxNorm }`.
 *
 * @returns The kernel, key `scale-clipped`.
 */
export function scaleClippedSpec(): KernelSpec {
  return cachedSpec("scale-clipped", () =>
    `struct Params { count: u32, maxNorm: f32 }
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read> normSquared: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${CLIP_FACTOR_WGSL}
${wgslItemMain("i", "p.count")}
  let ns = normSquared[0];
  if (!finiteF32(ns)) { out[i] = bitcast<f32>(0x7fc00000u); return; }
  out[i] = clipFactor(ns, p.maxNorm) * g[i];
}
`);
}

/**
 * Records `out = f·g` over `count` entries ({@linkcode scaleClippedSpec}).
 *
 * @param rt The runtime.
 * @param g The gradient.
 * @param normSquared The `[1]` squared global norm.
 * @param out The result (`count` entries).
 * @param count Number of entries.
 * @param maxNorm The clipping threshold.
 */
export function encodeScaleClipped(
  rt: GpuRuntime,
  g: GPUBuffer,
  normSquared: GPUBuffer,
  out: GPUBuffer,
  count: number,
  maxNorm: number,
): void {
  if (count === 0) return;
  rt.dispatch(
    scaleClippedSpec(),
    [g, normSquared, out],
    grid(count),
    packParams([count], [maxNorm]),
  );
}
