/**
 * One AdamW step in place on float32 buffers, in the reference's order of operations:
 * `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²` (both stored), then
 * `p ← p − lr·(m̂/(√v̂ + eps) + wd·p)` with `m̂ = m/(1−β1^t)`, `v̂ = v/(1−β2^t)` computed from the
 * stored moments. The bias corrections are computed on the host in float64 and passed as float32.
 * `g` is the gradient times `gradScale` (gradient clipping fused into the update), the float32
 * product a separate scale pass would have stored.
 * STEP's frozen variance (SPEC 2.10) is the same kernel with `β2 = 1`, `1−β2 = 0` (`v` is rewritten
 * with its own bits: the trainer only steps on finite gradients) and `c2` of the freezing step.
 *
 * @module
 */

import type { AdamWParams } from "../../core/backend.ts";
import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, packParams } from "./_params.ts";
import { wgslItemMain } from "./_wgsl.ts";
import { cachedSpec } from "./_sparse.ts";
import { CLIP_FACTOR_WGSL } from "./grad_clip.ts";

/**
 * The AdamW kernel. Bindings: `param` (read-write), `grad`, `m` (read-write), `v` (read-write),
 * with `clip` the `[1]` squared gradient norm, then uniform `{ count, (applied,) lr, beta1, oneMinusBeta1,
 * beta2, oneMinusBeta2, eps, weightDecay, c1, c2, gradScale }` (`gradScale`: the clipping
 * threshold with `clip`).
 *
 * @param clip Scale the gradient by the clipping factor of `grad_clip.ts` (unless `applied`: it
 * was scaled already), and update nothing when the squared norm is not finite.
 * @returns The kernel, key `adamw` or `adamw-clip`.
 */
export function adamwSpec(clip = false): KernelSpec {
  // With a clip, `gradScale` holds maxNorm and the factor comes from the `[1]` squared norm.
  const scale = clip
    ? `let ns = normSquared[0];
  if (!finiteF32(ns)) { return; } // a failed step: param, m and v stay as they are
  let g = select(clipFactor(ns, p.gradScale), 1.0, p.applied != 0u) * grad[i];`
    : "let g = p.gradScale * grad[i];";
  return cachedSpec(clip ? "adamw-clip" : "adamw", () =>
    `struct Params {
  count: u32, ${
      clip ? "applied: u32, " : ""
    }lr: f32, beta1: f32, oneMinusBeta1: f32, beta2: f32, oneMinusBeta2: f32,
  eps: f32, weightDecay: f32, c1: f32, c2: f32, gradScale: f32,
}
@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
${
      clip
        ? `@group(0) @binding(4) var<storage, read> normSquared: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;
${CLIP_FACTOR_WGSL}`
        : "@group(0) @binding(4) var<uniform> p: Params;"
    }
${wgslItemMain("i", "p.count")}
  ${scale}
  let mi = p.beta1 * m[i] + p.oneMinusBeta1 * g;
  let vi = p.beta2 * v[i] + p.oneMinusBeta2 * g * g;
  m[i] = mi;
  v[i] = vi;
  let mHat = mi / p.c1;
  let vHat = vi / p.c2;
  let w = param[i];
  param[i] = w - p.lr * (mHat / (sqrt(vHat) + p.eps) + p.weightDecay * w);
}
`);
}

/**
 * Records one AdamW step over `count` entries, updating `param`, `m` and `v` in place.
 *
 * @param rt The runtime.
 * @param param The parameters (updated).
 * @param grad The gradient.
 * @param m The first moment (updated).
 * @param v The second moment (updated).
 * @param count Number of entries.
 * @param hp The hyper-parameters (checked by the caller).
 */
export function encodeAdamW(
  rt: GpuRuntime,
  param: GPUBuffer,
  grad: GPUBuffer,
  m: GPUBuffer,
  v: GPUBuffer,
  count: number,
  hp: Omit<AdamWParams, "gradScale"> & {
    gradScale?: number | { normSquared: GPUBuffer; maxNorm: number; applied?: boolean };
  },
): void {
  if (count === 0) return;
  const clip = typeof hp.gradScale === "object" ? hp.gradScale : undefined;
  rt.dispatch(
    adamwSpec(clip !== undefined),
    clip ? [param, grad, m, v, clip.normSquared] : [param, grad, m, v],
    grid(count),
    packParams(clip ? [count, clip.applied ? 1 : 0] : [count], adamwFloats(hp)),
  );
}

/**
 * The kernels' ten float hyper-parameters `[lr, beta1, 1−beta1, beta2, 1−beta2, eps,
 * weightDecay, c1, c2, gradScale]`: the bias corrections computed in float64 (rounded to float32
 * when packed); a frozen variance as `beta2 = 1`, `1−beta2 = 0` and `c2` of the freezing step;
 * `gradScale` the clipping threshold when the gradient is clipped on the device.
 *
 * @param hp The hyper-parameters.
 * @returns The ten numbers.
 */
export function adamwFloats(
  hp: Omit<AdamWParams, "gradScale"> & { gradScale?: number | { maxNorm: number } },
): number[] {
  const frozen = hp.varianceFrozenAt !== undefined;
  const c1 = 1 - hp.beta1 ** hp.step, c2 = 1 - hp.beta2 ** (hp.varianceFrozenAt ?? hp.step);
  const s = hp.gradScale;
  return [
    hp.lr,
    hp.beta1,
    1 - hp.beta1,
    frozen ? 1 : hp.beta2,
    frozen ? 0 : 1 - hp.beta2,
    hp.eps,
    hp.weightDecay,
    c1,
    c2,
    typeof s === "object" ? s.maxNorm : s ?? 1,
  ];
}
