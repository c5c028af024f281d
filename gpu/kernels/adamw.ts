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
import { grid, GRID_BUILTINS, LINEAR_WORKGROUP, packParams, WG_1D } from "./_params.ts";
import { cachedSpec } from "./_sparse.ts";

/**
 * The AdamW kernel. Bindings: `param` (read-write), `grad`, `m` (read-write), `v` (read-write),
 * uniform `{ count, lr, beta1, oneMinusBeta1, beta2, oneMinusBeta2, eps, weightDecay, c1, c2,
 * gradScale }`.
 *
 * @returns The kernel, key `adamw`.
 */
export function adamwSpec(): KernelSpec {
  return cachedSpec("adamw", () =>
    `struct Params {
  count: u32, lr: f32, beta1: f32, oneMinusBeta1: f32, beta2: f32, oneMinusBeta2: f32,
  eps: f32, weightDecay: f32, c1: f32, c2: f32, gradScale: f32,
}
@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(${WG_1D})
fn main(${GRID_BUILTINS}) {
  let i = ${LINEAR_WORKGROUP} * ${WG_1D}u + lid;
  if (i >= p.count) { return; }
  let g = p.gradScale * grad[i];
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
  hp: AdamWParams,
): void {
  if (count === 0) return;
  const frozen = hp.varianceFrozenAt !== undefined;
  const c1 = 1 - hp.beta1 ** hp.step, c2 = 1 - hp.beta2 ** (hp.varianceFrozenAt ?? hp.step);
  rt.dispatch(
    adamwSpec(),
    [param, grad, m, v],
    grid(count),
    packParams([count], [
      hp.lr,
      hp.beta1,
      1 - hp.beta1,
      frozen ? 1 : hp.beta2,
      frozen ? 0 : 1 - hp.beta2,
      hp.eps,
      hp.weightDecay,
      c1,
      c2,
      hp.gradScale ?? 1,
    ]),
  );
}
