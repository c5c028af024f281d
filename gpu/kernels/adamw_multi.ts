/**
 * AdamW over several parameters in one dispatch (issue 15: fewer dispatches per step): up to
 * `slots` parameters, each bound as its own `param`, `grad`, `m`, `v` (WGSL cannot index bindings,
 * so a `switch` on the slot picks them; the slot count is bounded by the device's
 * `maxStorageBuffersPerShaderStage`, 4 per slot plus the squared gradient norm). Workgroup `w`
 * belongs to the last slot whose first workgroup is `≤ w`. Each slot computes exactly the
 * expressions of the one-parameter kernel (`adamw.ts`), so the results are bit-identical.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid1d } from "../runtime.ts";
import {
  GRID_BUILTINS,
  LINEAR_WORKGROUP,
  MAX_SLOTS,
  slotOfWorkgroupWgsl,
  WG_1D,
} from "./_params.ts";
import { cachedSpec } from "./_sparse.ts";
import { CLIP_FACTOR_WGSL } from "./grad_clip.ts";

/** One parameter's update: buffers, element count and its float32 hyper-parameters. */
export interface AdamWSlot {
  /** Parameter, gradient, first and second moment (`param`, `m`, `v` updated in place). */
  buffers: [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
  /** Number of entries. */
  count: number;
  /**
   * How the gradient is scaled: `0` by `gradScale`; `1` by the clipping factor of the squared
   * norm with threshold `gradScale`; `2` not (clipped already), but like `1` nothing moves when the
   * norm is not finite.
   */
  mode: 0 | 1 | 2;
  /** `[lr, beta1, 1−beta1, beta2, 1−beta2, eps, weightDecay, c1, c2, gradScale]`, as `adamw.ts`. */
  floats: readonly number[];
}

/** Most slots of one dispatch on a device with `maxStorageBuffers` storage bindings per stage. */
export function adamwSlotsFor(maxStorageBuffers: number): number {
  return Math.max(1, Math.min(MAX_SLOTS, Math.floor((maxStorageBuffers - 1) / 4)));
}

/**
 * The kernel for `slots` parameters. Bindings: `param_s`, `grad_s`, `m_s`, `v_s` per slot, the
 * `[1]` squared norm, then uniform `{ u: array<vec4<u32>, slots>` (first workgroup, count, mode),
 * `f: array<vec4<f32>, 3·slots>` (the ten floats of {@linkcode AdamWSlot}) `}`.
 *
 * @param slots Parameters per dispatch (1 to {@linkcode MAX_SLOTS}).
 * @returns The kernel, key `adamw-multi-{slots}`.
 */
export function adamwMultiSpec(slots: number): KernelSpec {
  const bindings = Array.from({ length: slots }, (_, s) =>
    [
      `@group(0) @binding(${4 * s}) var<storage, read_write> param${s}: array<f32>;`,
      `@group(0) @binding(${4 * s + 1}) var<storage, read> grad${s}: array<f32>;`,
      `@group(0) @binding(${4 * s + 2}) var<storage, read_write> m${s}: array<f32>;`,
      `@group(0) @binding(${4 * s + 3}) var<storage, read_write> v${s}: array<f32>;`,
    ].join("\n")).join("\n");
  const cases = Array.from({ length: slots }, (_, s) =>
    `    case ${s}u: {
      let r = update(param${s}[i], grad${s}[i], m${s}[i], v${s}[i], s);
      m${s}[i] = r.y;
      v${s}[i] = r.z;
      param${s}[i] = r.x;
    }`).join("\n");
  return cachedSpec(
    `adamw-multi-${slots}`,
    () =>
      `struct Params { u: array<vec4<u32>, ${slots}>, f: array<vec4<f32>, ${3 * slots}> }
${bindings}
@group(0) @binding(${4 * slots}) var<storage, read> normSquared: array<f32>;
@group(0) @binding(${4 * slots + 1}) var<uniform> p: Params;
${CLIP_FACTOR_WGSL}
// (param, m, v) after one step of slot s, the expressions of adamw.ts in the same order.
fn update(w: f32, grad: f32, m: f32, v: f32, s: u32) -> vec3<f32> {
  let a = p.f[3u * s];
  let b = p.f[3u * s + 1u];
  let c = p.f[3u * s + 2u];
  let lr = a.x; let beta1 = a.y; let oneMinusBeta1 = a.z; let beta2 = a.w;
  let oneMinusBeta2 = b.x; let eps = b.y; let weightDecay = b.z; let c1 = b.w;
  let c2 = c.x; let gradScale = c.y;
  let mode = p.u[s].z;
  var f = gradScale;
  if (mode == 1u) { f = clipFactor(normSquared[0], gradScale); }
  if (mode == 2u) { f = 1.0; }
  let g = f * grad;
  let mi = beta1 * m + oneMinusBeta1 * g;
  let vi = beta2 * v + oneMinusBeta2 * g * g;
  let mHat = mi / c1;
  let vHat = vi / c2;
  return vec3<f32>(w - lr * (mHat / (sqrt(vHat) + eps) + weightDecay * w), mi, vi);
}

@compute @workgroup_size(${WG_1D})
fn main(${GRID_BUILTINS}) {
  let wg = ${LINEAR_WORKGROUP};
${slotOfWorkgroupWgsl(slots, (t) => `p.u[${t}].x`)}
  let i = (wg - p.u[s].x) * ${WG_1D}u + lid;
  if (i >= p.u[s].y) { return; }
  // A failed step (a non-finite clipped norm) moves nothing.
  if (p.u[s].z != 0u && !finiteF32(normSquared[0])) { return; }
  switch s {
${cases}
    default: {}
  }
}
`,
  );
}

/**
 * Records one AdamW step for each slot, `slotsPerDispatch` per dispatch.
 *
 * @param rt The runtime.
 * @param slots The parameters (see {@linkcode AdamWSlot}).
 * @param normSquared The `[1]` squared gradient norm of the slots with mode 1 or 2 (any buffer when
 * there are none).
 * @param slotsPerDispatch Parameters per dispatch ({@linkcode adamwSlotsFor}).
 */
export function encodeAdamWMulti(
  rt: GpuRuntime,
  slots: readonly AdamWSlot[],
  normSquared: GPUBuffer,
  slotsPerDispatch: number,
): void {
  const live = slots.filter((s) => s.count > 0);
  for (let at = 0; at < live.length; at += slotsPerDispatch) {
    const group = live.slice(at, at + slotsPerDispatch), n = group.length;
    const params = new ArrayBuffer(16 * n + 48 * n);
    const u = new Uint32Array(params, 0, 4 * n), f = new Float32Array(params, 16 * n, 12 * n);
    let workgroups = 0;
    group.forEach((slot, s) => {
      u.set([workgroups, slot.count, slot.mode, 0], 4 * s);
      f.set(slot.floats, 12 * s);
      workgroups += Math.ceil(slot.count / WG_1D);
    });
    rt.dispatch(
      adamwMultiSpec(n),
      [...group.flatMap((s) => s.buffers), normSquared],
      grid1d(workgroups),
      new Uint32Array(params),
    );
  }
}
